/**
 * @file launcher/text/wordpiece.h
 * @brief The WordPiece tokenizer a Hugging Face `tokenizer.json` describes (BERT and its
 *        kin), producing the same ids as the `tokenizers` library.
 *
 * Pipeline, as in `tokenizers`: added tokens ([CLS], [MASK]...) are cut out of the raw text;
 * the BertNormalizer cleans the rest (drops NUL, U+FFFD and control/format characters, maps
 * whitespace to a space), puts spaces around CJK ideographs, strips accents (NFD, then drops
 * nonspacing marks) and lower-cases, as its settings say; the BertPreTokenizer splits on
 * whitespace and isolates punctuation; WordPiece then takes the longest vocabulary prefix of
 * each word, continuing with "##" pieces, and gives [UNK] to a word it cannot cover or that
 * is longer than max_input_chars_per_word. The post-processor's template adds [CLS]/[SEP].
 * Unicode data (categories, NFD, case) come from utf8proc.
 */
#ifndef HETRUN_TEXT_WORDPIECE_H
#define HETRUN_TEXT_WORDPIECE_H

#include <stddef.h>
#include <stdint.h>

typedef struct hetrun_wordpiece hetrun_wordpiece;

/**
 * Reads `path` (a tokenizer.json). Refuses, with the file and key named, a model that is not
 * WordPiece, a normalizer or pre-tokenizer other than the BERT ones (or none), a vocabulary
 * with repeated tokens or ids, and a post-processor it does not know. Returns 0 or -1 (err).
 */
int hetrun_wordpiece_load(const char *path, hetrun_wordpiece **out, char *err, size_t err_len);
void hetrun_wordpiece_free(hetrun_wordpiece *t);

/** Vocabulary size (largest id + 1): the embedding table must have this many rows. */
int32_t hetrun_wordpiece_vocab_size(const hetrun_wordpiece *t);
/** The id padding uses (tokenizer.json's padding.pad_id, else [PAD], else 0). */
int32_t hetrun_wordpiece_pad_id(const hetrun_wordpiece *t);
/** tokenizer.json's truncation.max_length, or 0 when it sets none. */
int32_t hetrun_wordpiece_truncation(const hetrun_wordpiece *t);
/** Tokens the post-processor adds around a sentence ([CLS] and [SEP]: 2). */
int32_t hetrun_wordpiece_special_count(const hetrun_wordpiece *t);

/**
 * Encodes one sentence of `len` bytes into ids[0 .. *count), special tokens included, at most
 * `max_len` ids (the sentence is cut before the trailing special tokens, as `tokenizers`
 * truncates; *truncated says so). `max_len` must leave room for one token besides the special
 * ones. Returns 0, or -1 with `err` naming the byte offset of invalid UTF-8.
 */
int hetrun_wordpiece_encode(const hetrun_wordpiece *t, const char *text, size_t len,
                            int32_t max_len, int32_t *ids, int32_t *count, int *truncated,
                            char *err, size_t err_len);

#endif
