/* Byte-level tokenisation into a token file, and its memory-mapped reader (tokens.h). */
#include "workloads/tokens.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "report/report.h"

static const char MAGIC[8] = {'H', 'T', 'R', 'N', 'T', 'O', 'K', '1'};

size_t hetrun_utf8_invalid_at(const unsigned char *s, size_t len) {
    size_t i = 0;
    while (i < len) {
        unsigned c = s[i];
        size_t need;
        unsigned lo = 0x80, hi = 0xBF;
        if (c < 0x80) {
            i++;
            continue;
        } else if (c >= 0xC2 && c <= 0xDF) {
            need = 1;
        } else if (c >= 0xE0 && c <= 0xEF) {
            need = 2;
            if (c == 0xE0) lo = 0xA0;
            if (c == 0xED) hi = 0x9F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            need = 3;
            if (c == 0xF0) lo = 0x90;
            if (c == 0xF4) hi = 0x8F;
        } else {
            return i;
        }
        if (i + need >= len) return i; /* truncated at the end */
        if (s[i + 1] < lo || s[i + 1] > hi) return i;
        for (size_t j = 2; j <= need; j++)
            if ((s[i + j] & 0xC0) != 0x80) return i;
        i += need + 1;
    }
    return len;
}

static unsigned char *read_file(const char *path, size_t *len, char *err, size_t err_len) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, err_len, "corpus %s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    unsigned char *buf = NULL;
    size_t cap = 0, n = 0;
    for (;;) {
        if (n == cap) {
            size_t ncap = cap ? 2 * cap : 1 << 16;
            unsigned char *nb = realloc(buf, ncap);
            if (!nb) {
                snprintf(err, err_len, "corpus %s: out of memory after %zu bytes", path, n);
                free(buf), fclose(f);
                return NULL;
            }
            buf = nb, cap = ncap;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0) break;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        snprintf(err, err_len, "corpus %s: read error after %zu bytes", path, n);
        free(buf);
        return NULL;
    }
    *len = n;
    return buf;
}

int hetrun_tokens_write_bytes(const char *const *inputs, int n, const char *out, uint64_t *count,
                              char *err, size_t err_len) {
    if (n < 1) {
        snprintf(err, err_len, "tokenize: no corpus file given");
        return -1;
    }
    unsigned char *all = NULL;
    size_t total = 0;
    for (int i = 0; i < n; i++) {
        size_t len = 0;
        unsigned char *b = read_file(inputs[i], &len, err, err_len);
        if (!b) {
            free(all);
            return -1;
        }
        size_t bad = hetrun_utf8_invalid_at(b, len);
        const char *why = len == 0 ? "is empty" : bad < len ? "is not valid UTF-8" : NULL;
        if (why) {
            if (bad < len)
                snprintf(err, err_len, "corpus %s: is not valid UTF-8 (byte 0x%02x at offset %zu)",
                         inputs[i], b[bad], bad);
            else
                snprintf(err, err_len, "corpus %s: %s", inputs[i], why);
            free(b), free(all);
            return -1;
        }
        unsigned char *na = realloc(all, HETRUN_TOKENS_HEADER + total + len);
        if (!na) {
            snprintf(err, err_len, "corpus %s: out of memory", inputs[i]);
            free(b), free(all);
            return -1;
        }
        all = na;
        memcpy(all + HETRUN_TOKENS_HEADER + total, b, len);
        total += len;
        free(b);
    }
    unsigned char *h = all;
    memset(h, 0, HETRUN_TOKENS_HEADER);
    uint32_t version = 1, vocab = 256, width = 1;
    uint64_t cnt = total;
    uint32_t crc = (uint32_t)crc32(0L, Z_NULL, 0);
    for (size_t off = 0; off < total;) {
        size_t chunk = total - off > (1u << 30) ? (1u << 30) : total - off;
        crc = (uint32_t)crc32(crc, all + HETRUN_TOKENS_HEADER + off, (uInt)chunk);
        off += chunk;
    }
    memcpy(h, MAGIC, 8);
    memcpy(h + 8, &version, 4);
    memcpy(h + 12, &vocab, 4);
    memcpy(h + 16, &cnt, 8);
    memcpy(h + 24, &width, 4);
    memcpy(h + 28, &crc, 4);
    memcpy(h + 32, "bytes", 5);
    int rc =
        hetrun_write_atomic(out, (const char *)all, HETRUN_TOKENS_HEADER + total, err, err_len);
    free(all);
    if (rc == 0 && count) *count = cnt;
    return rc == 0 ? 0 : -1;
}

int hetrun_tokens_open(const char *path, hetrun_tokens *t, char *err, size_t err_len) {
    memset(t, 0, sizeof *t);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, err_len, "token file %s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || st.st_size < HETRUN_TOKENS_HEADER) {
        snprintf(err, err_len, "token file %s: %lld bytes, shorter than its %d-byte header", path,
                 (long long)st.st_size, HETRUN_TOKENS_HEADER);
        close(fd);
        return -1;
    }
    void *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
    close(fd);
    if (m == MAP_FAILED) {
        snprintf(err, err_len, "token file %s: mmap: %s", path, strerror(errno));
        return -1;
    }
    t->map = m, t->map_len = (size_t)st.st_size;
    uint32_t version, crc;
    memcpy(&version, t->map + 8, 4);
    memcpy(&t->vocab, t->map + 12, 4);
    memcpy(&t->count, t->map + 16, 8);
    memcpy(&t->width, t->map + 24, 4);
    memcpy(&crc, t->map + 28, 4);
    t->data = t->map + HETRUN_TOKENS_HEADER;
    const char *why = NULL;
    if (memcmp(t->map, MAGIC, 8) != 0)
        why = "bad magic (not a hetrun token file)";
    else if (version != 1)
        why = "unsupported version (want 1)";
    else if (t->width != 1 && t->width != 2)
        why = "token width must be 1 or 2 bytes";
    else if (t->vocab < 2 || t->vocab > (t->width == 1 ? 256u : 65536u))
        why = "vocab does not fit the token width";
    else if (t->count == 0 || t->count > (t->map_len - HETRUN_TOKENS_HEADER) / t->width ||
             t->count * t->width != t->map_len - HETRUN_TOKENS_HEADER)
        why = "token count does not match the file size";
    if (!why) {
        uint32_t c = (uint32_t)crc32(0L, Z_NULL, 0);
        const uint64_t bytes = t->count * t->width;
        for (uint64_t off = 0; off < bytes;) {
            uint64_t chunk = bytes - off > (1u << 30) ? (1u << 30) : bytes - off;
            c = (uint32_t)crc32(c, (const Bytef *)t->data + off, (uInt)chunk);
            off += chunk;
        }
        if (c != crc) why = "CRC32 of the tokens does not match its header (file corrupt)";
    }
    if (why) {
        snprintf(err, err_len, "token file %s: %s", path, why);
        hetrun_tokens_close(t);
        return -1;
    }
    return 0;
}

void hetrun_tokens_close(hetrun_tokens *t) {
    if (t->map) munmap((void *)t->map, t->map_len);
    memset(t, 0, sizeof *t);
}
