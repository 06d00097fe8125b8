/* Timeout and signal guard for `hetrun run` (see run_guard.h). A signal handler may only
 * call async-signal-safe functions, and Open MPI's SIGKILL follows its SIGTERM within
 * milliseconds, so every report a signal can end the job with is written in advance and
 * the handler only renames it. */
#include "cli/run_guard.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "hetrun_version.h"
#include "report/report.h"
#include "util/clock.h"
#include "util/exitcodes.h"

/* The reports kept ready: one per way a signal can end the job. */
enum { PRE_TIMEOUT, PRE_TERM, PRE_INT, PRE_HUP, PRE_COUNT };
static const char *const pre_tags[PRE_COUNT] = {"timeout", "sigterm", "sigint", "sighup"};
static const char *const pre_reasons[PRE_COUNT] = {NULL, "killed by signal 15 (SIGTERM)",
                                                   "killed by signal 2 (SIGINT)",
                                                   "killed by signal 1 (SIGHUP)"};

/* Sized for the job record, whatever the length of its name or spec path. */
static char path_final[4096], path_pre[PRE_COUNT][4300], path_new[4300], path_failtmp[4300];
static char reason_timeout[128], *job_saved;
static volatile sig_atomic_t armed;
static int have_report;
static double arm_epoch;

/* Whoever ends the job (a handler, hetrun_guard_fail) sets `ending` first and then waits
 * for a refresh that is renaming the placeholder over the report (`in_rename`), so the
 * placeholder never replaces the failed report: both sides store, then load (seq_cst). */
static atomic_int ending, in_rename;

/* The refresh thread (rank 0 with a report). */
static pthread_t refresher;
static int refreshing, refresh_stop, want_refresh;
static pthread_mutex_t refresh_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t refresh_cv = PTHREAD_COND_INITIALIZER;
static const double refresh_period_s = 2.0;

/* This rank's usage: live counters of the open session, or the last values once closed. */
static const hetrun_usage *_Atomic tracked;
static hetrun_usage kept;
static double track_t0, track_epoch, kept_wall;
static atomic_int kept_valid;
static void (*_Atomic peers_append)(cJSON *ranks, int failed_rank, const char *others,
                                    const char *reason);

static double epoch_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void iso(double epoch, char *buf, size_t len) {
    time_t t = (time_t)epoch;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

void hetrun_guard_track_usage(const hetrun_usage *u) {
    if (u) {
        track_t0 = hetrun_now_s();
        track_epoch = epoch_now();
        atomic_store(&kept_valid, 0);
        atomic_store(&tracked, u);
        return;
    }
    const hetrun_usage *t = atomic_load(&tracked);
    if (!t) return;
    kept = *t;
    kept_wall = hetrun_now_s() - track_t0;
    atomic_store(&kept_valid, 1);
    atomic_store(&tracked, NULL);
}

int hetrun_guard_usage_snapshot(hetrun_usage *out, double *started) {
    const hetrun_usage *t = atomic_load(&tracked);
    if (t) {
        /* Read while the rank runs: counters may be a step behind, never invented. */
        *out = *t;
        out->wall_s = hetrun_now_s() - track_t0;
    } else if (atomic_load(&kept_valid)) {
        *out = kept;
        out->wall_s = kept_wall;
    } else {
        return -1;
    }
    *started = track_epoch;
    return 0;
}

cJSON *hetrun_guard_rank_record(int rank, const char *host, const char *state, const char *reason,
                                double started, double as_of, const hetrun_usage *u) {
    char when[32], error[1200];
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "rank", rank);
    cJSON_AddStringToObject(o, "host", host ? host : "");
    cJSON_AddStringToObject(o, "status", "failed");
    cJSON_AddStringToObject(o, "state", state);
    if (!strcmp(state, "running"))
        snprintf(error, sizeof error, "did not finish: still running when this report was written");
    else if (!strcmp(state, "finished"))
        snprintf(error, sizeof error,
                 "finished its work; the job ended before its record reached rank 0 (%s)", reason);
    else if (!strcmp(state, "interrupted"))
        snprintf(error, sizeof error, "interrupted: %s", reason);
    else
        snprintf(error, sizeof error, "%s", reason);
    cJSON_AddStringToObject(o, "error", error);
    if (u && started > 0) {
        iso(started, when, sizeof when);
        cJSON_AddStringToObject(o, "started_at", when);
    } else {
        cJSON_AddNullToObject(o, "started_at");
    }
    iso(as_of, when, sizeof when);
    cJSON_AddStringToObject(o, "usage_as_of", when);
    hetrun_usage none;
    memset(&none, 0, sizeof none); /* no session yet: nothing counted */
    cJSON *usage = hetrun_report_usage_json(u ? u : &none, NULL, -1.0, -1.0, 0);
    if (u && started > 0) { /* the billing window: from the rank's start to this record */
        iso(started, when, sizeof when);
        cJSON_AddStringToObject(usage, "started_at", when);
        iso(as_of, when, sizeof when);
        cJSON_AddStringToObject(usage, "ended_at", when);
    }
    cJSON_AddItemToObject(o, "usage", usage);
    return o;
}

static void (*_Atomic signal_notify)(int sig);

void hetrun_guard_set_signal_notify(void (*notify)(int sig)) {
    atomic_store(&signal_notify, notify);
}

void hetrun_guard_set_peers(void (*append)(cJSON *ranks, int failed_rank, const char *others,
                                           const char *reason)) {
    atomic_store(&peers_append, append);
}

/* A complete failed report: the cause, and every rank's usage as far as known now. Ranks
 * still working when it is written are "interrupted" (the report is used when the job
 * ends) or "running" (the placeholder). */
static char *render(const char *reason, int failed_rank, const char *others) {
    char when[32], host[256] = "";
    cJSON *r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "schema_version", HETRUN_REPORT_SCHEMA_VERSION);
    cJSON_AddStringToObject(r, "generator", HETRUN_REPORT_GENERATOR);
    cJSON_AddStringToObject(r, "status", "failed");
    cJSON_AddStringToObject(r, "reason", reason);
    cJSON_AddStringToObject(r, "hetrun_version", HETRUN_VERSION);
    cJSON *job = job_saved ? cJSON_Parse(job_saved) : NULL;
    cJSON_AddItemToObject(r, "job", job ? job : cJSON_CreateNull());
    iso(arm_epoch, when, sizeof when);
    cJSON_AddStringToObject(r, "started_at", when);
    double now = epoch_now();
    iso(now, when, sizeof when);
    cJSON_AddStringToObject(r, "usage_as_of", when);
    cJSON *ranks = cJSON_AddArrayToObject(r, "ranks");
    hetrun_usage u;
    double started = 0.0;
    int have = hetrun_guard_usage_snapshot(&u, &started) == 0;
    gethostname(host, sizeof host - 1);
    cJSON_AddItemToArray(ranks,
                         hetrun_guard_rank_record(0, host, failed_rank == 0 ? "failed" : others,
                                                  reason, started, now, have ? &u : NULL));
    void (*append)(cJSON *, int, const char *, const char *) = atomic_load(&peers_append);
    if (append) append(ranks, failed_rank, others, reason);
    char *text = cJSON_Print(r);
    cJSON_Delete(r);
    return text;
}

/* Writes `text` to `target` through the temp file `tmp`. `durable`: fsync before the
 * rename (reports kept ready); else rename first (visible at once, before a SIGKILL) and
 * fsync after. `placeholder`: never lands once the job is ending. */
static int put(const char *text, const char *tmp, const char *target, int durable,
               int placeholder) {
    if (!text) return -1;
    unlink(tmp);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0) return -1;
    size_t len = strlen(text), done = 0;
    while (done < len) {
        ssize_t w = write(fd, text + done, len - done);
        if (w <= 0) break;
        done += (size_t)w;
    }
    int ok = done == len && (!durable || fsync(fd) == 0);
    if (ok && placeholder) {
        atomic_store(&in_rename, 1);
        ok = !atomic_load(&ending) && rename(tmp, target) == 0;
        atomic_store(&in_rename, 0);
    } else if (ok) {
        ok = rename(tmp, target) == 0;
    }
    if (!ok) unlink(tmp);
    if (ok && !durable) (void)fsync(fd);
    close(fd);
    return ok ? 0 : -1;
}

/* Re-renders the reports kept ready and the placeholder with the usage so far. */
static int refresh(void) {
    int rc = 0;
    for (int k = 0; k < PRE_COUNT; k++) {
        char *text = render(k == PRE_TIMEOUT ? reason_timeout : pre_reasons[k], -1, "interrupted");
        rc |= put(text, path_new, path_pre[k], 1, 0);
        free(text);
    }
    char *text = render("job did not finish (still running, or killed)", -1, "running");
    rc |= put(text, path_new, path_final, 1, 1);
    free(text);
    return rc;
}

static void block_guard_signals(sigset_t *old) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGALRM);
    pthread_sigmask(SIG_BLOCK, &set, old);
}

static void *refresh_loop(void *arg) {
    (void)arg;
    pthread_mutex_lock(&refresh_mu);
    while (!refresh_stop) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += (time_t)refresh_period_s;
        pthread_cond_timedwait(&refresh_cv, &refresh_mu, &until);
        if (refresh_stop || atomic_load(&ending)) break;
        pthread_mutex_unlock(&refresh_mu);
        (void)refresh(); /* a full disk now is no reason to end the job */
        pthread_mutex_lock(&refresh_mu);
    }
    pthread_mutex_unlock(&refresh_mu);
    return NULL;
}

void hetrun_guard_start_refresh(void) {
    if (!want_refresh || refreshing) return;
    sigset_t old;
    block_guard_signals(&old); /* the handler never runs on the refresh thread */
    refresh_stop = 0;
    refreshing = pthread_create(&refresher, NULL, refresh_loop, NULL) == 0;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
}

static void on_signal(int sig) {
    if (!armed) {
        signal(sig, SIG_DFL);
        raise(sig);
        return;
    }
    /* Another thread is already ending the job (and writing its cause): let it. */
    if (atomic_exchange(&ending, 1)) return;
    while (atomic_load(&in_rename)) {
    }
    static const char msg_t[] = "hetrun: error: job exceeded limits.timeout; aborting\n";
    static const char msg_s[] = "hetrun: error: terminated by a signal; aborting\n";
    int k = sig == SIGALRM   ? PRE_TIMEOUT
            : sig == SIGTERM ? PRE_TERM
            : sig == SIGINT  ? PRE_INT
                             : PRE_HUP;
    /* The report first: stderr is a pipe that mpirun may have stopped draining. */
    if (have_report) {
        (void)rename(path_pre[k], path_final);
        for (int i = 0; i < PRE_COUNT; i++)
            if (i != k) unlink(path_pre[i]);
    }
    void (*notify)(int) = atomic_load(&signal_notify);
    if (notify && !have_report) notify(sig);
    if (sig == SIGALRM)
        (void)!write(2, msg_t, sizeof msg_t - 1);
    else
        (void)!write(2, msg_s, sizeof msg_s - 1);
    _exit(sig == SIGALRM ? HETRUN_EXIT_TIMEOUT : HETRUN_EXIT_SIGNAL_BASE + sig);
}

static void stop_refresher(void) {
    if (!refreshing) return;
    pthread_mutex_lock(&refresh_mu);
    refresh_stop = 1;
    pthread_cond_signal(&refresh_cv);
    pthread_mutex_unlock(&refresh_mu);
    pthread_join(refresher, NULL);
    refreshing = 0;
}

int hetrun_guard_arm(double timeout_s, const char *report_path, const char *job_json, char *err,
                     unsigned long errlen) {
    have_report = report_path != NULL;
    arm_epoch = epoch_now();
    atomic_store(&ending, 0);
    if (report_path) {
        if (snprintf(path_final, sizeof path_final, "%s", report_path) >= (int)sizeof path_final) {
            snprintf(err, errlen, "report path %.200s...: longer than %zu bytes", report_path,
                     sizeof path_final - 1);
            return -1;
        }
        for (int k = 0; k < PRE_COUNT; k++)
            hetrun_atomic_temp_name(report_path, pre_tags[k], path_pre[k], sizeof path_pre[k]);
        hetrun_atomic_temp_name(report_path, "guardnew", path_new, sizeof path_new);
        hetrun_atomic_temp_name(report_path, "guardfail", path_failtmp, sizeof path_failtmp);
        snprintf(reason_timeout, sizeof reason_timeout,
                 "timeout: job exceeded limits.timeout of %g s", timeout_s);
        free(job_saved);
        job_saved = job_json ? strdup(job_json) : NULL;
        /* The placeholder replaces the previous run's report before anything can fail. */
        if (refresh() != 0) {
            snprintf(err, errlen,
                     "%s: cannot write the report or the reports kept ready beside "
                     "it (folder not writable, or disk full)",
                     report_path);
            for (int k = 0; k < PRE_COUNT; k++)
                unlink(path_pre[k]);
            return -1;
        }
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaddset(&sa.sa_mask, SIGTERM);
    sigaddset(&sa.sa_mask, SIGINT);
    sigaddset(&sa.sa_mask, SIGHUP);
    sigaddset(&sa.sa_mask, SIGALRM);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    sigaction(SIGALRM, &sa, NULL);
    armed = 1;
    want_refresh = report_path != NULL;
    if (timeout_s > 0) {
        struct itimerval it;
        memset(&it, 0, sizeof it);
        it.it_value.tv_sec = (time_t)timeout_s;
        it.it_value.tv_usec = (suseconds_t)((timeout_s - (double)(time_t)timeout_s) * 1e6);
        if (it.it_value.tv_sec == 0 && it.it_value.tv_usec == 0) it.it_value.tv_usec = 1;
        setitimer(ITIMER_REAL, &it, NULL);
    }
    return 0;
}

/* Writes the failed report for `reason` (JSON-escaped by cJSON); the caller owns `ending`. */
static void write_failure(const char *reason, int failed_rank) {
    char *text = render(reason, failed_rank, "interrupted");
    if (put(text, path_failtmp, path_final, 0, 0) != 0)
        fprintf(stderr, "hetrun: error: cannot write the report %s\n", path_final);
    free(text);
    for (int k = 0; k < PRE_COUNT; k++)
        unlink(path_pre[k]);
}

void hetrun_guard_fail_rank(int rank, const char *reason) {
    /* The report before the message: stderr may block (see on_signal). */
    if (armed && have_report) {
        if (atomic_exchange(&ending, 1)) /* a signal or another thread ends the job */
            for (;;)
                pause();
        while (atomic_load(&in_rename)) {
        }
        write_failure(reason, rank);
    }
    fprintf(stderr, "hetrun: error: %s; ending the job\n", reason);
    _exit(HETRUN_EXIT_FAILED);
}

void hetrun_guard_fail(const char *reason) {
    hetrun_guard_fail_rank(-1, reason);
}

void hetrun_guard_end(const char *reason) {
    int write = armed && have_report;
    hetrun_guard_disarm();
    if (write) {
        atomic_store(&ending, 1);
        write_failure(reason, -1);
    }
}

void hetrun_guard_confirm_rank(int mpi_rank) {
    if (mpi_rank == 0 || !have_report) return;
    stop_refresher();
    for (int k = 0; k < PRE_COUNT; k++)
        unlink(path_pre[k]);
    have_report = 0;
}

void hetrun_guard_disarm(void) {
    struct itimerval it;
    memset(&it, 0, sizeof it);
    setitimer(ITIMER_REAL, &it, NULL);
    armed = 0;
    stop_refresher();
    if (have_report)
        for (int k = 0; k < PRE_COUNT; k++)
            unlink(path_pre[k]);
}
