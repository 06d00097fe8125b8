/**
 * @file launcher/util/exitcodes.h
 * @brief The process exit codes, one table (documented in docs/exit-codes.md, tested).
 */
#ifndef HETRUN_UTIL_EXITCODES_H
#define HETRUN_UTIL_EXITCODES_H

enum {
    HETRUN_EXIT_OK = 0,           /**< success; every check passed */
    HETRUN_EXIT_FAILED = 1,       /**< the job ran but failed: a check failed or a runtime
                                       error (device, MPI, I/O); the report says which */
    HETRUN_EXIT_USAGE = 2,        /**< bad command line */
    HETRUN_EXIT_INVALID_SPEC = 3, /**< the job spec is invalid; nothing ran */
    HETRUN_EXIT_BACKEND = 4,      /**< backend/config: no usable backend or device, module
                                       refused, unsupported op, bad topology */
    HETRUN_EXIT_NOTHING = 5,      /**< `conform`: the filters select nothing this module
                                       supports; nothing was tested */
    HETRUN_EXIT_SKIPPED = 77,     /**< `conform`: the backend is unavailable here (no driver,
                                       no device); ctest's skip code */
    HETRUN_EXIT_TIMEOUT = 124,    /**< limits.timeout_s expired */
    HETRUN_EXIT_SIGNAL_BASE = 128 /**< 128 + signal number when killed by a signal */
};

#endif
