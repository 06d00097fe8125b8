/* WordPiece tokenizer from tokenizer.json (pipeline in wordpiece.h). */
#include "text/wordpiece.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <utf8proc.h>

/* tokenizer.json of BERT-base is 0.5 MB, of multilingual models a few MB. */
#define MAX_FILE_BYTES (64u << 20)
#define MAX_SPECIALS 8

typedef struct added_token {
    int32_t *cps;
    size_t len;
    int32_t id;
    int normalized; /* matched in normalized text, else in the raw text */
} added_token;

struct hetrun_wordpiece {
    char *path;
    char *arena; /* vocabulary strings */
    /* open-addressing hash: token bytes -> id */
    const char **slot_key;
    uint32_t *slot_len;
    int32_t *slot_id;
    uint64_t slot_mask;
    int32_t vocab_size, unk_id, pad_id, truncation, max_chars;
    char prefix[32];
    size_t prefix_len;
    int normalize, clean_text, chinese, strip_accents, lowercase, pretokenize;
    int32_t pre_ids[MAX_SPECIALS], post_ids[MAX_SPECIALS];
    int npre, npost;
    added_token *added;
    size_t nadded;
};

static uint64_t hash_bytes(const char *s, size_t n) {
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}

/* The id of `s`, or -1. */
static int32_t vocab_find(const hetrun_wordpiece *t, const char *s, size_t n) {
    for (uint64_t i = hash_bytes(s, n) & t->slot_mask;; i = (i + 1) & t->slot_mask) {
        if (t->slot_id[i] < 0) return -1;
        if (t->slot_len[i] == n && memcmp(t->slot_key[i], s, n) == 0) return t->slot_id[i];
    }
}

/* ---- loading ---- */

static char *read_file(const char *path, size_t *len, char *err, size_t err_len) {
    FILE *fp = fopen(path, "rb");
    if (!fp) return snprintf(err, err_len, "%s: cannot open: %s", path, strerror(errno)), NULL;
    struct stat st;
    if (fstat(fileno(fp), &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > MAX_FILE_BYTES) {
        fclose(fp);
        snprintf(err, err_len, "%s: not a regular file of at most %u MiB", path,
                 MAX_FILE_BYTES >> 20);
        return NULL;
    }
    char *buf = malloc((size_t)st.st_size + 1);
    size_t got = buf ? fread(buf, 1, (size_t)st.st_size, fp) : 0;
    fclose(fp);
    if (!buf || got != (size_t)st.st_size) {
        free(buf);
        return snprintf(err, err_len, "%s: read failed", path), NULL;
    }
    buf[got] = 0;
    *len = got;
    return buf;
}

static int json_bool(const cJSON *o, const char *key, int dflt) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsBool(v) ? cJSON_IsTrue(v) : dflt;
}

/* A JSON integer in [0, INT32_MAX], else -1. */
static int64_t json_id(const cJSON *v) {
    if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble > 2147483647.0 ||
        v->valuedouble != (double)(int64_t)v->valuedouble)
        return -1;
    return (int64_t)v->valuedouble;
}

/* Decodes valid UTF-8 into a fresh code point array; NULL on invalid input. */
static int32_t *decode(const char *s, size_t n, size_t *count, size_t *bad_at) {
    int32_t *cps = malloc((n ? n : 1) * sizeof *cps);
    size_t k = 0;
    for (size_t i = 0; cps && i < n;) {
        utf8proc_int32_t c;
        utf8proc_ssize_t used =
            utf8proc_iterate((const utf8proc_uint8_t *)s + i, (utf8proc_ssize_t)(n - i), &c);
        if (used <= 0) {
            free(cps);
            *bad_at = i;
            return NULL;
        }
        cps[k++] = c;
        i += (size_t)used;
    }
    *count = k;
    return cps;
}

static int load_vocab(hetrun_wordpiece *t, const cJSON *vocab, char *err, size_t err_len) {
    size_t n = 0, bytes = 0;
    for (const cJSON *e = vocab->child; e; e = e->next, n++)
        bytes += strlen(e->string) + 1;
    if (n == 0 || n > (1u << 24))
        return snprintf(err, err_len, "%s: model.vocab has %zu tokens", t->path, n), -1;
    uint64_t cap = 1;
    while (cap < 2 * n)
        cap <<= 1;
    t->slot_mask = cap - 1;
    t->slot_key = calloc(cap, sizeof *t->slot_key);
    t->slot_len = calloc(cap, sizeof *t->slot_len);
    t->slot_id = malloc(cap * sizeof *t->slot_id);
    t->arena = malloc(bytes);
    if (!t->slot_key || !t->slot_len || !t->slot_id || !t->arena)
        return snprintf(err, err_len, "%s: out of memory", t->path), -1;
    memset(t->slot_id, 0xff, cap * sizeof *t->slot_id);
    char *a = t->arena;
    for (const cJSON *e = vocab->child; e; e = e->next) {
        int64_t id = json_id(e);
        if (id < 0)
            return snprintf(err, err_len, "%s: model.vocab[\"%.64s\"] is not an id in [0, 2^31)",
                            t->path, e->string),
                   -1;
        size_t l = strlen(e->string);
        if (vocab_find(t, e->string, l) >= 0)
            return snprintf(err, err_len, "%s: model.vocab has \"%.64s\" twice", t->path,
                            e->string),
                   -1;
        memcpy(a, e->string, l + 1);
        uint64_t i = hash_bytes(a, l) & t->slot_mask;
        while (t->slot_id[i] >= 0)
            i = (i + 1) & t->slot_mask;
        t->slot_key[i] = a;
        t->slot_len[i] = (uint32_t)l;
        t->slot_id[i] = (int32_t)id;
        a += l + 1;
        if (id + 1 > t->vocab_size) t->vocab_size = (int32_t)id + 1;
    }
    return 0;
}

static int load_model(hetrun_wordpiece *t, const cJSON *model, char *err, size_t err_len) {
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(model, "type");
    if (!cJSON_IsObject(model) || !cJSON_IsString(type) || strcmp(type->valuestring, "WordPiece")) {
        snprintf(err, err_len,
                 "%s: model.type is %s%.32s%s, not \"WordPiece\": hetrun's tokenizer reads "
                 "WordPiece (BERT) tokenizers only",
                 t->path, cJSON_IsString(type) ? "\"" : "",
                 cJSON_IsString(type) ? type->valuestring : "missing",
                 cJSON_IsString(type) ? "\"" : "");
        return -1;
    }
    const cJSON *vocab = cJSON_GetObjectItemCaseSensitive(model, "vocab");
    if (!cJSON_IsObject(vocab))
        return snprintf(err, err_len, "%s: model.vocab is not an object", t->path), -1;
    if (load_vocab(t, vocab, err, err_len) != 0) return -1;
    const cJSON *unk = cJSON_GetObjectItemCaseSensitive(model, "unk_token");
    if (!cJSON_IsString(unk) ||
        (t->unk_id = vocab_find(t, unk->valuestring, strlen(unk->valuestring))) < 0)
        return snprintf(err, err_len, "%s: model.unk_token is missing or not in model.vocab",
                        t->path),
               -1;
    const cJSON *pfx = cJSON_GetObjectItemCaseSensitive(model, "continuing_subword_prefix");
    const char *p = cJSON_IsString(pfx) ? pfx->valuestring : "##";
    t->prefix_len = strlen(p);
    if (t->prefix_len >= sizeof t->prefix)
        return snprintf(err, err_len, "%s: model.continuing_subword_prefix is too long", t->path),
               -1;
    memcpy(t->prefix, p, t->prefix_len + 1);
    const cJSON *mx = cJSON_GetObjectItemCaseSensitive(model, "max_input_chars_per_word");
    t->max_chars = mx ? (int32_t)json_id(mx) : 100;
    if (t->max_chars <= 0)
        return snprintf(err, err_len,
                        "%s: model.max_input_chars_per_word is not a positive integer", t->path),
               -1;
    return 0;
}

static int load_pipeline(hetrun_wordpiece *t, const cJSON *root, char *err, size_t err_len) {
    const cJSON *norm = cJSON_GetObjectItemCaseSensitive(root, "normalizer");
    if (norm && !cJSON_IsNull(norm)) {
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(norm, "type");
        if (!cJSON_IsString(type) || strcmp(type->valuestring, "BertNormalizer"))
            return snprintf(err, err_len,
                            "%s: normalizer.type is not \"BertNormalizer\" (the only normalizer "
                            "hetrun implements)",
                            t->path),
                   -1;
        t->normalize = 1;
        t->clean_text = json_bool(norm, "clean_text", 1);
        t->chinese = json_bool(norm, "handle_chinese_chars", 1);
        t->lowercase = json_bool(norm, "lowercase", 1);
        /* strip_accents: null follows lowercase, as in tokenizers */
        t->strip_accents = json_bool(norm, "strip_accents", t->lowercase);
    }
    const cJSON *pre = cJSON_GetObjectItemCaseSensitive(root, "pre_tokenizer");
    if (pre && !cJSON_IsNull(pre)) {
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(pre, "type");
        if (!cJSON_IsString(type) || strcmp(type->valuestring, "BertPreTokenizer"))
            return snprintf(err, err_len,
                            "%s: pre_tokenizer.type is not \"BertPreTokenizer\" (the only "
                            "pre-tokenizer hetrun implements)",
                            t->path),
                   -1;
        t->pretokenize = 1;
    }
    return 0;
}

/* Appends the ids of special token `name` (TemplateProcessing's special_tokens map). */
static int template_special(hetrun_wordpiece *t, const cJSON *specials, const char *name,
                            int32_t *ids, int *n, char *err, size_t err_len) {
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(specials, name);
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(s, "ids");
    if (!cJSON_IsArray(arr))
        return snprintf(err, err_len, "%s: post_processor.special_tokens has no ids for \"%.32s\"",
                        t->path, name),
               -1;
    for (const cJSON *e = arr->child; e; e = e->next) {
        int64_t id = json_id(e);
        if (id < 0 || *n >= MAX_SPECIALS)
            return snprintf(
                       err, err_len,
                       "%s: post_processor.special_tokens[\"%.32s\"].ids: bad id or more than %d",
                       t->path, name, MAX_SPECIALS),
                   -1;
        ids[(*n)++] = (int32_t)id;
    }
    return 0;
}

static int load_post(hetrun_wordpiece *t, const cJSON *root, char *err, size_t err_len) {
    const cJSON *post = cJSON_GetObjectItemCaseSensitive(root, "post_processor");
    if (!post || cJSON_IsNull(post)) return 0;
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(post, "type");
    const char *ty = cJSON_IsString(type) ? type->valuestring : "";
    if (strcmp(ty, "BertProcessing") == 0) {
        const cJSON *cls = cJSON_GetObjectItemCaseSensitive(post, "cls");
        const cJSON *sep = cJSON_GetObjectItemCaseSensitive(post, "sep");
        int64_t c = json_id(cJSON_GetArrayItem(cls, 1)), s = json_id(cJSON_GetArrayItem(sep, 1));
        if (c < 0 || s < 0)
            return snprintf(err, err_len, "%s: post_processor.cls/sep are not [token, id]",
                            t->path),
                   -1;
        t->pre_ids[t->npre++] = (int32_t)c;
        t->post_ids[t->npost++] = (int32_t)s;
        return 0;
    }
    if (strcmp(ty, "TemplateProcessing") != 0)
        return snprintf(
                   err, err_len,
                   "%s: post_processor.type \"%.32s\" is not BertProcessing or TemplateProcessing",
                   t->path, ty),
               -1;
    const cJSON *single = cJSON_GetObjectItemCaseSensitive(post, "single");
    const cJSON *specials = cJSON_GetObjectItemCaseSensitive(post, "special_tokens");
    int seen_a = 0;
    for (const cJSON *e = cJSON_IsArray(single) ? single->child : NULL; e; e = e->next) {
        const cJSON *sp = cJSON_GetObjectItemCaseSensitive(e, "SpecialToken");
        const cJSON *seq = cJSON_GetObjectItemCaseSensitive(e, "Sequence");
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(sp ? sp : seq, "id");
        if (!cJSON_IsString(id))
            return snprintf(err, err_len,
                            "%s: post_processor.single has an item that is neither SpecialToken "
                            "nor Sequence",
                            t->path),
                   -1;
        if (seq) {
            if (seen_a || strcmp(id->valuestring, "A") != 0)
                return snprintf(err, err_len, "%s: post_processor.single must hold sequence A once",
                                t->path),
                       -1;
            seen_a = 1;
        } else if (template_special(t, specials, id->valuestring, seen_a ? t->post_ids : t->pre_ids,
                                    seen_a ? &t->npost : &t->npre, err, err_len) != 0) {
            return -1;
        }
    }
    if (!seen_a)
        return snprintf(err, err_len, "%s: post_processor.single has no Sequence A", t->path), -1;
    return 0;
}

static int load_added(hetrun_wordpiece *t, const cJSON *root, char *err, size_t err_len) {
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(root, "added_tokens");
    if (!cJSON_IsArray(arr)) return 0;
    t->added = calloc((size_t)cJSON_GetArraySize(arr) + 1, sizeof *t->added);
    if (!t->added) return snprintf(err, err_len, "%s: out of memory", t->path), -1;
    int i = 0;
    for (const cJSON *e = arr->child; e; e = e->next, i++) {
        const cJSON *content = cJSON_GetObjectItemCaseSensitive(e, "content");
        int64_t id = json_id(cJSON_GetObjectItemCaseSensitive(e, "id"));
        if (!cJSON_IsString(content) || !content->valuestring[0] || id < 0)
            return snprintf(err, err_len, "%s: added_tokens[%d] lacks a content or an id", t->path,
                            i),
                   -1;
        /* These change where a token matches; BERT tokenizers never set them. */
        if (json_bool(e, "single_word", 0) || json_bool(e, "lstrip", 0) ||
            json_bool(e, "rstrip", 0))
            return snprintf(err, err_len,
                            "%s: added_tokens[%d] (\"%.32s\") sets single_word, lstrip or rstrip, "
                            "which hetrun's tokenizer does not implement",
                            t->path, i, content->valuestring),
                   -1;
        added_token *a = &t->added[t->nadded];
        size_t bad;
        a->cps = decode(content->valuestring, strlen(content->valuestring), &a->len, &bad);
        if (!a->cps)
            return snprintf(err, err_len, "%s: added_tokens[%d] is not UTF-8", t->path, i), -1;
        a->id = (int32_t)id;
        a->normalized = json_bool(e, "normalized", 1);
        t->nadded++;
        if (id + 1 > t->vocab_size) t->vocab_size = (int32_t)id + 1;
    }
    return 0;
}

int hetrun_wordpiece_load(const char *path, hetrun_wordpiece **out, char *err, size_t err_len) {
    *out = NULL;
    hetrun_wordpiece *t = calloc(1, sizeof *t);
    if (!t || !(t->path = strdup(path))) {
        free(t);
        return snprintf(err, err_len, "%s: out of memory", path), -1;
    }
    size_t len = 0;
    char *text = read_file(path, &len, err, err_len);
    cJSON *root = text ? cJSON_ParseWithLength(text, len) : NULL;
    int rc = -1;
    if (text && !root) {
        const char *at = cJSON_GetErrorPtr();
        snprintf(err, err_len, "%s: not valid JSON near byte %ld", path,
                 at ? (long)(at - text) : 0L);
    } else if (root && !cJSON_IsObject(root)) {
        snprintf(err, err_len, "%s: not a JSON object", path);
    } else if (root &&
               load_model(t, cJSON_GetObjectItemCaseSensitive(root, "model"), err, err_len) == 0 &&
               load_pipeline(t, root, err, err_len) == 0 && load_post(t, root, err, err_len) == 0 &&
               load_added(t, root, err, err_len) == 0) {
        const cJSON *pad = cJSON_GetObjectItemCaseSensitive(root, "padding");
        const cJSON *trunc = cJSON_GetObjectItemCaseSensitive(root, "truncation");
        int64_t pid = json_id(cJSON_GetObjectItemCaseSensitive(pad, "pad_id"));
        t->pad_id = pid >= 0 ? (int32_t)pid : vocab_find(t, "[PAD]", 5);
        if (t->pad_id < 0) t->pad_id = 0;
        int64_t tl = json_id(cJSON_GetObjectItemCaseSensitive(trunc, "max_length"));
        t->truncation = tl > 0 ? (int32_t)tl : 0;
        rc = 0;
    }
    cJSON_Delete(root);
    free(text);
    if (rc != 0) {
        hetrun_wordpiece_free(t);
        return -1;
    }
    *out = t;
    return 0;
}

void hetrun_wordpiece_free(hetrun_wordpiece *t) {
    if (!t) return;
    for (size_t i = 0; i < t->nadded; i++)
        free(t->added[i].cps);
    free(t->added);
    free(t->slot_key);
    free(t->slot_len);
    free(t->slot_id);
    free(t->arena);
    free(t->path);
    free(t);
}

int32_t hetrun_wordpiece_vocab_size(const hetrun_wordpiece *t) {
    return t->vocab_size;
}
int32_t hetrun_wordpiece_pad_id(const hetrun_wordpiece *t) {
    return t->pad_id;
}
int32_t hetrun_wordpiece_truncation(const hetrun_wordpiece *t) {
    return t->truncation;
}
int32_t hetrun_wordpiece_special_count(const hetrun_wordpiece *t) {
    return t->npre + t->npost;
}

/* ---- encoding ---- */

typedef struct cpbuf {
    int32_t *v;
    size_t n, cap;
} cpbuf;

static int push(cpbuf *b, int32_t c) {
    if (b->n == b->cap) {
        size_t cap = b->cap ? 2 * b->cap : 256;
        int32_t *v = realloc(b->v, cap * sizeof *v);
        if (!v) return -1;
        b->v = v;
        b->cap = cap;
    }
    b->v[b->n++] = c;
    return 0;
}

typedef struct enc {
    const hetrun_wordpiece *t;
    cpbuf ids;    /* body ids (without the template's special tokens) */
    size_t limit; /* body ids kept; one more means truncated, and work stops */
    cpbuf norm, tmp, word_ids;
    char *word; /* prefix + the word in UTF-8 */
    size_t word_cap;
    size_t *bound; /* bound[i]: byte offset of the word's char i */
    int oom;
} enc;

static int full(const enc *e) {
    return e->oom || e->ids.n > e->limit;
}

static void emit(enc *e, int32_t id) {
    if (push(&e->ids, id) != 0) e->oom = 1;
}

/* Whitespace as Rust's char::is_whitespace (Unicode White_Space). */
static int is_ws(int32_t c) {
    if ((c >= 9 && c <= 13) || c == 0x85) return 1;
    utf8proc_category_t k = utf8proc_category(c);
    return k == UTF8PROC_CATEGORY_ZS || k == UTF8PROC_CATEGORY_ZL || k == UTF8PROC_CATEGORY_ZP;
}

/* BertNormalizer's control test: categories Cc, Cf, Co, Cs, but tab, LF, CR count as space. */
static int is_control(int32_t c) {
    if (c == '\t' || c == '\n' || c == '\r') return 0;
    utf8proc_category_t k = utf8proc_category(c);
    return k == UTF8PROC_CATEGORY_CC || k == UTF8PROC_CATEGORY_CF || k == UTF8PROC_CATEGORY_CO ||
           k == UTF8PROC_CATEGORY_CS;
}

/* ASCII punctuation (which includes $+<=>^`|~) or a Unicode P* category. */
static int is_punct(int32_t c) {
    if ((c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) ||
        (c >= 123 && c <= 126))
        return 1;
    utf8proc_category_t k = utf8proc_category(c);
    return k >= UTF8PROC_CATEGORY_PC && k <= UTF8PROC_CATEGORY_PO;
}

/* The CJK blocks BERT isolates (tokenizers' list, which starts Ext. E at U+2B920). */
static int is_cjk(int32_t c) {
    return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) ||
           (c >= 0x20000 && c <= 0x2A6DF) || (c >= 0x2A700 && c <= 0x2B73F) ||
           (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B920 && c <= 0x2CEAF) ||
           (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

static int reserve(cpbuf *b, size_t n) {
    if (n <= b->cap) return 0;
    int32_t *v = realloc(b->v, n * sizeof *v);
    if (!v) return -1;
    b->v = v;
    b->cap = n;
    return 0;
}

/* Canonical decomposition (NFD) of src into dst, through utf8proc. */
static int nfd(const cpbuf *src, cpbuf *dst) {
    uint8_t *u = malloc(src->n * 4 + 1);
    if (!u) return -1;
    size_t len = 0;
    for (size_t i = 0; i < src->n; i++)
        len += (size_t)utf8proc_encode_char(src->v[i], u + len);
    utf8proc_ssize_t need = (utf8proc_ssize_t)src->n + 16;
    do {
        if (reserve(dst, (size_t)need) != 0) break;
        need = utf8proc_decompose(u, (utf8proc_ssize_t)len, dst->v, (utf8proc_ssize_t)dst->cap,
                                  UTF8PROC_DECOMPOSE);
    } while (need > (utf8proc_ssize_t)dst->cap);
    free(u);
    if (need < 0 || (size_t)need > dst->cap) return -1;
    dst->n = (size_t)need;
    return 0;
}

/* BertNormalizer: clean, isolate CJK, strip accents, lower-case (in that order). */
static int normalize(enc *e, const int32_t *c, size_t n) {
    const hetrun_wordpiece *t = e->t;
    cpbuf *a = &e->norm, *b = &e->tmp;
    a->n = 0;
    for (size_t i = 0; i < n; i++) {
        int32_t ch = c[i];
        if (t->normalize && t->clean_text) {
            if (ch == 0 || ch == 0xFFFD || is_control(ch)) continue;
            if (is_ws(ch)) ch = ' ';
        }
        if (t->normalize && t->chinese && is_cjk(ch)) {
            if (push(a, ' ') || push(a, ch) || push(a, ' ')) return -1;
        } else if (push(a, ch) != 0) {
            return -1;
        }
    }
    if (!t->normalize) return 0;
    if (t->strip_accents) {
        if (nfd(a, b) != 0) return -1;
        a->n = 0;
        for (size_t i = 0; i < b->n; i++)
            if (utf8proc_category(b->v[i]) != UTF8PROC_CATEGORY_MN && push(a, b->v[i]) != 0)
                return -1;
    }
    if (t->lowercase) {
        b->n = 0;
        for (size_t i = 0; i < a->n; i++) {
            /* U+0130 is the one character whose full lower case is two (i + dot above) */
            if (a->v[i] == 0x130) {
                if (push(b, 'i') || push(b, 0x307)) return -1;
            } else if (push(b, utf8proc_tolower(a->v[i])) != 0) {
                return -1;
            }
        }
        cpbuf s = *a;
        *a = *b;
        *b = s;
    }
    return 0;
}

/* Greedy longest-match WordPiece on one word. */
static void wordpiece(enc *e, const int32_t *c, size_t n) {
    const hetrun_wordpiece *t = e->t;
    if (n == 0 || full(e)) return;
    if (n > (size_t)t->max_chars) {
        emit(e, t->unk_id);
        return;
    }
    size_t need = t->prefix_len + 4 * n + 1;
    if (need > e->word_cap) {
        char *w = realloc(e->word, need);
        size_t *b = realloc(e->bound, (n + 1) * sizeof *b);
        if (w) e->word = w;
        if (b) e->bound = b;
        if (!w || !b) {
            e->oom = 1;
            return;
        }
        e->word_cap = need;
    }
    size_t *bound = e->bound;
    char *w = e->word + t->prefix_len;
    memcpy(e->word, t->prefix, t->prefix_len);
    bound[0] = 0;
    for (size_t i = 0; i < n; i++)
        bound[i + 1] = bound[i] + (size_t)utf8proc_encode_char(c[i], (uint8_t *)w + bound[i]);
    e->word_ids.n = 0;
    for (size_t start = 0; start < n;) {
        int32_t id = -1;
        size_t end = n;
        for (; end > start; end--) {
            /* a continuation piece is looked up with its prefix, in place before it */
            char *s = start ? w + bound[start] - t->prefix_len : w;
            if (start) memcpy(s, t->prefix, t->prefix_len);
            size_t l = bound[end] - bound[start] + (start ? t->prefix_len : 0);
            if ((id = vocab_find(t, s, l)) >= 0) break;
        }
        if (id < 0) {
            emit(e, t->unk_id);
            return;
        }
        if (push(&e->word_ids, id) != 0) {
            e->oom = 1;
            return;
        }
        start = end;
    }
    for (size_t i = 0; i < e->word_ids.n; i++)
        emit(e, e->word_ids.v[i]);
}

/* BertPreTokenizer: split on whitespace (dropped) and punctuation (kept alone). */
static void pretokenize(enc *e, const int32_t *c, size_t n) {
    if (!e->t->pretokenize) {
        wordpiece(e, c, n);
        return;
    }
    size_t start = 0;
    for (size_t i = 0; i < n && !full(e); i++) {
        if (is_ws(c[i])) {
            wordpiece(e, c + start, i - start);
            start = i + 1;
        } else if (is_punct(c[i])) {
            wordpiece(e, c + start, i - start);
            wordpiece(e, c + i, 1);
            start = i + 1;
        }
    }
    wordpiece(e, c + start, n - start);
}

typedef void (*piece_fn)(enc *e, const int32_t *c, size_t n);

/* Cuts added tokens (those with the given `normalized` flag) out of c, leftmost first and
 * longest at a position, as tokenizers' AddedVocabulary; the pieces between go to `piece`. */
static void split_added(enc *e, const int32_t *c, size_t n, int normalized, piece_fn piece) {
    const hetrun_wordpiece *t = e->t;
    size_t start = 0;
    for (size_t i = 0; i < n && !full(e);) {
        const added_token *best = NULL;
        for (size_t k = 0; k < t->nadded; k++) {
            const added_token *a = &t->added[k];
            if (a->normalized == normalized && a->len <= n - i && (!best || a->len > best->len) &&
                memcmp(a->cps, c + i, a->len * sizeof *c) == 0)
                best = a;
        }
        if (!best) {
            i++;
            continue;
        }
        piece(e, c + start, i - start);
        emit(e, best->id);
        i += best->len;
        start = i;
    }
    if (!full(e)) piece(e, c + start, n - start);
}

static void split_normalized(enc *e, const int32_t *c, size_t n) {
    split_added(e, c, n, 1, pretokenize);
}

/* A raw piece between non-normalized added tokens: normalize, then the normalized ones. */
static void raw_piece(enc *e, const int32_t *c, size_t n) {
    if (n == 0) return;
    if (normalize(e, c, n) != 0) {
        e->oom = 1;
        return;
    }
    split_normalized(e, e->norm.v, e->norm.n);
}

int hetrun_wordpiece_encode(const hetrun_wordpiece *t, const char *text, size_t len,
                            int32_t max_len, int32_t *ids, int32_t *count, int *truncated,
                            char *err, size_t err_len) {
    *count = 0;
    *truncated = 0;
    if (max_len <= t->npre + t->npost)
        return snprintf(err, err_len, "max length %d leaves no room besides %d special tokens",
                        max_len, t->npre + t->npost),
               -1;
    size_t n = 0, bad = 0;
    int32_t *cps = decode(text, len, &n, &bad);
    if (!cps) return snprintf(err, err_len, "invalid UTF-8 at byte %zu", bad), -1;
    enc e = {.t = t, .limit = (size_t)(max_len - t->npre - t->npost)};
    split_added(&e, cps, n, 0, raw_piece);
    int rc = e.oom ? -1 : 0;
    if (e.oom) {
        snprintf(err, err_len, "out of memory tokenizing %zu bytes", len);
    } else {
        int32_t k = 0;
        for (int i = 0; i < t->npre; i++)
            ids[k++] = t->pre_ids[i];
        size_t body = e.ids.n > e.limit ? e.limit : e.ids.n;
        if (body) memcpy(ids + k, e.ids.v, body * sizeof *ids); /* e.ids.v is NULL when empty */
        k += (int32_t)body;
        for (int i = 0; i < t->npost; i++)
            ids[k++] = t->post_ids[i];
        *count = k;
        *truncated = e.ids.n > e.limit;
    }
    free(cps);
    free(e.ids.v);
    free(e.norm.v);
    free(e.tmp.v);
    free(e.word_ids.v);
    free(e.word);
    free(e.bound);
    return rc;
}
