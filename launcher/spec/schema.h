/**
 * @file launcher/spec/schema.h
 * @brief Data-driven schema: a table of fields per YAML mapping, applied to a C struct.
 *
 * Each mapping of the job spec (the top-level keys, `report`, `limits`, and every
 * workload's parameters) is described once by a ::hetrun_schema: its keys, types,
 * ranges, defaults and one-line docs. The checker fills the struct at each field's
 * `offset`, reports unknown keys with a "did you mean", wrong types, out-of-range
 * values and missing required keys, all with file:line:col and the key path. Adding a
 * workload means one schema table and one run function (see workloads/workload.h);
 * docs/jobspec.md is kept in step with these tables by a test.
 */
#ifndef HETRUN_SPEC_SCHEMA_H
#define HETRUN_SPEC_SCHEMA_H

#include <stddef.h>
#include <stdint.h>

#include "diag.h"
#include "node.h"

/** C type a field fills at its offset. */
typedef enum hetrun_field_type {
    HETRUN_FIELD_INT,         /**< int64_t; integers only, range [min, max] */
    HETRUN_FIELD_FLOAT,       /**< double; range [min, max] */
    HETRUN_FIELD_BOOL,        /**< bool: true/false only (no yes/no/on/off) */
    HETRUN_FIELD_STRING,      /**< char * (owned by the struct; freed by hetrun_schema_free) */
    HETRUN_FIELD_ENUM,        /**< int: index into `choices` */
    HETRUN_FIELD_DTYPE,       /**< int: ::hetrun_dtype, from names like fp32/bf16 */
    HETRUN_FIELD_BYTES,       /**< int64_t; integer or "512MiB"/"2GB"-style string */
    HETRUN_FIELD_SECONDS,     /**< double; number or "90s"/"10m"/"2h" string */
    HETRUN_FIELD_INT_LIST,    /**< hetrun_int_list; a sequence of integers in [min, max] */
    HETRUN_FIELD_STRING_LIST, /**< hetrun_string_list; a sequence of strings (or one) */
    HETRUN_FIELD_OBJECT       /**< nested mapping described by `schema`, filled in place */
} hetrun_field_type;

/** Field flags. */
#define HETRUN_FIELD_REQUIRED 0x1u /**< missing key is an error */
#define HETRUN_FIELD_SWEEP                                                                         \
    0x2u /**< a list value is a sweep (workload parameters of scalar                               \
              types only; ignored on list/object fields) */

typedef struct hetrun_int_list {
    int64_t *items;
    size_t count;
} hetrun_int_list;

typedef struct hetrun_string_list {
    char **items;
    size_t count;
} hetrun_string_list;

typedef struct hetrun_schema hetrun_schema;

typedef struct hetrun_field {
    const char *key;
    hetrun_field_type type;
    unsigned flags;              /**< HETRUN_FIELD_* */
    size_t offset;               /**< offsetof(struct, member) */
    double min, max;             /**< numeric range, inclusive (ignored when min > max) */
    const char *const *choices;  /**< ENUM: NULL-terminated list of names */
    const hetrun_schema *schema; /**< OBJECT: the nested mapping's schema */
    const char *default_value;   /**< YAML text parsed like user input when the key is
                                      absent; NULL: zero / unset */
    const char *doc;             /**< one line for docs/jobspec.md */
} hetrun_field;

/** Context handed to a schema's cross-field check. */
typedef struct hetrun_check_ctx {
    const char *file;
    const char *path;        /**< key path of the mapping, e.g. "workloads[0].gemm" */
    const hetrun_node *node; /**< the mapping (for locations of its keys) */
    hetrun_diags *diags;
    int *error_count; /**< incremented by hetrun_check_error (may be NULL) */
} hetrun_check_ctx;

struct hetrun_schema {
    const char *name; /**< e.g. "gemm", "report" */
    size_t size;      /**< sizeof the struct the fields fill */
    const hetrun_field *fields;
    size_t field_count;
    /** (optional) checks that involve several fields ("conflicting options"); reports
     *  through hetrun_check_error(). Called only when every field parsed. */
    void (*check)(const void *obj, const hetrun_check_ctx *ctx);
};

/**
 * Fills `obj` (zeroed by the caller, `schema->size` bytes) from the mapping `node`.
 * Every problem goes to `diags`; returns the number of errors added (0: valid).
 */
int hetrun_schema_apply(const hetrun_schema *schema, const hetrun_node *node, const char *file,
                        const char *path, void *obj, hetrun_diags *diags);
/** Frees what apply allocated inside `obj` (strings, lists, nested objects); not `obj`. */
void hetrun_schema_free(const hetrun_schema *schema, void *obj);
/** Reports a cross-field error at key `key` of the mapping in `ctx` (or the map itself). */
void hetrun_check_error(const hetrun_check_ctx *ctx, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/**
 * Parses one value `node` for field `f` into `dst` (the field's storage, i.e. obj +
 * f->offset), as hetrun_schema_apply does for a key, but never as a sweep. `path` is the
 * value's key path. Returns the number of errors added to `diags`.
 */
int hetrun_field_parse(const hetrun_field *f, const hetrun_node *node, const char *file,
                       const char *path, void *dst, hetrun_diags *diags);
/** Frees what hetrun_field_parse allocated in `dst` and zeroes it. */
void hetrun_field_free(const hetrun_field *f, void *dst);
/** True for field types that hold one scalar value (the only types that can be swept). */
int hetrun_field_is_scalar(const hetrun_field *f);
/** The field called `key` in `schema`, or NULL. */
const hetrun_field *hetrun_schema_field(const hetrun_schema *schema, const char *key);
/**
 * The candidate closest to `word` by edit distance (case-insensitive), when close
 * enough to be a likely typo; NULL otherwise. Used for "did you mean" hints.
 */
const char *hetrun_did_you_mean(const char *word, const char *const *candidates, size_t n);
/** Human name of a field type ("an integer", "a size like 16GiB", ...) for messages/docs. */
const char *hetrun_field_type_name(hetrun_field_type type);

#endif
