/**
 * @file launcher/exec/collective.h
 * @brief Allreduce of device buffers across the job's ranks, for data-parallel gradients.
 *
 * Uses the backend's device collective (ops->comm_*) when the module has one: the
 * communicator is created lazily and collectively on first use (rank 0 comm_id_create,
 * MPI_Bcast of the id, comm_init on every rank; if any rank fails, every rank falls back
 * together). Otherwise the data is staged through ONE persistent host buffer, allocated
 * and pre-faulted once per process and reused, and reduced with MPI_Allreduce.
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
 * backend has one, else grows the persistent host staging buffer and touches every page.
 * Collective: every rank must call it with the same `bytes`. Returns 0 or -1 (s->error).
 */
int hetrun_collective_prepare(hetrun_session *s, uint64_t bytes);

/**
 * In-place sum allreduce of `count` fp32 elements at `buf` over every rank of s->comm.
 * Collective. Counts count*4 bytes in s->usage.collective_bytes. With one rank it only
 * counts. Returns 0 or -1 (s->error names the call and its error).
 */
int hetrun_allreduce_sum_f32(hetrun_session *s, hetrun_tensor buf, uint64_t count);

/** True when the last prepare chose the backend's device collective. */
int hetrun_collective_is_device(const hetrun_session *s);

/** Frees the host staging buffer (the device communicator is the session's). */
void hetrun_collective_release(void);

#endif
