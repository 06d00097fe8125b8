/**
 * @file launcher/report/fields.h
 * @brief The one definition of a workload result's fields (docs/report.md, "Results"):
 *        workloads write them through these names and setters, and the summary, the
 *        tables and the CSV read them back through the same names, so a renamed field is
 *        a compile error rather than an empty column.
 */
#ifndef HETRUN_REPORT_FIELDS_H
#define HETRUN_REPORT_FIELDS_H

#include <cjson/cJSON.h>

/* Identity of a point (written by the runner). */
#define HETRUN_RF_WORKLOAD "workload"
#define HETRUN_RF_LABEL "label"
#define HETRUN_RF_INDEX "index"
#define HETRUN_RF_POINT "point"
#define HETRUN_RF_SWEEP "sweep"
#define HETRUN_RF_ERROR "error"
/* The op a point measured and its shape. */
#define HETRUN_RF_OP "op"
#define HETRUN_RF_DTYPE "dtype"
#define HETRUN_RF_M "m"
#define HETRUN_RF_N "n"
#define HETRUN_RF_K "k"
/* Rates and times. */
#define HETRUN_RF_FLOPS_PER_ITERATION "flops_per_iteration"
#define HETRUN_RF_BYTES_PER_ITERATION "bytes_per_iteration"
#define HETRUN_RF_GFLOPS "gflops"
#define HETRUN_RF_GBPS "gbps"
#define HETRUN_RF_PERCENT_OF_PEAK "percent_of_peak"
#define HETRUN_RF_PEAK_FLOPS "peak_flops"
#define HETRUN_RF_PEAK_SOURCE "peak_source"
#define HETRUN_RF_TIME_MS "time_ms"       /**< stats object: min, median, max, ... */
#define HETRUN_RF_GFLOPS_MAX "gflops_max" /**< from the fastest run */
/* The stats object of a series of timed runs (workloads/stats.h, hetrun_stats_json). */
#define HETRUN_RF_STAT_MIN "min"
#define HETRUN_RF_STAT_MEDIAN "median"
#define HETRUN_RF_STAT_MAX "max"
#define HETRUN_RF_STAT_MEAN "mean"
#define HETRUN_RF_STAT_COUNT "count"
/* Where peak_flops came from: the words of peak_source. */
#define HETRUN_PEAK_SOURCE_NONE "none"
#define HETRUN_PEAK_SOURCE_BACKEND "backend"
#define HETRUN_PEAK_SOURCE_PROBE "probe"             /**< measured in this job */
#define HETRUN_PEAK_SOURCE_PROBE_CACHE "probe-cache" /**< measured earlier on this host */
/* bench op points: the call, support and the check's method. */
#define HETRUN_RF_OUT_DTYPE "out_dtype"
#define HETRUN_RF_CALLS "calls"
#define HETRUN_RF_SUPPORTED "supported"
#define HETRUN_RF_SKIPPED_REASON "skipped_reason"
#define HETRUN_RF_MAX_ERROR "max_error"
#define HETRUN_RF_TOLERANCE "tolerance"
#define HETRUN_RF_CHECK_METHOD "check_method"
/* Training and inference figures the summary table shows. */
#define HETRUN_RF_EPOCHS "epochs" /**< train (MLP): per epoch {loss, test_accuracy} */
#define HETRUN_RF_LOSS "loss"     /**< in an epoch entry */
#define HETRUN_RF_FINAL_TEST_ACCURACY "final_test_accuracy"
#define HETRUN_RF_ACCURACY "accuracy"         /**< infer */
#define HETRUN_RF_TOKENS_PER_S "tokens_per_s" /**< train (GPT), embed batches */
#define HETRUN_RF_VAL_LOSS "val_loss"         /**< train (GPT) */
#define HETRUN_RF_BATCHES "batches"           /**< infer, embed: one entry per batch size */
#define HETRUN_RF_LATENCY_P50 "latency_ms_p50"
#define HETRUN_RF_LATENCY_P99 "latency_ms_p99"
/* The train workload (train_loop.c, train_mlp.c, train_gpt.c). */
#define HETRUN_RF_MODEL "model"
#define HETRUN_RF_PARAMETERS "parameters"
#define HETRUN_RF_RANKS "ranks"
#define HETRUN_RF_STEPS_TOTAL "steps_total"
#define HETRUN_RF_STEPS_RUN "steps_run"
#define HETRUN_RF_FINAL_STEP "final_step"
#define HETRUN_RF_INTERRUPTED "interrupted"
#define HETRUN_RF_RESUMED_FROM "resumed_from"
#define HETRUN_RF_RESUMED_AT_STEP "resumed_at_step"
#define HETRUN_RF_STEP_TIME_MS "step_time_ms" /**< stats object */
#define HETRUN_RF_COMPUTE_MS_PER_STEP "compute_ms_per_step"
#define HETRUN_RF_ALLREDUCE_MS_PER_STEP "allreduce_ms_per_step"
#define HETRUN_RF_ALLREDUCE "allreduce" /**< none, device, host-mpi */
#define HETRUN_RF_ALLREDUCE_BUCKETS "allreduce_buckets"
#define HETRUN_RF_WEIGHTS_CRC32 "weights_crc32"
#define HETRUN_RF_WEIGHTS_CRC32_PER_RANK "weights_crc32_per_rank"
#define HETRUN_RF_WEIGHTS_EQUAL "weights_equal_on_all_ranks"
#define HETRUN_RF_CONFIG_SHA256 "config_sha256"
#define HETRUN_RF_CHECKPOINTS_WRITTEN "checkpoints_written"
#define HETRUN_RF_PRECISION "precision"
#define HETRUN_RF_LOSS_SCALE "loss_scale"
#define HETRUN_RF_SKIPPED_STEPS "skipped_steps"
#define HETRUN_RF_SAMPLES_PER_S "samples_per_s"
#define HETRUN_RF_TRAIN_FLOPS_COUNTED "train_flops_counted"
#define HETRUN_RF_TRAIN_FLOPS_6N "train_flops_6n_estimate"
#define HETRUN_RF_ACHIEVED_FLOP_S "achieved_flop_s"
#define HETRUN_RF_MFU "mfu"
#define HETRUN_RF_PEAK_FLOP_S "peak_flop_s"
#define HETRUN_RF_OPTIMIZER "optimizer"
#define HETRUN_RF_GLOBAL_BATCH "global_batch"
#define HETRUN_RF_LOCAL_BATCH "local_batch"
#define HETRUN_RF_TRAIN_SAMPLES "train_samples"
#define HETRUN_RF_TEST_SAMPLES "test_samples"
#define HETRUN_RF_MIN_ACCURACY "min_accuracy"
#define HETRUN_RF_EPOCH "epoch"                 /**< in an epoch entry */
#define HETRUN_RF_STEPS "steps"                 /**< in an epoch entry */
#define HETRUN_RF_TEST_ACCURACY "test_accuracy" /**< in an epoch entry */
#define HETRUN_RF_SECONDS "seconds"             /**< in an epoch entry */
#define HETRUN_RF_TOKENS_FILE "tokens_file"
#define HETRUN_RF_TRAIN_TOKENS "train_tokens"
#define HETRUN_RF_VAL_TOKENS "val_tokens"
#define HETRUN_RF_GLOBAL_BATCH_TOKENS "global_batch_tokens"
#define HETRUN_RF_LOCAL_SEQUENCES "local_sequences"
#define HETRUN_RF_MICRO_BATCH "micro_batch"
#define HETRUN_RF_ACCUMULATION_STEPS "accumulation_steps"
#define HETRUN_RF_VAL_BITS_PER_BYTE "val_bits_per_byte"
#define HETRUN_RF_TOKENIZER "tokenizer"
#define HETRUN_RF_TOKENIZER_VOCAB "tokenizer_vocab"
#define HETRUN_RF_BYTES_PER_TOKEN "bytes_per_token"
#define HETRUN_RF_UNIGRAM_VAL_LOSS "unigram_val_loss"
#define HETRUN_RF_VAL_WINDOWS "val_windows"
#define HETRUN_RF_SAMPLE "sample"
#define HETRUN_RF_MAX_VAL_LOSS "max_val_loss"
#define HETRUN_RF_DROPOUT "dropout"
/* infer (model, min_accuracy, samples_per_s above; batch, requests with embed's below): the
 * checkpoint, per batch size the requests' latencies. */
#define HETRUN_RF_CHECKPOINT "checkpoint"
#define HETRUN_RF_CHECKPOINT_STEP "checkpoint_step"
#define HETRUN_RF_ACCURACY_SAMPLES "accuracy_samples"
#define HETRUN_RF_LATENCY_P90 "latency_ms_p90"
#define HETRUN_RF_LATENCY_MAX "latency_ms_max"
#define HETRUN_RF_LATENCY_MEAN "latency_ms_mean"
/* Collective points: one row per message size. */
#define HETRUN_RF_ROWS "rows"
#define HETRUN_RF_NRANKS "nranks"
#define HETRUN_RF_BUSBW_FACTOR "busbw_factor"
#define HETRUN_RF_DEVICE_PATH "device_path" /**< "backend" or "host-staged" */
#define HETRUN_RF_WRONG "wrong"             /**< point total; also per column */
/* A row: its size, and up to three columns of timings. */
#define HETRUN_RF_BYTES "bytes"
#define HETRUN_RF_COUNT "count"
#define HETRUN_RF_COL_HOST "host"
#define HETRUN_RF_COL_MPI_REFERENCE "mpi_reference"
#define HETRUN_RF_COL_DEVICE "device"
/* A column. */
#define HETRUN_RF_TIME_US "time_us"
#define HETRUN_RF_TIME_US_MIN "time_us_min"
#define HETRUN_RF_ALGBW_GBPS "algbw_gbps"
#define HETRUN_RF_BUSBW_GBPS "busbw_gbps"
/* The check. */
#define HETRUN_RF_CHECK "check"

/** A point's check outcome; "error" is the runner's word for a point that did not finish. */
typedef enum hetrun_check {
    HETRUN_CHECK_NONE = 0, /**< no check field (a point that never ran) */
    HETRUN_CHECK_PASSED,
    HETRUN_CHECK_FAILED,
    HETRUN_CHECK_SKIPPED,
    HETRUN_CHECK_ERROR
} hetrun_check;

/** Sets `result`'s check field (replacing an earlier one). */
void hetrun_result_set_check(cJSON *result, hetrun_check c);
/** The check field of `result`, HETRUN_CHECK_NONE when absent or not one of the words. */
hetrun_check hetrun_result_check(const cJSON *result);
/** "passed", "failed", "skipped", "error"; NULL for HETRUN_CHECK_NONE. */
const char *hetrun_check_name(hetrun_check c);
/** Whether a point counts as failed (check failed or error). */
int hetrun_check_is_failure(hetrun_check c);

/* embed (workloads/embed.c): the model, the input, the reference check and one entry of
 * `batches` per batch size (batch, requests, latency_ms_*, sentences_per_s, tokens_per_s). */
/* (HETRUN_RF_MODEL: with the train workload's fields) */
#define HETRUN_RF_ATTENTION "attention" /**< gemm or fused, as run */
#define HETRUN_RF_LAYERS "layers"
#define HETRUN_RF_HIDDEN "hidden"
#define HETRUN_RF_MAX_LENGTH "max_length"
#define HETRUN_RF_SENTENCES "sentences"
#define HETRUN_RF_TOKENS "tokens"
#define HETRUN_RF_TRUNCATED "truncated"
#define HETRUN_RF_RANKS_SHARING_INPUT "ranks_sharing_input"
#define HETRUN_RF_OUTPUT "output"
#define HETRUN_RF_REFERENCE_COSINE "reference_cosine" /**< object: the HETRUN_RF_COSINE_* */
#define HETRUN_RF_COSINE_FILE "file"
#define HETRUN_RF_COSINE_MIN "min"
#define HETRUN_RF_COSINE_MEAN "mean"
#define HETRUN_RF_COSINE_MIN_LINE "min_line"
#define HETRUN_RF_COSINE_THRESHOLD "threshold"
#define HETRUN_RF_BATCH "batch"
#define HETRUN_RF_REQUESTS "requests"
#define HETRUN_RF_SENTENCES_PER_S "sentences_per_s"

#endif
