/* CUDA backend benchmark, one run, markdown on stdout:
 *  1. GEMM through the hetrun ABI (op_run -> cuBLASLt) vs the same GEMM called directly
 *     with cuBLASLt: median of event-timed repeats, inputs rotated across buffer sets so
 *     no repeat starts from a warm L2.
 *  2. Dispatch: FILL of 1 element through op_run vs a raw empty <<<1,1>>> launch, host
 *     time per launch in batches of 100 (synchronised after each batch).
 * Usage: hetrun_bench_cuda [module.so] [reps]. Exits 77 when the module is unavailable. */
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cublasLt.h>
#include <cuda_runtime_api.h>

#include "bench_kernels.h"
#include "hetrun/backend.h"
#include "kernels/half.h"

static const hetrun_backend_ops *ops;
static hetrun_device *dev;
static hetrun_queue *q;
static int reps = 20;

#define DIE(...)                                                                                   \
    do {                                                                                           \
        fprintf(stderr, "bench_cuda: " __VA_ARGS__);                                               \
        fputc('\n', stderr);                                                                       \
        exit(1);                                                                                   \
    } while (0)
#define HCHECK(call)                                                                               \
    do {                                                                                           \
        hetrun_status st_ = (call);                                                                \
        if (st_ != HETRUN_OK) DIE("%s: %d: %s", #call, (int)st_, ops->last_error());               \
    } while (0)
#define CCHECK(call)                                                                               \
    do {                                                                                           \
        cudaError_t e_ = (call);                                                                   \
        if (e_ != cudaSuccess) DIE("%s: %s", #call, cudaGetErrorName(e_));                         \
    } while (0)
#define LCHECK(call)                                                                               \
    do {                                                                                           \
        cublasStatus_t s_ = (call);                                                                \
        if (s_ != CUBLAS_STATUS_SUCCESS) DIE("%s: %s", #call, cublasLtGetStatusName(s_));          \
    } while (0)

typedef struct gcase {
    const char *label;
    hetrun_dtype in, out;
    uint32_t flags;
    int64_t m, n, k;
} gcase;

static const gcase cases[] = {
    {"bf16 8192^3", HETRUN_BF16, HETRUN_BF16, 0, 8192, 8192, 8192},
    {"fp16 8192^3", HETRUN_F16, HETRUN_F16, 0, 8192, 8192, 8192},
    {"bf16->fp32 4096^3", HETRUN_BF16, HETRUN_F32, 0, 4096, 4096, 4096},
    {"tf32 8192^3", HETRUN_F32, HETRUN_F32, HETRUN_OP_ALLOW_TF32, 8192, 8192, 8192},
    {"fp32 4096^3", HETRUN_F32, HETRUN_F32, 0, 4096, 4096, 4096},
    {"bf16 1024^3", HETRUN_BF16, HETRUN_BF16, 0, 1024, 1024, 1024},
};

static size_t dsize(hetrun_dtype t) {
    return t == HETRUN_F32 ? 4 : t == HETRUN_F64 ? 8 : 2;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static double now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int rotations(const gcase *c) {
    const double set = (double)(c->m * c->k + c->k * c->n) * dsize(c->in);
    return set >= 256e6 ? 2 : 4; /* enough sets to exceed the L2 (50-60 MB) */
}

/* Fills a module buffer with random values by way of a host array. */
static void abi_fill(hetrun_buffer *b, uint64_t n, hetrun_dtype t, void *host) {
    uint32_t x = 12345u;
    for (uint64_t i = 0; i < n; i++) {
        x = x * 1664525u + 1013904223u;
        float f = (float)(x >> 8) * (2.0f / 16777216.0f) - 1.0f;
        if (t == HETRUN_F32)
            ((float *)host)[i] = f;
        else if (t == HETRUN_BF16)
            ((uint16_t *)host)[i] = hetrun_f32_to_bf16(f);
        else
            ((uint16_t *)host)[i] = hetrun_f32_to_f16(f);
    }
    HCHECK(ops->copy_h2d(q, (hetrun_tensor){b, 0}, host, n * dsize(t)));
}

static double abi_gemm(const gcase *c) {
    hetrun_op_desc d;
    memset(&d, 0, sizeof d);
    d.struct_size = sizeof d;
    d.kind = HETRUN_OP_GEMM;
    d.dtype = c->in;
    d.out_dtype = c->out;
    d.flags = c->flags;
    d.m = c->m, d.n = c->n, d.k = c->k;
    d.alpha = 1.0;
    if (ops->op_supported(dev, &d) != HETRUN_OK) {
        printf("| %s | refused: %s |\n", c->label, ops->last_error());
        return 0.0;
    }
    const int nrot = rotations(c);
    const uint64_t na = (uint64_t)(c->m * c->k), nb = (uint64_t)(c->k * c->n);
    void *host = malloc((na > nb ? na : nb) * dsize(c->in));
    if (!host) DIE("out of host memory");
    hetrun_buffer *A[4], *B[4], *C, *W = NULL;
    for (int r = 0; r < nrot; r++) {
        HCHECK(ops->mem_alloc(dev, na * dsize(c->in), &A[r]));
        HCHECK(ops->mem_alloc(dev, nb * dsize(c->in), &B[r]));
        abi_fill(A[r], na, c->in, host);
        abi_fill(B[r], nb, c->in, host);
    }
    free(host);
    HCHECK(ops->mem_alloc(dev, (uint64_t)(c->m * c->n) * dsize(c->out), &C));
    uint64_t wsb = 0;
    HCHECK(ops->op_workspace_size(dev, &d, &wsb));
    if (wsb) HCHECK(ops->mem_alloc(dev, wsb, &W));
    hetrun_event **ev = calloc((size_t)reps * 2, sizeof *ev);
    double *ms = calloc((size_t)reps, sizeof *ms);
    for (int i = 0; i < reps * 2; i++)
        HCHECK(ops->event_create(dev, &ev[i]));
    for (int i = -3; i < reps; i++) { /* 3 warm-up runs */
        const int r = (i + 3) % nrot;
        hetrun_tensor args[3] = {{A[r], 0}, {B[r], 0}, {C, 0}};
        if (i >= 0) HCHECK(ops->event_record(ev[2 * i], q));
        HCHECK(ops->op_run(q, &d, args, 3, (hetrun_tensor){W, 0}));
        if (i >= 0) HCHECK(ops->event_record(ev[2 * i + 1], q));
    }
    HCHECK(ops->queue_sync(q));
    for (int i = 0; i < reps; i++)
        HCHECK(ops->event_elapsed_ms(ev[2 * i], ev[2 * i + 1], &ms[i]));
    const double med = median(ms, reps);
    for (int i = 0; i < reps * 2; i++)
        ops->event_destroy(ev[i]);
    free(ev);
    free(ms);
    for (int r = 0; r < nrot; r++) {
        ops->mem_free(A[r]);
        ops->mem_free(B[r]);
    }
    ops->mem_free(C);
    ops->mem_free(W);
    return med;
}

static cudaDataType_t cuda_type(hetrun_dtype t) {
    return t == HETRUN_F32 ? CUDA_R_32F : t == HETRUN_F16 ? CUDA_R_16F : CUDA_R_16BF;
}

/* The same row-major GEMM called directly: column-major C^T = B^T A^T. */
static double direct_gemm(const gcase *c, cublasLtHandle_t lt, cudaStream_t s) {
    const int nrot = rotations(c);
    const uint64_t na = (uint64_t)(c->m * c->k), nb = (uint64_t)(c->k * c->n);
    void *A[4], *B[4], *C, *W;
    const size_t wsb = 32u << 20;
    for (int r = 0; r < nrot; r++) {
        CCHECK(cudaMalloc(&A[r], na * dsize(c->in)));
        CCHECK(cudaMalloc(&B[r], nb * dsize(c->in)));
        CCHECK(bench_fill_random(A[r], na, (int)c->in, 1u + (uint32_t)r, s));
        CCHECK(bench_fill_random(B[r], nb, (int)c->in, 7u + (uint32_t)r, s));
    }
    CCHECK(cudaMalloc(&C, (size_t)(c->m * c->n) * dsize(c->out)));
    CCHECK(cudaMalloc(&W, wsb));
    cublasLtMatmulDesc_t op;
    cublasLtMatrixLayout_t la, lb, lc;
    const cublasComputeType_t ct =
        (c->flags & HETRUN_OP_ALLOW_TF32) ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
    LCHECK(cublasLtMatmulDescCreate(&op, ct, CUDA_R_32F));
    LCHECK(cublasLtMatrixLayoutCreate(&la, cuda_type(c->in), (uint64_t)c->n, (uint64_t)c->k, c->n));
    LCHECK(cublasLtMatrixLayoutCreate(&lb, cuda_type(c->in), (uint64_t)c->k, (uint64_t)c->m, c->k));
    LCHECK(
        cublasLtMatrixLayoutCreate(&lc, cuda_type(c->out), (uint64_t)c->n, (uint64_t)c->m, c->n));
    cublasLtMatmulPreference_t pref;
    LCHECK(cublasLtMatmulPreferenceCreate(&pref));
    uint64_t ws64 = wsb;
    LCHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                                &ws64, sizeof ws64));
    cublasLtMatmulHeuristicResult_t res;
    int found = 0;
    LCHECK(cublasLtMatmulAlgoGetHeuristic(lt, op, la, lb, lc, lc, pref, 1, &res, &found));
    if (found < 1) DIE("direct cuBLASLt: no algorithm for %s", c->label);
    const float alpha = 1.0f, beta = 0.0f;
    cudaEvent_t *ev = calloc((size_t)reps * 2, sizeof *ev);
    double *ms = calloc((size_t)reps, sizeof *ms);
    for (int i = 0; i < reps * 2; i++)
        CCHECK(cudaEventCreate(&ev[i]));
    for (int i = -3; i < reps; i++) {
        const int r = (i + 3) % nrot;
        if (i >= 0) CCHECK(cudaEventRecord(ev[2 * i], s));
        LCHECK(cublasLtMatmul(lt, op, &alpha, B[r], la, A[r], lb, &beta, C, lc, C, lc, &res.algo, W,
                              wsb, s));
        if (i >= 0) CCHECK(cudaEventRecord(ev[2 * i + 1], s));
    }
    CCHECK(cudaStreamSynchronize(s));
    for (int i = 0; i < reps; i++) {
        float f;
        CCHECK(cudaEventElapsedTime(&f, ev[2 * i], ev[2 * i + 1]));
        ms[i] = f;
    }
    const double med = median(ms, reps);
    for (int i = 0; i < reps * 2; i++)
        cudaEventDestroy(ev[i]);
    free(ev);
    free(ms);
    cublasLtMatmulPreferenceDestroy(pref);
    cublasLtMatrixLayoutDestroy(la);
    cublasLtMatrixLayoutDestroy(lb);
    cublasLtMatrixLayoutDestroy(lc);
    cublasLtMatmulDescDestroy(op);
    for (int r = 0; r < nrot; r++) {
        cudaFree(A[r]);
        cudaFree(B[r]);
    }
    cudaFree(C);
    cudaFree(W);
    return med;
}

enum { BATCH = 100, BATCHES = 200 };

static void dispatch(cudaStream_t s) {
    hetrun_op_desc d;
    memset(&d, 0, sizeof d);
    d.struct_size = sizeof d;
    d.kind = HETRUN_OP_FILL;
    d.dtype = d.out_dtype = HETRUN_F32;
    d.m = d.n = 1;
    d.alpha = 1.0;
    hetrun_buffer *b;
    HCHECK(ops->mem_alloc(dev, 4, &b));
    hetrun_tensor t = {b, 0};
    double abi[BATCHES], raw[BATCHES];
    for (int w = 0; w < 2; w++) /* warm-up pass, then the measured pass */
        for (int i = 0; i < BATCHES; i++) {
            double t0 = now_us();
            for (int j = 0; j < BATCH; j++)
                HCHECK(ops->op_run(q, &d, &t, 1, (hetrun_tensor){0}));
            HCHECK(ops->queue_sync(q));
            abi[i] = (now_us() - t0) / BATCH;
            t0 = now_us();
            for (int j = 0; j < BATCH; j++)
                CCHECK(bench_launch_empty(s));
            CCHECK(cudaStreamSynchronize(s));
            raw[i] = (now_us() - t0) / BATCH;
        }
    const double ma = median(abi, BATCHES), mr = median(raw, BATCHES);
    printf("\n## Dispatch (host time per launch, median of %d batches of %d, synced per batch)\n\n",
           BATCHES, BATCH);
    printf("| path | us per launch |\n|---|---|\n");
    printf("| op_run FILL 1 x fp32 (ABI) | %.2f |\n| raw <<<1,1>>> empty kernel | %.2f |\n", ma,
           mr);
    printf("| ABI overhead | %.2f (goal: <= 1.00) |\n", ma - mr);
    ops->mem_free(b);
}

int main(int argc, char **argv) {
    const char *path = argc > 1 ? argv[1] : HETRUN_CUDA_MODULE;
    if (argc > 2) reps = atoi(argv[2]) > 2 ? atoi(argv[2]) : 3;
    void *lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!lib) DIE("dlopen(%s): %s", path, dlerror());
    hetrun_backend_entry_fn entry =
        (hetrun_backend_entry_fn)dlsym(lib, HETRUN_BACKEND_ENTRY_SYMBOL);
    if (!entry) DIE("no entry symbol in %s", path);
    ops = entry();
    hetrun_host_services host;
    memset(&host, 0, sizeof host);
    host.struct_size = sizeof host;
    host.abi_major = HETRUN_ABI_MAJOR;
    host.abi_minor = HETRUN_ABI_MINOR;
    host.cpu_threads = 1;
    hetrun_status st = ops->init(&host);
    if (st == HETRUN_ERR_UNAVAILABLE) {
        printf("not run: %s\n", ops->last_error());
        return 77;
    }
    HCHECK(st);
    hetrun_device_info info;
    memset(&info, 0, sizeof info);
    info.struct_size = sizeof info;
    HCHECK(ops->device_info(0, &info));
    HCHECK(ops->device_open(0, &dev));
    HCHECK(ops->queue_create(dev, &q));
    CCHECK(cudaSetDevice(0));
    cudaStream_t s;
    CCHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
    cublasLtHandle_t lt;
    LCHECK(cublasLtCreate(&lt));

    printf("# hetrun CUDA backend benchmark\n\ndevice: %s (%s, %u SMs, %u MHz, bus %s), %s\n\n",
           info.name, info.arch, info.compute_units, info.clock_mhz, info.pci_bus_id,
           info.driver_version);
    printf("## GEMM (median of %d event-timed repeats, rotating inputs, alpha 1 beta 0)\n\n", reps);
    printf("| case | ABI ms | ABI TFLOP/s | cuBLASLt ms | cuBLASLt TFLOP/s | ABI/direct | peak "
           "TFLOP/s |\n");
    printf("|---|---|---|---|---|---|---|\n");
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const gcase *c = &cases[i];
        const double flops = 2.0 * (double)c->m * (double)c->n * (double)c->k;
        const double a = abi_gemm(c);
        if (a <= 0.0) continue;
        const double b = direct_gemm(c, lt, s);
        const double peak = c->in == HETRUN_F32 && !(c->flags & HETRUN_OP_ALLOW_TF32)
                                ? info.peak_flops[HETRUN_F32]
                            : c->in == HETRUN_F32 ? 0.0 /* TF32 peak is not in the table */
                                                  : info.peak_flops[c->in];
        printf("| %s | %.3f | %.1f | %.3f | %.1f | %.3f | %.0f |\n", c->label, a, flops / a / 1e9,
               b, flops / b / 1e9, b / a, peak / 1e12);
        fflush(stdout);
    }
    dispatch(s);
    cublasLtDestroy(lt);
    cudaStreamDestroy(s);
    ops->queue_destroy(q);
    ops->device_close(dev);
    ops->finalize();
    return 0;
}
