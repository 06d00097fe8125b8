/**
 * @file launcher/exec/slurm_step.h
 * @brief Before MPI_Init: is this process a Slurm step (srun) whose MPI library cannot be
 *        initialised the way srun started it? Debian's Open MPI speaks PMIx only, so a plain
 *        `srun` or `srun --mpi=pmi2` step dies inside MPI_Init with a message that never
 *        names the fix. hetrun says it first (`srun --mpi=pmix`, or `mpirun` inside the
 *        allocation; docs/slurm.md) and the caller leaves a failed report.
 */
#ifndef HETRUN_EXEC_SLURM_STEP_H
#define HETRUN_EXEC_SLURM_STEP_H

#include <stddef.h>

/** Which process-management interfaces the linked MPI library can be started through. */
typedef struct hetrun_mpi_pmi {
    int pmix;         /**< srun --mpi=pmix (and mpirun) */
    int pmi2;         /**< srun --mpi=pmi2 */
    int pmi1;         /**< plain srun (--mpi=none: Slurm's libpmi) */
    int other;        /**< other srun --mpi plugins (cray_shasta for Cray MPICH, ...) */
    char library[96]; /**< e.g. "Open MPI v4.1.4" (first line of MPI_Get_library_version) */
} hetrun_mpi_pmi;

/** What the linked MPI library supports. Open MPI 5: PMIx only; Open MPI 4 and older: PMIx,
 *  plus PMI-1/PMI-2 where its pmix s1/s2 components are installed; any other MPI (MPICH,
 *  Intel MPI, Cray MPICH) is assumed to speak whatever srun --mpi plugin the user chose. Callable
 * before MPI_Init. */
void hetrun_mpi_pmi_detect(hetrun_mpi_pmi *out);

/**
 * Checks the launch environment read through `get` (getenv in production; a fake in
 * tests): 0 when MPI_Init can work (not a Slurm step; started by mpirun; srun with PMIx;
 * srun --mpi=pmi2 or plain srun with an MPI that supports those; HETRUN_SLURM_CHECK=0),
 * -1 when it cannot. Then `reason` holds one line for the report (what srun did, what to run
 * instead) and `advice` the text to print: the cause and the commands that work.
 */
int hetrun_slurm_step_check(const char *(*get)(const char *name), const hetrun_mpi_pmi *mpi,
                            char *reason, size_t reason_len, char *advice, size_t advice_len);

/** For `hetrun run`: the check above on this process's environment and MPI; when the step
 *  cannot start, rank 0 prints the advice and 1 is returned with the report's reason. */
int hetrun_slurm_step_refused(int rank, char *reason, size_t reason_len);

#endif
