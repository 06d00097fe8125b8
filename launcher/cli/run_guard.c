/* Timeout and signal guard for `hetrun run` (see run_guard.h). A signal handler may only
 * call async-signal-safe functions, and Open MPI's SIGKILL follows its SIGTERM quickly, so
 * the report a signal ends the job with is rendered in advance, as a template with open
 * slots, and the handler only fills in the moment and writes the file. */
#include "cli/run_guard.h"

#include <fcntl.h>
#include <math.h>
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
#include "report/live_usage.h"
#include "report/report.h"
#include "util/clock.h"
#include "util/exitcodes.h"

/* The ways a signal ends the job. */
enum { SIG_TIMEOUT, SIG_TERM, SIG_INT, SIG_HUP, SIG_KINDS };
static const char *const sig_reasons[SIG_KINDS] = {NULL, "killed by signal 15 (SIGTERM)",
                                                   "killed by signal 2 (SIGINT)",
                                                   "killed by signal 1 (SIGHUP)"};

/* A template's open slots are raw text "\x01" KIND [index] "\x02" (cJSON escapes control
 * characters in strings, so no other text holds them): R the report's reason, S and X the
 * state and error of a rank still working, E the moment the report stands for (finished_at,
 * a working rank's ended_at), W<n> the seconds since origin[n] (a working rank's wall). */
#define SLOT_START '\x01'
#define SLOT_END '\x02'

/* What fills R, S and X: JSON strings, quotes included. */
typedef struct fill {
    const char *reason, *state, *error;
} fill;

typedef struct frame {
    char *text; /* the report with open slots */
    size_t len, slots;
    double *origin; /* monotonic start of each W slot */
    size_t norigin, origin_cap;
    char *out; /* where a signal handler fills it in: sized for the signals' fills */
    size_t out_cap;
} frame;

/* Sized for the job record, whatever the length of its name or spec path. */
static char path_final[4096], path_new[4300], path_failtmp[4300];
static char *job_saved, *sig_text[SIG_KINDS][2];
static fill sig_fill[SIG_KINDS];
static const fill placeholder_fill = {
    "\"job did not finish (still running, or killed)\"", "\"running\"",
    "\"did not finish: still running when this report was written\""};
static size_t fill_max; /* the longest R, S or X text a handler may insert */
static volatile sig_atomic_t armed;
static int have_report;
static double arm_epoch, arm_mono;

/* Whoever ends the job (a handler, hetrun_guard_fail) sets `ending` first and then waits
 * for a refresh that is renaming the placeholder over the report (`in_rename`), so the
 * placeholder never replaces the failed report: both sides store, then load (seq_cst). */
static atomic_int ending, in_rename;

/* Two templates: the refresh renders into the one not published, then publishes it; a
 * handler uses the published one. A refresh checks `ending` before it renders, and a
 * handler sets `ending` before it reads `published`, so none is rewritten under it. */
static frame frames[2];
static atomic_int published = -1;

/* Rendering (refresh thread, failure path) is one at a time: the record helpers below
 * read what is being rendered. */
static pthread_mutex_t render_mu = PTHREAD_MUTEX_INITIALIZER;
static frame *building;
static const cJSON *building_own; /* rank 0's record given by the caller, or NULL: live */
static int building_failed;
static double building_mono, building_epoch;

/* The refresh thread (rank 0 with a report). */
static pthread_t refresher;
static int refreshing, refresh_stop, want_refresh;
static pthread_mutex_t refresh_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t refresh_cv = PTHREAD_COND_INITIALIZER;
static const double refresh_period_s = 2.0;

static void (*_Atomic peers_append)(cJSON *ranks);
static void (*_Atomic signal_notify)(int sig);

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

/* ---- async-signal-safe text: digits and dates by arithmetic ---- */

static size_t put_uint(char *out, unsigned long long v, int width) {
    char d[24];
    int n = 0;
    do {
        d[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v || n < width);
    for (int i = 0; i < n; i++)
        out[i] = d[n - 1 - i];
    return (size_t)n;
}

/* Seconds with millisecond digits ("12.345"); negative (clocks of two nodes): 0. */
static size_t put_seconds(char *out, double s) {
    unsigned long long ms = s > 0.0 ? (unsigned long long)(s * 1000.0 + 0.5) : 0;
    size_t o = put_uint(out, ms / 1000, 1);
    out[o++] = '.';
    return o + put_uint(out + o, ms % 1000, 3);
}

/* "YYYY-MM-DDTHH:MM:SSZ" in quotes (the civil date of days since 1970, H. Hinnant). */
static size_t put_iso(char *out, double epoch) {
    long long t = (long long)epoch, days = t / 86400, sod = t % 86400;
    if (sod < 0) sod += 86400, days--;
    long long z = days + 719468, era = (z >= 0 ? z : z - 146096) / 146097;
    long long doe = z - era * 146097;
    long long yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    long long doy = doe - (365 * yoe + yoe / 4 - yoe / 100), mp = (5 * doy + 2) / 153;
    long long d = doy - (153 * mp + 2) / 5 + 1, m = mp < 10 ? mp + 3 : mp - 9;
    long long y = yoe + era * 400 + (m <= 2);
    size_t o = 0;
    out[o++] = '"';
    o += put_uint(out + o, (unsigned long long)(y > 0 ? y : 0), 4);
    out[o++] = '-';
    o += put_uint(out + o, (unsigned long long)m, 2);
    out[o++] = '-';
    o += put_uint(out + o, (unsigned long long)d, 2);
    out[o++] = 'T';
    o += put_uint(out + o, (unsigned long long)(sod / 3600), 2);
    out[o++] = ':';
    o += put_uint(out + o, (unsigned long long)(sod / 60 % 60), 2);
    out[o++] = ':';
    o += put_uint(out + o, (unsigned long long)(sod % 60), 2);
    out[o++] = 'Z';
    out[o++] = '"';
    return o;
}

/* The report of frame `f` for the moment (mono, epoch), its slots filled from `v`, in `out`.
 * Returns its length, or -1 when it does not fit. Async-signal-safe. */
static long fill_in(const frame *f, const fill *v, double mono, double epoch, char *out,
                    size_t cap) {
    char when[32], num[48];
    size_t when_len = put_iso(when, epoch), o = 0;
    for (size_t i = 0; i < f->len; i++) {
        if (f->text[i] != SLOT_START) {
            if (o >= cap) return -1;
            out[o++] = f->text[i];
            continue;
        }
        char kind = i + 1 < f->len ? f->text[++i] : 0;
        size_t idx = 0;
        while (i + 1 < f->len && f->text[++i] != SLOT_END)
            idx = idx * 10 + (size_t)(f->text[i] - '0');
        const char *s = "null";
        size_t n = 4;
        if (kind == 'R' || kind == 'S' || kind == 'X') {
            s = kind == 'R' ? v->reason : kind == 'S' ? v->state : v->error;
            for (n = 0; s[n]; n++) {
            }
        } else if (kind == 'E') {
            s = when, n = when_len;
        } else if (kind == 'W' && idx < f->norigin) {
            s = num, n = put_seconds(num, mono - f->origin[idx]);
        }
        if (o + n > cap) return -1;
        for (size_t k = 0; k < n; k++)
            out[o++] = s[k];
    }
    return (long)o;
}

/* Writes `len` bytes of `text` to `target` through the temp file `tmp`. `durable`: fsync
 * before the rename (the placeholder); else rename first (visible at once, before a
 * SIGKILL) and fsync after. `placeholder`: never lands once the job is ending.
 * Async-signal-safe (open, write, fsync, rename, unlink, close, atomics). */
static int put(const char *text, size_t len, const char *tmp, const char *target, int durable,
               int placeholder) {
    if (!text) return -1;
    unlink(tmp);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0) return -1;
    size_t done = 0;
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

/* ---- rendering: every rank's record as report/live_usage.h gives it ---- */

static cJSON *slot(char kind) {
    char s[4] = {SLOT_START, kind, SLOT_END, '\0'};
    return cJSON_CreateRaw(s);
}

/* A W slot: the seconds from `origin` (hetrun_now_s) to the report's moment. */
static cJSON *wall_slot(double origin) {
    frame *f = building;
    if (f->norigin == f->origin_cap) {
        size_t cap = f->origin_cap ? 2 * f->origin_cap : 16;
        double *grown = realloc(f->origin, cap * sizeof *grown);
        if (!grown) return cJSON_CreateNumber(building_mono - origin); /* the render's moment */
        f->origin = grown;
        f->origin_cap = cap;
    }
    f->origin[f->norigin] = origin;
    char s[32];
    snprintf(s, sizeof s, "%cW%zu%c", SLOT_START, f->norigin++, SLOT_END);
    return cJSON_CreateRaw(s);
}

static void set(cJSON *o, const char *key, cJSON *v) {
    cJSON_DeleteItemFromObjectCaseSensitive(o, key);
    cJSON_AddItemToObject(o, key, v);
}

/* A record with nothing counted: the rank has no session (yet), or sent nothing. */
static cJSON *bare_record(int rank, const char *host) {
    hetrun_usage none;
    memset(&none, 0, sizeof none);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "rank", rank);
    cJSON_AddStringToObject(o, "host", host ? host : "");
    cJSON_AddItemToObject(o, "usage", hetrun_report_usage_json(&none, NULL, -1.0, -1.0, 0));
    return o;
}

/* Gives a rank's record its state and error in the report being rendered, when its
 * figures were read (`as_of`), and, while the rank works, a wall from `origin` and an end
 * that the report's moment fills in. */
static void shape(cJSON *rec, int rank, int finished, double origin, double as_of) {
    char when[32];
    cJSON *u = cJSON_GetObjectItem(rec, "usage");
    const char *st = cJSON_GetStringValue(cJSON_GetObjectItem(rec, "state"));
    finished |= st && !strcmp(st, "finished");
    set(rec, "status", cJSON_CreateString("failed"));
    if (rank == building_failed) {
        set(rec, "state", cJSON_CreateString("failed"));
        set(rec, "error", slot('R'));
    } else if (finished) {
        set(rec, "state", cJSON_CreateString("finished"));
        set(rec, "error",
            cJSON_CreateString(cJSON_IsTrue(cJSON_GetObjectItem(u, "final"))
                                   ? "finished its work; the job ended before its record "
                                     "reached rank 0"
                                   : "ended its work with an error; the job ended before its "
                                     "record reached rank 0"));
    } else {
        set(rec, "state", slot('S'));
        set(rec, "error", slot('X'));
    }
    iso(as_of, when, sizeof when);
    set(rec, "usage_as_of", cJSON_CreateString(when));
    if (!finished && u && isfinite(origin)) {
        set(u, "wall_seconds", wall_slot(origin));
        set(u, "ended_at", slot('E'));
    }
}

static double wall_of(const cJSON *rec) {
    const cJSON *w = cJSON_GetObjectItem(cJSON_GetObjectItem(rec, "usage"), "wall_seconds");
    return cJSON_IsNumber(w) ? w->valuedouble : NAN;
}

cJSON *hetrun_guard_peer_record(int rank, const char *host, const char *live_text, double heard_s,
                                int finished) {
    cJSON *rec = live_text && *live_text ? cJSON_Parse(live_text) : NULL;
    double w = rec ? wall_of(rec) : NAN;
    if (!rec) rec = bare_record(rank, host);
    if (!cJSON_GetObjectItem(rec, "host")) cJSON_AddStringToObject(rec, "host", host ? host : "");
    /* Billed up to the report's moment: its wall when heard plus the time since. */
    int heard = heard_s > 0.0;
    shape(rec, rank, finished, heard ? heard_s - w : NAN,
          heard ? building_epoch - (building_mono - heard_s) : building_epoch);
    return rec;
}

/* This rank's (rank 0's) record. */
static cJSON *own_record(void) {
    cJSON *rec = building_own ? cJSON_Duplicate(building_own, 1) : hetrun_usage_live_rank(NULL);
    double origin = NAN;
    if (building_own) cJSON_DeleteItemFromObjectCaseSensitive(rec, "node_environment");
    if (rec) {
        origin = hetrun_now_s() - wall_of(rec);
    } else {
        char host[256] = "";
        gethostname(host, sizeof host - 1);
        rec = bare_record(0, host);
    }
    shape(rec, 0, 0, origin, building_epoch);
    return rec;
}

/* Renders the failed report into `f`: the cause, and every rank's record as far as known
 * now; `failed_rank` (-1: none) is the rank that caused it; `own`: rank 0's record (NULL:
 * its live one). */
static int render(frame *f, int failed_rank, const cJSON *own) {
    char when[32];
    building = f;
    building_own = own;
    building_failed = failed_rank;
    building_mono = hetrun_now_s();
    building_epoch = epoch_now();
    f->norigin = 0;
    cJSON *r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "schema_version", HETRUN_REPORT_SCHEMA_VERSION);
    cJSON_AddStringToObject(r, "generator", HETRUN_REPORT_GENERATOR);
    cJSON_AddStringToObject(r, "status", "failed");
    cJSON_AddItemToObject(r, "reason", slot('R'));
    cJSON_AddStringToObject(r, "hetrun_version", HETRUN_VERSION);
    cJSON *job = job_saved ? cJSON_Parse(job_saved) : NULL;
    cJSON_AddItemToObject(r, "job", job ? job : cJSON_CreateNull());
    iso(arm_epoch, when, sizeof when);
    cJSON_AddStringToObject(r, "started_at", when);
    cJSON_AddItemToObject(r, "finished_at", slot('E'));
    cJSON_AddItemToObject(r, "wall_seconds", wall_slot(arm_mono));
    iso(building_epoch, when, sizeof when);
    cJSON_AddStringToObject(r, "usage_as_of", when);
    cJSON *ranks = cJSON_AddArrayToObject(r, "ranks");
    cJSON_AddItemToArray(ranks, own_record());
    void (*append)(cJSON *) = atomic_load(&peers_append);
    if (append) append(ranks);
    char *text = cJSON_Print(r);
    cJSON_Delete(r);
    building = NULL;
    if (!text) return -1;
    free(f->text);
    f->text = text;
    f->len = strlen(text);
    f->slots = 0;
    for (size_t i = 0; i < f->len; i++)
        f->slots += text[i] == SLOT_START;
    return 0;
}

/* Room for the report with every slot filled by at most `longest` bytes. */
static size_t filled_cap(const frame *f, size_t longest) {
    return f->len + f->slots * (longest + 48) + 1;
}

/* Re-renders the template and rewrites the placeholder with the usage so far. The file is
 * written after the render lock is let go: a slow fsync must not hold up the failure path. */
static int refresh(void) {
    char *ph = NULL;
    long n = -1;
    pthread_mutex_lock(&render_mu);
    int next = atomic_load(&published) == 0 ? 1 : 0;
    frame *f = &frames[next];
    if (!atomic_load(&ending) && render(f, -1, NULL) == 0) {
        size_t cap = filled_cap(f, fill_max);
        if (cap > f->out_cap) {
            char *grown = realloc(f->out, cap);
            if (grown) f->out = grown, f->out_cap = cap;
        }
        if (f->out_cap >= cap) atomic_store(&published, next);
        ph = malloc(cap);
        if (ph) n = fill_in(f, &placeholder_fill, hetrun_now_s(), epoch_now(), ph, cap);
    }
    pthread_mutex_unlock(&render_mu);
    int rc = n >= 0 ? put(ph, (size_t)n, path_new, path_final, 1, 1) : -1;
    free(ph);
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

void hetrun_guard_set_signal_notify(void (*notify)(int sig)) {
    atomic_store(&signal_notify, notify);
}

void hetrun_guard_set_peers(void (*append)(cJSON *ranks)) {
    atomic_store(&peers_append, append);
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
    int k = sig == SIGALRM   ? SIG_TIMEOUT
            : sig == SIGTERM ? SIG_TERM
            : sig == SIGINT  ? SIG_INT
                             : SIG_HUP;
    /* The report first, for this moment: stderr is a pipe mpirun may have stopped draining. */
    int p = atomic_load(&published);
    if (have_report && p >= 0) {
        frame *f = &frames[p];
        struct timespec m, e;
        clock_gettime(CLOCK_MONOTONIC, &m); /* hetrun_now_s's clock */
        clock_gettime(CLOCK_REALTIME, &e);
        long n = fill_in(f, &sig_fill[k], (double)m.tv_sec + (double)m.tv_nsec * 1e-9,
                         (double)e.tv_sec + (double)e.tv_nsec * 1e-9, f->out, f->out_cap);
        if (n >= 0) (void)put(f->out, (size_t)n, path_failtmp, path_final, 0, 0);
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

/* `s` as a JSON string (quotes included), malloc'd; `prefix` goes before it. */
static char *json_string(const char *prefix, const char *s) {
    size_t n = strlen(prefix) + strlen(s) + 1;
    char *joined = malloc(n), *text = NULL;
    if (!joined) return NULL;
    snprintf(joined, n, "%s%s", prefix, s);
    cJSON *str = cJSON_CreateString(joined);
    text = str ? cJSON_PrintUnformatted(str) : NULL;
    cJSON_Delete(str);
    free(joined);
    return text;
}

/* The fills of the reports a signal ends the job with. */
static void prepare_fills(double timeout_s) {
    char timeout_reason[128];
    snprintf(timeout_reason, sizeof timeout_reason, "timeout: job exceeded limits.timeout of %g s",
             timeout_s);
    fill_max = strlen(placeholder_fill.error);
    for (int k = 0; k < SIG_KINDS; k++) {
        const char *why = k == SIG_TIMEOUT ? timeout_reason : sig_reasons[k];
        free(sig_text[k][0]);
        free(sig_text[k][1]);
        sig_text[k][0] = json_string("", why);
        sig_text[k][1] = json_string("interrupted: ", why);
        sig_fill[k].reason = sig_text[k][0] ? sig_text[k][0] : "\"killed by a signal\"";
        sig_fill[k].state = "\"interrupted\"";
        sig_fill[k].error = sig_text[k][1] ? sig_text[k][1] : "\"interrupted\"";
        if (strlen(sig_fill[k].error) > fill_max) fill_max = strlen(sig_fill[k].error);
    }
}

int hetrun_guard_arm(double timeout_s, const char *report_path, const char *job_json, char *err,
                     unsigned long errlen) {
    have_report = report_path != NULL;
    arm_epoch = epoch_now();
    arm_mono = hetrun_now_s();
    atomic_store(&ending, 0);
    if (report_path) {
        if (snprintf(path_final, sizeof path_final, "%s", report_path) >= (int)sizeof path_final) {
            snprintf(err, errlen, "report path %.200s...: longer than %zu bytes", report_path,
                     sizeof path_final - 1);
            return -1;
        }
        hetrun_atomic_temp_name(report_path, "guardnew", path_new, sizeof path_new);
        hetrun_atomic_temp_name(report_path, "guardfail", path_failtmp, sizeof path_failtmp);
        prepare_fills(timeout_s);
        free(job_saved);
        job_saved = job_json ? strdup(job_json) : NULL;
    }
    /* The handlers are in place before the placeholder is written, and no signal interrupts
     * that write (this thread may hold `in_rename`): one that comes meanwhile waits, then
     * finds the template published and writes its report, not the placeholder's. */
    sigset_t old;
    block_guard_signals(&old);
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
    /* The placeholder replaces the previous run's report before anything can fail. */
    if (report_path && refresh() != 0) {
        armed = 0;
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        snprintf(err, errlen, "%s: cannot write the report (folder not writable, or disk full)",
                 report_path);
        return -1;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
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

/* Writes the failed report for `reason`, rendered now (`own`: see render); the caller owns
 * `ending`. */
static void write_failure(const char *reason, int failed_rank, const cJSON *own) {
    frame f;
    memset(&f, 0, sizeof f);
    char *r = json_string("", reason), *x = json_string("interrupted: ", reason), *out = NULL;
    long n = -1;
    /* The published template, filled in for now, goes first: Open MPI's SIGKILL may follow
     * while a loaded host renders afresh. No refresh rewrites it once the job is ending. */
    int p = atomic_load(&published);
    if (p >= 0 && r && x) {
        size_t cap = filled_cap(&frames[p], strlen(r) > strlen(x) ? strlen(r) : strlen(x));
        fill v = {r, "\"interrupted\"", x};
        char *quick = malloc(cap);
        n = quick ? fill_in(&frames[p], &v, hetrun_now_s(), epoch_now(), quick, cap) : -1;
        if (n >= 0) (void)put(quick, (size_t)n, path_failtmp, path_final, 0, 0);
        free(quick);
        n = -1;
    }
    pthread_mutex_lock(&render_mu);
    if (r && x && render(&f, failed_rank, own) == 0) {
        size_t cap = filled_cap(&f, strlen(r) > strlen(x) ? strlen(r) : strlen(x));
        fill v = {r, "\"interrupted\"", x};
        out = malloc(cap);
        if (out) n = fill_in(&f, &v, hetrun_now_s(), epoch_now(), out, cap);
    }
    pthread_mutex_unlock(&render_mu);
    if (n < 0 || put(out, (size_t)n, path_failtmp, path_final, 0, 0) != 0)
        fprintf(stderr, "hetrun: error: cannot write the report %s\n", path_final);
    free(out);
    free(f.text);
    free(f.origin);
    free(r);
    free(x);
}

void hetrun_guard_fail_rank(int rank, const char *reason) {
    /* The report before the message: stderr may block (see on_signal). */
    if (armed && have_report) {
        if (atomic_exchange(&ending, 1)) /* a signal or another thread ends the job */
            for (;;)
                pause();
        while (atomic_load(&in_rename)) {
        }
        write_failure(reason, rank, NULL);
    }
    fprintf(stderr, "hetrun: error: %s; ending the job\n", reason);
    _exit(HETRUN_EXIT_FAILED);
}

void hetrun_guard_abort_report(const cJSON *own, const char *reason) {
    if (!armed || !have_report) return;
    if (atomic_exchange(&ending, 1)) /* a signal or another thread ends the job */
        for (;;)
            pause();
    while (atomic_load(&in_rename)) {
    }
    write_failure(reason, 0, own);
}

void hetrun_guard_fail(const char *reason) {
    hetrun_guard_fail_rank(-1, reason);
}

void hetrun_guard_end(const char *reason) {
    int write = armed && have_report;
    hetrun_guard_disarm();
    if (write) {
        atomic_store(&ending, 1);
        write_failure(reason, -1, NULL);
    }
}

void hetrun_guard_confirm_rank(int mpi_rank) {
    if (mpi_rank == 0 || !have_report) return;
    stop_refresher();
    have_report = 0;
}

void hetrun_guard_disarm(void) {
    struct itimerval it;
    memset(&it, 0, sizeof it);
    setitimer(ITIMER_REAL, &it, NULL);
    armed = 0;
    stop_refresher();
}
