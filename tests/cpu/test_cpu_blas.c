/* The CPU backend's BLAS choice: the OpenBLAS core type follows CPUID feature bits (Intel and
 * AMD, AVX2 to AVX512-BF16), a user's OPENBLAS_CORETYPE wins and stays in the environment,
 * ours does not leak, and kernels that fail the self-check (wrong result or SIGILL) are
 * replaced, loudly, by a safer core type; when none is left, init fails naming the library.
 * A bf16 GEMM from oneDNN is used when it passes the self-check and dropped when not. */
#include <dlfcn.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cpu_blas.h"
#include "hetrun/backend.h"
#include "kernels/catalogue.h"
#include "kernels/half.h"
#include "kernels/reference.h"

static char logged[8192];

static void capture(hetrun_log_level level, const char *backend, const char *message) {
    size_t used = strlen(logged);
    snprintf(logged + used, sizeof logged - used, "[%d %s] %s\n", (int)level, backend, message);
}

static hetrun_host_services services = {.struct_size = sizeof services,
                                        .abi_major = HETRUN_ABI_MAJOR,
                                        .abi_minor = HETRUN_ABI_MINOR,
                                        .log = capture,
                                        .cpu_threads = 2,
                                        .log_level = HETRUN_LOG_DEBUG};

static const hetrun_backend_ops *ops;

static void assert_contains(const char *haystack, const char *needle) {
    if (!strstr(haystack, needle)) fail_msg("expected \"%s\" in \"%s\"", needle, haystack);
}

/* Runs init with the given environment; fills the device's driver_version on success. */
static hetrun_status init_with(const char *blas, const char *coretype, char *driver, size_t len) {
    logged[0] = '\0';
    if (blas)
        setenv("HETRUN_CPU_BLAS", blas, 1);
    else
        unsetenv("HETRUN_CPU_BLAS");
    if (coretype)
        setenv("OPENBLAS_CORETYPE", coretype, 1);
    else
        unsetenv("OPENBLAS_CORETYPE");
    hetrun_status st = ops->init(&services);
    if (st == HETRUN_OK) {
        hetrun_device_info info = {.struct_size = sizeof info};
        assert_int_equal(ops->device_info(0, &info), HETRUN_OK);
        snprintf(driver, len, "%s", info.driver_version);
        assert_true(info.peak_flops[HETRUN_F32] > 0.0);
    }
    return st;
}

static void test_coretype_from_features(void **state) {
    (void)state;
    cpu_isa spr = {.vendor = "GenuineIntel",
                   .family = 6,
                   .model = 143,
                   .fma = 1,
                   .avx = 1,
                   .avx2 = 1,
                   .avx512f = 1,
                   .avx512bw = 1,
                   .avx512vl = 1,
                   .avx512dq = 1,
                   .avx512_bf16 = 1,
                   .avx512_fp16 = 1,
                   .amx_tile = 1,
                   .amx_bf16 = 1};
    assert_string_equal(cpu_isa_coretype(&spr), "Cooperlake");
    assert_string_equal(cpu_isa_name(&spr), "avx512-bf16");
    cpu_isa skx = spr;
    skx.avx512_bf16 = skx.avx512_fp16 = skx.amx_tile = skx.amx_bf16 = 0;
    assert_string_equal(cpu_isa_coretype(&skx), "SkylakeX");
    cpu_isa half_avx512 = skx; /* AVX512F alone (Knights Landing) is not SkylakeX's set */
    half_avx512.avx512bw = half_avx512.avx512vl = 0;
    assert_string_equal(cpu_isa_coretype(&half_avx512), "Haswell");
    cpu_isa zen3 = {
        .vendor = "AuthenticAMD", .family = 25, .model = 1, .fma = 1, .avx = 1, .avx2 = 1};
    assert_string_equal(cpu_isa_coretype(&zen3), "Zen");
    assert_string_equal(cpu_isa_name(&zen3), "avx2");
    cpu_isa zen4 = spr; /* AVX-512 with BF16, no AMX: Cooperlake's kernels run there */
    snprintf(zen4.vendor, sizeof zen4.vendor, "AuthenticAMD");
    zen4.family = 25, zen4.model = 17, zen4.avx512_fp16 = zen4.amx_tile = zen4.amx_bf16 = 0;
    assert_string_equal(cpu_isa_coretype(&zen4), "Cooperlake");
    cpu_isa avx_only = {.vendor = "GenuineIntel", .avx = 1};
    assert_string_equal(cpu_isa_coretype(&avx_only), "Sandybridge");
    cpu_isa none = {.vendor = "GenuineIntel"};
    assert_string_equal(cpu_isa_coretype(&none), "Prescott");
    /* The fallback ladder ends at Prescott and takes any case. */
    assert_string_equal(cpu_isa_safer_coretype("cooperlake"), "SkylakeX");
    assert_string_equal(cpu_isa_safer_coretype("Zen"), "Sandybridge");
    assert_string_equal(cpu_isa_safer_coretype("Bulldozer"), "Prescott");
    assert_null(cpu_isa_safer_coretype("Prescott"));
}

static void test_detected_isa_is_consistent(void **state) {
    (void)state;
    cpu_isa isa;
    cpu_isa_detect(&isa);
    assert_true(isa.vendor[0] != '\0');
    /* Masked features imply the ones below them. */
    if (isa.avx2) assert_true(isa.avx);
    if (isa.avx512bw) assert_true(isa.avx512f);
    if (isa.avx512_bf16) assert_true(isa.avx512bw);
    __builtin_cpu_init();
    assert_int_equal(isa.avx2 != 0, __builtin_cpu_supports("avx2") != 0);
    assert_int_equal(isa.avx512f != 0, __builtin_cpu_supports("avx512f") != 0);
}

static void test_openblas_gets_cpuid_coretype(void **state) {
    (void)state;
    cpu_isa isa;
    cpu_isa_detect(&isa);
    char driver[64], want[64];
    assert_int_equal(init_with(NULL, NULL, driver, sizeof driver), HETRUN_OK);
    snprintf(want, sizeof want, " %s (cpuid)", cpu_isa_coretype(&isa));
    assert_contains(driver, want);
    assert_contains(driver, "OpenBLAS");
    assert_null(getenv("OPENBLAS_CORETYPE")); /* set for the load only */
    ops->finalize();
}

static void test_user_coretype_wins(void **state) {
    (void)state;
    char driver[64];
    assert_int_equal(init_with(NULL, "Sandybridge", driver, sizeof driver), HETRUN_OK);
    assert_contains(driver, " Sandybridge (user)");
    assert_string_equal(getenv("OPENBLAS_CORETYPE"), "Sandybridge");
    ops->finalize();
}

static void test_failed_kernels_fall_back_loudly(void **state) {
    (void)state;
    char driver[64];
    setenv("FAKE_BLAS_SIGILL", "SkylakeX", 1);
    setenv("FAKE_BLAS_BAD", "Haswell", 1);
    assert_int_equal(init_with(FAKE_BLAS, "SkylakeX", driver, sizeof driver), HETRUN_OK);
    assert_string_equal(driver, "FakeBLAS 9.9 Sandybridge (fallback)");
    assert_contains(logged, "cblas_sgemm raised SIGILL");
    assert_contains(logged, "falling back from core type SkylakeX to Haswell");
    assert_contains(logged, "is off the reference by");
    assert_contains(logged, "falling back from core type Haswell to Sandybridge");
    ops->finalize();
}

static void test_no_safe_kernels_fail_init(void **state) {
    (void)state;
    char driver[64];
    setenv("FAKE_BLAS_SIGILL", "", 1);
    setenv("FAKE_BLAS_BAD", "Sandybridge,Prescott", 1);
    assert_int_equal(init_with(FAKE_BLAS, "Sandybridge", driver, sizeof driver), HETRUN_ERR_DEVICE);
    assert_contains(ops->last_error(), FAKE_BLAS);
    assert_contains(ops->last_error(), "failed its self-check");
    unsetenv("FAKE_BLAS_BAD");
}

/* Runs GEMM `d` through the module on host operands A, B, C (C updated in place) and
 * returns the largest |module - reference| over C's `nc` elements. */
static double gemm_vs_reference(const hetrun_op_desc *d, const void *a, const void *b, void *c,
                                size_t na, size_t nb, size_t nc) {
    size_t esz = hetrun_dtype_size((hetrun_dtype)d->dtype);
    size_t osz = hetrun_dtype_size((hetrun_dtype)d->out_dtype);
    char *ref = malloc(nc * osz);
    assert_non_null(ref);
    memcpy(ref, c, nc * osz);
    void *host[3] = {(void *)a, (void *)b, ref};
    assert_int_equal(hetrun_reference_run(d, host), 0);
    hetrun_device *dev;
    hetrun_queue *q;
    assert_int_equal(ops->device_open(0, &dev), HETRUN_OK);
    assert_int_equal(ops->queue_create(dev, &q), HETRUN_OK);
    uint64_t ws_bytes = 0;
    assert_int_equal(ops->op_workspace_size(dev, d, &ws_bytes), HETRUN_OK);
    hetrun_buffer *buf[4] = {0};
    assert_int_equal(ops->mem_alloc(dev, na * esz, &buf[0]), HETRUN_OK);
    assert_int_equal(ops->mem_alloc(dev, nb * esz, &buf[1]), HETRUN_OK);
    assert_int_equal(ops->mem_alloc(dev, nc * osz, &buf[2]), HETRUN_OK);
    if (ws_bytes) assert_int_equal(ops->mem_alloc(dev, ws_bytes, &buf[3]), HETRUN_OK);
    hetrun_tensor t[3] = {{buf[0], 0}, {buf[1], 0}, {buf[2], 0}};
    assert_int_equal(ops->copy_h2d(q, t[0], a, na * esz), HETRUN_OK);
    assert_int_equal(ops->copy_h2d(q, t[1], b, nb * esz), HETRUN_OK);
    assert_int_equal(ops->copy_h2d(q, t[2], c, nc * osz), HETRUN_OK);
    assert_int_equal(ops->op_run(q, d, t, 3, (hetrun_tensor){buf[3], 0}), HETRUN_OK);
    assert_int_equal(ops->copy_d2h(q, c, t[2], nc * osz), HETRUN_OK);
    double worst = 0.0;
    for (size_t i = 0; i < nc; i++)
        worst = fmax(worst, fabs(hetrun_load_as_double(c, (hetrun_dtype)d->out_dtype, i) -
                                 hetrun_load_as_double(ref, (hetrun_dtype)d->out_dtype, i)));
    for (int i = 0; i < 4; i++)
        ops->mem_free(buf[i]);
    ops->queue_destroy(q);
    ops->device_close(dev);
    free(ref);
    return worst;
}

/* A bf16 GEMM (bf16 in, fp32 out) on inputs that are small multiples of 1/16 and 1/8, so that
 * every product and sum is exact in fp32: returns the largest error against the reference. */
static double bf16_gemm_error(void) {
    enum { M = 33, N = 29, K = 70 };
    hetrun_op_desc d = {.struct_size = sizeof d,
                        .kind = HETRUN_OP_GEMM,
                        .dtype = HETRUN_BF16,
                        .out_dtype = HETRUN_F32,
                        .m = M,
                        .n = N,
                        .k = K,
                        .alpha = 1.0};
    uint16_t a[M * K], b[K * N];
    float c[M * N] = {0};
    for (int i = 0; i < M * K; i++)
        a[i] = hetrun_f32_to_bf16((float)((i * 7919) % 61 - 30) / 16.0f);
    for (int i = 0; i < K * N; i++)
        b[i] = hetrun_f32_to_bf16((float)((i * 104729) % 53 - 26) / 8.0f);
    return gemm_vs_reference(&d, a, b, c, M * K, K * N, M * N);
}

static void test_dnnl_bf16_used_when_it_checks_out(void **state) {
    (void)state;
    char driver[64];
    setenv("HETRUN_CPU_BF16_LIB", FAKE_BLAS, 1);
    unsetenv("FAKE_BLAS_BF16_BAD");
    assert_int_equal(init_with(NULL, NULL, driver, sizeof driver), HETRUN_OK);
    assert_contains(driver, "+ oneDNN bf16");
    assert_contains(logged, "bf16 GEMM dnnl_gemm_bf16bf16f32");
    /* Inputs are small multiples of 1/16 and 1/8: every product and sum is exact in fp32. */
    assert_true(bf16_gemm_error() == 0.0);
    ops->finalize();
    setenv("FAKE_BLAS_BF16_BAD", "1", 1);
    assert_int_equal(init_with(NULL, NULL, driver, sizeof driver), HETRUN_OK);
    assert_null(strstr(driver, "bf16"));
    assert_contains(logged, "self-check: dnnl_gemm_bf16bf16f32");
    assert_contains(logged, "bf16 GEMM widens to fp32 instead");
    assert_true(bf16_gemm_error() == 0.0); /* the widening path */
    ops->finalize();
    unsetenv("FAKE_BLAS_BF16_BAD");
    unsetenv("HETRUN_CPU_BF16_LIB");
}

/* A batched GEMM (padded batch strides, broadcast B, padded ldc, beta 1) through the module
 * on 2 threads, against the reference. Inputs are small multiples of 1/16: every product and
 * sum is exact in fp32, so any wrong entry, offset or race shows as a difference. */
static void batched_case(uint32_t dtype, uint32_t out_dtype, uint32_t flags) {
    enum { B = 5, M = 19, N = 17, K = 33, LDC = N + 3 };
    hetrun_op_desc d = {.struct_size = sizeof d,
                        .kind = HETRUN_OP_GEMM,
                        .dtype = dtype,
                        .out_dtype = out_dtype,
                        .flags = flags,
                        .m = M,
                        .n = N,
                        .k = K,
                        .ldc = LDC,
                        .alpha = 1.0,
                        .beta = 1.0,
                        .batch = B,
                        .stride_a = M * K + 7,
                        .stride_b = 0,
                        .stride_c = M * LDC + 5};
    size_t na = (size_t)B * (M * K + 7), nb = (size_t)K * N, nc = (size_t)B * (M * LDC + 5);
    char *a = calloc(na, 4), *b = calloc(nb, 4), *c = calloc(nc, 4);
    assert_non_null(a);
    assert_non_null(b);
    assert_non_null(c);
    for (size_t i = 0; i < na; i++)
        hetrun_store_from_double(a, (hetrun_dtype)dtype, i, (double)((i * 7919) % 61) / 16 - 2);
    for (size_t i = 0; i < nb; i++)
        hetrun_store_from_double(b, (hetrun_dtype)dtype, i, (double)((i * 104729) % 53) / 16 - 1);
    for (size_t i = 0; i < nc; i++)
        hetrun_store_from_double(c, (hetrun_dtype)out_dtype, i, (double)(i % 5) - 2);
    double err = gemm_vs_reference(&d, a, b, c, na, nb, nc);
    if (err != 0.0)
        fail_msg("batched %s GEMM (flags %u) is off the reference by %g",
                 dtype == HETRUN_F32 ? "fp32" : "bf16", flags, err);
    free(a);
    free(b);
    free(c);
}

static void test_batched_gemm_matches_reference(void **state) {
    (void)state;
    char driver[64];
    assert_int_equal(init_with(NULL, NULL, driver, sizeof driver), HETRUN_OK);
    for (int rep = 0; rep < 3; rep++) { /* the worker threads are reused across calls */
        batched_case(HETRUN_F32, HETRUN_F32, 0);
        batched_case(HETRUN_F32, HETRUN_F32, HETRUN_OP_TRANS_A | HETRUN_OP_TRANS_B);
        batched_case(HETRUN_BF16, HETRUN_BF16, HETRUN_OP_TRANS_B);
        batched_case(HETRUN_BF16, HETRUN_F32, 0);
    }
    ops->finalize();
}

static void test_missing_library_is_named(void **state) {
    (void)state;
    char driver[64];
    assert_int_equal(init_with("/nonexistent/libblas.so", NULL, driver, sizeof driver),
                     HETRUN_ERR_UNAVAILABLE);
    assert_contains(ops->last_error(), "/nonexistent/libblas.so");
}

int main(void) {
    void *module = dlopen(CPU_MODULE, RTLD_NOW | RTLD_LOCAL);
    if (!module) {
        fprintf(stderr, "cannot load %s: %s\n", CPU_MODULE, dlerror());
        return 1;
    }
    hetrun_backend_entry_fn entry = (hetrun_backend_entry_fn)dlsym(module, "hetrun_backend_entry");
    ops = entry ? entry() : NULL;
    if (!ops) return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_coretype_from_features),
        cmocka_unit_test(test_detected_isa_is_consistent),
        cmocka_unit_test(test_openblas_gets_cpuid_coretype),
        cmocka_unit_test(test_user_coretype_wins),
        cmocka_unit_test(test_failed_kernels_fall_back_loudly),
        cmocka_unit_test(test_no_safe_kernels_fail_init),
        cmocka_unit_test(test_dnnl_bf16_used_when_it_checks_out),
        cmocka_unit_test(test_batched_gemm_matches_reference),
        cmocka_unit_test(test_missing_library_is_named),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
