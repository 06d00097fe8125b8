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

/* A symbol pair: how often it occurs over all chunks, and the chunks that may hold it (a
 * list that only grows: a chunk that lost the pair is skipped when the pair is merged). */
typedef struct pair {
    uint32_t key; /* left << 16 | right */
    int used;
    int64_t count;
    uint32_t *words, nwords, cap;
} pair;

typedef struct heap_entry {
    int64_t count;
    uint32_t key;
} heap_entry;

typedef struct trainer {
    word *words;
    size_t nwords, cap_words;
    uint32_t *slots; /* distinct-chunk hash table: word index + 1, 0 empty */
    size_t nslots;
    uint32_t *seq; /* the text as a sequence of word indices */
    size_t nseq;
    uint16_t *symbols;
    pair *pairs; /* open addressing, never deleted, at most half full */
    size_t npairs, npairs_slots;
    /* max-heap of (count, key), largest count first, ties smallest key: every count change
     * pushes the new value; an entry whose count is no longer the pair's is skipped */
    heap_entry *heap;
    size_t nheap, cap_heap;
    int oom;
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

static size_t pair_hash(uint32_t key, size_t mask) {
    return (size_t)(key * 2654435761u) & mask;
}

static int grow_pairs(trainer *t) {
    size_t n = t->npairs_slots ? 2 * t->npairs_slots : 1 << 16, mask = n - 1;
    pair *p = calloc(n, sizeof *p);
    if (!p) return -1;
    for (size_t i = 0; i < t->npairs_slots; i++)
        if (t->pairs[i].used) {
            size_t at = pair_hash(t->pairs[i].key, mask);
            while (p[at].used)
                at = (at + 1) & mask;
            p[at] = t->pairs[i];
        }
    free(t->pairs);
    t->pairs = p, t->npairs_slots = n;
    return 0;
}

/* The pair `key`, added (count 0) when new; NULL without memory. */
static pair *pair_of(trainer *t, uint32_t key) {
    if (2 * (t->npairs + 1) > t->npairs_slots && grow_pairs(t) != 0) return NULL;
    size_t mask = t->npairs_slots - 1, at = pair_hash(key, mask);
    for (; t->pairs[at].used; at = (at + 1) & mask)
        if (t->pairs[at].key == key) return &t->pairs[at];
    t->npairs++;
    t->pairs[at] = (pair){.key = key, .used = 1};
    return &t->pairs[at];
}

static int heap_before(const heap_entry *x, const heap_entry *y) {
    return x->count > y->count || (x->count == y->count && x->key < y->key);
}

static void heap_push(trainer *t, int64_t count, uint32_t key) {
    if (count <= 0) return;
    if (t->nheap == t->cap_heap) {
        size_t cap = t->cap_heap ? 2 * t->cap_heap : 1 << 16;
        heap_entry *h = realloc(t->heap, cap * sizeof *h);
        if (!h) {
            t->oom = 1;
            return;
        }
        t->heap = h, t->cap_heap = cap;
    }
    size_t i = t->nheap++;
    t->heap[i] = (heap_entry){count, key};
    while (i > 0 && heap_before(&t->heap[i], &t->heap[(i - 1) / 2])) {
        heap_entry tmp = t->heap[i];
        t->heap[i] = t->heap[(i - 1) / 2], t->heap[(i - 1) / 2] = tmp;
        i = (i - 1) / 2;
    }
}

static heap_entry heap_pop(trainer *t) {
    heap_entry top = t->heap[0];
    t->heap[0] = t->heap[--t->nheap];
    for (size_t i = 0;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < t->nheap && heap_before(&t->heap[l], &t->heap[m])) m = l;
        if (r < t->nheap && heap_before(&t->heap[r], &t->heap[m])) m = r;
        if (m == i) break;
        heap_entry tmp = t->heap[i];
        t->heap[i] = t->heap[m], t->heap[m] = tmp;
        i = m;
    }
    return top;
}

/* Adds sign * freq of word w to each of its pairs (listing w under new ones when `index`). */
static void count_word(trainer *t, uint32_t w, int64_t sign, int index) {
    const word *x = &t->words[w];
    const uint16_t *s = t->symbols + x->sym_at;
    for (uint32_t j = 0; j + 1 < x->nsym && !t->oom; j++) {
        pair *p = pair_of(t, (uint32_t)s[j] << 16 | s[j + 1]);
        if (!p) {
            t->oom = 1;
            return;
        }
        p->count += sign * (int64_t)x->freq;
        heap_push(t, p->count, p->key);
        if (index && (p->nwords == 0 || p->words[p->nwords - 1] != w)) {
            if (p->nwords == p->cap) {
                uint32_t cap = p->cap ? 2 * p->cap : 4;
                uint32_t *ids = realloc(p->words, cap * sizeof *ids);
                if (!ids) {
                    t->oom = 1;
                    return;
                }
                p->words = ids, p->cap = cap;
            }
            p->words[p->nwords++] = w;
        }
    }
}

/* The most frequent pair (ties: smallest key); count 0 when none is left. */
static heap_entry best_pair(trainer *t) {
    while (t->nheap > 0) {
        heap_entry e = heap_pop(t);
        const pair *p = pair_of(t, e.key);
        if (p && p->count == e.count) return e;
    }
    return (heap_entry){0, 0};
}

/* Merges pair `key` into token z in every chunk that holds it, updating the counts. */
static void apply_merge(trainer *t, uint32_t key, uint16_t z) {
    const uint16_t a = (uint16_t)(key >> 16), b = (uint16_t)(key & 0xffff);
    pair *p = pair_of(t, key);
    uint32_t *list = p->words, n = p->nwords;
    p->words = NULL, p->nwords = p->cap = 0; /* the merged pair never comes back */
    for (uint32_t i = 0; i < n && !t->oom; i++) {
        const uint32_t w = list[i];
        word *x = &t->words[w];
        uint16_t *s = t->symbols + x->sym_at;
        int holds = 0;
        for (uint32_t j = 0; j + 1 < x->nsym && !holds; j++)
            holds = s[j] == a && s[j + 1] == b;
        if (!holds) continue; /* a stale entry: an earlier merge took the pair apart */
        count_word(t, w, -1, 0);
        uint32_t out = 0;
        for (uint32_t j = 0; j < x->nsym; j++)
            if (j + 1 < x->nsym && s[j] == a && s[j + 1] == b)
                s[out++] = z, j++;
            else
                s[out++] = s[j];
        x->nsym = out;
        count_word(t, w, +1, 1);
    }
    free(list);
}

static void trainer_free(trainer *t) {
    for (size_t i = 0; i < t->npairs_slots; i++)
        free(t->pairs[i].words);
    free(t->words), free(t->slots), free(t->seq), free(t->symbols);
    free(t->pairs), free(t->heap);
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
    if (!t.symbols) goto oom;
    for (size_t w = 0; w < t.nwords; w++)
        for (size_t j = 0; j < t.words[w].text_len; j++)
            t.symbols[t.words[w].sym_at + j] = text[t.words[w].text_at + j];
    for (size_t w = 0; w < t.nwords && !t.oom; w++)
        count_word(&t, (uint32_t)w, +1, 1);
    uint32_t m = 0;
    for (; 256 + m < vocab && !t.oom; m++) {
        heap_entry e = best_pair(&t);
        if (e.count < 2) break; /* nothing left that repeats */
        merges[m][0] = (uint16_t)(e.key >> 16), merges[m][1] = (uint16_t)(e.key & 0xffff);
        apply_merge(&t, e.key, (uint16_t)(256 + m));
    }
    if (t.oom) goto oom;
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
