/**
 * @file launcher/spec/yaml_reader.c
 * @brief YAML bytes -> hetrun_node tree through libyaml's event API, with hard limits.
 *
 * The event API (not yaml_parser_load) is used so that nothing is ever expanded or built
 * past a limit: aliases are refused rather than resolved, and depth, node count and
 * scalar length are checked as events arrive, so hostile input fails fast in bounded
 * memory.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "spec.h"

/** Total bytes of scalar text after ${VAR} expansion (bounds expansion blow-up). */
#define HETRUN_SPEC_MAX_TOTAL_SCALAR (8u << 20)

const hetrun_node *hetrun_node_get(const hetrun_node *map, const char *key) {
    if (!map || map->kind != HETRUN_NODE_MAP || !key) return NULL;
    for (size_t i = 0; i < map->count; i++)
        if (map->keys[i] && map->keys[i]->kind == HETRUN_NODE_SCALAR &&
            strcmp(map->keys[i]->scalar, key) == 0)
            return map->values[i];
    return NULL;
}

void hetrun_node_free(hetrun_node *node) {
    /* Iterative over siblings would be nicer, but depth is bounded by HETRUN_SPEC_MAX_DEPTH,
     * so recursion is safe. */
    if (!node) return;
    for (size_t i = 0; i < node->count; i++) {
        if (node->keys) hetrun_node_free(node->keys[i]);
        if (node->values) hetrun_node_free(node->values[i]);
    }
    free(node->keys);
    free(node->values);
    free(node->scalar);
    free(node);
}

/* ---- pre-scan: NUL bytes, invalid UTF-8, tabs in indentation ---- */

/** Length of the valid UTF-8 sequence at p (1..4), or 0 when invalid. */
static size_t utf8_seq_len(const unsigned char *p, size_t avail) {
    unsigned c = p[0];
    if (c < 0x80) return 1;
    size_t n;
    uint32_t cp;
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
        cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (avail < n) return 0;
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (p[i] & 0x3F);
    }
    /* Overlong forms, UTF-16 surrogates and values past U+10FFFF are invalid. */
    if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
        (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return n;
}

static int prescan(const char *file, const unsigned char *b, size_t len, hetrun_diags *diags) {
    int errors = 0;
    bool seen_nul = false, seen_utf8 = false, seen_tab = false;
    int line = 1, col = 1;
    bool in_indent = true;
    size_t i = 0;
    /* A UTF-8 byte order mark is allowed and skipped. */
    if (len >= 3 && b[0] == 0xEF && b[1] == 0xBB && b[2] == 0xBF) i = 3;
    while (i < len) {
        unsigned char c = b[i];
        if (c == 0 && !seen_nul) {
            hetrun_diags_add(diags, file, line, col, "",
                             "NUL byte in the file (a job spec is UTF-8 text)");
            seen_nul = true;
            errors++;
        }
        size_t n = utf8_seq_len(b + i, len - i);
        if (n == 0) {
            if (!seen_utf8) {
                hetrun_diags_add(diags, file, line, col, "",
                                 "invalid UTF-8 (byte 0x%02X); the spec must be UTF-8 text", c);
                seen_utf8 = true;
                errors++;
            }
            n = 1;
        }
        if (c == '\n') {
            line++;
            col = 1;
            in_indent = true;
        } else {
            if (c == '\t' && in_indent && !seen_tab) {
                hetrun_diags_add(diags, file, line, col, "",
                                 "tab character in indentation; YAML indentation must use "
                                 "spaces");
                seen_tab = true;
                errors++;
            } else if (c != ' ' && c != '\t' && c != '\r') {
                in_indent = false;
            }
            col++;
        }
        i += n;
    }
    return errors;
}

/* ---- ${VAR} expansion ---- */

/**
 * Expands ${VAR}, ${VAR:-default} and $$ in `in`. Returns a new string, or NULL with the
 * reason in `err`.
 */
static char *expand_env(const char *in, size_t len, char *err, size_t errlen) {
    size_t cap = len + 1, n = 0;
    char *out = malloc(cap);
    if (!out) {
        snprintf(err, errlen, "out of memory expanding a scalar of %zu bytes", len);
        return NULL;
    }
#define PUT(src, cnt)                                                                              \
    do {                                                                                           \
        size_t c_ = (cnt);                                                                         \
        if (n + c_ > HETRUN_SPEC_MAX_SCALAR) {                                                     \
            snprintf(err, errlen, "value is longer than %u bytes after ${VAR} expansion",          \
                     (unsigned)HETRUN_SPEC_MAX_SCALAR);                                            \
            free(out);                                                                             \
            return NULL;                                                                           \
        }                                                                                          \
        if (n + c_ + 1 > cap) {                                                                    \
            size_t nc_ = (n + c_ + 1) * 2;                                                         \
            char *p_ = realloc(out, nc_);                                                          \
            if (!p_) {                                                                             \
                free(out);                                                                         \
                snprintf(err, errlen, "out of memory expanding a scalar");                         \
                return NULL;                                                                       \
            }                                                                                      \
            out = p_;                                                                              \
            cap = nc_;                                                                             \
        }                                                                                          \
        memcpy(out + n, (src), c_);                                                                \
        n += c_;                                                                                   \
    } while (0)
    size_t i = 0;
    while (i < len) {
        if (in[i] != '$') {
            PUT(in + i, 1);
            i++;
            continue;
        }
        if (i + 1 < len && in[i + 1] == '$') { /* $$ -> $ */
            PUT("$", 1);
            i += 2;
            continue;
        }
        if (i + 1 >= len || in[i + 1] != '{') { /* a lone $ is literal */
            PUT("$", 1);
            i++;
            continue;
        }
        size_t start = i + 2, j = start;
        while (j < len &&
               (in[j] == '_' || (in[j] >= 'A' && in[j] <= 'Z') || (in[j] >= 'a' && in[j] <= 'z') ||
                (j > start && in[j] >= '0' && in[j] <= '9')))
            j++;
        size_t name_len = j - start;
        if (name_len == 0 || name_len > 255) {
            snprintf(err, errlen,
                     "invalid environment reference at offset %zu: expected ${NAME} with NAME "
                     "made of letters, digits and '_' (write $$ for a literal $)",
                     i);
            free(out);
            return NULL;
        }
        char name[256];
        memcpy(name, in + start, name_len);
        name[name_len] = '\0';
        const char *def = NULL;
        size_t def_len = 0;
        if (j + 1 < len && in[j] == ':' && in[j + 1] == '-') {
            size_t d = j + 2, e = d;
            while (e < len && in[e] != '}')
                e++;
            def = in + d;
            def_len = e - d;
            j = e;
        }
        if (j >= len || in[j] != '}') {
            snprintf(err, errlen, "unterminated environment reference ${%s: missing '}'", name);
            free(out);
            return NULL;
        }
        const char *val = getenv(name);
        if (def && (!val || !*val)) {
            PUT(def, def_len);
        } else if (val) {
            PUT(val, strlen(val));
        } else {
            snprintf(err, errlen,
                     "environment variable %s is not set (use ${%s:-default} to give a default)",
                     name, name);
            free(out);
            return NULL;
        }
        i = j + 1;
    }
#undef PUT
    out[n] = '\0';
    return out;
}

/* ---- the event loop ---- */

typedef struct frame {
    hetrun_node *node;
    size_t cap;
    bool have_key; /* MAP: a key was read, its value is next */
} frame;

typedef struct reader {
    const char *file;
    hetrun_diags *diags;
    int errors;
    size_t nodes;
    size_t scalar_bytes;
    frame stack[HETRUN_SPEC_MAX_DEPTH + 2];
    int depth;
    hetrun_node *root;
} reader;

static hetrun_node *new_node(hetrun_node_kind kind, yaml_mark_t mark) {
    hetrun_node *n = calloc(1, sizeof *n);
    if (!n) return NULL;
    n->kind = kind;
    n->line = (int)mark.line + 1;
    n->column = (int)mark.column + 1;
    return n;
}

/** Attaches `child` to the open container (or makes it the root). 0 ok, -1 out of memory. */
static int attach(reader *r, hetrun_node *child) {
    if (r->depth == 0) {
        if (r->root) hetrun_node_free(r->root);
        r->root = child;
        return 0;
    }
    frame *f = &r->stack[r->depth - 1];
    hetrun_node *p = f->node;
    if (p->kind == HETRUN_NODE_MAP && f->have_key) {
        p->values[p->count++] = child;
        f->have_key = false;
        return 0;
    }
    if (p->count == f->cap) {
        size_t cap = f->cap ? f->cap * 2 : 4;
        hetrun_node **v = realloc(p->values, cap * sizeof *v);
        if (!v) return -1;
        p->values = v;
        if (p->kind == HETRUN_NODE_MAP) {
            hetrun_node **k = realloc(p->keys, cap * sizeof *k);
            if (!k) return -1;
            p->keys = k;
        }
        f->cap = cap;
    }
    if (p->kind == HETRUN_NODE_MAP) {
        p->keys[p->count] = child;
        p->values[p->count] = NULL;
        f->have_key = true;
        if (child->kind != HETRUN_NODE_SCALAR) {
            hetrun_diags_add(r->diags, r->file, child->line, child->column, "",
                             "mapping keys must be plain names, not a %s",
                             child->kind == HETRUN_NODE_MAP ? "mapping" : "sequence");
            r->errors++;
        }
    } else {
        p->values[p->count++] = child;
    }
    return 0;
}

static bool is_key_position(const reader *r) {
    if (r->depth == 0) return false;
    const frame *f = &r->stack[r->depth - 1];
    return f->node->kind == HETRUN_NODE_MAP && !f->have_key;
}

static void err_at(reader *r, yaml_mark_t m, const char *msg) {
    hetrun_diags_add(r->diags, r->file, (int)m.line + 1, (int)m.column + 1, "", "%s", msg);
    r->errors++;
}

/** Refuses anchors and tags on a node event (both are "clever YAML" a spec never needs). */
static void check_anchor_tag(reader *r, yaml_mark_t m, const yaml_char_t *anchor,
                             const yaml_char_t *tag, int implicit) {
    char msg[512];
    if (anchor) {
        snprintf(msg, sizeof msg,
                 "anchor &%.64s is not allowed: anchors and aliases are refused in job specs "
                 "(they can expand a small file into a huge one); repeat the value instead",
                 (const char *)anchor);
        err_at(r, m, msg);
    }
    if (tag && !implicit) {
        snprintf(msg, sizeof msg,
                 "YAML tag %.64s is not allowed in job specs; quote a value to make it a string",
                 (const char *)tag);
        err_at(r, m, msg);
    }
}

hetrun_node *hetrun_yaml_parse(const char *file, const unsigned char *bytes, size_t len,
                               hetrun_diags *diags) {
    if (len > HETRUN_SPEC_MAX_BYTES) {
        hetrun_diags_add(diags, file, 0, 0, "", "file is %zu bytes; the limit is %u bytes (1 MiB)",
                         len, (unsigned)HETRUN_SPEC_MAX_BYTES);
        return NULL;
    }
    if (prescan(file, bytes, len, diags) > 0) return NULL;

    reader r;
    memset(&r, 0, sizeof r);
    r.file = file;
    r.diags = diags;

    yaml_parser_t parser;
    if (!yaml_parser_initialize(&parser)) {
        hetrun_diags_add(diags, file, 0, 0, "", "yaml_parser_initialize failed (out of memory)");
        return NULL;
    }
    /* libyaml keeps a BOM when the encoding is forced, so skip it here. */
    if (len >= 3 && bytes[0] == 0xEF && bytes[1] == 0xBB && bytes[2] == 0xBF) {
        bytes += 3;
        len -= 3;
    }
    yaml_parser_set_input_string(&parser, bytes, len);
    yaml_parser_set_encoding(&parser, YAML_UTF8_ENCODING);

    int documents = 0;
    bool done = false, fatal = false;
    char msg[1024];
    while (!done && !fatal) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&parser, &ev)) {
            yaml_mark_t m = parser.problem_mark;
            if (parser.context)
                snprintf(msg, sizeof msg, "YAML syntax error: %s %s (line %d)", parser.problem,
                         parser.context, (int)parser.context_mark.line + 1);
            else
                snprintf(msg, sizeof msg, "YAML syntax error: %s",
                         parser.problem ? parser.problem : "unknown problem");
            err_at(&r, m, msg);
            fatal = true;
            break;
        }
        hetrun_node *node = NULL;
        switch (ev.type) {
        case YAML_STREAM_END_EVENT: done = true; break;
        case YAML_DOCUMENT_START_EVENT:
            if (++documents > 1) {
                err_at(&r, ev.start_mark,
                       "a second YAML document ('---'); a job spec is exactly one document");
                fatal = true;
            }
            break;
        case YAML_ALIAS_EVENT:
            snprintf(msg, sizeof msg,
                     "alias *%.64s is not allowed: anchors and aliases are refused in job specs "
                     "(they can expand a small file into a huge one, 'billion laughs')",
                     (const char *)ev.data.alias.anchor);
            err_at(&r, ev.start_mark, msg);
            /* A placeholder keeps the tree's shape so later events still attach. */
            node = new_node(HETRUN_NODE_SCALAR, ev.start_mark);
            if (node) node->scalar = calloc(1, 1);
            break;
        case YAML_SCALAR_EVENT: {
            check_anchor_tag(&r, ev.start_mark, ev.data.scalar.anchor, ev.data.scalar.tag,
                             ev.data.scalar.plain_implicit || ev.data.scalar.quoted_implicit);
            size_t slen = ev.data.scalar.length;
            const char *sval = (const char *)ev.data.scalar.value;
            bool key = is_key_position(&r);
            node = new_node(HETRUN_NODE_SCALAR, ev.start_mark);
            if (!node) break;
            node->quoted = ev.data.scalar.style != YAML_PLAIN_SCALAR_STYLE;
            if (slen > HETRUN_SPEC_MAX_SCALAR) {
                snprintf(msg, sizeof msg, "value is %zu bytes; the limit is %u bytes", slen,
                         (unsigned)HETRUN_SPEC_MAX_SCALAR);
                err_at(&r, ev.start_mark, msg);
                node->scalar = calloc(1, 1);
            } else if (memchr(sval, 0, slen)) {
                err_at(&r, ev.start_mark, "NUL character (\\0) in a string value");
                node->scalar = calloc(1, 1);
            } else if (key) {
                /* Keys are fixed names: never expanded. */
                node->scalar = malloc(slen + 1);
                if (node->scalar) {
                    memcpy(node->scalar, sval, slen);
                    node->scalar[slen] = '\0';
                }
            } else {
                char why[512];
                node->scalar = expand_env(sval, slen, why, sizeof why);
                if (!node->scalar) {
                    err_at(&r, ev.start_mark, why);
                    node->scalar = calloc(1, 1);
                } else if (node->quoted && memchr(sval, '$', slen) &&
                           strcmp(node->scalar, sval) != 0) {
                    /* Quotes around a ${VAR} reference only protect YAML syntax (flow
                     * collections): the value is typed by its expanded text, so
                     * m: "${M}" is an integer. */
                    node->quoted = false;
                }
            }
            if (node->scalar) {
                r.scalar_bytes += strlen(node->scalar);
                if (r.scalar_bytes > HETRUN_SPEC_MAX_TOTAL_SCALAR) {
                    snprintf(msg, sizeof msg,
                             "values total more than %u bytes after ${VAR} expansion",
                             (unsigned)HETRUN_SPEC_MAX_TOTAL_SCALAR);
                    err_at(&r, ev.start_mark, msg);
                    fatal = true;
                }
            }
            break;
        }
        case YAML_SEQUENCE_START_EVENT:
        case YAML_MAPPING_START_EVENT: {
            bool is_map = ev.type == YAML_MAPPING_START_EVENT;
            if (is_map)
                check_anchor_tag(&r, ev.start_mark, ev.data.mapping_start.anchor,
                                 ev.data.mapping_start.tag, ev.data.mapping_start.implicit);
            else
                check_anchor_tag(&r, ev.start_mark, ev.data.sequence_start.anchor,
                                 ev.data.sequence_start.tag, ev.data.sequence_start.implicit);
            if (r.depth >= HETRUN_SPEC_MAX_DEPTH) {
                snprintf(msg, sizeof msg, "nesting is deeper than %d levels",
                         HETRUN_SPEC_MAX_DEPTH);
                err_at(&r, ev.start_mark, msg);
                fatal = true;
                break;
            }
            hetrun_node *c = new_node(is_map ? HETRUN_NODE_MAP : HETRUN_NODE_SEQ, ev.start_mark);
            if (!c || attach(&r, c) != 0) {
                hetrun_node_free(c); /* attach fails before linking c anywhere */
                err_at(&r, ev.start_mark, "out of memory building the document");
                fatal = true;
                break;
            }
            if (++r.nodes > HETRUN_SPEC_MAX_NODES) {
                snprintf(msg, sizeof msg, "document has more than %d nodes", HETRUN_SPEC_MAX_NODES);
                err_at(&r, ev.start_mark, msg);
                fatal = true;
                break;
            }
            r.stack[r.depth].node = c;
            r.stack[r.depth].cap = 0;
            r.stack[r.depth].have_key = false;
            r.depth++;
            break;
        }
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT:
            if (r.depth > 0) r.depth--;
            break;
        default: break;
        }
        if (node) {
            if (!node->scalar || attach(&r, node) != 0) {
                hetrun_node_free(node);
                err_at(&r, ev.start_mark, "out of memory building the document");
                fatal = true;
            } else if (++r.nodes > HETRUN_SPEC_MAX_NODES) {
                snprintf(msg, sizeof msg, "document has more than %d nodes", HETRUN_SPEC_MAX_NODES);
                err_at(&r, ev.start_mark, msg);
                fatal = true;
            }
        } else if (ev.type == YAML_SCALAR_EVENT || ev.type == YAML_ALIAS_EVENT) {
            err_at(&r, ev.start_mark, "out of memory building the document");
            fatal = true;
        }
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&parser);
    /* After an early stop, a key whose value never came is not counted in its map: free
     * it here, since hetrun_node_free only walks complete pairs. Innermost first: an open
     * container can itself be the pending key of its parent (`? [a, ...`). */
    for (int i = r.depth - 1; i >= 0; i--) {
        frame *f = &r.stack[i];
        if (f->node->kind == HETRUN_NODE_MAP && f->have_key) {
            hetrun_node_free(f->node->keys[f->node->count]);
            f->node->keys[f->node->count] = NULL;
            f->have_key = false;
        }
    }

    if (r.errors == 0 && !r.root)
        hetrun_diags_add(diags, file, 1, 1, "",
                         "the spec is empty: expected a mapping with "
                         "'version' and 'workloads'");
    if (r.errors > 0 || !r.root) {
        hetrun_node_free(r.root);
        return NULL;
    }
    return r.root;
}
