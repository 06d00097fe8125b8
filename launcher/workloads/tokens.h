/**
 * @file launcher/workloads/tokens.h
 * @brief Pre-tokenised text: byte-level (UTF-8) tokenisation of corpus files into one
 *        binary token file, and the memory-mapped reader every rank opens.
 *
 * Token file (little-endian), like llm.c's .bin: a 64-byte header, then `count` tokens.
 *   0  char[8]  magic "HTRNTOK1"
 *   8  u32      version (1)
 *  12  u32      vocab (256 for bytes)
 *  16  u64      count (tokens)
 *  24  u32      token bytes (1: uint8, 2: uint16)
 *  28  u32      CRC32 (zlib) of the token bytes
 *  32  char[32] tokeniser name ("bytes"), NUL padded
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
    uint32_t vocab, width; /**< width: bytes per token */
} hetrun_tokens;

/**
 * Tokenises the `n` text files `inputs` (concatenated, in order) into `out` byte by byte,
 * written atomically. Every input must exist, be non-empty and be valid UTF-8 (the error
 * names the file and the byte offset of the first bad sequence). Returns 0, or -1 with
 * the cause in `err`.
 */
int hetrun_tokens_write_bytes(const char *const *inputs, int n, const char *out, uint64_t *count,
                              char *err, size_t err_len);

/** Offset of the first byte that does not start a valid UTF-8 sequence (RFC 3629: no
 *  overlongs, no surrogates, at most U+10FFFF), or `len` when all of `s` is valid. */
size_t hetrun_utf8_invalid_at(const unsigned char *s, size_t len);

/** Maps and verifies `path` (magic, version, size, CRC). Returns 0 or -1 (err). */
int hetrun_tokens_open(const char *path, hetrun_tokens *t, char *err, size_t err_len);
void hetrun_tokens_close(hetrun_tokens *t);

/** Token `i` (i < count). */
static inline int32_t hetrun_token_at(const hetrun_tokens *t, uint64_t i) {
    return t->width == 1 ? ((const uint8_t *)t->data)[i] : ((const uint16_t *)t->data)[i];
}

#endif
