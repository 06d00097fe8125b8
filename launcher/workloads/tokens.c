/* Byte-level or BPE tokenisation into a token file, and its memory-mapped reader (tokens.h). */
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

#include "text/bpe.h"
#include "util/safe_file.h"

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

/* Reads and checks every input, concatenated into one malloc'ed buffer. */
static unsigned char *read_corpus(const char *const *inputs, int n, size_t *total, char *err,
                                  size_t err_len) {
    unsigned char *all = NULL;
    *total = 0;
    for (int i = 0; i < n; i++) {
        size_t len = 0;
        unsigned char *b = read_file(inputs[i], &len, err, err_len);
        if (!b) {
            free(all);
            return NULL;
        }
        size_t bad = hetrun_utf8_invalid_at(b, len);
        if (len == 0 || bad < len) {
            if (bad < len)
                snprintf(err, err_len, "corpus %s: is not valid UTF-8 (byte 0x%02x at offset %zu)",
                         inputs[i], b[bad], bad);
            else
                snprintf(err, err_len, "corpus %s: is empty", inputs[i]);
            free(b), free(all);
            return NULL;
        }
        unsigned char *na = realloc(all, *total + len);
        if (!na) {
            snprintf(err, err_len, "corpus %s: out of memory", inputs[i]);
            free(b), free(all);
            return NULL;
        }
        all = na;
        memcpy(all + *total, b, len);
        *total += len;
        free(b);
    }
    return all;
}

static uint32_t crc_of(const unsigned char *p, uint64_t bytes) {
    uint32_t c = (uint32_t)crc32(0L, Z_NULL, 0);
    for (uint64_t off = 0; off < bytes;) {
        uint64_t chunk = bytes - off > (1u << 30) ? (1u << 30) : bytes - off;
        c = (uint32_t)crc32(c, p + off, (uInt)chunk);
        off += chunk;
    }
    return c;
}

int hetrun_tokens_write(const char *const *inputs, int n, const char *out, uint32_t vocab,
                        uint64_t *count, uint32_t *vocab_out, char *err, size_t err_len) {
    if (n < 1) {
        snprintf(err, err_len, "tokenize: no corpus file given");
        return -1;
    }
    size_t total = 0;
    unsigned char *text = read_corpus(inputs, n, &total, err, err_len);
    if (!text) return -1;
    uint16_t(*merges)[2] = NULL, *ids = NULL;
    uint32_t nmerges = 0, width = 1;
    uint64_t cnt = total;
    const void *body = text;
    if (vocab != 256) {
        if (hetrun_bpe_train_encode(text, total, vocab, &merges, &nmerges, &ids, &cnt, err,
                                    err_len) != 0) {
            free(text);
            return -1;
        }
        width = 2, body = ids;
    }
    const uint64_t data = cnt * width, table = (uint64_t)nmerges * 4;
    unsigned char *file = malloc(HETRUN_TOKENS_HEADER + data + table);
    int rc = -1;
    if (file) {
        unsigned char *h = file;
        memset(h, 0, HETRUN_TOKENS_HEADER);
        memcpy(h + HETRUN_TOKENS_HEADER, body, data);
        if (nmerges) memcpy(h + HETRUN_TOKENS_HEADER + data, merges, table);
        uint32_t version = merges ? 2 : 1, v = 256 + nmerges;
        uint32_t crc = crc_of(h + HETRUN_TOKENS_HEADER, data + table);
        memcpy(h, MAGIC, 8);
        memcpy(h + 8, &version, 4);
        memcpy(h + 12, &v, 4);
        memcpy(h + 16, &cnt, 8);
        memcpy(h + 24, &width, 4);
        memcpy(h + 28, &crc, 4);
        memcpy(h + 32, merges ? "bpe" : "bytes", merges ? 3 : 5);
        rc = hetrun_write_atomic(out, (const char *)file, HETRUN_TOKENS_HEADER + data + table, err,
                                 err_len);
        if (rc == 0 && count) *count = cnt;
        if (rc == 0 && vocab_out) *vocab_out = v;
    } else {
        snprintf(err, err_len, "tokenize: out of memory for %llu tokens", (unsigned long long)cnt);
    }
    free(file), free(text), free(merges), free(ids);
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
    const uint64_t body = t->map_len - HETRUN_TOKENS_HEADER;
    const uint64_t nmerges = version == 2 && t->vocab > 256 ? t->vocab - 256u : 0;
    const char *why = NULL;
    if (memcmp(t->map, MAGIC, 8) != 0)
        why = "bad magic (not a hetrun token file)";
    else if (version != 1 && version != 2)
        why = "unsupported version (want 1: bytes, or 2: BPE)";
    else if (t->width != 1 && t->width != 2)
        why = "token width must be 1 or 2 bytes";
    else if (t->vocab < 2 || t->vocab > (t->width == 1 ? 256u : 65536u) ||
             (version == 2 && t->vocab <= 256))
        why = "vocab does not fit the token width (or a BPE file has no merges)";
    else if (t->count == 0 || t->count > body / t->width ||
             t->count * t->width + nmerges * 4 != body)
        why = "token count (and merge table) do not match the file size";
    else if (crc_of(t->data, body) != crc)
        why = "CRC32 of the tokens (and merges) does not match its header (file corrupt)";
    if (!why) {
        t->merges =
            nmerges ? (const uint16_t(*)[2])(t->map + HETRUN_TOKENS_HEADER + t->count * t->width)
                    : NULL;
        t->token_len = malloc((256 + nmerges) * sizeof *t->token_len);
        if (!t->token_len)
            why = "out of memory";
        else if (hetrun_bpe_token_lengths(t->merges, (uint32_t)nmerges, t->token_len) == 0)
            why = "a BPE merge refers to a token it does not come after (table corrupt)";
    }
    for (uint64_t i = 0; !why && i < t->count; i++) {
        const int32_t tk = hetrun_token_at(t, i);
        if ((uint32_t)tk >= t->vocab || (uint32_t)tk >= 256 + nmerges)
            why = "a token id is not below the vocabulary";
        else
            t->text_bytes += t->token_len[tk];
    }
    if (why) {
        snprintf(err, err_len, "token file %s: %s", path, why);
        hetrun_tokens_close(t);
        return -1;
    }
    return 0;
}

const char *hetrun_tokens_kind(const hetrun_tokens *t) {
    return t->merges ? "bpe" : "bytes";
}

size_t hetrun_tokens_decode(const hetrun_tokens *t, const int32_t *tokens, size_t n, char *out,
                            size_t cap) {
    size_t at = 0;
    const uint32_t nmerges = t->merges ? t->vocab - 256u : 0;
    for (size_t i = 0; i < n && cap > 0 && at < cap - 1; i++) {
        unsigned char *dst = (unsigned char *)out + at;
        size_t need = hetrun_bpe_decode(t->merges, nmerges, (uint32_t)tokens[i], dst, cap - 1 - at);
        at += need < cap - 1 - at ? need : cap - 1 - at;
    }
    if (cap > 0) out[at] = '\0';
    return at;
}

void hetrun_tokens_close(hetrun_tokens *t) {
    if (t->map) munmap((void *)t->map, t->map_len);
    free(t->token_len);
    memset(t, 0, sizeof *t);
}
