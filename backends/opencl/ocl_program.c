/* Builds the per-device program from the embedded kernel sources, with an on-disk cache
 * of compiled binaries under host->cache_dir/opencl (see docs/backends/opencl.md). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ocl_internal.h"

extern const char hr_cl_prelude[], hr_cl_elementwise[], hr_cl_gemm[], hr_cl_transformer[],
    hr_cl_attention[], hr_cl_gemm_int8[], hr_cl_index[];

static const char *const kbase[HR_K_BASE_COUNT] = {[HR_K_FILL] = "fill",
                                                   [HR_K_SCALE] = "scale",
                                                   [HR_K_AXPY] = "axpy",
                                                   [HR_K_MUL] = "mul",
                                                   [HR_K_BIAS_ADD] = "bias_add",
                                                   [HR_K_ACT_FWD] = "act_fwd",
                                                   [HR_K_ACT_BWD] = "act_bwd",
                                                   [HR_K_XENT_BWD] = "xent_bwd",
                                                   [HR_K_SGD] = "sgd",
                                                   [HR_K_ADAMW] = "adamw",
                                                   [HR_K_CAST_TO_F32] = "cast_to_f32",
                                                   [HR_K_CAST_FROM_F32] = "cast_from_f32",
                                                   [HR_K_SOFTMAX] = "softmax",
                                                   [HR_K_XENT_FWD] = "xent_fwd",
                                                   [HR_K_LAYERNORM] = "layernorm",
                                                   [HR_K_REDUCE0] = "reduce0",
                                                   [HR_K_REDUCE1] = "reduce1",
                                                   [HR_K_GEMM_PACK_A] = "gemm_pack_a",
                                                   [HR_K_GEMM_PACK_B] = "gemm_pack_b",
                                                   [HR_K_GEMM_MICRO] = "gemm_micro",
                                                   [HR_K_LN_BWD_DX] = "layernorm_bwd_dx",
                                                   [HR_K_LN_BWD_DGB] = "layernorm_bwd_dgb",
                                                   [HR_K_SOFTMAX_BWD] = "softmax_bwd",
                                                   [HR_K_EMB_FWD] = "emb_fwd",
                                                   [HR_K_EMB_BWD] = "emb_bwd",
                                                   [HR_K_NONFINITE_PART] = "nonfinite_part",
                                                   [HR_K_SUMSQ_PART] = "sumsq_part",
                                                   [HR_K_SUMSQ_FINAL] = "sumsq_final",
                                                   [HR_K_ATT_FWD] = "attn_fwd",
                                                   [HR_K_ATT_DELTA] = "attn_bwd_delta",
                                                   [HR_K_ATT_DQ] = "attn_bwd_dq",
                                                   [HR_K_ATT_DKV] = "attn_bwd_dkv"};
static const char *const single[HR_S_COUNT] = {[HR_S_GEMM_I8] = "gemm_i8",
                                               [HR_S_EMB_SORT] = "emb_sort",
                                               [HR_S_NONFINITE_FINAL] = "nonfinite_final"};
static const char *const dsuf[HR_DT_COUNT] = {"f32", "f16", "bf16", "f64"};

/* Per-dtype macro headers that instantiate elementwise.cl, gemm.cl, transformer.cl and
 * (not for f64, which attention does not take) attention.cl. The f64 one opens
 * an #ifdef cl_khr_fp64 that dtype_close[] shuts, so devices without fp64 still build. */
#define HR_F32_CT "#define CT float\n#define C(x) x##f\n"
static const char *const dtype_hdr[HR_DT_COUNT] = {
    "\n#define SUF f32\n#define ST_T float\n" HR_F32_CT "#define HR_VEC_C 1\n"
    "#define LD(p, i) ((p)[i])\n#define ST(p, i, v) ((p)[i] = (v))\n",
    "\n#define SUF f16\n#define ST_T half\n" HR_F32_CT "#define HR_VEC_C 0\n"
    "#define LD(p, i) vload_half((i), (p))\n#define ST(p, i, v) vstore_half_rte((v), (i), (p))\n",
    "\n#define SUF bf16\n#define ST_T ushort\n" HR_F32_CT "#define HR_VEC_C 0\n"
    "#define LD(p, i) hr_bf16_ld((p), (i))\n#define ST(p, i, v) hr_bf16_st((p), (i), (v))\n",
    "\n#ifdef cl_khr_fp64\n#pragma OPENCL EXTENSION cl_khr_fp64 : enable\n"
    "#define SUF f64\n#define ST_T double\n#define CT double\n#define C(x) x\n#define HR_VEC_C 1\n"
    "#define LD(p, i) ((p)[i])\n#define ST(p, i, v) ((p)[i] = (v))\n"};
static const char dtype_undef[] =
    "\n#undef SUF\n#undef ST_T\n#undef CT\n#undef C\n#undef HR_VEC_C\n#undef LD\n#undef ST\n"
    "#undef KN\n#undef HR_VA\n#undef HR_VB\n#undef HR_VLOADA\n#undef HR_VLOADB\n#undef "
    "HR_VSTOREB\n#undef HR_ATT_ARGS\n";
static const char *const dtype_close[HR_DT_COUNT] = {"", "", "", "\n#endif\n"};

#define NSRC (3 + 7 * HR_DT_COUNT)

static void program_sources(const char *src[NSRC]) {
    int n = 0;
    src[n++] = hr_cl_prelude;
    for (int d = 0; d < HR_DT_COUNT; d++) {
        src[n++] = dtype_hdr[d];
        src[n++] = hr_cl_elementwise;
        src[n++] = hr_cl_gemm;
        src[n++] = hr_cl_transformer;
        src[n++] = d == HR_DT_F64 ? "" : hr_cl_attention;
        src[n++] = dtype_undef;
        src[n++] = dtype_close[d];
    }
    src[n++] = hr_cl_gemm_int8;
    src[n++] = hr_cl_index;
}

const char *ocl_kernel_name(int id, char *buf, size_t len) {
    if (id >= HR_K_SINGLE) {
        snprintf(buf, len, "%s", single[id - HR_K_SINGLE]);
        return buf;
    }
    snprintf(buf, len, "%s_%s", kbase[id % HR_K_BASE_COUNT], dsuf[id / HR_K_BASE_COUNT]);
    return buf;
}

/* ---- disk cache ---- */

#define CACHE_MAGIC "HRCLPRG1"
#define CACHE_MAX_BYTES (512u << 20)

typedef struct cache_header {
    char magic[8];
    uint32_t version; /* layout of this header */
    uint32_t key_len;
    uint64_t bin_len;
    uint64_t checksum; /* FNV-1a over key bytes then binary bytes */
} cache_header;

static int mkdir_p(const char *path) {
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s", path) >= (int)sizeof tmp) return -1;
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(tmp, 0755) != 0 && errno != EEXIST) return -1;
        *p = '/';
    }
    return (mkdir(tmp, 0755) != 0 && errno != EEXIST) ? -1 : 0;
}

/* Reads and verifies a cache file; returns a malloc'd binary or NULL with `why` set. */
static unsigned char *cache_read(const char *path, const char *key, size_t *bin_len, char *why,
                                 size_t why_len) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(why, why_len, "no entry (%s)", strerror(errno));
        return NULL;
    }
    cache_header h;
    unsigned char *bin = NULL;
    char *k = NULL;
    size_t klen = strlen(key);
    if (fread(&h, sizeof h, 1, f) != 1 || memcmp(h.magic, CACHE_MAGIC, 8) != 0 || h.version != 1) {
        snprintf(why, why_len, "bad header");
        goto out;
    }
    if (h.key_len != klen || h.bin_len == 0 || h.bin_len > CACHE_MAX_BYTES) {
        snprintf(why, why_len, "key length %u or binary length %" PRIu64 " does not match",
                 h.key_len, h.bin_len);
        goto out;
    }
    k = malloc(klen + 1);
    bin = malloc(h.bin_len);
    if (!k || !bin || fread(k, 1, klen, f) != klen || fread(bin, 1, h.bin_len, f) != h.bin_len) {
        snprintf(why, why_len, "truncated");
        goto fail;
    }
    if (fgetc(f) != EOF) {
        snprintf(why, why_len, "trailing bytes");
        goto fail;
    }
    if (memcmp(k, key, klen) != 0) {
        snprintf(why, why_len, "stale (key differs: other device, driver, source or options)");
        goto fail;
    }
    uint64_t sum = ocl_fnv1a(ocl_fnv1a(OCL_FNV_INIT, k, klen), bin, h.bin_len);
    if (sum != h.checksum) {
        snprintf(why, why_len, "checksum mismatch (corrupt)");
        goto fail;
    }
    *bin_len = h.bin_len;
    goto out;
fail:
    free(bin);
    bin = NULL;
out:
    free(k);
    fclose(f);
    return bin;
}

/* Writes atomically: a temp file in the same folder, then rename over the entry. */
static void cache_write(const char *path, const char *key, const unsigned char *bin, size_t len) {
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        ocl_log(HETRUN_LOG_WARN, "program cache: cannot write %s: %s", tmp, strerror(errno));
        return;
    }
    cache_header h;
    memset(&h, 0, sizeof h);
    memcpy(h.magic, CACHE_MAGIC, 8);
    h.version = 1;
    h.key_len = (uint32_t)strlen(key);
    h.bin_len = len;
    h.checksum = ocl_fnv1a(ocl_fnv1a(OCL_FNV_INIT, key, h.key_len), bin, len);
    int ok = fwrite(&h, sizeof h, 1, f) == 1 && fwrite(key, 1, h.key_len, f) == h.key_len &&
             fwrite(bin, 1, len, f) == len;
    ok = (fflush(f) == 0) && ok && fsync(fileno(f)) == 0;
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, path) != 0) {
        ocl_log(HETRUN_LOG_WARN, "program cache: writing %s failed: %s", path, strerror(errno));
        unlink(tmp);
    }
}

static hetrun_status build_failed(hetrun_device *dev, cl_program prog, cl_int err,
                                  const char *opts) {
    size_t len = 0;
    char *log = NULL;
    if (clGetProgramBuildInfo(prog, dev->rec->id, CL_PROGRAM_BUILD_LOG, 0, NULL, &len) ==
            CL_SUCCESS &&
        (log = malloc(len + 1)) != NULL) {
        if (clGetProgramBuildInfo(prog, dev->rec->id, CL_PROGRAM_BUILD_LOG, len, log, NULL) !=
            CL_SUCCESS)
            len = 0;
        log[len] = 0;
    }
    ocl_log(HETRUN_LOG_ERROR, "clBuildProgram log for device '%s':\n%s", dev->rec->info.name,
            log ? log : "(none)");
    hetrun_status st = ocl_fail(
        HETRUN_ERR_DEVICE,
        "clBuildProgram failed: %s building kernels "
        "(prelude.cl, elementwise.cl, gemm.cl, transformer.cl, attention.cl, gemm_int8.cl, "
        "index.cl) for device %d '%s' "
        "with options '%s'; build log: %s",
        ocl_err_name(err), dev->index, dev->rec->info.name, opts, log && *log ? log : "(empty)");
    free(log);
    return st;
}

hetrun_status ocl_program_get(hetrun_device *dev) {
    pthread_mutex_lock(&dev->lock);
    if (dev->prog) {
        pthread_mutex_unlock(&dev->lock);
        return HETRUN_OK;
    }
    hetrun_status st = HETRUN_OK;
    const char *src[NSRC];
    program_sources(src);
    uint64_t h = OCL_FNV_INIT;
    for (int i = 0; i < NSRC; i++)
        h = ocl_fnv1a(h, src[i], strlen(src[i]) + 1);
    char opts[256];
    snprintf(opts, sizeof opts, "-cl-std=CL1.2 -DHR_MR=%d -DHR_NR=%d", dev->mr, dev->nr);
    char key[1024];
    snprintf(key, sizeof key, "device=%s|driver=%s|version=%s|source=%016" PRIx64 "|options=%s",
             dev->rec->info.name, dev->rec->info.driver_version, dev->rec->info.arch, h, opts);

    cl_device_id did = dev->rec->id;
    cl_program prog = NULL;
    cl_int err;
    char path[4096] = "";
    const char *cache = ocl_host ? ocl_host->cache_dir : NULL;
    if (cache && *cache) {
        char dir[4000];
        snprintf(dir, sizeof dir, "%s/opencl", cache);
        if (mkdir_p(dir) != 0)
            ocl_log(HETRUN_LOG_WARN, "program cache: cannot create %s: %s; not caching", dir,
                    strerror(errno));
        else
            snprintf(path, sizeof path, "%s/%016" PRIx64 ".clbin", dir,
                     ocl_fnv1a(OCL_FNV_INIT, key, strlen(key)));
    }
    if (*path) {
        char why[256];
        size_t blen = 0;
        unsigned char *bin = cache_read(path, key, &blen, why, sizeof why);
        if (bin) {
            const unsigned char *bins[1] = {bin};
            cl_int bst = CL_SUCCESS;
            prog = clCreateProgramWithBinary(dev->ctx, 1, &did, &blen, bins, &bst, &err);
            if (prog && err == CL_SUCCESS && bst == CL_SUCCESS)
                err = clBuildProgram(prog, 1, &did, opts, NULL, NULL);
            if (!prog || err != CL_SUCCESS || bst != CL_SUCCESS) {
                snprintf(why, sizeof why, "driver refused the binary: %s",
                         ocl_err_name(err != CL_SUCCESS ? err : bst));
                if (prog) clReleaseProgram(prog);
                prog = NULL;
            }
            free(bin);
        }
        if (prog)
            ocl_log(HETRUN_LOG_DEBUG, "program cache hit %s for '%s'", path, dev->rec->info.name);
        else if (strncmp(why, "no entry", 8) == 0)
            ocl_log(HETRUN_LOG_INFO, "program cache miss %s for '%s': building", path,
                    dev->rec->info.name);
        else
            ocl_log(HETRUN_LOG_WARN, "program cache entry %s rejected: %s; rebuilding", path, why);
    }
    if (!prog) {
        prog = clCreateProgramWithSource(dev->ctx, NSRC, src, NULL, &err);
        if (!prog) {
            st = ocl_fail(ocl_status_of(err), "clCreateProgramWithSource failed: %s (device '%s')",
                          ocl_err_name(err), dev->rec->info.name);
            goto out;
        }
        err = clBuildProgram(prog, 1, &did, opts, NULL, NULL);
        if (err != CL_SUCCESS) {
            st = build_failed(dev, prog, err, opts);
            clReleaseProgram(prog);
            goto out;
        }
        if (*path) {
            size_t blen = 0;
            unsigned char *bin = NULL;
            err = clGetProgramInfo(prog, CL_PROGRAM_BINARY_SIZES, sizeof blen, &blen, NULL);
            if (err == CL_SUCCESS && blen > 0 && (bin = malloc(blen)) != NULL) {
                unsigned char *bins[1] = {bin};
                err = clGetProgramInfo(prog, CL_PROGRAM_BINARIES, sizeof bins, bins, NULL);
                if (err == CL_SUCCESS) cache_write(path, key, bin, blen);
            }
            if (err != CL_SUCCESS)
                ocl_log(HETRUN_LOG_WARN, "program cache: clGetProgramInfo(BINARIES) failed: %s",
                        ocl_err_name(err));
            free(bin);
        }
    }
    dev->prog = prog;
out:
    pthread_mutex_unlock(&dev->lock);
    return st;
}

hetrun_status ocl_kernel_get(hetrun_queue *q, int id, cl_kernel *out) {
    if (q->k[id]) {
        *out = q->k[id];
        return HETRUN_OK;
    }
    hetrun_status st = ocl_program_get(q->dev);
    if (st != HETRUN_OK) return st;
    char name[64];
    cl_int err;
    cl_kernel k = clCreateKernel(q->dev->prog, ocl_kernel_name(id, name, sizeof name), &err);
    if (!k)
        return ocl_fail(ocl_status_of(err), "clCreateKernel failed: %s for kernel '%s' on '%s'",
                        ocl_err_name(err), name, q->dev->rec->info.name);
    /* A register-heavy kernel may allow fewer work-items per group than the device. */
    size_t kmax = 0;
    err = clGetKernelWorkGroupInfo(k, q->dev->rec->id, CL_KERNEL_WORK_GROUP_SIZE, sizeof kmax,
                                   &kmax, NULL);
    if (err != CL_SUCCESS) {
        clReleaseKernel(k);
        return ocl_fail(ocl_status_of(err),
                        "clGetKernelWorkGroupInfo(CL_KERNEL_WORK_GROUP_SIZE) failed: %s for "
                        "kernel '%s' on '%s'",
                        ocl_err_name(err), name, q->dev->rec->info.name);
    }
    q->kwg[id] = kmax >= 1 && kmax < q->dev->wg ? kmax : q->dev->wg;
    q->k[id] = k;
    *out = k;
    return HETRUN_OK;
}
