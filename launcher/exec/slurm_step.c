/* Slurm step vs the MPI library's process-management interfaces (see slurm_step.h). */
#define _GNU_SOURCE /* dladdr: where the linked libmpi lives, to find its components */
#include "exec/slurm_step.h"

#include <dlfcn.h>
#include <glob.h>
#include <limits.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef OPEN_MPI
/* Whether Open MPI 4's pmix component `name` (s1 = PMI-1, s2 = PMI-2) is installed beside
 * the libmpi this process runs with: Debian's layout (<libdir>/openmpi/lib/openmpi3/) and
 * the upstream one (<libdir>/openmpi/). */
static int ompi_component(const char *name) {
    Dl_info info;
    char real[PATH_MAX], pattern[PATH_MAX + 64];
    if (!dladdr((void *)MPI_Init, &info) || !info.dli_fname || !realpath(info.dli_fname, real))
        return 0;
    char *slash = strrchr(real, '/');
    if (!slash) return 0;
    *slash = '\0';
    static const char *const layouts[] = {"%s/openmpi*/mca_pmix_%s.so",
                                          "%s/openmpi/lib/openmpi*/mca_pmix_%s.so"};
    for (size_t i = 0; i < sizeof layouts / sizeof *layouts; i++) {
        snprintf(pattern, sizeof pattern, layouts[i], real, name);
        glob_t g;
        int found = glob(pattern, 0, NULL, &g) == 0 && g.gl_pathc > 0;
        globfree(&g);
        if (found) return 1;
    }
    return 0;
}
#endif

void hetrun_mpi_pmi_detect(hetrun_mpi_pmi *out) {
    memset(out, 0, sizeof *out);
    char version[MPI_MAX_LIBRARY_VERSION_STRING] = "";
    int len = 0;
    MPI_Get_library_version(version, &len); /* allowed before MPI_Init (MPI-3.0) */
    version[strcspn(version, ",\n")] = '\0';
    snprintf(out->library, sizeof out->library, "%s", version[0] ? version : "this MPI");
    out->pmix = 1;
#if defined(OPEN_MPI) && OMPI_MAJOR_VERSION < 5
    out->pmi1 = ompi_component("s1");
    out->pmi2 = ompi_component("s2");
#elif !defined(OPEN_MPI)
    out->pmi1 = out->pmi2 = out->other = 1;
#endif
}

static const char *or_unset(const char *s) {
    return s && *s ? s : NULL;
}

int hetrun_slurm_step_check(const char *(*get)(const char *name), const hetrun_mpi_pmi *mpi,
                            char *reason, size_t reason_len, char *advice, size_t advice_len) {
    reason[0] = advice[0] = '\0';
    const char *off = get("HETRUN_SLURM_CHECK");
    if (off && strcmp(off, "0") == 0) return 0;
    const char *step = or_unset(get("SLURM_STEP_ID"));
    if (!step) step = or_unset(get("SLURM_STEPID"));
    /* Not a task of an srun step, or mpirun's orted started it (it sets OMPI_COMM_WORLD_*
     * and the PMIx server), or srun ran a PMIx server for it: MPI_Init will find its peers. */
    if (!step || !or_unset(get("SLURM_PROCID")) || or_unset(get("OMPI_COMM_WORLD_SIZE")) ||
        or_unset(get("PMIX_RANK")) || or_unset(get("PMIX_NAMESPACE")))
        return 0;
    const char *type = or_unset(get("SLURM_MPI_TYPE"));
    int is_pmi2 = type && strcmp(type, "pmi2") == 0;
    int is_none = !type || strcmp(type, "none") == 0;
    if ((is_pmi2 && mpi->pmi2) || (is_none && mpi->pmi1) || (!is_pmi2 && !is_none && mpi->other))
        return 0;
    const char *how = is_pmi2 ? "srun --mpi=pmi2" : is_none ? "plain srun (no PMIx)" : "srun";
    const char *job = or_unset(get("SLURM_JOB_ID"));
    const char *ntasks = or_unset(get("SLURM_NTASKS"));
    snprintf(reason, reason_len,
             "Slurm step %s.%s was started by %s (SLURM_MPI_TYPE=%s) and %s can only be started "
             "through PMIx there: use `srun --mpi=pmix` or `mpirun` inside the allocation "
             "(docs/slurm.md)",
             job ? job : "?", step, how, type ? type : "unset", mpi->library);
    snprintf(advice, advice_len,
             "hetrun run: this is Slurm step %s.%s (%s tasks), started by %s "
             "(SLURM_MPI_TYPE=%s),\n"
             "  but %s can only be started through PMIx under srun: MPI_Init would fail.\n"
             "  Run it one of these ways (docs/slurm.md):\n"
             "    srun --mpi=pmix hetrun run JOB.yaml        (srun --mpi=list shows the plugins)\n"
             "    export SLURM_MPI_TYPE=pmix; srun hetrun run JOB.yaml\n"
             "    mpirun -np N hetrun run JOB.yaml           (inside salloc/sbatch)\n"
             "  Set HETRUN_SLURM_CHECK=0 to skip this check.\n",
             job ? job : "?", step, ntasks ? ntasks : "?", how, type ? type : "unset",
             mpi->library);
    return -1;
}

static const char *env_get(const char *name) {
    return getenv(name);
}

int hetrun_slurm_step_refused(int rank, char *reason, size_t reason_len) {
    hetrun_mpi_pmi mpi;
    char advice[2048];
    hetrun_mpi_pmi_detect(&mpi);
    if (hetrun_slurm_step_check(env_get, &mpi, reason, reason_len, advice, sizeof advice) == 0)
        return 0;
    if (rank == 0) fputs(advice, stderr);
    return 1;
}
