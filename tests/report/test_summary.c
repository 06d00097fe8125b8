/* Aggregation over ranks, on synthetic rank records with known answers (no MPI run):
 * per-rank values and min/median/max, stragglers at the threshold, usage totals (energy
 * null unless every rank has it, memory peak is the max), collective rows from the max
 * time over ranks, busbw factors, and the three CSV tables (quoting included). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "report/fields.h"
#include "report/live_usage.h"
#include "report/report.h"
#include "workloads/bench.h"

static int failures, checks;
#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        checks++;                                                                                  \
        if (!(cond)) {                                                                             \
            printf("FAIL %s:%d: ", __FILE__, __LINE__);                                            \
            printf(__VA_ARGS__);                                                                   \
            printf("\n");                                                                          \
            failures++;                                                                            \
        }                                                                                          \
    } while (0)

static double num(const cJSON *o, const char *path) {
    char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    const cJSON *cur = o;
    for (char *tok = strtok(buf, "."); tok && cur; tok = strtok(NULL, "."))
        cur = (*tok >= '0' && *tok <= '9') ? cJSON_GetArrayItem(cur, atoi(tok))
                                           : cJSON_GetObjectItem(cur, tok);
    return cJSON_IsNumber(cur) ? cur->valuedouble : NAN;
}

/* Rank r: one op point (median time t_ms, gflops g) and one allreduce point with rows of
 * 1 KiB and 1 MiB whose host times are `coll_us` scaled by row. */
static cJSON *rank_record(int r, double t_ms, double g, double coll_us, double energy) {
    cJSON *rk = cJSON_CreateObject();
    cJSON_AddNumberToObject(rk, "rank", r);
    cJSON_AddStringToObject(rk, "host", r < 2 ? "node-a" : "node-b");
    cJSON_AddStringToObject(rk, "backend", "cpu");
    cJSON *dev = cJSON_AddObjectToObject(rk, "device");
    cJSON_AddStringToObject(dev, "name", "Test CPU");
    cJSON_AddStringToObject(dev, "kind", "cpu");
    cJSON_AddNumberToObject(cJSON_AddObjectToObject(dev, "peak_flops"), "fp32", 1e12);
    cJSON_AddItemToObject(rk, "cpus", cJSON_CreateIntArray((const int[]){2 * r, 2 * r + 1}, 2));
    cJSON *results = cJSON_AddArrayToObject(rk, "results");
    cJSON *op = cJSON_CreateObject();
    cJSON_AddStringToObject(op, "workload", "bench");
    cJSON_AddStringToObject(op, "label", "bench[op=gemm,size=64]");
    cJSON_AddStringToObject(op, "op", "gemm");
    cJSON_AddStringToObject(op, "dtype", "fp32");
    cJSON_AddNumberToObject(op, "m", 64);
    cJSON_AddNumberToObject(op, "n", 64);
    cJSON_AddNumberToObject(op, "k", 64);
    /* The workload's own figure (another peak): the summary recomputes it against one. */
    cJSON_AddNumberToObject(op, "percent_of_peak", 1.0);
    cJSON_AddNumberToObject(op, "gflops", g);
    cJSON_AddNumberToObject(op, "gbps", g / 10);
    cJSON *tm = cJSON_AddObjectToObject(op, "time_ms");
    cJSON_AddNumberToObject(tm, "median", t_ms);
    cJSON_AddStringToObject(op, "check", "passed");
    cJSON_AddItemToArray(results, op);
    cJSON *co = cJSON_CreateObject();
    cJSON_AddStringToObject(co, "workload", "bench");
    cJSON_AddStringToObject(co, "label", "allreduce, \"quoted\"");
    cJSON_AddStringToObject(co, "op", "allreduce");
    cJSON_AddStringToObject(co, "dtype", "fp32");
    cJSON_AddNumberToObject(co, "nranks", 4);
    cJSON_AddNumberToObject(co, "busbw_factor",
                            hetrun_bench_busbw_factor(HETRUN_BENCH_ALLREDUCE, 4));
    cJSON *rows = cJSON_AddArrayToObject(co, "rows");
    for (int i = 0; i < 2; i++) {
        cJSON *row = cJSON_CreateObject();
        double bytes = i ? 1048576.0 : 1024.0;
        cJSON_AddNumberToObject(row, "bytes", bytes);
        cJSON_AddNumberToObject(row, "count", bytes / 4);
        cJSON *h = cJSON_AddObjectToObject(row, "host");
        cJSON_AddNumberToObject(h, "time_us", coll_us * (i ? 100 : 1));
        cJSON_AddNumberToObject(h, "time_us_min", coll_us * (i ? 90 : 1));
        cJSON_AddNumberToObject(h, "wrong", r == 3 && i == 1 ? 2 : 0);
        cJSON_AddItemToArray(rows, row);
    }
    cJSON_AddStringToObject(co, "check", r == 3 ? "failed" : "passed");
    cJSON_AddItemToArray(results, co);
    /* A training point: loss of the last epoch, final accuracy. */
    cJSON *tr = cJSON_CreateObject();
    cJSON_AddStringToObject(tr, "workload", "train");
    cJSON_AddStringToObject(tr, "label", "train[optimizer=adamw]");
    cJSON *epochs = cJSON_AddArrayToObject(tr, "epochs");
    for (int e = 0; e < 2; e++) {
        cJSON *ep = cJSON_CreateObject();
        cJSON_AddNumberToObject(ep, "loss", e ? 0.25 + 0.01 * r : 2.0);
        cJSON_AddItemToArray(epochs, ep);
    }
    cJSON_AddNumberToObject(tr, "final_test_accuracy", 0.9);
    hetrun_result_set_check(tr, HETRUN_CHECK_SKIPPED);
    cJSON_AddItemToArray(results, tr);
    hetrun_usage u;
    memset(&u, 0, sizeof u);
    u.wall_s = 10.0 + r;
    u.device_busy_s = 5.0 + r;
    u.flops = 1e9 * (r + 1);
    u.bytes = 1e6;
    u.ops = 7;
    u.mem_peak = (uint64_t)(1000 * (r + 1));
    cJSON *usage = hetrun_report_usage_json(&u, NULL, -1.0, energy, 1);
    cJSON_AddItemToObject(rk, "usage", usage);
    cJSON_AddStringToObject(rk, "status", "ok");
    return rk;
}

static cJSON *report_of(const double *energy) {
    /* Rank 3 is 30 % slower on the op and 50 % slower on the collective. */
    static const double t[4] = {10, 10.5, 9.5, 13}, c[4] = {20, 20, 20, 30};
    cJSON *rep = cJSON_CreateObject();
    cJSON_AddStringToObject(rep, "status", "ok");
    cJSON *ranks = cJSON_AddArrayToObject(rep, "ranks");
    for (int r = 0; r < 4; r++)
        cJSON_AddItemToArray(ranks, rank_record(r, t[r], 100.0 / t[r], c[r], energy[r]));
    hetrun_report_summarize(rep);
    return rep;
}

static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    return buf;
}

int main(void) {
    unsetenv("HETRUN_STRAGGLER_THRESHOLD");
    const double no_energy[4] = {1.0, 2.0, -1, 4.0}, energy[4] = {1.0, 2.0, 3.0, 4.0};
    cJSON *rep = report_of(no_energy);
    const cJSON *s = cJSON_GetObjectItem(rep, "summary");
    CHECK(num(s, "ranks") == 4, "summary.ranks");
    CHECK(num(s, "straggler_threshold") == 0.10, "default threshold 0.10");
    CHECK(num(s, "checks.passed") == 7 && num(s, "checks.failed") == 1 &&
              num(s, "checks.skipped") == 4,
          "checks %g passed %g failed", num(s, "checks.passed"), num(s, "checks.failed"));
    /* Usage totals and spreads. */
    CHECK(num(s, "usage.wall_seconds") == 10 + 11 + 12 + 13, "wall total %g",
          num(s, "usage.wall_seconds"));
    CHECK(num(s, "usage.flops") == 1e9 * 10, "flops total");
    CHECK(num(s, "usage.device_memory_peak_bytes") == 4000, "memory peak is the max");
    CHECK(cJSON_IsNull(cJSON_GetObjectItem(cJSON_GetObjectItem(s, "usage"), "energy_joules")),
          "energy must be null when one rank has none");
    CHECK(num(s, "usage_per_rank.wall_seconds.median") == 11.5, "wall median");
    CHECK(num(s, "usage_per_rank.wall_seconds.per_rank.3") == 13, "wall of rank 3");
    /* 13 > 11.5 * 1.1 = 12.65: rank 3 is a wall-time straggler, rank 2 (12) is not. */
    const cJSON *ws = cJSON_GetObjectItem(
        cJSON_GetObjectItem(cJSON_GetObjectItem(s, "usage_per_rank"), "wall_seconds"),
        "stragglers");
    CHECK(cJSON_GetArraySize(ws) == 1 && num(ws, "0") == 3, "wall stragglers should be [3]");
    /* Op point: median time over ranks 10.25; 13 > 11.275 flags rank 3 only. */
    const cJSON *p = cJSON_GetArrayItem(cJSON_GetObjectItem(s, "workloads"), 0);
    CHECK(num(p, "time_ms_median.median") == 10.25, "time median %g",
          num(p, "time_ms_median.median"));
    CHECK(num(p, "time_ms_median.min") == 9.5 && num(p, "time_ms_median.max") == 13,
          "time min/max");
    CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(p, "stragglers")) == 1 &&
              num(p, "stragglers.0") == 3,
          "op stragglers should be [3]");
    CHECK(fabs(num(p, "gflops.total") - (10 + 100 / 10.5 + 100 / 9.5 + 100 / 13.0)) < 1e-9,
          "gflops total");
    CHECK(num(p, "gflops.per_rank.2") == 100 / 9.5, "gflops of rank 2");
    /* Collective: the 1 MiB row's host time is the max over ranks (3000 us). */
    const cJSON *c = cJSON_GetArrayItem(cJSON_GetObjectItem(s, "collectives"), 0);
    CHECK(c != NULL, "collective summary missing");
    CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(s, "workloads")) == 2,
          "collectives must not appear among op points");
    double t = num(c, "rows.1.host.time_us"), bus = num(c, "rows.1.host.busbw_gbps");
    CHECK(t == 3000, "1 MiB time %g, want the max 3000", t);
    CHECK(fabs(bus - 1048576.0 / 3000e-6 / 1e9 * 1.5) < 1e-9, "busbw %g", bus);
    CHECK(num(c, "rows.1.host.wrong") == 2, "wrong summed over ranks");
    CHECK(num(c, "rows.1.host.time_us_min") == 2700, "best time is the max of the bests");
    const cJSON *row1 = cJSON_GetArrayItem(cJSON_GetObjectItem(c, "rows"), 1);
    const cJSON *cs = cJSON_GetObjectItem(cJSON_GetObjectItem(row1, "host"), "stragglers");
    CHECK(cJSON_GetArraySize(cs) == 1 && num(cs, "0") == 3, "collective straggler should be [3]");

    /* One peak per device and dtype: the declared one; %peak against it. */
    const cJSON *pk = cJSON_GetArrayItem(cJSON_GetObjectItem(s, "peaks"), 0);
    CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(s, "peaks")) == 1 &&
              num(pk, "peak_flops") == 1e12 &&
              !strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(pk, "source")), "declared"),
          "peaks should hold the declared fp32 peak once");
    CHECK(fabs(num(p, "percent_of_peak.per_rank.0") - 100.0 * 10e9 / 1e12) < 1e-9,
          "percent of peak of rank 0: %g", num(p, "percent_of_peak.per_rank.0"));
    CHECK(!strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(p, "title")), "gemm fp32 64^3"),
          "point title names the op: %s", cJSON_GetStringValue(cJSON_GetObjectItem(p, "title")));
    /* The training point's own figures. */
    const cJSON *tp = cJSON_GetArrayItem(cJSON_GetObjectItem(s, "workloads"), 1);
    CHECK(fabs(num(tp, "metrics.loss.median") - 0.265) < 1e-12, "last-epoch loss median %g",
          num(tp, "metrics.loss.median"));
    CHECK(num(tp, "metrics.accuracy.min") == 0.9, "accuracy");
    /* The table: op titles, slowest ranks as r3, workload figures. */
    char *tbl = NULL;
    size_t tlen = 0;
    FILE *mf = open_memstream(&tbl, &tlen);
    hetrun_report_print_table(rep, mf);
    fclose(mf);
    CHECK(tbl && strstr(tbl, "slowest rank(s)") && strstr(tbl, " r3 "), "slowest rank as r3");
    CHECK(tbl && strstr(tbl, "gemm fp32 64^3"), "table names the op");
    CHECK(tbl && strstr(tbl, "loss 0.265 acc 0.9"), "table shows loss and accuracy:\n%s", tbl);
    free(tbl);
    /* Usage record: the two ranks of each host share its one CPU device. */
    cJSON *acc = hetrun_report_accounting(rep);
    const cJSON *a0 = cJSON_GetArrayItem(cJSON_GetObjectItem(acc, "ranks"), 0);
    CHECK(num(a0, "device_share") == 0.5 && num(a0, "device_seconds") == 5.0,
          "device share %g seconds %g", num(a0, "device_share"), num(a0, "device_seconds"));
    CHECK(num(a0, "cpu_core_seconds") == 20.0, "cpu core seconds %g", num(a0, "cpu_core_seconds"));
    CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(acc, "hosts")) == 2, "two hosts");
    cJSON_Delete(acc);

    /* CSV tables beside the report, quoting included. */
    char dir[] = "/tmp/hetrun-summary-XXXXXX", path[256], other[300], err[512];
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    snprintf(path, sizeof path, "%s/r.csv", dir);
    CHECK(hetrun_report_write_csv(path, rep, err, sizeof err) == 0, "write_csv: %s", err);
    char *text = slurp(path);
    CHECK(text && strncmp(text, "rank,host,backend", 17) == 0, "results CSV header");
    CHECK(text && strstr(text, "\"bench[op=gemm,size=64]\"") != NULL, "label with a comma quoted");
    CHECK(text && strstr(text, ",64,64,64,") && strstr(text, ",passed,gemm fp32 64^3\n"),
          "results CSV: m, n, k and the title");
    snprintf(other, sizeof other, "%s/r.collectives.csv", dir);
    text = slurp(other);
    CHECK(text && strstr(text, "\"allreduce, \"\"quoted\"\"\"") != NULL, "quotes doubled");
    int lines = 0;
    for (char *q = text; q && *q; q++)
        lines += *q == '\n';
    CHECK(lines == 1 + 4 * 2, "collectives CSV: %d lines, want header + 4 ranks x 2 rows", lines);
    snprintf(other, sizeof other, "%s/r.usage.csv", dir);
    text = slurp(other);
    lines = 0;
    for (char *q = text; q && *q; q++)
        lines += *q == '\n';
    CHECK(lines == 5, "usage CSV: %d lines, want 5", lines);
    CHECK(text && strncmp(text, "job,job_id,step_id,user,", 24) == 0, "usage CSV header");
    cJSON_Delete(rep);

    /* Energy summed when every rank has it; threshold from the environment. */
    setenv("HETRUN_STRAGGLER_THRESHOLD", "0.5", 1);
    rep = report_of(energy);
    s = cJSON_GetObjectItem(rep, "summary");
    CHECK(num(s, "usage.energy_joules") == 10, "energy total %g", num(s, "usage.energy_joules"));
    CHECK(num(s, "straggler_threshold") == 0.5, "threshold from the environment");
    p = cJSON_GetArrayItem(cJSON_GetObjectItem(s, "workloads"), 0);
    CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(p, "stragglers")) == 0,
          "no straggler at a 50%% threshold");
    cJSON_Delete(rep);

    /* A measured peak where the backend declares none; the best probe wins. */
    rep = cJSON_CreateObject();
    cJSON *ranks = cJSON_AddArrayToObject(rep, "ranks");
    for (int r = 0; r < 2; r++) {
        cJSON *rk = rank_record(r, 10, 10, 20, -1);
        cJSON_DeleteItemFromObject(cJSON_GetObjectItem(rk, "device"), "peak_flops");
        cJSON *op = cJSON_GetArrayItem(cJSON_GetObjectItem(rk, "results"), 0);
        cJSON_AddNumberToObject(op, "peak_flops", r ? 4e10 : 5e10);
        cJSON_AddStringToObject(op, "peak_source", r ? "probe" : "probe-cache");
        cJSON_AddItemToArray(ranks, rk);
    }
    hetrun_report_summarize(rep);
    pk = cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetObjectItem(rep, "summary"), "peaks"), 0);
    CHECK(num(pk, "peak_flops") == 5e10 &&
              !strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(pk, "source")), "measured"),
          "measured peak %g", num(pk, "peak_flops"));
    p = cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetObjectItem(rep, "summary"), "workloads"),
                           0);
    CHECK(num(p, "percent_of_peak.per_rank.1") == 20.0, "both ranks against the one peak: %g",
          num(p, "percent_of_peak.per_rank.1"));
    cJSON_Delete(rep);

    /* Check words round-trip; an unknown word is no check. */
    cJSON *res = cJSON_CreateObject();
    hetrun_result_set_check(res, HETRUN_CHECK_PASSED);
    hetrun_result_set_check(res, HETRUN_CHECK_FAILED);
    CHECK(hetrun_result_check(res) == HETRUN_CHECK_FAILED && cJSON_GetArraySize(res) == 1,
          "set_check replaces");
    cJSON_ReplaceItemInObject(res, "check", cJSON_CreateString("done"));
    CHECK(hetrun_result_check(res) == HETRUN_CHECK_NONE, "unknown word");
    cJSON_Delete(res);

    /* Usage so far, for the failure path: counters as they stand, final false. */
    hetrun_usage lu;
    memset(&lu, 0, sizeof lu);
    hetrun_usage_clock clk = hetrun_usage_clock_start();
    cJSON *live = cJSON_CreateObject();
    cJSON_AddNumberToObject(live, "rank", 5);
    cJSON_AddStringToObject(live, "host", "node-z");
    char buf[4096];
    CHECK(hetrun_usage_live_render("x", buf, sizeof buf) == -1, "nothing registered yet");
    hetrun_usage_live_set(live, &lu, &clk);
    lu.flops = 123.0; /* counted after registration: the render must see it */
    lu.ops = 3;
    CHECK(hetrun_usage_live_render("killed by signal 15", buf, sizeof buf) > 0, "render");
    cJSON *lr = cJSON_Parse(buf);
    CHECK(
        lr && num(lr, "rank") == 5 && num(lr, "usage.flops") == 123.0 &&
            num(lr, "usage.ops") == 3 &&
            cJSON_IsFalse(cJSON_GetObjectItem(cJSON_GetObjectItem(lr, "usage"), "final")) &&
            !strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(lr, "error")), "killed by signal 15"),
        "live record: %s", buf);
    cJSON_Delete(lr);
    CHECK(hetrun_usage_live_render(NULL, buf, 16) == -1 && buf[0] == '\0',
          "a buffer too small gives -1 and an empty text");
    lr = hetrun_usage_live_rank(NULL);
    CHECK(lr && !strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(lr, "state")), "running"),
          "a live record is running");
    cJSON_Delete(lr);
    /* Closed: the final usage stays for a failure report written while the job gathers. */
    cJSON_AddItemToObject(live, "usage", hetrun_report_usage_json(&lu, &clk, -1.0, -1.0, 1));
    hetrun_usage_live_close(live);
    lu.flops = 999.0; /* the counters may go away now: no longer read */
    lr = hetrun_usage_live_rank(NULL);
    CHECK(lr && num(lr, "usage.flops") == 123.0 &&
              cJSON_IsTrue(cJSON_GetObjectItem(cJSON_GetObjectItem(lr, "usage"), "final")) &&
              !strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(lr, "state")), "finished") &&
              !strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(lr, "host")), "node-z"),
          "closed record keeps identity and final usage");
    cJSON_Delete(lr);
    hetrun_usage_live_clear();
    CHECK(hetrun_usage_live_rank(NULL) == NULL, "cleared");
    cJSON_Delete(live);

    /* Job identity: the scheduler's account wins over the spec's. */
    unsetenv("PBS_JOBID");
    unsetenv("OMPI_MCA_orte_ess_jobid");
    unsetenv("PMIX_NAMESPACE");
    setenv("SLURM_JOB_ID", "4242", 1);
    setenv("SLURM_STEP_ID", "7", 1);
    setenv("SLURM_JOB_ACCOUNT", "chem", 1);
    setenv("SLURM_JOB_USER", "alice", 1);
    cJSON *jo = cJSON_CreateObject();
    hetrun_report_job_identity(jo, "from-spec");
    CHECK(!strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(jo, "scheduler")), "slurm") &&
              !strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(jo, "job_id")), "4242") &&
              !strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(jo, "step_id")), "7") &&
              !strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(jo, "user")), "alice") &&
              !strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(jo, "account")), "chem") &&
              !strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(jo, "account_source")), "scheduler"),
          "slurm identity");
    cJSON_Delete(jo);
    unsetenv("SLURM_JOB_ID");
    unsetenv("SLURM_STEP_ID");
    unsetenv("SLURM_JOB_ACCOUNT");
    unsetenv("SLURM_JOB_USER");
    jo = cJSON_CreateObject();
    hetrun_report_job_identity(jo, "from-spec");
    CHECK(!strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(jo, "scheduler")), "none") &&
              cJSON_IsNull(cJSON_GetObjectItem(jo, "job_id")) &&
              !strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(jo, "account")), "from-spec") &&
              !strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(jo, "account_source")), "spec") &&
              cJSON_IsString(cJSON_GetObjectItem(jo, "user")),
          "no scheduler: the spec's account");
    cJSON_Delete(jo);

    /* busbw conventions (nccl-tests). */
    CHECK(hetrun_bench_busbw_factor(HETRUN_BENCH_ALLREDUCE, 8) == 2.0 * 7 / 8, "allreduce factor");
    CHECK(hetrun_bench_busbw_factor(HETRUN_BENCH_ALLGATHER, 8) == 7.0 / 8, "allgather factor");
    CHECK(hetrun_bench_busbw_factor(HETRUN_BENCH_REDUCE_SCATTER, 2) == 0.5, "reduce-scatter");
    CHECK(hetrun_bench_busbw_factor(HETRUN_BENCH_BROADCAST, 8) == 1.0, "broadcast factor");

    static const char *const files[] = {"r.csv", "r.collectives.csv", "r.usage.csv"};
    for (int i = 0; i < 3; i++) {
        snprintf(other, sizeof other, "%s/%s", dir, files[i]);
        unlink(other);
    }
    rmdir(dir);
    printf("# %d checks, %d failed\n", checks, failures);
    return failures ? 1 : 0;
}
