/* Loads the BLAS at init, not at link time: OpenBLAS fixes its kernels in its constructor from
 * OPENBLAS_CORETYPE or its own model-number table, so the variable must be set (from CPUID)
 * before the library is mapped. Then the chosen kernels are checked against the reference on
 * a small problem; a failure (wrong result or an illegal instruction) reloads the library one
 * core type safer and says so. */
#include <dlfcn.h>
#include <math.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu_blas.h"
#include "cpu_internal.h"
#include "kernels/half.h"
#include "kernels/reference.h"

cpu_blas cpu_blas_lib;

/* ---- self-check ---- */

static sigjmp_buf sigill_jump;
static void on_sigill(int sig) {
    siglongjmp(sigill_jump, sig);
}

/* Deterministic values in [-1, 1), never all zero. */
static float rnd(uint64_t *s) {
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((int32_t)(*s >> 33) % 2048) / 1024.0f;
}

enum { CHK_M = 67, CHK_N = 45, CHK_K = 131, CHK_LD = 140 };

/* The reference C = op(A) B and the per-element error bound (k+2) u sum|a||b| (from a
 * reference run on |A|, |B|). `bf16`: A and B are bf16. Returns 0, or -1 without memory. */
static int reference(const void *a, const void *b, int bf16, int trans_a, float *ref,
                     float *bound) {
    hetrun_op_desc d = {.struct_size = sizeof d,
                        .kind = HETRUN_OP_GEMM,
                        .dtype = bf16 ? HETRUN_BF16 : HETRUN_F32,
                        .out_dtype = HETRUN_F32,
                        .flags = trans_a ? HETRUN_OP_TRANS_A : 0,
                        .m = CHK_M,
                        .n = CHK_N,
                        .k = CHK_K,
                        .lda = CHK_LD,
                        .alpha = 1.0,
                        .beta = 0.0};
    size_t na = (size_t)CHK_LD * (trans_a ? CHK_K : CHK_M), nb = (size_t)CHK_K * CHK_N;
    size_t esz = bf16 ? sizeof(uint16_t) : sizeof(float);
    char *abs_a = malloc(esz * (na + nb)), *abs_b = abs_a + esz * na;
    if (!abs_a) return -1;
    memcpy(abs_a, a, esz * na);
    memcpy(abs_b, b, esz * nb);
    for (size_t i = 0; i < na + nb; i++) /* clear the sign bit, in either width */
        if (bf16)
            ((uint16_t *)abs_a)[i] &= 0x7fff;
        else
            ((float *)abs_a)[i] = fabsf(((float *)abs_a)[i]);
    void *ra[3] = {(void *)a, (void *)b, ref}, *rb[3] = {abs_a, abs_b, bound};
    hetrun_reference_run(&d, ra);
    hetrun_reference_run(&d, rb);
    for (int i = 0; i < CHK_M * CHK_N; i++)
        bound[i] = (float)((CHK_K + 2) * ldexp(1.0, -24) * bound[i] + 1e-30);
    free(abs_a);
    return 0;
}

/* Max of |got - ref| / bound over C: > 1 (or NaN) means the kernels are wrong. */
static double worst_ratio(const float *got, const float *ref, const float *bound) {
    double worst = 0.0;
    for (int i = 0; i < CHK_M * CHK_N; i++) {
        double r = fabs((double)got[i] - ref[i]) / bound[i];
        if (!(r <= worst)) worst = r; /* NaN counts as the worst */
    }
    return worst;
}

/* One self-check GEMM with the SIGILL handler armed; -1 when it raised SIGILL. Its own
 * function, so no local of the caller lives across sigsetjmp (they could be clobbered). */
static int guarded_gemm(int bf, int ta, const float *a, const float *b, const uint16_t *ha,
                        const uint16_t *hb, float *c) {
    if (sigsetjmp(sigill_jump, 1) != 0) return -1;
    if (bf)
        cpu_blas_lib.sbgemm(CPU_ROW_MAJOR, ta, CPU_NO_TRANS, CHK_M, CHK_N, CHK_K, 1.0f, ha, CHK_LD,
                            hb, CHK_N, 0.0f, c, CHK_N);
    else
        cpu_blas_lib.sgemm(CPU_ROW_MAJOR, ta, CPU_NO_TRANS, CHK_M, CHK_N, CHK_K, 1.0f, a, CHK_LD, b,
                           CHK_N, 0.0f, c, CHK_N);
    return 0;
}

/* Runs SGEMM (`bf16`: SBGEMM) on one odd-sized problem per transpose, on one thread then
 * on `threads`. Returns NULL when the kernels pass, else what failed (in `why`). */
static const char *self_check(int bf, int threads, char *why, size_t len) {
    size_t na = (size_t)CHK_LD * CHK_K, nb = (size_t)CHK_K * CHK_N, nc = (size_t)CHK_M * CHK_N;
    float *a = malloc(sizeof(float) * (na + nb + 5 * nc)), *b = a + na, *c = b + nb;
    float *ref = c + nc, *bound = ref + 2 * nc; /* [trans][element] */
    uint16_t *ha = malloc(sizeof(uint16_t) * (na + nb)), *hb = ha + na;
    const char *fail = NULL;
    if (!a || !ha) {
        snprintf(why, len, "cannot allocate the self-check's operands");
        fail = why;
        goto out;
    }
    uint64_t seed = 0x9e3779b97f4a7c15ull;
    for (size_t i = 0; i < na + nb; i++) {
        a[i] = rnd(&seed);
        ha[i] = hetrun_f32_to_bf16(a[i]);
    }
    for (int trans = 0; trans < 2 && !fail; trans++)
        if (reference(bf ? (void *)ha : a, bf ? (void *)hb : b, bf, trans, ref + trans * nc,
                      bound + trans * nc) != 0) {
            snprintf(why, len, "cannot allocate the self-check's reference");
            fail = why;
        }
    struct sigaction act = {.sa_handler = on_sigill}, old;
    sigemptyset(&act.sa_mask);
    sigaction(SIGILL, &act, &old);
    /* One thread first: an illegal instruction then lands on this thread, where the
     * handler can jump back; worker threads come second, once the kernels are known. */
    const char *what = bf ? cpu_blas_lib.bf16_path : "cblas_sgemm";
    for (int pass = 0; pass < 4 && !fail; pass++) {
        int t = pass < 2 ? 1 : threads, trans = pass & 1;
        int ta = trans ? CPU_TRANS : CPU_NO_TRANS;
        if (cpu_blas_lib.set_num_threads) cpu_blas_lib.set_num_threads(t);
        memset(c, 0xff, sizeof(float) * nc); /* NaN: unwritten elements fail */
        if (guarded_gemm(bf, ta, a, b, ha, hb, c) != 0) {
            snprintf(why, len, "%s raised SIGILL (illegal instruction)", what);
            fail = why;
            break;
        }
        double r = worst_ratio(c, ref + trans * nc, bound + trans * nc);
        if (!(r <= 1.0)) {
            snprintf(why, len,
                     "%s %dx%dx%d%s on %d thread(s) is off the reference by %.3g times the "
                     "(k+2)u sum|a||b| bound",
                     what, CHK_M, CHK_N, CHK_K, trans ? " (A transposed)" : "", t, r);
            fail = why;
        }
    }
    sigaction(SIGILL, &old, NULL);
out:
    free(a);
    free(ha);
    return fail;
}

/* ---- loading ---- */

static void *sym(const char *name) {
    return dlsym(cpu_blas_lib.lib, name);
}

/* Maps `path` with OPENBLAS_CORETYPE=`coretype` (NULL: leave the environment alone). */
static hetrun_status open_library(const char *path, const char *coretype) {
    char saved[64] = "";
    const char *had = getenv("OPENBLAS_CORETYPE");
    if (had) snprintf(saved, sizeof saved, "%s", had);
    if (coretype) setenv("OPENBLAS_CORETYPE", coretype, 1);
    dlerror();
    void *lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    /* The variable was only for the library's constructor; children and the report see
     * what the user set. */
    if (coretype) {
        if (had)
            setenv("OPENBLAS_CORETYPE", saved, 1);
        else
            unsetenv("OPENBLAS_CORETYPE");
    }
    if (!lib) {
        const char *e = dlerror();
        return cpu_error(HETRUN_ERR_UNAVAILABLE, "cpu: cannot load the BLAS %s: %s", path,
                         e ? e : "dlopen failed");
    }
    cpu_blas_lib.lib = lib;
    snprintf(cpu_blas_lib.path, sizeof cpu_blas_lib.path, "%s", path);
    cpu_blas_lib.sgemm = (cpu_sgemm_fn)sym("cblas_sgemm");
    cpu_blas_lib.dgemm = (cpu_dgemm_fn)sym("cblas_dgemm");
    cpu_blas_lib.sbgemm = (cpu_sbgemm_fn)sym("cblas_sbgemm");
    if (cpu_blas_lib.sbgemm)
        snprintf(cpu_blas_lib.bf16_path, sizeof cpu_blas_lib.bf16_path, "cblas_sbgemm");
    cpu_blas_lib.set_num_threads = (void (*)(int))sym("openblas_set_num_threads");
    char *(*config)(void) = (char *(*)(void))sym("openblas_get_config");
    char *(*corename)(void) = (char *(*)(void))sym("openblas_get_corename");
    if (!cpu_blas_lib.sgemm || !cpu_blas_lib.dgemm) {
        cpu_blas_unload();
        return cpu_error(HETRUN_ERR_UNAVAILABLE,
                         "cpu: the BLAS %s has no cblas_sgemm/cblas_dgemm (not a CBLAS)", path);
    }
    snprintf(cpu_blas_lib.config, sizeof cpu_blas_lib.config, "%s", config ? config() : "");
    snprintf(cpu_blas_lib.corename, sizeof cpu_blas_lib.corename, "%s", corename ? corename() : "");
    /* The config string starts "OpenBLAS 0.3.21 ...": keep the first two words. */
    int words = 0;
    size_t i = 0;
    for (; cpu_blas_lib.config[i] && i < sizeof cpu_blas_lib.version - 1; i++) {
        if (cpu_blas_lib.config[i] == ' ' && ++words == 2) break;
        cpu_blas_lib.version[i] = cpu_blas_lib.config[i];
    }
    cpu_blas_lib.version[i] = '\0';
    if (!cpu_blas_lib.version[0])
        snprintf(cpu_blas_lib.version, sizeof cpu_blas_lib.version, "CBLAS");
    return HETRUN_OK;
}

/* ---- bf16 from oneDNN ---- */

/* dnnl_gemm_bf16bf16f32: oneDNN's BLAS-like bf16 GEMM (fp32 accumulate and output, row-major
 * like dnnl_sgemm), exported with C linkage by libdnnl 2.x though not in its public header;
 * JIT kernels for AVX512-BF16 and AMX. Its status is not ours to return from a void GEMM: a
 * failure leaves C NaN, which the self-check (and every conformance test) catches. */
typedef int (*dnnl_bf16_fn)(char ta, char tb, int64_t m, int64_t n, int64_t k, float alpha,
                            const uint16_t *a, int64_t lda, const uint16_t *b, int64_t ldb,
                            float beta, float *c, int64_t ldc);
static dnnl_bf16_fn dnnl_bf16;

static void dnnl_sbgemm(int order, int ta, int tb, int m, int n, int k, float alpha,
                        const uint16_t *a, int lda, const uint16_t *b, int ldb, float beta,
                        float *c, int ldc) {
    (void)order; /* row-major only, as every caller here */
    if (dnnl_bf16(ta == CPU_TRANS ? 'T' : 'N', tb == CPU_TRANS ? 'T' : 'N', m, n, k, alpha, a, lda,
                  b, ldb, beta, c, ldc) != 0)
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
                c[(size_t)i * (size_t)ldc + (size_t)j] = NAN;
}

/* Takes oneDNN's bf16 GEMM when the BLAS has none and the CPU has bf16 instructions (or
 * $HETRUN_CPU_BF16_LIB names a library explicitly). Quiet when oneDNN is not installed. */
static void find_dnnl_bf16(const cpu_isa *isa) {
    const char *env = getenv("HETRUN_CPU_BF16_LIB");
    int asked = env && *env;
    if (cpu_blas_lib.sbgemm || (!asked && !isa->avx512_bf16 && !isa->amx_bf16)) return;
    const char *path = asked ? env : "libdnnl.so.2";
    void *lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    dnnl_bf16 = lib ? (dnnl_bf16_fn)dlsym(lib, "dnnl_gemm_bf16bf16f32") : NULL;
    if (!dnnl_bf16) {
        if (asked) cpu_log(HETRUN_LOG_WARN, "%s: no dnnl_gemm_bf16bf16f32 (%s)", path, dlerror());
        if (lib) dlclose(lib);
        return;
    }
    cpu_blas_lib.bf16_lib = lib;
    cpu_blas_lib.sbgemm = dnnl_sbgemm;
    snprintf(cpu_blas_lib.bf16_path, sizeof cpu_blas_lib.bf16_path, "dnnl_gemm_bf16bf16f32 (%s)",
             path);
}

/* The library to load: the user's, else the one found at build time, else the soname. */
static const char *library_path(void) {
    const char *env = getenv("HETRUN_CPU_BLAS");
    if (env && *env) return env;
#ifdef HETRUN_OPENBLAS_SONAME
    return HETRUN_OPENBLAS_SONAME;
#else
    return "libopenblas.so.0";
#endif
}

hetrun_status cpu_blas_load(const cpu_isa *isa, int threads) {
    memset(&cpu_blas_lib, 0, sizeof cpu_blas_lib);
    const char *path = library_path();
    const char *user = getenv("OPENBLAS_CORETYPE");
    const char *want = cpu_isa_coretype(isa);
    char coretype[32];
    if (user && *user) {
        snprintf(coretype, sizeof coretype, "%s", user);
        snprintf(cpu_blas_lib.source, sizeof cpu_blas_lib.source, "user");
        if (strcasecmp(user, want) != 0)
            cpu_log(HETRUN_LOG_INFO,
                    "OPENBLAS_CORETYPE=%s set by the user wins over %s from CPUID (%s)", user, want,
                    cpu_isa_name(isa));
    } else {
        snprintf(coretype, sizeof coretype, "%s", want);
        snprintf(cpu_blas_lib.source, sizeof cpu_blas_lib.source, "cpuid");
    }
    for (;;) {
        /* The user's own setting is already in the environment; ours is set for the load. */
        int ours = strcmp(cpu_blas_lib.source, "user") != 0;
        char source[16];
        snprintf(source, sizeof source, "%s", cpu_blas_lib.source);
        hetrun_status st = open_library(path, ours ? coretype : NULL);
        if (st != HETRUN_OK) return st;
        snprintf(cpu_blas_lib.source, sizeof cpu_blas_lib.source, "%s", source);
        snprintf(cpu_blas_lib.requested, sizeof cpu_blas_lib.requested, "%s",
                 cpu_blas_lib.corename[0] ? coretype : "");
        if (cpu_blas_lib.corename[0] && strcasecmp(cpu_blas_lib.corename, coretype) != 0)
            cpu_log(HETRUN_LOG_WARN, "%s: asked for core type %s, the library chose %s", path,
                    coretype, cpu_blas_lib.corename);
        char why[256];
        const char *fail = self_check(0, threads, why, sizeof why);
        if (!fail) find_dnnl_bf16(isa);
        if (!fail && cpu_blas_lib.sbgemm && self_check(1, threads, why, sizeof why)) {
            cpu_log(HETRUN_LOG_ERROR, "self-check: %s; bf16 GEMM widens to fp32 instead", why);
            cpu_blas_lib.sbgemm = NULL;
            cpu_blas_lib.bf16_path[0] = '\0';
        }
        if (!fail) break;
        const char *safer = cpu_isa_safer_coretype(coretype);
        cpu_log(HETRUN_LOG_ERROR, "self-check of %s with %s kernels failed: %s; %s", path,
                cpu_blas_lib.corename[0] ? cpu_blas_lib.corename : "its", fail,
                safer ? "reloading with a safer core type" : "no safer core type left");
        cpu_blas_unload();
        if (!safer || !cpu_blas_lib.requested[0])
            return cpu_error(HETRUN_ERR_DEVICE,
                             "cpu: BLAS %s (core type %s) failed its self-check: %s", path,
                             coretype, fail);
        cpu_log(HETRUN_LOG_WARN, "falling back from core type %s to %s", coretype, safer);
        snprintf(coretype, sizeof coretype, "%s", safer);
        snprintf(cpu_blas_lib.source, sizeof cpu_blas_lib.source, "fallback");
    }
    if (cpu_blas_lib.set_num_threads) cpu_blas_lib.set_num_threads(threads);
    cpu_blas_lib.threads = threads;
    cpu_log(HETRUN_LOG_INFO, "BLAS %s: %s; kernels %s (%s); ISA %s; bf16 GEMM %s", path,
            cpu_blas_lib.config[0] ? cpu_blas_lib.config : cpu_blas_lib.version,
            cpu_blas_lib.corename[0] ? cpu_blas_lib.corename : "the library's own",
            cpu_blas_lib.source, cpu_isa_name(isa),
            cpu_blas_lib.sbgemm ? cpu_blas_lib.bf16_path : "widened to fp32 + SGEMM");
    return HETRUN_OK;
}

void cpu_blas_unload(void) {
    if (cpu_blas_lib.lib) dlclose(cpu_blas_lib.lib);
    if (cpu_blas_lib.bf16_lib) dlclose(cpu_blas_lib.bf16_lib);
    cpu_blas_lib.lib = cpu_blas_lib.bf16_lib = NULL;
    cpu_blas_lib.bf16_path[0] = '\0';
    cpu_blas_lib.sgemm = NULL;
    cpu_blas_lib.dgemm = NULL;
    cpu_blas_lib.sbgemm = NULL;
    cpu_blas_lib.set_num_threads = NULL;
}

void cpu_blas_summary(char *buf, size_t len) {
    const char *bf16 = !cpu_blas_lib.sbgemm            ? ""
                       : cpu_blas_lib.bf16_lib != NULL ? " + oneDNN bf16"
                                                       : " + sbgemm";
    if (cpu_blas_lib.corename[0])
        snprintf(buf, len, "%s %s (%s)%s", cpu_blas_lib.version, cpu_blas_lib.corename,
                 cpu_blas_lib.source, bf16);
    else
        snprintf(buf, len, "%s%s", cpu_blas_lib.version, bf16);
}
