/**
 * @file launcher/topo/threads.h
 * @brief The one place a rank's BLAS/OpenMP thread count is decided (see
 *        docs/placement.md, "Threads").
 */
#ifndef HETRUN_TOPO_THREADS_H
#define HETRUN_TOPO_THREADS_H

#include <stddef.h>

/**
 * Thread count for a rank, first match wins: OMP_NUM_THREADS (its first entry: "4,2"
 * means 4), OPENBLAS_NUM_THREADS, MKL_NUM_THREADS (the user's explicit settings), then
 * SLURM_CPUS_PER_TASK (the scheduler's; at most `pus`, the PUs the rank may run on, when
 * known), then `cores` (the cores of the rank's cpus). Variables are read through `get`
 * (getenv in production). A set but malformed value (not an integer 1..4096) is skipped
 * with a note in `source`. Writes what decided it to `source` ("OMP_NUM_THREADS",
 * "cores"...). Returns at least 1.
 */
int hetrun_threads_decide(const char *(*get)(const char *name), int cores, int pus, char *source,
                          size_t srclen);

/** Sets OMP_NUM_THREADS, OPENBLAS_NUM_THREADS and MKL_NUM_THREADS all to `threads`, so no
 *  BLAS or OpenMP runtime started later can pick a different count. Returns 0 or -1. */
int hetrun_threads_export(int threads);

#endif
