/**
 * @file launcher/workloads/stats.h
 * @brief Small helpers shared by workloads: sample statistics, seeded random fills.
 */
#ifndef HETRUN_WORKLOADS_STATS_H
#define HETRUN_WORKLOADS_STATS_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

#include "hetrun/ops.h"

typedef struct hetrun_stats {
    double min, median, max, mean;
    size_t count;
} hetrun_stats;

/** Statistics of `n` samples (sorts a copy; n may be 0). */
hetrun_stats hetrun_stats_of(const double *samples, size_t n);
/** The p-th percentile (0..100) by linear interpolation of the sorted samples. */
double hetrun_percentile(const double *sorted, size_t n, double p);
/** Adds latency_ms_p50/p90/p99/max/mean of `n` request latencies (ms, any order) to `obj`. */
void hetrun_latency_json(cJSON *obj, const double *ms, size_t n);
/** {"min":..,"median":..,"max":..,"mean":..,"count":..} */
cJSON *hetrun_stats_json(hetrun_stats st);

/** SplitMix64: the one seeded generator, so runs are reproducible everywhere. */
typedef struct hetrun_rng {
    uint64_t state;
} hetrun_rng;
hetrun_rng hetrun_rng_seed(uint64_t seed, uint64_t stream);
uint64_t hetrun_rng_next(hetrun_rng *r);
/** Uniform in [0, 1). */
double hetrun_rng_uniform(hetrun_rng *r);
/** Standard normal (Box-Muller). */
double hetrun_rng_normal(hetrun_rng *r);
/** Fills `count` elements of `dtype` uniformly in [lo, hi) (ints: rounded). */
void hetrun_fill_uniform(void *dst, hetrun_dtype dtype, uint64_t count, double lo, double hi,
                         hetrun_rng *r);

#endif
