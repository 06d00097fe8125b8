/**
 * @file launcher/topo/affinity.h
 * @brief The CPU affinity the process was started with (the scheduler's or the user's
 *        decision: Slurm task/affinity, mpirun --bind-to, taskset), how a plan is fitted
 *        into it, and the affinity read back after binding. See docs/placement.md.
 */
#ifndef HETRUN_TOPO_AFFINITY_H
#define HETRUN_TOPO_AFFINITY_H

#include <stddef.h>

#include <hwloc.h>

/** How the cpus a rank ends up with were chosen (hetrun_affinity_fit). */
typedef enum hetrun_affinity_fit_kind {
    HETRUN_FIT_PLAN = 0,      /**< the plan as is (the inherited mask covers it) */
    HETRUN_FIT_NARROWED = 1,  /**< plan intersected with the inherited mask */
    HETRUN_FIT_INHERITED = 2, /**< plan and mask disjoint: the inherited mask kept */
} hetrun_affinity_fit_kind;

/**
 * The mask this process had when it started (sched_getaffinity, captured by a constructor
 * before main, so before anything in this process could bind). Copied into `out`.
 * Returns 0, or -1 when it could not be read (then `out` is left empty).
 */
int hetrun_affinity_inherited(hwloc_bitmap_t out);

/** The calling thread's affinity now (sched_getaffinity). Returns 0 or -1. */
int hetrun_affinity_current(hwloc_bitmap_t out);

/**
 * Fits `planned` into `inherited`, which never widens: when `inherited` includes all of
 * `machine` (the PUs the topology allows), the plan is used as is; otherwise the
 * inherited mask is the scheduler's decision and the result is planned AND inherited, or,
 * when that is empty, `inherited` itself. An empty `inherited` (unknown) counts as the
 * whole machine. Writes the result to `out` and returns the ::hetrun_affinity_fit_kind.
 */
int hetrun_affinity_fit(hwloc_const_bitmap_t planned, hwloc_const_bitmap_t inherited,
                        hwloc_const_bitmap_t machine, hwloc_bitmap_t out);

/** Name of a fit kind: "plan", "narrowed", "inherited". */
const char *hetrun_affinity_fit_name(int kind);

#endif
