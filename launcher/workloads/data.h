/**
 * @file launcher/workloads/data.h
 * @brief Labelled datasets for the train and infer workloads: CSV (plain or gzip), the
 *        IDX format of MNIST, and a seeded synthetic generator; split and standardise.
 */
#ifndef HETRUN_WORKLOADS_DATA_H
#define HETRUN_WORKLOADS_DATA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "spec/schema.h"

/** Most classes a dataset may have: labels are class indices 0..65535. */
#define HETRUN_DATA_MAX_CLASSES 65536

/** Where the samples come from (index into hetrun_data_sources). */
typedef enum hetrun_data_source {
    HETRUN_DATA_CSV = 0,
    HETRUN_DATA_IDX = 1,
    HETRUN_DATA_SYNTHETIC = 2
} hetrun_data_source;

/** `data:` block of the train and infer workloads (filled by hetrun_data_schema). */
typedef struct hetrun_data_params {
    int source;           /**< ::hetrun_data_source */
    char *path;           /**< CSV file, or IDX images file (.gz accepted) */
    char *labels;         /**< IDX labels file */
    int64_t label_column; /**< CSV: 0-based label column, -1: the last */
    bool header;          /**< CSV: first row is a header */
    int64_t samples;      /**< synthetic: sample count */
    int64_t features;     /**< synthetic: features per sample */
    int64_t classes;      /**< synthetic: class count */
    double spread;        /**< synthetic: cluster standard deviation (centres ~N(0,1)) */
    double test_fraction; /**< held-out fraction (0: no test split) */
    bool standardize;     /**< per-feature mean/std from the training split */
} hetrun_data_params;

/** Schema of the `data:` mapping. */
extern const hetrun_schema hetrun_data_schema;
/** Names of ::hetrun_data_source values, NULL-terminated. */
extern const char *const hetrun_data_sources[];

/** Samples in memory: x is samples x features (row-major fp32), y the class labels. */
typedef struct hetrun_dataset {
    float *x;
    int32_t *y;
    int64_t samples, features, classes;
} hetrun_dataset;

/**
 * Loads the samples `p` describes (all of them, before any split). Classes = largest label
 * + 1, at most HETRUN_DATA_MAX_CLASSES and (CSV) at most the row count. Only regular files
 * are read; a gzip stream must end with its trailer (truncation is an error); every value
 * must be finite as the float32 it is stored as. Returns 0, or -1 with a message naming
 * the file, line/offset and cause in `err`.
 */
int hetrun_data_load(const hetrun_data_params *p, uint64_t seed, hetrun_dataset *out, char *err,
                     size_t err_len);
/** Reads a CSV or gzipped CSV (gzip detected from the bytes). Labels: non-negative integers. */
int hetrun_data_load_csv(const char *path, int64_t label_column, bool header, hetrun_dataset *out,
                         char *err, size_t err_len);
/** Reads IDX images (ubyte, any rank >= 2, scaled to [0,1]) and IDX labels (ubyte). */
int hetrun_data_load_idx(const char *images, const char *labels, hetrun_dataset *out, char *err,
                         size_t err_len);
/** Gaussian clusters: `classes` centres ~N(0,1) per feature, samples around them. */
int hetrun_data_synthetic(int64_t samples, int64_t features, int64_t classes, double spread,
                          uint64_t seed, hetrun_dataset *out, char *err, size_t err_len);
/**
 * Shuffles (seeded) and splits `all` into train and test (test gets round(fraction*n)).
 * Both share `all`'s class count. Returns 0 or -1 (out of memory) with `err`.
 */
int hetrun_data_split(const hetrun_dataset *all, double test_fraction, uint64_t seed,
                      hetrun_dataset *train, hetrun_dataset *test, char *err, size_t err_len);
/** Per-feature mean and std (population; std 0 becomes 1) of `d`, into mean[], std[]. */
void hetrun_data_moments(const hetrun_dataset *d, float *mean, float *std);
/** x = (x - mean) / std, per feature. */
void hetrun_data_apply_moments(hetrun_dataset *d, const float *mean, const float *std);
/** Frees the arrays and zeroes `d`. */
void hetrun_data_free(hetrun_dataset *d);

#endif
