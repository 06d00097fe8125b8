/* The vector ISA from CPUID, and the OpenBLAS core type it calls for. OpenBLAS 0.3.21's own
 * detection knows CPUs by model number and answers "Prescott" (SSE3) for Xeons newer than
 * it, so the choice here looks at feature bits only. */
#include <cpuid.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "cpu_blas.h"

/* XCR0: the register state the OS saves. A feature whose state it does not save faults. */
static uint64_t xcr0(void) {
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}

void cpu_isa_detect(cpu_isa *isa) {
    memset(isa, 0, sizeof *isa);
    unsigned a = 0, b = 0, c = 0, d = 0, max_leaf = 0;
    if (!__get_cpuid(0, &max_leaf, &b, &c, &d)) return;
    memcpy(isa->vendor, &b, 4);
    memcpy(isa->vendor + 4, &d, 4);
    memcpy(isa->vendor + 8, &c, 4);
    __get_cpuid(1, &a, &b, &c, &d);
    unsigned base_family = (a >> 8) & 0xf, base_model = (a >> 4) & 0xf;
    isa->family = base_family == 0xf ? base_family + ((a >> 20) & 0xff) : base_family;
    isa->model = base_family == 0x6 || base_family == 0xf ? base_model | (((a >> 16) & 0xf) << 4)
                                                          : base_model;
    int osxsave = (c >> 27) & 1;
    uint64_t xcr = osxsave ? xcr0() : 0;
    int os_avx = (xcr & 0x6) == 0x6, os_avx512 = os_avx && (xcr & 0xe0) == 0xe0;
    int os_amx = (xcr & 0x60000) == 0x60000;
    isa->avx = os_avx && ((c >> 28) & 1);
    isa->fma = isa->avx && ((c >> 12) & 1);
    isa->f16c = isa->avx && ((c >> 29) & 1);
    if (max_leaf < 7) return;
    __cpuid_count(7, 0, a, b, c, d);
    unsigned max_sub = a;
    isa->avx2 = isa->avx && ((b >> 5) & 1);
    isa->avx512f = os_avx512 && ((b >> 16) & 1);
    isa->avx512dq = isa->avx512f && ((b >> 17) & 1);
    isa->avx512bw = isa->avx512f && ((b >> 30) & 1);
    isa->avx512vl = isa->avx512f && ((b >> 31) & 1);
    isa->avx512_fp16 = isa->avx512bw && ((d >> 23) & 1);
    isa->amx_bf16 = os_amx && ((d >> 22) & 1);
    isa->amx_tile = os_amx && ((d >> 24) & 1);
    if (max_sub >= 1) {
        __cpuid_count(7, 1, a, b, c, d);
        isa->avx512_bf16 = isa->avx512bw && ((a >> 5) & 1);
    }
}

static int has_avx512_core(const cpu_isa *isa) {
    return isa->avx512f && isa->avx512bw && isa->avx512vl && isa->avx512dq;
}

const char *cpu_isa_name(const cpu_isa *isa) {
    if (has_avx512_core(isa)) return isa->avx512_bf16 ? "avx512-bf16" : "avx512";
    if (isa->avx2 && isa->fma) return "avx2";
    return isa->avx ? "avx" : "sse";
}

void cpu_isa_features(const cpu_isa *isa, char *buf, size_t len) {
    const struct {
        int on;
        const char *name;
    } f[] = {{isa->avx2, "avx2"},
             {isa->fma, "fma"},
             {isa->f16c, "f16c"},
             {isa->avx512f, "avx512f"},
             {isa->avx512bw, "avx512bw"},
             {isa->avx512vl, "avx512vl"},
             {isa->avx512dq, "avx512dq"},
             {isa->avx512_bf16, "avx512_bf16"},
             {isa->avx512_fp16, "avx512_fp16"},
             {isa->amx_tile, "amx_tile"},
             {isa->amx_bf16, "amx_bf16"}};
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
        if (f[i].on && used < len)
            used += (size_t)snprintf(buf + used, len - used, "%s%s", used ? " " : "", f[i].name);
    if (!used) snprintf(buf, len, "sse");
}

const char *cpu_isa_coretype(const cpu_isa *isa) {
    if (has_avx512_core(isa)) return isa->avx512_bf16 ? "Cooperlake" : "SkylakeX";
    if (isa->avx2 && isa->fma) return strcmp(isa->vendor, "AuthenticAMD") == 0 ? "Zen" : "Haswell";
    return isa->avx ? "Sandybridge" : "Prescott";
}

const char *cpu_isa_safer_coretype(const char *coretype) {
    static const char *const ladder[][2] = {
        {"SapphireRapids", "Cooperlake"}, {"Cooperlake", "SkylakeX"}, {"SkylakeX", "Haswell"},
        {"Zen", "Sandybridge"},           {"Haswell", "Sandybridge"}, {"Sandybridge", "Prescott"}};
    for (size_t i = 0; i < sizeof ladder / sizeof ladder[0]; i++)
        if (strcasecmp(coretype, ladder[i][0]) == 0) return ladder[i][1];
    /* A user's core type not on the ladder: the one every x86-64 runs. */
    return strcasecmp(coretype, "Prescott") == 0 ? NULL : "Prescott";
}
