/**
 * @file launcher/topo/plan.h
 * @brief Pure placement planning: ranks of one node -> device and cpus. Used by
 *        `hetrun run` (through placement.h), `hetrun plan` and the tests alike.
 */
#ifndef HETRUN_TOPO_PLAN_H
#define HETRUN_TOPO_PLAN_H

#include <stddef.h>
#include <stdint.h>

#include <stdio.h>

#include <cjson/cJSON.h>

#include "hetrun/backend.h"
#include "topo/topology.h"

/** One device as the planner sees it. */
typedef struct hetrun_plan_device {
    hetrun_device_info info; /**< from the backend probe or the XML's OS devices */
    int index;               /**< the backend's index (before visibility narrowing) */
    char osdev[64];          /**< hwloc OS device name to try when there is no PCI id */
} hetrun_plan_device;

/** Planner options (from the job's `placement`). */
typedef struct hetrun_plan_opts {
    int policy;               /**< ::hetrun_placement_policy */
    int64_t ranks_per_device; /**< 0: as many as needed */
    const int64_t *map;       /**< policy map: entry per local rank (-1: CPU-only) */
    size_t map_count;
} hetrun_plan_opts;

/** One local rank's plan. */
typedef struct hetrun_rank_plan {
    int local_rank;
    int device;    /**< position in the device array; -1: CPU-only */
    int numa_node; /**< -1 unknown */
    int *cpus;     /**< PU OS indices, ascending (owned) */
    int ncpus;
    int threads;       /**< BLAS/OpenMP threads: cores given, 1 when PUs are shared */
    char locality[32]; /**< device's: "pci", "osdev", "machine"; CPU-only rank: "numa" or
                            "machine" */
} hetrun_rank_plan;

/** Policy name ("closest", "round-robin", "pack", "map"); "?" when out of range. */
const char *hetrun_policy_name(int policy);
/** Parses a policy name; returns the policy or -1. */
int hetrun_policy_parse(const char *name);

/**
 * Plans `local_size` ranks of one node over `devs` (non-CPU devices get ranks; when every
 * device is a CPU device, each rank uses device 0 with its share of the cores). Semantics of
 * the policies in docs/placement.md. On success returns 0 and sets `*plans` (local_size
 * entries, free with hetrun_plan_free); on error returns -1 with the cause in `err`
 * (bad map entry, map too short, ranks_per_device exceeded, empty cpuset).
 */
int hetrun_plan_compute(const hetrun_topo *topo, const hetrun_plan_device *devs, int ndev,
                        const hetrun_plan_opts *opts, int local_size, hetrun_rank_plan **plans,
                        char *err, size_t errlen);

void hetrun_plan_free(hetrun_rank_plan *plans, int n);

/** Planner devices from a topology's accelerator OS devices (hetrun_topo_accelerators),
 *  indexed in PCI bus id order. Caller frees `*devs` with free(). */
int hetrun_plan_devices_from_topo(const hetrun_topo *topo, hetrun_plan_device **devs, int *ndev);

/**
 * The whole job's plan as JSON, without running anything: `ranks` ranks spread in blocks
 * over `nodes` identical nodes (the first ranks % nodes nodes get one more), each node
 * planned by hetrun_plan_compute. The object holds "ranks", "nodes", "policy",
 * "ranks_per_device", "devices" (index, name, pci_bus_id, kind, numa_node, locality, cpus)
 * and "plan": per rank {rank, node, host, local_rank, local_size, device ({index,
 * pci_bus_id, name, numa_node}) or null, numa_node, cpus, threads, locality}.
 * Returns NULL with the cause in `err`.
 */
cJSON *hetrun_plan_job_json(const hetrun_topo *topo, const hetrun_plan_device *devs, int ndev,
                            const hetrun_plan_opts *opts, int ranks, int nodes, char *err,
                            size_t errlen);

/**
 * For a plan of this machine: fits every rank's cpus into the affinity this process was
 * started with (topo/affinity.h; as `hetrun run` would if its ranks inherited the same
 * mask) and decides threads as `run` does (topo/threads.h). Each rank's "cpus" becomes the
 * fitted list; "planned_cpus", "fit" and "threads_source" are added. Returns 0 or -1 (out
 * of memory).
 */
int hetrun_plan_fit_inherited(cJSON *plan, const hetrun_topo *topo);

/** Prints a plan from hetrun_plan_job_json as a table (one line per rank). */
void hetrun_plan_print_table(const cJSON *plan, FILE *out);

#endif
