/* The srun check of exec/slurm_step.h on fake environments and fake MPI capabilities:
 * which launches pass, which are refused, what the refusal says; and the detection of the
 * MPI this test is linked with (Debian's Open MPI 4: PMIx only). */
#include <stdio.h>
#include <string.h>

#include "exec/slurm_step.h"
#include "../fake_env.h"

static char reason[1024], advice[2048];

static int check(const char *const *env, const hetrun_mpi_pmi *mpi) {
    fake_env = env;
    memset(reason, 'x', sizeof reason);
    memset(advice, 'x', sizeof advice);
    int rc = hetrun_slurm_step_check(fake_get, mpi, reason, sizeof reason, advice, sizeof advice);
    if (rc == 0) CHECK(!reason[0] && !advice[0], "a pass leaves no text: '%.60s'", reason);
    return rc;
}

int main(void) {
    const hetrun_mpi_pmi pmix_only = {1, 0, 0, 0, "Open MPI v4.1.4"};
    const hetrun_mpi_pmi all = {1, 1, 1, 1, "MPICH Version: 4.0"};
    const hetrun_mpi_pmi with_pmi2 = {1, 1, 0, 0, "Open MPI v4.1.6"};
    const char *const none[] = {NULL};
    const char *const batch[] = {"SLURM_JOB_ID=7", "SLURM_PROCID=0", NULL};
    const char *const plain[] = {"SLURM_JOB_ID=7", "SLURM_STEP_ID=0", "SLURM_PROCID=1",
                                 "SLURM_NTASKS=2", NULL};
    const char *const plain_old[] = {"SLURM_JOB_ID=7", "SLURM_STEPID=3", "SLURM_PROCID=0", NULL};
    const char *const none_type[] = {"SLURM_JOB_ID=7", "SLURM_STEP_ID=0", "SLURM_PROCID=0",
                                     "SLURM_MPI_TYPE=none", NULL};
    const char *const pmi2[] = {"SLURM_JOB_ID=7",      "SLURM_STEP_ID=0", "SLURM_PROCID=0",
                                "SLURM_MPI_TYPE=pmi2", "PMI_RANK=0",      NULL};
    const char *const pmix[] = {"SLURM_JOB_ID=7",
                                "SLURM_STEP_ID=0",
                                "SLURM_PROCID=0",
                                "SLURM_MPI_TYPE=pmix",
                                "PMIX_RANK=0",
                                "PMIX_NAMESPACE=slurm.pmix.7.0",
                                NULL};
    const char *const mpirun[] = {"SLURM_JOB_ID=7", "SLURM_STEP_ID=1", "SLURM_PROCID=0",
                                  "OMPI_COMM_WORLD_SIZE=4", NULL};
    const char *const cray[] = {"SLURM_JOB_ID=7", "SLURM_STEP_ID=0", "SLURM_PROCID=0",
                                "SLURM_MPI_TYPE=cray_shasta", NULL};
    const char *const off[] = {"SLURM_JOB_ID=7", "SLURM_STEP_ID=0", "SLURM_PROCID=0",
                               "HETRUN_SLURM_CHECK=0", NULL};

    /* What works with a PMIx-only MPI: no Slurm, a batch script, srun --mpi=pmix, mpirun. */
    CHECK(check(none, &pmix_only) == 0, "no Slurm");
    CHECK(check(batch, &pmix_only) == 0, "batch step (no SLURM_STEP_ID)");
    CHECK(check(pmix, &pmix_only) == 0, "srun --mpi=pmix");
    CHECK(check(mpirun, &pmix_only) == 0, "mpirun in an allocation");
    CHECK(check(off, &pmix_only) == 0, "HETRUN_SLURM_CHECK=0");

    /* What does not, and what the refusal says. */
    CHECK(check(plain, &pmix_only) == -1, "plain srun");
    CHECK(strstr(reason, "Slurm step 7.0") && strstr(reason, "plain srun") &&
              strstr(reason, "SLURM_MPI_TYPE=unset") && strstr(reason, "srun --mpi=pmix") &&
              strstr(reason, "mpirun") && strstr(reason, "Open MPI v4.1.4") &&
              !strchr(reason, '\n'),
          "reason: %s", reason);
    CHECK(strstr(advice, "(2 tasks)") && strstr(advice, "srun --mpi=pmix hetrun run") &&
              strstr(advice, "SLURM_MPI_TYPE=pmix") && strstr(advice, "mpirun -np N") &&
              strstr(advice, "HETRUN_SLURM_CHECK=0"),
          "advice: %s", advice);
    CHECK(check(plain_old, &pmix_only) == -1 && strstr(reason, "step 7.3"),
          "SLURM_STEPID (older Slurm): %s", reason);
    CHECK(check(none_type, &pmix_only) == -1, "srun --mpi=none");
    CHECK(check(pmi2, &pmix_only) == -1 && strstr(reason, "srun --mpi=pmi2") &&
              strstr(reason, "SLURM_MPI_TYPE=pmi2"),
          "srun --mpi=pmi2: %s", reason);
    CHECK(check(cray, &pmix_only) == -1 && strstr(reason, "SLURM_MPI_TYPE=cray_shasta"),
          "Open MPI under another srun plugin: %s", reason);
    CHECK(check(cray, &all) == 0, "Cray MPICH under srun --mpi=cray_shasta");

    /* An MPI with PMI-1/PMI-2 support starts under the matching srun form. */
    CHECK(check(plain, &all) == 0, "plain srun, MPICH");
    CHECK(check(pmi2, &all) == 0, "srun --mpi=pmi2, MPICH");
    CHECK(check(pmi2, &with_pmi2) == 0, "srun --mpi=pmi2, Open MPI with s2");
    CHECK(check(plain, &with_pmi2) == -1, "plain srun, Open MPI with s2 only");

    /* Truncation: a short buffer still ends in a terminated string. */
    fake_env = plain;
    char small[16], small2[16];
    CHECK(hetrun_slurm_step_check(fake_get, &pmix_only, small, sizeof small, small2,
                                  sizeof small2) == -1 &&
              strlen(small) == sizeof small - 1 && strlen(small2) == sizeof small2 - 1,
          "truncated texts");

    /* The MPI this is linked with: Debian's Open MPI 4.1 has no s1/s2 components. */
    hetrun_mpi_pmi me;
    hetrun_mpi_pmi_detect(&me);
    printf("linked MPI: %s: pmix %d, pmi2 %d, pmi1 %d\n", me.library, me.pmix, me.pmi2, me.pmi1);
    CHECK(me.pmix == 1 && me.library[0], "detect: %s", me.library);
    if (strstr(me.library, "Open MPI v5")) CHECK(!me.pmi1 && !me.pmi2, "Open MPI 5: PMIx only");

    if (failures) fprintf(stderr, "%d failures\n", failures);
    return failures ? 1 : 0;
}
