/**
 * @file hetrun/backend.h
 * @brief hetrun backend ABI, version 1 (minor 3): the only header a backend module needs.
 *
 * A backend module is a shared object `libhetrun_backend_<name>.so` that exports
 * exactly one symbol, ::HETRUN_BACKEND_ENTRY_SYMBOL, a function returning a pointer
 * to a constant ::hetrun_backend_ops table. The launcher dlopen()s the module,
 * checks the table's ABI major/minor and struct size, then calls through it.
 *
 * ## Compatibility rules
 * - The table starts with `abi_major`, `abi_minor`, `struct_size`. A launcher refuses
 *   a module whose major differs from ::HETRUN_ABI_MAJOR, or whose `struct_size` is
 *   smaller than the size the claimed minor defines.
 * - Members are only ever appended (at the end of a struct that carries its own
 *   `struct_size`). A module built against 1.0 keeps loading in every 1.x launcher.
 * - Every struct that crosses the boundary carries `struct_size`, set by whoever
 *   fills it; readers never touch bytes past it.
 * - The table is flat, its groups marked by comments, rather than one sub-struct per
 *   group (as PaddlePaddle's CustomDevice has): one size field then covers everything,
 *   and appending to any group is the same single rule. The collectives group is all-NULL
 *   or all-set (the loader checks that); the telemetry members are optional one by one, and
 *   so is mem_host_ptr (ABI 1.2).
 *
 * ## Ownership rules
 * - The side that allocates frees: buffers, queues, events, devices and workspace
 *   are created and destroyed through the module's own functions.
 * - Strings returned by the module (`last_error`, names in device info) are owned by
 *   the module and stay valid until the next call on the same thread (last_error)
 *   or until `finalize` (device info).
 * - Pointers the host passes in (descriptors, host memory for copies) are borrowed
 *   for the duration of the call only; copies complete before they return.
 * - Outputs (`*out` parameters) are written only on success.
 *
 * ## Errors
 * Every function returns a ::hetrun_status (0 ok, negative error). On error the module
 * sets a message for `last_error()` that names the cause: the runtime call, its error
 * name, the op, the sizes, the device. `init` returning ::HETRUN_ERR_UNAVAILABLE means
 * "no driver or no device": the launcher skips the module quietly and lists it with
 * the `last_error()` text as the reason.
 *
 * ## Threading
 * `init`/`finalize` are called once per process. Other calls may come from any thread
 * but the launcher serialises calls on one queue. Two queues (of one device) may be driven
 * by two threads at the same time: the module is thread-safe across queues. `thread_bind`
 * (optional) is called on each thread before it uses a device, for runtimes with a
 * per-thread current device.
 *
 * ## The contract `hetrun conform` checks (check names in brackets)
 * - Host memory: `copy_h2d` has taken the data when it returns, also with work still
 *   pending on the queue: the caller overwrites its buffer at once [copy_h2d_reuse].
 *   `copy_d2h` returns when the host buffer holds the data, after all work enqueued before
 *   it on the queue, with no queue_sync [copy_d2h_complete].
 * - Offsets: an op operand's offset is a multiple of its element size (the launcher sends
 *   no other); copies take any byte offset and size [copy_byte_offsets]. A range past the
 *   end of a buffer, or a NULL buffer where one is needed, is ::HETRUN_ERR_INVALID with a
 *   message, never a crash; so are a zero-byte mem_alloc, a device index out of range and
 *   the elapsed time of an event never recorded [invalid_handles].
 * - mem_free: the caller may free a buffer with work still pending on it, on any queue; the
 *   module waits for that work or defers the release until it is done (cudaFree and
 *   clReleaseMemObject do this). The host never has to sync first [mem_free_pending].
 *   Freed memory is given back [mem_free_releases].
 * - beta 0: an output the op reads only when beta (or p[1]) is non-zero is not read at all
 *   when it is 0: it may hold NaN or garbage, and the result must not depend on it (compute
 *   beta C only when beta != 0, never 0 * C) [beta0_no_read].
 * - Aliasing: operands never share memory except where the op table's `may_alias` says so
 *   (docs/ops.md): Y on X (bias_add, act_forward, scale), dX on dY (act_backward,
 *   softmax_backward), Z on X or Y (mul); the module reads each element before writing it
 *   [inplace]. softmax, xent_forward, xent_backward, layernorm, layernorm_forward and
 *   layernorm_backward never get aliased operands: each output is memory of its own,
 *   disjoint from every input and every other output. Fused attention Q, K, V interleave
 *   disjoint elements of one buffer; that is not aliasing.
 * - Events: an elapsed time is finite and >= 0, and an event recorded later on a queue is
 *   never before one recorded earlier. An event may be recorded again: it then stands for
 *   its latest record [events].
 * - device_open: the launcher opens an index at most once per process (until device_close).
 *   A module refuses a second device_open of an open index with ::HETRUN_ERR_INVALID, or
 *   (handles without state, like the cpu backend's) returns the same handle.
 * - Constant operands (ABI 1.3): a GEMM or GEMM_BIAS_ACT carrying ::HETRUN_OP_CONST_B tells the
 *   module that B is read by many calls with the same bytes (inference weights). The module
 *   may keep a copy of B in a layout of its own (packed panels, a converted dtype), made at
 *   the first such call, and use it in later calls with the flag on the same buffer, offset
 *   and shape. It must drop (or refresh) that copy when the buffer's bytes under it change
 *   through the module, by any entry that writes them (copy_h2d or copy_d2d into them, an op
 *   writing them, comm_allreduce on them), and at mem_free [const_operand]. The host in turn
 *   never changes such bytes behind the module's back (through a mem_host_ptr address) while
 *   the flag is in use on them. A module that keeps no copy ignores the flag; the launcher
 *   never sends it to a module older than 1.3.
 * - Optional groups: the collectives are all NULL or all set (the loader refuses a partial
 *   group). The two telemetry members are each optional on their own: a module sets the
 *   ones its device can answer, and a set one returns ::HETRUN_ERR_UNSUPPORTED when the
 *   device cannot tell at run time; a reading covers the whole device or is refused
 *   [telemetry].
 */
#ifndef HETRUN_BACKEND_H
#define HETRUN_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "hetrun/ops.h"

#ifdef __cplusplus
extern "C" {
#endif

/** ABI major: a change here breaks every module. */
#define HETRUN_ABI_MAJOR 1
/** ABI minor: grows when members are appended to a table. */
#define HETRUN_ABI_MINOR 3

/** Name of the one exported entry symbol, as a string for dlsym(). */
#define HETRUN_BACKEND_ENTRY_SYMBOL "hetrun_backend_entry"

/** Mark the entry point visible when building with -fvisibility=hidden. */
#if defined(__GNUC__)
#define HETRUN_BACKEND_EXPORT __attribute__((visibility("default")))
#else
#define HETRUN_BACKEND_EXPORT
#endif

/** Status codes returned by every ABI function. */
typedef enum hetrun_status {
    HETRUN_OK = 0,               /**< success */
    HETRUN_ERR_UNAVAILABLE = -1, /**< no driver / no device (init only: skip quietly) */
    HETRUN_ERR_UNSUPPORTED = -2, /**< op x dtype or feature not supported */
    HETRUN_ERR_INVALID = -3,     /**< invalid argument (sizes, offsets, handles) */
    HETRUN_ERR_NO_MEMORY = -4,   /**< device or host allocation failed */
    HETRUN_ERR_DEVICE = -5,      /**< runtime/driver failure; device may be unusable */
    HETRUN_ERR_DEVICE_LOST = -6, /**< sticky failure: device marked failed, no retry */
    HETRUN_ERR_INTERNAL = -7     /**< bug in the module */
} hetrun_status;

/** Log levels for ::hetrun_host_services::log. */
typedef enum hetrun_log_level {
    HETRUN_LOG_ERROR = 0,
    HETRUN_LOG_WARN = 1,
    HETRUN_LOG_INFO = 2,
    HETRUN_LOG_DEBUG = 3
} hetrun_log_level;

/**
 * Services the launcher passes to `init`, so a module never links against the
 * launcher. The struct is owned by the launcher and outlives the module.
 */
typedef struct hetrun_host_services {
    uint32_t struct_size; /**< sizeof(hetrun_host_services) as the launcher built it */
    uint32_t abi_major;   /**< launcher's ::HETRUN_ABI_MAJOR */
    uint32_t abi_minor;   /**< launcher's ::HETRUN_ABI_MINOR */
    uint32_t reserved0;
    /** Log one line (no trailing newline needed); `backend` is the module name. */
    void (*log)(hetrun_log_level level, const char *backend, const char *message);
    /** Host allocation for module-side host memory the host may later free. */
    void *(*alloc)(size_t bytes);
    /** Frees memory from `alloc`. */
    void (*free)(void *ptr);
    /** Directory the module may use for caches (compiled programs, tuning); may be NULL. */
    const char *cache_dir;
    /** Number of CPU threads this process may use (from its placement); >= 1. */
    int32_t cpu_threads;
    /** Verbosity: the highest ::hetrun_log_level the launcher prints. */
    int32_t log_level;
} hetrun_host_services;

/** Kind of device, for reports and placement. */
typedef enum hetrun_device_kind {
    HETRUN_DEVICE_CPU = 0,
    HETRUN_DEVICE_GPU = 1,
    HETRUN_DEVICE_ACCELERATOR = 2 /**< NPU and other non-GPU accelerators */
} hetrun_device_kind;

/** Maximum dtypes indexable in ::hetrun_device_info::peak_flops. */
#define HETRUN_MAX_DTYPES 8

/**
 * Static facts about one device, filled by `device_info`. Strings are
 * NUL-terminated; an unknown string is empty, an unknown number is 0.
 */
typedef struct hetrun_device_info {
    uint32_t struct_size;    /**< set by the caller to sizeof as it knows it */
    uint32_t kind;           /**< ::hetrun_device_kind */
    char name[128];          /**< marketing name, e.g. "NVIDIA H100 80GB HBM3" */
    char vendor[64];         /**< e.g. "NVIDIA", "Huawei", "Portable Computing Language" */
    char driver_version[64]; /**< runtime/driver version string */
    char uuid[64];           /**< stable device UUID when the runtime has one */
    /** PCI address "dddd:bb:dd.f" (lower-case hex) or empty when the device has none. */
    char pci_bus_id[32];
    char arch[64];            /**< architecture, e.g. "sm_90", "OpenCL C 1.2", "avx512" */
    uint64_t memory_bytes;    /**< total device memory */
    uint64_t max_alloc_bytes; /**< largest single allocation (0: same as memory) */
    uint32_t compute_units;   /**< SMs, CUs, AI cores, or CPU cores given to the rank */
    uint32_t clock_mhz;       /**< max core clock, 0 if unknown */
    /** Peak FLOP/s indexed by ::hetrun_dtype (0: unknown / unsupported). */
    double peak_flops[HETRUN_MAX_DTYPES];
    /** Environment variable that restricts device visibility, e.g. "CUDA_VISIBLE_DEVICES";
     *  empty when the runtime has none. The launcher sets it before `init`. */
    char visibility_env[64];
} hetrun_device_info;

/* Opaque handles, defined by each module. */
typedef struct hetrun_device hetrun_device; /**< an opened device */
typedef struct hetrun_buffer hetrun_buffer; /**< device memory (pointer, cl_mem, ...) */
typedef struct hetrun_queue hetrun_queue;   /**< an in-order queue / stream */
typedef struct hetrun_event hetrun_event;   /**< a timing/sync event */
typedef struct hetrun_comm hetrun_comm;     /**< a device collective communicator */

/** A region of device memory: buffer handle plus byte offset. */
typedef struct hetrun_tensor {
    hetrun_buffer *buffer;
    uint64_t offset; /**< bytes from the start of `buffer` */
} hetrun_tensor;

/** Reduction operators for collectives. */
typedef enum hetrun_reduce_op {
    HETRUN_REDUCE_SUM = 0,
    HETRUN_REDUCE_MAX = 1,
    HETRUN_REDUCE_MIN = 2
} hetrun_reduce_op;

/** Size of the opaque id used to bootstrap a device communicator. */
#define HETRUN_COMM_ID_BYTES 256

/**
 * The ops table. Function pointers marked (optional) may be NULL.
 */
typedef struct hetrun_backend_ops {
    /* ---- header: never moves ---- */
    uint32_t abi_major;   /**< ::HETRUN_ABI_MAJOR the module was built with */
    uint32_t abi_minor;   /**< ::HETRUN_ABI_MINOR the module was built with */
    uint32_t struct_size; /**< sizeof(hetrun_backend_ops) the module was built with */
    uint32_t reserved0;
    const char *name;    /**< short name, equals <name> in the file name */
    const char *version; /**< module version string */

    /* ---- lifecycle ---- */
    /** Initialise the runtime once per process. Returns ::HETRUN_ERR_UNAVAILABLE with a
     *  reason in last_error() when there is no driver or no device. `host` outlives
     *  the module. */
    hetrun_status (*init)(const hetrun_host_services *host);
    /** Release everything; no call follows except `init`. */
    void (*finalize)(void);
    /** Text of the last error on the calling thread; never NULL (may be ""). */
    const char *(*last_error)(void);
    /** (optional) Make `dev` current on the calling thread. */
    hetrun_status (*thread_bind)(hetrun_device *dev);

    /* ---- devices ---- */
    /** Number of visible devices (after the visibility variable). */
    hetrun_status (*device_count)(int32_t *count);
    /** Fill `info` for device `index` (no need to open it). `info->struct_size` is set by
     *  the caller; the module writes at most that many bytes. */
    hetrun_status (*device_info)(int32_t index, hetrun_device_info *info);
    /** Open device `index` for use; one handle per index per process: a second open of an
     *  open index is ::HETRUN_ERR_INVALID (or the same handle, for stateless handles). */
    hetrun_status (*device_open)(int32_t index, hetrun_device **dev);
    /** Close a device opened with device_open, after its buffers/queues are freed. */
    void (*device_close)(hetrun_device *dev);

    /* ---- memory ---- */
    /** Allocate `bytes` (> 0) of device memory, aligned for every dtype (8 bytes at least).
     *  Contents are unspecified. */
    hetrun_status (*mem_alloc)(hetrun_device *dev, uint64_t bytes, hetrun_buffer **buf);
    /** Free a buffer from mem_alloc; NULL is a no-op. Work still pending on it (any queue)
     *  is the module's to wait for, or to defer the release behind: the host may free
     *  right after enqueuing, without queue_sync. */
    void (*mem_free)(hetrun_buffer *buf);
    /** Copy host -> device, ordered on `q`; returns when `src` may be reused (the data is
     *  taken before returning, even with earlier work still pending on `q`). Any byte
     *  offset; a range past the buffer's end is ::HETRUN_ERR_INVALID. */
    hetrun_status (*copy_h2d)(hetrun_queue *q, hetrun_tensor dst, const void *src, uint64_t bytes);
    /** Copy device -> host, ordered on `q`; returns when `dst` holds the data (after all
     *  work enqueued before it on `q`). Any byte offset. */
    hetrun_status (*copy_d2h)(hetrun_queue *q, void *dst, hetrun_tensor src, uint64_t bytes);
    /** Copy device -> device (same device), ordered on `q`; may return before done. */
    hetrun_status (*copy_d2d)(hetrun_queue *q, hetrun_tensor dst, hetrun_tensor src,
                              uint64_t bytes);

    /* ---- queues and events ---- */
    /** Create an in-order queue on `dev`. */
    hetrun_status (*queue_create)(hetrun_device *dev, hetrun_queue **q);
    /** Destroy a queue after waiting for its work. */
    void (*queue_destroy)(hetrun_queue *q);
    /** Block until all work enqueued on `q` is done; reports deferred kernel errors. */
    hetrun_status (*queue_sync)(hetrun_queue *q);
    /** Create an event that can record timestamps. */
    hetrun_status (*event_create)(hetrun_device *dev, hetrun_event **ev);
    /** Destroy an event. */
    void (*event_destroy)(hetrun_event *ev);
    /** Record `ev` at the current end of `q`. Recording an event again moves it: it then
     *  stands for its latest record. */
    hetrun_status (*event_record)(hetrun_event *ev, hetrun_queue *q);
    /** Wait for `end`, then give the milliseconds between two recorded events: finite and
     *  >= 0 when `end` was recorded after `start` on one queue. ::HETRUN_ERR_INVALID for an
     *  event never recorded. */
    hetrun_status (*event_elapsed_ms)(hetrun_event *start, hetrun_event *end, double *ms);

    /* ---- ops (see hetrun/ops.h for the catalogue) ---- */
    /** Whether the op kind works with this dtype combination on `dev`. Returns HETRUN_OK
     *  when supported, ::HETRUN_ERR_UNSUPPORTED (with a reason) when not. The answer, like
     *  op_workspace_size's, must not depend on alpha, beta or p[]: the launcher asks once
     *  per shape and reuses it. */
    hetrun_status (*op_supported)(hetrun_device *dev, const hetrun_op_desc *desc);
    /** Phase 1: bytes of device workspace `op_run` needs for `desc` (0 is common).
     *  Runtimes with "get workspace size, then run" APIs map here directly. */
    hetrun_status (*op_workspace_size)(hetrun_device *dev, const hetrun_op_desc *desc,
                                       uint64_t *bytes);
    /** Phase 2: enqueue the op on `q`. `args` holds hetrun_op_arity(desc->kind) tensors in
     *  the order the catalogue gives, each offset a multiple of its element size; only
     *  operands the op table lets alias share memory. `workspace` has at least the size
     *  from phase 1 (buffer NULL when 0). An output read only when beta (p[1]) != 0 is not
     *  read when it is 0 (it may be NaN). May return before the op is done. */
    hetrun_status (*op_run)(hetrun_queue *q, const hetrun_op_desc *desc, const hetrun_tensor *args,
                            int32_t nargs, hetrun_tensor workspace);

    /* ---- collectives (optional group: all NULL or all set) ---- */
    /** Create a fresh communicator id on one rank; the host broadcasts it. */
    hetrun_status (*comm_id_create)(uint8_t id[HETRUN_COMM_ID_BYTES]);
    /** Join a communicator of `nranks` with this process as `rank`, on `dev`. */
    hetrun_status (*comm_init)(hetrun_device *dev, const uint8_t id[HETRUN_COMM_ID_BYTES],
                               int32_t nranks, int32_t rank, hetrun_comm **comm);
    /** Destroy a communicator. */
    void (*comm_destroy)(hetrun_comm *comm);
    /** In-place allreduce of `count` elements of `dtype` ordered on `q`. */
    hetrun_status (*comm_allreduce)(hetrun_comm *comm, hetrun_queue *q, hetrun_tensor buf,
                                    uint64_t count, hetrun_dtype dtype, hetrun_reduce_op op);

    /* ---- telemetry (optional, each member on its own) ---- */
    /** Energy the device used since `init`, in joules; ::HETRUN_ERR_UNSUPPORTED if unknown. */
    hetrun_status (*energy_joules)(hetrun_device *dev, double *joules);
    /** Peak device memory in use by this process since device_open, in bytes. */
    hetrun_status (*memory_peak)(hetrun_device *dev, uint64_t *bytes);

    /* ---- host-visible memory (optional, ABI 1.2) ---- */
    /** The host address of `buf`'s first byte, when the device's memory is host memory the
     *  launcher may address directly (the cpu backend), so host-side work (an MPI allreduce)
     *  runs in place with no staging copy. The address stays valid until mem_free. The host
     *  touches those bytes only while no queued work uses them (after a queue_sync, or before
     *  the work that reads them is enqueued). ::HETRUN_ERR_UNSUPPORTED when `buf` is not host
     *  memory. Read only from a table whose struct_size covers it. */
    hetrun_status (*mem_host_ptr)(hetrun_buffer *buf, void **host);
} hetrun_backend_ops;

/** Size of the ops table each ABI 1.x minor defines (the loader's minimum). ABI 1.1
 *  appended op kinds and descriptor fields (ops.h), not table members. */
#define HETRUN_OPS_SIZE_V1_0 (offsetof(hetrun_backend_ops, memory_peak) + sizeof(void *))
#define HETRUN_OPS_SIZE_V1_1 HETRUN_OPS_SIZE_V1_0
/** ABI 1.2 appended the optional mem_host_ptr member. */
#define HETRUN_OPS_SIZE_V1_2 (offsetof(hetrun_backend_ops, mem_host_ptr) + sizeof(void *))
/** ABI 1.3 added the ::HETRUN_OP_CONST_B descriptor flag, not table members. */
#define HETRUN_OPS_SIZE_V1_3 HETRUN_OPS_SIZE_V1_2

/** Signature of the entry symbol. */
typedef const hetrun_backend_ops *(*hetrun_backend_entry_fn)(void);

/** The entry point every module defines (with HETRUN_BACKEND_EXPORT); declared here so a
 *  module's definition is checked against it. */
HETRUN_BACKEND_EXPORT const hetrun_backend_ops *hetrun_backend_entry(void);

#ifdef __cplusplus
}
#endif
#endif /* HETRUN_BACKEND_H */
