/**
 * @file launcher/exec/session.h
 * @brief What a workload runs against: one backend device and queue on this rank, the
 *        MPI communicator, and the usage counters every op feeds.
 *
 * Workload code calls only these functions (never a backend directly), so the same
 * workload runs on every backend and every op it executes is counted. Workloads read the
 * fields rank, nranks, comm, job, info, usage and error; the others are the session's
 * own, and everything else goes through the functions below.
 */
#ifndef HETRUN_EXEC_SESSION_H
#define HETRUN_EXEC_SESSION_H

#include <mpi.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hetrun/backend.h"
#include "kernels/catalogue.h"

struct hetrun_backend_module;
struct hetrun_job;

/** Compute actually used, per rank (report "usage"). */
typedef struct hetrun_usage {
    double wall_s; /**< rank wall time in workloads */
    /** Device time of every busy span (backend events): a span opens at the first device
     *  command (op, copy, collective) after the queue was idle and closes at the next
     *  synchronisation (sync, device-to-host copy, timer stop, close), so all device
     *  work is covered, timed or not; host-only gaps between spans are not. */
    double device_busy_s;
    double flops; /**< catalogue FLOPs of every op executed */
    double bytes; /**< catalogue bytes of every op executed */
    uint64_t ops; /**< op calls */
    uint64_t op_counts[HETRUN_OP_KIND_COUNT];
    double op_flops[HETRUN_OP_KIND_COUNT];
    uint64_t h2d_bytes, d2h_bytes;
    uint64_t mem_in_use, mem_peak; /**< device bytes allocated through the session */
    double collective_bytes;       /**< bytes allreduced */
} hetrun_usage;

typedef struct hetrun_session {
    const struct hetrun_backend_module *backend; /**< loaded module */
    const hetrun_backend_ops *ops;               /**< backend->ops */
    int device_index;
    hetrun_device *device;
    hetrun_device_info info;
    hetrun_queue *queue;
    hetrun_buffer *workspace; /**< grown on demand, reused */
    uint64_t workspace_bytes;
    hetrun_comm *device_comm; /**< backend collective communicator, or NULL */
    bool device_comm_tried;   /**< its collective setup ran (exec/collective.c) */
    void *staging;            /**< host staging buffer, page-aligned and pre-faulted */
    uint64_t staging_bytes;
    MPI_Comm comm; /**< all ranks of the job */
    int rank, nranks;
    const struct hetrun_job *job;
    hetrun_usage usage;
    hetrun_event *timer_start, *timer_stop; /**< for hetrun_session_timer_* */
    hetrun_event *busy_start, *busy_stop;   /**< the open busy span (usage.device_busy_s) */
    bool busy_open;                         /**< busy_start recorded, not yet closed */
    /** Descriptors already answered by op_supported and op_workspace_size (scalars
     *  zeroed), so a training loop asks the backend once per shape, not once per op. */
    struct {
        hetrun_op_desc key;
        uint64_t workspace;
    } checked[16];
    unsigned checked_count, checked_next;
    /** Called before each op is dispatched while set: MPI moves messages only inside MPI
     *  calls on this thread, so exec/grad_sync sets it while gradient sums are in flight and
     *  backward's own ops advance them. Returns 0, or -1 with s->error set. */
    int (*progress_hook)(void *ctx);
    void *progress_ctx;
    char error[1024]; /**< last error: names backend, device, op and cause */
} hetrun_session;

/** Allocates device memory (counted in usage.mem_*); on error fills s->error. */
int hetrun_session_alloc(hetrun_session *s, uint64_t bytes, hetrun_buffer **buf);
/** Frees device memory from hetrun_session_alloc (bytes must match the allocation). */
void hetrun_session_free(hetrun_session *s, hetrun_buffer *buf, uint64_t bytes);
/** Host -> device copy. */
int hetrun_session_h2d(hetrun_session *s, hetrun_tensor dst, const void *src, uint64_t bytes);
/** Device -> host copy. */
int hetrun_session_d2h(hetrun_session *s, void *dst, hetrun_tensor src, uint64_t bytes);
/** Waits for the queue. */
int hetrun_session_sync(hetrun_session *s);

/**
 * Executes one op: validates the descriptor against the catalogue, checks the backend
 * supports it (an unsupported op is an error naming op, dtype and backend), sizes and
 * reuses the workspace, enqueues it, counts FLOPs and bytes. The support and workspace
 * answers are remembered per shape (see `checked`). Returns 0 or -1 (s->error).
 */
int hetrun_exec_op(hetrun_session *s, const hetrun_op_desc *desc, const hetrun_tensor *args);

/**
 * Device timing of a region: start records an event on the queue; stop records a second,
 * waits for it and returns the elapsed milliseconds. The region's device time is counted
 * in usage.device_busy_s through the busy span it lies in (never twice).
 * Regions must not nest. Returns 0 or -1 (s->error).
 */
int hetrun_session_timer_start(hetrun_session *s);
int hetrun_session_timer_stop(hetrun_session *s, double *ms);

/**
 * Whether the backend supports `desc` (the answer depends on the shape, not on scalars).
 * Returns 1, or 0 with the backend's reason, naming op, dtypes and backend, in `why`.
 */
int hetrun_session_supports(hetrun_session *s, const hetrun_op_desc *desc, char *why,
                            size_t whylen);

/** The loaded backend's name ("cpu", "opencl", ...). */
const char *hetrun_session_backend_name(const hetrun_session *s);

/** The host's cache folder (created on demand), or NULL when there is none. */
const char *hetrun_session_cache_dir(const hetrun_session *s);

/**
 * A host buffer of at least `bytes` for staging device data through MPI: page-aligned,
 * every page touched once (so no page fault lands in a timed region), kept and reused
 * until hetrun_session_close. Returns 0 with *host set, or -1 (s->error).
 */
int hetrun_session_staging(hetrun_session *s, uint64_t bytes, void **host);

/**
 * The host address of the `bytes` at `t`, when the backend's memory is host memory
 * (ABI 1.2 mem_host_ptr: the cpu backend), for host work in place with no staging copy.
 * The caller touches it only while no queued work uses those bytes. Returns 1 with *host
 * set, 0 when the module has no host-visible memory (an ABI 1.0/1.1 table, a GPU), or -1
 * when the module's answer is wrong (s->error).
 */
int hetrun_session_host_ptr(hetrun_session *s, hetrun_tensor t, uint64_t bytes, void **host);

/**
 * The backend's device collective, when it has one (all four comm_* functions): rank 0
 * creates the id, every rank joins with it as s->rank of s->nranks, and the session owns
 * the communicator. Used by exec/collective.c only, which sets it up collectively and
 * decides when to fall back to host staging. The int functions return 0 or -1 (s->error).
 */
bool hetrun_session_has_device_collective(const hetrun_session *s);
int hetrun_session_comm_id_create(hetrun_session *s, uint8_t id[HETRUN_COMM_ID_BYTES]);
int hetrun_session_comm_join(hetrun_session *s, const uint8_t id[HETRUN_COMM_ID_BYTES]);
/** Destroys the device communicator (when another rank failed to join). */
void hetrun_session_comm_leave(hetrun_session *s);
/** In-place sum allreduce of `count` elements of `dtype` at `buf` on the device comm. */
int hetrun_session_comm_allreduce(hetrun_session *s, hetrun_tensor buf, uint64_t count,
                                  hetrun_dtype dtype);

/** Opens device `index` of the loaded module: device, queue, events. Returns 0 or -1. */
int hetrun_session_open(hetrun_session *s, const struct hetrun_backend_module *backend, int index);
/** Device telemetry the backend offers: peak device memory in bytes and energy in joules
 *  since the device opened; -1 for what it does not offer (or a session never opened). */
void hetrun_session_telemetry(hetrun_session *s, double *mem_peak_bytes, double *energy_joules);
/** Frees the workspace, staging buffer, device communicator, events, queue and device. */
void hetrun_session_close(hetrun_session *s);

/** Shorthand for a tensor at `offset` bytes into `buf`. */
static inline hetrun_tensor hetrun_tensor_at(hetrun_buffer *buf, uint64_t offset) {
    hetrun_tensor t = {buf, offset};
    return t;
}

#endif
