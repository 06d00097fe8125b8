/* Byte-level BPE: training over distinct pre-tokenised chunks, encoding, decoding (bpe.h). */
#include "text/bpe.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { LETTER, DIGIT, SPACE, OTHER };

static int byte_class(unsigned char c) {
    if (c >= 0x80 || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return LETTER;
    if (c >= '0' && c <= '9') return DIGIT;
    if (c == ' ' || (c >= '\t' && c <= '\r')) return SPACE;
    return OTHER;
}

/* Length of the chunk that starts at text[i] (see bpe.h for the rule). */
static size_t chunk_len(const unsigned char *text, size_t len, size_t i) {
    size_t j = i;
    if (text[j] == ' ' && j + 1 < len && byte_class(text[j + 1]) != SPACE) j++;
    const int c = byte_class(text[j]);
    while (j < len && byte_class(text[j]) == c)
        j++;
    /* a whitespace run leaves its last space to lead the next word */
    if (c == SPACE && j - i > 1 && j < len && text[j - 1] == ' ') j--;
    return j - i;
}

static uint64_t fnv1a(const unsigned char *p, size_t n) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

typedef struct word {
    size_t text_at, text_len; /* first occurrence in the text */
    uint64_t freq;
    size_t sym_at; /* symbols[sym_at .. sym_at + nsym) */
    uint32_t nsym;
} word;

typedef struct trainer {
    word *words;
    size_t nwords, cap_words;
    uint32_t *slots; /* distinct-chunk hash table: word index + 1, 0 empty */
    size_t nslots;
    uint32_t *seq; /* the text as a sequence of word indices */
    size_t nseq;
    uint16_t *symbols;
    /* pair counts: key (left << 16 | right), generation-tagged so a recount clears nothing */
    uint32_t *pkey, *pgen, gen;
    uint64_t *pcount;
    size_t npairs_slots;
} trainer;

static int grow_words(trainer *t) {
    if (t->nwords < t->cap_words) return 0;
    size_t cap = t->cap_words ? 2 * t->cap_words : 4096;
    word *w = realloc(t->words, cap * sizeof *w);
    if (!w) return -1;
    t->words = w, t->cap_words = cap;
    return 0;
}

/* Doubles the distinct-chunk table (kept at most half full). */
static int grow_slots(trainer *t, const unsigned char *text) {
    size_t n = t->nslots * 2, mask = n - 1;
    uint32_t *slots = calloc(n, sizeof *slots);
    if (!slots) return -1;
    for (size_t w = 0; w < t->nwords; w++) {
        size_t at = (size_t)fnv1a(text + t->words[w].text_at, t->words[w].text_len) & mask;
        while (slots[at])
            at = (at + 1) & mask;
        slots[at] = (uint32_t)w + 1;
    }
    free(t->slots);
    t->slots = slots, t->nslots = n;
    return 0;
}

/* Index of the distinct chunk text[i, i + n), added when new. Returns -1 without memory. */
static long long word_of(trainer *t, const unsigned char *text, size_t i, size_t n) {
    if (2 * (t->nwords + 1) > t->nslots && grow_slots(t, text) != 0) return -1;
    size_t mask = t->nslots - 1, at = (size_t)fnv1a(text + i, n) & mask;
    for (;; at = (at + 1) & mask) {
        uint32_t s = t->slots[at];
        if (s == 0) break;
        word *w = &t->words[s - 1];
        if (w->text_len == n && memcmp(text + w->text_at, text + i, n) == 0) {
            w->freq++;
            return s - 1;
        }
    }
    if (grow_words(t) != 0) return -1;
    t->words[t->nwords] = (word){i, n, 1, 0, (uint32_t)n};
    t->slots[at] = (uint32_t)++t->nwords;
    return (long long)t->nwords - 1;
}

static uint64_t *pair_slot(trainer *t, uint32_t key) {
    size_t mask = t->npairs_slots - 1, at = (size_t)(key * 2654435761u) & mask;
    for (;; at = (at + 1) & mask) {
        if (t->pgen[at] != t->gen) {
            t->pgen[at] = t->gen, t->pkey[at] = key, t->pcount[at] = 0;
            return &t->pcount[at];
        }
        if (t->pkey[at] == key) return &t->pcount[at];
    }
}

/* Most frequent pair over the distinct words (ties: smallest key); 0 count when none. */
static uint64_t best_pair(trainer *t, uint32_t *key) {
    t->gen++;
    uint64_t best = 0;
    for (size_t w = 0; w < t->nwords; w++) {
        const word *x = &t->words[w];
        const uint16_t *s = t->symbols + x->sym_at;
        for (uint32_t j = 0; j + 1 < x->nsym; j++) {
            uint32_t k = (uint32_t)s[j] << 16 | s[j + 1];
            uint64_t *c = pair_slot(t, k);
            *c += x->freq;
            if (*c > best || (*c == best && k < *key)) best = *c, *key = k;
        }
    }
    return best;
}

static void apply_merge(trainer *t, uint32_t key, uint16_t z) {
    const uint16_t a = (uint16_t)(key >> 16), b = (uint16_t)(key & 0xffff);
    for (size_t w = 0; w < t->nwords; w++) {
        word *x = &t->words[w];
        uint16_t *s = t->symbols + x->sym_at;
        uint32_t out = 0;
        for (uint32_t j = 0; j < x->nsym; j++)
            if (j + 1 < x->nsym && s[j] == a && s[j + 1] == b)
                s[out++] = z, j++;
            else
                s[out++] = s[j];
        x->nsym = out;
    }
}

static void trainer_free(trainer *t) {
    free(t->words), free(t->slots), free(t->seq), free(t->symbols);
    free(t->pkey), free(t->pgen), free(t->pcount);
}

static size_t pow2_at_least(size_t n) {
    size_t p = 1024;
    while (p < n)
        p *= 2;
    return p;
}

int hetrun_bpe_train_encode(const unsigned char *text, size_t len, uint32_t vocab,
                            uint16_t (**merges_out)[2], uint32_t *merge_count, uint16_t **tokens,
                            uint64_t *count, char *err, size_t err_len) {
    if (vocab <= 256 || vocab > HETRUN_BPE_MAX_VOCAB || len == 0) {
        snprintf(err, err_len, "bpe: vocabulary %u must be 257..%u over a non-empty text", vocab,
                 HETRUN_BPE_MAX_VOCAB);
        return -1;
    }
    trainer t = {0};
    uint16_t(*merges)[2] = NULL;
    uint16_t *out = NULL;
    int rc = -1;
    t.nslots = 4096;
    t.slots = calloc(t.nslots, sizeof *t.slots);
    t.seq = malloc((len + 1) * sizeof *t.seq);
    merges = malloc((vocab - 256) * sizeof *merges);
    if (!t.slots || !t.seq || !merges) goto oom;
    for (size_t i = 0; i < len;) {
        size_t n = chunk_len(text, len, i);
        long long w = word_of(&t, text, i, n);
        if (w < 0) goto oom;
        t.seq[t.nseq++] = (uint32_t)w;
        i += n;
    }
    size_t total = 0;
    for (size_t w = 0; w < t.nwords; w++)
        t.words[w].sym_at = total, total += t.words[w].text_len;
    t.symbols = malloc(total * sizeof *t.symbols);
    t.npairs_slots = pow2_at_least(2 * total + 1);
    t.pkey = malloc(t.npairs_slots * sizeof *t.pkey);
    t.pgen = calloc(t.npairs_slots, sizeof *t.pgen);
    t.pcount = malloc(t.npairs_slots * sizeof *t.pcount);
    if (!t.symbols || !t.pkey || !t.pgen || !t.pcount) goto oom;
    for (size_t w = 0; w < t.nwords; w++)
        for (size_t j = 0; j < t.words[w].text_len; j++)
            t.symbols[t.words[w].sym_at + j] = text[t.words[w].text_at + j];
    uint32_t m = 0;
    for (; 256 + m < vocab; m++) {
        uint32_t key = UINT32_MAX;
        if (best_pair(&t, &key) < 2) break; /* nothing left that repeats */
        merges[m][0] = (uint16_t)(key >> 16), merges[m][1] = (uint16_t)(key & 0xffff);
        apply_merge(&t, key, (uint16_t)(256 + m));
    }
    uint64_t n = 0;
    for (size_t i = 0; i < t.nseq; i++)
        n += t.words[t.seq[i]].nsym;
    out = malloc((size_t)n * sizeof *out);
    if (!out) goto oom;
    n = 0;
    for (size_t i = 0; i < t.nseq; i++) {
        const word *x = &t.words[t.seq[i]];
        memcpy(out + n, t.symbols + x->sym_at, x->nsym * sizeof *out);
        n += x->nsym;
    }
    *merges_out = merges, *merge_count = m, *tokens = out, *count = n;
    merges = NULL, out = NULL;
    rc = 0;
    goto done;
oom:
    snprintf(err, err_len, "bpe: out of memory training on %zu bytes", len);
done:
    trainer_free(&t);
    free(merges), free(out);
    return rc;
}

size_t hetrun_bpe_token_lengths(const uint16_t (*merges)[2], uint32_t merge_count, uint32_t *lens) {
    size_t longest = 1;
    for (uint32_t t = 0; t < 256; t++)
        lens[t] = 1;
    for (uint32_t i = 0; i < merge_count; i++) {
        if (merges[i][0] >= 256 + i || merges[i][1] >= 256 + i) return 0;
        lens[256 + i] = lens[merges[i][0]] + lens[merges[i][1]];
        if (lens[256 + i] > longest) longest = lens[256 + i];
    }
    return longest;
}

static void emit(const uint16_t (*merges)[2], uint32_t token, unsigned char *out, size_t cap,
                 size_t *at) {
    if (token < 256) {
        if (*at < cap) out[*at] = (unsigned char)token;
        ++*at;
        return;
    }
    emit(merges, merges[token - 256][0], out, cap, at);
    emit(merges, merges[token - 256][1], out, cap, at);
}

size_t hetrun_bpe_decode(const uint16_t (*merges)[2], uint32_t merge_count, uint32_t token,
                         unsigned char *out, size_t cap) {
    if (token >= 256 + merge_count) return 0;
    size_t at = 0;
    emit(merges, token, out, cap, &at);
    return at;
}
