/**
 * @file launcher/loader/probe.h
 * @brief A backend module opened in a forked child, never in this process: a module that
 *        crashes, hangs, calls exit() or prints to stdout in its init cannot take the
 *        caller with it, and a vendor runtime is never started before its visibility
 *        variable is set (see placement.h).
 *
 * The child reports each step it reaches and the module's table header (ABI version,
 * ops->name, ops->version) through a pipe as soon as the entry symbol returns, so a crash
 * or hang in init is still reported with the module's path, ABI and version.
 */
#ifndef HETRUN_LOADER_PROBE_H
#define HETRUN_LOADER_PROBE_H

#include <stddef.h>
#include <stdint.h>

#include "hetrun/backend.h"

/** One device reported by a backend probe. */
typedef struct hetrun_probe_device {
    hetrun_device_info info;
    int index;
} hetrun_probe_device;

/** How a probe ended. */
typedef enum hetrun_probe_outcome {
    HETRUN_PROBE_LOADED = 0,      /**< opened, init ok, devices listed */
    HETRUN_PROBE_UNAVAILABLE = 1, /**< no driver, no device, runtime library missing */
    HETRUN_PROBE_REFUSED = 2,     /**< broken module: dlopen, entry, ABI, table, name, NULL
                                       function, init or device query error */
    HETRUN_PROBE_CRASHED = 3,     /**< the child died of a signal (SIGSEGV in init...) */
    HETRUN_PROBE_HUNG = 4,        /**< no answer within the time limit; the child was killed */
    HETRUN_PROBE_EXITED = 5,      /**< the module ended the process (exit() in init...) */
    HETRUN_PROBE_NOT_FOUND = 6,   /**< hetrun_probe_backend: no module of that name */
    HETRUN_PROBE_ERROR = 7        /**< the probe itself failed (fork, pipe, memory) */
} hetrun_probe_outcome;

/** What to ask besides the device list. Zero-initialised means the defaults. */
typedef struct hetrun_probe_options {
    double timeout_s; /**< <= 0: hetrun_probe_default_timeout() */
    const char *name; /**< the name ops->name must equal; NULL: from the file name */
    /** Descriptors asked with op_supported on device `device` (opened in the child). */
    const hetrun_op_desc *ops;
    int nops;
    int device;
} hetrun_probe_options;

/** One op_supported answer. */
typedef struct hetrun_probe_op {
    int32_t status;   /**< HETRUN_OK supported, HETRUN_ERR_UNSUPPORTED not, other: error */
    char reason[256]; /**< last_error() when not HETRUN_OK */
} hetrun_probe_op;

/** Everything a probe learned. Free with hetrun_probe_result_free. */
typedef struct hetrun_probe_result {
    hetrun_probe_outcome outcome;
    char name[64];   /**< the name the module was looked for as */
    char path[4096]; /**< the module file */
    char stage[32];  /**< the last step the child reached: "dlopen", "entry", "checks",
                          "init", "device_count", "device_info", "device_open",
                          "op_supported", "done" */
    int table_read;  /**< 1 when the fields below came from the module's ops table */
    uint32_t abi_major, abi_minor, struct_size;
    char ops_name[64], version[64];
    int collectives;  /**< 1 when the table sets the collective group */
    int signal;       /**< CRASHED: the signal number */
    int exit_status;  /**< EXITED: the status */
    double elapsed_s; /**< wall time of the probe */
    double timeout_s; /**< the limit it ran under */
    /** One line for humans: path, ABI, version, what happened and where (the module's own
     *  message for REFUSED/UNAVAILABLE). "" when LOADED. */
    char reason[2048];
    int device_count;
    hetrun_probe_device *devices; /**< device_count entries */
    hetrun_probe_op *ops;         /**< options.nops answers; NULL when not asked or when the
                                       device could not be opened (reason then says why) */
} hetrun_probe_result;

/**
 * Probes the module file at `path` in a forked child under a time limit: dlopen, ABI and
 * table checks, init, device_count, device_info of every device and, when `opt->nops` > 0,
 * device_open(opt->device) and op_supported for each descriptor. Never crashes or hangs
 * the caller. Returns r->outcome; `opt` may be NULL.
 */
hetrun_probe_outcome hetrun_probe_module(const char *path, const hetrun_probe_options *opt,
                                         hetrun_probe_result *r);
/**
 * Probes `n` modules at once (all children run concurrently, each under its own limit):
 * `results[i]` for `paths[i]` with `opts[i]` (`opts` may be NULL: defaults for all). So n
 * hung modules cost one time limit, not n.
 */
void hetrun_probe_modules(size_t n, const char *const *paths, const hetrun_probe_options *opts,
                          hetrun_probe_result *results);
void hetrun_probe_result_free(hetrun_probe_result *r);

/** Short name of an outcome: "loaded", "unavailable", "refused", "crashed", "hung",
 *  "exited", "not found", "error". */
const char *hetrun_probe_outcome_name(hetrun_probe_outcome outcome);
/** The module's identity for messages: "ABI 1.1, version 0.3" or "ABI and version unknown
 *  (the ops table was not read)". */
void hetrun_probe_identity(const hetrun_probe_result *r, char *out, size_t len);

/**
 * A forked child opens the backend called `backend` (found with hetrun_loader_find) and
 * lists its devices. Returns 0 (free `*devs` with free()), 1 when the module is
 * unavailable or not found (reason in `why`), -1 on error (reason in `why`, naming the
 * module's path, ABI and version).
 */
int hetrun_probe_backend(const char *backend, hetrun_probe_device **devs, int *ndevs, char *why,
                         size_t whylen);

/** The limit a probe gets by default: the last hetrun_probe_set_timeout, else
 *  HETRUN_PROBE_TIMEOUT (seconds), else 5 s. */
double hetrun_probe_default_timeout(void);
/** Bounds each probe; seconds <= 0 leaves it unchanged. */
void hetrun_probe_set_timeout(double seconds);

#endif
