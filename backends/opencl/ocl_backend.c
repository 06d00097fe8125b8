/* hetrun OpenCL backend: lifecycle, devices, memory, queues and events (ABI v1).
 * Ops live in ocl_ops.c, program building and its disk cache in ocl_program.c. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CL/cl_ext.h>

#include "ocl_internal.h"

#ifndef CL_DEVICE_PCI_BUS_INFO_KHR
#define CL_DEVICE_PCI_BUS_INFO_KHR 0x410F
#endif
#ifndef CL_DEVICE_TOPOLOGY_AMD
#define CL_DEVICE_TOPOLOGY_AMD 0x4037
#endif
/* NVIDIA's cl_nv_device_attribute_query values (not in every cl_ext.h). */
#define HR_CL_DEVICE_PCI_BUS_ID_NV 0x4008
#define HR_CL_DEVICE_PCI_SLOT_ID_NV 0x4009
#define HR_CL_DEVICE_PCI_DOMAIN_ID_NV 0x400A

static ocl_devrec *devs;
static int ndevs;

#define CL_CHECK(call, ...)                                                                        \
    do {                                                                                           \
        cl_int err_ = (call);                                                                      \
        if (err_ != CL_SUCCESS)                                                                    \
            return ocl_fail(ocl_status_of(err_), __VA_ARGS__, ocl_err_name(err_));                 \
    } while (0)

static void get_str(cl_device_id d, cl_device_info what, char *dst, size_t len) {
    size_t got = 0;
    if (clGetDeviceInfo(d, what, len, dst, &got) != CL_SUCCESS) dst[0] = 0;
    dst[len - 1] = 0;
}

static int has_ext(const char *exts, const char *name) {
    size_t n = strlen(name);
    for (const char *p = exts; (p = strstr(p, name)) != NULL; p += n)
        if ((p == exts || p[-1] == ' ') && (p[n] == ' ' || p[n] == 0)) return 1;
    return 0;
}

/* PCI address from whichever vendor extension the device has; empty otherwise. */
static void pci_bus_id(cl_device_id d, const char *exts, char *out, size_t len) {
    out[0] = 0;
    if (has_ext(exts, "cl_khr_pci_bus_info")) {
        cl_uint v[4];
        if (clGetDeviceInfo(d, CL_DEVICE_PCI_BUS_INFO_KHR, sizeof v, v, NULL) == CL_SUCCESS)
            snprintf(out, len, "%04x:%02x:%02x.%x", v[0], v[1], v[2], v[3]);
    } else if (has_ext(exts, "cl_amd_device_attribute_query")) {
        union {
            struct {
                cl_uint type, data[5];
            } raw;
            struct {
                cl_uint type;
                cl_char unused[17], bus, device, function;
            } pcie;
        } t;
        if (clGetDeviceInfo(d, CL_DEVICE_TOPOLOGY_AMD, sizeof t, &t, NULL) == CL_SUCCESS &&
            t.raw.type == 1 /* CL_DEVICE_TOPOLOGY_TYPE_PCIE_AMD */)
            snprintf(out, len, "0000:%02x:%02x.%x", (unsigned)(unsigned char)t.pcie.bus,
                     (unsigned)(unsigned char)t.pcie.device,
                     (unsigned)(unsigned char)t.pcie.function);
    } else if (has_ext(exts, "cl_nv_device_attribute_query")) {
        cl_uint bus = 0, slot = 0, dom = 0;
        if (clGetDeviceInfo(d, HR_CL_DEVICE_PCI_BUS_ID_NV, sizeof bus, &bus, NULL) == CL_SUCCESS &&
            clGetDeviceInfo(d, HR_CL_DEVICE_PCI_SLOT_ID_NV, sizeof slot, &slot, NULL) ==
                CL_SUCCESS) {
            if (clGetDeviceInfo(d, HR_CL_DEVICE_PCI_DOMAIN_ID_NV, sizeof dom, &dom, NULL) !=
                CL_SUCCESS)
                dom = 0;
            snprintf(out, len, "%04x:%02x:%02x.%x", dom, bus, slot >> 3, slot & 7);
        }
    }
}

static void fill_rec(ocl_devrec *r) {
    hetrun_device_info *in = &r->info;
    cl_device_id d = r->id;
    memset(in, 0, sizeof *in);
    in->struct_size = sizeof *in;
    get_str(d, CL_DEVICE_NAME, in->name, sizeof in->name);
    get_str(d, CL_DEVICE_VENDOR, in->vendor, sizeof in->vendor);
    get_str(d, CL_DRIVER_VERSION, in->driver_version, sizeof in->driver_version);
    get_str(d, CL_DEVICE_OPENCL_C_VERSION, in->arch, sizeof in->arch);
    char exts[8192];
    get_str(d, CL_DEVICE_EXTENSIONS, exts, sizeof exts);
    pci_bus_id(d, exts, in->pci_bus_id, sizeof in->pci_bus_id);
    r->has_fp64 = has_ext(exts, "cl_khr_fp64");
    if (has_ext(exts, "cl_khr_device_uuid")) {
        unsigned char u[16];
        if (clGetDeviceInfo(d, 0x106A /* CL_DEVICE_UUID_KHR */, sizeof u, u, NULL) == CL_SUCCESS)
            snprintf(in->uuid, sizeof in->uuid,
                     "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", u[0],
                     u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12],
                     u[13], u[14], u[15]);
    }
    cl_ulong mem = 0, maxa = 0;
    cl_uint cu = 0, clk = 0, vec = 0;
    cl_device_type type = 0;
    if (clGetDeviceInfo(d, CL_DEVICE_TYPE, sizeof type, &type, NULL) != CL_SUCCESS) type = 0;
    if (clGetDeviceInfo(d, CL_DEVICE_GLOBAL_MEM_SIZE, sizeof mem, &mem, NULL) != CL_SUCCESS)
        mem = 0;
    if (clGetDeviceInfo(d, CL_DEVICE_MAX_MEM_ALLOC_SIZE, sizeof maxa, &maxa, NULL) != CL_SUCCESS)
        maxa = 0;
    if (clGetDeviceInfo(d, CL_DEVICE_MAX_COMPUTE_UNITS, sizeof cu, &cu, NULL) != CL_SUCCESS) cu = 0;
    if (clGetDeviceInfo(d, CL_DEVICE_MAX_CLOCK_FREQUENCY, sizeof clk, &clk, NULL) != CL_SUCCESS)
        clk = 0;
    if (clGetDeviceInfo(d, CL_DEVICE_NATIVE_VECTOR_WIDTH_FLOAT, sizeof vec, &vec, NULL) !=
        CL_SUCCESS)
        vec = 0;
    if (clGetDeviceInfo(d, CL_DEVICE_MAX_WORK_GROUP_SIZE, sizeof r->max_wg, &r->max_wg, NULL) !=
        CL_SUCCESS)
        r->max_wg = 1;
    if (clGetDeviceInfo(d, CL_DEVICE_LOCAL_MEM_SIZE, sizeof r->local_mem, &r->local_mem, NULL) !=
        CL_SUCCESS)
        r->local_mem = 0;
    if (clGetDeviceInfo(d, CL_DEVICE_MEM_BASE_ADDR_ALIGN, sizeof r->base_align_bits,
                        &r->base_align_bits, NULL) != CL_SUCCESS)
        r->base_align_bits = 0;
    r->type = type;
    in->kind = (type & CL_DEVICE_TYPE_GPU)   ? HETRUN_DEVICE_GPU
               : (type & CL_DEVICE_TYPE_CPU) ? HETRUN_DEVICE_CPU
                                             : HETRUN_DEVICE_ACCELERATOR;
    in->memory_bytes = mem;
    in->max_alloc_bytes = maxa;
    in->compute_units = cu;
    in->clock_mhz = clk;
    /* Peak fp32 estimate: one FMA of native vector width per cycle per CPU core; GPU lanes
     * per CU only where the vendor's layout is known (NVIDIA 128, AMD 64); otherwise 0. */
    double lanes = 0.0;
    if (in->kind == HETRUN_DEVICE_CPU)
        lanes = vec;
    else if (strstr(in->vendor, "NVIDIA"))
        lanes = 128;
    else if (strstr(in->vendor, "Advanced Micro Devices") || strstr(in->vendor, "AMD"))
        lanes = 64;
    double peak = (double)cu * clk * 1e6 * 2.0 * lanes;
    /* f16/bf16 are storage formats here: arithmetic runs at the fp32 rate. */
    in->peak_flops[HETRUN_F32] = peak;
    in->peak_flops[HETRUN_F16] = peak;
    in->peak_flops[HETRUN_BF16] = peak;
    /* fp64 at half the fp32 lanes on CPUs; GPU fp64 ratios vary too much to guess. */
    if (r->has_fp64 && in->kind == HETRUN_DEVICE_CPU) in->peak_flops[HETRUN_F64] = peak / 2;
    in->visibility_env[0] = 0; /* OpenCL has no portable visibility variable */
}

static hetrun_status ocl_init(const hetrun_host_services *host) {
    ocl_host = host;
    /* PoCL's CPU driver starts one worker per core unless told otherwise; several ranks per
     * node would oversubscribe. Give it the rank's share, unless the user chose already.
     * Read at PoCL's platform init, so this only acts before the first OpenCL call. */
    if (host && host->cpu_threads >= 1 && !getenv("POCL_MAX_PTHREAD_COUNT")) {
        char v[16];
        snprintf(v, sizeof v, "%d", (int)host->cpu_threads);
        if (setenv("POCL_MAX_PTHREAD_COUNT", v, 0) == 0)
            ocl_log(HETRUN_LOG_DEBUG, "POCL_MAX_PTHREAD_COUNT=%s (host cpu_threads)", v);
    }
    cl_uint np = 0;
    cl_int err = clGetPlatformIDs(0, NULL, &np);
    if (err == -1001 /* CL_PLATFORM_NOT_FOUND_KHR */ || (err == CL_SUCCESS && np == 0))
        return ocl_fail(HETRUN_ERR_UNAVAILABLE,
                        "no OpenCL platform: the ICD loader found no vendor driver "
                        "(clGetPlatformIDs: %s, 0 platforms; check /etc/OpenCL/vendors)",
                        ocl_err_name(err));
    if (err != CL_SUCCESS)
        return ocl_fail(HETRUN_ERR_UNAVAILABLE, "clGetPlatformIDs failed: %s", ocl_err_name(err));
    cl_platform_id *pl = calloc(np, sizeof *pl);
    if (!pl) return ocl_fail(HETRUN_ERR_NO_MEMORY, "out of host memory listing %u platforms", np);
    err = clGetPlatformIDs(np, pl, NULL);
    if (err != CL_SUCCESS) {
        free(pl);
        return ocl_fail(HETRUN_ERR_UNAVAILABLE, "clGetPlatformIDs failed: %s", ocl_err_name(err));
    }
    ndevs = 0;
    devs = NULL;
    for (cl_uint p = 0; p < np; p++) {
        cl_uint nd = 0;
        err = clGetDeviceIDs(pl[p], CL_DEVICE_TYPE_ALL, 0, NULL, &nd);
        if (err == CL_DEVICE_NOT_FOUND || nd == 0) continue;
        if (err != CL_SUCCESS) {
            ocl_log(HETRUN_LOG_WARN, "platform %u: clGetDeviceIDs failed: %s; skipped", p,
                    ocl_err_name(err));
            continue;
        }
        cl_device_id *ids = calloc(nd, sizeof *ids);
        ocl_devrec *grown = realloc(devs, (size_t)(ndevs + (int)nd) * sizeof *devs);
        if (!ids || !grown) {
            free(ids);
            free(grown ? grown : devs);
            devs = NULL;
            free(pl);
            return ocl_fail(HETRUN_ERR_NO_MEMORY, "out of host memory listing %u devices", nd);
        }
        devs = grown;
        if (clGetDeviceIDs(pl[p], CL_DEVICE_TYPE_ALL, nd, ids, NULL) == CL_SUCCESS) {
            for (cl_uint i = 0; i < nd; i++) {
                ocl_devrec *r = &devs[ndevs++];
                memset(r, 0, sizeof *r);
                r->platform = pl[p];
                r->id = ids[i];
                fill_rec(r);
                ocl_log(HETRUN_LOG_INFO, "device %d: %s (%s, %s, %u CUs, %" PRIu64 " MiB)",
                        ndevs - 1, r->info.name, r->info.vendor, r->info.driver_version,
                        r->info.compute_units, r->info.memory_bytes >> 20);
            }
        }
        free(ids);
    }
    free(pl);
    if (ndevs == 0) {
        free(devs);
        devs = NULL;
        return ocl_fail(HETRUN_ERR_UNAVAILABLE,
                        "no OpenCL device: %u platform(s) found but none has a device", np);
    }
    return HETRUN_OK;
}

static void ocl_finalize(void) {
    free(devs);
    devs = NULL;
    ndevs = 0;
}

static hetrun_status ocl_device_count(int32_t *count) {
    if (!count) return ocl_fail(HETRUN_ERR_INVALID, "device_count: count is NULL");
    *count = ndevs;
    return HETRUN_OK;
}

static hetrun_status ocl_device_info(int32_t index, hetrun_device_info *info) {
    if (!info) return ocl_fail(HETRUN_ERR_INVALID, "device_info: info is NULL");
    if (index < 0 || index >= ndevs)
        return ocl_fail(HETRUN_ERR_INVALID, "device_info: index %d out of range (%d devices)",
                        index, ndevs);
    uint32_t want = info->struct_size;
    size_t n = want < sizeof *info ? want : sizeof *info;
    hetrun_device_info copy = devs[index].info;
    copy.struct_size = (uint32_t)n;
    memcpy(info, &copy, n);
    return HETRUN_OK;
}

static hetrun_status ocl_device_open(int32_t index, hetrun_device **out) {
    if (!out) return ocl_fail(HETRUN_ERR_INVALID, "device_open: out is NULL");
    if (index < 0 || index >= ndevs)
        return ocl_fail(HETRUN_ERR_INVALID, "device_open: index %d out of range (%d devices)",
                        index, ndevs);
    ocl_devrec *r = &devs[index];
    if (r->open)
        return ocl_fail(HETRUN_ERR_INVALID, "device_open: device %d '%s' is already open", index,
                        r->info.name);
    hetrun_device *d = calloc(1, sizeof *d);
    if (!d) return ocl_fail(HETRUN_ERR_NO_MEMORY, "device_open: out of host memory");
    cl_context_properties props[] = {CL_CONTEXT_PLATFORM, (cl_context_properties)r->platform, 0};
    cl_int err;
    d->ctx = clCreateContext(props, 1, &r->id, NULL, NULL, &err);
    if (!d->ctx) {
        free(d);
        return ocl_fail(ocl_status_of(err), "clCreateContext failed: %s for device %d '%s'",
                        ocl_err_name(err), index, r->info.name);
    }
    d->index = index;
    d->rec = r;
    pthread_mutex_init(&d->lock, NULL);
    /* GEMM register block: CPUs (PoCL) run fastest with an 8 x 16 block of private
     * accumulators (measured, see bench/results/opencl.md); GPUs get 4 x 8 to keep
     * register pressure and occupancy reasonable. */
    if (r->type & CL_DEVICE_TYPE_CPU) {
        d->mr = 8;
        d->nr = 16;
    } else {
        d->mr = 4;
        d->nr = 8;
    }
    /* Override for tuning runs: HETRUN_OPENCL_GEMM_BLOCK=<MR>x<NR>, MR 4|8, NR 4|8|16. */
    const char *blk = getenv("HETRUN_OPENCL_GEMM_BLOCK");
    if (blk && *blk) {
        int mr = 0, nr = 0;
        if (sscanf(blk, "%dx%d", &mr, &nr) == 2 && (mr == 4 || mr == 8) &&
            (nr == 4 || nr == 8 || nr == 16)) {
            d->mr = mr;
            d->nr = nr;
        } else {
            ocl_log(HETRUN_LOG_WARN,
                    "HETRUN_OPENCL_GEMM_BLOCK='%s' ignored: want MRxNR with MR 4 or 8 and NR 4, "
                    "8 or 16; using %dx%d",
                    blk, d->mr, d->nr);
        }
    }
    ocl_log(HETRUN_LOG_DEBUG, "device %d '%s': GEMM register block %dx%d", index, r->info.name,
            d->mr, d->nr);
    d->wg = r->max_wg >= 64 ? 64 : r->max_wg;
    r->open = 1;
    *out = d;
    return HETRUN_OK;
}

static void ocl_device_close(hetrun_device *d) {
    if (!d) return;
    if (d->prog) clReleaseProgram(d->prog);
    clReleaseContext(d->ctx);
    pthread_mutex_destroy(&d->lock);
    d->rec->open = 0;
    free(d);
}

/* ---- memory ---- */

static hetrun_status ocl_mem_alloc(hetrun_device *dev, uint64_t bytes, hetrun_buffer **out) {
    if (!dev || !out) return ocl_fail(HETRUN_ERR_INVALID, "mem_alloc: NULL device or out");
    if (bytes == 0) return ocl_fail(HETRUN_ERR_INVALID, "mem_alloc: size 0");
    if (dev->rec->info.max_alloc_bytes && bytes > dev->rec->info.max_alloc_bytes)
        return ocl_fail(HETRUN_ERR_NO_MEMORY,
                        "mem_alloc: %" PRIu64 " bytes exceeds CL_DEVICE_MAX_MEM_ALLOC_SIZE %" PRIu64
                        " on '%s'",
                        bytes, dev->rec->info.max_alloc_bytes, dev->rec->info.name);
    hetrun_buffer *b = calloc(1, sizeof *b);
    if (!b) return ocl_fail(HETRUN_ERR_NO_MEMORY, "mem_alloc: out of host memory");
    cl_int err;
    b->mem = clCreateBuffer(dev->ctx, CL_MEM_READ_WRITE, (size_t)bytes, NULL, &err);
    if (!b->mem) {
        free(b);
        return ocl_fail(ocl_status_of(err), "clCreateBuffer(%" PRIu64 " bytes) failed: %s on '%s'",
                        bytes, ocl_err_name(err), dev->rec->info.name);
    }
    b->dev = dev;
    b->bytes = bytes;
    pthread_mutex_lock(&dev->lock);
    dev->mem_in_use += bytes;
    if (dev->mem_in_use > dev->mem_peak) dev->mem_peak = dev->mem_in_use;
    pthread_mutex_unlock(&dev->lock);
    *out = b;
    return HETRUN_OK;
}

static void ocl_mem_free(hetrun_buffer *b) {
    if (!b) return;
    pthread_mutex_lock(&b->dev->lock);
    b->dev->mem_in_use -= b->bytes;
    pthread_mutex_unlock(&b->dev->lock);
    clReleaseMemObject(b->mem);
    free(b);
}

static hetrun_status check_region(const char *what, hetrun_queue *q, hetrun_tensor t,
                                  uint64_t bytes) {
    if (!q) return ocl_fail(HETRUN_ERR_INVALID, "%s: queue is NULL", what);
    if (!t.buffer) return ocl_fail(HETRUN_ERR_INVALID, "%s: buffer is NULL", what);
    if (t.buffer->dev != q->dev)
        return ocl_fail(HETRUN_ERR_INVALID, "%s: buffer belongs to another device", what);
    if (t.offset > t.buffer->bytes || bytes > t.buffer->bytes - t.offset)
        return ocl_fail(HETRUN_ERR_INVALID,
                        "%s: %" PRIu64 " bytes at offset %" PRIu64 " overrun a buffer of %" PRIu64
                        " bytes",
                        what, bytes, t.offset, t.buffer->bytes);
    return HETRUN_OK;
}

static hetrun_status ocl_copy_h2d(hetrun_queue *q, hetrun_tensor dst, const void *src,
                                  uint64_t bytes) {
    hetrun_status st = check_region("copy_h2d", q, dst, bytes);
    if (st) return st;
    if (bytes == 0) return HETRUN_OK;
    if (!src) return ocl_fail(HETRUN_ERR_INVALID, "copy_h2d: src is NULL");
    CL_CHECK(clEnqueueWriteBuffer(q->q, dst.buffer->mem, CL_TRUE, (size_t)dst.offset, (size_t)bytes,
                                  src, 0, NULL, NULL),
             "clEnqueueWriteBuffer(%" PRIu64 " bytes at offset %" PRIu64 ") failed: %s", bytes,
             dst.offset);
    return HETRUN_OK;
}

static hetrun_status ocl_copy_d2h(hetrun_queue *q, void *dst, hetrun_tensor src, uint64_t bytes) {
    hetrun_status st = check_region("copy_d2h", q, src, bytes);
    if (st) return st;
    if (bytes == 0) return HETRUN_OK;
    if (!dst) return ocl_fail(HETRUN_ERR_INVALID, "copy_d2h: dst is NULL");
    CL_CHECK(clEnqueueReadBuffer(q->q, src.buffer->mem, CL_TRUE, (size_t)src.offset, (size_t)bytes,
                                 dst, 0, NULL, NULL),
             "clEnqueueReadBuffer(%" PRIu64 " bytes at offset %" PRIu64 ") failed: %s", bytes,
             src.offset);
    return HETRUN_OK;
}

static hetrun_status ocl_copy_d2d(hetrun_queue *q, hetrun_tensor dst, hetrun_tensor src,
                                  uint64_t bytes) {
    hetrun_status st = check_region("copy_d2d (dst)", q, dst, bytes);
    if (!st) st = check_region("copy_d2d (src)", q, src, bytes);
    if (st) return st;
    if (bytes == 0) return HETRUN_OK;
    if (dst.buffer == src.buffer && dst.offset < src.offset + bytes &&
        src.offset < dst.offset + bytes)
        return ocl_fail(HETRUN_ERR_INVALID,
                        "copy_d2d: overlapping regions in one buffer (%" PRIu64 " bytes, "
                        "offsets %" PRIu64 " and %" PRIu64 ")",
                        bytes, src.offset, dst.offset);
    CL_CHECK(clEnqueueCopyBuffer(q->q, src.buffer->mem, dst.buffer->mem, (size_t)src.offset,
                                 (size_t)dst.offset, (size_t)bytes, 0, NULL, NULL),
             "clEnqueueCopyBuffer(%" PRIu64 " bytes) failed: %s", bytes);
    return HETRUN_OK;
}

/* ---- queues and events ---- */

static hetrun_status ocl_queue_create(hetrun_device *dev, hetrun_queue **out) {
    if (!dev || !out) return ocl_fail(HETRUN_ERR_INVALID, "queue_create: NULL device or out");
    hetrun_queue *q = calloc(1, sizeof *q);
    if (!q) return ocl_fail(HETRUN_ERR_NO_MEMORY, "queue_create: out of host memory");
    cl_int err;
    q->q = clCreateCommandQueue(dev->ctx, dev->rec->id, CL_QUEUE_PROFILING_ENABLE, &err);
    if (!q->q) {
        free(q);
        return ocl_fail(ocl_status_of(err), "clCreateCommandQueue failed: %s on '%s'",
                        ocl_err_name(err), dev->rec->info.name);
    }
    q->dev = dev;
    *out = q;
    return HETRUN_OK;
}

static void ocl_queue_destroy(hetrun_queue *q) {
    if (!q) return;
    clFinish(q->q);
    for (int i = 0; i < HR_K_COUNT; i++)
        if (q->k[i]) clReleaseKernel(q->k[i]);
    if (q->scratch) clReleaseMemObject(q->scratch);
    clReleaseCommandQueue(q->q);
    free(q);
}

static hetrun_status ocl_queue_sync(hetrun_queue *q) {
    if (!q) return ocl_fail(HETRUN_ERR_INVALID, "queue_sync: queue is NULL");
    CL_CHECK(clFinish(q->q), "clFinish failed: %s (an earlier kernel on '%s' failed)",
             q->dev->rec->info.name);
    return HETRUN_OK;
}

static hetrun_status ocl_event_create(hetrun_device *dev, hetrun_event **out) {
    if (!dev || !out) return ocl_fail(HETRUN_ERR_INVALID, "event_create: NULL device or out");
    hetrun_event *e = calloc(1, sizeof *e);
    if (!e) return ocl_fail(HETRUN_ERR_NO_MEMORY, "event_create: out of host memory");
    e->dev = dev;
    *out = e;
    return HETRUN_OK;
}

static void ocl_event_destroy(hetrun_event *e) {
    if (!e) return;
    if (e->ev) clReleaseEvent(e->ev);
    free(e);
}

static hetrun_status ocl_event_record(hetrun_event *e, hetrun_queue *q) {
    if (!e || !q) return ocl_fail(HETRUN_ERR_INVALID, "event_record: NULL event or queue");
    cl_event ev;
    CL_CHECK(clEnqueueMarkerWithWaitList(q->q, 0, NULL, &ev),
             "clEnqueueMarkerWithWaitList failed: %s");
    if (e->ev) clReleaseEvent(e->ev);
    e->ev = ev;
    return HETRUN_OK;
}

static hetrun_status ocl_event_elapsed_ms(hetrun_event *s, hetrun_event *e, double *ms) {
    if (!s || !e || !ms) return ocl_fail(HETRUN_ERR_INVALID, "event_elapsed_ms: NULL argument");
    if (!s->ev || !e->ev)
        return ocl_fail(HETRUN_ERR_INVALID, "event_elapsed_ms: event was never recorded");
    cl_event both[2] = {s->ev, e->ev};
    CL_CHECK(clWaitForEvents(2, both), "clWaitForEvents failed: %s");
    cl_ulong t0, t1;
    CL_CHECK(clGetEventProfilingInfo(s->ev, CL_PROFILING_COMMAND_END, sizeof t0, &t0, NULL),
             "clGetEventProfilingInfo(start, CL_PROFILING_COMMAND_END) failed: %s");
    CL_CHECK(clGetEventProfilingInfo(e->ev, CL_PROFILING_COMMAND_END, sizeof t1, &t1, NULL),
             "clGetEventProfilingInfo(end, CL_PROFILING_COMMAND_END) failed: %s");
    *ms = t1 >= t0 ? (double)(t1 - t0) * 1e-6 : -(double)(t0 - t1) * 1e-6;
    return HETRUN_OK;
}

static hetrun_status ocl_memory_peak(hetrun_device *dev, uint64_t *bytes) {
    if (!dev || !bytes) return ocl_fail(HETRUN_ERR_INVALID, "memory_peak: NULL argument");
    pthread_mutex_lock(&dev->lock);
    *bytes = dev->mem_peak;
    pthread_mutex_unlock(&dev->lock);
    return HETRUN_OK;
}

static const hetrun_backend_ops ops = {
    .abi_major = HETRUN_ABI_MAJOR,
    .abi_minor = HETRUN_ABI_MINOR,
    .struct_size = sizeof(hetrun_backend_ops),
    .name = "opencl",
    .version = HETRUN_VERSION,
    .init = ocl_init,
    .finalize = ocl_finalize,
    .last_error = ocl_last_error,
    .thread_bind = NULL,
    .device_count = ocl_device_count,
    .device_info = ocl_device_info,
    .device_open = ocl_device_open,
    .device_close = ocl_device_close,
    .mem_alloc = ocl_mem_alloc,
    .mem_free = ocl_mem_free,
    .copy_h2d = ocl_copy_h2d,
    .copy_d2h = ocl_copy_d2h,
    .copy_d2d = ocl_copy_d2d,
    .queue_create = ocl_queue_create,
    .queue_destroy = ocl_queue_destroy,
    .queue_sync = ocl_queue_sync,
    .event_create = ocl_event_create,
    .event_destroy = ocl_event_destroy,
    .event_record = ocl_event_record,
    .event_elapsed_ms = ocl_event_elapsed_ms,
    .op_supported = ocl_op_supported,
    .op_workspace_size = ocl_op_workspace_size,
    .op_run = ocl_op_run,
    .energy_joules = NULL,
    .memory_peak = ocl_memory_peak,
};

/** The module's one exported symbol: the ABI v1 ops table. */
HETRUN_BACKEND_EXPORT const hetrun_backend_ops *hetrun_backend_entry(void) {
    return &ops;
}
