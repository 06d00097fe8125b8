/* The cpu module's fused attention (forward + backward) and fp32 batched SGEMM, timed
 * through the module ABI (dlopen, op_run, as the launcher calls it), and the OpenBLAS peer
 * for the batched SGEMM: a loop of cblas_sgemm, threads inside each GEMM or across the
 * batch entries. Prints one line per measurement: "<what> <median ms> <GFLOP/s>
 * <fraction of the module's measured fp32 peak>".
 *
 * usage: attn_bench MODULE THREADS attention B H L D CAUSAL ITERS
 *        attn_bench MODULE THREADS bgemm BATCH M N K ITERS   (module, then both peers)
 * ATTN_BENCH_DTYPE=bf16|fp16 runs attention in that dtype (default fp32; the fractions stay of
 * the fp32 peak, so on a GPU read the GFLOP/s). The workspace an op asks for is allocated once.
 * ATTN_BENCH_CPU_TIME=1 times with the process's CPU time instead of the wall clock: on a
 * shared, oversubscribed machine that shows what the kernels do with the cycles they get. */
#include <cblas.h>
#include <dlfcn.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hetrun/backend.h"
#include "kernels/half.h"
#include "util/cache_dir.h"

static const hetrun_backend_ops *ops;
static hetrun_device *dev;
static hetrun_queue *queue;
static double peak; /* FLOP/s, the module's declared fp32 peak (its cached probe) */

static hetrun_dtype dtype = HETRUN_F32; /* attention's Q, K, V, O, dO, dQ, dK, dV */

static clockid_t clock_id = CLOCK_MONOTONIC;

static double now(void) {
    struct timespec t;
    clock_gettime(clock_id, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* n elements of type t on the device, uniform in [-0.5, 0.5) */
static hetrun_tensor buffer_of(size_t n, hetrun_dtype t) {
    hetrun_tensor out = {NULL, 0};
    const size_t es = t == HETRUN_F32 ? 4 : 2;
    float *h = malloc(n * sizeof *h);
    if (!h || ops->mem_alloc(dev, n * es, &out.buffer) != HETRUN_OK) exit(1);
    unsigned s = 12345u + (unsigned)n;
    for (size_t i = 0; i < n; i++) {
        s = s * 1664525u + 1013904223u;
        h[i] = (float)((double)(s >> 8) / 16777216.0 - 0.5);
    }
    uint16_t *narrow = (uint16_t *)h; /* in place: element i is written after h[i] is read */
    for (size_t i = 0; t != HETRUN_F32 && i < n; i++)
        narrow[i] = t == HETRUN_BF16 ? hetrun_f32_to_bf16(h[i]) : hetrun_f32_to_f16(h[i]);
    if (ops->copy_h2d(queue, out, h, n * es) != HETRUN_OK) exit(1);
    free(h);
    return out;
}

static hetrun_tensor buffer(size_t floats) {
    return buffer_of(floats, HETRUN_F32);
}

static void run(const hetrun_op_desc *d, const hetrun_tensor *a) {
    static const hetrun_op_desc *sized[4];
    static hetrun_tensor ws[4];
    int w = 0;
    while (w < 4 && sized[w] && sized[w] != d)
        w++;
    if (w == 4) exit(1);
    if (!sized[w]) { /* first call with this descriptor: its workspace, once */
        uint64_t bytes = 0;
        if (ops->op_workspace_size(dev, d, &bytes) != HETRUN_OK ||
            (bytes && ops->mem_alloc(dev, bytes, &ws[w].buffer) != HETRUN_OK)) {
            fprintf(stderr, "attn_bench: workspace: %s\n", ops->last_error());
            exit(1);
        }
        sized[w] = d;
    }
    if (ops->op_run(queue, d, a, hetrun_op_arity(d->kind), ws[w]) != HETRUN_OK ||
        ops->queue_sync(queue) != HETRUN_OK) {
        fprintf(stderr, "attn_bench: %s\n", ops->last_error());
        exit(1);
    }
}

static void report(const char *what, double sec, double flops) {
    printf("%s %.3f %.2f %.3f\n", what, sec * 1e3, flops / sec * 1e-9, flops / sec / peak);
}

static void attention(int argc, char **argv) {
    if (argc < 10) exit(2);
    const int64_t B = atoll(argv[4]), H = atoll(argv[5]), L = atoll(argv[6]), D = atoll(argv[7]);
    const int causal = atoi(argv[8]), iters = atoi(argv[9]);
    hetrun_op_desc f;
    memset(&f, 0, sizeof f);
    f.struct_size = sizeof f;
    f.kind = HETRUN_OP_ATTENTION_FORWARD;
    f.dtype = f.out_dtype = dtype;
    f.m = f.n = L, f.k = D, f.batch = B, f.heads = H, f.alpha = 1.0 / sqrt((double)D);
    f.flags = causal ? HETRUN_OP_CAUSAL : 0;
    hetrun_op_desc b = f;
    b.kind = HETRUN_OP_ATTENTION_BACKWARD;
    const size_t n = (size_t)(B * L * H * D), nl = (size_t)(B * H * L);
    hetrun_tensor q = buffer_of(n, dtype), k = buffer_of(n, dtype), v = buffer_of(n, dtype),
                  o = buffer_of(n, dtype), lse = buffer(nl), dout = buffer_of(n, dtype),
                  dq = buffer_of(n, dtype), dk = buffer_of(n, dtype), dv = buffer_of(n, dtype);
    hetrun_tensor none = {NULL, 0};
    hetrun_tensor fa[6] = {q, k, v, none, o, lse};
    hetrun_tensor ba[10] = {q, k, v, none, o, dout, lse, dq, dk, dv};
    /* FlashAttention's count: forward 4 B H L^2 D (half when causal), backward 2.5x */
    const double fwd =
        4.0 * (double)(B * H) * (double)L * (double)L * (double)D * (causal ? 0.5 : 1.0);
    double *tf = malloc((size_t)iters * sizeof *tf), *tb = malloc((size_t)iters * sizeof *tb),
           *tt = malloc((size_t)iters * sizeof *tt);
    for (int it = -2; it < iters; it++) {
        double t0 = now();
        run(&f, fa);
        double t1 = now();
        run(&b, ba);
        double t2 = now();
        if (it >= 0) tf[it] = t1 - t0, tb[it] = t2 - t1, tt[it] = t2 - t0;
    }
    report("attention_fwd_bwd", median(tt, iters), 3.5 * fwd);
    report("attention_fwd", median(tf, iters), fwd);
    report("attention_bwd", median(tb, iters), 2.5 * fwd);
}

typedef struct peer_ctx {
    int64_t lo, hi, m, n, k;
    const float *a, *b;
    float *c;
} peer_ctx;

static void *peer_range(void *arg) {
    const peer_ctx *p = arg;
    for (int64_t e = p->lo; e < p->hi; e++)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)p->m, (int)p->n, (int)p->k,
                    1.0f, p->a + e * p->m * p->k, (int)p->k, p->b + e * p->k * p->n, (int)p->n,
                    0.0f, p->c + e * p->m * p->n, (int)p->n);
    return NULL;
}

static void bgemm(int argc, char **argv, int threads) {
    if (argc < 9) exit(2);
    const int64_t batch = atoll(argv[4]), m = atoll(argv[5]), n = atoll(argv[6]),
                  k = atoll(argv[7]);
    const int iters = atoi(argv[8]);
    hetrun_op_desc d;
    memset(&d, 0, sizeof d);
    d.struct_size = sizeof d;
    d.kind = HETRUN_OP_GEMM;
    d.m = m, d.n = n, d.k = k, d.batch = batch, d.alpha = 1.0;
    d.stride_a = m * k, d.stride_b = k * n, d.stride_c = m * n;
    hetrun_tensor args[3] = {buffer((size_t)(batch * m * k)), buffer((size_t)(batch * k * n)),
                             buffer((size_t)(batch * m * n))};
    const double flops = 2.0 * (double)(batch * m * n) * (double)k;
    /* peers on fresh host arrays of the same sizes */
    float *a = malloc((size_t)(batch * m * k) * 4), *b = malloc((size_t)(batch * k * n) * 4),
          *c = malloc((size_t)(batch * m * n) * 4);
    if (!a || !b || !c) exit(1);
    for (int64_t i = 0; i < batch * m * k; i++)
        a[i] = (float)(i % 7) * 0.1f;
    for (int64_t i = 0; i < batch * k * n; i++)
        b[i] = (float)(i % 5) * 0.1f;
    double *t[3];
    for (int w = 0; w < 3; w++)
        if (!(t[w] = malloc((size_t)iters * sizeof *t[w]))) exit(1);
    /* the three take turns every iteration, so a load change on the machine hits them alike */
    for (int it = -2; it < iters; it++)
        for (int w = 0; w < 3; w++) {
            double t0 = now();
            if (w == 0) {
                run(&d, args);
            } else if (w == 1) { /* OpenBLAS's threads inside each GEMM */
                peer_ctx all = {0, batch, m, n, k, a, b, c};
                peer_range(&all);
            } else { /* one thread per share of the entries, one BLAS thread each */
                openblas_set_num_threads(1);
                pthread_t tid[64];
                peer_ctx p[64];
                for (int x = 0; x < threads && x < 64; x++) {
                    p[x] = (peer_ctx){
                        batch * x / threads, batch * (x + 1) / threads, m, n, k, a, b, c};
                    pthread_create(&tid[x], NULL, peer_range, &p[x]);
                }
                for (int x = 0; x < threads && x < 64; x++)
                    pthread_join(tid[x], NULL);
                openblas_set_num_threads(threads);
            }
            if (it >= 0) t[w][it] = now() - t0;
        }
    report("hetrun_batched", median(t[0], iters), flops);
    report("openblas_loop_inside", median(t[1], iters), flops);
    report("openblas_loop_across", median(t[2], iters), flops);
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: attn_bench MODULE THREADS attention|bgemm ...\n");
        return 2;
    }
    const char *dt = getenv("ATTN_BENCH_DTYPE");
    if (dt && strcmp(dt, "bf16") == 0) dtype = HETRUN_BF16;
    if (dt && strcmp(dt, "fp16") == 0) dtype = HETRUN_F16;
    const char *cpu_time = getenv("ATTN_BENCH_CPU_TIME");
    if (cpu_time && strcmp(cpu_time, "1") == 0) clock_id = CLOCK_PROCESS_CPUTIME_ID;
    void *lib = dlopen(argv[1], RTLD_NOW | RTLD_GLOBAL);
    if (!lib) {
        fprintf(stderr, "attn_bench: %s\n", dlerror());
        return 1;
    }
    ops = ((hetrun_backend_entry_fn)dlsym(lib, HETRUN_BACKEND_ENTRY_SYMBOL))();
    static hetrun_host_services host;
    host.struct_size = sizeof host;
    host.abi_major = HETRUN_ABI_MAJOR;
    host.abi_minor = HETRUN_ABI_MINOR;
    host.cpu_threads = atoi(argv[2]);
    host.cache_dir = hetrun_cache_dir(); /* the cpu module's cached peak probe, as hetrun's */
    hetrun_device_info info;
    memset(&info, 0, sizeof info);
    info.struct_size = sizeof info;
    if (ops->init(&host) != HETRUN_OK || ops->device_open(0, &dev) != HETRUN_OK ||
        ops->queue_create(dev, &queue) != HETRUN_OK || ops->device_info(0, &info) != HETRUN_OK) {
        fprintf(stderr, "attn_bench: %s\n", ops->last_error());
        return 1;
    }
    peak = info.peak_flops[HETRUN_F32];
    printf("peak_gflops %.1f\n", peak * 1e-9);
    if (strcmp(argv[3], "attention") == 0)
        attention(argc, argv);
    else
        bgemm(argc, argv, host.cpu_threads);
    ops->queue_destroy(queue);
    ops->device_close(dev);
    ops->finalize();
    return 0;
}
