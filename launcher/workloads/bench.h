/**
 * @file launcher/workloads/bench.h
 * @brief The `bench` workload's internals, shared by its three files: bench.c (schema,
 *        op benchmarks and their correctness checks), bench_coll.c (nccl-tests style
 *        collective benchmarks) and bench_peak.c (device peak: declared or probed).
 */
#ifndef HETRUN_WORKLOADS_BENCH_H
#define HETRUN_WORKLOADS_BENCH_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdint.h>

#include "exec/session.h"

/** The bench `op` choices: every op of the op table in kind order (an op's choice index is
 *  its kind), then these collectives. */
enum {
    HETRUN_BENCH_ALLREDUCE = HETRUN_OP_KIND_COUNT,
    HETRUN_BENCH_ALLGATHER,
    HETRUN_BENCH_REDUCE_SCATTER,
    HETRUN_BENCH_BROADCAST,
    HETRUN_BENCH_OP_CHOICES
};

/** Which buffers a collective benchmark uses. */
enum { HETRUN_BENCH_BUF_BOTH = 0, HETRUN_BENCH_BUF_HOST = 1, HETRUN_BENCH_BUF_DEVICE = 2 };

/** Where the peak FLOP/s for "percent_of_peak" comes from. */
enum {
    HETRUN_BENCH_PEAK_AUTO = 0,    /**< backend-declared, else probe (cached) */
    HETRUN_BENCH_PEAK_BACKEND = 1, /**< backend-declared only (null when unknown) */
    HETRUN_BENCH_PEAK_PROBE = 2,   /**< always the probe (cached) */
    HETRUN_BENCH_PEAK_NONE = 3     /**< no peak, no probe */
};

/** Parameters of one bench point (filled by the schema in bench.c). */
typedef struct hetrun_bench_params {
    int op;       /**< index into the choice list: catalogue op kind or HETRUN_BENCH_* */
    int dtype;    /**< ::hetrun_dtype */
    int64_t size; /**< the op table's bench shape: gemm m = n = k = size; rows, tokens */
    int64_t cols; /**< columns n; attention: model width (heads x 64) */
    int act;      /**< ::hetrun_activation for act_* ops */
    int64_t warmup, iterations;
    bool check;
    int peak;                                  /**< HETRUN_BENCH_PEAK_* */
    int64_t probe_size;                        /**< GEMM size of the peak probe */
    int64_t min_bytes, max_bytes, step_factor; /**< collective size sweep */
    int buffers;                               /**< HETRUN_BENCH_BUF_* */
    bool reference;                            /**< collectives: also time a plain MPI loop */
} hetrun_bench_params;

/** Runs a collective benchmark point (bench_coll.c). Returns 0 or -1 (s->error). */
int hetrun_bench_collective(hetrun_session *s, const hetrun_bench_params *p, cJSON *result);

/**
 * Peak FLOP/s of `dtype` on the session's device for percent-of-peak figures
 * (bench_peak.c). Per `mode`: the backend's declared value, or a GEMM probe of
 * `probe_size`^3 whose result is cached per backend, device, compute units and dtype
 * under the host's cache dir. Sets *source to "backend", "probe", "probe-cache" or
 * "none"; returns 0 (peak may be 0 when unknown) or -1 on a device error (s->error).
 */
int hetrun_bench_peak(hetrun_session *s, hetrun_dtype dtype, int mode, int64_t probe_size,
                      double *peak, const char **source);

/** Name of choice `op` of the bench `op` field ("gemm", ..., "allreduce"). */
const char *hetrun_bench_op_name(int op);

/**
 * Raises a probed peak of `dtype` (memory and cache) to `flops_per_s` when a GEMM
 * measured faster; no effect on declared peaks or when no probe ran at `probe_size`.
 */
void hetrun_bench_peak_observe(hetrun_session *s, hetrun_dtype dtype, int64_t probe_size,
                               double flops_per_s);

/** Busbw factor of a collective on n ranks (nccl-tests conventions). */
double hetrun_bench_busbw_factor(int collective, int nranks);

#endif
