/**
 * @file kernels/cpu/cpu_parallel.h
 * @brief The CPU backend's one persistent thread pool, for its own kernels (attention,
 *        row-wise transformer ops) and batched GEMM entries side by side (cpu_gemm.c).
 *
 * After a call a worker spins for at most 50 us, then sleeps on a condition variable: runs of
 * short calls (batch-1 inference) find it awake, and an idle pool, or one between calls into
 * the BLAS's own threads, holds no core for longer than that. Tasks are handed out in ascending
 * order from a shared counter; kernels must make each task's result independent of which worker
 * runs it, so results do not depend on the thread count.
 */
#ifndef HETRUN_KERNELS_CPU_PARALLEL_H
#define HETRUN_KERNELS_CPU_PARALLEL_H

#include <stdint.h>

/** Task body: `task` in [0, ntasks), `worker` in [0, hetrun_cpu_threads()). */
typedef void (*hetrun_cpu_task_fn)(void *ctx, int64_t task, int worker);

/** Sets how many threads (the caller included) kernels may use; >= 1. Workers start on
 *  first use. */
void hetrun_cpu_threads_set(int threads);
/** The thread count set (1 before any call). */
int hetrun_cpu_threads(void);
/** Runs fn(ctx, t, worker) for every t in [0, ntasks) on up to hetrun_cpu_threads()
 *  threads, the caller included; returns when all are done. While one caller's job runs, a
 *  call from another thread (two queues driven at once) runs its tasks alone, as worker 0;
 *  a task must not call it again. */
void hetrun_cpu_parallel(int64_t ntasks, hetrun_cpu_task_fn fn, void *ctx);
/** The same on at most `workers` threads (so `worker` < workers), for callers that size
 *  per-worker scratch, like batched GEMM's widening buffers. */
void hetrun_cpu_parallel_upto(int64_t ntasks, int workers, hetrun_cpu_task_fn fn, void *ctx);
/** Joins the workers (before the module is unloaded). */
void hetrun_cpu_threads_shutdown(void);

#endif
