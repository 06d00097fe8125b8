/* Rank 0's progress line (see progress.h). One process, one job: the state is static. */
#include "util/progress.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/clock.h"

static struct {
    hetrun_progress_mode cli, spec;
    int on, tty;
    double interval, job_t0, last;
    size_t index, count;
    char label[96];
    int shown; /* a live line is on the terminal now */
} pg;

static void clock_text(char *out, size_t len, double s) {
    long t = (long)(s + 0.5);
    if (t >= 3600)
        snprintf(out, len, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
    else
        snprintf(out, len, "%ld:%02ld", t / 60, t % 60);
}

static void draw(int64_t done, int64_t total, const char *unit, const char *detail, double now) {
    char line[512], el[32], eta[32] = "-";
    size_t o = 0;
    if (pg.count > 1)
        o += (size_t)snprintf(line + o, sizeof line - o, "point %zu/%zu ", pg.index + 1, pg.count);
    o += (size_t)snprintf(line + o, sizeof line - o, "%s", pg.label);
    if (total > 0 && unit && o < sizeof line)
        o += (size_t)snprintf(line + o, sizeof line - o, ": %s %lld/%lld", unit, (long long)done,
                              (long long)total);
    /* The job's share done: whole points plus this point's fraction. */
    double frac = total > 0 ? (double)done / (double)total : 0.0;
    double job = pg.count ? ((double)pg.index + frac) / (double)pg.count : 0.0;
    double elapsed = now - pg.job_t0;
    clock_text(el, sizeof el, elapsed);
    if (job > 0.0) clock_text(eta, sizeof eta, elapsed * (1.0 - job) / job);
    if (o < sizeof line)
        o += (size_t)snprintf(line + o, sizeof line - o, " | job %.0f%% %s ETA %s", 100.0 * job, el,
                              eta);
    if (detail && o < sizeof line) snprintf(line + o, sizeof line - o, " | %s", detail);
    if (pg.tty) {
        fprintf(stderr, "\r\033[K%s", line);
        pg.shown = 1;
    } else {
        fprintf(stderr, "[rank 0] progress: %s\n", line);
    }
    fflush(stderr);
    pg.last = now;
}

int hetrun_progress_mode_parse(const char *text) {
    static const char *const names[] = {"auto", "always", "never"};
    for (int i = 0; i < 3; i++)
        if (text && strcmp(text, names[i]) == 0) return i;
    return -1;
}

void hetrun_progress_configure(hetrun_progress_mode cli, hetrun_progress_mode spec) {
    pg.cli = cli;
    pg.spec = spec;
}

/* HETRUN_PROGRESS: a mode, or 1/0 (always/never); unset, empty or unknown: auto. */
static hetrun_progress_mode env_mode(void) {
    const char *env = getenv("HETRUN_PROGRESS");
    if (!env || !*env) return HETRUN_PROGRESS_AUTO;
    if (!strcmp(env, "1")) return HETRUN_PROGRESS_ALWAYS;
    if (!strcmp(env, "0")) return HETRUN_PROGRESS_NEVER;
    int m = hetrun_progress_mode_parse(env);
    if (m >= 0) return (hetrun_progress_mode)m;
    fprintf(stderr,
            "hetrun: warning: HETRUN_PROGRESS='%s' is not auto, always, never, 1 or 0; "
            "ignored\n",
            env);
    return HETRUN_PROGRESS_AUTO;
}

void hetrun_progress_point(int rank, size_t index, size_t count, const char *label) {
    double now = hetrun_now_s();
    if (pg.job_t0 == 0.0) {
        const char *iv = getenv("HETRUN_PROGRESS_INTERVAL");
        hetrun_progress_mode mode = pg.cli;
        if (mode == HETRUN_PROGRESS_AUTO && rank == 0) mode = env_mode();
        if (mode == HETRUN_PROGRESS_AUTO) mode = pg.spec;
        pg.on = rank == 0 && mode != HETRUN_PROGRESS_NEVER;
        pg.tty = isatty(2);
        pg.interval = iv && atof(iv) >= 0.0 && *iv ? atof(iv) : 10.0;
        pg.job_t0 = pg.last = now;
    }
    pg.index = index;
    pg.count = count;
    snprintf(pg.label, sizeof pg.label, "%s", label ? label : "");
    if (pg.on && pg.tty && (index == 0 || now - pg.last >= 0.2)) draw(0, 0, NULL, NULL, now);
}

void hetrun_progress_update(int64_t done, int64_t total, const char *unit, const char *detail) {
    if (!pg.on) return;
    double now = hetrun_now_s();
    if (now - pg.last < (pg.tty ? 0.2 : pg.interval) && !(pg.tty && done == total)) return;
    draw(done, total, unit, detail, now);
}

void hetrun_progress_serving(int64_t batch, size_t bi, size_t nb, int64_t count, int64_t iterations,
                             double elapsed, double duration) {
    if (!pg.on) return;
    char detail[48];
    snprintf(detail, sizeof detail, "batch %lld", (long long)batch);
    if (duration > 0)
        hetrun_progress_update((int64_t)((double)bi * duration + elapsed),
                               (int64_t)((double)nb * duration), "seconds", detail);
    else
        hetrun_progress_update((int64_t)bi * iterations + count, (int64_t)nb * iterations,
                               "requests", detail);
}

void hetrun_progress_clear(void) {
    if (!pg.shown) return;
    fputs("\r\033[K", stderr);
    fflush(stderr);
    pg.shown = 0;
    pg.last = 0.0; /* redraw at the next update */
}

void hetrun_progress_note(int rank, const char *line) {
    if (rank != 0) return;
    hetrun_progress_clear();
    fprintf(stderr, "[rank 0] %s\n", line);
    fflush(stderr);
}

void hetrun_progress_end(void) {
    hetrun_progress_clear();
    pg.on = 0;
}
