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

enum { GUARD_TEXT = 2048 };
static char path_final[4096], path_tmp[4200];
static char text_timeout[GUARD_TEXT], text_signal[3][GUARD_TEXT];
static volatile sig_atomic_t armed;
static int have_report;

static void render(char *out, const char *job_json, const char *reason) {
    snprintf(out, GUARD_TEXT,
             "{\n  \"schema_version\": \"%s\",\n  \"status\": \"failed\",\n"
             "  \"reason\": \"%s\",\n  \"job\": %s,\n  \"ranks\": []\n}\n",
             HETRUN_REPORT_SCHEMA_VERSION, reason, job_json ? job_json : "null");
}

static void write_report_now(const char *text) {
    if (!have_report) return;
    int fd = open(path_tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) return;
    size_t len = strlen(text), done = 0;
    while (done < len) {
        ssize_t w = write(fd, text + done, len - done);
        if (w <= 0) break;
        done += (size_t)w;
    }
    fsync(fd);
    close(fd);
    rename(path_tmp, path_final);
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
        snprintf(path_final, sizeof path_final, "%s", report_path);
        snprintf(path_tmp, sizeof path_tmp, "%s.tmp.guard", report_path);
        char reason[128];
        snprintf(reason, sizeof reason, "timeout: job exceeded limits.timeout of %g s", timeout_s);
        render(text_timeout, job_json, reason);
        render(text_signal[0], job_json, "killed by signal 15 (SIGTERM)");
        render(text_signal[1], job_json, "killed by signal 2 (SIGINT)");
        render(text_signal[2], job_json, "killed by signal 1 (SIGHUP)");
        char placeholder[GUARD_TEXT];
        render(placeholder, job_json, "job did not finish (still running, or killed)");
        if (hetrun_write_atomic(report_path, placeholder, strlen(placeholder), err, errlen) != 0)
            return -1;
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

void hetrun_guard_disarm(void) {
    struct itimerval it;
    memset(&it, 0, sizeof it);
    setitimer(ITIMER_REAL, &it, NULL);
    armed = 0;
}
