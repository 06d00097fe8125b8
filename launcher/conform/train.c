/* A short data-parallel training run through the module: `mpirun -np 2 hetrun run` on a
 * small synthetic-data MLP spec, with the module's folder first on HETRUN_BACKEND_PATH. The
 * job's own checks (held-out accuracy, weights equal on every rank) decide. Skipped, with the
 * reason, when mpirun or the hetrun executable is not there. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "conform/conform.h"
#include "util/exitcodes.h"
#include "util/safe_file.h"

#define TRAIN_LIMIT_S 240

/* First `name` on PATH, or -1. */
static int find_on_path(const char *name, char *out, size_t len) {
    const char *path = getenv("PATH");
    if (!path) return -1;
    char *copy = strdup(path), *save = NULL;
    int rc = -1;
    for (char *dir = strtok_r(copy, ":", &save); dir && rc; dir = strtok_r(NULL, ":", &save)) {
        snprintf(out, len, "%s/%s", dir[0] ? dir : ".", name);
        if (access(out, X_OK) == 0) rc = 0;
    }
    free(copy);
    return rc;
}

static const char *const spec_text =
    "version: 1\n"
    "job: {name: conform-train, description: hetrun conform data-parallel check}\n"
    "backend: %s\n"
    "seed: 7\n"
    "limits: {timeout: 3m}\n"
    "workloads:\n"
    "  - train:\n"
    "      data: {source: synthetic, samples: 1024, features: 16, classes: 4, spread: 0.5}\n"
    "      hidden: [32]\n"
    "      batch: 32\n"
    "      epochs: 4\n"
    "      min_accuracy: 0.9\n";

/* Removes the run's folder: the files it made there (spec, report, tables, log). */
static void remove_dir(const char *dir) {
    DIR *d = opendir(dir);
    struct dirent *e;
    char path[4400];
    while (d && (e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            unlink(path);
        }
    if (d) closedir(d);
    rmdir(dir);
}

/* What the report says of rank 0's training result: accuracy and rank agreement. */
static void report_summary(const char *path, char *out, size_t n) {
    char *text = NULL, err[256];
    size_t len = 0;
    snprintf(out, n, "no report");
    if (hetrun_file_read_all(path, "report", 64u << 20, &text, &len, err, sizeof err) != 0) return;
    cJSON *r = cJSON_Parse(text);
    free(text);
    const cJSON *ranks = cJSON_GetObjectItemCaseSensitive(r, "ranks");
    const cJSON *res = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(ranks, 0), "results");
    const cJSON *t = cJSON_GetArrayItem(res, 0);
    const cJSON *acc = cJSON_GetObjectItemCaseSensitive(t, "final_test_accuracy");
    const cJSON *eq = cJSON_GetObjectItemCaseSensitive(t, "weights_equal_on_all_ranks");
    const cJSON *chk = cJSON_GetObjectItemCaseSensitive(t, "check");
    if (t)
        snprintf(out, n, "check %s, held-out accuracy %.3f (floor 0.9), weights %s on both ranks",
                 cJSON_IsString(chk) ? chk->valuestring : "?",
                 cJSON_IsNumber(acc) ? acc->valuedouble : -1.0,
                 cJSON_IsTrue(eq) ? "equal" : "NOT equal");
    cJSON_Delete(r);
}

/* The last `n` bytes of a file (the run's log), for the certificate. */
static void tail_of(const char *path, char *out, size_t n) {
    out[0] = '\0';
    FILE *f = fopen(path, "r");
    if (!f) return;
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, size > (long)n - 1 ? size - ((long)n - 1) : 0, SEEK_SET);
    size_t got = fread(out, 1, n - 1, f);
    out[got] = '\0';
    fclose(f);
    for (char *p = out; *p; p++)
        if (*p == '\n') *p = ' ';
}

int conform_group_train(const conform_opts *opts, int device) {
    (void)device;
    char mpirun[4096], hetrun[4200], dir[4096];
    const char *tmpdir = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/hetrun-conform-XXXXXX", tmpdir && tmpdir[0] ? tmpdir : "/tmp");
    if (find_on_path("mpirun", mpirun, sizeof mpirun) != 0) {
        conform_emit_check(-1, "train_data_parallel", CONFORM_SKIP, "mpirun is not on PATH");
        return 0;
    }
    snprintf(hetrun, sizeof hetrun, "%s/hetrun", opts->exe_dir);
    if (access(hetrun, X_OK) != 0) {
        conform_emit_check(-1, "train_data_parallel", CONFORM_SKIP, "%s: %s", hetrun,
                           strerror(errno));
        return 0;
    }
    if (!mkdtemp(dir)) {
        conform_emit_check(-1, "train_data_parallel", CONFORM_FAIL, "mkdtemp: %s", strerror(errno));
        return HETRUN_EXIT_FAILED;
    }
    char spec[4096], text[1024], report[4096], log[4096], err[512];
    snprintf(spec, sizeof spec, "%s/job.yaml", dir);
    snprintf(report, sizeof report, "%s/report.json", dir);
    snprintf(log, sizeof log, "%s/run.log", dir);
    snprintf(text, sizeof text, spec_text, opts->backend);
    if (hetrun_write_atomic(spec, text, strlen(text), err, sizeof err) != 0) {
        conform_emit_check(-1, "train_data_parallel", CONFORM_FAIL, "%s", err);
        return HETRUN_EXIT_FAILED;
    }
    /* The module under test first; as root, Open MPI needs its two variables. */
    char path_env[8400];
    const char *old = getenv("HETRUN_BACKEND_PATH");
    snprintf(path_env, sizeof path_env, "%s%s%s", opts->module_dir, old ? ":" : "", old ? old : "");
    setenv("HETRUN_BACKEND_PATH", path_env, 1);
    if (geteuid() == 0) {
        setenv("OMPI_ALLOW_RUN_AS_ROOT", "1", 0);
        setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1", 0);
    }
    char *argv[] = {mpirun, "-np", "2", "--oversubscribe", hetrun, "run", "-q", "--report",
                    report, spec,  NULL};
    pid_t pid = fork();
    if (pid == 0) {
        setpgid(0, 0); /* one group: a time-out kills mpirun and its ranks together */
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0) dup2(fd, 1), dup2(fd, 2);
        execv(mpirun, argv);
        _exit(127);
    }
    int status = 0, timed_out = 0;
    struct timespec start, now, nap = {0, 50000000};
    clock_gettime(CLOCK_MONOTONIC, &start);
    while (pid > 0 && waitpid(pid, &status, WNOHANG) == 0) {
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec - start.tv_sec > TRAIN_LIMIT_S) {
            kill(-pid, SIGKILL);
            waitpid(pid, &status, 0);
            timed_out = 1;
            break;
        }
        nanosleep(&nap, NULL);
    }
    char tail[400], summary[256];
    tail_of(log, tail, sizeof tail);
    report_summary(report, summary, sizeof summary);
    int bad = pid < 0 || timed_out || !WIFEXITED(status) || WEXITSTATUS(status) != 0;
    if (bad)
        conform_emit_check(-1, "train_data_parallel", CONFORM_FAIL,
                           "mpirun -np 2 hetrun run (2-rank MLP, synthetic data) %s: %s; spec, "
                           "report and log kept in %s; log ends: %s",
                           timed_out             ? "ran past its limit (killed)"
                           : pid < 0             ? "could not start"
                           : WIFSIGNALED(status) ? "was killed by a signal"
                                                 : "failed",
                           summary, dir, tail);
    else
        conform_emit_check(-1, "train_data_parallel", CONFORM_PASS,
                           "mpirun -np 2 hetrun run: 2-rank MLP trained to the accuracy floor "
                           "0.9 with equal weights on both ranks");
    if (!bad) remove_dir(dir);
    return bad ? HETRUN_EXIT_FAILED : 0;
}
