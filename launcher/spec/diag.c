/**
 * @file launcher/spec/diag.c
 * @brief Collected spec errors, printed in file order as `FILE:LINE:COL: PATH: message`.
 */
#include "diag.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define HETRUN_DIAGS_DEFAULT_LIMIT 200

static char *dup_or_empty(const char *s) {
    const char *src = s ? s : "";
    size_t n = strlen(src);
    char *d = malloc(n + 1);
    if (d) memcpy(d, src, n + 1);
    return d;
}

void hetrun_diags_add(hetrun_diags *d, const char *file, int line, int column, const char *path,
                      const char *fmt, ...) {
    if (!d) return;
    size_t limit = d->limit ? d->limit : HETRUN_DIAGS_DEFAULT_LIMIT;
    if (d->count >= limit) return;
    /* The same error reached twice (e.g. once per sweep point) is reported once. */
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    for (size_t i = 0; i < d->count; i++) {
        const hetrun_diag *o = &d->items[i];
        if (o->line == line && o->column == column && strcmp(o->path, path ? path : "") == 0 &&
            strcmp(o->message, msg) == 0)
            return;
    }
    if (d->count == d->capacity) {
        size_t cap = d->capacity ? d->capacity * 2 : 16;
        hetrun_diag *items = realloc(d->items, cap * sizeof *items);
        if (!items) return; /* out of memory: losing a diagnostic beats crashing */
        d->items = items;
        d->capacity = cap;
    }
    hetrun_diag *e = &d->items[d->count];
    e->file = dup_or_empty(file);
    e->path = dup_or_empty(path);
    e->message = dup_or_empty(msg);
    e->line = line;
    e->column = column;
    if (!e->file || !e->path || !e->message) {
        free(e->file);
        free(e->path);
        free(e->message);
        return;
    }
    d->count++;
}

int hetrun_diags_full(const hetrun_diags *d) {
    return d && d->count >= (d->limit ? d->limit : HETRUN_DIAGS_DEFAULT_LIMIT);
}

void hetrun_diags_sort(hetrun_diags *d) {
    if (!d || d->count < 2) return;
    /* Insertion sort: stable, and error lists are short (bounded by the limit). */
    for (size_t i = 1; i < d->count; i++) {
        hetrun_diag cur = d->items[i];
        size_t j = i;
        while (j > 0) {
            const hetrun_diag *p = &d->items[j - 1];
            if (p->line < cur.line || (p->line == cur.line && p->column <= cur.column)) break;
            d->items[j] = d->items[j - 1];
            j--;
        }
        d->items[j] = cur;
    }
}

void hetrun_diags_print(const hetrun_diags *d, FILE *out) {
    if (!d) return;
    for (size_t i = 0; i < d->count; i++) {
        const hetrun_diag *e = &d->items[i];
        fprintf(out, "%s:%d:%d: %s%s%s\n", e->file, e->line, e->column, e->path,
                e->path[0] ? ": " : "", e->message);
    }
}

void hetrun_diags_free(hetrun_diags *d) {
    if (!d) return;
    for (size_t i = 0; i < d->count; i++) {
        free(d->items[i].file);
        free(d->items[i].path);
        free(d->items[i].message);
    }
    free(d->items);
    d->items = NULL;
    d->count = d->capacity = 0;
}
