/* One check group in a forked child: the module is opened there, results come back as
 * fixed-size records through a pipe, and a crash or a hang fails that group by name
 * instead of killing or stopping the tool. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "conform/conform.h"
#include "util/exitcodes.h"

static int record_fd = -1; /* the child's end of the pipe */

void conform_emit(const conform_record *r) {
    const char *p = (const char *)r;
    size_t left = sizeof *r;
    while (record_fd >= 0 && left > 0) {
        ssize_t w = write(record_fd, p, left);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return; /* the parent is gone: nothing left to tell */
        p += w;
        left -= (size_t)w;
    }
}

static void check_record(conform_record *r, int device, const char *name, conform_status st,
                         const char *fmt, va_list ap) {
    memset(r, 0, sizeof *r);
    r->type = CONFORM_REC_CHECK;
    r->device = device;
    r->status = st;
    snprintf(r->name, sizeof r->name, "%s", name);
    vsnprintf(r->detail, sizeof r->detail, fmt, ap);
}

void conform_emit_check(int device, const char *name, conform_status st, const char *fmt, ...) {
    conform_record r;
    va_list ap;
    va_start(ap, fmt);
    check_record(&r, device, name, st, fmt, ap);
    va_end(ap);
    conform_emit(&r);
}

void conform_emit_log(int device, conform_status st, const char *fmt, ...) {
    conform_record r;
    memset(&r, 0, sizeof r);
    r.type = CONFORM_REC_LOG;
    r.device = device;
    r.status = st;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r.detail, sizeof r.detail, fmt, ap);
    va_end(ap);
    conform_emit(&r);
}

static void append(conform_results *res, const conform_record *r) {
    if (res->count == res->cap) {
        int cap = res->cap ? 2 * res->cap : 64;
        conform_record *n = realloc(res->items, (size_t)cap * sizeof *n);
        if (!n) return; /* out of host memory: the record is lost, the exit code is not */
        res->items = n;
        res->cap = cap;
    }
    res->items[res->count++] = *r;
}

static long long now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000LL + t.tv_nsec / 1000000;
}

static void fail_group(conform_results *res, const char *group, int device, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void fail_group(conform_results *res, const char *group, int device, const char *fmt, ...) {
    conform_record r;
    va_list ap;
    va_start(ap, fmt);
    check_record(&r, device, group, CONFORM_FAIL, fmt, ap);
    va_end(ap);
    append(res, &r);
    if (device < 0)
        fprintf(stderr, "hetrun conform: %s: %s\n", group, r.detail);
    else
        fprintf(stderr, "hetrun conform: %s (device %d): %s\n", group, device, r.detail);
}

int conform_isolate(const char *group, conform_group_fn fn, const conform_opts *o, int device,
                    double limit_s, conform_results *res) {
    int fds[2];
    if (pipe(fds) != 0) {
        fail_group(res, group, device, "pipe: %s", strerror(errno));
        return 1;
    }
    fflush(NULL); /* nothing buffered is printed twice */
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]), close(fds[1]);
        fail_group(res, group, device, "fork: %s", strerror(errno));
        return 1;
    }
    if (pid == 0) {
        close(fds[0]);
        fcntl(fds[1], F_SETFD, FD_CLOEXEC); /* mpirun (train) must not hold the pipe open */
        record_fd = fds[1];
        int rc = fn(o, device);
        conform_record done;
        memset(&done, 0, sizeof done);
        done.type = CONFORM_REC_DONE;
        conform_emit(&done);
        fflush(NULL);
        _exit(rc);
    }
    close(fds[1]);
    const long long deadline = now_ms() + (long long)(limit_s * 1000.0);
    conform_record r;
    size_t got = 0;
    int timed_out = 0, sent_any = 0, finished = 0;
    for (;;) {
        long long left = deadline - now_ms();
        if (left <= 0) {
            timed_out = 1;
            break;
        }
        struct pollfd pfd = {fds[0], POLLIN, 0};
        int pr = poll(&pfd, 1, left > 1000000 ? 1000000 : (int)left);
        if (pr < 0 && errno == EINTR) continue;
        if (pr <= 0) continue; /* the loop re-checks the deadline */
        ssize_t n = read(fds[0], (char *)&r + got, sizeof r - got);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break; /* EOF: the child exited (or closed its end) */
        got += (size_t)n;
        if (got < sizeof r) continue;
        got = 0;
        sent_any = 1;
        if (r.type == CONFORM_REC_DONE) {
            finished = 1;
        } else if (r.type == CONFORM_REC_LOG) {
            static const char *const tag[] = {"pass", "FAIL", "unsupported"};
            printf("  %-4s  device %d: %s\n", tag[r.status % 3], r.device, r.detail);
            fflush(stdout);
        } else {
            append(res, &r);
        }
    }
    close(fds[0]);
    if (timed_out) kill(pid, SIGKILL);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (timed_out) {
        fail_group(res, group, device, "did not finish within %.0f s (killed): a call hangs",
                   limit_s);
        return HETRUN_EXIT_TIMEOUT;
    }
    if (WIFSIGNALED(status)) {
        int sig = WTERMSIG(status);
        fail_group(res, group, device, "crashed: killed by signal %d (%s)%s", sig, strsignal(sig),
                   sent_any ? " after the results above" : "");
        return 128 + sig;
    }
    /* Exited without its body returning: exit() in the module, a sanitizer's abort... The
     * checks it had not reported yet must not count as passed. */
    if (!finished) {
        fail_group(res, group, device, "the check process exited with status %d before finishing%s",
                   WEXITSTATUS(status), sent_any ? " (after the results above)" : "");
        return WEXITSTATUS(status) ? WEXITSTATUS(status) : HETRUN_EXIT_FAILED;
    }
    return WEXITSTATUS(status);
}
