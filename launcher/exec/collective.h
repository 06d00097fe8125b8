/**
 * @file launcher/exec/collective.h
 * @brief Allreduce of device buffers across the job's ranks, for data-parallel gradients.
 *
 * Uses the backend's device collective (ops->comm_*) when the module has one: the
 * communicator is created lazily and collectively on first use (rank 0 comm_id_create,
 * MPI_Bcast of the id, comm_init on every rank; if any rank fails, every rank falls back
 * together, with a warning: host staging is the one fallback). Otherwise, when the
 * backend's memory is host memory (ABI 1.2 mem_host_ptr: the cpu backend), MPI_Allreduce
 * runs in place on it, with no copy; else the data is staged
 * through the session's persistent host buffer (hetrun_session_staging: allocated and
 * pre-faulted once, reused, freed at session close) and reduced with MPI_Allreduce. With
 * one rank there is nothing to reduce and no communicator is made.
 *
 * Determinism: the host path's result depends only on MPI's reduction order, which Open
 * MPI keeps fixed for a given rank count, message size and communicator (its tuned
 * allreduce picks the algorithm from these alone), so repeated runs are bitwise equal.
 */
#ifndef HETRUN_EXEC_COLLECTIVE_H
#define HETRUN_EXEC_COLLECTIVE_H

#include <stdint.h>

#include "exec/session.h"

/**
 * Prepares for allreduces of up to `bytes`: joins the device communicator when the
 * backend has one, else grows the persistent host staging buffer and touches every page
 * (also for host memory: hetrun_allreduce_sum may be given any buffer).
 * Collective: every rank must call it with the same `bytes`. Returns 0 or -1 (s->error).
 */
int hetrun_collective_prepare(hetrun_session *s, uint64_t bytes);

/**
 * In-place sum allreduce of `count` fp32 elements at `buf` over every rank of s->comm.
 * Collective. Counts count*4 bytes in s->usage.collective_bytes. With one rank it only
 * counts. Returns 0 or -1 (s->error names the call and its error).
 */
int hetrun_allreduce_sum_f32(hetrun_session *s, hetrun_tensor buf, uint64_t count);

/**
 * In-place sum allreduce of `count` elements of `dtype` at `buf`: on the device
 * communicator when prepare made one, else host-staged (fp32, fp64 and int32). Counts
 * nothing in s->usage (callers that reduce data, not benchmarks, count it). Collective.
 * Returns 0 or -1 (s->error).
 */
int hetrun_allreduce_sum(hetrun_session *s, hetrun_tensor buf, uint64_t count, hetrun_dtype dtype);

/** True when the last prepare chose the backend's device collective. */
int hetrun_collective_is_device(const hetrun_session *s);

#endif
