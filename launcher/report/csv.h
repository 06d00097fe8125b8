/**
 * @file launcher/report/csv.h
 * @brief A growing CSV text (RFC 4180 quoting), written atomically: shared by the report's
 *        tables and `hetrun usage`.
 */
#ifndef HETRUN_REPORT_CSV_H
#define HETRUN_REPORT_CSV_H

#include <stddef.h>

typedef struct hetrun_csv {
    char *text;
    size_t len, cap;
    int oom; /**< set when an allocation failed; later appends do nothing */
} hetrun_csv;

/** A new CSV text holding the header row. */
hetrun_csv hetrun_csv_begin(const char *const *header, size_t n);
/** Appends one field, quoted when it holds a comma, quote or newline; `last` ends the row. */
void hetrun_csv_field(hetrun_csv *b, const char *s, int last);
/** Appends a row of `n` fields (NULL is an empty field). */
void hetrun_csv_row(hetrun_csv *b, const char *const *fields, size_t n);
/** Writes the text to `path` atomically and frees it. Returns 0, or -1 (cause in err). */
int hetrun_csv_write(const char *path, hetrun_csv *b, char *err, size_t errlen);

#endif
