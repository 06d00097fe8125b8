/* The WordPiece tokenizer on tokenizer.json files this test writes (no model needed): the
 * BERT normalizer and pre-tokenizer, greedy longest match with ##, [UNK] for uncoverable and
 * over-long words, added tokens typed in the text, truncation, each normalizer setting, and
 * clear refusals (not WordPiece, invalid UTF-8, no room for a token, bad files). The expected
 * ids were checked against Hugging Face tokenizers 0.19.1 on the same files (HETRUN_KEEP_TEMP=1
 * keeps them). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "text/wordpiece.h"

static int failures;
static char dir[] = "/tmp/hetrun-wp-XXXXXX";

static const char *vocab =
    "\"[PAD]\":0,\"[UNK]\":1,\"[CLS]\":2,\"[SEP]\":3,\"[MASK]\":4,\"hello\":5,\"world\":6,"
    "\"##s\":7,\"un\":8,\"##aff\":9,\"##able\":10,\"!\":11,\"中\":12,\"cafe\":13,\"a\":14,"
    "\",\":15,\"café\":16,\"Hello\":17,\"$\":18,\"##b\":19,\"¿\":20,\"i\":21,\"ǆ\":22";

/* One added_tokens entry as tokenizers writes it (static buffers: three per call site). */
static const char *added(const char *content, int id) {
    static char buf[3][160];
    static int next;
    char *b = buf[next++ % 3];
    snprintf(b, sizeof buf[0],
             "{\"id\":%d,\"content\":\"%s\",\"single_word\":false,\"lstrip\":false,"
             "\"rstrip\":false,\"normalized\":false,\"special\":true}",
             id, content);
    return b;
}

/* Writes a tokenizer.json with the given model type, normalizer and extra top-level keys. */
static const char *write_tok(const char *name, const char *model_type, const char *normalizer,
                             const char *post, int max_chars) {
    static char path[256];
    snprintf(path, sizeof path, "%s/%s.json", dir, name);
    FILE *fp = fopen(path, "w");
    if (!fp) {
        perror(path);
        exit(1);
    }
    fprintf(fp,
            "{\"version\":\"1.0\",\"truncation\":null,\"padding\":null,"
            "\"added_tokens\":[%s,%s,%s],"
            "\"normalizer\":%s,\"pre_tokenizer\":{\"type\":\"BertPreTokenizer\"},"
            "\"post_processor\":%s,"
            "\"model\":{\"type\":\"%s\",\"unk_token\":\"[UNK]\",\"continuing_subword_prefix\":"
            "\"##\",\"max_input_chars_per_word\":%d,\"vocab\":{%s}}}",
            added("[PAD]", 0), added("[MASK]", 4), added("[CLS]", 2), normalizer, post, model_type,
            max_chars, vocab);
    fclose(fp);
    return path;
}

static const char *bert_norm = "{\"type\":\"BertNormalizer\",\"clean_text\":true,"
                               "\"handle_chinese_chars\":true,\"strip_accents\":null,"
                               "\"lowercase\":true}";
static const char *template_post =
    "{\"type\":\"TemplateProcessing\",\"single\":[{\"SpecialToken\":{\"id\":\"[CLS]\","
    "\"type_id\":0}},{\"Sequence\":{\"id\":\"A\",\"type_id\":0}},{\"SpecialToken\":{\"id\":"
    "\"[SEP]\",\"type_id\":0}}],\"pair\":[{\"Sequence\":{\"id\":\"A\",\"type_id\":0}},"
    "{\"Sequence\":{\"id\":\"B\",\"type_id\":1}}],\"special_tokens\":{\"[CLS]\":{\"id\":\"[CLS]\","
    "\"ids\":[2],"
    "\"tokens\":[\"[CLS]\"]},\"[SEP]\":{\"id\":\"[SEP]\",\"ids\":[3],\"tokens\":[\"[SEP]\"]}}}";

static void expect_ids(const hetrun_wordpiece *t, const char *what, const char *text, int max_len,
                       const int32_t *want, int nwant, int want_trunc) {
    int32_t ids[64];
    int32_t n = 0;
    int trunc = 0;
    char err[256] = "";
    int rc =
        hetrun_wordpiece_encode(t, text, strlen(text), max_len, ids, &n, &trunc, err, sizeof err);
    int ok = rc == 0 && n == nwant && trunc == want_trunc &&
             memcmp(ids, want, (size_t)n * sizeof *ids) == 0;
    printf("%s %-28s", ok ? "ok  " : "FAIL", what);
    for (int i = 0; i < n; i++)
        printf(" %d", ids[i]);
    printf("%s%s\n", trunc ? " (truncated)" : "", err);
    if (!ok) {
        printf("     expected");
        for (int i = 0; i < nwant; i++)
            printf(" %d", want[i]);
        printf("%s\n", want_trunc ? " (truncated)" : "");
        failures++;
    }
}

#define IDS(...) (const int32_t[]){__VA_ARGS__}, (int)(sizeof((int32_t[]){__VA_ARGS__}) / 4)

static hetrun_wordpiece *load_ok(const char *path) {
    hetrun_wordpiece *t = NULL;
    char err[512];
    if (hetrun_wordpiece_load(path, &t, err, sizeof err) != 0) {
        printf("FAIL load %s: %s\n", path, err);
        failures++;
    }
    return t;
}

static void expect_load_fails(const char *what, const char *path, const char *want) {
    hetrun_wordpiece *t = NULL;
    char err[512] = "";
    int rc = hetrun_wordpiece_load(path, &t, err, sizeof err);
    int ok = rc != 0 && !t && strstr(err, path) && strstr(err, want);
    printf("%s %-28s %s\n", ok ? "ok  " : "FAIL", what, err);
    if (!ok) failures++;
    hetrun_wordpiece_free(t);
}

int main(void) {
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    hetrun_wordpiece *t = load_ok(write_tok("bert", "WordPiece", bert_norm, template_post, 100));
    if (!t) return 1;
    if (hetrun_wordpiece_vocab_size(t) != 23 || hetrun_wordpiece_pad_id(t) != 0 ||
        hetrun_wordpiece_special_count(t) != 2) {
        printf("FAIL vocab size / pad id / special count\n");
        failures++;
    }
    expect_ids(t, "basic", "Hello, worlds!", 32, IDS(2, 5, 15, 6, 7, 11, 3), 0);
    expect_ids(t, "## pieces", "unaffable", 32, IDS(2, 8, 9, 10, 3), 0);
    expect_ids(t, "uncoverable word is [UNK]", "hellox", 32, IDS(2, 1, 3), 0);
    expect_ids(t, "accents stripped", "CAFÉ Café", 32, IDS(2, 13, 13, 3), 0);
    expect_ids(t, "decomposed accent", "cafe\xcc\x81", 32, IDS(2, 13, 3), 0);
    expect_ids(t, "CJK isolated", "a中a", 32, IDS(2, 14, 12, 14, 3), 0);
    expect_ids(t, "$ is ASCII punctuation", "a$a", 32, IDS(2, 14, 18, 14, 3), 0);
    expect_ids(t, "Unicode punctuation", "¿a", 32, IDS(2, 20, 14, 3), 0);
    expect_ids(t, "whitespace kinds",
               "\ta\xc2\xa0"
               "a\xe3\x80\x80"
               "a\n",
               32, IDS(2, 14, 14, 14, 3), 0);
    expect_ids(t, "controls and ZWSP dropped",
               "a\x07"
               "b\xe2\x80\x8b"
               "b",
               32, IDS(2, 14, 19, 19, 3), 0);
    expect_ids(t, "dotted capital I", "\xc4\xb0", 32, IDS(2, 21, 3), 0);
    expect_ids(t, "title case lowered", "\xc7\x85", 32, IDS(2, 22, 3), 0);
    expect_ids(t, "added tokens in text", "hello[MASK]world [CLS]", 32, IDS(2, 5, 4, 6, 2, 3), 0);
    expect_ids(t, "added token is raw text", "[mask]", 32, IDS(2, 1, 1, 1, 3), 0);
    expect_ids(t, "empty", "", 32, IDS(2, 3), 0);
    expect_ids(t, "only spaces", "  \t ", 32, IDS(2, 3), 0);
    expect_ids(t, "truncated", "hello world hello world", 4, IDS(2, 5, 6, 3), 1);
    expect_ids(t, "exactly fits", "hello world", 4, IDS(2, 5, 6, 3), 0);
    expect_ids(t, "truncated inside a word", "hello unaffable", 5, IDS(2, 5, 8, 9, 3), 1);
    hetrun_wordpiece_free(t);

    t = load_ok(write_tok("short", "WordPiece", bert_norm, template_post, 5));
    if (t) expect_ids(t, "over max_input_chars", "hello helloo", 32, IDS(2, 5, 1, 3), 0);
    hetrun_wordpiece_free(t);

    t = load_ok(write_tok(
        "cased", "WordPiece",
        "{\"type\":\"BertNormalizer\",\"clean_text\":true,\"handle_chinese_chars\":"
        "true,\"lowercase\":false,\"strip_accents\":false}",
        "{\"type\":\"BertProcessing\",\"sep\":[\"[SEP]\",3],\"cls\":[\"[CLS]\",2]}", 100));
    if (t) {
        expect_ids(t, "cased: no lower case", "Hello hello", 32, IDS(2, 17, 5, 3), 0);
        expect_ids(t, "cased: accents kept", "café", 32, IDS(2, 16, 3), 0);
    }
    hetrun_wordpiece_free(t);

    t = load_ok(write_tok("nonorm", "WordPiece", "null", "null", 100));
    if (t) expect_ids(t, "no normalizer, no specials", "Hello hello", 32, IDS(17, 5), 0);
    hetrun_wordpiece_free(t);

    t = load_ok(write_tok("bert2", "WordPiece", bert_norm, template_post, 100));
    if (t) {
        int32_t ids[8], n;
        int trunc;
        char err[256] = "";
        int rc = hetrun_wordpiece_encode(t,
                                         "ab\xff"
                                         "cd",
                                         5, 8, ids, &n, &trunc, err, sizeof err);
        int ok = rc != 0 && strstr(err, "invalid UTF-8 at byte 2");
        printf("%s %-28s %s\n", ok ? "ok  " : "FAIL", "invalid UTF-8", err);
        failures += !ok;
        rc = hetrun_wordpiece_encode(t, "a\xc0\x80", 3, 8, ids, &n, &trunc, err, sizeof err);
        ok = rc != 0 && strstr(err, "byte 1");
        printf("%s %-28s %s\n", ok ? "ok  " : "FAIL", "overlong NUL", err);
        failures += !ok;
        rc = hetrun_wordpiece_encode(t, "a", 1, 2, ids, &n, &trunc, err, sizeof err);
        ok = rc != 0 && strstr(err, "no room");
        printf("%s %-28s %s\n", ok ? "ok  " : "FAIL", "max length 2", err);
        failures += !ok;
    }
    hetrun_wordpiece_free(t);

    expect_load_fails("BPE refused", write_tok("bpe", "BPE", bert_norm, template_post, 100),
                      "not \"WordPiece\"");
    expect_load_fails("other normalizer",
                      write_tok("nfc", "WordPiece", "{\"type\":\"NFC\"}", template_post, 100),
                      "BertNormalizer");
    expect_load_fails(
        "unknown post",
        write_tok("post", "WordPiece", bert_norm, "{\"type\":\"RobertaProcessing\"}", 100),
        "RobertaProcessing");
    char path[300];
    snprintf(path, sizeof path, "%s/missing.json", dir);
    expect_load_fails("missing file", path, "cannot open");
    snprintf(path, sizeof path, "%s/broken.json", dir);
    FILE *fp = fopen(path, "w");
    fputs("{\"model\": {\"type\": \"WordPiece\", ", fp);
    fclose(fp);
    expect_load_fails("broken JSON", path, "not valid JSON");

    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (getenv("HETRUN_KEEP_TEMP") || system(cmd) != 0) printf("note: could not remove %s\n", dir);
    printf("%s: %d failure(s)\n", failures ? "FAIL" : "ok", failures);
    return failures ? 1 : 0;
}
