/* GEMM through cuBLASLt. hetrun matrices are row-major; cuBLASLt is column-major, so the
 * row-major C = op(A) op(B) is computed as the column-major C^T = op(B)^T op(A)^T: the
 * operands swap places and each stored row-major matrix is read as its own transpose.
 * A batched GEMM (ABI 1.1) sets a batch count and strided batch offset on each layout;
 * a broadcast A or B has offset 0. Plans (descriptors, layouts, heuristic algorithm) are
 * cached per shape, batch geometry, dtype pair, flags, pointer alignment and workspace. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/catalogue.h"
#include "cuda_internal.h"

typedef struct hcu_key {
    uint32_t dtype, out_dtype, flags;
    uint32_t align_a, align_b, align_c; /* bytes, power of two <= 256 */
    int64_t m, n, k, lda, ldb, ldc;
    int64_t batch, stride_a, stride_b, stride_c; /* batch 1: strides 0 */
    uint64_t ws;
} hcu_key;

struct hcu_plan {
    hcu_key key;
    cublasLtMatmulDesc_t op;
    cublasLtMatrixLayout_t la, lb, lc; /* column-major A (= hetrun B), B (= hetrun A), C */
    cublasLtMatmulAlgo_t algo;
    cudaDataType_t scale;
};

static uint32_t ptr_align(const void *p) {
    uintptr_t v = (uintptr_t)p;
    uint32_t a = 256;
    while (a > 1 && (v % a) != 0)
        a >>= 1;
    return a;
}

/* Batch count of a GEMM: the 1.1 field only when the host's descriptor has it. */
static int64_t gemm_batch(const hetrun_op_desc *d) {
    return d->struct_size >= HETRUN_OP_DESC_SIZE_V1_1 && d->batch > 1 ? d->batch : 1;
}

static int64_t eff_ld(int64_t ld, int64_t packed) {
    return ld ? ld : packed;
}

static hetrun_status lt_fail(hetrun_device *dev, cublasStatus_t s, const char *call,
                             const hetrun_op_desc *d, const char *extra) {
    char text[160];
    hetrun_status st = s == CUBLAS_STATUS_NOT_SUPPORTED   ? HETRUN_ERR_UNSUPPORTED
                       : s == CUBLAS_STATUS_ALLOC_FAILED  ? HETRUN_ERR_NO_MEMORY
                       : s == CUBLAS_STATUS_INVALID_VALUE ? HETRUN_ERR_INVALID
                                                          : HETRUN_ERR_DEVICE;
    return hcu_fail(st, "cuda: %s failed: %s on device %d %s (%s)%s%s", call,
                    cublasLtGetStatusName(s), dev->index, dev->name,
                    hcu_op_text(d, text, sizeof text), extra ? "; " : "", extra ? extra : "");
}

/* Constraints cuBLASLt documents for its types, checked before asking for a plan so the
 * refusal names the rule. */
static hetrun_status static_check(hetrun_device *dev, const hetrun_op_desc *d) {
    char text[160];
    const int cc = dev->cc_major * 10 + dev->cc_minor;
    if (d->dtype == HETRUN_BF16 && cc < 80)
        return hcu_fail(HETRUN_ERR_UNSUPPORTED,
                        "cuda: bf16 GEMM needs compute capability 8.0+, device %d %s is sm_%d (%s)",
                        dev->index, dev->name, cc, hcu_op_text(d, text, sizeof text));
    if (gemm_batch(d) > 1 && (d->dtype == HETRUN_I8 || gemm_batch(d) > INT32_MAX))
        return hcu_fail(HETRUN_ERR_UNSUPPORTED,
                        "cuda: batched GEMM (batch %" PRId64 ") runs float dtypes with at most "
                        "2^31-1 entries only (%s)",
                        gemm_batch(d), hcu_op_text(d, text, sizeof text));
    if (d->dtype != HETRUN_I8) return HETRUN_OK;
    const int ta = (d->flags & HETRUN_OP_TRANS_A) != 0, tb = (d->flags & HETRUN_OP_TRANS_B) != 0;
    const int64_t lda = eff_ld(d->lda, ta ? d->m : d->k), ldb = eff_ld(d->ldb, tb ? d->k : d->n);
    const int64_t ldc = eff_ld(d->ldc, d->n);
    const char *why = NULL;
    if (cc < 75)
        why = "int8 tensor cores need compute capability 7.5+";
    else if (ta || !tb)
        why = "cuBLASLt int8 GEMM on plain layouts only supports the TN form: A row-major m x k "
              "(no TRANS_A) and B stored n x k (TRANS_B)";
    else if (d->n % 4 || d->k % 4)
        why = "cuBLASLt int8 GEMM needs n and k multiples of 4";
    else if (lda % 4 || ldb % 4 || ldc % 4)
        why = "cuBLASLt int8 GEMM needs leading dimensions that are multiples of 4";
    if (why)
        return hcu_fail(HETRUN_ERR_UNSUPPORTED, "cuda: %s (%s)", why,
                        hcu_op_text(d, text, sizeof text));
    return HETRUN_OK;
}

static void plan_free(hcu_plan *p) {
    if (!p) return;
    if (p->la) cublasLtMatrixLayoutDestroy(p->la);
    if (p->lb) cublasLtMatrixLayoutDestroy(p->lb);
    if (p->lc) cublasLtMatrixLayoutDestroy(p->lc);
    if (p->op) cublasLtMatmulDescDestroy(p->op);
    free(p);
}

static hetrun_status plan_build(hetrun_device *dev, const hetrun_op_desc *d, const hcu_key *key,
                                hcu_plan **out) {
    const int ta = (d->flags & HETRUN_OP_TRANS_A) != 0, tb = (d->flags & HETRUN_OP_TRANS_B) != 0;
    cudaDataType_t tin, tout, scale = CUDA_R_32F;
    cublasComputeType_t compute = CUBLAS_COMPUTE_32F;
    switch ((hetrun_dtype)d->dtype) {
    case HETRUN_F32:
        tin = CUDA_R_32F;
        if (d->flags & HETRUN_OP_ALLOW_TF32) compute = CUBLAS_COMPUTE_32F_FAST_TF32;
        break;
    case HETRUN_F64:
        tin = CUDA_R_64F;
        compute = CUBLAS_COMPUTE_64F;
        scale = CUDA_R_64F;
        break;
    case HETRUN_F16: tin = CUDA_R_16F; break; /* f32 accumulate on tensor cores */
    case HETRUN_BF16: tin = CUDA_R_16BF; break;
    case HETRUN_I8:
        tin = CUDA_R_8I;
        compute = CUBLAS_COMPUTE_32I;
        scale = CUDA_R_32I;
        break;
    default: return hcu_fail(HETRUN_ERR_UNSUPPORTED, "cuda: GEMM dtype %u unsupported", d->dtype);
    }
    switch ((hetrun_dtype)d->out_dtype) {
    case HETRUN_F32: tout = CUDA_R_32F; break;
    case HETRUN_F64: tout = CUDA_R_64F; break;
    case HETRUN_F16: tout = CUDA_R_16F; break;
    case HETRUN_BF16: tout = CUDA_R_16BF; break;
    case HETRUN_I32: tout = CUDA_R_32I; break;
    default:
        return hcu_fail(HETRUN_ERR_UNSUPPORTED, "cuda: GEMM out dtype %u unsupported",
                        d->out_dtype);
    }
    hcu_plan *p = calloc(1, sizeof *p);
    if (!p) return hcu_fail(HETRUN_ERR_NO_MEMORY, "cuda: GEMM plan: out of host memory");
    p->key = *key;
    p->scale = scale;
    cublasStatus_t s = cublasLtMatmulDescCreate(&p->op, compute, scale);
    const char *call = "cublasLtMatmulDescCreate";
    cublasOperation_t opa = tb ? CUBLAS_OP_T : CUBLAS_OP_N; /* column-major A is hetrun B */
    cublasOperation_t opb = ta ? CUBLAS_OP_T : CUBLAS_OP_N;
    if (s == CUBLAS_STATUS_SUCCESS) {
        call = "cublasLtMatmulDescSetAttribute(TRANSA/TRANSB)";
        s = cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_TRANSA, &opa, sizeof opa);
        if (s == CUBLAS_STATUS_SUCCESS)
            s = cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_TRANSB, &opb,
                                               sizeof opb);
    }
    if (s == CUBLAS_STATUS_SUCCESS) {
        call = "cublasLtMatrixLayoutCreate";
        s = cublasLtMatrixLayoutCreate(&p->la, tin, (uint64_t)(tb ? key->k : key->n),
                                       (uint64_t)(tb ? key->n : key->k), key->ldb);
        if (s == CUBLAS_STATUS_SUCCESS)
            s = cublasLtMatrixLayoutCreate(&p->lb, tin, (uint64_t)(ta ? key->m : key->k),
                                           (uint64_t)(ta ? key->k : key->m), key->lda);
        if (s == CUBLAS_STATUS_SUCCESS)
            s = cublasLtMatrixLayoutCreate(&p->lc, tout, (uint64_t)key->n, (uint64_t)key->m,
                                           key->ldc);
    }
    if (s == CUBLAS_STATUS_SUCCESS && key->batch > 1) {
        call = "cublasLtMatrixLayoutSetAttribute(BATCH_COUNT/STRIDED_BATCH_OFFSET)";
        const int32_t count = (int32_t)key->batch;
        /* Column-major A is hetrun B and vice versa; offset 0 broadcasts. */
        const cublasLtMatrixLayout_t lay[3] = {p->la, p->lb, p->lc};
        const int64_t off[3] = {key->stride_b, key->stride_a, key->stride_c};
        for (int i = 0; i < 3 && s == CUBLAS_STATUS_SUCCESS; i++) {
            s = cublasLtMatrixLayoutSetAttribute(lay[i], CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &count,
                                                 sizeof count);
            if (s == CUBLAS_STATUS_SUCCESS)
                s = cublasLtMatrixLayoutSetAttribute(
                    lay[i], CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &off[i], sizeof off[i]);
        }
    }
    cublasLtMatmulPreference_t pref = NULL;
    if (s == CUBLAS_STATUS_SUCCESS) {
        call = "cublasLtMatmulPreference";
        s = cublasLtMatmulPreferenceCreate(&pref);
        uint64_t ws = key->ws;
        if (s == CUBLAS_STATUS_SUCCESS)
            s = cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                                     &ws, sizeof ws);
        /* Column-major A is hetrun's B and vice versa. */
        const uint32_t al[4] = {key->align_b, key->align_a, key->align_c, key->align_c};
        const cublasLtMatmulPreferenceAttributes_t at[4] = {
            CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
            CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES};
        for (int i = 0; i < 4 && s == CUBLAS_STATUS_SUCCESS; i++)
            s = cublasLtMatmulPreferenceSetAttribute(pref, at[i], &al[i], sizeof al[i]);
    }
    if (s == CUBLAS_STATUS_SUCCESS) {
        call = "cublasLtMatmulAlgoGetHeuristic";
        cublasLtMatmulHeuristicResult_t res;
        int found = 0;
        memset(&res, 0, sizeof res);
        s = cublasLtMatmulAlgoGetHeuristic(dev->lt, p->op, p->la, p->lb, p->lc, p->lc, pref, 1,
                                           &res, &found);
        if (s == CUBLAS_STATUS_SUCCESS && found < 1) s = CUBLAS_STATUS_NOT_SUPPORTED;
        if (s == CUBLAS_STATUS_SUCCESS) p->algo = res.algo;
    }
    if (pref) cublasLtMatmulPreferenceDestroy(pref);
    if (s != CUBLAS_STATUS_SUCCESS) {
        plan_free(p);
        char more[160];
        snprintf(more, sizeof more, "alignment A/B/C %u/%u/%u bytes, workspace %" PRIu64 " bytes",
                 key->align_a, key->align_b, key->align_c, key->ws);
        return lt_fail(dev, s, call, d, s == CUBLAS_STATUS_NOT_SUPPORTED ? more : NULL);
    }
    *out = p;
    return HETRUN_OK;
}

/* Alignment of every batch entry's base: the pointer's and the stride's in bytes. */
static uint32_t entry_align(const void *p, int64_t stride_bytes) {
    const uint32_t a = ptr_align(p);
    if (!stride_bytes) return a;
    const uint32_t s = ptr_align((const void *)(uintptr_t)stride_bytes);
    return a < s ? a : s;
}

static void make_key(const hetrun_op_desc *d, const void *a, const void *b, const void *c,
                     uint64_t ws, hcu_key *key) {
    const int ta = (d->flags & HETRUN_OP_TRANS_A) != 0, tb = (d->flags & HETRUN_OP_TRANS_B) != 0;
    memset(key, 0, sizeof *key); /* padding too: keys are compared with memcmp */
    key->dtype = d->dtype;
    key->out_dtype = d->out_dtype;
    key->flags = d->flags & (HETRUN_OP_TRANS_A | HETRUN_OP_TRANS_B |
                             (d->dtype == HETRUN_F32 ? HETRUN_OP_ALLOW_TF32 : 0u));
    key->batch = gemm_batch(d);
    if (key->batch > 1) {
        key->stride_a = hetrun_gemm_batch_stride(d, 0);
        key->stride_b = hetrun_gemm_batch_stride(d, 1);
        key->stride_c = hetrun_gemm_batch_stride(d, 2);
    }
    /* Every batch entry's pointer must be as aligned as the plan assumes. */
    const size_t ein = hetrun_dtype_size((hetrun_dtype)d->dtype);
    const size_t eout = hetrun_dtype_size((hetrun_dtype)d->out_dtype);
    key->align_a = entry_align(a, key->stride_a * (int64_t)ein);
    key->align_b = entry_align(b, key->stride_b * (int64_t)ein);
    key->align_c = entry_align(c, key->stride_c * (int64_t)eout);
    key->m = d->m;
    key->n = d->n;
    key->k = d->k;
    key->lda = eff_ld(d->lda, ta ? d->m : d->k);
    key->ldb = eff_ld(d->ldb, tb ? d->k : d->n);
    key->ldc = eff_ld(d->ldc, d->n);
    key->ws = ws;
}

/* Finds or builds the plan; called with dev->plan_lock held. */
static hetrun_status plan_get(hetrun_device *dev, const hetrun_op_desc *d, const hcu_key *key,
                              hcu_plan **out) {
    for (unsigned i = 0; i < HCU_PLAN_CACHE; i++) {
        hcu_plan *p = dev->plans[i];
        if (p && memcmp(&p->key, key, sizeof *key) == 0) {
            *out = p;
            return HETRUN_OK;
        }
    }
    hcu_plan *p = NULL;
    hetrun_status st = plan_build(dev, d, key, &p);
    if (st) return st;
    const unsigned slot = dev->plan_next++ % HCU_PLAN_CACHE; /* round-robin eviction */
    plan_free(dev->plans[slot]);
    dev->plans[slot] = p;
    *out = p;
    return HETRUN_OK;
}

hetrun_status hcu_gemm_supported(hetrun_device *dev, const hetrun_op_desc *d) {
    hetrun_status st = static_check(dev, d);
    if (st) return st;
    /* Ask cuBLASLt itself, for the least-aligned operands op_run may get (one element; four
     * bytes for int8, which cuBLASLt requires) and the full workspace, so a "yes" here
     * holds for any operand offset. */
    const uintptr_t worst = d->dtype == HETRUN_I8 ? 4u : (uintptr_t)hetrun_dtype_size(d->dtype);
    const uintptr_t worst_c =
        d->dtype == HETRUN_I8 ? 4u : (uintptr_t)hetrun_dtype_size((hetrun_dtype)d->out_dtype);
    hcu_key key;
    make_key(d, (const void *)worst, (const void *)worst, (const void *)worst_c, HCU_GEMM_WORKSPACE,
             &key);
    if ((st = hcu_bind(dev))) return st;
    hcu_plan *p;
    pthread_mutex_lock(&dev->plan_lock);
    st = plan_get(dev, d, &key, &p);
    if (st == HETRUN_ERR_UNSUPPORTED) {
        /* Nothing for the worst case: supported when operands are 256-byte aligned (as
         * mem_alloc returns them); op_run refuses less aligned ones, naming alignments. */
        const void *aligned = (const void *)(uintptr_t)256;
        make_key(d, aligned, aligned, aligned, HCU_GEMM_WORKSPACE, &key);
        st = plan_get(dev, d, &key, &p);
    }
    pthread_mutex_unlock(&dev->plan_lock);
    return st;
}

hetrun_status hcu_gemm_run(hetrun_queue *q, const hetrun_op_desc *d, const void *a, const void *b,
                           void *c, void *ws, uint64_t ws_bytes) {
    hetrun_device *dev = q->dev;
    hetrun_status st = static_check(dev, d);
    if (st) return st;
    /* cuBLASLt wants a 256-byte aligned workspace; use at most what phase 1 asked for. */
    if (ws) {
        const uintptr_t v = (uintptr_t)ws, up = (v + 255u) & ~(uintptr_t)255u;
        ws_bytes = ws_bytes > up - v ? ws_bytes - (up - v) : 0;
        ws = (void *)up;
    }
    if (ws_bytes > HCU_GEMM_WORKSPACE) ws_bytes = HCU_GEMM_WORKSPACE;
    if (!ws) ws_bytes = 0;
    hcu_key key;
    make_key(d, a, b, c, ws_bytes, &key);
    float f_alpha = (float)d->alpha, f_beta = (float)d->beta;
    double d_alpha = d->alpha, d_beta = d->beta;
    int32_t i_alpha = (int32_t)d->alpha, i_beta = (int32_t)d->beta;
    hcu_plan *p;
    pthread_mutex_lock(&dev->plan_lock); /* held across the enqueue: eviction frees plans */
    st = plan_get(dev, d, &key, &p);
    if (st) {
        pthread_mutex_unlock(&dev->plan_lock);
        return st;
    }
    const void *alpha = p->scale == CUDA_R_64F   ? (const void *)&d_alpha
                        : p->scale == CUDA_R_32I ? (const void *)&i_alpha
                                                 : (const void *)&f_alpha;
    const void *beta = p->scale == CUDA_R_64F   ? (const void *)&d_beta
                       : p->scale == CUDA_R_32I ? (const void *)&i_beta
                                                : (const void *)&f_beta;
    cublasStatus_t s = cublasLtMatmul(dev->lt, p->op, alpha, b, p->la, a, p->lb, beta, c, p->lc, c,
                                      p->lc, &p->algo, ws, (size_t)ws_bytes, q->stream);
    pthread_mutex_unlock(&dev->plan_lock);
    if (s != CUBLAS_STATUS_SUCCESS) {
        /* A kernel fault inside cuBLASLt is sticky: find out from the stream. */
        cudaError_t e = cudaStreamQuery(q->stream);
        if (e != cudaSuccess && e != cudaErrorNotReady) {
            char text[160];
            return hcu_cuda_fail(dev, e, "cublasLtMatmul", hcu_op_text(d, text, sizeof text));
        }
        return lt_fail(dev, s, "cublasLtMatmul", d, NULL);
    }
    return HETRUN_OK;
}

void hcu_gemm_release(hetrun_device *dev) {
    pthread_mutex_lock(&dev->plan_lock);
    for (unsigned i = 0; i < HCU_PLAN_CACHE; i++) {
        plan_free(dev->plans[i]);
        dev->plans[i] = NULL;
    }
    pthread_mutex_unlock(&dev->plan_lock);
}
