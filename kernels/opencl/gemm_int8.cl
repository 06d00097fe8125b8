/* int8 GEMM: C(int32) = op(A) * op(B) + beta * C, beta in {0, 1}, alpha 1 (the catalogue's
 * only int8 form). One work-item per C element, int32 accumulation (exact for
 * k * 127 * 128 < 2^31, i.e. k < 131000; wraps modulo 2^32 beyond). Instantiated once. */
__kernel void gemm_i8(__global const char *a, ulong oa, long sai, long sap,
                      __global const char *b, ulong ob, long sbp, long sbj, __global int *c,
                      ulong oc, long ldc, int m, int n, int k, int beta) {
    int j = get_global_id(0), i = get_global_id(1);
    if (i >= m || j >= n) return;
    __global const char *ar = a + oa + (long)i * sai;
    __global const char *bc = b + ob + (long)j * sbj;
    int acc = 0;
    for (int p = 0; p < k; p++) acc += (int)ar[(long)p * sap] * (int)bc[(long)p * sbp];
    size_t idx = oc + (size_t)i * ldc + j;
    c[idx] = beta ? acc + c[idx] : acc;
}
