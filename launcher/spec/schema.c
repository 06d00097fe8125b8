/**
 * @file launcher/spec/schema.c
 * @brief The data-driven schema checker: strict scalar typing, ranges, choices, nested
 *        objects, sweeps, defaults parsed like user input, "did you mean" for typos.
 *
 * Typing is deliberately stricter than YAML 1.1: only `true`/`false` are booleans,
 * integers are plain decimal (no 0x, no octal, no '+', no '_'), infinities and NaN are
 * refused, and a quoted value is always a string. docs/jobspec.md states these rules.
 */
#include "schema.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/catalogue.h"
#include "spec.h"

/* ---- small helpers ---- */

static void join_path(char *out, size_t len, const char *base, const char *key) {
    if (!base || !*base)
        snprintf(out, len, "%s", key);
    else
        snprintf(out, len, "%s.%s", base, key);
}

static bool is_null(const hetrun_node *n) {
    if (n->kind != HETRUN_NODE_SCALAR || n->quoted) return false;
    const char *s = n->scalar;
    return !*s || strcmp(s, "~") == 0 || strcmp(s, "null") == 0 || strcmp(s, "Null") == 0 ||
           strcmp(s, "NULL") == 0;
}

/** "got ..." text for messages: the value quoted, or what kind of node it is. */
static void describe(const hetrun_node *n, char *out, size_t len) {
    if (n->kind == HETRUN_NODE_MAP)
        snprintf(out, len, "a mapping");
    else if (n->kind == HETRUN_NODE_SEQ)
        snprintf(out, len, "a sequence");
    else if (is_null(n))
        snprintf(out, len, "null (no value)");
    else if (n->quoted)
        snprintf(out, len, "the quoted string \"%.80s%s\"", n->scalar,
                 strlen(n->scalar) > 80 ? "..." : "");
    else
        snprintf(out, len, "\"%.80s%s\"", n->scalar, strlen(n->scalar) > 80 ? "..." : "");
}

static void add(hetrun_diags *d, const char *file, const hetrun_node *n, const char *path,
                const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static void add(hetrun_diags *d, const char *file, const hetrun_node *n, const char *path,
                const char *fmt, ...) {
    char msg[900];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    hetrun_diags_add(d, file, n ? n->line : 0, n ? n->column : 0, path, "%s", msg);
}

/* ---- edit distance ---- */

static size_t edit_distance(const char *a, const char *b) {
    size_t la = strlen(a), lb = strlen(b);
    if (la > 64 || lb > 64) return (size_t)-1; /* keys are short; long words match nothing */
    size_t d[65][65];
    for (size_t i = 0; i <= la; i++)
        d[i][0] = i;
    for (size_t j = 0; j <= lb; j++)
        d[0][j] = j;
    for (size_t i = 1; i <= la; i++) {
        for (size_t j = 1; j <= lb; j++) {
            size_t cost = tolower((unsigned char)a[i - 1]) != tolower((unsigned char)b[j - 1]);
            size_t v = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < v) v = d[i][j - 1] + 1;
            if (d[i - 1][j - 1] + cost < v) v = d[i - 1][j - 1] + cost;
            /* A swap of two neighbours ("itreations") counts as one edit. */
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                d[i - 2][j - 2] + 1 < v)
                v = d[i - 2][j - 2] + 1;
            d[i][j] = v;
        }
    }
    return d[la][lb];
}

const char *hetrun_did_you_mean(const char *word, const char *const *candidates, size_t n) {
    const char *best = NULL;
    size_t best_d = (size_t)-1;
    size_t wl = strlen(word);
    for (size_t i = 0; i < n; i++) {
        if (!candidates[i]) continue;
        size_t d = edit_distance(word, candidates[i]);
        if (d < best_d) {
            best_d = d;
            best = candidates[i];
        }
    }
    /* Close enough to be a typo: at most 2 edits, and fewer than a third of the word for
     * short words (so "a" does not suggest "m"). */
    size_t allowed = wl <= 3 ? 1 : (wl <= 6 ? 2 : 3);
    if (best && best_d > 0 && best_d <= allowed) return best;
    if (best && best_d == 0) return best; /* differs only in case */
    return NULL;
}

/* ---- scalar parsers ---- */

/** Parses plain decimal integers. 0 ok; -1 not an integer (why set); -2 overflow. */
static int parse_i64(const char *s, int64_t *out, const char **why) {
    *why = NULL;
    if (s[0] == '+') {
        *why = " (write it without the '+')";
        return -1;
    }
    const char *p = s;
    if (*p == '-') p++;
    if (!*p) return -1;
    if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X' || p[1] == 'o' || p[1] == 'b')) {
        *why = " (hexadecimal, octal and binary forms are not accepted; write it in decimal)";
        return -1;
    }
    for (const char *q = p; *q; q++) {
        if (*q == '_') {
            *why = " (digit separators '_' are not accepted)";
            return -1;
        }
        if (!isdigit((unsigned char)*q)) return -1;
    }
    if (p[0] == '0' && p[1]) {
        *why = " (leading zeros are not accepted: YAML 1.1 would read this as octal)";
        return -1;
    }
    errno = 0;
    char *end;
    long long v = strtoll(s, &end, 10);
    if (errno == ERANGE) return -2;
    *out = (int64_t)v;
    return 0;
}

/** Plain decimal floats; refuses inf/nan/hex floats and a leading '+'. */
static int parse_f64(const char *s, double *out, const char **why) {
    *why = NULL;
    if (s[0] == '+') {
        *why = " (write it without the '+')";
        return -1;
    }
    const char *lower = s[0] == '-' ? s + 1 : s;
    if (strcasecmp(lower, ".inf") == 0 || strcasecmp(lower, "inf") == 0 ||
        strcasecmp(lower, ".nan") == 0 || strcasecmp(lower, "nan") == 0 ||
        strcasecmp(lower, "infinity") == 0) {
        *why = " (infinity and NaN are not accepted)";
        return -1;
    }
    bool digit = false;
    for (const char *q = s; *q; q++) {
        if (isdigit((unsigned char)*q))
            digit = true;
        else if (!strchr("+-.eE", *q))
            return -1;
    }
    if (!digit) return -1;
    errno = 0;
    char *end;
    double v = strtod(s, &end);
    if (*end) return -1;
    if (errno == ERANGE || !isfinite(v)) return -2;
    *out = v;
    return 0;
}

/** Number with an optional unit from `units` (name, factor pairs, NULL-terminated). */
typedef struct unit {
    const char *name;
    double factor;
} unit;

static const unit byte_units[] = {{"B", 1.0},
                                  {"KB", 1e3},
                                  {"MB", 1e6},
                                  {"GB", 1e9},
                                  {"TB", 1e12},
                                  {"PB", 1e15},
                                  {"KiB", 1024.0},
                                  {"MiB", 1048576.0},
                                  {"GiB", 1073741824.0},
                                  {"TiB", 1099511627776.0},
                                  {"PiB", 1125899906842624.0},
                                  {NULL, 0}};
static const unit time_units[] = {{"ms", 1e-3},  {"s", 1.0},     {"m", 60.0}, {"min", 60.0},
                                  {"h", 3600.0}, {"d", 86400.0}, {NULL, 0}};

/** 0 ok; -1 malformed; -2 unknown unit (unit text in `bad_unit`). */
static int parse_with_unit(const char *s, const unit *units, double *out, char *bad_unit,
                           size_t bu_len) {
    size_t n = strlen(s), i = 0;
    while (i < n && (isdigit((unsigned char)s[i]) || s[i] == '.'))
        i++;
    if (i == 0 || i > 64) return -1;
    char num[80];
    memcpy(num, s, i);
    num[i] = '\0';
    const char *why;
    double v;
    if (parse_f64(num, &v, &why) != 0) return -1;
    const char *u = s + i;
    while (*u == ' ')
        u++;
    if (!*u) return -1; /* a bare number is handled by the caller */
    for (const unit *x = units; x->name; x++) {
        if (strcmp(u, x->name) == 0) {
            *out = v * x->factor;
            return 0;
        }
    }
    snprintf(bad_unit, bu_len, "%s", u);
    return -2;
}

static void unit_list(const unit *units, char *out, size_t len) {
    size_t o = 0;
    out[0] = '\0';
    for (const unit *x = units; x->name && o < len; x++)
        o += (size_t)snprintf(out + o, len - o, "%s%s", x == units ? "" : ", ", x->name);
}

static bool range_set(const hetrun_field *f) {
    return f->min <= f->max;
}

/** Range phrase for integers: "a positive integer", "an integer from 1 to 64"... */
static void int_expect(const hetrun_field *f, char *out, size_t len) {
    if (!range_set(f)) {
        snprintf(out, len, "an integer");
    } else if (f->min == f->max) {
        snprintf(out, len, "%.0f (the only value supported)", f->min);
    } else if (f->max >= 9.2e18) {
        if (f->min == 1)
            snprintf(out, len, "a positive integer");
        else if (f->min == 0)
            snprintf(out, len, "a non-negative integer");
        else
            snprintf(out, len, "an integer >= %.0f", f->min);
    } else {
        snprintf(out, len, "an integer from %.0f to %.0f", f->min, f->max);
    }
}

static void float_expect(const hetrun_field *f, char *out, size_t len, const char *what) {
    if (!range_set(f))
        snprintf(out, len, "%s", what);
    else if (f->max >= 1e300)
        snprintf(out, len, "%s >= %g", what, f->min);
    else
        snprintf(out, len, "%s from %g to %g", what, f->min, f->max);
}

const char *hetrun_field_type_name(hetrun_field_type type) {
    switch (type) {
    case HETRUN_FIELD_INT: return "integer";
    case HETRUN_FIELD_FLOAT: return "number";
    case HETRUN_FIELD_BOOL: return "true | false";
    case HETRUN_FIELD_STRING: return "string";
    case HETRUN_FIELD_ENUM: return "one of the listed names";
    case HETRUN_FIELD_DTYPE: return "dtype name";
    case HETRUN_FIELD_BYTES: return "size (integer bytes or e.g. 16GiB)";
    case HETRUN_FIELD_SECONDS: return "duration (seconds or e.g. 90s, 10m, 2h)";
    case HETRUN_FIELD_INT_LIST: return "list of integers";
    case HETRUN_FIELD_STRING_LIST: return "string or list of strings";
    case HETRUN_FIELD_OBJECT: return "mapping";
    }
    return "value";
}

int hetrun_field_is_scalar(const hetrun_field *f) {
    return f->type != HETRUN_FIELD_INT_LIST && f->type != HETRUN_FIELD_STRING_LIST &&
           f->type != HETRUN_FIELD_OBJECT;
}

const hetrun_field *hetrun_schema_field(const hetrun_schema *schema, const char *key) {
    for (size_t i = 0; i < schema->field_count; i++)
        if (strcmp(schema->fields[i].key, key) == 0) return &schema->fields[i];
    return NULL;
}

/* ---- one value ---- */

static int parse_int_value(const hetrun_field *f, const hetrun_node *n, const char *file,
                           const char *path, int64_t *dst, hetrun_diags *d) {
    char exp[128], got[128];
    int_expect(f, exp, sizeof exp);
    describe(n, got, sizeof got);
    if (n->kind != HETRUN_NODE_SCALAR || n->quoted || is_null(n)) {
        add(d, file, n, path, "expected %s, got %s", exp, got);
        return 1;
    }
    const char *why;
    int64_t v = 0;
    int rc = parse_i64(n->scalar, &v, &why);
    if (rc == -2) {
        add(d, file, n, path, "%s is out of range (does not fit in a 64-bit integer)", got);
        return 1;
    }
    if (rc != 0) {
        double fv;
        const char *fwhy;
        if (!why && parse_f64(n->scalar, &fv, &fwhy) == 0)
            add(d, file, n, path, "expected an integer, got %s", n->scalar);
        else
            add(d, file, n, path, "expected %s, got %s%s", exp, got, why ? why : "");
        return 1;
    }
    if (range_set(f) && ((double)v < f->min || (double)v > f->max)) {
        add(d, file, n, path, "%s is out of range: expected %s", n->scalar, exp);
        return 1;
    }
    *dst = v;
    return 0;
}

static int parse_float_value(const hetrun_field *f, const hetrun_node *n, const char *file,
                             const char *path, double *dst, hetrun_diags *d) {
    char exp[128], got[128];
    float_expect(f, exp, sizeof exp, "a number");
    describe(n, got, sizeof got);
    if (n->kind != HETRUN_NODE_SCALAR || n->quoted || is_null(n)) {
        add(d, file, n, path, "expected %s, got %s", exp, got);
        return 1;
    }
    const char *why;
    double v = 0;
    int rc = parse_f64(n->scalar, &v, &why);
    if (rc == -2) {
        add(d, file, n, path, "%s is out of range (not a finite double)", got);
        return 1;
    }
    if (rc != 0) {
        add(d, file, n, path, "expected %s, got %s%s", exp, got, why ? why : "");
        return 1;
    }
    if (range_set(f) && (v < f->min || v > f->max)) {
        add(d, file, n, path, "%s is out of range: expected %s", n->scalar, exp);
        return 1;
    }
    *dst = v;
    return 0;
}

static int parse_unit_value(const hetrun_field *f, const hetrun_node *n, const char *file,
                            const char *path, double *dst, hetrun_diags *d, const unit *units,
                            const char *what) {
    char exp[160], got[128], ulist[160];
    float_expect(f, exp, sizeof exp, what);
    describe(n, got, sizeof got);
    unit_list(units, ulist, sizeof ulist);
    if (n->kind != HETRUN_NODE_SCALAR || is_null(n)) {
        add(d, file, n, path, "expected %s, got %s", exp, got);
        return 1;
    }
    const char *why = NULL;
    double v = 0;
    int rc = n->quoted ? -1 : parse_f64(n->scalar, &v, &why);
    if (rc == -2) {
        add(d, file, n, path, "%s is out of range", got);
        return 1;
    }
    if (rc != 0) {
        char bad[64] = "";
        int urc = parse_with_unit(n->scalar, units, &v, bad, sizeof bad);
        if (urc == -2) {
            add(d, file, n, path, "unknown unit \"%s\" in %s; units: %s", bad, got, ulist);
            return 1;
        }
        if (urc != 0 || !isfinite(v)) {
            add(d, file, n, path, "expected %s (a number with optional unit: %s), got %s%s", exp,
                ulist, got, why ? why : "");
            return 1;
        }
    }
    if (range_set(f) && (v < f->min || v > f->max)) {
        add(d, file, n, path, "%s is out of range: expected %s", n->scalar, exp);
        return 1;
    }
    *dst = v;
    return 0;
}

static void choices_text(const char *const *choices, char *out, size_t len) {
    size_t o = 0;
    out[0] = '\0';
    for (size_t i = 0; choices && choices[i] && o < len; i++)
        o += (size_t)snprintf(out + o, len - o, "%s%s", i ? ", " : "", choices[i]);
}

static int parse_string_scalar(const hetrun_node *n, const char *file, const char *path,
                               const char *exp, hetrun_diags *d) {
    if (n->kind != HETRUN_NODE_SCALAR || is_null(n)) {
        char got[128];
        describe(n, got, sizeof got);
        add(d, file, n, path, "expected %s, got %s", exp, got);
        return 1;
    }
    return 0;
}

int hetrun_field_parse(const hetrun_field *f, const hetrun_node *n, const char *file,
                       const char *path, void *dst, hetrun_diags *d) {
    char got[128], buf[512];
    switch (f->type) {
    case HETRUN_FIELD_INT: {
        int64_t v;
        if (parse_int_value(f, n, file, path, &v, d)) return 1;
        *(int64_t *)dst = v;
        return 0;
    }
    case HETRUN_FIELD_FLOAT: {
        double v;
        if (parse_float_value(f, n, file, path, &v, d)) return 1;
        *(double *)dst = v;
        return 0;
    }
    case HETRUN_FIELD_BOOL: {
        describe(n, got, sizeof got);
        if (n->kind == HETRUN_NODE_SCALAR && !n->quoted && strcmp(n->scalar, "true") == 0) {
            *(bool *)dst = true;
            return 0;
        }
        if (n->kind == HETRUN_NODE_SCALAR && !n->quoted && strcmp(n->scalar, "false") == 0) {
            *(bool *)dst = false;
            return 0;
        }
        static const char *const yaml11[] = {"yes", "no", "on", "off", "y", "n", "true", "false"};
        bool y11 = false;
        for (size_t i = 0; n->kind == HETRUN_NODE_SCALAR && i < 8; i++)
            if (strcasecmp(n->scalar, yaml11[i]) == 0) y11 = true;
        add(d, file, n, path, "expected true or false, got %s%s", got,
            y11 ? " (only lower-case true/false are booleans here; YAML 1.1 spellings like "
                  "yes/no/on/off are refused)"
                : "");
        return 1;
    }
    case HETRUN_FIELD_STRING: {
        if (parse_string_scalar(n, file, path, "a string", d)) return 1;
        char *s = strdup(n->scalar);
        if (!s) {
            add(d, file, n, path, "out of memory copying a string of %zu bytes", strlen(n->scalar));
            return 1;
        }
        free(*(char **)dst);
        *(char **)dst = s;
        return 0;
    }
    case HETRUN_FIELD_ENUM: {
        choices_text(f->choices, buf, sizeof buf);
        if (parse_string_scalar(n, file, path, "one of the names listed below", d)) return 1;
        size_t nc = 0;
        while (f->choices && f->choices[nc])
            nc++;
        for (size_t i = 0; i < nc; i++) {
            if (strcmp(n->scalar, f->choices[i]) == 0) {
                *(int *)dst = (int)i;
                return 0;
            }
        }
        const char *dym = hetrun_did_you_mean(n->scalar, f->choices, nc);
        describe(n, got, sizeof got);
        if (dym)
            add(d, file, n, path, "unknown value %s; expected one of %s (did you mean '%s'?)", got,
                buf, dym);
        else
            add(d, file, n, path, "unknown value %s; expected one of %s", got, buf);
        return 1;
    }
    case HETRUN_FIELD_DTYPE: {
        const char *names[HETRUN_DTYPE_COUNT + 1];
        for (int i = 0; i < HETRUN_DTYPE_COUNT; i++)
            names[i] = hetrun_dtype_name(i);
        names[HETRUN_DTYPE_COUNT] = NULL;
        choices_text(names, buf, sizeof buf);
        if (n->kind != HETRUN_NODE_SCALAR || is_null(n)) {
            describe(n, got, sizeof got);
            add(d, file, n, path, "expected a dtype (%s), got %s", buf, got);
            return 1;
        }
        int dt = hetrun_dtype_from_name(n->scalar);
        if (dt < 0) {
            describe(n, got, sizeof got);
            const char *dym = hetrun_did_you_mean(n->scalar, names, HETRUN_DTYPE_COUNT);
            if (dym)
                add(d, file, n, path, "unknown dtype %s; expected one of %s (did you mean '%s'?)",
                    got, buf, dym);
            else
                add(d, file, n, path, "unknown dtype %s; expected one of %s", got, buf);
            return 1;
        }
        *(int *)dst = dt;
        return 0;
    }
    case HETRUN_FIELD_BYTES: {
        double v;
        if (parse_unit_value(f, n, file, path, &v, d, byte_units, "a size in bytes")) return 1;
        if (v < 0 || v >= 9.2e18) {
            add(d, file, n, path, "\"%s\" is out of range (sizes must be from 0 to 8 EiB)",
                n->scalar);
            return 1;
        }
        if (v != floor(v)) {
            add(d, file, n, path, "\"%s\" is not a whole number of bytes", n->scalar);
            return 1;
        }
        *(int64_t *)dst = (int64_t)v;
        return 0;
    }
    case HETRUN_FIELD_SECONDS: {
        double v;
        if (parse_unit_value(f, n, file, path, &v, d, time_units, "a duration in seconds"))
            return 1;
        *(double *)dst = v;
        return 0;
    }
    case HETRUN_FIELD_INT_LIST: {
        if (n->kind != HETRUN_NODE_SEQ) {
            describe(n, got, sizeof got);
            add(d, file, n, path, "expected a list of integers like [0, 1], got %s", got);
            return 1;
        }
        int64_t *items = n->count ? calloc(n->count, sizeof *items) : NULL;
        if (n->count && !items) {
            add(d, file, n, path, "out of memory for a list of %zu integers", n->count);
            return 1;
        }
        int errs = 0;
        for (size_t i = 0; i < n->count; i++) {
            char ep[600];
            snprintf(ep, sizeof ep, "%s[%zu]", path, i);
            errs += parse_int_value(f, n->values[i], file, ep, &items[i], d);
        }
        if (errs) {
            free(items);
            return errs;
        }
        hetrun_int_list *l = dst;
        free(l->items);
        l->items = items;
        l->count = n->count;
        return 0;
    }
    case HETRUN_FIELD_STRING_LIST: {
        const hetrun_node *one = n->kind == HETRUN_NODE_SCALAR ? n : NULL;
        size_t count = one ? 1 : n->count;
        if (n->kind == HETRUN_NODE_MAP || (one && is_null(one))) {
            describe(n, got, sizeof got);
            add(d, file, n, path, "expected a string or a list of strings, got %s", got);
            return 1;
        }
        int errs = 0;
        for (size_t i = 0; !one && i < count; i++) {
            char ep[600];
            snprintf(ep, sizeof ep, "%s[%zu]", path, i);
            errs += parse_string_scalar(n->values[i], file, ep, "a string", d);
        }
        if (errs) return errs;
        char **items = count ? calloc(count, sizeof *items) : NULL;
        if (count && !items) {
            add(d, file, n, path, "out of memory for a list of %zu strings", count);
            return 1;
        }
        for (size_t i = 0; i < count; i++) {
            items[i] = strdup(one ? one->scalar : n->values[i]->scalar);
            if (!items[i]) {
                for (size_t j = 0; j < i; j++)
                    free(items[j]);
                free(items);
                add(d, file, n, path, "out of memory copying a list of %zu strings", count);
                return 1;
            }
        }
        hetrun_string_list *l = dst;
        for (size_t i = 0; i < l->count; i++)
            free(l->items[i]);
        free(l->items);
        l->items = items;
        l->count = count;
        return 0;
    }
    case HETRUN_FIELD_OBJECT: {
        if (n->kind != HETRUN_NODE_MAP) {
            describe(n, got, sizeof got);
            add(d, file, n, path, "expected a mapping (%s: keys), got %s", f->schema->name, got);
            return 1;
        }
        return hetrun_schema_apply(f->schema, n, file, path, dst, d);
    }
    }
    add(d, file, n, path, "internal error: field '%s' has unknown type %d", f->key, (int)f->type);
    return 1;
}

void hetrun_field_free(const hetrun_field *f, void *dst) {
    switch (f->type) {
    case HETRUN_FIELD_STRING:
        free(*(char **)dst);
        *(char **)dst = NULL;
        break;
    case HETRUN_FIELD_INT_LIST: {
        hetrun_int_list *l = dst;
        free(l->items);
        l->items = NULL;
        l->count = 0;
        break;
    }
    case HETRUN_FIELD_STRING_LIST: {
        hetrun_string_list *l = dst;
        for (size_t i = 0; i < l->count; i++)
            free(l->items[i]);
        free(l->items);
        l->items = NULL;
        l->count = 0;
        break;
    }
    case HETRUN_FIELD_OBJECT: hetrun_schema_free(f->schema, dst); break;
    default: break;
    }
}

/* ---- mappings ---- */

/** Fills defaults of absent fields (nested objects recursively), never "missing" errors. */
static int apply_defaults(const hetrun_schema *s, const hetrun_node *map, const char *file,
                          const char *path, void *obj, hetrun_diags *d) {
    int errs = 0;
    for (size_t i = 0; i < s->field_count; i++) {
        const hetrun_field *f = &s->fields[i];
        if (map && hetrun_node_get(map, f->key)) continue;
        char fp[600];
        join_path(fp, sizeof fp, path, f->key);
        void *dst = (char *)obj + f->offset;
        if (f->type == HETRUN_FIELD_OBJECT) {
            errs += apply_defaults(f->schema, NULL, file, fp, dst, d);
            continue;
        }
        if (!f->default_value) continue;
        hetrun_node dn;
        memset(&dn, 0, sizeof dn);
        dn.kind = HETRUN_NODE_SCALAR;
        dn.scalar = (char *)f->default_value;
        hetrun_node *parsed = NULL;
        if (f->default_value[0] == '[' || f->default_value[0] == '{') {
            /* A flow collection default ("[json, csv]") goes through the YAML reader. */
            parsed = hetrun_yaml_parse(file, (const unsigned char *)f->default_value,
                                       strlen(f->default_value), d);
        }
        int e = hetrun_field_parse(f, parsed ? parsed : &dn, file, fp, dst, d);
        hetrun_node_free(parsed);
        if (e) /* a schema table bug: say so plainly */
            hetrun_diags_add(d, file, 0, 0, fp,
                             "internal error: default value \"%s\" of '%s' "
                             "is invalid for its own field",
                             f->default_value, f->key);
        errs += e;
    }
    return errs;
}

int hetrun_schema_apply(const hetrun_schema *s, const hetrun_node *map, const char *file,
                        const char *path, void *obj, hetrun_diags *d) {
    int errs = 0;
    if (!map || map->kind != HETRUN_NODE_MAP) {
        char got[128] = "nothing";
        if (map) describe(map, got, sizeof got);
        add(d, file, map, path, "expected a mapping of %s keys, got %s", s->name, got);
        return 1;
    }
    const char *names[129]; /* NULL-terminated for choices_text */
    size_t nn = s->field_count < 128 ? s->field_count : 128;
    bool any_sweep = false;
    for (size_t i = 0; i < nn; i++) {
        names[i] = s->fields[i].key;
        if (s->fields[i].flags & HETRUN_FIELD_SWEEP) any_sweep = true;
    }
    names[nn] = NULL;
    /* Line of the first occurrence of each field, for duplicate detection in O(keys). */
    int first_line[128];
    for (size_t i = 0; i < nn; i++)
        first_line[i] = -1;

    for (size_t k = 0; k < map->count; k++) {
        const hetrun_node *kn = map->keys[k], *vn = map->values[k];
        if (!kn || !vn || kn->kind != HETRUN_NODE_SCALAR) continue; /* reported by reader */
        char fp[600];
        join_path(fp, sizeof fp, path, kn->scalar);
        size_t fi = nn;
        for (size_t i = 0; i < nn; i++)
            if (strcmp(names[i], kn->scalar) == 0) fi = i;
        if (fi == nn) {
            errs++;
            if (hetrun_diags_full(d)) continue; /* no "did you mean" work past the limit */
            const char *dym = hetrun_did_you_mean(kn->scalar, names, nn);
            char list[600];
            choices_text(names, list, sizeof list);
            if (dym)
                add(d, file, kn, fp, "unknown key '%.80s' (did you mean '%s'?)", kn->scalar, dym);
            else
                add(d, file, kn, fp, "unknown key '%.80s'; %s takes: %s", kn->scalar, s->name,
                    list);
            continue;
        }
        if (first_line[fi] >= 0) {
            add(d, file, kn, fp, "duplicate key '%s' (first given at line %d)", kn->scalar,
                first_line[fi]);
            errs++;
            continue;
        }
        first_line[fi] = kn->line;
        const hetrun_field *f = &s->fields[fi];
        void *dst = (char *)obj + f->offset;
        if ((f->flags & HETRUN_FIELD_SWEEP) && hetrun_field_is_scalar(f) &&
            vn->kind == HETRUN_NODE_SEQ) {
            /* A sweep: check every point here (errors point at the element); the job
             * builder expands the points. The first point fills `obj`. */
            if (vn->count == 0) {
                add(d, file, vn, fp, "empty sweep list: give at least one value");
                errs++;
                continue;
            }
            for (size_t i = 0; i < vn->count; i++) {
                char ep[640];
                snprintf(ep, sizeof ep, "%s[%zu]", fp, i);
                union {
                    int64_t i;
                    double f;
                    char *s;
                    int e;
                    bool b;
                } scratch;
                memset(&scratch, 0, sizeof scratch);
                const hetrun_node *el = vn->values[i];
                if (el->kind != HETRUN_NODE_SCALAR) {
                    char got[128];
                    describe(el, got, sizeof got);
                    add(d, file, el, ep, "sweep values must be single values, got %s", got);
                    errs++;
                    continue;
                }
                int e = hetrun_field_parse(f, el, file, ep, &scratch, d);
                if (!e) hetrun_field_free(f, &scratch);
                errs += e;
            }
            if (errs == 0) errs += hetrun_field_parse(f, vn->values[0], file, fp, dst, d);
            continue;
        }
        if (vn->kind == HETRUN_NODE_SEQ && hetrun_field_is_scalar(f) && any_sweep) {
            add(d, file, vn, fp,
                "expected a single %s, got a sequence ('%s' cannot be swept; see the sweep "
                "column of the %s table in docs/jobspec.md)",
                hetrun_field_type_name(f->type), f->key, s->name);
            errs++;
            continue;
        }
        errs += hetrun_field_parse(f, vn, file, fp, dst, d);
    }
    /* Missing required keys are reported at the mapping itself. */
    for (size_t i = 0; i < nn; i++) {
        if ((s->fields[i].flags & HETRUN_FIELD_REQUIRED) && first_line[i] < 0 &&
            !hetrun_node_get(map, names[i])) {
            add(d, file, map, path, "missing required key '%s' (%s)", names[i],
                s->fields[i].doc ? s->fields[i].doc : hetrun_field_type_name(s->fields[i].type));
            errs++;
        }
    }
    errs += apply_defaults(s, map, file, path, obj, d);
    if (errs == 0 && s->check) {
        int check_errors = 0;
        hetrun_check_ctx ctx = {file, path, map, d, &check_errors};
        s->check(obj, &ctx);
        errs += check_errors;
    }
    return errs;
}

void hetrun_schema_free(const hetrun_schema *s, void *obj) {
    if (!s || !obj) return;
    for (size_t i = 0; i < s->field_count; i++)
        hetrun_field_free(&s->fields[i], (char *)obj + s->fields[i].offset);
}

void hetrun_check_error(const hetrun_check_ctx *ctx, const char *key, const char *fmt, ...) {
    char msg[900], fp[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    const hetrun_node *at = ctx->node;
    if (key) {
        join_path(fp, sizeof fp, ctx->path, key);
        /* Point at the key's value when given, otherwise at the mapping. */
        const hetrun_node *v = hetrun_node_get(ctx->node, key);
        if (v) at = v;
    } else {
        snprintf(fp, sizeof fp, "%s", ctx->path ? ctx->path : "");
    }
    hetrun_diags_add(ctx->diags, ctx->file, at ? at->line : 0, at ? at->column : 0, fp, "%s", msg);
    if (ctx->error_count) (*ctx->error_count)++;
}
