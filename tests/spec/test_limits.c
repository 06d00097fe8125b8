/* Hostile input is refused fast and in bounded memory: a billion-laughs file, a 100,000-deep
 * nested list, a file over 1 MiB, more than 100,000 nodes, a huge scalar and a sweep that
 * would explode. Each must be rejected with the right message in under 100 ms (1 s for the
 * node-count case, which libyaml must tokenise first); measured here and printed; a limit
 * check, not a benchmark. The time is this thread's CPU time, the work the reader did: on
 * a loaded node (ctest -j8 on two cores) waiting for a core is not the reader's cost. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "spec/spec.h"
#include "util/clock.h"
#include "workloads/workload.h"

static int failures;

static void expect_rejected(const char *what, const char *bytes, size_t len, const char *want,
                            double limit_s) {
    /* Sanitizer builds run several times slower: they scale the bounds (tests/CMakeLists). */
    const char *scale = getenv("HETRUN_TEST_TIME_SCALE");
    if (scale && atof(scale) > 1.0) limit_s *= atof(scale);
    hetrun_diags d = {0};
    hetrun_job *job = NULL;
    double t0 = hetrun_thread_cpu_s();
    int rc = hetrun_spec_load_bytes(what, (const unsigned char *)bytes, len, &job, &d);
    double dt = hetrun_thread_cpu_s() - t0;
    bool found = false;
    for (size_t i = 0; i < d.count; i++)
        if (strstr(d.items[i].message, want)) found = true;
    bool ok = rc > 0 && !job && found && dt < limit_s;
    printf("%s %-28s %8zu bytes  rejected in %7.3f ms CPU (limit %.0f ms), %zu error(s)%s%s\n",
           ok ? "ok  " : "FAIL", what, len, dt * 1e3, limit_s * 1e3, d.count,
           d.count ? ", first: " : "", d.count ? d.items[0].message : "");
    if (!found) printf("     expected a message containing '%s'\n", want);
    if (!ok) failures++;
    hetrun_job_free(job);
    hetrun_diags_free(&d);
}

int main(void) {
    /* Billion laughs: 10 levels of 10 aliases would expand to 10^10 nodes. */
    char laughs[4096];
    size_t o = (size_t)snprintf(laughs, sizeof laughs, "version: 1\nl0: &l0 \"lol\"\n");
    for (int lvl = 1; lvl <= 9; lvl++) {
        o += (size_t)snprintf(laughs + o, sizeof laughs - o, "l%d: &l%d [", lvl, lvl);
        for (int j = 0; j < 10; j++)
            o += (size_t)snprintf(laughs + o, sizeof laughs - o, "%s*l%d", j ? "," : "", lvl - 1);
        o += (size_t)snprintf(laughs + o, sizeof laughs - o, "]\n");
    }
    expect_rejected("billion-laughs", laughs, o, "aliases are refused", 0.1);

    /* 100,000-deep nested list. */
    size_t depth = 100000;
    char *deep = malloc(2 * depth + 16);
    memcpy(deep, "x: ", 3);
    memset(deep + 3, '[', depth);
    memset(deep + 3 + depth, ']', depth);
    deep[3 + 2 * depth] = '\n';
    expect_rejected("nested-list-100000", deep, 3 + 2 * depth + 1, "nesting is deeper than", 0.1);
    /* The same depth as block mappings ("a:\n a:\n  a: ..."), only 100 levels. */
    size_t bl = 0;
    char *block = malloc(200 * 110);
    for (int i = 0; i < 100; i++) {
        memset(block + bl, ' ', (size_t)i);
        bl += (size_t)i;
        memcpy(block + bl, "a:\n", 3);
        bl += 3;
    }
    expect_rejected("nested-mapping-100", block, bl, "nesting is deeper than", 0.1);
    free(block);

    /* Over 1 MiB. */
    size_t big = HETRUN_SPEC_MAX_BYTES + 1;
    char *huge = malloc(big);
    memset(huge, '#', big);
    expect_rejected("file-over-1MiB", huge, big, "the limit is", 0.1);
    free(huge);

    /* More than 100,000 nodes in a flow list (just under 1 MiB). */
    size_t n = 120000, hl = 0;
    char *many = malloc(n * 2 + 32);
    hl += (size_t)snprintf(many, 32, "x: [");
    for (size_t i = 0; i < n; i++) {
        many[hl++] = '1';
        many[hl++] = ',';
    }
    many[hl - 1] = ']';
    many[hl++] = '\n';
    /* libyaml must tokenise 100,000 nodes first (~30 ms): a looser bound, not flaky. */
    expect_rejected("120000-nodes", many, hl, "more than 100000 nodes", 1.0);
    free(many);

    /* One scalar over the scalar limit. */
    size_t sl = 200000;
    char *scal = malloc(sl + 16);
    memcpy(scal, "x: ", 3);
    memset(scal + 3, 'a', sl);
    scal[3 + sl] = '\n';
    expect_rejected("scalar-200000", scal, sl + 4, "the limit is 4096 bytes", 0.1);
    free(scal);

    /* A sweep of 600 x 600 = 360,000 points is refused before expanding. */
    char sweep[8192];
    const char *keys[] = {"m", "n"};
    size_t so;
    so = (size_t)snprintf(sweep, sizeof sweep, "version: 1\nworkloads:\n  - gemm:\n      k: 8\n");
    for (int k = 0; k < 2; k++) {
        so += (size_t)snprintf(sweep + so, sizeof sweep - so, "      %s: [", keys[k]);
        for (int i = 1; i <= 600; i++)
            so += (size_t)snprintf(sweep + so, sizeof sweep - so, i > 1 ? ",%d" : "%d", i);
        so += (size_t)snprintf(sweep + so, sizeof sweep - so, "]\n");
    }
    expect_rejected("sweep-360000-points", sweep, so, "more than 10000 workload points", 0.1);

    /* Work per item must stay linear after the error limit: 45,000 unknown keys, a
     * 90,000-name backend list, 30,000 workloads of an unknown type. */
    size_t cap = 1 << 20, bo;
    char *buf = malloc(cap);
    bo = (size_t)snprintf(buf, cap, "version: 1\n");
    for (int i = 0; i < 45000 && bo < cap - 32; i++)
        bo += (size_t)snprintf(buf + bo, cap - bo, "k%d: 1\n", i);
    expect_rejected("45000-unknown-keys", buf, bo, "unknown key", 1.0);
    bo = (size_t)snprintf(buf, cap, "version: 1\nbackend: [");
    for (int i = 0; i < 90000 && bo < cap - 32; i++)
        bo += (size_t)snprintf(buf + bo, cap - bo, "%sb", i ? "," : "");
    bo += (size_t)snprintf(buf + bo, cap - bo, "]\nworkloads:\n  - gemm: {m: 8, n: 8, k: 8}\n");
    expect_rejected("90000-backends", buf, bo, "at most 32 are allowed", 1.0);
    bo = (size_t)snprintf(buf, cap, "version: 1\nworkloads:\n");
    for (int i = 0; i < 30000 && bo < cap - 32; i++)
        bo += (size_t)snprintf(buf + bo, cap - bo, "- gemn: {}\n");
    expect_rejected("30000-unknown-workloads", buf, bo, "did you mean 'gemm'", 1.0);
    free(buf);

    free(deep);
    printf("# %d failed\n", failures);
    return failures ? 1 : 0;
}
