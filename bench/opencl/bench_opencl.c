/* OpenCL backend benchmark (one run, one device):
 *  1. SGEMM n x n x n through the ABI module vs CLBlastSgemm on the same device:
 *     min/median/max seconds over repeats -> GFLOP/s, ratio of medians;
 *  2. dispatch overhead: FILL of 1 element via op_run + queue_sync vs a raw
 *     clEnqueueNDRangeKernel + clFinish of the same kernel source and launch shape;
 *  3. start-up: init + device_open + queue_create + first op + sync, with a cold (empty)
 *     and then a warm program cache, each in a fresh process.
 * Usage: bench_opencl <libhetrun_backend_opencl.so> [repeats]
 *        bench_opencl --startup <module.so> <cache_dir>   (internal, prints ms) */
#include <dlfcn.h>
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

static const hetrun_backend_ops *B;

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
    fprintf(stderr, "bench_opencl: %s: %s\n", what, why);
    exit(1);
}

#define ABI(call)                                                                                  \
    do {                                                                                           \
        if ((call) != HETRUN_OK) die(#call, B->last_error());                                      \
    } while (0)
#define CL(call)                                                                                   \
    do {                                                                                           \
        cl_int e_ = (call);                                                                        \
        if (e_ != CL_SUCCESS) {                                                                    \
            char m_[32];                                                                           \
            snprintf(m_, sizeof m_, "error %d", e_);                                               \
            die(#call, m_);                                                                        \
        }                                                                                          \
    } while (0)

static void quiet_log(hetrun_log_level l, const char *b, const char *m) {
    if (l <= HETRUN_LOG_WARN) fprintf(stderr, "[%s] %s\n", b, m);
}

static hetrun_host_services host = {.struct_size = sizeof(hetrun_host_services),
                                    .abi_major = HETRUN_ABI_MAJOR,
                                    .abi_minor = HETRUN_ABI_MINOR,
                                    .log = quiet_log,
                                    .alloc = malloc,
                                    .free = free,
                                    .cpu_threads = 0, /* set in main */
                                    .log_level = HETRUN_LOG_WARN};

static void load(const char *path) {
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) die("dlopen", dlerror());
    hetrun_backend_entry_fn f = (hetrun_backend_entry_fn)dlsym(h, HETRUN_BACKEND_ENTRY_SYMBOL);
    if (!f) die("dlsym", dlerror());
    B = f();
}

/* Same source and launch shape as the module's fill_f32 (kernels/opencl/elementwise.cl). */
static const char *raw_src =
    "__kernel void fill_f32(__global float *y, ulong oy, ulong n, float alpha) {\n"
    "    size_t i = get_global_id(0);\n"
    "    if (i < n) y[oy + i] = alpha;\n"
    "}\n";

static void stats(double *v, int n, double *mn, double *med, double *mx) {
    qsort(v, (size_t)n, sizeof *v, cmpd);
    *mn = v[0];
    *med = n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
    *mx = v[n - 1];
}

/* Other processes on a 2-core machine move these numbers: record the load. */
static void print_load(const char *when) {
    FILE *la = fopen("/proc/loadavg", "r");
    char load[128] = "unknown";
    if (la) {
        if (!fgets(load, sizeof load, la)) snprintf(load, sizeof load, "unknown");
        fclose(la);
    }
    load[strcspn(load, "\n")] = 0;
    printf("- load average at %s (/proc/loadavg): %s\n", when, load);
}

static int startup(const char *module, const char *cache) {
    load(module);
    host.cpu_threads = (int32_t)sysconf(_SC_NPROCESSORS_ONLN);
    host.cache_dir = cache;
    double t0 = now();
    ABI(B->init(&host));
    hetrun_device *dev;
    hetrun_queue *q;
    hetrun_buffer *b;
    ABI(B->device_open(0, &dev));
    ABI(B->queue_create(dev, &q));
    ABI(B->mem_alloc(dev, 4, &b));
    hetrun_op_desc d = hetrun_op_desc_init(HETRUN_OP_FILL, HETRUN_F32);
    hetrun_tensor t = {b, 0};
    ABI(B->op_run(q, &d, &t, 1, (hetrun_tensor){0}));
    ABI(B->queue_sync(q));
    printf("%.1f\n", (now() - t0) * 1e3);
    return 0;
}

int main(int argc, char **argv) {
    if (argc >= 4 && strcmp(argv[1], "--startup") == 0) return startup(argv[2], argv[3]);
    if (argc < 2) {
        fprintf(stderr, "usage: %s <libhetrun_backend_opencl.so> [repeats]\n", argv[0]);
        return 2;
    }
    int reps = argc > 2 ? atoi(argv[2]) : 7;
    /* All online cores, as CLBlast (same PoCL platform, same process) gets them too. */
    host.cpu_threads = (int32_t)sysconf(_SC_NPROCESSORS_ONLN);
    if (reps < 1) reps = 1;
    load(argv[1]);
    /* The environment as given, before init (which may set POCL_MAX_PTHREAD_COUNT). */
    printf("## Environment\n\n");
    for (char **e = environ; *e; e++)
        if (!strncmp(*e, "OPENBLAS_", 9) || !strncmp(*e, "POCL_", 5) || !strncmp(*e, "OMP_", 4))
            printf("- env: %s\n", *e);
    ABI(B->init(&host));
    hetrun_device_info info;
    memset(&info, 0, sizeof info);
    info.struct_size = sizeof info;
    ABI(B->device_info(0, &info));
    printf("- device: %s (%s, driver %s, %s, %u CUs @ %u MHz)\n", info.name, info.vendor,
           info.driver_version, info.arch, info.compute_units, info.clock_mhz);
    const char *pt = getenv("POCL_MAX_PTHREAD_COUNT");
    printf("- POCL_MAX_PTHREAD_COUNT after module init: %s\n", pt ? pt : "unset");
    print_load("start");
    printf("- repeats per size: %d (after one warm-up call each)\n\n", reps);

    hetrun_device *dev;
    hetrun_queue *q;
    ABI(B->device_open(0, &dev));
    ABI(B->queue_create(dev, &q));

    /* Raw OpenCL on the same device (found by name) for CLBlast and the raw dispatch. */
    cl_platform_id pls[16];
    cl_uint np = 0;
    CL(clGetPlatformIDs(16, pls, &np));
    cl_device_id rd = NULL;
    for (cl_uint p = 0; p < np && !rd; p++) {
        cl_device_id ds[16];
        cl_uint nd = 0;
        if (clGetDeviceIDs(pls[p], CL_DEVICE_TYPE_ALL, 16, ds, &nd) != CL_SUCCESS) continue;
        for (cl_uint i = 0; i < nd && !rd; i++) {
            char name[256];
            clGetDeviceInfo(ds[i], CL_DEVICE_NAME, sizeof name, name, NULL);
            if (!strcmp(name, info.name)) rd = ds[i];
        }
    }
    if (!rd) die("raw OpenCL", "device 0 of the module not found by name");
    cl_int err;
    cl_context ctx = clCreateContext(NULL, 1, &rd, NULL, NULL, &err);
    CL(err);
    cl_command_queue rq = clCreateCommandQueue(ctx, rd, 0, &err);
    CL(err);

    static const int sizes[] = {256, 512, 1024, 1536, 2048};
    printf("## SGEMM C = A * B (row-major, no transposes, alpha 1, beta 0), GFLOP/s\n\n");
    printf("| n | hetrun min | hetrun median | hetrun max | CLBlast min | CLBlast median | "
           "CLBlast max | ratio (median) |\n|---|---|---|---|---|---|---|---|\n");
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        int n = sizes[s];
        size_t bytes = (size_t)n * n * sizeof(float);
        float *h = malloc(bytes);
        for (size_t i = 0; i < (size_t)n * n; i++)
            h[i] = (float)rand() / (float)RAND_MAX - 0.5f;
        hetrun_buffer *ba, *bb, *bc;
        ABI(B->mem_alloc(dev, bytes, &ba));
        ABI(B->mem_alloc(dev, bytes, &bb));
        ABI(B->mem_alloc(dev, bytes, &bc));
        ABI(B->copy_h2d(q, (hetrun_tensor){ba, 0}, h, bytes));
        ABI(B->copy_h2d(q, (hetrun_tensor){bb, 0}, h, bytes));
        hetrun_op_desc d = hetrun_op_desc_init(HETRUN_OP_GEMM, HETRUN_F32);
        d.m = d.n = d.k = n;
        hetrun_tensor t[3] = {{ba, 0}, {bb, 0}, {bc, 0}};
        double *th = malloc(sizeof(double) * (size_t)reps),
               *tc = malloc(sizeof(double) * (size_t)reps);
        cl_mem ca = clCreateBuffer(ctx, CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR, bytes, h, &err);
        CL(err);
        cl_mem cb = clCreateBuffer(ctx, CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR, bytes, h, &err);
        CL(err);
        cl_mem cc = clCreateBuffer(ctx, CL_MEM_READ_WRITE, bytes, NULL, &err);
        CL(err);
        /* Interleaved, so load from other processes hits both libraries alike. */
        for (int r = -1; r < reps; r++) {
            double t0 = now();
            ABI(B->op_run(q, &d, t, 3, (hetrun_tensor){0}));
            ABI(B->queue_sync(q));
            if (r >= 0) th[r] = now() - t0;
            t0 = now();
            CLBlastStatusCode cs =
                CLBlastSgemm(CLBlastLayoutRowMajor, CLBlastTransposeNo, CLBlastTransposeNo, n, n, n,
                             1.0f, ca, 0, n, cb, 0, n, 0.0f, cc, 0, n, &rq, NULL);
            if (cs != CLBlastSuccess) {
                char m[32];
                snprintf(m, sizeof m, "status %d", (int)cs);
                die("CLBlastSgemm", m);
            }
            CL(clFinish(rq));
            if (r >= 0) tc[r] = now() - t0;
        }
        double flop = 2.0 * n * (double)n * n * 1e-9, a0, a1, a2, c0, c1, c2;
        stats(th, reps, &a0, &a1, &a2);
        stats(tc, reps, &c0, &c1, &c2);
        printf("| %d | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f | %.2f |\n", n, flop / a2, flop / a1,
               flop / a0, flop / c2, flop / c1, flop / c0, c1 / a1);
        fflush(stdout);
        clReleaseMemObject(ca);
        clReleaseMemObject(cb);
        clReleaseMemObject(cc);
        B->mem_free(ba);
        B->mem_free(bb);
        B->mem_free(bc);
        free(th);
        free(tc);
        free(h);
    }

    /* Dispatch: FILL of one element, ABI vs raw. */
    enum { N = 3000 };
    static double ta[N], tr[N];
    hetrun_buffer *fb;
    ABI(B->mem_alloc(dev, 64, &fb));
    hetrun_op_desc fd = hetrun_op_desc_init(HETRUN_OP_FILL, HETRUN_F32);
    hetrun_tensor ft = {fb, 0};
    cl_program rp = clCreateProgramWithSource(ctx, 1, &raw_src, NULL, &err);
    CL(err);
    CL(clBuildProgram(rp, 1, &rd, "-cl-std=CL1.2", NULL, NULL));
    cl_kernel rk = clCreateKernel(rp, "fill_f32", &err);
    CL(err);
    cl_mem rb = clCreateBuffer(ctx, CL_MEM_READ_WRITE, 64, NULL, &err);
    CL(err);
    size_t g = 64, l = 64;
    for (int round = 0; round < 2; round++) /* round 0 warms both paths up */
        for (int i = 0; i < N; i++) {
            double t0 = now();
            ABI(B->op_run(q, &fd, &ft, 1, (hetrun_tensor){0}));
            ABI(B->queue_sync(q));
            double t1 = now();
            cl_ulong off = 0, cnt = 1;
            cl_float alpha = 1.0f;
            CL(clSetKernelArg(rk, 0, sizeof rb, &rb));
            CL(clSetKernelArg(rk, 1, sizeof off, &off));
            CL(clSetKernelArg(rk, 2, sizeof cnt, &cnt));
            CL(clSetKernelArg(rk, 3, sizeof alpha, &alpha));
            CL(clEnqueueNDRangeKernel(rq, rk, 1, NULL, &g, &l, 0, NULL, NULL));
            CL(clFinish(rq));
            ta[i] = t1 - t0;
            tr[i] = now() - t1;
        }
    double a0, a1, a2, r0, r1, r2;
    stats(ta, N, &a0, &a1, &a2);
    stats(tr, N, &r0, &r1, &r2);
    printf("\n## Dispatch: FILL of 1 element + sync, microseconds over %d calls (interleaved)\n\n"
           "| path | min | median | max |\n|---|---|---|---|\n"
           "| ABI op_run + queue_sync | %.1f | %.1f | %.1f |\n"
           "| raw clSetKernelArg x4 + clEnqueueNDRangeKernel + clFinish | %.1f | %.1f | %.1f |\n"
           "\nratio ABI/raw (median): %.2f\n",
           N, a0 * 1e6, a1 * 1e6, a2 * 1e6, r0 * 1e6, r1 * 1e6, r2 * 1e6, a1 / r1);
    B->mem_free(fb);
    clReleaseMemObject(rb);
    clReleaseKernel(rk);
    clReleaseProgram(rp);
    clReleaseCommandQueue(rq);
    clReleaseContext(ctx);
    B->queue_destroy(q);
    B->device_close(dev);
    B->finalize();

    /* Start-up, each in a fresh process. POCL_KERNEL_CACHE=0 turns PoCL's own kernel
     * cache off, so the first two rows show what the hetrun program cache alone saves. */
    char dir1[] = "/tmp/hetrun-ocl-bench-XXXXXX", dir2[] = "/tmp/hetrun-ocl-bench-XXXXXX";
    if (!mkdtemp(dir1) || !mkdtemp(dir2)) die("mkdtemp", "failed");
    printf("\n## Start-up: init + device_open + queue_create + first op + sync, ms "
           "(fresh process each)\n\n| hetrun program cache | PoCL kernel cache | ms |\n"
           "|---|---|---|\n");
    static const struct {
        const char *hetrun, *pocl, *env;
        int dir;
    } rows[] = {{"cold (empty dir)", "off (POCL_KERNEL_CACHE=0)", "POCL_KERNEL_CACHE=0", 1},
                {"warm", "off (POCL_KERNEL_CACHE=0)", "POCL_KERNEL_CACHE=0", 1},
                {"cold (empty dir)", "on (default)", "", 2},
                {"warm", "on (default)", "", 2}};
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        char cmd[1024], out[64] = "";
        snprintf(cmd, sizeof cmd, "%s '%s' --startup '%s' '%s'", rows[i].env, argv[0], argv[1],
                 rows[i].dir == 1 ? dir1 : dir2);
        FILE *p = popen(cmd, "r");
        if (!p || !fgets(out, sizeof out, p)) die("startup run", cmd);
        pclose(p);
        out[strcspn(out, "\n")] = 0;
        printf("| %s | %s | %s |\n", rows[i].hetrun, rows[i].pocl, out);
    }
    printf("\n");
    print_load("end");
    char rm[160];
    snprintf(rm, sizeof rm, "rm -rf '%s' '%s'", dir1, dir2);
    if (system(rm) != 0) fprintf(stderr, "cleanup of %s failed\n", rm);
    return 0;
}
