/* Rank identity from each launcher's environment variables, with a fake getenv. */
#include <stdio.h>
#include <string.h>

#include "topo/placement.h"
#include "../fake_env.h"

static hetrun_rank_identity ident(const char *const *env, int expect_rc, char *err, size_t len) {
    hetrun_rank_identity id;
    memset(&id, 0x5a, sizeof(id));
    fake_env = env;
    int rc = hetrun_identity_parse(fake_get, &id, err, len);
    CHECK(rc == expect_rc, "rc %d expected %d (%s) for env starting %s", rc, expect_rc, err,
          env[0] ? env[0] : "(empty)");
    return id;
}

#define EXPECT(id, r, s, lr, ls, ni, nn, src)                                                      \
    CHECK((id).rank == (r) && (id).size == (s) && (id).local_rank == (lr) &&                       \
              (id).local_size == (ls) && (id).node_index == (ni) && (id).nnodes == (nn) &&         \
              strcmp((id).source, (src)) == 0,                                                     \
          "got rank %d/%d local %d/%d node %d/%d source %s", (id).rank, (id).size,                 \
          (id).local_rank, (id).local_size, (id).node_index, (id).nnodes, (id).source)

int main(void) {
    char err[512];
    hetrun_rank_identity id;

    const char *none[] = {"HOME=/root", NULL};
    id = ident(none, 0, err, sizeof(err));
    EXPECT(id, 0, 1, 0, 1, 0, 1, "single process");

    const char *ompi[] = {"OMPI_COMM_WORLD_RANK=5", "OMPI_COMM_WORLD_SIZE=8",
                          "OMPI_COMM_WORLD_LOCAL_RANK=1", "OMPI_COMM_WORLD_LOCAL_SIZE=4", NULL};
    id = ident(ompi, 0, err, sizeof(err));
    EXPECT(id, 5, 8, 1, 4, 1, 2, "OMPI_COMM_WORLD_LOCAL_RANK");

    /* mpirun inside a Slurm allocation: Open MPI's variables win over inherited Slurm ones. */
    const char *ompi_in_slurm[] = {"SLURM_LOCALID=0",
                                   "SLURM_PROCID=0",
                                   "SLURM_NTASKS=1",
                                   "OMPI_COMM_WORLD_RANK=3",
                                   "OMPI_COMM_WORLD_SIZE=4",
                                   "OMPI_COMM_WORLD_LOCAL_RANK=3",
                                   "OMPI_COMM_WORLD_LOCAL_SIZE=4",
                                   NULL};
    id = ident(ompi_in_slurm, 0, err, sizeof(err));
    EXPECT(id, 3, 4, 3, 4, 0, 1, "OMPI_COMM_WORLD_LOCAL_RANK");

    const char *hydra[] = {"PMI_RANK=6",        "PMI_SIZE=12",      "MPI_LOCALRANKID=2",
                           "MPI_LOCALNRANKS=3", "PMI_LOCAL_RANK=9", NULL};
    id = ident(hydra, 0, err, sizeof(err));
    EXPECT(id, 6, 12, 2, 3, 2, 4, "MPI_LOCALRANKID");

    const char *pmi[] = {"PMIX_RANK=7",      "PMI_RANK=1",       "PMI_SIZE=16",
                         "PMI_LOCAL_RANK=3", "PMI_LOCAL_SIZE=8", NULL};
    id = ident(pmi, 0, err, sizeof(err));
    EXPECT(id, 7, 16, 3, 8, 0, 2, "PMI_LOCAL_RANK");

    const char *pmi2[] = {"PMI_RANK=9", "PMIX_SIZE=10", "PMI_LOCAL_RANK=4", "PMI_LOCAL_SIZE=5",
                          NULL};
    id = ident(pmi2, 0, err, sizeof(err));
    EXPECT(id, 9, 10, 4, 5, 1, 2, "PMI_LOCAL_RANK");

    const char *flux[] = {"FLUX_TASK_RANK=5",  "FLUX_JOB_SIZE=8", "FLUX_TASK_LOCAL_ID=1",
                          "FLUX_JOB_NNODES=2", "SLURM_LOCALID=0", NULL};
    id = ident(flux, 0, err, sizeof(err));
    EXPECT(id, 5, 8, 1, 4, 1, 2, "FLUX_TASK_LOCAL_ID");

    const char *slurm[] = {"SLURM_PROCID=7",
                           "SLURM_NTASKS=7",
                           "SLURM_LOCALID=0",
                           "SLURM_NODEID=3",
                           "SLURM_TASKS_PER_NODE=2(x3),1",
                           NULL};
    fake_env = slurm;
    /* rank 7 of 7 is invalid: the check names both numbers. */
    id = ident(slurm, -1, err, sizeof(err));
    CHECK(strstr(err, "rank 7") && strstr(err, "7"), "msg: %s", err);
    const char *slurm2[] = {"SLURM_PROCID=6",
                            "SLURM_NTASKS=7",
                            "SLURM_LOCALID=0",
                            "SLURM_NODEID=3",
                            "SLURM_TASKS_PER_NODE=2(x3),1",
                            NULL};
    id = ident(slurm2, 0, err, sizeof(err));
    EXPECT(id, 6, 7, 0, 1, 3, 4, "SLURM_LOCALID");
    const char *slurm3[] = {"SLURM_PROCID=3",
                            "SLURM_NTASKS=7",
                            "SLURM_LOCALID=1",
                            "SLURM_NODEID=1",
                            "SLURM_TASKS_PER_NODE=2(x3),1",
                            "SLURM_NNODES=4",
                            NULL};
    id = ident(slurm3, 0, err, sizeof(err));
    EXPECT(id, 3, 7, 1, 2, 1, 4, "SLURM_LOCALID");
    /* The step's own list wins over the allocation's. */
    const char *slurm_step[] = {"SLURM_PROCID=1",
                                "SLURM_NTASKS=2",
                                "SLURM_LOCALID=1",
                                "SLURM_NODEID=0",
                                "SLURM_TASKS_PER_NODE=4",
                                "SLURM_STEP_TASKS_PER_NODE=2",
                                NULL};
    id = ident(slurm_step, 0, err, sizeof(err));
    EXPECT(id, 1, 2, 1, 2, 0, 1, "SLURM_LOCALID");
    const char *slurm_ntpn[] = {"SLURM_PROCID=5",
                                "SLURM_NTASKS=6",
                                "SLURM_LOCALID=2",
                                "SLURM_NODEID=1",
                                "SLURM_NTASKS_PER_NODE=3",
                                "SLURM_NNODES=2",
                                NULL};
    id = ident(slurm_ntpn, 0, err, sizeof(err));
    EXPECT(id, 5, 6, 2, 3, 1, 2, "SLURM_LOCALID");

    /* Malformed values are errors naming the variable. */
    const char *bad[] = {"OMPI_COMM_WORLD_LOCAL_RANK=one", NULL};
    ident(bad, -1, err, sizeof(err));
    CHECK(strstr(err, "OMPI_COMM_WORLD_LOCAL_RANK") && strstr(err, "one"), "msg: %s", err);
    const char *neg[] = {"SLURM_LOCALID=-1", NULL};
    ident(neg, -1, err, sizeof(err));
    CHECK(strstr(err, "SLURM_LOCALID"), "msg: %s", err);
    const char *bad_tpn[] = {"SLURM_LOCALID=0", "SLURM_NODEID=5", "SLURM_TASKS_PER_NODE=2(x3),1",
                             NULL};
    ident(bad_tpn, -1, err, sizeof(err));
    CHECK(strstr(err, "SLURM_TASKS_PER_NODE") && strstr(err, "SLURM_NODEID=5"), "msg: %s", err);
    const char *junk_tpn[] = {"SLURM_LOCALID=0", "SLURM_TASKS_PER_NODE=2(y3)", NULL};
    ident(junk_tpn, -1, err, sizeof(err));
    const char *over[] = {"OMPI_COMM_WORLD_LOCAL_RANK=4", "OMPI_COMM_WORLD_LOCAL_SIZE=4", NULL};
    ident(over, -1, err, sizeof(err));
    CHECK(strstr(err, "local rank 4") && strstr(err, "local size 4"), "msg: %s", err);
    const char *huge[] = {"MPI_LOCALRANKID=99999999999999", NULL};
    ident(huge, -1, err, sizeof(err));

    if (failures) {
        fprintf(stderr, "%d check(s) failed\n", failures);
        return 1;
    }
    printf("test_identity: all checks passed\n");
    return 0;
}
