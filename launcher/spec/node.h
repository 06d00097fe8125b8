/**
 * @file launcher/spec/node.h
 * @brief The YAML document as a tree of nodes that remember where they came from.
 *
 * Built by the spec reader (libyaml events, with hard limits on size, depth, node count
 * and scalar length; anchors/aliases rejected), consumed by the schema checker.
 */
#ifndef HETRUN_SPEC_NODE_H
#define HETRUN_SPEC_NODE_H

#include <stdbool.h>
#include <stddef.h>

typedef enum hetrun_node_kind {
    HETRUN_NODE_SCALAR = 0,
    HETRUN_NODE_MAP = 1,
    HETRUN_NODE_SEQ = 2
} hetrun_node_kind;

typedef struct hetrun_node hetrun_node;
struct hetrun_node {
    hetrun_node_kind kind;
    int line;   /**< 1-based line of the node's first character */
    int column; /**< 1-based column */
    /** SCALAR: the text (after ${VAR} expansion), NUL-terminated. */
    char *scalar;
    /** SCALAR: true when written quoted or as a block scalar, so "3" is a string. */
    bool quoted;
    /** MAP: keys[i] (scalar nodes) -> values[i]; SEQ: values[i]. */
    size_t count;
    hetrun_node **keys;
    hetrun_node **values;
};

/** Value of `key` in a MAP node, or NULL. */
const hetrun_node *hetrun_node_get(const hetrun_node *map, const char *key);
/** Frees a node tree. */
void hetrun_node_free(hetrun_node *node);

#endif
