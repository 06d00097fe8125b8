/* Under `mpiexec -n 2 --bind-to none`: the placement (probe, then apply before MPI_Init,
 * as `hetrun run` does) binds each rank to its own core; checked with sched_getaffinity
 * and compared across ranks. */
#define _GNU_SOURCE
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <mpi.h>

#include "spec/job.h"
#include "topo/placement.h"

#define MAXCPU 1024

int main(int argc, char **argv) {
    hetrun_placement p;
    memset(&p, 0, sizeof(p));
    char err[2048];
    const char *how = "cpu backend";
    /* Placement must happen before MPI_Init, as `hetrun run` does it. */
    hetrun_probe_device *devs = NULL;
    int ndevs = 0;
    int rc = hetrun_probe_backend("cpu", &devs, &ndevs, err, sizeof(err));
    if (rc == 0)
        rc = hetrun_placement_apply_devices(NULL, "cpu", devs, ndevs, &p, err, sizeof(err));
    free(devs);
    if (rc != 0) {
        /* Without a usable cpu module (not built yet), plan for one synthetic CPU device. */
        fprintf(stderr, "note: %s; using a synthetic CPU device\n", err);
        hetrun_probe_device d;
        memset(&d, 0, sizeof(d));
        d.info.struct_size = sizeof(d.info);
        d.info.kind = HETRUN_DEVICE_CPU;
        snprintf(d.info.name, sizeof(d.info.name), "synthetic cpu");
        how = "synthetic CPU device";
        rc = hetrun_placement_apply_devices(NULL, "cpu", &d, 1, &p, err, sizeof(err));
    }
    MPI_Init(&argc, &argv);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    int ok = rc == 0;
    if (!ok) fprintf(stderr, "rank %d: FAIL: placement: %s\n", rank, err);
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    int skip = ncpu < size;

    int mask[MAXCPU];
    memset(mask, 0, sizeof(mask));
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof(set), &set) != 0) {
        perror("sched_getaffinity");
        ok = 0;
    }
    int count = 0;
    for (int c = 0; c < MAXCPU && c < CPU_SETSIZE; c++)
        if (CPU_ISSET(c, &set)) mask[c] = 1, count++;
    if (ok) {
        hetrun_placement_print_binding(&p, stdout);
        fflush(stdout);
        if (p.id.rank != rank || p.id.local_size != size) {
            fprintf(stderr, "rank %d: FAIL: identity says rank %d local size %d (%s)\n", rank,
                    p.id.rank, p.id.local_size, p.id.source);
            ok = 0;
        }
        if (!skip && (!p.bound || count != 1 || p.ncpus != 1 || !mask[p.cpus[0]])) {
            fprintf(stderr, "rank %d: FAIL: bound %d, affinity has %d cpus, plan %d cpus\n", rank,
                    p.bound, count, p.ncpus);
            ok = 0;
        }
        if (strcmp(getenv("OMP_NUM_THREADS") ? getenv("OMP_NUM_THREADS") : "", "") == 0) {
            fprintf(stderr, "rank %d: FAIL: OMP_NUM_THREADS not set\n", rank);
            ok = 0;
        }
    }
    int all[MAXCPU];
    MPI_Allreduce(mask, all, MAXCPU, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    int overlap = 0;
    for (int c = 0; c < MAXCPU; c++)
        if (all[c] > 1) overlap = 1;
    if (!skip && overlap) {
        if (rank == 0) fprintf(stderr, "FAIL: ranks' affinity masks overlap\n");
        ok = 0;
    }
    int allok;
    MPI_Allreduce(&ok, &allok, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    if (rank == 0 && allok)
        printf("mpi_bind: %d ranks bound to disjoint single cores (%s)%s\n", size, how,
               skip ? " [fewer cores than ranks: binding not checked]" : "");
    hetrun_placement_free(&p);
    MPI_Finalize();
    if (!allok) return 1;
    return skip ? 77 : 0;
}
