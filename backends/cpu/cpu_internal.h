/* Internals shared by the CPU backend's files (never installed). */
#ifndef HETRUN_BACKEND_CPU_INTERNAL_H
#define HETRUN_BACKEND_CPU_INTERNAL_H

#include "hetrun/backend.h"

struct cpu_packed;

struct hetrun_buffer {
    void *ptr;
    uint64_t bytes;
    struct cpu_packed *packed; /* constant-operand copies of parts of it (cpu_packed.c) */
};

struct hetrun_device {
    int32_t index;
};

/** Adds `delta` bytes to the device memory in use (and its peak): buffers and packed
 *  copies. */
void cpu_mem_account(int64_t delta);

/** Logs one line through the host's log service (nothing before init). */
void cpu_log(hetrun_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/** Sets the thread-local last error; returns `status` for chaining. */
hetrun_status cpu_error(hetrun_status status, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

hetrun_status cpu_op_supported(hetrun_device *dev, const hetrun_op_desc *desc);
hetrun_status cpu_op_workspace_size(hetrun_device *dev, const hetrun_op_desc *desc,
                                    uint64_t *bytes);
hetrun_status cpu_op_run(hetrun_queue *q, const hetrun_op_desc *desc, const hetrun_tensor *args,
                         int32_t nargs, hetrun_tensor workspace);

/** Whether cpu_fast.c has a tuned path for `desc` (ABI 1.1 ops, fp32 batched GEMM). */
int cpu_fast_path(const hetrun_op_desc *desc);
/** Runs a validated `desc` on host pointers `args` through that path; `ws` holds
 *  cpu_bias_act_workspace(desc) bytes. */
hetrun_status cpu_fast_run(const hetrun_op_desc *desc, void *const *args, void *ws);
/** Workspace bytes of a GEMM_BIAS_ACT: fp32 copies of fp16/bf16 operands (0 for fp32). */
uint64_t cpu_bias_act_workspace(const hetrun_op_desc *desc);

#endif
