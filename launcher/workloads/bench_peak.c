/* Peak FLOP/s for percent-of-peak figures: the backend's declared value
 * (hetrun_device_info.peak_flops), or a measured one from a GEMM probe (best of 3 timed
 * runs of size^3 after one warm-up). A probe takes seconds, so its result is cached in
 * the host's cache dir, keyed by backend, device name, compute units, dtype and probe
 * size, and kept in memory for the rest of the process. The probe's ops go through the
 * session like any other, so they are counted in the rank's usage. A probed peak is the
 * best GEMM rate the device has shown: a bench GEMM point faster than the probe (a probe
 * disturbed by a busy node) raises it, in memory and in the cache. */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report/fields.h"
#include "report/report.h"
#include "workloads/bench.h"
#include "workloads/stats.h"

static double memo[HETRUN_MAX_DTYPES];
static int64_t memo_size[HETRUN_MAX_DTYPES];

static void cache_path(const hetrun_session *s, hetrun_dtype t, int64_t size, char *out,
                       size_t len) {
    const char *dir = hetrun_session_cache_dir(s);
    char dev[96];
    size_t j = 0;
    for (const char *c = s->info.name; *c && j + 1 < sizeof dev; c++)
        dev[j++] = isalnum((unsigned char)*c) ? *c : '_';
    dev[j] = '\0';
    if (!dir) {
        out[0] = '\0';
        return;
    }
    snprintf(out, len, "%s/peak-%s-%s-cu%u-%s-%lld.txt", dir, hetrun_session_backend_name(s), dev,
             s->info.compute_units, hetrun_dtype_name(t), (long long)size);
}

/* One GEMM probe; the best of three timed runs. */
static int probe(hetrun_session *s, hetrun_dtype t, int64_t size, double *peak) {
    hetrun_op_desc d = hetrun_op_desc_init(HETRUN_OP_GEMM, t);
    d.m = d.n = d.k = size;
    if (t == HETRUN_I8) d.out_dtype = HETRUN_I32;
    *peak = 0.0;
    char why[512];
    if (!hetrun_session_supports(s, &d, why, sizeof why)) return 0; /* no GEMM: unknown */
    uint64_t bytes[3];
    hetrun_buffer *buf[3] = {NULL, NULL, NULL};
    hetrun_tensor args[3];
    int rc = -1;
    void *host = NULL;
    for (int a = 0; a < 3; a++) {
        bytes[a] = hetrun_op_arg_bytes(&d, a);
        if (hetrun_session_alloc(s, bytes[a], &buf[a]) != 0) goto out;
        args[a] = hetrun_tensor_at(buf[a], 0);
    }
    /* Random inputs: zeros could take fast paths on some devices. */
    host = malloc(bytes[0]);
    if (!host) {
        snprintf(s->error, sizeof s->error, "peak probe: out of host memory for %llu bytes",
                 (unsigned long long)bytes[0]);
        goto out;
    }
    hetrun_rng rng = hetrun_rng_seed(0x9eaull, (uint64_t)s->rank);
    hetrun_fill_uniform(host, t, bytes[0] / hetrun_dtype_size(t), -1.0, 1.0, &rng);
    if (hetrun_session_h2d(s, args[0], host, bytes[0]) != 0 ||
        hetrun_session_h2d(s, args[1], host, bytes[1]) != 0)
        goto out;
    double best = INFINITY, ms = 0.0;
    if (hetrun_exec_op(s, &d, args) != 0 || hetrun_session_sync(s) != 0) goto out;
    for (int i = 0; i < 3; i++) {
        if (hetrun_session_timer_start(s) != 0 || hetrun_exec_op(s, &d, args) != 0 ||
            hetrun_session_timer_stop(s, &ms) != 0)
            goto out;
        if (ms < best) best = ms;
    }
    if (best > 0.0 && isfinite(best)) *peak = hetrun_op_flops(&d) / (best * 1e-3);
    rc = 0;
out:
    free(host);
    for (int a = 0; a < 3; a++)
        hetrun_session_free(s, buf[a], bytes[a]);
    return rc;
}

int hetrun_bench_peak(hetrun_session *s, hetrun_dtype t, int mode, int64_t probe_size, double *peak,
                      const char **source) {
    *peak = 0.0;
    *source = HETRUN_PEAK_SOURCE_NONE;
    if (mode == HETRUN_BENCH_PEAK_NONE || t >= HETRUN_MAX_DTYPES) return 0;
    if (mode != HETRUN_BENCH_PEAK_PROBE && s->info.peak_flops[t] > 0.0) {
        *peak = s->info.peak_flops[t];
        *source = HETRUN_PEAK_SOURCE_BACKEND;
        return 0;
    }
    if (mode == HETRUN_BENCH_PEAK_BACKEND) return 0;
    if (memo_size[t] == probe_size && memo[t] > 0.0) {
        *peak = memo[t];
        *source = HETRUN_PEAK_SOURCE_PROBE_CACHE;
        return 0;
    }
    char path[4096];
    cache_path(s, t, probe_size, path, sizeof path);
    FILE *f = path[0] ? fopen(path, "r") : NULL;
    if (f) {
        double v = 0.0;
        int n = fscanf(f, "%lf", &v);
        fclose(f);
        if (n == 1 && v > 0.0 && isfinite(v)) {
            memo[t] = *peak = v;
            memo_size[t] = probe_size;
            *source = HETRUN_PEAK_SOURCE_PROBE_CACHE;
            return 0;
        }
    }
    if (probe(s, t, probe_size, peak) != 0) return -1;
    if (*peak <= 0.0) return 0;
    memo[t] = *peak;
    memo_size[t] = probe_size;
    *source = HETRUN_PEAK_SOURCE_PROBE;
    if (path[0]) {
        char text[64], err[512];
        int len = snprintf(text, sizeof text, "%.6e\n", *peak);
        /* A cache that cannot be written only costs a probe next time. */
        (void)hetrun_write_atomic(path, text, (size_t)len, err, sizeof err);
    }
    return 0;
}

void hetrun_bench_peak_observe(hetrun_session *s, hetrun_dtype t, int64_t probe_size,
                               double flops_per_s) {
    if (t >= HETRUN_MAX_DTYPES || memo_size[t] != probe_size || !(flops_per_s > memo[t])) return;
    memo[t] = flops_per_s;
    char path[4096], text[64], err[512];
    cache_path(s, t, probe_size, path, sizeof path);
    int len = snprintf(text, sizeof text, "%.6e\n", flops_per_s);
    if (path[0]) (void)hetrun_write_atomic(path, text, (size_t)len, err, sizeof err);
}
