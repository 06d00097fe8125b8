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
#define HETRUN_RF_TIME_MS "time_ms" /**< stats object: min, median, max, ... */
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
/* Collective points: one row per message size. */
#define HETRUN_RF_ROWS "rows"
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

#endif
