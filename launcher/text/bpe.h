/**
 * @file launcher/text/bpe.h
 * @brief Byte-level byte-pair encoding (BPE), trained on the corpus it then encodes, as
 *        GPT-2's tokenizer is built: tokens 0..255 are the bytes, token 256 + i is the
 *        concatenation of the two tokens of merge i.
 *
 * Pre-tokenisation keeps merges inside words, like GPT-2's pattern but without a regex
 * engine: the text is cut into chunks, each an optional single leading space followed by
 * a run of one class: letters (ASCII letters and every byte >= 0x80, so UTF-8 characters
 * stay whole and CJK text merges within its runs), digits, or other visible characters;
 * runs of whitespace are chunks of their own. Training counts symbol pairs over the
 * distinct chunks weighted by their frequency and merges the most frequent pair (ties: the
 * smaller pair of ids, so training is deterministic) until the vocabulary is reached or no
 * pair occurs twice. Each merge recounts the pairs of every distinct chunk, so the cost is
 * merges x (total length of distinct chunks): measured 0.23 s CPU for 1,024 merges over
 * 100 KB (this repository's docs) and 13 s for 4,096 merges over 840 KB of fortunes. Beyond
 * a few MB the incremental form (update only the chunks that hold the merged pair, found
 * through a pair -> chunks index, and keep the counts in a heap) is the next step.
 */
#ifndef HETRUN_TEXT_BPE_H
#define HETRUN_TEXT_BPE_H

#include <stddef.h>
#include <stdint.h>

/** Largest vocabulary (tokens are stored as uint16). */
#define HETRUN_BPE_MAX_VOCAB 65536u

/**
 * Trains merges on `text` (len bytes, valid UTF-8 is the caller's concern) up to `vocab`
 * tokens (257..65536) and encodes the text with them. On success *merges holds
 * *merge_count pairs (left, right) and *tokens the *count token ids (uint16), both
 * malloc'ed for the caller to free. Returns 0, or -1 with the cause in err.
 */
int hetrun_bpe_train_encode(const unsigned char *text, size_t len, uint32_t vocab,
                            uint16_t (**merges)[2], uint32_t *merge_count, uint16_t **tokens,
                            uint64_t *count, char *err, size_t err_len);

/**
 * Bytes of every token: fills lens[t] (tokens 0 .. 256 + merge_count - 1) and returns the
 * largest, or 0 when a merge refers to a token not defined before it (a corrupt table).
 */
size_t hetrun_bpe_token_lengths(const uint16_t (*merges)[2], uint32_t merge_count, uint32_t *lens);

/**
 * Writes the bytes of `token` into out (at most cap bytes) and returns how many it needs
 * (call again with a larger buffer when that exceeds cap). The table must have passed
 * hetrun_bpe_token_lengths.
 */
size_t hetrun_bpe_decode(const uint16_t (*merges)[2], uint32_t merge_count, uint32_t token,
                         unsigned char *out, size_t cap);

#endif
