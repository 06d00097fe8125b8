/* .npy float32 matrices (see npy.h); format: numpy.lib.format, version 1.0. */
#include "io/npy.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "util/safe_file.h"

static const char magic[6] = {'\x93', 'N', 'U', 'M', 'P', 'Y'};

int hetrun_npy_write_f32(const char *path, const float *data, int64_t rows, int64_t cols, char *err,
                         size_t err_len) {
    FILE *old = fopen(path, "rb");
    if (old) {
        char m[6] = {0};
        size_t got = fread(m, 1, sizeof m, old);
        fclose(old);
        if (got != sizeof m || memcmp(m, magic, sizeof m) != 0)
            return snprintf(err, err_len,
                            "%s exists and is not a .npy file; hetrun does not write over it",
                            path),
                   -1;
    }
    char dict[128];
    int dl =
        snprintf(dict, sizeof dict,
                 "{'descr': '<f4', 'fortran_order': False, 'shape': (%" PRId64 ", %" PRId64 "), }",
                 rows, cols);
    /* magic(6) + version(2) + length(2) + dict, padded with spaces to 64 bytes, ending '\n' */
    size_t head = 10 + (size_t)dl + 1;
    head = (head + 63) / 64 * 64;
    size_t bytes = (size_t)rows * (size_t)cols * sizeof(float);
    char *buf = malloc(head + bytes);
    if (!buf) return snprintf(err, err_len, "%s: out of memory for %zu bytes", path, bytes), -1;
    memcpy(buf, magic, 6);
    buf[6] = 1;
    buf[7] = 0;
    buf[8] = (char)((head - 10) & 0xff);
    buf[9] = (char)((head - 10) >> 8);
    memset(buf + 10, ' ', head - 10);
    memcpy(buf + 10, dict, (size_t)dl);
    buf[head - 1] = '\n';
    memcpy(buf + head, data, bytes);
    int rc = hetrun_write_atomic(path, buf, head + bytes, err, err_len);
    free(buf);
    return rc;
}

int hetrun_npy_read_f32(const char *path, float **data, int64_t *rows, int64_t *cols, char *err,
                        size_t err_len) {
    *data = NULL;
    FILE *fp = fopen(path, "rb");
    if (!fp) return snprintf(err, err_len, "%s: cannot open: %s", path, strerror(errno)), -1;
    unsigned char pre[10];
    char dict[4096];
    int rc = -1;
    if (fread(pre, 1, 10, fp) != 10 || memcmp(pre, magic, 6) != 0 || pre[6] != 1) {
        snprintf(err, err_len, "%s: not a version 1 .npy file", path);
        goto out;
    }
    size_t hl = (size_t)pre[8] | (size_t)pre[9] << 8;
    if (hl >= sizeof dict || fread(dict, 1, hl, fp) != hl) {
        snprintf(err, err_len, "%s: .npy header of %zu bytes is truncated or too long", path, hl);
        goto out;
    }
    dict[hl] = 0;
    long long r = -1, c = -1;
    const char *shape = strstr(dict, "'shape': (");
    if (!strstr(dict, "'descr': '<f4'") || !strstr(dict, "'fortran_order': False") || !shape ||
        sscanf(shape, "'shape': (%lld, %lld)", &r, &c) != 2 || r < 0 || c <= 0) {
        snprintf(err, err_len, "%s: not a 2-D little-endian float32 C-order array (header %s)",
                 path, dict);
        goto out;
    }
    size_t n = (size_t)r * (size_t)c;
    *data = malloc((n ? n : 1) * sizeof(float));
    if (!*data || fread(*data, sizeof(float), n, fp) != n) {
        snprintf(err, err_len, "%s: holds fewer than %lld x %lld floats", path, r, c);
        free(*data);
        *data = NULL;
        goto out;
    }
    *rows = r;
    *cols = c;
    rc = 0;
out:
    fclose(fp);
    return rc;
}
