/* A stand-in OpenBLAS for the CPU backend's self-check tests: a correct plain SGEMM whose
 * "kernels" go wrong on purpose for the core types named in FAKE_BLAS_BAD (one element off)
 * or FAKE_BLAS_SIGILL (an illegal instruction), like a core type the CPU cannot run. It also
 * stands in for oneDNN's dnnl_gemm_bf16bf16f32 (wrong when FAKE_BLAS_BF16_BAD is set). */
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char core[32] = "Prescott";

__attribute__((constructor)) static void pick_core(void) {
    const char *c = getenv("OPENBLAS_CORETYPE");
    if (c && *c) snprintf(core, sizeof core, "%s", c);
}

static int listed(const char *var) {
    const char *list = getenv(var);
    if (!list) return 0;
    char buf[256];
    snprintf(buf, sizeof buf, ",%s,", list);
    char key[40];
    snprintf(key, sizeof key, ",%s,", core);
    return strstr(buf, key) != NULL;
}

char *openblas_get_corename(void) {
    return core;
}

char *openblas_get_config(void) {
    static char config[64];
    snprintf(config, sizeof config, "FakeBLAS 9.9 %s", core);
    return config;
}

void openblas_set_num_threads(int n) {
    (void)n;
}

#define AT(p, ld, trans, r, c) ((trans) ? (p)[(c) * (ld) + (r)] : (p)[(r) * (ld) + (c)])

void cblas_sgemm(int order, int ta, int tb, int m, int n, int k, float alpha, const float *a,
                 int lda, const float *b, int ldb, float beta, float *c, int ldc) {
    (void)order;
    if (listed("FAKE_BLAS_SIGILL")) raise(SIGILL);
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            double s = 0.0;
            for (int p = 0; p < k; p++)
                s += (double)AT(a, lda, ta == 112, i, p) * AT(b, ldb, tb == 112, p, j);
            c[i * ldc + j] = (float)(alpha * s + (beta != 0.0f ? beta * c[i * ldc + j] : 0.0));
        }
    if (listed("FAKE_BLAS_BAD")) c[m / 2 * ldc + n / 2] += 0.5f;
}

void cblas_dgemm(int order, int ta, int tb, int m, int n, int k, double alpha, const double *a,
                 int lda, const double *b, int ldb, double beta, double *c, int ldc) {
    (void)order;
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            double s = 0.0;
            for (int p = 0; p < k; p++)
                s += AT(a, lda, ta == 112, i, p) * AT(b, ldb, tb == 112, p, j);
            c[i * ldc + j] = alpha * s + (beta != 0.0 ? beta * c[i * ldc + j] : 0.0);
        }
}

static float bf16_to_f32(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

int dnnl_gemm_bf16bf16f32(char ta, char tb, int64_t m, int64_t n, int64_t k, float alpha,
                          const uint16_t *a, int64_t lda, const uint16_t *b, int64_t ldb,
                          float beta, float *c, int64_t ldc) {
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) {
            double s = 0.0;
            for (int64_t p = 0; p < k; p++)
                s += (double)bf16_to_f32(AT(a, lda, ta == 'T', i, p)) *
                     bf16_to_f32(AT(b, ldb, tb == 'T', p, j));
            c[i * ldc + j] = (float)(alpha * s + (beta != 0.0f ? beta * c[i * ldc + j] : 0.0));
        }
    if (getenv("FAKE_BLAS_BF16_BAD")) c[0] = -c[0] + 1.0f;
    return 0;
}
