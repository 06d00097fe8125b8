/* Device probe in a child process, so the parent never starts a vendor runtime before its
 * visibility variable is set (see placement.h). */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "loader/loader.h"
#include "loader/probe.h"

/* A module that hangs must not hold every `auto` job; a cold runtime init that needs longer
 * than the default raises it (HETRUN_PROBE_TIMEOUT, see hetrun_probe_set_timeout). */
static long long probe_timeout_ms = 20000;
#define PROBE_MAX_DEVICES 4096

typedef struct probe_header {
    int32_t status; /* 0 ok, 1 unavailable, -1 error */
    int32_t count;
    char reason[1024];
} probe_header;

static int write_all(int fd, const void *buf, size_t len) {
    const char *p = buf;
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

static int read_all(int fd, void *buf, size_t len, long long deadline_ms) {
    char *p = buf;
    while (len > 0) {
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        long long left = deadline_ms - (now.tv_sec * 1000LL + now.tv_nsec / 1000000);
        if (left <= 0) return -2;
        struct pollfd pfd = {fd, POLLIN, 0};
        int pr = poll(&pfd, 1, (int)left);
        if (pr < 0 && errno == EINTR) continue;
        if (pr <= 0) return pr == 0 ? -2 : -1;
        ssize_t r = read(fd, p, len);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return -1;
        p += r;
        len -= (size_t)r;
    }
    return 0;
}

static void child(const char *backend, int fd) {
    probe_header h;
    memset(&h, 0, sizeof(h));
    hetrun_backend_module m;
    memset(&m, 0, sizeof(m));
    snprintf(m.name, sizeof(m.name), "%s", backend);
    if (hetrun_loader_find(backend, m.path, sizeof(m.path)) != 0) {
        h.status = 1;
        snprintf(h.reason, sizeof(h.reason),
                 "module libhetrun_backend_%s.so not found on HETRUN_BACKEND_PATH or in the "
                 "module folders",
                 backend);
        write_all(fd, &h, sizeof(h));
        _exit(0);
    }
    int rc = hetrun_module_open(&m, hetrun_host_services_get());
    if (rc != 0) {
        h.status = rc > 0 ? 1 : -1;
        snprintf(h.reason, sizeof(h.reason), "%.600s (%.400s)",
                 m.reason[0] ? m.reason : "open failed", m.path);
        write_all(fd, &h, sizeof(h));
        _exit(0);
    }
    int32_t n = 0;
    hetrun_status st = m.ops->device_count(&n);
    if (st != HETRUN_OK || n < 0 || n > PROBE_MAX_DEVICES) {
        h.status = -1;
        snprintf(h.reason, sizeof(h.reason),
                 "backend %s: device_count failed (status %d, count %d): %s", backend, (int)st,
                 (int)n, m.ops->last_error ? m.ops->last_error() : "");
        write_all(fd, &h, sizeof(h));
        _exit(0);
    }
    hetrun_probe_device *v = calloc((size_t)(n > 0 ? n : 1), sizeof(*v));
    if (!v) _exit(3);
    for (int32_t i = 0; i < n; i++) {
        v[i].index = i;
        v[i].info.struct_size = sizeof(v[i].info);
        st = m.ops->device_info(i, &v[i].info);
        if (st != HETRUN_OK) {
            h.status = -1;
            snprintf(h.reason, sizeof(h.reason),
                     "backend %s: device_info(%d) failed (status %d): %s", backend, (int)i, (int)st,
                     m.ops->last_error ? m.ops->last_error() : "");
            write_all(fd, &h, sizeof(h));
            _exit(0);
        }
        /* Never trust module strings to be terminated. */
        v[i].info.name[sizeof(v[i].info.name) - 1] = '\0';
        v[i].info.vendor[sizeof(v[i].info.vendor) - 1] = '\0';
        v[i].info.pci_bus_id[sizeof(v[i].info.pci_bus_id) - 1] = '\0';
        v[i].info.visibility_env[sizeof(v[i].info.visibility_env) - 1] = '\0';
        v[i].info.uuid[sizeof(v[i].info.uuid) - 1] = '\0';
        v[i].info.arch[sizeof(v[i].info.arch) - 1] = '\0';
        v[i].info.driver_version[sizeof(v[i].info.driver_version) - 1] = '\0';
    }
    h.count = n;
    if (write_all(fd, &h, sizeof(h)) != 0 || write_all(fd, v, (size_t)n * sizeof(*v)) != 0)
        _exit(4);
    /* Skip finalize: the process ends now and some runtimes hang in teardown. */
    _exit(0);
}

void hetrun_probe_set_timeout(double seconds) {
    if (seconds > 0) probe_timeout_ms = (long long)(seconds * 1000.0 + 0.5);
}

int hetrun_probe_backend(const char *backend, hetrun_probe_device **devs, int *ndevs, char *why,
                         size_t whylen) {
    *devs = NULL;
    *ndevs = 0;
    why[0] = '\0';
    if (!backend || !*backend || strlen(backend) > 60 || strchr(backend, '/')) {
        snprintf(why, whylen, "invalid backend name \"%s\"", backend ? backend : "(null)");
        return -1;
    }
    int fds[2];
    if (pipe(fds) != 0) {
        snprintf(why, whylen, "probe of backend %s: pipe failed: %s", backend, strerror(errno));
        return -1;
    }
    fflush(NULL); /* the child must not flush the parent's buffers again */
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(why, whylen, "probe of backend %s: fork failed: %s", backend, strerror(errno));
        close(fds[0]);
        close(fds[1]);
        return -1;
    }
    if (pid == 0) {
        close(fds[0]);
        child(backend, fds[1]);
        _exit(0);
    }
    close(fds[1]);
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    long long deadline = now.tv_sec * 1000LL + now.tv_nsec / 1000000 + probe_timeout_ms;
    probe_header h;
    int rc = read_all(fds[0], &h, sizeof(h), deadline);
    hetrun_probe_device *v = NULL;
    if (rc == 0 && h.status == 0 && h.count > 0 && h.count <= PROBE_MAX_DEVICES) {
        v = calloc((size_t)h.count, sizeof(*v));
        rc = v ? read_all(fds[0], v, (size_t)h.count * sizeof(*v), deadline) : -3;
    }
    close(fds[0]);
    if (rc == -2) kill(pid, SIGKILL);
    int wst = 0;
    while (waitpid(pid, &wst, 0) < 0 && errno == EINTR) {
    }
    if (rc != 0) {
        free(v);
        if (rc == -2)
            snprintf(why, whylen,
                     "probe of backend %s: module libhetrun_backend_%s.so gave no device list "
                     "within %.3g s (hung in its init, device_count or device_info; probe "
                     "killed); HETRUN_PROBE_TIMEOUT=SECONDS allows a slower runtime start",
                     backend, backend, (double)probe_timeout_ms / 1000.0);
        else if (rc == -3)
            snprintf(why, whylen, "probe of backend %s: out of memory for %d devices", backend,
                     (int)h.count);
        else if (WIFSIGNALED(wst))
            snprintf(why, whylen, "probe of backend %s: child killed by signal %d (%s)", backend,
                     WTERMSIG(wst), strsignal(WTERMSIG(wst)));
        else
            snprintf(why, whylen,
                     "probe of backend %s: child exited with status %d before "
                     "answering",
                     backend, WIFEXITED(wst) ? WEXITSTATUS(wst) : -1);
        return -1;
    }
    h.reason[sizeof(h.reason) - 1] = '\0';
    if (h.status != 0) {
        snprintf(why, whylen, "%s", h.reason);
        return h.status > 0 ? 1 : -1;
    }
    if (h.count < 0 || h.count > PROBE_MAX_DEVICES) {
        free(v);
        snprintf(why, whylen, "probe of backend %s: implausible device count %d", backend,
                 (int)h.count);
        return -1;
    }
    *devs = v;
    *ndevs = h.count;
    return 0;
}
