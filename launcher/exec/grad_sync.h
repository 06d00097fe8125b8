/**
 * @file launcher/exec/grad_sync.h
 * @brief Data-parallel gradient sum, bucket by bucket, started while backward still runs.
 *
 * The gradients live in one flat fp32 buffer, cut into buckets (disjoint ranges that tile
 * it). Backward calls bucket_ready as soon as a bucket's gradients are final; its
 * reduction starts then and runs while backward computes the rest. wait_all, before the
 * optimizer step, completes them all. One rank: nothing to reduce, only the checks.
 *
 * Paths, chosen once at create (collectively):
 *  - device: the backend's device collective (NCCL on CUDA): comm_allreduce is enqueued on
 *    the session's queue, ordered before the optimizer's ops; the host never waits.
 *  - host in place: the backend's memory is host memory (ABI 1.2 mem_host_ptr: the cpu
 *    backend): MPI_Iallreduce on the gradients themselves, no staging copy.
 *  - host staged: otherwise, and when the device collective cannot be set up (two ranks on
 *    one GPU): each bucket is copied to the session's staging buffer, reduced there with
 *    MPI_Iallreduce and copied back in wait_all.
 *
 * Progress: hetrun initialises MPI with MPI_THREAD_FUNNELED and Open MPI 4.1 here has no
 * asynchronous progress, so a non-blocking collective advances only inside MPI calls on
 * this thread. bucket_ready and hetrun_grad_sync_progress poll (MPI_Testsome) the
 * reductions in flight; backward may call progress between its ops.
 *
 * Determinism: every bucket has a communicator of its own (duplicated at create), so each
 * communicator carries one reduction per step and matching never depends on the order in
 * which ranks report buckets. Each reduction's algorithm, and so each element's order of
 * additions, is chosen by Open MPI from the rank count and the bucket's size alone: the
 * same every step and every run. Every rank gets the same bits, because each algorithm
 * either sums an element on one rank and sends the result to the others (binomial reduce
 * then broadcast, ring, reduce-scatter then allgather) or has two partners add the same
 * two values (recursive doubling: a + b == b + a in IEEE arithmetic). tests/mpi checks it.
 *
 * Gradient accumulation: report a bucket only in the last micro-batch's backward (the
 * reduction reads the bucket while later backward ops run and must see its final sum).
 */
#ifndef HETRUN_EXEC_GRAD_SYNC_H
#define HETRUN_EXEC_GRAD_SYNC_H

#include <stdint.h>

#include "exec/session.h"

/** One bucket: `count` floats at element `offset` of the gradient buffer. */
typedef struct hetrun_grad_bucket {
    uint64_t offset;
    uint64_t count;
} hetrun_grad_bucket;

typedef struct hetrun_grad_sync hetrun_grad_sync;

/**
 * Prepares the sum of the fp32 gradients in `grads` (`total` floats from offset 0) over
 * every rank of s->comm, in `nbuckets` buckets that must tile [0, total) (any order, none
 * empty, none above 2^31-1 floats). Collective: every rank passes the same layout. Joins the
 * device communicator when the backend has one. Returns 0 with *out set, or -1 (s->error
 * names the bucket and the cause).
 */
int hetrun_grad_sync_create(hetrun_session *s, hetrun_buffer *grads, uint64_t total,
                            const hetrun_grad_bucket *buckets, int nbuckets,
                            hetrun_grad_sync **out);

/**
 * Bucket `bucket`'s gradients are final (the ops that write them are enqueued): starts its
 * sum without waiting for it, and polls the ones in flight. Counts its bytes in
 * s->usage.collective_bytes. A bucket reported twice in one step, or out of range, is an
 * error that starts nothing. Returns 0 or -1 (s->error).
 */
int hetrun_grad_sync_bucket_ready(hetrun_grad_sync *g, int bucket);

/** Advances the sums in flight (cheap; backward may call it between ops). 0 or -1. */
int hetrun_grad_sync_progress(hetrun_grad_sync *g);

/**
 * Completes every bucket's sum; afterwards the gradient buffer holds the sums (ordered
 * before any op enqueued next) and a new step may begin. A bucket not yet reported is an
 * error naming it, returned at once without waiting for anything (the step can still be
 * completed by reporting it). Returns 0 or -1 (s->error).
 */
int hetrun_grad_sync_wait_all(hetrun_grad_sync *g);

/** "device", "host in place", "host staged", or "none" (one rank). */
const char *hetrun_grad_sync_path(const hetrun_grad_sync *g);

/** Seconds the last wait_all blocked (the part of the reduction not hidden by backward). */
double hetrun_grad_sync_last_wait_s(const hetrun_grad_sync *g);

/**
 * Frees the synchroniser. Never blocks: sums still in flight after an error (a peer may
 * never join them) are abandoned, with their communicators, for the job's abort to end.
 */
void hetrun_grad_sync_destroy(hetrun_grad_sync *g);

#endif
