/**
 * @file launcher/exec/job_agree.h
 * @brief One truth across ranks, checked right after MPI_Init and before any workload:
 *        every rank's identity equals MPI's, node index and count come from MPI, and the
 *        job runs on one backend.
 *
 * Placement ran before MPI_Init from the launcher's environment (topo/placement.h), so a
 * stale or faked environment (a Slurm variable set by hand, hetrun started without the
 * launcher that set them) would plan devices and cores for a rank that does not exist.
 * Backends are chosen per rank from the spec's preference list, so a node without one
 * driver picks the next backend while the others train on the first. Both are caught here,
 * collectively, so every rank ends with the same verdict.
 */
#ifndef HETRUN_EXEC_JOB_AGREE_H
#define HETRUN_EXEC_JOB_AGREE_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "topo/placement.h"

struct hetrun_job;

/** The backend a rank runs on: `backend`, or cpu when the plan left it without a device. */
const char *hetrun_job_rank_backend(const hetrun_placement *pl, const char *backend);

/**
 * Collective over MPI_COMM_WORLD; call right after MPI_Init, before any workload:
 *
 * 1. Identity: the rank, size, local rank and local size placement used (pl->id, from the
 *    environment) must equal MPI's (MPI_Comm_rank/size of the world, and of the node's
 *    MPI_COMM_TYPE_SHARED communicator; a Flux local size is an estimate and not compared).
 * 2. Nodes: pl->id.node_index and nnodes are replaced by MPI's view: the nodes are the
 *    MPI_COMM_TYPE_SHARED groups, ordered by their lowest world rank (right for any
 *    mapping, not only block mapping). The report's placement shows these.
 * 3. One backend: every rank's backend (hetrun_job_rank_backend) must be the same unless
 *    job->backend_mix is allow.
 *
 * Returns HETRUN_EXIT_OK with the job's backend in `job_backend` (one name, or the
 * distinct names sorted and joined by '+' when an allowed mix happened), or
 * HETRUN_EXIT_BACKEND on every rank with the same cause in `err` on every rank (naming the
 * ranks, hosts and values that differ); rank 0 has then replaced the report at
 * `report_path` (NULL: none) with a failed one carrying `job_obj`, the cause and one
 * record per rank; `before_report` (NULL: none) runs on rank 0 just before that write, so
 * the caller can stop whatever else writes the report (the run guard's refresh, which
 * would otherwise rename its placeholder over this one).
 */
int hetrun_job_agree(const struct hetrun_job *job, hetrun_placement *pl, const char *backend,
                     const char *report_path, const cJSON *job_obj, char *job_backend,
                     size_t job_backend_len, char *err, size_t errlen, void (*before_report)(void));

#endif
