/* GEMM in three kernels (per-dtype body, see elementwise.cl for the macros), batched
 * over get_global_id(2) (batch strides in elements; a 0 source stride broadcasts):
 *   gemm_pack_a: op(A) (m x k, any transpose/stride, any storage dtype) -> CT panels
 *                Ap[panel][p][r] of HR_MR rows, zero-padded past m;
 *   gemm_pack_b: op(B) (k x n) -> CT panels Bp[panel][p][c] of HR_NR columns;
 *   gemm_micro:  one work-item computes an HR_MR x HR_NR block of C in private
 *                registers from two contiguous panels (vector loads, fma), then applies
 *                alpha/beta and stores with bounds checks.
 * Packing makes every transpose/leading-dim case hit the same fast inner loop, and
 * suits PoCL's CPU code generation (large private blocks, no local memory). */

/* op(A)(i, p) = A[oa + i * sai + p * sap] of batch entry b, at oa + b * sab; its panels
 * at oap + b * spb. Work-item (p, panel, b). */
__kernel void KN(gemm_pack_a)(__global const ST_T *a, ulong oa, long sai, long sap, long sab,
                              int m, int k, __global CT *ap, ulong oap, ulong spb) {
    int p = get_global_id(0), panel = get_global_id(1);
    size_t b = get_global_id(2);
    if (p >= k) return;
    oa += b * sab;
    __global CT *dst = ap + oap + b * spb + ((size_t)panel * k + p) * HR_MR;
    for (int r = 0; r < HR_MR; r++) {
        long i = (long)panel * HR_MR + r;
        dst[r] = i < m ? LD(a, oa + i * sai + (long)p * sap) : C(0.0);
    }
}

/* op(B)(p, j) = B[ob + p * sbp + j * sbj] of batch entry e, at ob + e * sbb. */
__kernel void KN(gemm_pack_b)(__global const ST_T *b, ulong ob, long sbp, long sbj, long sbb,
                              int k, int n, __global CT *bp, ulong obp, ulong spb) {
    int p = get_global_id(0), panel = get_global_id(1);
    size_t e = get_global_id(2);
    if (p >= k) return;
    ob += e * sbb;
    __global CT *dst = bp + obp + e * spb + ((size_t)panel * k + p) * HR_NR;
    for (int c = 0; c < HR_NR; c++) {
        long j = (long)panel * HR_NR + c;
        dst[c] = j < n ? LD(b, ob + (long)p * sbp + j * sbj) : C(0.0);
    }
}

#define HR_VA HR_CAT(CT, HR_MR)
#define HR_VB HR_CAT(CT, HR_NR)
#define HR_VLOADA HR_CAT(vload, HR_MR)
#define HR_VLOADB HR_CAT(vload, HR_NR)
#define HR_VSTOREB HR_CAT(vstore, HR_NR)

/* Work-item (column panel, row panel, batch entry e). C[i, j] at oc + e * scb + i * ldc + j;
 * panels of entry e at oap + e * sapb and obp + e * sbpb (0: shared by every entry).
 * Epilogue (GEMM_BIAS_ACT) when epi != 0 (bit 4 set): bit 1 adds bias[j], bit 2 writes
 * the pre-activation value to aux (m x n packed), then act (hetrun_activation) applies. */
__kernel void KN(gemm_micro)(int k, __global const CT *ap, ulong oap, ulong sapb,
                             __global const CT *bp, ulong obp, ulong sbpb, __global ST_T *cm,
                             ulong oc, long ldc, ulong scb, int m, int n, int npanels_n,
                             int npanels_m, CT alpha, CT beta, int epi, int act,
                             __global const ST_T *bias, ulong obias, __global ST_T *aux,
                             ulong oaux) {
    int pj = get_global_id(0), pi = get_global_id(1);
    size_t e = get_global_id(2);
    if (pj >= npanels_n || pi >= npanels_m) return;
    __global const CT *a = ap + oap + e * sapb + (size_t)pi * k * HR_MR;
    __global const CT *b = bp + obp + e * sbpb + (size_t)pj * k * HR_NR;
    oc += e * scb;
    HR_VB acc[HR_MR];
    for (int r = 0; r < HR_MR; r++) acc[r] = (HR_VB)(C(0.0));
    for (int p = 0; p < k; p++) {
        HR_VB bv = HR_VLOADB(p, b);
        HR_VA av = HR_VLOADA(p, a);
        acc[0] = fma((HR_VB)(av.s0), bv, acc[0]);
        acc[1] = fma((HR_VB)(av.s1), bv, acc[1]);
        acc[2] = fma((HR_VB)(av.s2), bv, acc[2]);
        acc[3] = fma((HR_VB)(av.s3), bv, acc[3]);
#if HR_MR > 4
        acc[4] = fma((HR_VB)(av.s4), bv, acc[4]);
        acc[5] = fma((HR_VB)(av.s5), bv, acc[5]);
        acc[6] = fma((HR_VB)(av.s6), bv, acc[6]);
        acc[7] = fma((HR_VB)(av.s7), bv, acc[7]);
#endif
    }
    int i0 = pi * HR_MR, j0 = pj * HR_NR;
    for (int r = 0; r < HR_MR; r++) {
        int i = i0 + r;
        if (i >= m) break;
        size_t row = oc + (size_t)i * ldc;
#if HR_VEC_C
        if (j0 + HR_NR <= n && !epi) { /* full-width tile: vector path */
            HR_VB v = alpha * acc[r];
            if (beta != C(0.0)) v = fma((HR_VB)(beta), HR_VLOADB(0, cm + row + j0), v);
            HR_VSTOREB(v, 0, cm + row + j0);
            continue;
        }
#endif
        CT t[HR_NR];
        HR_VSTOREB(acc[r], 0, t);
        for (int c = 0; c < HR_NR && j0 + c < n; c++) {
            CT v = alpha * t[c];
            if (beta != C(0.0)) v += beta * LD(cm, row + j0 + c);
            if (epi) {
                if (epi & 1) v += LD(bias, obias + j0 + c);
                if (epi & 2) ST(aux, oaux + (size_t)i * n + j0 + c, v);
                v = KN(act)(act, v);
            }
            ST(cm, row + j0 + c, v);
        }
    }
}
