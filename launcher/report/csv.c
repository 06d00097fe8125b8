/* CSV text building (see csv.h). */
#include "report/csv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report/report.h"

void hetrun_csv_field(hetrun_csv *b, const char *s, int last) {
    size_t need = 2 * strlen(s) + 4;
    if (b->oom) return;
    if (b->len + need >= b->cap) {
        size_t ncap = (b->cap + need) * 2;
        char *grown = realloc(b->text, ncap);
        if (!grown) {
            b->oom = 1;
            return;
        }
        b->text = grown;
        b->cap = ncap;
    }
    int quote = strpbrk(s, ",\"\n") != NULL;
    char *p = b->text + b->len;
    if (quote) *p++ = '"';
    for (; *s; s++) {
        if (*s == '"') *p++ = '"';
        *p++ = *s;
    }
    if (quote) *p++ = '"';
    *p++ = last ? '\n' : ',';
    b->len = (size_t)(p - b->text);
}

void hetrun_csv_row(hetrun_csv *b, const char *const *fields, size_t n) {
    for (size_t i = 0; i < n; i++)
        hetrun_csv_field(b, fields[i] ? fields[i] : "", i + 1 == n);
}

int hetrun_csv_write(const char *path, hetrun_csv *b, char *err, size_t errlen) {
    if (b->oom || !b->text) {
        snprintf(err, errlen, "%s: out of memory building the CSV", path);
        free(b->text);
        return -1;
    }
    int rc = hetrun_write_atomic(path, b->text, b->len, err, errlen);
    free(b->text);
    return rc;
}

hetrun_csv hetrun_csv_begin(const char *const *header, size_t n) {
    hetrun_csv b = {malloc(4096), 0, 4096, 0};
    b.oom = b.text == NULL;
    hetrun_csv_row(&b, header, n);
    return b;
}
