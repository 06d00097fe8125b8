/**
 * @file launcher/conform/conform.h
 * @brief `hetrun conform`: a backend's certificate. Every check group runs in a forked
 *        child that opens the module itself and sends fixed-size records back through a
 *        pipe, so a module that crashes or hangs in one check fails that check (named, with
 *        the signal or the time limit) and the tool goes on with the next.
 */
#ifndef HETRUN_CONFORM_CONFORM_H
#define HETRUN_CONFORM_CONFORM_H

#include <stdbool.h>
#include <stdint.h>

#include "hetrun/backend.h"
#include "loader/loader.h"

/** What a record carries. */
typedef enum conform_rec_type {
    CONFORM_REC_MODULE = 0, /**< module facts: version, ABI, device count */
    CONFORM_REC_DEVICE,     /**< one device's info */
    CONFORM_REC_OP,         /**< one op x dtype pair on one device */
    CONFORM_REC_CHECK,      /**< one contract check on one device (-1: the module) */
    CONFORM_REC_LOG,        /**< one failure line, printed as it comes */
    CONFORM_REC_DONE        /**< the group body returned (sent last by the child itself) */
} conform_rec_type;

typedef enum conform_status {
    CONFORM_PASS = 0,
    CONFORM_FAIL = 1,
    CONFORM_SKIP = 2 /**< not applicable here (no mpirun, module of an older ABI minor) */
} conform_status;

/** One result, written by a child with one write() per record (the layout is this binary's). */
typedef struct conform_record {
    int32_t type; /**< ::conform_rec_type */
    int32_t device;
    int32_t status;               /**< ::conform_status (CHECK, OP) */
    int32_t op, dtype, out_dtype; /**< OP */
    int32_t pass, fail, unsup;    /**< OP: cases; MODULE: abi_major, abi_minor, device count */
    double max_err, bound;        /**< OP: the case with the largest error / bound ratio */
    char name[64];                /**< CHECK: check name; MODULE: module name; DEVICE: name */
    char version[64];             /**< MODULE: module version; DEVICE: vendor */
    char extra[128];              /**< DEVICE: driver version and PCI address */
    char detail[1024];            /**< CHECK: what was seen; LOG: the line */
} conform_record;

/** Options of one run, shared by every group. */
typedef struct conform_opts {
    const char *backend;
    const char *only_op, *only_dtype; /**< NULL: all */
    bool quick, verbose;
    unsigned checks;       /**< CONFORM_CHECK_* bits to run */
    char exe_dir[4096];    /**< folder of this executable (for `hetrun` in the train check) */
    char module_dir[4096]; /**< folder of the module (HETRUN_BACKEND_PATH of the train run) */
} conform_opts;

/** Check groups (one child each, per device unless noted). */
#define CONFORM_CHECK_OPS 0x01u            /**< op x dtype numerics, in-place, beta 0 */
#define CONFORM_CHECK_INVALID 0x02u        /**< invalid descriptors -> INVALID */
#define CONFORM_CHECK_COPY 0x04u           /**< host buffers: h2d reuse, d2h complete */
#define CONFORM_CHECK_EVENTS 0x08u         /**< elapsed >= 0, monotonic, re-recording */
#define CONFORM_CHECK_FREE 0x10u           /**< mem_free with work pending; no leak */
#define CONFORM_CHECK_HANDLES 0x20u        /**< NULL handles, out-of-range offsets, indices */
#define CONFORM_CHECK_CONCURRENCY 0x40u    /**< two queues on two threads at once */
#define CONFORM_CHECK_TRAIN 0x80u          /**< 2-rank data-parallel training (once) */
#define CONFORM_CHECK_TELEMETRY 0x100u     /**< energy and memory peak, when set */
#define CONFORM_CHECK_CONST_OPERAND 0x200u /**< kept copies of a CONST_B operand (ABI 1.3) */
#define CONFORM_CHECK_ALL 0x3ffu

/** Names of the check groups for --checks, in bit order; NULL-terminated. */
extern const char *const conform_group_names[];

/** A GEMM workspace, grown as the module asks (one per thread that runs GEMMs). */
typedef struct conform_ws {
    hetrun_buffer *buf;
    uint64_t bytes;
} conform_ws;

/** An opened module, device and queue inside a child. */
typedef struct conform_dev {
    hetrun_backend_module module;
    hetrun_device *dev;
    hetrun_queue *q;
    conform_ws ws; /**< for conform_gemm on this thread; freed by conform_dev_close */
    int index;
} conform_dev;

/** Opens `backend`'s device `index` (index < 0: the module only). Returns 0, 77 when
 *  unavailable, 4 when not found or refused, 1 when the device fails; `why` says which. */
int conform_dev_open(conform_dev *d, const char *backend, int index, char *why, size_t len);
/** conform_dev_open for a check group's child: a failure is sent as a failed `check`. */
int conform_dev_open_check(conform_dev *d, const conform_opts *o, int index, const char *check);
void conform_dev_close(conform_dev *d);
/** Enqueues the fill op: `count` fp32 elements at `t` set to `value`. */
hetrun_status conform_fill(conform_dev *d, hetrun_tensor t, int64_t count, float value);
/** Enqueues C = A B on `q` (fp32, n x n, packed, beta 0): work that takes a while, with
 *  the workspace the module asks for from `ws`. */
hetrun_status conform_gemm(conform_dev *d, hetrun_queue *q, hetrun_buffer *a, hetrun_buffer *b,
                           hetrun_buffer *c, int64_t n, conform_ws *ws);
/** The workspace tensor for `desc` on `q` (NULL buffer when it needs none), `ws` grown to the
 *  size the module asks for. */
hetrun_status conform_ws_get(conform_dev *d, hetrun_queue *q, conform_ws *ws,
                             const hetrun_op_desc *desc, hetrun_tensor *out);

/** Sends one record to the parent (the child's end of the pipe). */
void conform_emit(const conform_record *r);
/** Sends a CHECK record. */
void conform_emit_check(int device, const char *name, conform_status st, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/** Sends a LOG record (one case, printed by the parent at once). */
void conform_emit_log(int device, conform_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/** A group body, run in a child with the record pipe set up; returns the child's exit code. */
typedef int (*conform_group_fn)(const conform_opts *o, int device);

/** Results of a run, grown by conform_isolate. */
typedef struct conform_results {
    conform_record *items;
    int count, cap;
} conform_results;

/**
 * Runs `fn(o, device)` in a forked child with a limit of `limit_s` seconds, appending the
 * records it sends to `res`. A child that crashes, exits non-zero without saying why, or
 * overruns the limit adds a failed CHECK record named `group` naming the signal or the
 * limit. Returns the child's exit code (128 + signal when killed).
 */
int conform_isolate(const char *group, conform_group_fn fn, const conform_opts *o, int device,
                    double limit_s, conform_results *res);

/* The groups (one file each). */
int conform_group_module(const conform_opts *o, int device); /**< module + device records */
int conform_group_ops(const conform_opts *o, int device);
int conform_group_invalid(const conform_opts *o, int device);
int conform_group_copy(const conform_opts *o, int device);
int conform_group_events(const conform_opts *o, int device);
int conform_group_free(const conform_opts *o, int device);
int conform_group_leak(const conform_opts *o, int device);
int conform_group_handles(const conform_opts *o, int device);
int conform_group_concurrency(const conform_opts *o, int device);
int conform_group_train(const conform_opts *o, int device);
int conform_group_telemetry(const conform_opts *o, int device);
int conform_group_const_operand(const conform_opts *o, int device);

/** Prints the certificate as a table (stdout) or JSON (to `path`, "-" for stdout); `verdict`
 *  is "pass", "fail" or "nothing tested".
 *  Returns 0, or -1 when the file cannot be written (message on stderr). */
void conform_print_table(const conform_opts *o, const conform_results *res, const char *verdict);
int conform_write_json(const conform_opts *o, const conform_results *res, const char *verdict,
                       const char *path);

#endif
