/* Byte-level BPE (text/bpe.h) and BPE token files (workloads/tokens.h): the tokens decode to
 * exactly the input; merges stay inside pre-tokenised chunks and refer only to earlier
 * tokens; training is deterministic; frequent words become one token; a token file's merge
 * table is covered by its CRC, and a table that refers forward is refused. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "text/bpe.h"
#include "workloads/tokens.h"

static int failures;
static char dir[] = "/tmp/hetrun-bpe-XXXXXX";

static void check(int cond, const char *what, const char *err) {
    printf("%s %s%s%s\n", cond ? "ok  " : "FAIL", what, err && *err ? ": " : "", err ? err : "");
    if (!cond) failures++;
}

/* English, digits, punctuation runs, whitespace runs and UTF-8 (Chinese, accents, emoji). */
static size_t corpus(unsigned char *out, size_t cap) {
    static const char *const parts[] = {
        "the launcher runs the job on every rank; ",
        "the report counts 1234 FLOPs and 56.7 seconds!!! ",
        "\n\n    indented   text\twith tabs\n",
        "\xe5\xba\x8a\xe5\x89\x8d\xe6\x98\x8e\xe6\x9c\x88\xe5\x85\x89\xef\xbc\x8c"
        "\xe7\x96\x91\xe6\x98\xaf\xe5\x9c\xb0\xe4\xb8\x8a\xe9\x9c\x9c\xe3\x80\x82 ",
        "caf\xc3\xa9 na\xc3\xafve \xf0\x9f\x98\x80 -- ==== ",
    };
    size_t n = 0;
    for (int r = 0; r < 40; r++)
        for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
            size_t len = strlen(parts[i]);
            if (n + len > cap) return n;
            memcpy(out + n, parts[i], len);
            n += len;
        }
    return n;
}

static int is_space(unsigned char c) {
    return c == ' ' || (c >= '\t' && c <= '\r');
}

int main(void) {
    if (!mkdtemp(dir)) return 1;
    static unsigned char text[1 << 16];
    const size_t len = corpus(text, sizeof text);
    char err[512] = "";
    uint16_t(*merges)[2] = NULL, *ids = NULL;
    uint32_t nm = 0;
    uint64_t count = 0;
    int rc = hetrun_bpe_train_encode(text, len, 600, &merges, &nm, &ids, &count, err, sizeof err);
    check(rc == 0 && nm > 0 && nm <= 600 - 256, "trains up to the vocabulary", err);
    if (rc != 0) return 1;
    printf("     %zu bytes -> %llu tokens with %u merges\n", len, (unsigned long long)count, nm);
    check(count < len / 2, "frequent text compresses at least 2x", NULL);

    static uint32_t lens[HETRUN_BPE_MAX_VOCAB];
    check(hetrun_bpe_token_lengths(merges, nm, lens) > 1, "every merge refers to earlier tokens",
          NULL);
    static unsigned char back[1 << 16];
    size_t at = 0;
    for (uint64_t i = 0; i < count; i++)
        at += hetrun_bpe_decode(merges, nm, ids[i], back + at, sizeof back - at);
    check(at == len && memcmp(back, text, len) == 0, "tokens decode to exactly the input", NULL);

    int inside = 1, word = 0;
    unsigned char tok[256];
    for (uint32_t t = 256; t < 256 + nm; t++) {
        size_t n = hetrun_bpe_decode(merges, nm, t, tok, sizeof tok);
        int all_space = 1;
        for (size_t i = 0; i < n; i++)
            all_space &= is_space(tok[i]);
        for (size_t i = 1; i < n && !all_space; i++)
            if (is_space(tok[i])) inside = 0; /* a space only ever leads a word */
        if (n == 5 && memcmp(tok, " rank", 5) == 0) word = 1;
    }
    check(inside, "merges stay inside words (a space only leads one)", NULL);
    check(word, "a frequent word with its leading space is one token (' rank')", NULL);

    uint16_t(*m2)[2] = NULL, *ids2 = NULL;
    uint32_t nm2 = 0;
    uint64_t count2 = 0;
    rc = hetrun_bpe_train_encode(text, len, 600, &m2, &nm2, &ids2, &count2, err, sizeof err);
    check(rc == 0 && nm2 == nm && count2 == count && memcmp(m2, merges, nm * 4) == 0 &&
              memcmp(ids2, ids, count * 2) == 0,
          "training is deterministic", err);
    free(m2), free(ids2);
    check(hetrun_bpe_train_encode(text, len, 256, &m2, &nm2, &ids2, &count2, err, sizeof err) != 0,
          "a vocabulary of 256 is refused for BPE", err);
    err[0] = '\0';

    /* Token files: write, map, decode back; then corrupt the merge table. */
    char in[300], tokf[300];
    snprintf(in, sizeof in, "%s/corpus.txt", dir);
    snprintf(tokf, sizeof tokf, "%s/corpus.tok", dir);
    FILE *fp = fopen(in, "wb");
    if (!fp) return 1;
    fwrite(text, 1, len, fp);
    fclose(fp);
    const char *inputs[1] = {in};
    uint32_t vocab = 0;
    rc = hetrun_tokens_write(inputs, 1, tokf, 600, &count2, &vocab, err, sizeof err);
    check(rc == 0 && vocab == 256 + nm && count2 == count, "BPE token file written", err);
    hetrun_tokens t;
    rc = hetrun_tokens_open(tokf, &t, err, sizeof err);
    check(rc == 0 && strcmp(hetrun_tokens_kind(&t), "bpe") == 0 && t.text_bytes == len,
          "BPE token file maps, kind bpe, stands for every byte", err);
    if (rc == 0) {
        int32_t *seq = malloc(t.count * sizeof *seq);
        char *txt = malloc(len + 1);
        for (uint64_t i = 0; seq && i < t.count; i++)
            seq[i] = hetrun_token_at(&t, i);
        size_t got = seq && txt ? hetrun_tokens_decode(&t, seq, t.count, txt, len + 1) : 0;
        check(got == len && memcmp(txt, text, len) == 0, "the file decodes to the corpus", NULL);
        free(seq), free(txt);
        hetrun_tokens_close(&t);
    }
    /* one flipped byte in the merge table (the file's last bytes): the CRC catches it */
    fp = fopen(tokf, "r+b");
    if (!fp) return 1;
    fseek(fp, -2, SEEK_END);
    int c = fgetc(fp);
    fseek(fp, -2, SEEK_END);
    fputc(c ^ 0x01, fp);
    fclose(fp);
    rc = hetrun_tokens_open(tokf, &t, err, sizeof err);
    check(rc != 0 && strstr(err, "CRC32") != NULL, "a flipped merge byte is refused by the CRC",
          err);
    /* a merge that refers to itself, with the CRC made to match: refused by the table check */
    fp = fopen(tokf, "r+b");
    if (!fp) return 1;
    fseek(fp, 0, SEEK_END);
    long size = ftell(fp);
    unsigned char *file = malloc((size_t)size);
    fseek(fp, 0, SEEK_SET);
    if (!file || fread(file, 1, (size_t)size, fp) != (size_t)size) return 1;
    uint16_t self = (uint16_t)(256 + nm - 1);
    memcpy(file + size - 4, &self, 2);
    uint32_t crc = (uint32_t)crc32(0L, file + HETRUN_TOKENS_HEADER, (uInt)(size - 64));
    memcpy(file + 28, &crc, 4);
    fseek(fp, 0, SEEK_SET);
    fwrite(file, 1, (size_t)size, fp);
    fclose(fp);
    free(file);
    rc = hetrun_tokens_open(tokf, &t, err, sizeof err);
    check(rc != 0 && strstr(err, "refers to a token") != NULL,
          "a merge referring to itself is refused", err);

    free(merges), free(ids);
    remove(in), remove(tokf), rmdir(dir);
    printf("%s\n", failures ? "FAILED" : "all passed");
    return failures ? 1 : 0;
}
