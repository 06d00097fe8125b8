/* One thread count per rank, from the user's, the scheduler's and the plan's (threads.h). */
#include "topo/threads.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* First entry of a thread-count variable (OMP_NUM_THREADS may be a nested list "4,2");
 * -1 when malformed. */
static int parse_threads(const char *v) {
    char *end = NULL;
    long n = strtol(v, &end, 10);
    if (end == v || (*end && *end != ',') || n < 1 || n > 4096) return -1;
    return (int)n;
}

int hetrun_threads_decide(const char *(*get)(const char *name), int cores, int pus, char *source,
                          size_t srclen) {
    static const char *const user_vars[] = {"OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                            "MKL_NUM_THREADS"};
    char skipped[256] = "";
    for (size_t i = 0; i < sizeof user_vars / sizeof user_vars[0]; i++) {
        const char *v = get(user_vars[i]);
        if (!v || !*v) continue;
        int n = parse_threads(v);
        if (n > 0) {
            snprintf(source, srclen, "%s%s", user_vars[i], skipped);
            return n;
        }
        size_t l = strlen(skipped);
        snprintf(skipped + l, sizeof skipped - l, "; %s=\"%.32s\" ignored (not 1..4096)",
                 user_vars[i], v);
    }
    const char *v = get("SLURM_CPUS_PER_TASK");
    if (v && *v) {
        int n = parse_threads(v);
        if (n > 0) {
            if (pus > 0 && n > pus) {
                snprintf(source, srclen,
                         "SLURM_CPUS_PER_TASK=%d capped to the %d cpus of the rank%s", n, pus,
                         skipped);
                return pus;
            }
            snprintf(source, srclen, "SLURM_CPUS_PER_TASK%s", skipped);
            return n;
        }
        size_t l = strlen(skipped);
        snprintf(skipped + l, sizeof skipped - l, "; SLURM_CPUS_PER_TASK=\"%.32s\" ignored", v);
    }
    snprintf(source, srclen, "cores%s", skipped);
    return cores > 0 ? cores : 1;
}

int hetrun_threads_export(int threads) {
    static const char *const vars[] = {"OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                       "MKL_NUM_THREADS"};
    char v[16];
    snprintf(v, sizeof v, "%d", threads > 0 ? threads : 1);
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
        /* A value that already means this count stays (OMP_NUM_THREADS="4,2" keeps its
         * nested levels). */
        const char *cur = getenv(vars[i]);
        if (cur && parse_threads(cur) == threads) continue;
        if (setenv(vars[i], v, 1) != 0) return -1;
    }
    return 0;
}
