#include "workloads/stats.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/reference.h"
#include "report/fields.h"

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double hetrun_percentile(const double *sorted, size_t n, double p) {
    if (n == 0) return NAN;
    double pos = p / 100.0 * (double)(n - 1);
    size_t lo = (size_t)floor(pos), hi = lo + 1 < n ? lo + 1 : lo;
    return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - (double)lo);
}

void hetrun_latency_json(cJSON *obj, const double *ms, size_t n) {
    double *s = malloc((n ? n : 1) * sizeof *s);
    if (!s) return;
    memcpy(s, ms, n * sizeof *s);
    qsort(s, n, sizeof *s, cmp_double);
    double sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += s[i];
    cJSON_AddNumberToObject(obj, HETRUN_RF_LATENCY_P50, hetrun_percentile(s, n, 50));
    cJSON_AddNumberToObject(obj, HETRUN_RF_LATENCY_P90, hetrun_percentile(s, n, 90));
    cJSON_AddNumberToObject(obj, HETRUN_RF_LATENCY_P99, hetrun_percentile(s, n, 99));
    cJSON_AddNumberToObject(obj, HETRUN_RF_LATENCY_MAX, n ? s[n - 1] : NAN);
    cJSON_AddNumberToObject(obj, HETRUN_RF_LATENCY_MEAN, n ? sum / (double)n : NAN);
    free(s);
}

hetrun_stats hetrun_stats_of(const double *samples, size_t n) {
    hetrun_stats st = {NAN, NAN, NAN, NAN, n};
    if (n == 0) return st;
    double *s = malloc(n * sizeof *s);
    if (!s) return st;
    memcpy(s, samples, n * sizeof *s);
    qsort(s, n, sizeof *s, cmp_double);
    double sum = 0.0;
    for (size_t i = 0; i < n; i++)
        sum += s[i];
    st.min = s[0];
    st.max = s[n - 1];
    st.median = hetrun_percentile(s, n, 50.0);
    st.mean = sum / (double)n;
    free(s);
    return st;
}

cJSON *hetrun_stats_json(hetrun_stats st) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, HETRUN_RF_STAT_MIN, st.min);
    cJSON_AddNumberToObject(o, HETRUN_RF_STAT_MEDIAN, st.median);
    cJSON_AddNumberToObject(o, HETRUN_RF_STAT_MAX, st.max);
    cJSON_AddNumberToObject(o, HETRUN_RF_STAT_MEAN, st.mean);
    cJSON_AddNumberToObject(o, HETRUN_RF_STAT_COUNT, (double)st.count);
    return o;
}

hetrun_rng hetrun_rng_seed(uint64_t seed, uint64_t stream) {
    hetrun_rng r = {seed ^ (0x9e3779b97f4a7c15ull * (stream + 1))};
    hetrun_rng_next(&r);
    return r;
}

uint64_t hetrun_rng_next(hetrun_rng *r) {
    uint64_t z = (r->state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

double hetrun_rng_uniform(hetrun_rng *r) {
    return (double)(hetrun_rng_next(r) >> 11) * 0x1.0p-53;
}

double hetrun_rng_normal(hetrun_rng *r) {
    double u1 = hetrun_rng_uniform(r), u2 = hetrun_rng_uniform(r);
    if (u1 < 1e-300) u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

void hetrun_fill_uniform(void *dst, hetrun_dtype dtype, uint64_t count, double lo, double hi,
                         hetrun_rng *r) {
    for (uint64_t i = 0; i < count; i++) {
        double v = lo + (hi - lo) * hetrun_rng_uniform(r);
        if (dtype == HETRUN_I8 || dtype == HETRUN_I32) v = floor(v);
        hetrun_store_from_double(dst, dtype, i, v);
    }
}
