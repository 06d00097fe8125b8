/* Safe reads and atomic writes (see safe_file.h). */
#include "util/safe_file.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *kind_of(mode_t m) {
    if (S_ISDIR(m)) return "a directory";
    if (S_ISFIFO(m)) return "a FIFO (named pipe)";
    if (S_ISCHR(m)) return "a character device";
    if (S_ISBLK(m)) return "a block device";
    if (S_ISSOCK(m)) return "a socket";
    return "not a regular file";
}

int hetrun_file_open_regular(const char *path, const char *what, uint64_t max_bytes, uint64_t *size,
                             char *err, size_t errlen) {
    /* O_NONBLOCK: opening a FIFO with no writer must not wait; cleared below. */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "%s %s: cannot open: %s", what, path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        snprintf(err, errlen, "%s %s: cannot stat: %s", what, path, strerror(errno));
        close(fd);
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "%s %s: is %s; only regular files are read", what, path,
                 kind_of(st.st_mode));
        close(fd);
        return -1;
    }
    if ((uint64_t)st.st_size > max_bytes) {
        snprintf(err, errlen, "%s %s: %lld bytes, more than the limit of %llu", what, path,
                 (long long)st.st_size, (unsigned long long)max_bytes);
        close(fd);
        return -1;
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0) fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    *size = (uint64_t)st.st_size;
    return fd;
}

int hetrun_file_read_all(const char *path, const char *what, uint64_t max_bytes, char **buf,
                         size_t *len, char *err, size_t errlen) {
    *buf = NULL;
    *len = 0;
    uint64_t size = 0;
    int fd = hetrun_file_open_regular(path, what, max_bytes, &size, err, errlen);
    if (fd < 0) return -1;
    char *b = malloc((size_t)size + 1);
    if (!b) {
        snprintf(err, errlen, "%s %s: out of memory for %llu bytes", what, path,
                 (unsigned long long)size);
        close(fd);
        return -1;
    }
    size_t got = 0;
    while (got < size) {
        size_t chunk = size - got > (1u << 30) ? (1u << 30) : (size_t)(size - got);
        ssize_t r = read(fd, b + got, chunk);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            snprintf(err, errlen, "%s %s: %s after %zu of %llu bytes", what, path,
                     r < 0 ? strerror(errno) : "file shrank while reading", got,
                     (unsigned long long)size);
            free(b);
            close(fd);
            return -1;
        }
        got += (size_t)r;
    }
    close(fd);
    b[got] = '\0';
    *buf = b;
    *len = got;
    return 0;
}

void hetrun_atomic_temp_name(const char *path, const char *tag, char *out, size_t len) {
    const char *slash = strrchr(path, '/');
    if (slash)
        snprintf(out, len, "%.*s/.%s.tmp.%ld.%s", (int)(slash - path), path, slash + 1,
                 (long)getpid(), tag);
    else
        snprintf(out, len, ".%s.tmp.%ld.%s", path, (long)getpid(), tag);
}

int hetrun_atomic_begin(hetrun_atomic_file *a, const char *path, int durable, char *err,
                        size_t errlen) {
    a->fd = -1;
    a->durable = durable;
    if (snprintf(a->path, sizeof a->path, "%s", path) >= (int)sizeof a->path) {
        snprintf(err, errlen, "%.200s...: path too long", path);
        return -1;
    }
    hetrun_atomic_temp_name(path, "XXXXXX", a->tmp, sizeof a->tmp);
    a->fd = mkstemp(a->tmp);
    if (a->fd >= 0) fcntl(a->fd, F_SETFD, FD_CLOEXEC);
    if (a->fd < 0) {
        snprintf(err, errlen, "%s: cannot create a temporary file beside it: %s", path,
                 strerror(errno));
        return -1;
    }
    return 0;
}

int hetrun_atomic_write(hetrun_atomic_file *a, const void *p, size_t n, char *err, size_t errlen) {
    const char *b = p;
    for (size_t done = 0; done < n;) {
        size_t chunk = n - done > (1u << 30) ? (1u << 30) : n - done;
        ssize_t w = write(a->fd, b + done, chunk);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            snprintf(err, errlen, "%s: write failed: %s", a->tmp,
                     w < 0 ? strerror(errno) : "no progress");
            return -1;
        }
        done += (size_t)w;
    }
    return 0;
}

void hetrun_atomic_abort(hetrun_atomic_file *a) {
    if (a->fd >= 0) close(a->fd);
    a->fd = -1;
    unlink(a->tmp);
}

int hetrun_atomic_commit(hetrun_atomic_file *a, char *err, size_t errlen) {
    if (fchmod(a->fd, 0644) != 0 || (a->durable && fsync(a->fd) != 0)) {
        snprintf(err, errlen, "%s: fsync failed: %s", a->tmp, strerror(errno));
        hetrun_atomic_abort(a);
        return -1;
    }
    int rc = close(a->fd);
    a->fd = -1;
    if (rc != 0 || rename(a->tmp, a->path) != 0) {
        snprintf(err, errlen, "%s: rename from %s failed: %s", a->path, a->tmp, strerror(errno));
        unlink(a->tmp);
        return -1;
    }
    if (!a->durable) return 0;
    char dir[4096];
    const char *slash = strrchr(a->path, '/');
    snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - a->path) : 1,
             slash ? (slash == a->path ? "/" : a->path) : ".");
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0 || fsync(dfd) != 0) { /* the rename is durable only once the entry is */
        snprintf(err, errlen, "%s: fsync of folder %s failed: %s", a->path, dir, strerror(errno));
        if (dfd >= 0) close(dfd);
        return -1;
    }
    close(dfd);
    return 0;
}

int hetrun_write_atomic(const char *path, const char *text, size_t len, char *err, size_t errlen) {
    hetrun_atomic_file a;
    if (hetrun_atomic_begin(&a, path, 1, err, errlen) != 0) return -1;
    if (hetrun_atomic_write(&a, text, len, err, errlen) != 0) {
        hetrun_atomic_abort(&a);
        return -1;
    }
    return hetrun_atomic_commit(&a, err, errlen);
}

/* The writer's pid in a temp name ".<prefix>...tmp.<pid>[.<tag>]"; 0 when not one. */
static long temp_pid(const char *name, const char *prefix) {
    if (name[0] != '.' || strncmp(name + 1, prefix, strlen(prefix)) != 0) return 0;
    const char *t = strstr(name, ".tmp.");
    const char *next;
    while (t && (next = strstr(t + 1, ".tmp.")))
        t = next;
    if (!t) return 0;
    char *end;
    long pid = strtol(t + 5, &end, 10);
    if (end == t + 5 || (*end != '\0' && *end != '.') || pid <= 0) return 0;
    return pid;
}

int hetrun_clean_stale_temps(const char *dir, const char *prefix) {
    DIR *d = opendir(dir);
    if (!d) return 0;
    int removed = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        long pid = temp_pid(e->d_name, prefix);
        if (pid <= 0 || pid == (long)getpid()) continue;
        if (kill((pid_t)pid, 0) == 0 || errno != ESRCH) continue; /* alive, or not ours */
        char path[4096];
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (lstat(path, &st) == 0 && S_ISREG(st.st_mode) && unlink(path) == 0) removed++;
    }
    closedir(d);
    return removed;
}
