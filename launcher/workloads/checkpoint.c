/* Checkpoint files (format in checkpoint.h): atomic write, verified read. */
#include "workloads/checkpoint.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "util/log.h"

static const char magic[8] = {'H', 'T', 'R', 'N', 'C', 'K', 'P', '1'};

void hetrun_ckpt_free(hetrun_ckpt *c) {
    free(c->mean);
    free(c->std);
    free(c->params);
    free(c->state);
    c->mean = c->std = c->params = c->state = NULL;
}

/* write() all of it, retrying short writes and EINTR; updates the running CRC. */
static int write_all(int fd, const void *p, size_t n, uLong *crc) {
    const char *b = p;
    *crc = crc32(*crc, p, (uInt)0);
    for (size_t off = 0; off < n;) {
        size_t chunk = n - off > (1u << 30) ? (1u << 30) : n - off;
        ssize_t w = write(fd, b + off, chunk);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        *crc = crc32(*crc, (const Bytef *)(b + off), (uInt)w);
        off += (size_t)w;
    }
    return 0;
}

static int is_ckpt_name(const char *n) {
    size_t len = strlen(n);
    return len == 21 && strncmp(n, "ckpt-", 5) == 0 && strcmp(n + 17, ".bin") == 0 &&
           strspn(n + 5, "0123456789") == 12;
}

static int cmp_names(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Checkpoint file names in dir, sorted oldest first; *count set. NULL with count 0 if none. */
static char **list_ckpts(const char *dir, size_t *count) {
    *count = 0;
    DIR *d = opendir(dir);
    if (!d) return NULL;
    char **names = NULL;
    size_t cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!is_ckpt_name(e->d_name)) continue;
        if (*count == cap) {
            cap = cap ? cap * 2 : 16;
            char **nn = realloc(names, cap * sizeof *nn);
            if (!nn) break;
            names = nn;
        }
        names[*count] = strdup(e->d_name);
        if (names[*count]) (*count)++;
    }
    closedir(d);
    if (*count) qsort(names, *count, sizeof *names, cmp_names);
    return names;
}

static void free_names(char **names, size_t n) {
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

int hetrun_ckpt_write(const char *dir, const hetrun_ckpt *c, int64_t keep, char *err,
                      size_t err_len) {
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        snprintf(err, err_len, "checkpoint: mkdir %s: %s", dir, strerror(errno));
        return -1;
    }
    char tmp[4096], final[4096];
    snprintf(final, sizeof final, "%s/ckpt-%012lld.bin", dir, (long long)c->h.step);
    snprintf(tmp, sizeof tmp, "%s/.ckpt-%012lld.bin.tmp.%ld", dir, (long long)c->h.step,
             (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        snprintf(err, err_len, "checkpoint: open %s: %s", tmp, strerror(errno));
        return -1;
    }
    uLong crc = crc32(0L, Z_NULL, 0);
    const size_t f = (size_t)c->h.shape.dims[0];
    int bad = write_all(fd, magic, sizeof magic, &crc) || write_all(fd, &c->h, sizeof c->h, &crc) ||
              write_all(fd, c->mean, f * 4, &crc) || write_all(fd, c->std, f * 4, &crc) ||
              write_all(fd, c->params, (size_t)c->h.param_count * 4, &crc) ||
              (c->h.state_count && write_all(fd, c->state, (size_t)c->h.state_count * 4, &crc));
    uint32_t crc32v = (uint32_t)crc;
    uLong ignore = 0;
    if (!bad) bad = write_all(fd, &crc32v, 4, &ignore);
    if (bad || fsync(fd) != 0) {
        snprintf(err, err_len, "checkpoint: writing %s: %s", tmp, strerror(errno));
        close(fd);
        unlink(tmp);
        return -1;
    }
    if (close(fd) != 0 || rename(tmp, final) != 0) {
        snprintf(err, err_len, "checkpoint: rename %s -> %s: %s", tmp, final, strerror(errno));
        unlink(tmp);
        return -1;
    }
    /* The rename is durable only once the directory entry is on disk. */
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0 || fsync(dfd) != 0) {
        snprintf(err, err_len, "checkpoint: fsync of directory %s: %s", dir, strerror(errno));
        if (dfd >= 0) close(dfd);
        return -1;
    }
    close(dfd);
    size_t n = 0;
    char **names = list_ckpts(dir, &n);
    for (size_t i = 0; keep > 0 && i + (size_t)keep < n; i++) {
        char old[4096];
        snprintf(old, sizeof old, "%s/%s", dir, names[i]);
        if (unlink(old) != 0) HETRUN_WARN("checkpoint: cannot delete %s: %s", old, strerror(errno));
    }
    free_names(names, n);
    return 0;
}

int hetrun_ckpt_read(const char *path, hetrun_ckpt *c, char *err, size_t err_len) {
    memset(c, 0, sizeof *c);
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        snprintf(err, err_len, "checkpoint %s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    int rc = -1;
    char *buf = NULL;
    if (fseek(fp, 0, SEEK_END) != 0) goto io;
    long size = ftell(fp);
    if (size < 0 || fseek(fp, 0, SEEK_SET) != 0) goto io;
    const size_t fixed = sizeof magic + sizeof(hetrun_ckpt_header) + 4;
    if ((size_t)size < fixed) {
        snprintf(err, err_len, "checkpoint %s: %ld bytes, shorter than the %zu-byte header", path,
                 size, fixed);
        goto out;
    }
    buf = malloc((size_t)size);
    if (!buf) {
        snprintf(err, err_len, "checkpoint %s: out of memory for %ld bytes", path, size);
        goto out;
    }
    if (fread(buf, 1, (size_t)size, fp) != (size_t)size) goto io;
    if (memcmp(buf, magic, sizeof magic) != 0) {
        snprintf(err, err_len, "checkpoint %s: bad magic (not a hetrun checkpoint v1)", path);
        goto out;
    }
    uint32_t stored;
    memcpy(&stored, buf + size - 4, 4);
    uint32_t actual = (uint32_t)crc32(crc32(0L, Z_NULL, 0), (const Bytef *)buf, (uInt)(size - 4));
    if (stored != actual) {
        snprintf(err, err_len,
                 "checkpoint %s: CRC32 mismatch (stored %08x, computed %08x): "
                 "the file is corrupt",
                 path, stored, actual);
        goto out;
    }
    memcpy(&c->h, buf + sizeof magic, sizeof c->h);
    const hetrun_ckpt_header *h = &c->h;
    if (h->version != 1 || h->shape.layers < 1 || h->shape.layers > HETRUN_MLP_MAX_LAYERS) {
        snprintf(err, err_len,
                 "checkpoint %s: version %u with %d layers; expected version 1, "
                 "1..%d layers",
                 path, h->version, h->shape.layers, HETRUN_MLP_MAX_LAYERS);
        goto out;
    }
    for (int l = 0; l <= h->shape.layers; l++)
        if (h->shape.dims[l] < 1 || h->shape.dims[l] > (1 << 24)) {
            snprintf(err, err_len, "checkpoint %s: layer width %lld out of range", path,
                     (long long)h->shape.dims[l]);
            goto out;
        }
    const uint64_t f = (uint64_t)h->shape.dims[0];
    if (h->param_count != hetrun_mlp_param_count(&h->shape) ||
        (uint64_t)size != fixed + (2 * f + h->param_count + h->state_count) * 4) {
        snprintf(err, err_len,
                 "checkpoint %s: %ld bytes do not match its shape (%llu params, "
                 "%llu state floats)",
                 path, size, (unsigned long long)h->param_count,
                 (unsigned long long)h->state_count);
        goto out;
    }
    c->mean = malloc(f * 4), c->std = malloc(f * 4);
    c->params = malloc(h->param_count * 4);
    c->state = h->state_count ? malloc(h->state_count * 4) : NULL;
    if (!c->mean || !c->std || !c->params || (h->state_count && !c->state)) {
        snprintf(err, err_len, "checkpoint %s: out of memory", path);
        goto out;
    }
    const char *p = buf + sizeof magic + sizeof c->h;
    memcpy(c->mean, p, f * 4), p += f * 4;
    memcpy(c->std, p, f * 4), p += f * 4;
    memcpy(c->params, p, h->param_count * 4), p += h->param_count * 4;
    if (h->state_count) memcpy(c->state, p, h->state_count * 4);
    rc = 0;
    goto out;
io:
    snprintf(err, err_len, "checkpoint %s: read error: %s", path, strerror(errno));
out:
    if (rc != 0) hetrun_ckpt_free(c);
    free(buf);
    fclose(fp);
    return rc;
}

int hetrun_ckpt_load_newest(const char *dir, hetrun_ckpt *c, char *path_out, size_t path_len,
                            char *err, size_t err_len) {
    size_t n = 0;
    char **names = list_ckpts(dir, &n);
    int rc = 0;
    char first_err[1024] = "";
    for (size_t i = n; i-- > 0;) {
        char path[4096], why[1024];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        if (hetrun_ckpt_read(path, c, why, sizeof why) == 0) {
            snprintf(path_out, path_len, "%s", path);
            rc = 1;
            break;
        }
        HETRUN_WARN("%s; trying an older checkpoint", why);
        if (!first_err[0]) snprintf(first_err, sizeof first_err, "%s", why);
        rc = -1;
    }
    if (rc == -1)
        snprintf(err, err_len, "no valid checkpoint in %s (%zu refused; newest: %s)", dir, n,
                 first_err);
    free_names(names, n);
    return rc;
}
