/**
 * @file launcher/spec/diag.h
 * @brief Diagnostics: errors that point at the mistake, `FILE:LINE:COL: KEY.PATH: message`.
 *
 * Every spec error is collected (never printed immediately) so a run reports all
 * errors of a file at once, in source order.
 */
#ifndef HETRUN_SPEC_DIAG_H
#define HETRUN_SPEC_DIAG_H

#include <stddef.h>
#include <stdio.h>

typedef struct hetrun_diag {
    char *file;    /**< spec path as given */
    int line;      /**< 1-based; 0 when the error concerns the whole file */
    int column;    /**< 1-based; 0 when unknown */
    char *path;    /**< key path, e.g. "workloads[1].train.batch"; "" for the document */
    char *message; /**< what is wrong and, where possible, what was expected */
} hetrun_diag;

typedef struct hetrun_diags {
    hetrun_diag *items;
    size_t count;
    size_t capacity;
    size_t limit; /**< stop collecting after this many (0: default 200) */
} hetrun_diags;

/** Appends one error; printf-style message. Silently drops errors past the limit. */
void hetrun_diags_add(hetrun_diags *d, const char *file, int line, int column, const char *path,
                      const char *fmt, ...) __attribute__((format(printf, 6, 7)));
/** True when the error limit is reached: callers may skip costly message building. */
int hetrun_diags_full(const hetrun_diags *d);
/** Sorts by line/column (stable) so output follows the file. */
void hetrun_diags_sort(hetrun_diags *d);
/** Prints one line per error: `FILE:LINE:COL: PATH: message`. */
void hetrun_diags_print(const hetrun_diags *d, FILE *out);
/** Frees the errors (not the struct). */
void hetrun_diags_free(hetrun_diags *d);

#endif
