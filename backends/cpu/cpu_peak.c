/* Declared peak of the cores a rank was given, per dtype, from an FMA-loop probe of the widest
 * ISA. /proc/cpuinfo has neither the boost clock the cores really run at nor the number of
 * FMA pipes, so the rate is measured; it is measured once per CPU model + ISA + thread count
 * and cached (with how and when it was measured), so %peak compares across runs instead of
 * moving with whatever else the machine ran at probe time. HETRUN_CPU_PEAK_REMEASURE=1 probes
 * again and keeps the higher of the two (contention only ever lowers the rate).
 *
 * What each dtype's peak means (GEMM accumulates in fp32 for fp16 and bf16):
 *   fp32, fp64  FMA rate of the widest vector unit (AVX-512 or AVX2);
 *   bf16        TDPBF16PS (AMX-BF16) rate when the CPU has AMX and Linux grants the tile
 *               state, else VDPBF16PS on AVX512-BF16 (both fp32 accumulate), else the fp32
 *               rate;
 *   fp16        the fp32 rate: AVX512-FP16 accumulates in fp16, which GEMM must not.
 * The AVX-512 and AMX probes could not be run where this was written (an AVX2 machine). */
#include <immintrin.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "cpu_blas.h"

enum { CHAINS = 12, REPS = 5 };
enum { P_F32, P_F64, P_BF16, P_COUNT };
static const char *const probe_name[P_COUNT] = {"fp32", "fp64", "bf16"};

static double seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* Each loop: CHAINS independent accumulators (enough to cover the FMA latency of two pipes),
 * FLOPs per instruction = lanes x 2. Returns FLOP/s; the sink keeps the loop alive. */
#define FMA_LOOP(name, isa_str, vec, set1, fma, lanes_flops, first)                                \
    __attribute__((target(isa_str))) static double name(long iters) {                              \
        vec acc[CHAINS], x = set1(0.999999f), y = set1(1e-7f);                                     \
        for (int i = 0; i < CHAINS; i++)                                                           \
            acc[i] = set1((float)i);                                                               \
        double t0 = seconds();                                                                     \
        for (long it = 0; it < iters; it++)                                                        \
            for (int i = 0; i < CHAINS; i++)                                                       \
                acc[i] = fma(acc[i], x, y);                                                        \
        double t1 = seconds();                                                                     \
        double sink = 0.0;                                                                         \
        for (int i = 0; i < CHAINS; i++)                                                           \
            sink += (double)first(acc[i]);                                                         \
        return sink == 12345.0 ? 0.0 : (double)iters * CHAINS * (lanes_flops) / (t1 - t0);         \
    }

FMA_LOOP(f32_avx2, "avx2,fma", __m256, _mm256_set1_ps, _mm256_fmadd_ps, 16, _mm256_cvtss_f32)
FMA_LOOP(f64_avx2, "avx2,fma", __m256d, _mm256_set1_pd, _mm256_fmadd_pd, 8, _mm256_cvtsd_f64)
FMA_LOOP(f32_avx512, "avx512f", __m512, _mm512_set1_ps, _mm512_fmadd_ps, 32, _mm512_cvtss_f32)
FMA_LOOP(f64_avx512, "avx512f", __m512d, _mm512_set1_pd, _mm512_fmadd_pd, 16, _mm512_cvtsd_f64)

/* VDPBF16PS: 16 fp32 lanes, each += two bf16 products: 64 FLOPs per instruction. */
__attribute__((target("avx512f,avx512bf16"))) static double bf16_avx512(long iters) {
    __m512 acc[CHAINS];
    __m512bh x = (__m512bh)_mm512_set1_epi16(0x3f80), y = (__m512bh)_mm512_set1_epi16(0x3380);
    for (int i = 0; i < CHAINS; i++)
        acc[i] = _mm512_set1_ps((float)i);
    double t0 = seconds();
    for (long it = 0; it < iters; it++)
        for (int i = 0; i < CHAINS; i++)
            acc[i] = _mm512_dpbf16_ps(acc[i], x, y);
    double t1 = seconds();
    double sink = 0.0;
    for (int i = 0; i < CHAINS; i++)
        sink += (double)_mm512_cvtss_f32(acc[i]);
    return sink == 12345.0 ? 0.0 : (double)iters * CHAINS * 64.0 / (t1 - t0);
}

/* AMX: TDPBF16PS multiplies a 16x32 bf16 tile by a 32x16 one into 16x16 fp32: 16384 FLOPs
 * per instruction; four accumulator tiles in flight. The tile data state must be requested
 * from Linux first (arch_prctl); without it the probe is skipped. */
typedef struct tile_config {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} tile_config;

static int amx_permitted(void) {
    enum { ARCH_REQ_XCOMP_PERM = 0x1023, XFEATURE_XTILEDATA = 18 };
    return syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) == 0;
}

__attribute__((target("amx-tile,amx-bf16"))) static double bf16_amx(long iters) {
    static _Alignas(64) uint16_t ones[16 * 32];
    for (int i = 0; i < 16 * 32; i++)
        ones[i] = 0x3f80; /* 1.0 */
    tile_config cfg = {.palette = 1};
    for (int t = 0; t < 6; t++) {
        cfg.colsb[t] = 64;
        cfg.rows[t] = 16;
    }
    _tile_loadconfig(&cfg);
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
    _tile_loadd(4, ones, 64);
    _tile_loadd(5, ones, 64);
    double t0 = seconds();
    for (long it = 0; it < iters; it++) {
        _tile_dpbf16ps(0, 4, 5);
        _tile_dpbf16ps(1, 4, 5);
        _tile_dpbf16ps(2, 4, 5);
        _tile_dpbf16ps(3, 4, 5);
    }
    double t1 = seconds();
    static _Alignas(64) float out[16 * 16];
    _tile_stored(0, out, 64);
    _tile_release();
    return out[0] == 12345.0f ? 0.0 : (double)iters * 4 * 16384.0 / (t1 - t0);
}

typedef struct probe_job {
    double (*loop)(long);
    long iters;
    double rate;
    atomic_int *go;
} probe_job;

static void *probe_thread(void *arg) {
    probe_job *j = arg;
    while (!atomic_load(j->go)) /* start together, so the threads share the clock */
        ;
    j->rate = j->loop(j->iters);
    return NULL;
}

/* Sum of the rates of `threads` copies of `loop` running at once; best of REPS. A thread
 * that cannot be created is left out of the sum (the peak is then low, never made up). */
static double probe(double (*loop)(long), long iters, int threads) {
    enum { MAX_THREADS = 256 };
    probe_job jobs[MAX_THREADS];
    pthread_t tid[MAX_THREADS];
    int started[MAX_THREADS];
    if (threads > MAX_THREADS) threads = MAX_THREADS;
    double best = 0.0;
    for (int rep = 0; rep < REPS; rep++) {
        atomic_int go = 0;
        for (int t = 0; t < threads; t++) {
            jobs[t] = (probe_job){.loop = loop, .iters = iters, .go = &go};
            started[t] = t == 0 || pthread_create(&tid[t], NULL, probe_thread, &jobs[t]) == 0;
        }
        atomic_store(&go, 1);
        probe_thread(&jobs[0]);
        double sum = 0.0;
        for (int t = 0; t < threads; t++) {
            if (!started[t]) continue;
            if (t) pthread_join(tid[t], NULL);
            sum += jobs[t].rate;
        }
        if (sum > best) best = sum;
    }
    return best;
}

static void cache_path(const char *dir, const char *key, char *path, size_t len) {
    uint64_t h = 1469598103934665603ull; /* FNV-1a of the key */
    for (const char *c = key; *c; c++)
        h = (h ^ (unsigned char)*c) * 1099511628211ull;
    snprintf(path, len, "%s/cpu-peak-%016llx.txt", dir, (unsigned long long)h);
}

/* Reads a cache file written by write_cache for exactly `key`; 0 when found. */
static int read_cache(const char *path, const char *key, double rate[P_COUNT], char *when,
                      size_t wlen) {
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    char line[512];
    int key_ok = 0, have = 0;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = '\0';
        if (strncmp(line, "key=", 4) == 0) key_ok = strcmp(line + 4, key) == 0;
        if (strncmp(line, "measured=", 9) == 0) snprintf(when, wlen, "%s", line + 9);
        for (int p = 0; p < P_COUNT; p++) {
            size_t n = strlen(probe_name[p]);
            if (strncmp(line, probe_name[p], n) == 0 && line[n] == '=') {
                rate[p] = strtod(line + n + 1, NULL);
                have |= 1 << p;
            }
        }
    }
    fclose(f);
    return key_ok && have == (1 << P_COUNT) - 1 && rate[P_F32] > 0.0 ? 0 : -1;
}

/* Writes to a temporary name, then renames: ranks probing at once never see half a file. */
static void write_cache(const char *path, const char *key, const double rate[P_COUNT],
                        const char *how) {
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.%ld.tmp", path, (long)getpid());
    FILE *f = fopen(tmp, "w");
    if (!f) return;
    time_t now = time(NULL);
    struct tm utc;
    gmtime_r(&now, &utc);
    char when[32];
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &utc);
    fprintf(f, "# hetrun cpu backend: measured FMA peak in FLOP/s; delete to re-measure\n");
    fprintf(f, "key=%s\nmeasured=%s\nprobe=%s\n", key, when, how);
    for (int p = 0; p < P_COUNT; p++)
        fprintf(f, "%s=%.6e\n", probe_name[p], rate[p]);
    int bad = ferror(f);
    if (fclose(f) != 0 || bad || rename(tmp, path) != 0) remove(tmp);
}

static void say(const hetrun_host_services *host, hetrun_log_level level, const char *msg) {
    if (host && host->log) host->log(level, "cpu", msg);
}

void cpu_peak_get(const hetrun_host_services *host, const cpu_isa *isa, const char *model,
                  int threads, double peak[HETRUN_MAX_DTYPES]) {
    static double rate[P_COUNT];
    static int have_rate;
    const char *isa_name = cpu_isa_name(isa);
    char key[256], path[4096] = "", when[64] = "", how[160], msg[4400];
    snprintf(key, sizeof key, "%s|%s|%d threads", model, isa_name, threads);
    int avx512 = strncmp(isa_name, "avx512", 6) == 0, avx2 = isa->avx2 && isa->fma;
    snprintf(how, sizeof how, "%d-chain FMA loop, %s, %d thread(s) at once, best of %d", CHAINS,
             avx512 ? "AVX-512" : "AVX2", threads, REPS);
    const char *dir = host ? host->cache_dir : NULL;
    if (dir) cache_path(dir, key, path, sizeof path);
    const char *redo = getenv("HETRUN_CPU_PEAK_REMEASURE");
    int remeasure = redo && *redo && strcmp(redo, "0") != 0;
    double cached[P_COUNT] = {0};
    int have_cache = path[0] && read_cache(path, key, cached, when, sizeof when) == 0;
    if (!have_rate && have_cache && !remeasure) {
        memcpy(rate, cached, sizeof rate);
        have_rate = 1;
        snprintf(msg, sizeof msg, "peak from cache %s (%s, measured %s): fp32 %.1f GFLOP/s", path,
                 key, when, rate[P_F32] * 1e-9);
        say(host, HETRUN_LOG_INFO, msg);
    }
    if (!have_rate && (avx2 || avx512)) {
        /* ~5 ms per repetition at 3 GHz with two FMA pipes. */
        double (*f32)(long) = avx512 ? f32_avx512 : f32_avx2;
        rate[P_F32] = probe(f32, 2500000, threads);
        rate[P_F64] = probe(avx512 ? f64_avx512 : f64_avx2, 2500000, threads);
        rate[P_BF16] = isa->avx512_bf16 ? probe(bf16_avx512, 2500000, threads) : rate[P_F32];
        if (isa->amx_tile && isa->amx_bf16 && amx_permitted()) {
            double amx = probe(bf16_amx, 200000, threads);
            if (amx > rate[P_BF16]) rate[P_BF16] = amx;
        }
        have_rate = 1;
        /* A busy machine can only slow the loop down, never speed it up: a re-measurement
         * replaces the cache only when it is higher, and one far below `threads` times the
         * one-core rate is flagged. */
        double one = threads > 1 ? probe(f32, 2500000, 1) : rate[P_F32];
        if (rate[P_F32] < 0.75 * threads * one) {
            snprintf(msg, sizeof msg,
                     "peak probe on %d threads gave %.1f GFLOP/s, %.0f%% of %d x the one-core "
                     "%.1f: the cores look busy; re-measure on a quiet machine with "
                     "HETRUN_CPU_PEAK_REMEASURE=1",
                     threads, rate[P_F32] * 1e-9, 100.0 * rate[P_F32] / (threads * one), threads,
                     one * 1e-9);
            say(host, HETRUN_LOG_WARN, msg);
        }
        if (have_cache && cached[P_F32] >= rate[P_F32]) {
            memcpy(rate, cached, sizeof rate);
            snprintf(msg, sizeof msg, "peak re-measured below the cached %.1f GFLOP/s (%s); kept",
                     cached[P_F32] * 1e-9, path);
            say(host, HETRUN_LOG_INFO, msg);
        } else {
            if (path[0]) write_cache(path, key, rate, how);
            snprintf(msg, sizeof msg, "peak measured (%s; %s): fp32 %.1f GFLOP/s, cached in %s",
                     key, how, rate[P_F32] * 1e-9, path[0] ? path : "nothing (no cache folder)");
            say(host, HETRUN_LOG_INFO, msg);
        }
    }
    memset(peak, 0, sizeof(double) * HETRUN_MAX_DTYPES);
    peak[HETRUN_F32] = rate[P_F32];
    peak[HETRUN_F64] = rate[P_F64];
    peak[HETRUN_BF16] = rate[P_BF16];
    peak[HETRUN_F16] = rate[P_F32];
}
