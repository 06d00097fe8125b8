/* Rank identity from the launcher's environment, before MPI_Init (see placement.h). */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "topo/placement.h"

/* Strict non-negative int: the whole string, no sign games. -1 absent, -2 malformed. */
static int get_int(const char *(*get)(const char *), const char *name, int *val, char *err,
                   size_t errlen) {
    const char *s = get(name);
    if (!s || !*s) return -1;
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end != '\0' || v < 0 || v > INT_MAX) {
        snprintf(err, errlen, "environment variable %s=\"%s\" is not a non-negative integer", name,
                 s);
        return -2;
    }
    *val = (int)v;
    return 0;
}

/* SLURM_TASKS_PER_NODE like "2(x3),1": tasks on node `node`, and the node count. */
static int slurm_tasks_on_node(const char *spec, int node, int *tasks, int *nnodes) {
    int idx = 0, found = -1;
    const char *p = spec;
    while (*p) {
        char *end;
        long n = strtol(p, &end, 10);
        if (end == p || n < 0) return -1;
        long rep = 1;
        p = end;
        if (*p == '(') {
            if (p[1] != 'x') return -1;
            rep = strtol(p + 2, &end, 10);
            if (end == p + 2 || *end != ')' || rep <= 0) return -1;
            p = end + 1;
        }
        if (found < 0 && node >= idx && node < idx + rep) found = (int)n;
        idx += (int)rep;
        if (*p == ',')
            p++;
        else if (*p)
            return -1;
    }
    if (found < 0) return -1;
    *tasks = found;
    *nnodes = idx;
    return 0;
}

int hetrun_identity_parse(const char *(*get)(const char *name), hetrun_rank_identity *out,
                          char *err, size_t errlen) {
    hetrun_rank_identity id = {0, 1, 0, 1, 0, 1, "single process"};
    int lr = 0, ls = -1, rk = -1, sz = -1, rc;
    err[0] = '\0';

#define GET(name, var)                                                                             \
    do {                                                                                           \
        if ((rc = get_int(get, name, &(var), err, errlen)) == -2) return -1;                       \
    } while (0)

    if (get_int(get, "OMPI_COMM_WORLD_LOCAL_RANK", &lr, err, errlen) != -1) {
        if (err[0]) return -1;
        snprintf(id.source, sizeof(id.source), "OMPI_COMM_WORLD_LOCAL_RANK");
        GET("OMPI_COMM_WORLD_LOCAL_SIZE", ls);
        GET("OMPI_COMM_WORLD_RANK", rk);
        GET("OMPI_COMM_WORLD_SIZE", sz);
    } else if (get_int(get, "MPI_LOCALRANKID", &lr, err, errlen) != -1) {
        if (err[0]) return -1;
        snprintf(id.source, sizeof(id.source), "MPI_LOCALRANKID");
        GET("MPI_LOCALNRANKS", ls);
        GET("PMI_RANK", rk);
        GET("PMI_SIZE", sz);
    } else if (get_int(get, "PMI_LOCAL_RANK", &lr, err, errlen) != -1) {
        if (err[0]) return -1;
        snprintf(id.source, sizeof(id.source), "PMI_LOCAL_RANK");
        GET("PMI_LOCAL_SIZE", ls);
        GET("PMIX_RANK", rk);
        if (rk < 0) GET("PMI_RANK", rk);
        GET("PMI_SIZE", sz);
        if (sz < 0) GET("PMIX_SIZE", sz);
    } else if (get_int(get, "FLUX_TASK_LOCAL_ID", &lr, err, errlen) != -1) {
        if (err[0]) return -1;
        snprintf(id.source, sizeof(id.source), "FLUX_TASK_LOCAL_ID");
        GET("FLUX_TASK_RANK", rk);
        GET("FLUX_JOB_SIZE", sz);
        int nn = -1;
        GET("FLUX_JOB_NNODES", nn);
        /* Flux exports no local size: assume tasks spread evenly (upper bound). */
        if (sz > 0 && nn > 0) {
            ls = (sz + nn - 1) / nn;
            id.nnodes = nn;
        }
    } else if (get_int(get, "SLURM_LOCALID", &lr, err, errlen) != -1) {
        if (err[0]) return -1;
        snprintf(id.source, sizeof(id.source), "SLURM_LOCALID");
        GET("SLURM_PROCID", rk);
        GET("SLURM_NTASKS", sz);
        int node = -1, nn = -1;
        GET("SLURM_NODEID", node);
        GET("SLURM_NNODES", nn);
        const char *vars[] = {"SLURM_STEP_TASKS_PER_NODE", "SLURM_TASKS_PER_NODE"};
        for (int i = 0; i < 2 && ls < 0; i++) {
            const char *s = get(vars[i]);
            if (!s || !*s) continue;
            int tasks, nnodes;
            if (slurm_tasks_on_node(s, node >= 0 ? node : 0, &tasks, &nnodes) != 0) {
                snprintf(err, errlen,
                         "environment variable %s=\"%s\" is not a Slurm task list like "
                         "\"2(x3),1\" covering SLURM_NODEID=%d",
                         vars[i], s, node >= 0 ? node : 0);
                return -1;
            }
            ls = tasks;
            if (nn < 0) nn = nnodes;
        }
        if (ls < 0) GET("SLURM_NTASKS_PER_NODE", ls);
        if (node >= 0) id.node_index = node;
        if (nn > 0) id.nnodes = nn;
    } else {
        *out = id;
        return 0;
    }
#undef GET
    (void)rc;
    id.local_rank = lr;
    id.local_size = ls > 0 ? ls : lr + 1;
    id.rank = rk >= 0 ? rk : lr;
    id.size = sz > 0 ? sz : id.local_size;
    if (id.local_rank >= id.local_size) {
        snprintf(err, errlen, "%s: local rank %d is not below the local size %d", id.source,
                 id.local_rank, id.local_size);
        return -1;
    }
    if (id.rank >= id.size) {
        snprintf(err, errlen, "%s: rank %d is not below the job size %d", id.source, id.rank,
                 id.size);
        return -1;
    }
    /* Launchers other than Slurm do not say which node: assume block mapping. */
    if (strcmp(id.source, "SLURM_LOCALID") != 0 || id.nnodes <= 0) {
        if (id.nnodes <= 1 && id.local_size > 0)
            id.nnodes = (id.size + id.local_size - 1) / id.local_size;
        id.node_index = id.rank / id.local_size;
        if (id.node_index >= id.nnodes) id.node_index = id.nnodes - 1;
    }
    *out = id;
    return 0;
}
