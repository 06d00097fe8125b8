/**
 * @file launcher/topo/placement.h
 * @brief This rank's placement, applied before MPI_Init and before any vendor runtime
 *        starts: identity from the launcher's environment, plan (plan.h) over the
 *        devices the probe found (loader/probe.h), visibility variable, binding and
 *        thread counts.
 */
#ifndef HETRUN_TOPO_PLACEMENT_H
#define HETRUN_TOPO_PLACEMENT_H

#include <stddef.h>
#include <stdio.h>

#include <cjson/cJSON.h>

#include "hetrun/backend.h"
#include "loader/probe.h"
#include "topo/topology.h"

struct hetrun_job;

/** Who this process is, as the launcher (mpirun, srun, hydra, flux) told it. */
typedef struct hetrun_rank_identity {
    int rank, size;             /**< global rank and job size */
    int local_rank, local_size; /**< on this node */
    int node_index, nnodes;     /**< this node among the job's nodes */
    char source[64];            /**< e.g. "OMPI_COMM_WORLD_LOCAL_RANK" or "single process" */
} hetrun_rank_identity;

/**
 * Reads the identity from the environment via `get` (getenv in production, a fake in
 * tests). Precedence (first source whose local-rank variable is set wins): Open MPI
 * (OMPI_COMM_WORLD_*), MPICH hydra (MPI_LOCALRANKID), PMI (PMI_LOCAL_RANK), Flux
 * (FLUX_TASK_LOCAL_ID), Slurm (SLURM_LOCALID), else a single process. Returns 0, or -1
 * when a variable is malformed or inconsistent, with the cause (naming the variable)
 * in `err`.
 */
int hetrun_identity_parse(const char *(*get)(const char *name), hetrun_rank_identity *out,
                          char *err, size_t errlen);

/** The placement applied to this process. */
typedef struct hetrun_placement {
    hetrun_rank_identity id;
    int device_index;          /**< index for device_open after apply; -1: CPU-only rank */
    int device_global;         /**< index among the backend's devices before narrowing */
    hetrun_device_info device; /**< the chosen device's info (from the probe) */
    int numa_node;             /**< -1 unknown */
    int *cpus;                 /**< PU OS indices the process may run on, read back after
                                    binding (sched_getaffinity): the truth (owned) */
    int ncpus;
    int *planned_cpus; /**< the plan's cpus for this rank before fitting (owned) */
    int nplanned;
    int *inherited_cpus; /**< the mask the process was started with (owned; 0: unknown) */
    int ninherited;
    char fit[16];             /**< "plan", "narrowed" or "inherited" (hetrun_affinity_fit_name) */
    int threads;              /**< BLAS/OpenMP threads for this rank (hetrun_threads_decide) */
    char threads_source[160]; /**< what decided `threads` ("OMP_NUM_THREADS", "cores"...) */
    char locality[32];        /**< "pci", "osdev", "machine" (or "numa" for CPU ranks) */
    char policy[32];
    char visibility_env[64], visibility_value[256]; /**< what was set, or "" */
    int bound;           /**< 1 when hetrun bound the process and read the mask back */
    char bind_note[384]; /**< why not bound, or how the plan was fitted; "" when plain */
    /** The node's start-up files this job used (topology XML, mask exchange; "" if none):
     *  local rank 0 removes them once every rank is past placement. */
    char startup_files[2][4096];
    hetrun_topo_counts node; /**< the node's size, counted when the placement loaded the
                                  topology (before any restriction to a shared mask): the
                                  report's node environment reads it, so hwloc loads once */
} hetrun_placement;

/**
 * Computes and applies this rank's placement for `backend`, given its devices (from
 * hetrun_probe_backend, loader/probe.h; see docs/placement.md): reads the identity, loads
 * the topology (I/O scan only when a device has a PCI id, once per node), plans with the
 * job's policy, narrows the visibility variable (within one the scheduler already set),
 * fits the rank's cpus into the affinity the process was started with (never wider;
 * topo/affinity.h), binds when job->placement.bind and the topology is this machine's,
 * reads the affinity back into `cpus`, decides the thread count (topo/threads.h) and sets
 * OPENBLAS/OMP/MKL_NUM_THREADS to it. Returns 0, or -1 with the cause in `err`.
 */
int hetrun_placement_apply_devices(const struct hetrun_job *job, const char *backend,
                                   const hetrun_probe_device *devs, int ndevs,
                                   hetrun_placement *out, char *err, size_t errlen);

/**
 * Reads the affinity back again (after MPI_Init, which may bind on its own under some
 * launchers) so that `cpus` stays what the process really has; a change is noted in
 * `bind_note` and logged. Returns 0, or -1 when the mask could not be read or stored.
 */
int hetrun_placement_read_back(hetrun_placement *p);

/** JSON object for the report's ranks[].placement. */
cJSON *hetrun_placement_to_json(const hetrun_placement *p);
/** One line like mpirun --report-bindings. */
void hetrun_placement_print_binding(const hetrun_placement *p, FILE *out);
void hetrun_placement_free(hetrun_placement *p);
/** Local rank 0 removes the node's start-up files (p->startup_files); call after a collective
 *  every rank reaches only once past placement (hetrun_job_agree). Other ranks do nothing. */
void hetrun_placement_release_files(hetrun_placement *p);

/** Formats a PU list compactly ("0-3,8,10-11") into `buf`. */
void hetrun_cpus_format(const int *cpus, int n, char *buf, size_t len);

#endif
