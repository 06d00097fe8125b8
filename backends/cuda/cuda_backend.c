/* hetrun CUDA backend: NVIDIA GPUs through the CUDA runtime (linked statically),
 * cuBLASLt for GEMM (cuda_gemm.c), hetrun's own kernels (kernels/cuda) for every other
 * op, NCCL for the optional collectives and NVML (dlopen'ed) for energy. */
#include <dlfcn.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef HETRUN_HAVE_NCCL
#include <nccl.h>
#endif

#include "kernels/catalogue.h"
#include "cuda_internal.h"

/* ---- module state ---- */

static bool g_initialized;
static int g_count;
static hetrun_device **g_open; /* g_count slots: the one handle per ordinal */
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;

/* NVML, loaded at runtime so the module never needs libnvidia-ml at load time. The
 * prototypes are the documented NVML C ABI (handles are opaque pointers). */
typedef int (*nvml_init_fn)(void);
typedef int (*nvml_shutdown_fn)(void);
typedef int (*nvml_by_bus_fn)(const char *bus, void **dev);
typedef int (*nvml_energy_fn)(void *dev, unsigned long long *mj);
static struct {
    void *lib;
    nvml_shutdown_fn shutdown;
    nvml_energy_fn energy;
    void **handles;              /* per ordinal, NULL when NVML has no handle */
    unsigned long long *base_mj; /* energy counter at init */
} g_nvml;

/* ---- lifecycle ---- */

static void nvml_load(void) {
    memset(&g_nvml, 0, sizeof g_nvml);
    void *lib = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!lib) return;
    nvml_init_fn init = (nvml_init_fn)dlsym(lib, "nvmlInit_v2");
    nvml_by_bus_fn by_bus = (nvml_by_bus_fn)dlsym(lib, "nvmlDeviceGetHandleByPciBusId_v2");
    g_nvml.shutdown = (nvml_shutdown_fn)dlsym(lib, "nvmlShutdown");
    g_nvml.energy = (nvml_energy_fn)dlsym(lib, "nvmlDeviceGetTotalEnergyConsumption");
    if (!init || !by_bus || !g_nvml.shutdown || !g_nvml.energy || init() != 0) {
        dlclose(lib);
        memset(&g_nvml, 0, sizeof g_nvml);
        return;
    }
    g_nvml.lib = lib;
    g_nvml.handles = calloc((size_t)g_count, sizeof *g_nvml.handles);
    g_nvml.base_mj = calloc((size_t)g_count, sizeof *g_nvml.base_mj);
    if (!g_nvml.handles || !g_nvml.base_mj) return;
    for (int i = 0; i < g_count; i++) {
        char bus[32];
        if (cudaDeviceGetPCIBusId(bus, sizeof bus, i) != cudaSuccess) continue;
        void *h = NULL;
        unsigned long long mj = 0;
        /* Devices without an energy counter (pre-Volta) keep a NULL handle. */
        if (by_bus(bus, &h) == 0 && g_nvml.energy(h, &mj) == 0) {
            g_nvml.handles[i] = h;
            g_nvml.base_mj[i] = mj;
        }
    }
}

static void nvml_unload(void) {
    if (g_nvml.lib) {
        g_nvml.shutdown();
        dlclose(g_nvml.lib);
    }
    free(g_nvml.handles);
    free(g_nvml.base_mj);
    memset(&g_nvml, 0, sizeof g_nvml);
}

static hetrun_status cuda_init(const hetrun_host_services *host) {
    pthread_mutex_lock(&g_lock);
    if (g_initialized) {
        pthread_mutex_unlock(&g_lock);
        return HETRUN_OK;
    }
    hcu_host = host;
    /* Before the first CUDA call: ordinals follow PCI order, as hwloc and the plan see. */
    setenv("CUDA_DEVICE_ORDER", "PCI_BUS_ID", 0);
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    const char *vis = getenv("CUDA_VISIBLE_DEVICES");
    if (e == cudaErrorNoDevice || e == cudaErrorInsufficientDriver || e == cudaErrorStubLibrary ||
        (e == cudaSuccess && count == 0)) {
        int drv = 0;
        (void)cudaDriverGetVersion(&drv);
        (void)cudaGetLastError();
        pthread_mutex_unlock(&g_lock);
        return hcu_fail(HETRUN_ERR_UNAVAILABLE,
                        "cuda: no usable NVIDIA driver or GPU device: cudaGetDeviceCount returned "
                        "%s (%s), %d devices, driver CUDA version %d.%d (0 = no driver), "
                        "runtime %d.%d, CUDA_VISIBLE_DEVICES=%s",
                        cudaGetErrorName(e), cudaGetErrorString(e), count, drv / 1000,
                        (drv % 1000) / 10, CUDART_VERSION / 1000, (CUDART_VERSION % 1000) / 10,
                        vis ? vis : "(unset)");
    }
    if (e != cudaSuccess) {
        pthread_mutex_unlock(&g_lock);
        return hcu_cuda_fail(NULL, e, "cudaGetDeviceCount", "init");
    }
    g_open = calloc((size_t)count, sizeof *g_open);
    if (!g_open) {
        pthread_mutex_unlock(&g_lock);
        return hcu_fail(HETRUN_ERR_NO_MEMORY, "cuda: init: out of host memory for %d devices",
                        count);
    }
    g_count = count;
    nvml_load();
    g_initialized = true;
    pthread_mutex_unlock(&g_lock);
    return HETRUN_OK;
}

static void device_release(hetrun_device *dev);

static void cuda_finalize(void) {
    pthread_mutex_lock(&g_lock);
    if (g_initialized) {
        for (int i = 0; i < g_count; i++)
            if (g_open[i]) device_release(g_open[i]);
        free(g_open);
        g_open = NULL;
        nvml_unload();
        g_count = 0;
        g_initialized = false;
    }
    pthread_mutex_unlock(&g_lock);
}

static hetrun_status need_init(void) {
    if (!g_initialized) return hcu_fail(HETRUN_ERR_INVALID, "cuda: module not initialised");
    return HETRUN_OK;
}

static hetrun_status cuda_thread_bind(hetrun_device *dev) {
    hetrun_status st = hcu_check_alive(dev);
    return st ? st : hcu_bind(dev);
}

/* ---- devices ---- */

static hetrun_status cuda_device_count(int32_t *count) {
    hetrun_status st = need_init();
    if (st) return st;
    if (!count) return hcu_fail(HETRUN_ERR_INVALID, "cuda: device_count: NULL output");
    *count = g_count;
    return HETRUN_OK;
}

/* Dense FLOPs per clock per SM (a multiply-add is 2). Source: NVIDIA architecture
 * whitepapers and datasheets (V100, T4, A100, A40/A6000, L40S, H100 SXM, B200), the
 * dense (no sparsity) peak divided by SM count and boost clock. f32 is CUDA-core FP32
 * (no TF32), f64 the DMMA tensor-core rate where the chip has one, f16/bf16 tensor cores
 * with f32 accumulate, int8 tensor cores. Unknown architectures report 0 (unknown). */
static const struct {
    int cc;
    double f32, f64, f16, bf16, i8;
} g_peak[] = {
    {70, 128, 64, 1024, 0, 0},        {75, 128, 4, 1024, 0, 2048},
    {80, 128, 128, 2048, 2048, 4096}, {86, 256, 4, 1024, 1024, 2048},
    {87, 256, 4, 1024, 1024, 2048},   {89, 256, 4, 1024, 1024, 2048},
    {90, 256, 256, 4096, 4096, 8192}, {100, 256, 128, 8192, 8192, 16384},
};

static void fill_peaks(double *peak, int major, int minor, int sms, int clock_mhz) {
    const int cc = major * 10 + minor;
    for (size_t i = 0; i < sizeof g_peak / sizeof g_peak[0]; i++) {
        if (g_peak[i].cc != cc) continue;
        const double per = (double)sms * clock_mhz * 1e6;
        peak[HETRUN_F32] = g_peak[i].f32 * per;
        peak[HETRUN_F64] = g_peak[i].f64 * per;
        peak[HETRUN_F16] = g_peak[i].f16 * per;
        peak[HETRUN_BF16] = g_peak[i].bf16 * per;
        peak[HETRUN_I8] = g_peak[i].i8 * per;
        return;
    }
}

static void format_uuid(char *out, size_t len, const unsigned char *b) {
    snprintf(out, len, "GPU-%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
             b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13],
             b[14], b[15]);
}

/* cudaDeviceGetPCIBusId gives "0000:65:00.0" (domain width varies); normalise it to the
 * lower-case "dddd:bb:dd.f" the plan matches against hwloc. */
static void format_bus_id(char *out, size_t len, int index) {
    char raw[64];
    unsigned dom, bus, dev, fn;
    out[0] = '\0';
    if (cudaDeviceGetPCIBusId(raw, sizeof raw, index) != cudaSuccess) {
        (void)cudaGetLastError();
        return;
    }
    if (sscanf(raw, "%x:%x:%x.%x", &dom, &bus, &dev, &fn) == 4)
        snprintf(out, len, "%04x:%02x:%02x.%x", dom, bus, dev, fn);
}

static hetrun_status check_index(int32_t index, const char *call) {
    hetrun_status st = need_init();
    if (st) return st;
    if (index < 0 || index >= g_count)
        return hcu_fail(HETRUN_ERR_INVALID, "cuda: %s: device index %d out of range (0..%d)", call,
                        (int)index, g_count - 1);
    return HETRUN_OK;
}

static hetrun_status cuda_device_info(int32_t index, hetrun_device_info *info) {
    hetrun_status st = check_index(index, "device_info");
    if (st) return st;
    if (!info || info->struct_size < offsetof(hetrun_device_info, name))
        return hcu_fail(HETRUN_ERR_INVALID,
                        "cuda: device_info: NULL info or struct_size %u too "
                        "small",
                        info ? info->struct_size : 0);
    struct cudaDeviceProp p;
    cudaError_t e = cudaGetDeviceProperties(&p, index);
    if (e != cudaSuccess) return hcu_cuda_fail(NULL, e, "cudaGetDeviceProperties", "device_info");
    int clock_khz = 0, drv = 0, rt = 0;
    if (cudaDeviceGetAttribute(&clock_khz, cudaDevAttrClockRate, index) != cudaSuccess)
        clock_khz = 0;
    (void)cudaDriverGetVersion(&drv);
    (void)cudaRuntimeGetVersion(&rt);
    (void)cudaGetLastError();

    hetrun_device_info out;
    memset(&out, 0, sizeof out);
    out.kind = HETRUN_DEVICE_GPU;
    snprintf(out.name, sizeof out.name, "%s", p.name);
    snprintf(out.vendor, sizeof out.vendor, "NVIDIA");
    snprintf(out.driver_version, sizeof out.driver_version, "CUDA driver %d.%d, runtime %d.%d",
             drv / 1000, (drv % 1000) / 10, rt / 1000, (rt % 1000) / 10);
    format_uuid(out.uuid, sizeof out.uuid, (const unsigned char *)p.uuid.bytes);
    format_bus_id(out.pci_bus_id, sizeof out.pci_bus_id, index);
    snprintf(out.arch, sizeof out.arch, "sm_%d%d", p.major, p.minor);
    out.memory_bytes = p.totalGlobalMem;
    out.max_alloc_bytes = 0;
    out.compute_units = (uint32_t)p.multiProcessorCount;
    out.clock_mhz = (uint32_t)(clock_khz / 1000);
    fill_peaks(out.peak_flops, p.major, p.minor, p.multiProcessorCount, clock_khz / 1000);
    snprintf(out.visibility_env, sizeof out.visibility_env, "CUDA_VISIBLE_DEVICES");

    const size_t n = info->struct_size < sizeof out ? info->struct_size : sizeof out;
    out.struct_size = (uint32_t)n;
    memcpy(info, &out, n);
    return HETRUN_OK;
}

static void device_release(hetrun_device *dev) {
    if (cudaSetDevice(dev->index) == cudaSuccess) {
        hcu_gemm_release(dev);
        if (dev->lt) cublasLtDestroy(dev->lt);
    }
    (void)cudaGetLastError();
    pthread_mutex_destroy(&dev->plan_lock);
    g_open[dev->index] = NULL;
    free(dev);
}

static hetrun_status cuda_device_open(int32_t index, hetrun_device **out) {
    hetrun_status st = check_index(index, "device_open");
    if (st) return st;
    if (!out) return hcu_fail(HETRUN_ERR_INVALID, "cuda: device_open: NULL output");
    pthread_mutex_lock(&g_lock);
    if (g_open[index]) {
        pthread_mutex_unlock(&g_lock);
        return hcu_fail(HETRUN_ERR_INVALID,
                        "cuda: device_open: device %d is already open (one handle per index)",
                        (int)index);
    }
    hetrun_device *dev = calloc(1, sizeof *dev);
    if (!dev) {
        pthread_mutex_unlock(&g_lock);
        return hcu_fail(HETRUN_ERR_NO_MEMORY, "cuda: device_open: out of host memory");
    }
    dev->index = index;
    atomic_init(&dev->failed, false);
    atomic_init(&dev->mem_in_use, 0);
    atomic_init(&dev->mem_peak, 0);
    pthread_mutex_init(&dev->plan_lock, NULL);
    struct cudaDeviceProp p;
    cudaError_t e = cudaGetDeviceProperties(&p, index);
    if (e == cudaSuccess) {
        snprintf(dev->name, sizeof dev->name, "%s", p.name);
        format_uuid(dev->uuid, sizeof dev->uuid, (const unsigned char *)p.uuid.bytes);
        format_bus_id(dev->bus_id, sizeof dev->bus_id, index);
        dev->sm_count = p.multiProcessorCount;
        dev->cc_major = p.major;
        dev->cc_minor = p.minor;
        e = cudaSetDevice(index);
    }
    if (e == cudaSuccess) e = cudaFree(NULL); /* create the primary context now, not mid-run */
    if (e != cudaSuccess) {
        st = hcu_cuda_fail(dev, e, "cudaSetDevice/cudaFree(0)", "device_open");
        pthread_mutex_destroy(&dev->plan_lock);
        free(dev);
        pthread_mutex_unlock(&g_lock);
        return st;
    }
    cublasStatus_t cs = cublasLtCreate(&dev->lt);
    if (cs != CUBLAS_STATUS_SUCCESS) {
        pthread_mutex_destroy(&dev->plan_lock);
        free(dev);
        pthread_mutex_unlock(&g_lock);
        return hcu_fail(HETRUN_ERR_DEVICE, "cuda: cublasLtCreate failed: %s on device %d",
                        cublasLtGetStatusName(cs), (int)index);
    }
    g_open[index] = dev;
    pthread_mutex_unlock(&g_lock);
    *out = dev;
    return HETRUN_OK;
}

static void cuda_device_close(hetrun_device *dev) {
    if (!dev) return;
    pthread_mutex_lock(&g_lock);
    if (g_initialized && dev->index >= 0 && dev->index < g_count && g_open[dev->index] == dev)
        device_release(dev);
    pthread_mutex_unlock(&g_lock);
}

/* ---- memory ---- */

static void track_alloc(hetrun_device *dev, uint64_t bytes) {
    uint64_t now = atomic_fetch_add(&dev->mem_in_use, bytes) + bytes;
    uint64_t peak = atomic_load(&dev->mem_peak);
    while (now > peak && !atomic_compare_exchange_weak(&dev->mem_peak, &peak, now)) {
    }
}

static hetrun_status cuda_mem_alloc(hetrun_device *dev, uint64_t bytes, hetrun_buffer **out) {
    hetrun_status st = hcu_check_alive(dev);
    if (st) return st;
    if (!out || bytes == 0)
        return hcu_fail(HETRUN_ERR_INVALID, "cuda: mem_alloc: %s on device %d",
                        out ? "0 bytes requested" : "NULL output", dev->index);
    if ((st = hcu_bind(dev))) return st;
    hetrun_buffer *b = malloc(sizeof *b);
    if (!b) return hcu_fail(HETRUN_ERR_NO_MEMORY, "cuda: mem_alloc: out of host memory");
    void *p = NULL;
    cudaError_t e = cudaMalloc(&p, (size_t)bytes);
    if (e != cudaSuccess) {
        free(b);
        if (hcu_is_sticky(e)) return hcu_cuda_fail(dev, e, "cudaMalloc", "mem_alloc");
        (void)cudaGetLastError();
        size_t free_b = 0, total_b = 0;
        (void)cudaMemGetInfo(&free_b, &total_b);
        (void)cudaGetLastError();
        return hcu_fail(e == cudaErrorMemoryAllocation ? HETRUN_ERR_NO_MEMORY : HETRUN_ERR_DEVICE,
                        "cuda: cudaMalloc(%" PRIu64 " bytes) failed: %s: %s on device %d %s bus "
                        "%s; device has %zu of %zu bytes free",
                        bytes, cudaGetErrorName(e), cudaGetErrorString(e), dev->index, dev->name,
                        dev->bus_id, free_b, total_b);
    }
    b->dev = dev;
    b->ptr = p;
    b->bytes = bytes;
    track_alloc(dev, bytes);
    *out = b;
    return HETRUN_OK;
}

static void cuda_mem_free(hetrun_buffer *b) {
    if (!b) return;
    if (cudaSetDevice(b->dev->index) == cudaSuccess) {
        cudaError_t e = cudaFree(b->ptr);
        if (e != cudaSuccess) hcu_cuda_fail(b->dev, e, "cudaFree", "mem_free");
    }
    atomic_fetch_sub(&b->dev->mem_in_use, b->bytes);
    free(b);
}

static bool host_is_pinned(const void *p) {
    struct cudaPointerAttributes a;
    if (cudaPointerGetAttributes(&a, p) != cudaSuccess) {
        (void)cudaGetLastError();
        return false;
    }
    return a.type == cudaMemoryTypeHost;
}

static hetrun_status staging_ready(hetrun_queue *q) {
    if (q->staging[0]) return HETRUN_OK;
    for (int i = 0; i < 2; i++) {
        cudaError_t e = cudaHostAlloc(&q->staging[i], HCU_STAGING_CHUNK, cudaHostAllocDefault);
        if (e == cudaSuccess) e = cudaEventCreateWithFlags(&q->staged[i], cudaEventDisableTiming);
        if (e != cudaSuccess) {
            hetrun_status st = hcu_cuda_fail(q->dev, e, "cudaHostAlloc/cudaEventCreate",
                                             "pinned staging buffers (2 x 4 MiB)");
            for (int j = 0; j <= i; j++) {
                if (q->staging[j]) cudaFreeHost(q->staging[j]);
                if (q->staged[j]) cudaEventDestroy(q->staged[j]);
                q->staging[j] = NULL;
                q->staged[j] = NULL;
            }
            return st;
        }
    }
    return HETRUN_OK;
}

static hetrun_status copy_error(hetrun_queue *q, cudaError_t e, const char *call, const char *dir,
                                uint64_t bytes) {
    char ctx[96];
    snprintf(ctx, sizeof ctx, "%s of %" PRIu64 " bytes", dir, bytes);
    return hcu_cuda_fail(q->dev, e, call, ctx);
}

/* Pageable host -> device through two pinned chunks: the host fills one chunk while the
 * DMA engine drains the other. Returns once the source has been consumed. */
static hetrun_status cuda_copy_h2d(hetrun_queue *q, hetrun_tensor dst, const void *src,
                                   uint64_t bytes) {
    hetrun_status st = hcu_queue_check(q, "copy_h2d");
    if (st) return st;
    void *d = NULL;
    if ((st = hcu_tensor_ptr(q->dev, dst, bytes, "copy_h2d destination", &d))) return st;
    if (bytes == 0) return HETRUN_OK;
    if (!src) return hcu_fail(HETRUN_ERR_INVALID, "cuda: copy_h2d: NULL source");
    cudaError_t e;
    if (host_is_pinned(src)) {
        e = cudaMemcpyAsync(d, src, bytes, cudaMemcpyHostToDevice, q->stream);
        if (e == cudaSuccess) e = cudaStreamSynchronize(q->stream);
        return e == cudaSuccess ? HETRUN_OK
                                : copy_error(q, e, "cudaMemcpyAsync", "host to device", bytes);
    }
    if ((st = staging_ready(q))) return st;
    for (uint64_t off = 0, i = 0; off < bytes; off += HCU_STAGING_CHUNK, i++) {
        const int b = (int)(i & 1);
        const uint64_t len = bytes - off < HCU_STAGING_CHUNK ? bytes - off : HCU_STAGING_CHUNK;
        e = cudaEventSynchronize(q->staged[b]); /* the chunk's previous transfer is done */
        if (e != cudaSuccess)
            return copy_error(q, e, "cudaEventSynchronize", "host to device", bytes);
        memcpy(q->staging[b], (const char *)src + off, len);
        e = cudaMemcpyAsync((char *)d + off, q->staging[b], len, cudaMemcpyHostToDevice, q->stream);
        if (e == cudaSuccess) e = cudaEventRecord(q->staged[b], q->stream);
        if (e != cudaSuccess) return copy_error(q, e, "cudaMemcpyAsync", "host to device", bytes);
    }
    return HETRUN_OK;
}

static hetrun_status cuda_copy_d2h(hetrun_queue *q, void *dst, hetrun_tensor src, uint64_t bytes) {
    hetrun_status st = hcu_queue_check(q, "copy_d2h");
    if (st) return st;
    void *s = NULL;
    if ((st = hcu_tensor_ptr(q->dev, src, bytes, "copy_d2h source", &s))) return st;
    if (bytes == 0) return HETRUN_OK;
    if (!dst) return hcu_fail(HETRUN_ERR_INVALID, "cuda: copy_d2h: NULL destination");
    cudaError_t e;
    if (host_is_pinned(dst)) {
        e = cudaMemcpyAsync(dst, s, bytes, cudaMemcpyDeviceToHost, q->stream);
        if (e == cudaSuccess) e = cudaStreamSynchronize(q->stream);
        return e == cudaSuccess ? HETRUN_OK
                                : copy_error(q, e, "cudaMemcpyAsync", "device to host", bytes);
    }
    if ((st = staging_ready(q))) return st;
    /* Two chunks in flight; chunk i is drained to dst once chunk i+1 has been issued.
     * Device writes into a staging chunk are stream-ordered after earlier reads of it. */
    const uint64_t nchunks = (bytes + HCU_STAGING_CHUNK - 1) / HCU_STAGING_CHUNK;
    for (uint64_t i = 0; i < nchunks + 1; i++) {
        if (i < nchunks) {
            const uint64_t off = i * HCU_STAGING_CHUNK;
            const uint64_t len = bytes - off < HCU_STAGING_CHUNK ? bytes - off : HCU_STAGING_CHUNK;
            const int b = (int)(i & 1);
            e = cudaMemcpyAsync(q->staging[b], (const char *)s + off, len, cudaMemcpyDeviceToHost,
                                q->stream);
            if (e == cudaSuccess) e = cudaEventRecord(q->staged[b], q->stream);
            if (e != cudaSuccess)
                return copy_error(q, e, "cudaMemcpyAsync", "device to host", bytes);
        }
        if (i >= 1) {
            const uint64_t j = i - 1, off = j * HCU_STAGING_CHUNK;
            const uint64_t len = bytes - off < HCU_STAGING_CHUNK ? bytes - off : HCU_STAGING_CHUNK;
            const int b = (int)(j & 1);
            e = cudaEventSynchronize(q->staged[b]);
            if (e != cudaSuccess)
                return copy_error(q, e, "cudaEventSynchronize", "device to host", bytes);
            memcpy((char *)dst + off, q->staging[b], len);
        }
    }
    return HETRUN_OK;
}

static hetrun_status cuda_copy_d2d(hetrun_queue *q, hetrun_tensor dst, hetrun_tensor src,
                                   uint64_t bytes) {
    hetrun_status st = hcu_queue_check(q, "copy_d2d");
    if (st) return st;
    void *d = NULL, *s = NULL;
    if ((st = hcu_tensor_ptr(q->dev, dst, bytes, "copy_d2d destination", &d))) return st;
    if ((st = hcu_tensor_ptr(q->dev, src, bytes, "copy_d2d source", &s))) return st;
    if (bytes == 0) return HETRUN_OK;
    cudaError_t e = cudaMemcpyAsync(d, s, bytes, cudaMemcpyDeviceToDevice, q->stream);
    return e == cudaSuccess ? HETRUN_OK
                            : copy_error(q, e, "cudaMemcpyAsync", "device to device", bytes);
}

/* ---- queues and events ---- */

static hetrun_status cuda_queue_create(hetrun_device *dev, hetrun_queue **out) {
    hetrun_status st = hcu_check_alive(dev);
    if (st) return st;
    if (!out) return hcu_fail(HETRUN_ERR_INVALID, "cuda: queue_create: NULL output");
    if ((st = hcu_bind(dev))) return st;
    hetrun_queue *q = calloc(1, sizeof *q);
    if (!q) return hcu_fail(HETRUN_ERR_NO_MEMORY, "cuda: queue_create: out of host memory");
    q->dev = dev;
    cudaError_t e = cudaStreamCreateWithFlags(&q->stream, cudaStreamNonBlocking);
    if (e != cudaSuccess) {
        free(q);
        return hcu_cuda_fail(dev, e, "cudaStreamCreateWithFlags", "queue_create");
    }
    *out = q;
    return HETRUN_OK;
}

static void cuda_queue_destroy(hetrun_queue *q) {
    if (!q) return;
    if (cudaSetDevice(q->dev->index) == cudaSuccess) {
        (void)cudaStreamSynchronize(q->stream);
        for (int i = 0; i < 2; i++) {
            if (q->staging[i]) cudaFreeHost(q->staging[i]);
            if (q->staged[i]) cudaEventDestroy(q->staged[i]);
        }
        cudaStreamDestroy(q->stream);
    }
    (void)cudaGetLastError();
    free(q);
}

static hetrun_status cuda_queue_sync(hetrun_queue *q) {
    hetrun_status st = hcu_queue_check(q, "queue_sync");
    if (st) return st;
    cudaError_t e = cudaStreamSynchronize(q->stream);
    return e == cudaSuccess ? HETRUN_OK
                            : hcu_cuda_fail(q->dev, e, "cudaStreamSynchronize", "queue_sync");
}

static hetrun_status cuda_event_create(hetrun_device *dev, hetrun_event **out) {
    hetrun_status st = hcu_check_alive(dev);
    if (st) return st;
    if (!out) return hcu_fail(HETRUN_ERR_INVALID, "cuda: event_create: NULL output");
    if ((st = hcu_bind(dev))) return st;
    hetrun_event *ev = calloc(1, sizeof *ev);
    if (!ev) return hcu_fail(HETRUN_ERR_NO_MEMORY, "cuda: event_create: out of host memory");
    ev->dev = dev;
    cudaError_t e = cudaEventCreate(&ev->ev);
    if (e != cudaSuccess) {
        free(ev);
        return hcu_cuda_fail(dev, e, "cudaEventCreate", "event_create");
    }
    *out = ev;
    return HETRUN_OK;
}

static void cuda_event_destroy(hetrun_event *ev) {
    if (!ev) return;
    if (cudaSetDevice(ev->dev->index) == cudaSuccess) cudaEventDestroy(ev->ev);
    (void)cudaGetLastError();
    free(ev);
}

static hetrun_status cuda_event_record(hetrun_event *ev, hetrun_queue *q) {
    hetrun_status st = hcu_queue_check(q, "event_record");
    if (st) return st;
    if (!ev || ev->dev != q->dev)
        return hcu_fail(HETRUN_ERR_INVALID, "cuda: event_record: %s",
                        ev ? "event and queue are on different devices" : "NULL event");
    cudaError_t e = cudaEventRecord(ev->ev, q->stream);
    if (e != cudaSuccess) return hcu_cuda_fail(q->dev, e, "cudaEventRecord", "event");
    ev->recorded = true;
    return HETRUN_OK;
}

static hetrun_status cuda_event_elapsed_ms(hetrun_event *start, hetrun_event *end, double *ms) {
    if (!start || !end || !ms)
        return hcu_fail(HETRUN_ERR_INVALID, "cuda: event_elapsed_ms: NULL argument");
    if (!start->recorded || !end->recorded)
        return hcu_fail(HETRUN_ERR_INVALID,
                        "cuda: event_elapsed_ms: the %s event was never recorded",
                        start->recorded ? "end" : "start");
    hetrun_status st = hcu_check_alive(end->dev);
    if (st || (st = hcu_bind(end->dev))) return st;
    cudaError_t e = cudaEventSynchronize(end->ev);
    if (e != cudaSuccess) return hcu_cuda_fail(end->dev, e, "cudaEventSynchronize", "elapsed");
    float f = 0.0f;
    e = cudaEventElapsedTime(&f, start->ev, end->ev);
    if (e != cudaSuccess) return hcu_cuda_fail(end->dev, e, "cudaEventElapsedTime", "elapsed");
    *ms = f;
    return HETRUN_OK;
}

/* ---- collectives (NCCL) ---- */

#ifdef HETRUN_HAVE_NCCL
struct hetrun_comm {
    hetrun_device *dev;
    ncclComm_t comm;
    int nranks, rank;
};

static hetrun_status nccl_fail(hetrun_device *dev, ncclResult_t r, const char *call,
                               const char *ctx) {
    (void)dev;
    return hcu_fail(
        r == ncclInvalidArgument || r == ncclInvalidUsage ? HETRUN_ERR_INVALID : HETRUN_ERR_DEVICE,
        "cuda: %s failed: %s (%s) %s", call, ncclGetErrorString(r), ncclGetLastError(NULL), ctx);
}

static hetrun_status cuda_comm_id_create(uint8_t id[HETRUN_COMM_ID_BYTES]) {
    hetrun_status st = need_init();
    if (st) return st;
    if (!id) return hcu_fail(HETRUN_ERR_INVALID, "cuda: comm_id_create: NULL id");
    _Static_assert(sizeof(ncclUniqueId) <= HETRUN_COMM_ID_BYTES, "ncclUniqueId too large");
    ncclUniqueId uid;
    ncclResult_t r = ncclGetUniqueId(&uid);
    if (r != ncclSuccess) return nccl_fail(NULL, r, "ncclGetUniqueId", "");
    memset(id, 0, HETRUN_COMM_ID_BYTES);
    memcpy(id, &uid, sizeof uid);
    return HETRUN_OK;
}

static hetrun_status cuda_comm_init(hetrun_device *dev, const uint8_t id[HETRUN_COMM_ID_BYTES],
                                    int32_t nranks, int32_t rank, hetrun_comm **out) {
    hetrun_status st = hcu_check_alive(dev);
    if (st) return st;
    if (!id || !out || nranks < 1 || rank < 0 || rank >= nranks)
        return hcu_fail(HETRUN_ERR_INVALID, "cuda: comm_init: bad arguments (rank %d of %d)",
                        (int)rank, (int)nranks);
    if ((st = hcu_bind(dev))) return st;
    hetrun_comm *c = calloc(1, sizeof *c);
    if (!c) return hcu_fail(HETRUN_ERR_NO_MEMORY, "cuda: comm_init: out of host memory");
    ncclUniqueId uid;
    memcpy(&uid, id, sizeof uid);
    ncclResult_t r = ncclCommInitRank(&c->comm, nranks, uid, rank);
    if (r != ncclSuccess) {
        free(c);
        char ctx[96];
        snprintf(ctx, sizeof ctx, "rank %d of %d on device %d", (int)rank, (int)nranks, dev->index);
        return nccl_fail(dev, r, "ncclCommInitRank", ctx);
    }
    c->dev = dev;
    c->nranks = nranks;
    c->rank = rank;
    *out = c;
    return HETRUN_OK;
}

static void cuda_comm_destroy(hetrun_comm *c) {
    if (!c) return;
    if (cudaSetDevice(c->dev->index) == cudaSuccess) ncclCommDestroy(c->comm);
    (void)cudaGetLastError();
    free(c);
}

static hetrun_status cuda_comm_allreduce(hetrun_comm *c, hetrun_queue *q, hetrun_tensor buf,
                                         uint64_t count, hetrun_dtype dtype, hetrun_reduce_op op) {
    if (!c) return hcu_fail(HETRUN_ERR_INVALID, "cuda: comm_allreduce: NULL communicator");
    hetrun_status st = hcu_queue_check(q, "comm_allreduce");
    if (st) return st;
    if (q->dev != c->dev)
        return hcu_fail(HETRUN_ERR_INVALID, "cuda: comm_allreduce: queue and communicator are "
                                            "on different devices");
    static const ncclDataType_t types[HETRUN_DTYPE_COUNT] = {ncclFloat32,  ncclFloat64, ncclFloat16,
                                                             ncclBfloat16, ncclInt8,    ncclInt32};
    if ((unsigned)dtype >= HETRUN_DTYPE_COUNT || (unsigned)op > HETRUN_REDUCE_MIN)
        return hcu_fail(HETRUN_ERR_INVALID, "cuda: comm_allreduce: unknown dtype %d or op %d",
                        (int)dtype, (int)op);
    const uint64_t bytes = count * hetrun_dtype_size(dtype);
    void *p = NULL;
    if ((st = hcu_tensor_ptr(q->dev, buf, bytes, "comm_allreduce buffer", &p))) return st;
    const ncclRedOp_t ops[] = {ncclSum, ncclMax, ncclMin};
    ncclResult_t r = ncclAllReduce(p, p, (size_t)count, types[dtype], ops[op], c->comm, q->stream);
    if (r != ncclSuccess) {
        char ctx[128];
        snprintf(ctx, sizeof ctx, "%" PRIu64 " x %s, rank %d of %d, device %d", count,
                 hetrun_dtype_name(dtype), c->rank, c->nranks, q->dev->index);
        return nccl_fail(q->dev, r, "ncclAllReduce", ctx);
    }
    return HETRUN_OK;
}
#endif

/* ---- telemetry ---- */

static hetrun_status cuda_energy_joules(hetrun_device *dev, double *joules) {
    hetrun_status st = hcu_check_alive(dev);
    if (st) return st;
    if (!joules) return hcu_fail(HETRUN_ERR_INVALID, "cuda: energy_joules: NULL output");
    if (!g_nvml.lib || !g_nvml.handles || !g_nvml.handles[dev->index])
        return hcu_fail(HETRUN_ERR_UNSUPPORTED,
                        "cuda: energy_joules: NVML (libnvidia-ml.so.1) not loaded or no energy "
                        "counter on device %d %s",
                        dev->index, dev->name);
    unsigned long long mj = 0;
    int r = g_nvml.energy(g_nvml.handles[dev->index], &mj);
    if (r != 0)
        return hcu_fail(HETRUN_ERR_DEVICE,
                        "cuda: nvmlDeviceGetTotalEnergyConsumption failed: NVML error %d on "
                        "device %d bus %s",
                        r, dev->index, dev->bus_id);
    *joules = (double)(mj - g_nvml.base_mj[dev->index]) / 1000.0;
    return HETRUN_OK;
}

static hetrun_status cuda_memory_peak(hetrun_device *dev, uint64_t *bytes) {
    if (!dev || !bytes) return hcu_fail(HETRUN_ERR_INVALID, "cuda: memory_peak: NULL argument");
    *bytes = atomic_load(&dev->mem_peak);
    return HETRUN_OK;
}

static const hetrun_backend_ops g_ops = {
    .abi_major = HETRUN_ABI_MAJOR,
    .abi_minor = HETRUN_ABI_MINOR,
    .struct_size = sizeof(hetrun_backend_ops),
    .name = "cuda",
    .version = HETRUN_VERSION,
    .init = cuda_init,
    .finalize = cuda_finalize,
    .last_error = hcu_last_error,
    .thread_bind = cuda_thread_bind,
    .device_count = cuda_device_count,
    .device_info = cuda_device_info,
    .device_open = cuda_device_open,
    .device_close = cuda_device_close,
    .mem_alloc = cuda_mem_alloc,
    .mem_free = cuda_mem_free,
    .copy_h2d = cuda_copy_h2d,
    .copy_d2h = cuda_copy_d2h,
    .copy_d2d = cuda_copy_d2d,
    .queue_create = cuda_queue_create,
    .queue_destroy = cuda_queue_destroy,
    .queue_sync = cuda_queue_sync,
    .event_create = cuda_event_create,
    .event_destroy = cuda_event_destroy,
    .event_record = cuda_event_record,
    .event_elapsed_ms = cuda_event_elapsed_ms,
    .op_supported = hcu_op_supported,
    .op_workspace_size = hcu_op_workspace_size,
    .op_run = hcu_op_run,
#ifdef HETRUN_HAVE_NCCL
    .comm_id_create = cuda_comm_id_create,
    .comm_init = cuda_comm_init,
    .comm_destroy = cuda_comm_destroy,
    .comm_allreduce = cuda_comm_allreduce,
#endif
    .energy_joules = cuda_energy_joules,
    .memory_peak = cuda_memory_peak,
};

/** The module's one exported symbol: the CUDA backend's ops table. */
HETRUN_BACKEND_EXPORT const hetrun_backend_ops *hetrun_backend_entry(void) {
    return &g_ops;
}
