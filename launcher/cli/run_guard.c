/* Timeout and signal guard for `hetrun run` (see run_guard.h). The texts are rendered in
 * advance because a signal handler may only call async-signal-safe functions. */
#include "cli/run_guard.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "report/report.h"
#include "util/exitcodes.h"

/* Texts sized for the job record, whatever the length of its name or spec path. */
static char path_final[4096], path_tmp[4300];
static char *text_timeout, *text_signal[3], *job_saved;
static volatile sig_atomic_t armed;
static int have_report;

static char *render(const char *job_json, const char *reason) {
    static const char fmt[] = "{\n  \"schema_version\": \"%s\",\n  \"generator\": \"%s\",\n"
                              "  \"status\": \"failed\",\n  \"reason\": \"%s\",\n"
                              "  \"job\": %s,\n  \"ranks\": []\n}\n";
    if (!job_json) job_json = "null";
    size_t len = sizeof fmt + strlen(HETRUN_REPORT_SCHEMA_VERSION) +
                 strlen(HETRUN_REPORT_GENERATOR) + strlen(reason) + strlen(job_json);
    char *out = malloc(len);
    if (out)
        snprintf(out, len, fmt, HETRUN_REPORT_SCHEMA_VERSION, HETRUN_REPORT_GENERATOR, reason,
                 job_json);
    return out;
}

/* Async-signal-safe: open (never over an existing name), write, fsync, rename. */
static void write_report_now(const char *text) {
    if (!have_report || !text) return;
    int fd = open(path_tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0) return;
    size_t len = strlen(text), done = 0;
    while (done < len) {
        ssize_t w = write(fd, text + done, len - done);
        if (w <= 0) break;
        done += (size_t)w;
    }
    int ok = done == len && fsync(fd) == 0;
    close(fd);
    if (!ok || rename(path_tmp, path_final) != 0) unlink(path_tmp);
}

static void on_signal(int sig) {
    if (!armed) {
        signal(sig, SIG_DFL);
        raise(sig);
        return;
    }
    static const char msg_t[] = "hetrun: error: job exceeded limits.timeout; aborting\n";
    static const char msg_s[] = "hetrun: error: terminated by a signal; aborting\n";
    if (sig == SIGALRM) {
        (void)!write(2, msg_t, sizeof msg_t - 1);
        write_report_now(text_timeout);
        _exit(HETRUN_EXIT_TIMEOUT);
    }
    (void)!write(2, msg_s, sizeof msg_s - 1);
    write_report_now(text_signal[sig == SIGTERM ? 0 : sig == SIGINT ? 1 : 2]);
    _exit(HETRUN_EXIT_SIGNAL_BASE + sig);
}

int hetrun_guard_arm(double timeout_s, const char *report_path, const char *job_json, char *err,
                     unsigned long errlen) {
    have_report = report_path != NULL;
    if (report_path) {
        if (snprintf(path_final, sizeof path_final, "%s", report_path) >= (int)sizeof path_final) {
            snprintf(err, errlen, "report path %.200s...: longer than %zu bytes", report_path,
                     sizeof path_final - 1);
            return -1;
        }
        hetrun_atomic_temp_name(report_path, "guard", path_tmp, sizeof path_tmp);
        char reason[128];
        snprintf(reason, sizeof reason, "timeout: job exceeded limits.timeout of %g s", timeout_s);
        text_timeout = render(job_json, reason);
        text_signal[0] = render(job_json, "killed by signal 15 (SIGTERM)");
        text_signal[1] = render(job_json, "killed by signal 2 (SIGINT)");
        text_signal[2] = render(job_json, "killed by signal 1 (SIGHUP)");
        free(job_saved);
        job_saved = job_json ? strdup(job_json) : NULL;
        char *placeholder = render(job_json, "job did not finish (still running, or killed)");
        if (!placeholder || !text_timeout || !text_signal[0] || !text_signal[1] ||
            !text_signal[2]) {
            free(placeholder);
            snprintf(err, errlen, "%s: out of memory for the guard report", report_path);
            return -1;
        }
        int rc = hetrun_write_atomic(report_path, placeholder, strlen(placeholder), err, errlen);
        free(placeholder);
        if (rc != 0) return -1;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    sigaction(SIGALRM, &sa, NULL);
    armed = 1;
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

void hetrun_guard_fail(const char *reason) {
    /* JSON-escape the reason: it may quote a host name or a path. */
    char esc[2048];
    size_t o = 0;
    for (const char *c = reason; *c && o + 7 < sizeof esc; c++) {
        if (*c == '"' || *c == '\\')
            esc[o++] = '\\', esc[o++] = *c;
        else if ((unsigned char)*c < 0x20)
            o += (size_t)snprintf(esc + o, sizeof esc - o, "\\u%04x", (unsigned)*c);
        else
            esc[o++] = *c;
    }
    esc[o] = '\0';
    fprintf(stderr, "hetrun: error: %s; ending the job\n", reason);
    if (armed && have_report) {
        armed = 0;
        char err[512], *text = render(job_saved, esc);
        if (text && hetrun_write_atomic(path_final, text, strlen(text), err, sizeof err) != 0)
            fprintf(stderr, "hetrun: error: cannot write the report: %s\n", err);
        free(text);
    }
    _exit(HETRUN_EXIT_FAILED);
}

void hetrun_guard_disarm(void) {
    struct itimerval it;
    memset(&it, 0, sizeof it);
    setitimer(ITIMER_REAL, &it, NULL);
    armed = 0;
    free(text_timeout);
    text_timeout = NULL;
    for (int i = 0; i < 3; i++) {
        free(text_signal[i]);
        text_signal[i] = NULL;
    }
}
