/* Sentence files (see sentences.h). */
#include "text/sentences.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <utf8proc.h>

/* Byte offset of the first invalid UTF-8 sequence in s, or -1. */
static long bad_utf8(const char *s, size_t n) {
    for (size_t i = 0; i < n;) {
        utf8proc_int32_t c;
        utf8proc_ssize_t k =
            utf8proc_iterate((const utf8proc_uint8_t *)s + i, (utf8proc_ssize_t)(n - i), &c);
        if (k <= 0) return (long)i;
        i += (size_t)k;
    }
    return -1;
}

/* Splits out->buf (len bytes, NUL-terminated) into lines. */
static int split_lines(hetrun_sentences *out, size_t len, const char *path, char *err,
                       size_t err_len) {
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        n += out->buf[i] == '\n';
    if (len && out->buf[len - 1] != '\n') n++;
    out->text = malloc((n ? n : 1) * sizeof *out->text);
    out->len = malloc((n ? n : 1) * sizeof *out->len);
    if (!out->text || !out->len) return snprintf(err, err_len, "%s: out of memory", path), -1;
    char *p = out->buf, *end = out->buf + len;
    while (p < end) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        char *e = nl ? nl : end;
        if (e > p && e[-1] == '\r') e--;
        *e = 0;
        long bad = bad_utf8(p, (size_t)(e - p));
        if (bad >= 0)
            return snprintf(err, err_len, "%s:%zu: invalid UTF-8 at byte %ld of the line", path,
                            out->count + 1, bad + 1),
                   -1;
        out->text[out->count] = p;
        out->len[out->count++] = (size_t)(e - p);
        p = nl ? nl + 1 : end;
    }
    return 0;
}

int hetrun_sentences_read(const char *path, hetrun_sentences *out, char *err, size_t err_len) {
    memset(out, 0, sizeof *out);
    FILE *fp = fopen(path, "rb");
    if (!fp) return snprintf(err, err_len, "%s: cannot open: %s", path, strerror(errno)), -1;
    struct stat st;
    if (fstat(fileno(fp), &st) != 0 || !S_ISREG(st.st_mode) ||
        (unsigned long long)st.st_size > HETRUN_SENTENCES_MAX_BYTES) {
        fclose(fp);
        return snprintf(err, err_len, "%s: not a regular file of at most %llu MiB", path,
                        HETRUN_SENTENCES_MAX_BYTES >> 20),
               -1;
    }
    size_t len = (size_t)st.st_size;
    out->buf = malloc(len + 1);
    size_t got = out->buf ? fread(out->buf, 1, len, fp) : 0;
    fclose(fp);
    if (!out->buf || got != len) {
        hetrun_sentences_free(out);
        return snprintf(err, err_len, "%s: read failed", path), -1;
    }
    out->buf[len] = 0;
    if (split_lines(out, len, path, err, err_len) != 0) {
        hetrun_sentences_free(out);
        return -1;
    }
    if (out->count == 0) {
        hetrun_sentences_free(out);
        return snprintf(err, err_len, "%s: no sentences (the file is empty)", path), -1;
    }
    return 0;
}

int hetrun_sentences_from(const char *const *items, size_t n, hetrun_sentences *out, char *err,
                          size_t err_len) {
    memset(out, 0, sizeof *out);
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += strlen(items[i]) + 1;
    out->buf = malloc(total ? total : 1);
    out->text = malloc((n ? n : 1) * sizeof *out->text);
    out->len = malloc((n ? n : 1) * sizeof *out->len);
    if (!out->buf || !out->text || !out->len) {
        hetrun_sentences_free(out);
        return snprintf(err, err_len, "sentences: out of memory"), -1;
    }
    char *p = out->buf;
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(items[i]);
        long bad = bad_utf8(items[i], l);
        if (bad >= 0) {
            hetrun_sentences_free(out);
            return snprintf(err, err_len, "sentences[%zu]: invalid UTF-8 at byte %ld", i, bad + 1),
                   -1;
        }
        memcpy(p, items[i], l + 1);
        out->text[i] = p;
        out->len[i] = l;
        out->count++;
        p += l + 1;
    }
    return 0;
}

void hetrun_sentences_free(hetrun_sentences *s) {
    free(s->text);
    free(s->len);
    free(s->buf);
    memset(s, 0, sizeof *s);
}
