/* Datasets: CSV and gzip CSV through zlib's gzread (which reads plain files unchanged),
 * IDX (MNIST) images and labels, seeded gaussian clusters; seeded split; moments. */
#include "workloads/data.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "util/safe_file.h"
#include "workloads/stats.h"

const char *const hetrun_data_sources[] = {"csv", "idx", "synthetic", NULL};

static void data_check(const void *obj, const hetrun_check_ctx *ctx) {
    const hetrun_data_params *p = obj;
    if (p->source == HETRUN_DATA_CSV && !p->path)
        hetrun_check_error(ctx, "path", "'source: csv' needs 'path' (the CSV file)");
    if (p->source == HETRUN_DATA_IDX && (!p->path || !p->labels))
        hetrun_check_error(ctx, p->path ? "labels" : "path",
                           "'source: idx' needs 'path' (images) and 'labels' (IDX files)");
    if (p->source == HETRUN_DATA_SYNTHETIC && p->samples < p->classes)
        hetrun_check_error(ctx, "samples", "synthetic data needs samples (%lld) >= classes (%lld)",
                           (long long)p->samples, (long long)p->classes);
}

static const hetrun_field data_fields[] = {
    {"source", HETRUN_FIELD_ENUM, HETRUN_FIELD_REQUIRED, offsetof(hetrun_data_params, source), 1, 0,
     hetrun_data_sources, NULL, NULL, "csv (plain or gzip), idx (MNIST format) or synthetic"},
    {"path", HETRUN_FIELD_STRING, 0, offsetof(hetrun_data_params, path), 1, 0, NULL, NULL, NULL,
     "csv: the file; idx: the images file (a relative path is taken from the spec file's folder)"},
    {"labels", HETRUN_FIELD_STRING, 0, offsetof(hetrun_data_params, labels), 1, 0, NULL, NULL, NULL,
     "idx: the labels file"},
    {"label_column", HETRUN_FIELD_INT, 0, offsetof(hetrun_data_params, label_column), -1, 100000,
     NULL, NULL, "-1", "csv: 0-based column holding the class label; -1: the last"},
    {"header", HETRUN_FIELD_BOOL, 0, offsetof(hetrun_data_params, header), 1, 0, NULL, NULL,
     "false", "csv: the first row is a header and is skipped"},
    {"samples", HETRUN_FIELD_INT, 0, offsetof(hetrun_data_params, samples), 1, 100000000, NULL,
     NULL, "4096", "synthetic: number of samples"},
    {"features", HETRUN_FIELD_INT, 0, offsetof(hetrun_data_params, features), 1, 1000000, NULL,
     NULL, "784", "synthetic: features per sample"},
    {"classes", HETRUN_FIELD_INT, 0, offsetof(hetrun_data_params, classes), 2, 100000, NULL, NULL,
     "10", "synthetic: number of classes"},
    {"spread", HETRUN_FIELD_FLOAT, 0, offsetof(hetrun_data_params, spread), 0.0, 1e6, NULL, NULL,
     "4.0", "synthetic: standard deviation of samples around their class centre"},
    {"test_fraction", HETRUN_FIELD_FLOAT, 0, offsetof(hetrun_data_params, test_fraction), 0.0, 0.9,
     NULL, NULL, "0.2", "fraction of samples held out for testing (seeded shuffle)"},
    {"standardize", HETRUN_FIELD_BOOL, 0, offsetof(hetrun_data_params, standardize), 1, 0, NULL,
     NULL, "true", "scale each feature to mean 0, std 1 using the training split's moments"},
};

const hetrun_schema hetrun_data_schema = {"data", sizeof(hetrun_data_params), data_fields,
                                          sizeof data_fields / sizeof data_fields[0], data_check};

void hetrun_data_free(hetrun_dataset *d) {
    free(d->x);
    free(d->y);
    memset(d, 0, sizeof *d);
}

/* Growable arrays for the CSV reader. */
typedef struct vec {
    void *p;
    size_t len, cap, elem;
} vec;

static int vec_push(vec *v, const void *item) {
    if (v->len == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 4096;
        void *np = realloc(v->p, cap * v->elem);
        if (!np) return -1;
        v->p = np, v->cap = cap;
    }
    memcpy((char *)v->p + v->len * v->elem, item, v->elem);
    v->len++;
    return 0;
}

/* Longest CSV line accepted: a file without newlines (or /dev/zero) must not grow the
 * buffer without bound. */
#define HETRUN_CSV_MAX_LINE (16u << 20)

/* Reads one line from gz into *buf; returns its length, -1 at EOF, -2 out of memory,
 * -3 a NUL byte (binary data, not CSV), -4 a line longer than HETRUN_CSV_MAX_LINE. */
static long gz_line(gzFile gz, char **buf, size_t *cap) {
    size_t len = 0;
    for (;;) {
        if (len + 2 > *cap) {
            if (*cap >= HETRUN_CSV_MAX_LINE) return -4;
            size_t nc = *cap ? *cap * 2 : 4096;
            char *nb = realloc(*buf, nc);
            if (!nb) return -2;
            *buf = nb, *cap = nc;
        }
        size_t room = *cap - len;
        if (!gzgets(gz, *buf + len, (int)room)) return len ? (long)len : -1;
        size_t got = strlen(*buf + len);
        len += got;
        if (len && (*buf)[len - 1] == '\n') return (long)len;
        /* gzgets stops at a newline, the end of the file, or a full buffer; anything
         * shorter means a NUL byte hid the rest. */
        if (got < room - 1 && !gzeof(gz)) return -3;
    }
}

/* Opens a data file through zlib (plain or gzip), refusing FIFOs, devices and folders
 * first so a read can neither block nor run forever. */
static gzFile open_data(const char *path, const char *what, char *err, size_t err_len) {
    uint64_t size = 0;
    int fd = hetrun_file_open_regular(path, what, UINT64_MAX, &size, err, err_len);
    if (fd < 0) return NULL;
    gzFile gz = gzdopen(fd, "rb");
    if (!gz) {
        snprintf(err, err_len, "%s %s: cannot start reading: out of memory", what, path);
        close(fd);
    }
    return gz;
}

/* After the last read: a gzip stream must have ended with its CRC and length trailer. */
static int gz_finished(gzFile gz, const char *path, char *err, size_t err_len) {
    int gzerr = 0;
    const char *msg = gzerror(gz, &gzerr);
    if (gzerr == Z_OK) return 0;
    if (gzerr == Z_BUF_ERROR)
        snprintf(err, err_len,
                 "data: %s is truncated: the gzip stream ends before its end-of-data trailer "
                 "(%s); the file is incomplete",
                 path, msg);
    else
        snprintf(err, err_len, "data: reading %s: zlib: %s (the gzip data is corrupt)", path, msg);
    return -1;
}

int hetrun_data_load_csv(const char *path, int64_t label_column, bool header, hetrun_dataset *out,
                         char *err, size_t err_len) {
    gzFile gz = open_data(path, "data: CSV", err, err_len);
    if (!gz) return -1;
    gzbuffer(gz, 1 << 17);
    vec xs = {NULL, 0, 0, sizeof(float)}, ys = {NULL, 0, 0, sizeof(int32_t)};
    char *line = NULL;
    size_t cap = 0;
    int64_t features = -1, max_label = -1, lineno = 0;
    int rc = -1;
    long n;
    while ((n = gz_line(gz, &line, &cap)) >= 0) {
        lineno++;
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            line[--n] = '\0';
        if (n == 0 || (header && lineno == 1)) continue;
        int64_t col = 0, label = -1;
        size_t row_start = xs.len;
        char *s = line;
        for (;;) {
            char *end;
            errno = 0;
            double v = strtod(s, &end);
            if (end == s || errno == ERANGE || !isfinite(v)) {
                snprintf(err, err_len, "data: %s line %lld column %lld: not a finite number%s",
                         path, (long long)lineno, (long long)col + 1,
                         lineno == 1 && !header
                             ? " (if line 1 is a header row of column names, set data.header: true)"
                             : "");
                goto out;
            }
            while (*end == ' ' || *end == '\t')
                end++;
            if (*end != ',' && *end != '\0') {
                snprintf(err, err_len, "data: %s line %lld column %lld: unexpected '%c'", path,
                         (long long)lineno, (long long)col + 1, *end);
                goto out;
            }
            int is_label = label_column >= 0 ? col == label_column : *end == '\0';
            if (is_label) {
                if (v < 0 || v != floor(v) || v >= HETRUN_DATA_MAX_CLASSES) {
                    snprintf(err, err_len,
                             "data: %s line %lld: label %g is not a class index (integer 0..%d)",
                             path, (long long)lineno, v, HETRUN_DATA_MAX_CLASSES - 1);
                    goto out;
                }
                label = (int64_t)v;
            } else {
                float f = (float)v; /* finite in the type stored: 1e39 is inf in fp32 */
                if (!isfinite(f)) {
                    snprintf(err, err_len,
                             "data: %s line %lld column %lld: %g does not fit a float32 "
                             "(|x| <= 3.4e38)",
                             path, (long long)lineno, (long long)col + 1, v);
                    goto out;
                }
                if (vec_push(&xs, &f) != 0) goto oom;
            }
            col++;
            if (*end == '\0') break;
            s = end + 1;
        }
        if (label < 0) {
            snprintf(err, err_len, "data: %s line %lld: has %lld columns, no label column %lld",
                     path, (long long)lineno, (long long)col, (long long)label_column);
            goto out;
        }
        int64_t nf = (int64_t)(xs.len - row_start);
        if (features < 0) features = nf;
        if (nf != features || nf == 0) {
            snprintf(err, err_len, "data: %s line %lld: %lld features, earlier rows have %lld",
                     path, (long long)lineno, (long long)nf, (long long)features);
            goto out;
        }
        int32_t l = (int32_t)label;
        if (vec_push(&ys, &l) != 0) goto oom;
        if (label > max_label) max_label = label;
    }
    if (n == -2) goto oom;
    if (n == -3 || n == -4) {
        snprintf(err, err_len, "data: %s line %lld: %s", path, (long long)lineno + 1,
                 n == -3 ? "NUL byte: binary data, not CSV"
                         : "line longer than 16 MiB (no newline?)");
        goto out;
    }
    if (gz_finished(gz, path, err, err_len) != 0) goto out;
    if (ys.len < 2 || max_label < 1) {
        snprintf(err, err_len, "data: %s has %zu samples and %lld classes; need >= 2 of each", path,
                 ys.len, (long long)max_label + 1);
        goto out;
    }
    if ((size_t)max_label >= ys.len) {
        snprintf(err, err_len,
                 "data: %s: largest label %lld means %lld classes, more than its %zu rows; "
                 "labels must be class indices 0..classes-1",
                 path, (long long)max_label, (long long)max_label + 1, ys.len);
        goto out;
    }
    out->x = xs.p, out->y = ys.p;
    xs.p = ys.p = NULL;
    out->samples = (int64_t)ys.len, out->features = features, out->classes = max_label + 1;
    rc = 0;
    goto out;
oom:
    snprintf(err, err_len, "data: out of memory reading %s (%zu values so far)", path, xs.len);
out:
    /* A line cut short by a truncated stream is reported as the truncation it is. */
    if (rc != 0) (void)gz_finished(gz, path, err, err_len);
    free(line);
    free(xs.p);
    free(ys.p);
    gzclose(gz);
    return rc;
}

/* Reads an IDX file of unsigned bytes: dims and data (caller frees *data). */
static int idx_read(const char *path, int want_rank_min, uint32_t dims[4], int *rank,
                    uint8_t **data, uint64_t *count, char *err, size_t err_len) {
    gzFile gz = open_data(path, "data: IDX", err, err_len);
    if (!gz) return -1;
    uint8_t magic[4];
    int rc = -1;
    if (gzread(gz, magic, 4) != 4 || magic[0] != 0 || magic[1] != 0) {
        snprintf(err, err_len, "data: %s is not an IDX file (bad magic)", path);
        goto out;
    }
    if (magic[2] != 0x08) {
        snprintf(err, err_len, "data: %s: IDX element type 0x%02x, only unsigned byte (0x08)", path,
                 magic[2]);
        goto out;
    }
    *rank = magic[3];
    if (*rank < want_rank_min || *rank > 4) {
        snprintf(err, err_len, "data: %s: IDX rank %d, expected %d..4", path, *rank, want_rank_min);
        goto out;
    }
    uint64_t total = 1;
    for (int i = 0; i < *rank; i++) {
        uint8_t b[4];
        if (gzread(gz, b, 4) != 4) {
            snprintf(err, err_len, "data: %s: truncated IDX header", path);
            goto out;
        }
        dims[i] = (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
        total *= dims[i];
    }
    if (total == 0 || total > (1ull << 34)) {
        snprintf(err, err_len, "data: %s: IDX holds %llu elements", path,
                 (unsigned long long)total);
        goto out;
    }
    *data = malloc(total);
    if (!*data) {
        snprintf(err, err_len, "data: out of memory for %llu bytes of %s",
                 (unsigned long long)total, path);
        goto out;
    }
    uint64_t got = 0;
    while (got < total) {
        unsigned chunk = total - got > (1u << 30) ? (1u << 30) : (unsigned)(total - got);
        int r = gzread(gz, *data + got, chunk);
        if (r <= 0) break;
        got += (uint64_t)r;
    }
    uint8_t extra;
    if (got == total && gzread(gz, &extra, 1) > 0) { /* the read also checks the trailer */
        snprintf(err, err_len, "data: %s: more bytes than its IDX header declares (%llu)", path,
                 (unsigned long long)total);
        got = 0;
    } else if (gz_finished(gz, path, err, err_len) != 0) {
        got = 0;
    } else if (got != total) {
        snprintf(err, err_len, "data: %s: truncated IDX data (%llu of %llu bytes)", path,
                 (unsigned long long)got, (unsigned long long)total);
    }
    if (got != total) {
        free(*data);
        *data = NULL;
        goto out;
    }
    *count = total;
    rc = 0;
out:
    gzclose(gz);
    return rc;
}

int hetrun_data_load_idx(const char *images, const char *labels, hetrun_dataset *out, char *err,
                         size_t err_len) {
    uint32_t di[4], dl[4];
    int ri, rl;
    uint8_t *img = NULL, *lab = NULL;
    uint64_t ni, nl;
    if (idx_read(images, 2, di, &ri, &img, &ni, err, err_len) != 0) return -1;
    if (idx_read(labels, 1, dl, &rl, &lab, &nl, err, err_len) != 0) {
        free(img);
        return -1;
    }
    int rc = -1;
    if (dl[0] != di[0] || nl != dl[0]) {
        snprintf(err, err_len, "data: %s has %u images but %s has %llu labels", images, di[0],
                 labels, (unsigned long long)nl);
        goto out;
    }
    int64_t n = di[0], f = (int64_t)(ni / di[0]);
    out->x = malloc((size_t)ni * sizeof(float));
    out->y = malloc((size_t)n * sizeof(int32_t));
    if (!out->x || !out->y) {
        hetrun_data_free(out);
        snprintf(err, err_len, "data: out of memory for %llu images", (unsigned long long)n);
        goto out;
    }
    int32_t mx = 0;
    for (uint64_t i = 0; i < ni; i++)
        out->x[i] = (float)img[i] * (1.0f / 255.0f);
    for (int64_t i = 0; i < n; i++) {
        out->y[i] = lab[i];
        if (lab[i] > mx) mx = lab[i];
    }
    out->samples = n, out->features = f, out->classes = mx + 1;
    rc = 0;
out:
    free(img);
    free(lab);
    return rc;
}

int hetrun_data_synthetic(int64_t samples, int64_t features, int64_t classes, double spread,
                          uint64_t seed, hetrun_dataset *out, char *err, size_t err_len) {
    float *centres = malloc((size_t)(classes * features) * sizeof(float));
    out->x = malloc((size_t)(samples * features) * sizeof(float));
    out->y = malloc((size_t)samples * sizeof(int32_t));
    if (!centres || !out->x || !out->y) {
        free(centres);
        hetrun_data_free(out);
        snprintf(err, err_len, "data: out of memory for %lld x %lld synthetic samples",
                 (long long)samples, (long long)features);
        return -1;
    }
    hetrun_rng r = hetrun_rng_seed(seed, 0x5eedda7a);
    for (int64_t i = 0; i < classes * features; i++)
        centres[i] = (float)hetrun_rng_normal(&r);
    for (int64_t i = 0; i < samples; i++) {
        int32_t c = (int32_t)(i % classes); /* balanced classes; the split shuffles */
        out->y[i] = c;
        for (int64_t j = 0; j < features; j++)
            out->x[i * features + j] =
                centres[c * features + j] + (float)(spread * hetrun_rng_normal(&r));
    }
    free(centres);
    out->samples = samples, out->features = features, out->classes = classes;
    return 0;
}

int hetrun_data_load(const hetrun_data_params *p, uint64_t seed, hetrun_dataset *out, char *err,
                     size_t err_len) {
    memset(out, 0, sizeof *out);
    switch (p->source) {
    case HETRUN_DATA_CSV:
        return hetrun_data_load_csv(p->path, p->label_column, p->header, out, err, err_len);
    case HETRUN_DATA_IDX: return hetrun_data_load_idx(p->path, p->labels, out, err, err_len);
    case HETRUN_DATA_SYNTHETIC:
        return hetrun_data_synthetic(p->samples, p->features, p->classes, p->spread, seed, out, err,
                                     err_len);
    default: snprintf(err, err_len, "data: unknown source %d", p->source); return -1;
    }
}

int hetrun_data_split(const hetrun_dataset *all, double test_fraction, uint64_t seed,
                      hetrun_dataset *train, hetrun_dataset *test, char *err, size_t err_len) {
    const int64_t n = all->samples, f = all->features;
    int64_t nt = (int64_t)llround(test_fraction * (double)n);
    if (nt >= n) nt = n - 1;
    int64_t *perm = malloc((size_t)n * sizeof *perm);
    memset(train, 0, sizeof *train);
    memset(test, 0, sizeof *test);
    train->x = malloc((size_t)((n - nt) * f) * sizeof(float));
    train->y = malloc((size_t)(n - nt) * sizeof(int32_t));
    test->x = malloc((size_t)((nt ? nt : 1) * f) * sizeof(float));
    test->y = malloc((size_t)(nt ? nt : 1) * sizeof(int32_t));
    if (!perm || !train->x || !train->y || !test->x || !test->y) {
        free(perm);
        hetrun_data_free(train);
        hetrun_data_free(test);
        snprintf(err, err_len, "data: out of memory splitting %lld samples", (long long)n);
        return -1;
    }
    hetrun_rng r = hetrun_rng_seed(seed, 0x5b117);
    for (int64_t i = 0; i < n; i++)
        perm[i] = i;
    for (int64_t i = n - 1; i > 0; i--) { /* Fisher-Yates */
        int64_t j = (int64_t)(hetrun_rng_next(&r) % (uint64_t)(i + 1));
        int64_t t = perm[i];
        perm[i] = perm[j], perm[j] = t;
    }
    for (int64_t i = 0; i < n; i++) {
        hetrun_dataset *d = i < nt ? test : train;
        int64_t row = i < nt ? i : i - nt;
        memcpy(d->x + row * f, all->x + perm[i] * f, (size_t)f * sizeof(float));
        d->y[row] = all->y[perm[i]];
    }
    free(perm);
    train->samples = n - nt, test->samples = nt;
    train->features = test->features = f;
    train->classes = test->classes = all->classes;
    return 0;
}

void hetrun_data_moments(const hetrun_dataset *d, float *mean, float *std) {
    const int64_t n = d->samples, f = d->features;
    for (int64_t j = 0; j < f; j++) {
        double s = 0.0, s2 = 0.0;
        for (int64_t i = 0; i < n; i++)
            s += d->x[i * f + j];
        double mu = n ? s / (double)n : 0.0;
        for (int64_t i = 0; i < n; i++) {
            double c = d->x[i * f + j] - mu;
            s2 += c * c;
        }
        double sd = n ? sqrt(s2 / (double)n) : 0.0;
        mean[j] = (float)mu;
        std[j] = sd > 1e-12 ? (float)sd : 1.0f; /* constant features (digits' borders) stay 0 */
    }
}

void hetrun_data_apply_moments(hetrun_dataset *d, const float *mean, const float *std) {
    const int64_t f = d->features;
    for (int64_t i = 0; i < d->samples; i++)
        for (int64_t j = 0; j < f; j++)
            d->x[i * f + j] = (d->x[i * f + j] - mean[j]) / std[j];
}
