/* OpenCL transformer ops vs their peers, side by side in one run (issue 13):
 *  1. attention forward + backward (fp32, causal) through the OpenCL module vs the same
 *     descriptors through the cpu module;
 *  2. strided batched SGEMM through the OpenCL module vs CLBlastSgemmStridedBatched on the
 *     same OpenCL device and vs the cpu module.
 * Calls are interleaved (hetrun, peer, hetrun, ...) so load from other processes hits
 * both alike; each ratio is hetrun time / peer time of the same repeat, so the
 * min/median/max describe the spread of paired ratios. GFLOP/s use the catalogue's counts.
 * Usage: bench_transformer <opencl module.so> <cpu module.so> [repeats [gemm|attention]] */
#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <CL/cl.h>
#include <clblast_c.h>

#include "hetrun/backend.h"
#include "kernels/catalogue.h"

extern char **environ;

typedef struct side {
    const hetrun_backend_ops *B;
    hetrun_device *dev;
    hetrun_queue *q;
    const char *name;
} side;

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int cmpd(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void die(const char *what, const char *why) {
    fprintf(stderr, "bench_transformer: %s: %s\n", what, why);
    exit(1);
}

static void quiet_log(hetrun_log_level l, const char *b, const char *m) {
    if (l <= HETRUN_LOG_WARN) fprintf(stderr, "[%s] %s\n", b, m);
}

static hetrun_host_services host = {.struct_size = sizeof(hetrun_host_services),
                                    .abi_major = HETRUN_ABI_MAJOR,
                                    .abi_minor = HETRUN_ABI_MINOR,
                                    .log = quiet_log,
                                    .alloc = malloc,
                                    .free = free,
                                    .log_level = HETRUN_LOG_WARN};

static void check(const side *s, hetrun_status st, const char *what) {
    if (st != HETRUN_OK) die(what, s->B->last_error());
}

static void open_side(side *s, const char *path, const char *name) {
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) die("dlopen", dlerror());
    hetrun_backend_entry_fn f = (hetrun_backend_entry_fn)dlsym(h, HETRUN_BACKEND_ENTRY_SYMBOL);
    if (!f) die("dlsym", dlerror());
    s->B = f();
    s->name = name;
    check(s, s->B->init(&host), "init");
    check(s, s->B->device_open(0, &s->dev), "device_open");
    check(s, s->B->queue_create(s->dev, &s->q), "queue_create");
}

/* Device buffers for every operand of `d` on side s, filled from one random host image. */
static void alloc_args(side *s, const hetrun_op_desc *d, hetrun_tensor *t) {
    for (int a = 0; a < hetrun_op_arity(d->kind); a++) {
        uint64_t bytes = hetrun_op_arg_bytes(d, a);
        float *h = malloc(bytes);
        hetrun_dtype dt = hetrun_op_arg_dtype(d, a);
        for (uint64_t i = 0; i < bytes / 4; i++)
            h[i] = dt == HETRUN_I32 ? 0.0f : (float)rand() / (float)RAND_MAX - 0.5f;
        if (dt == HETRUN_I32)
            for (uint64_t i = 0; i < bytes / 4; i++)
                ((int32_t *)h)[i] = 1;
        t[a].offset = 0;
        check(s, s->B->mem_alloc(s->dev, bytes, &t[a].buffer), "mem_alloc");
        check(s, s->B->copy_h2d(s->q, t[a], h, bytes), "copy_h2d");
        free(h);
    }
}

static void free_args(side *s, const hetrun_op_desc *d, hetrun_tensor *t) {
    for (int a = 0; a < hetrun_op_arity(d->kind); a++)
        s->B->mem_free(t[a].buffer);
}

static double run_ops(side *s, const hetrun_op_desc *const *d, hetrun_tensor *const *t, int n) {
    double t0 = now();
    for (int i = 0; i < n; i++)
        check(s, s->B->op_run(s->q, d[i], t[i], hetrun_op_arity(d[i]->kind), (hetrun_tensor){0}),
              "op_run");
    check(s, s->B->queue_sync(s->q), "queue_sync");
    return now() - t0;
}

static void stats(double *v, int n, double *mn, double *md, double *mx) {
    qsort(v, (size_t)n, sizeof *v, cmpd);
    *mn = v[0];
    *md = n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
    *mx = v[n - 1];
}

/* One table row: hetrun and peer GFLOP/s (min/median/max) and paired time ratios. */
static void report(const char *label, double flops, double *th, double *tp, int reps) {
    double *r = malloc(sizeof(double) * (size_t)reps), a[3], b[3], c[3];
    for (int i = 0; i < reps; i++)
        r[i] = tp[i] / th[i]; /* > 1: hetrun faster */
    stats(th, reps, &a[0], &a[1], &a[2]);
    stats(tp, reps, &b[0], &b[1], &b[2]);
    stats(r, reps, &c[0], &c[1], &c[2]);
    printf("| %s | %.2f / %.2f / %.2f | %.2f / %.2f / %.2f | %.2f / %.2f / %.2f |\n", label,
           flops / a[2] * 1e-9, flops / a[1] * 1e-9, flops / a[0] * 1e-9, flops / b[2] * 1e-9,
           flops / b[1] * 1e-9, flops / b[0] * 1e-9, c[0], c[1], c[2]);
    fflush(stdout);
    free(r);
}

static void bench_attention(side *ocl, side *cpu, int reps) {
    static const struct {
        int64_t b, h, l, dim;
        unsigned flags;
    } cfg[] = {{2, 12, 256, 64, HETRUN_OP_CAUSAL}};
    printf("\n## Attention forward + backward, fp32 (GFLOP/s min / median / max; ratio = cpu "
           "time / opencl time)\n\n| batch x heads x seq x dim, mask | opencl | cpu module | "
           "ratio |\n|---|---|---|---|\n");
    for (size_t c = 0; c < sizeof cfg / sizeof cfg[0]; c++) {
        hetrun_op_desc f = hetrun_op_desc_init(HETRUN_OP_ATTENTION_FORWARD, HETRUN_F32);
        f.batch = cfg[c].b;
        f.heads = cfg[c].h;
        f.m = f.n = cfg[c].l;
        f.k = cfg[c].dim;
        f.flags = cfg[c].flags;
        f.alpha = 1.0 / sqrt((double)f.k);
        hetrun_op_desc bw = f;
        bw.kind = HETRUN_OP_ATTENTION_BACKWARD;
        const hetrun_op_desc *ds[2] = {&f, &bw};
        double flops = hetrun_op_flops(&f) + hetrun_op_flops(&bw);
        double *th = malloc(sizeof(double) * (size_t)reps),
               *tp = malloc(sizeof(double) * (size_t)reps);
        hetrun_tensor to_f[6], to_b[10], tc_f[6], tc_b[10];
        alloc_args(ocl, &f, to_f);
        alloc_args(cpu, &f, tc_f);
        /* Backward reads the forward's O and lse: share those buffers. */
        alloc_args(ocl, &bw, to_b);
        alloc_args(cpu, &bw, tc_b);
        for (int i = 0; i < 3; i++) {
            to_b[i] = to_f[i];
            tc_b[i] = tc_f[i];
        }
        to_b[4] = to_f[4];
        to_b[6] = to_f[5];
        tc_b[4] = tc_f[4];
        tc_b[6] = tc_f[5];
        hetrun_tensor *ts_o[2] = {to_f, to_b}, *ts_c[2] = {tc_f, tc_b};
        run_ops(ocl, ds, ts_o, 2); /* warm-up: program build, scratch */
        run_ops(cpu, ds, ts_c, 2);
        for (int r = 0; r < reps; r++) {
            th[r] = run_ops(ocl, ds, ts_o, 2);
            tp[r] = run_ops(cpu, ds, ts_c, 2);
        }
        char label[128];
        snprintf(label, sizeof label, "%lld x %lld x %lld x %lld, %s", (long long)f.batch,
                 (long long)f.heads, (long long)f.m, (long long)f.k, f.flags ? "causal" : "none");
        report(label, flops, th, tp, reps);
        free(th);
        free(tp);
    }
}

static void bench_batched_gemm(side *ocl, side *cpu, int reps, cl_context ctx,
                               cl_command_queue rq) {
    static const int64_t cfg[][4] = {
        {96, 256, 256, 64}, {96, 256, 64, 256}, {16, 512, 512, 512}, {8, 1024, 1024, 64}};
    printf("\n## Strided batched SGEMM C_i = A_i B_i (row-major, packed, alpha 1, beta 0; "
           "GFLOP/s min / median / max; ratio = peer time / opencl time)\n\n"
           "| batch x m x n x k | opencl | CLBlast SgemmStridedBatched | ratio vs CLBlast | cpu "
           "module | ratio vs cpu |\n|---|---|---|---|---|---|\n");
    for (size_t c = 0; c < sizeof cfg / sizeof cfg[0]; c++) {
        hetrun_op_desc d = hetrun_op_desc_init(HETRUN_OP_GEMM, HETRUN_F32);
        d.batch = cfg[c][0];
        d.m = cfg[c][1];
        d.n = cfg[c][2];
        d.k = cfg[c][3];
        d.stride_a = d.m * d.k;
        d.stride_b = d.k * d.n;
        const hetrun_op_desc *ds[1] = {&d};
        double flops = hetrun_op_flops(&d);
        double *th = malloc(sizeof(double) * (size_t)reps),
               *tb = malloc(sizeof(double) * (size_t)reps),
               *tc = malloc(sizeof(double) * (size_t)reps),
               *th2 = malloc(sizeof(double) * (size_t)reps);
        hetrun_tensor to[3], tcpu[3];
        alloc_args(ocl, &d, to);
        alloc_args(cpu, &d, tcpu);
        hetrun_tensor *ts_o[1] = {to}, *ts_c[1] = {tcpu};
        size_t ba = (size_t)(d.batch * d.m * d.k) * 4, bb = (size_t)(d.batch * d.k * d.n) * 4,
               bc = (size_t)(d.batch * d.m * d.n) * 4;
        cl_int err;
        float *h = malloc(ba > bb ? ba : bb);
        for (size_t i = 0; i < (ba > bb ? ba : bb) / 4; i++)
            h[i] = (float)rand() / (float)RAND_MAX - 0.5f;
        cl_mem ca = clCreateBuffer(ctx, CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR, ba, h, &err);
        cl_mem cb = clCreateBuffer(ctx, CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR, bb, h, &err);
        cl_mem cc = clCreateBuffer(ctx, CL_MEM_READ_WRITE, bc, NULL, &err);
        if (!ca || !cb || !cc) die("clCreateBuffer", "failed");
        for (int r = -1; r < reps; r++) {
            double t = run_ops(ocl, ds, ts_o, 1);
            if (r >= 0) th[r] = th2[r] = t;
            double t0 = now();
            CLBlastStatusCode cs = CLBlastSgemmStridedBatched(
                CLBlastLayoutRowMajor, CLBlastTransposeNo, CLBlastTransposeNo, (size_t)d.m,
                (size_t)d.n, (size_t)d.k, 1.0f, ca, 0, (size_t)d.k, (size_t)d.stride_a, cb, 0,
                (size_t)d.n, (size_t)d.stride_b, 0.0f, cc, 0, (size_t)d.n, (size_t)(d.m * d.n),
                (size_t)d.batch, &rq, NULL);
            if (cs != CLBlastSuccess) die("CLBlastSgemmStridedBatched", "failed");
            clFinish(rq);
            if (r >= 0) tb[r] = now() - t0;
            t = run_ops(cpu, ds, ts_c, 1);
            if (r >= 0) tc[r] = t;
        }
        char label[128];
        snprintf(label, sizeof label, "%lld x %lld x %lld x %lld", (long long)d.batch,
                 (long long)d.m, (long long)d.n, (long long)d.k);
        /* Two ratio columns: print the row by hand from the two reports' numbers. */
        double *r1 = malloc(sizeof(double) * (size_t)reps),
               *r2 = malloc(sizeof(double) * (size_t)reps);
        for (int i = 0; i < reps; i++) {
            r1[i] = tb[i] / th[i];
            r2[i] = tc[i] / th[i];
        }
        double o[3], b[3], p[3], x[3], y[3];
        stats(th, reps, &o[0], &o[1], &o[2]);
        stats(tb, reps, &b[0], &b[1], &b[2]);
        stats(tc, reps, &p[0], &p[1], &p[2]);
        stats(r1, reps, &x[0], &x[1], &x[2]);
        stats(r2, reps, &y[0], &y[1], &y[2]);
        printf("| %s | %.1f / %.1f / %.1f | %.1f / %.1f / %.1f | %.2f / %.2f / %.2f | %.1f / %.1f "
               "/ %.1f | %.2f / %.2f / %.2f |\n",
               label, flops / o[2] * 1e-9, flops / o[1] * 1e-9, flops / o[0] * 1e-9,
               flops / b[2] * 1e-9, flops / b[1] * 1e-9, flops / b[0] * 1e-9, x[0], x[1], x[2],
               flops / p[2] * 1e-9, flops / p[1] * 1e-9, flops / p[0] * 1e-9, y[0], y[1], y[2]);
        fflush(stdout);
        clReleaseMemObject(ca);
        clReleaseMemObject(cb);
        clReleaseMemObject(cc);
        free_args(ocl, &d, to);
        free_args(cpu, &d, tcpu);
        free(h);
        free(th);
        free(th2);
        free(tb);
        free(tc);
        free(r1);
        free(r2);
    }
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s <opencl module.so> <cpu module.so> [repeats [gemm|attention]]\n",
                argv[0]);
        return 2;
    }
    int reps = argc > 3 ? atoi(argv[3]) : 5;
    const char *only = argc > 4 ? argv[4] : NULL; /* "gemm" or "attention": one part */
    if (reps < 1) reps = 1;
    host.cpu_threads = (int32_t)sysconf(_SC_NPROCESSORS_ONLN); /* every side gets all cores */
    printf("## Environment\n\n");
    for (char **e = environ; *e; e++)
        if (!strncmp(*e, "OPENBLAS_", 9) || !strncmp(*e, "POCL_", 5) || !strncmp(*e, "OMP_", 4))
            printf("- env: %s\n", *e);
    printf("- cores: %d; repeats: %d after one warm-up\n", host.cpu_threads, reps);
    side ocl, cpu;
    open_side(&ocl, argv[1], "opencl");
    open_side(&cpu, argv[2], "cpu");
    hetrun_device_info info;
    memset(&info, 0, sizeof info);
    info.struct_size = sizeof info;
    check(&ocl, ocl.B->device_info(0, &info), "device_info");
    printf("- opencl device: %s (%s, %s)\n", info.name, info.driver_version, info.arch);

    /* CLBlast on the same OpenCL device, found by name. */
    cl_platform_id pls[16];
    cl_uint np = 0;
    cl_device_id rd = NULL;
    if (clGetPlatformIDs(16, pls, &np) != CL_SUCCESS) die("clGetPlatformIDs", "failed");
    for (cl_uint p = 0; p < np && !rd; p++) {
        cl_device_id dv[16];
        cl_uint nd = 0;
        if (clGetDeviceIDs(pls[p], CL_DEVICE_TYPE_ALL, 16, dv, &nd) != CL_SUCCESS) continue;
        for (cl_uint i = 0; i < nd && !rd; i++) {
            char name[256];
            clGetDeviceInfo(dv[i], CL_DEVICE_NAME, sizeof name, name, NULL);
            if (!strcmp(name, info.name)) rd = dv[i];
        }
    }
    if (!rd) die("raw OpenCL", "device 0 of the module not found by name");
    cl_int err;
    cl_context ctx = clCreateContext(NULL, 1, &rd, NULL, NULL, &err);
    if (!ctx) die("clCreateContext", "failed");
    cl_command_queue rq = clCreateCommandQueue(ctx, rd, 0, &err);
    if (!rq) die("clCreateCommandQueue", "failed");

    if (!only || !strcmp(only, "gemm")) bench_batched_gemm(&ocl, &cpu, reps, ctx, rq);
    if (!only || !strcmp(only, "attention")) bench_attention(&ocl, &cpu, reps);
    clReleaseCommandQueue(rq);
    clReleaseContext(ctx);
    return 0;
}
