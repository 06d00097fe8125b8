/**
 * @file launcher/topo/mask_share.h
 * @brief Do the local ranks of a job share one inherited CPU mask (taskset or numactl
 *        around `mpirun --bind-to none`), or did the launcher give each its own (Slurm
 *        task/affinity, mpirun's default binding)? Answered through a file in the node's
 *        cache folder, before MPI_Init.
 */
#ifndef HETRUN_TOPO_MASK_SHARE_H
#define HETRUN_TOPO_MASK_SHARE_H

#include <stddef.h>

#include <hwloc.h>

/**
 * Appends "<local_rank> <mask>" to `path` (one write, O_APPEND), then reads the file until
 * every one of the `local_size` local ranks has written or one mask differs from `mine`.
 * Returns 1 when all local ranks have `mine`, 0 as soon as one differs, -1 when that is
 * not known within `timeout_s` or the file cannot be written (the cause in `why`).
 */
int hetrun_mask_shared(const char *path, int local_rank, int local_size, hwloc_const_bitmap_t mine,
                       double timeout_s, char *why, size_t whylen);

#endif
