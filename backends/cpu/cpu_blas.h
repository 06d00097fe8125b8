/* The CPU backend's view of the silicon (ISA from CPUID), the BLAS it loads for GEMM (dlopen'ed
 * with kernels chosen from that ISA, then self-checked) and the measured, cached FMA peak.
 * See docs/backends/cpu.md for why the BLAS is loaded at run time. */
#ifndef HETRUN_BACKEND_CPU_BLAS_H
#define HETRUN_BACKEND_CPU_BLAS_H

#include <stddef.h>

#include "hetrun/backend.h"

/* ---- ISA (cpu_isa.c) ---- */

/* What CPUID reports, already masked by what the OS saves on context switch (XCR0), so
 * a feature marked here may be executed. */
typedef struct cpu_isa {
    char vendor[16]; /* "GenuineIntel", "AuthenticAMD", ... */
    unsigned family, model;
    int fma, f16c, avx, avx2;
    int avx512f, avx512bw, avx512vl, avx512dq;
    int avx512_bf16, avx512_fp16;
    int amx_tile, amx_bf16;
} cpu_isa;

/* Reads CPUID and XCR0 of the CPU this thread runs on. */
void cpu_isa_detect(cpu_isa *isa);
/* Widest vector ISA the GEMM can use: "avx512-bf16", "avx512", "avx2", "avx" or "sse". */
const char *cpu_isa_name(const cpu_isa *isa);
/* Space-separated GEMM-relevant features, e.g. "avx2 fma f16c" (into buf). */
void cpu_isa_features(const cpu_isa *isa, char *buf, size_t len);
/* OpenBLAS core type whose kernels match the ISA best (never a guess from the model number):
 * Cooperlake (AVX512-BF16), SkylakeX (AVX-512 F/BW/VL/DQ), Zen or Haswell (AVX2+FMA by
 * vendor), Sandybridge (AVX), else Prescott. */
const char *cpu_isa_coretype(const cpu_isa *isa);
/* The next safer core type after `coretype` (one ISA step down), or NULL after Prescott. */
const char *cpu_isa_safer_coretype(const char *coretype);

/* ---- BLAS (cpu_blas.c) ---- */

enum { CPU_ROW_MAJOR = 101 };
enum { CPU_NO_TRANS = 111, CPU_TRANS = 112 };

typedef void (*cpu_sgemm_fn)(int order, int ta, int tb, int m, int n, int k, float alpha,
                             const float *a, int lda, const float *b, int ldb, float beta, float *c,
                             int ldc);
typedef void (*cpu_dgemm_fn)(int order, int ta, int tb, int m, int n, int k, double alpha,
                             const double *a, int lda, const double *b, int ldb, double beta,
                             double *c, int ldc);
/* cblas_sbgemm: bf16 inputs, fp32 accumulate and output (OpenBLAS built with BFLOAT16). */
typedef void (*cpu_sbgemm_fn)(int order, int ta, int tb, int m, int n, int k, float alpha,
                              const uint16_t *a, int lda, const uint16_t *b, int ldb, float beta,
                              float *c, int ldc);

typedef struct cpu_blas {
    void *lib;
    cpu_sgemm_fn sgemm;
    cpu_dgemm_fn dgemm;
    cpu_sbgemm_fn sbgemm; /* NULL when no bf16 GEMM was found or it failed the self-check */
    void *bf16_lib;       /* oneDNN, when it provides `sbgemm` */
    char bf16_path[160];  /* "cblas_sbgemm", "dnnl_gemm_bf16bf16f32 (libdnnl.so.2)" or "" */
    void (*set_num_threads)(int);
    int threads;        /* the rank's threads, which the BLAS was given */
    char path[256];     /* the library dlopen'ed */
    char requested[32]; /* core type hetrun asked for ("" when the library has no such knob) */
    char source[16];    /* who chose it: "cpuid", "user" (OPENBLAS_CORETYPE) or "fallback" */
    char corename[32];  /* openblas_get_corename() after loading */
    char config[192];   /* openblas_get_config() */
    char version[32];   /* "OpenBLAS 0.3.21" */
} cpu_blas;

/* The loaded BLAS; valid between a successful cpu_blas_load and cpu_blas_unload. */
extern cpu_blas cpu_blas_lib;

/* Loads the BLAS with kernels for `isa` and `threads` threads and self-checks SGEMM (and
 * SBGEMM) against the reference; on a failed check, reloads one core type safer and says
 * so in the log (cpu_log). Library: $HETRUN_CPU_BLAS, else the OpenBLAS found at build time,
 * else libopenblas.so.0. Returns HETRUN_OK, or an error with cpu_error() set. */
hetrun_status cpu_blas_load(const cpu_isa *isa, int threads);
void cpu_blas_unload(void);
/* One-line summary for the report: "OpenBLAS 0.3.21 Zen (cpuid)". */
void cpu_blas_summary(char *buf, size_t len);

/* ---- GEMM (cpu_gemm.c) ---- */

/* Workspace bytes GEMM `d` needs (0 for other ops). */
uint64_t cpu_gemm_workspace(const hetrun_op_desc *d);
/* Runs a validated GEMM on host pointers `p` (A, B, C) with workspace `ws`. */
void cpu_gemm(const hetrun_op_desc *d, void *const *p, void *ws);
/* `count` elements of dtype `from` to `to`, one of them fp32: fp16 through F16C where the CPU
 * has it (8 per instruction; the scalar conversion is branchy and does not vectorise). The
 * widening and rounding of every narrow GEMM path goes through it. */
void cpu_convert(const void *src, int from, void *dst, int to, uint64_t count);

/* ---- peak (cpu_peak.c) ---- */

/* Peak FLOP/s of `threads` cores per dtype (indexed by hetrun_dtype), from an FMA-loop
 * probe of the widest ISA, measured once per CPU model + ISA + thread count and cached in
 * `cache_dir` (NULL: measured every process). */
void cpu_peak_get(const hetrun_host_services *host, const cpu_isa *isa, const char *model,
                  int threads, double peak[HETRUN_MAX_DTYPES]);

#endif
