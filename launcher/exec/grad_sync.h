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
 *    the session's queue, ordered before the optimizer's ops; the host never waits. (It runs
 *    on the compute queue: the ABI has no second queue with a cross-queue wait yet, so the
 *    device serialises it with backward's kernels; the host is free.)
 *  - host in place: the backend's memory is host memory (ABI 1.2 mem_host_ptr: the cpu
 *    backend): the sum runs on the gradients themselves, no staging copy.
 *  - host staged: otherwise, and when the device collective cannot be set up (two ranks on
 *    one GPU): each bucket is copied to the session's staging buffer when reported, summed
 *    there, and the whole buffer copied back in wait_all.
 *
 * Host sum: a direct reduce-scatter then allgather over non-blocking point-to-point
 * (MPI_Isend/Irecv on a duplicate of s->comm, tags 2b and 2b+1 for bucket b): rank j sums
 * chunk j of the bucket, then sends it to every peer. Each rank sends and receives
 * (n-1)/n of the bucket twice, as a ring does, in two rounds rather than 2(n-1). Open MPI
 * 4.1's MPI_Iallreduce (libnbc) with its default algorithm choice was measured here, 2 ranks,
 * 4 MiB in place, at 2x or more the time of the blocking MPI_Allreduce (its ring setting, an
 * MCA parameter we do not own, matches it); its sum order is also the library's. Scratch:
 * (n-1)/n of the gradients, allocated and touched at create. Messages per rank grow as n-1
 * per bucket: a ring or tree would suit hundreds of ranks better (not done).
 *
 * Progress: hetrun initialises MPI with MPI_THREAD_FUNNELED and Open MPI 4.1 here has no
 * asynchronous progress, so messages move only inside MPI calls on this thread.
 * bucket_ready and hetrun_grad_sync_progress poll (MPI_Testall per bucket, and post the
 * allgather as soon as a reduce-scatter is in); and while host sums are in flight the
 * session calls progress before each op it dispatches (session.h progress_hook), so
 * backward's own ops advance them without the models knowing.
 * wait_all polls too, and a wait longer than limits.peer_timeout (30 s without a job) logs
 * a warning naming the bucket, the phase and the peers whose messages are still open
 * (again at twice the time, and so on): a peer alive but lost in some other call is then
 * named in the log long before limits.timeout ends the job.
 * On the cpu backend with every core computing (2 ranks x 1 thread on 2 cores) the sum's
 * copies and additions need the same cores as backward: overlap hides the wait for the
 * peer, not that work. A progress thread (MPI_THREAD_MULTIPLE) was measured against this
 * polling on such a machine (shared, heavily loaded) with no step-time difference beyond
 * the noise, so there is none.
 *
 * Determinism: chunk j of every bucket is summed on rank j alone, always in rank order
 * ((g0 + g1) + g2) + ..., whichever rank computes it and whatever order the buckets are
 * reported in; the other ranks receive those bits. So every rank holds the same bits, and
 * a run repeats bit for bit for a given rank count and layout (tests/mpi checks both, and
 * the rank-order sum). The device path's order is the device library's (NCCL's is fixed
 * for a given communicator and size).
 *
 * Gradient accumulation: report a bucket only in the last micro-batch's backward (the
 * reduction reads the bucket while later backward ops run and must see its final sum).
 */
#ifndef HETRUN_EXEC_GRAD_SYNC_H
#define HETRUN_EXEC_GRAD_SYNC_H

#include <stdint.h>

#include "exec/session.h"
#include "workloads/nn_model.h" /* hetrun_grad_bucket: the models' own bucket layout */

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
