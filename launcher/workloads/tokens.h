/**
 * @file launcher/workloads/tokens.h
 * @brief Pre-tokenised text: byte-level (UTF-8) or byte-pair (text/bpe.h) tokenisation of
 *        corpus files into one binary token file, and the memory-mapped reader every rank
 *        opens.
 *
 * Token file (little-endian), like llm.c's .bin: a 64-byte header, then `count` tokens.
 *   0  char[8]  magic "HTRNTOK1"
 *   8  u32      version: 1 (bytes), 2 (BPE: the merges follow the tokens)
 *  12  u32      vocab (256 for bytes, 256 + merges for BPE)
 *  16  u64      count (tokens)
 *  24  u32      token bytes (1: uint8, 2: uint16)
 *  28  u32      CRC32 (zlib) of everything after the header
 *  32  char[32] tokeniser name ("bytes" or "bpe"), NUL padded
 * Version 2 then holds vocab - 256 merges, each two u16 token ids (left, right), each id
 * below the token the merge defines.
 */
#ifndef HETRUN_WORKLOADS_TOKENS_H
#define HETRUN_WORKLOADS_TOKENS_H

#include <stddef.h>
#include <stdint.h>

#define HETRUN_TOKENS_HEADER 64

/** A token file mapped into memory (read only, shared by the page cache across ranks). */
typedef struct hetrun_tokens {
    const uint8_t *map; /**< whole file */
    size_t map_len;
    const void *data; /**< first token */
    uint64_t count;
    uint32_t vocab, width;       /**< width: bytes per token */
    const uint16_t (*merges)[2]; /**< BPE merges (vocab - 256 of them), or NULL for bytes */
    uint32_t *token_len;         /**< bytes of each token id (vocab entries) */
    uint64_t text_bytes;         /**< bytes of text the tokens stand for */
} hetrun_tokens;

/**
 * Tokenises the `n` text files `inputs` (concatenated, in order) into `out`, written
 * atomically: byte by byte when `vocab` is 256, else with byte-pair merges trained on
 * them up to `vocab` tokens (fewer when no pair repeats; *vocab_out says how many). Every
 * input must exist, be non-empty and be valid UTF-8 (the error names the file and the byte
 * offset of the first bad sequence, and starts with "corpus "). Returns 0, or -1 with the
 * cause in `err`.
 */
int hetrun_tokens_write(const char *const *inputs, int n, const char *out, uint32_t vocab,
                        uint64_t *count, uint32_t *vocab_out, char *err, size_t err_len);

/** Offset of the first byte that does not start a valid UTF-8 sequence (RFC 3629: no
 *  overlongs, no surrogates, at most U+10FFFF), or `len` when all of `s` is valid. */
size_t hetrun_utf8_invalid_at(const unsigned char *s, size_t len);

/** Maps and verifies `path` (magic, version, size, CRC). Returns 0 or -1 (err). */
int hetrun_tokens_open(const char *path, hetrun_tokens *t, char *err, size_t err_len);
void hetrun_tokens_close(hetrun_tokens *t);

/** Tokeniser name of an open file: "bytes" or "bpe". */
const char *hetrun_tokens_kind(const hetrun_tokens *t);

/** Appends the text of tokens[0..n) to out (cap bytes, NUL-terminated, cut at cap - 1);
 *  returns the bytes written. */
size_t hetrun_tokens_decode(const hetrun_tokens *t, const int32_t *tokens, size_t n, char *out,
                            size_t cap);

/** Token `i` (i < count). */
static inline int32_t hetrun_token_at(const hetrun_tokens *t, uint64_t i) {
    return t->width == 1 ? ((const uint8_t *)t->data)[i] : ((const uint16_t *)t->data)[i];
}

#endif
