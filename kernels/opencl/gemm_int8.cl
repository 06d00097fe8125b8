/* int8 GEMM: C(int32) = op(A) * op(B) + beta * C, beta in {0, 1}, alpha 1 (the catalogue's
 * only int8 form). One work-item per C element, int32 accumulation (exact for
 * k * 127 * 128 < 2^31, i.e. k < 131000; wraps modulo 2^32 beyond). Instantiated once.
 * Batched over get_global_id(2) with batch strides sab, sbb (0 broadcasts), scb. */
__kernel void gemm_i8(__global const char *a, ulong oa, long sai, long sap, long sab,
                      __global const char *b, ulong ob, long sbp, long sbj, long sbb,
                      __global int *c, ulong oc, long ldc, long scb, int m, int n, int k,
                      int beta) {
    int j = get_global_id(0), i = get_global_id(1);
    long e = get_global_id(2);
    if (i >= m || j >= n) return;
    __global const char *ar = a + oa + e * sab + (long)i * sai;
    __global const char *bc = b + ob + e * sbb + (long)j * sbj;
    int acc = 0;
    for (int p = 0; p < k; p++) acc += (int)ar[(long)p * sap] * (int)bc[(long)p * sbp];
    size_t idx = oc + e * scb + (size_t)i * ldc + j;
    c[idx] = beta ? acc + c[idx] : acc;
}
