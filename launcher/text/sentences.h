/**
 * @file launcher/text/sentences.h
 * @brief Sentences to embed: a UTF-8 text file, one sentence per line (a trailing CR is
 *        dropped; an empty line is an empty sentence, so output rows match line numbers).
 */
#ifndef HETRUN_TEXT_SENTENCES_H
#define HETRUN_TEXT_SENTENCES_H

#include <stddef.h>

/** Largest sentence file read (the whole file is held in memory). */
#define HETRUN_SENTENCES_MAX_BYTES (1ull << 30)

typedef struct hetrun_sentences {
    char **text; /**< text[i] points into buf, NUL-terminated */
    size_t *len; /**< bytes of text[i] */
    size_t count;
    char *buf;
} hetrun_sentences;

/**
 * Reads `path`. Refuses an empty file (no sentences), a file over the size limit, and
 * invalid UTF-8, naming file:line and the byte in the line. Returns 0 or -1 (err).
 */
int hetrun_sentences_read(const char *path, hetrun_sentences *out, char *err, size_t err_len);

/** Sentences from a list of strings (copied); each must be valid UTF-8 (index named). */
int hetrun_sentences_from(const char *const *items, size_t n, hetrun_sentences *out, char *err,
                          size_t err_len);

void hetrun_sentences_free(hetrun_sentences *s);

#endif
