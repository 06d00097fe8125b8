/**
 * @file launcher/spec/spec.h
 * @brief Reading a job spec file: YAML with hard limits -> node tree -> schema -> job.
 */
#ifndef HETRUN_SPEC_SPEC_H
#define HETRUN_SPEC_SPEC_H

#include "diag.h"
#include "job.h"
#include "node.h"

/** Hard limits on hostile input (documented in docs/jobspec.md). */
#define HETRUN_SPEC_MAX_BYTES (1u << 20) /**< 1 MiB file */
#define HETRUN_SPEC_MAX_DEPTH 64         /**< nesting depth */
#define HETRUN_SPEC_MAX_NODES 100000     /**< nodes in the document */
#define HETRUN_SPEC_MAX_SCALAR 4096      /**< bytes in one scalar */
#ifndef HETRUN_SPEC_MAX_POINTS
#define HETRUN_SPEC_MAX_POINTS                                                                     \
    10000 /**< workload points after sweep expansion (the fuzz                                     \
               build lowers it to spend its time elsewhere) */
#endif

/**
 * Parses `len` bytes of YAML into a node tree. Errors (syntax, limits, aliases,
 * multiple documents, tabs, NUL, invalid UTF-8, unset ${VAR}) go to `diags` with
 * `file` as the location name. Returns NULL when any error was added.
 */
hetrun_node *hetrun_yaml_parse(const char *file, const unsigned char *bytes, size_t len,
                               hetrun_diags *diags);

/**
 * Reads and validates the spec at `path` against the workload types in `types` (an
 * array ending with a NULL name; workloads/workload.h has this build's registry and
 * hetrun_spec_load, which passes it). On success returns 0 and sets `*job` (free with
 * hetrun_job_free); on any error returns the error count (> 0), with every error in
 * `diags`, or -1 when the file cannot be read (also in diags). Needs no MPI, no backends.
 */
int hetrun_spec_read(const char *path, const hetrun_workload_schema *types, hetrun_job **job,
                     hetrun_diags *diags);

/** Same, from memory (fuzzing and tests); `name` is used in locations. */
int hetrun_spec_read_bytes(const char *name, const unsigned char *bytes, size_t len,
                           const hetrun_workload_schema *types, hetrun_job **job,
                           hetrun_diags *diags);

/** Frees a job from hetrun_spec_load (NULL is fine). */
void hetrun_job_free(hetrun_job *job);

/** The schema of the top-level keys (`workloads` is read separately, item by item). */
const hetrun_schema *hetrun_spec_top_schema(void);
/** Every fixed schema table of the spec (top level and its sections), NULL-terminated;
 *  workload types are passed in (hetrun_spec_read). Used by docs tests. */
const hetrun_schema *const *hetrun_spec_schemas(void);

#endif
