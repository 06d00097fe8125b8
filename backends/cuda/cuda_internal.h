/* Internal declarations of the CUDA backend module (not installed, not part of the ABI). */
#ifndef HETRUN_BACKENDS_CUDA_INTERNAL_H
#define HETRUN_BACKENDS_CUDA_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <cublasLt.h>
#include <cuda_runtime_api.h>

#include "hetrun/backend.h"

/** Bytes of cuBLASLt workspace requested for a GEMM (phase 1 of op_run). */
#define HCU_GEMM_WORKSPACE (32ull << 20)
/** Size of one pinned staging chunk for host<->device copies (two per queue). */
#define HCU_STAGING_CHUNK (4ull << 20)
/** Cached cuBLASLt plans per device. */
#define HCU_PLAN_CACHE 64

typedef struct hcu_plan hcu_plan;

/** An opened device. */
struct hetrun_device {
    int index; /**< CUDA runtime ordinal */
    int sm_count;
    int cc_major, cc_minor;
    char name[128];
    char uuid[64];
    char bus_id[32];
    atomic_bool failed; /**< set by a sticky error: every later call fails */
    atomic_uint_fast64_t mem_in_use, mem_peak;
    cublasLtHandle_t lt;
    pthread_mutex_t plan_lock; /**< guards plans[] */
    hcu_plan *plans[HCU_PLAN_CACHE];
    unsigned plan_next; /**< round-robin replacement slot */
};

struct hetrun_buffer {
    hetrun_device *dev;
    void *ptr;
    uint64_t bytes;
};

struct hetrun_queue {
    hetrun_device *dev;
    cudaStream_t stream;
    void *staging[2];      /**< pinned host chunks, allocated on first copy */
    cudaEvent_t staged[2]; /**< "chunk i's transfer is done" */
};

struct hetrun_event {
    hetrun_device *dev;
    cudaEvent_t ev;
    bool recorded; /* elapsed time of an event never recorded is the caller's error (INVALID),
                      which CUDA reports as a resource-handle error */
};

/** The host's services (logging), set by init. */
extern const hetrun_host_services *hcu_host;

/** The calling thread's last error message (the ops table's last_error). */
const char *hcu_last_error(void);

/** Logs `msg` through the host at `level` when the host asked for that level. */
void hcu_log(hetrun_log_level level, const char *msg);

/** Errors after which the CUDA context is unusable until the process exits. */
bool hcu_is_sticky(cudaError_t e);

/** Sets the calling thread's last error (printf-style) and returns `st`. */
hetrun_status hcu_fail(hetrun_status st, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/** Maps a failed CUDA call to a status: sticky errors mark `dev` failed (DEVICE_LOST),
 *  allocation errors give NO_MEMORY; the message names call, error name and context. */
hetrun_status hcu_cuda_fail(hetrun_device *dev, cudaError_t err, const char *call,
                            const char *context);

/** DEVICE_LOST with the device's UUID and bus id when `dev` was marked failed. */
hetrun_status hcu_check_alive(hetrun_device *dev);

/** Makes `dev` current on the calling thread. */
hetrun_status hcu_bind(hetrun_device *dev);

/** Resolves a tensor to a device pointer, checking the handle, device and that `bytes`
 *  fit in the buffer from the tensor's offset; `what` names it in the error. */
hetrun_status hcu_tensor_ptr(hetrun_device *dev, hetrun_tensor t, uint64_t bytes, const char *what,
                             void **out);

/** Checks that `q` is non-NULL and its device alive, and binds the device. */
hetrun_status hcu_queue_check(hetrun_queue *q, const char *call);

/* ---- ops (cuda_ops.c): the ops table's op_supported, op_workspace_size, op_run ---- */
hetrun_status hcu_op_supported(hetrun_device *dev, const hetrun_op_desc *d);
hetrun_status hcu_op_workspace_size(hetrun_device *dev, const hetrun_op_desc *d, uint64_t *bytes);
hetrun_status hcu_op_run(hetrun_queue *q, const hetrun_op_desc *d, const hetrun_tensor *args,
                         int32_t nargs, hetrun_tensor ws);

/* ---- GEMM (cuda_gemm.c) ---- */

/** Whether cuBLASLt can run this GEMM descriptor on `dev`; reason in last_error. */
hetrun_status hcu_gemm_supported(hetrun_device *dev, const hetrun_op_desc *d);
/** Enqueues a GEMM on `q` with device pointers a, b, c and workspace (ws, ws_bytes). */
hetrun_status hcu_gemm_run(hetrun_queue *q, const hetrun_op_desc *d, const void *a, const void *b,
                           void *c, void *ws, uint64_t ws_bytes);
/** Releases the device's cuBLASLt plan cache. */
void hcu_gemm_release(hetrun_device *dev);

/** Short text of an op for messages: "gemm fp16->fp32 m=.. n=.. k=..". */
const char *hcu_op_text(const hetrun_op_desc *d, char *buf, size_t len);

#endif
