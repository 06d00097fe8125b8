/* After MPI_Init: every rank's identity, node and backend gathered on rank 0, judged there
 * once, and the verdict broadcast, so every rank ends the same way with the same text. */
#include "exec/job_agree.h"

#include <mpi.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hetrun_version.h"
#include "report/report.h"
#include "spec/job.h"
#include "util/exitcodes.h"
#include "util/log.h"
#include "util/safe_file.h"

/* One rank's view, gathered as bytes (every rank runs the same binary). */
typedef struct rank_view {
    int32_t env_rank, env_size, env_local_rank, env_local_size; /* placement's identity */
    int32_t local_rank, local_size; /* MPI: the node's MPI_COMM_TYPE_SHARED communicator */
    int32_t cpu_only;               /* the plan left this rank without a device */
    char host[64];
    char backend[64];
    char source[64]; /* where the environment identity came from */
} rank_view;

/* Most ranks named in one message; the rest are counted. */
#define NAMED_MAX 8

const char *hetrun_job_rank_backend(const hetrun_placement *pl, const char *backend) {
    return pl->device_index < 0 ? "cpu" : backend;
}

static void add(char *buf, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void add(char *buf, size_t len, const char *fmt, ...) {
    size_t used = strlen(buf);
    if (used + 1 >= len) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + used, len - used, fmt, ap);
    va_end(ap);
}

static int identity_differs(const rank_view *v) {
    int flux = strcmp(v->source, "FLUX_TASK_LOCAL_ID") == 0; /* local size is an estimate */
    return v->env_local_rank != v->local_rank || (!flux && v->env_local_size != v->local_size);
}

static int check_identity(const rank_view *all, int nranks, char *err, size_t errlen) {
    int bad = 0;
    for (int r = 0; r < nranks; r++) {
        const rank_view *v = &all[r];
        if (v->env_rank == r && v->env_size == nranks && !identity_differs(v)) continue;
        if (bad++ == 0)
            snprintf(err, errlen,
                     "the rank identity placement used (from the launcher's environment) "
                     "disagrees with MPI: ");
        if (bad > NAMED_MAX) continue;
        add(err, errlen,
            "%srank %d on host %s: %s says rank %d of %d, local %d of %d; MPI says rank %d of "
            "%d, local %d of %d",
            bad > 1 ? "; " : "", r, v->host, v->source, v->env_rank, v->env_size, v->env_local_rank,
            v->env_local_size, r, nranks, v->local_rank, v->local_size);
    }
    if (!bad) return 0;
    if (bad > NAMED_MAX) add(err, errlen, "; and %d more ranks", bad - NAMED_MAX);
    add(err, errlen,
        ". Devices and cores were planned for the wrong rank: start hetrun with the launcher "
        "that set these variables (mpirun; srun with MPI support, e.g. --mpi=pmix), or unset the "
        "stale ones");
    return -1;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The distinct backends, sorted; returns how many. */
static int distinct_backends(const rank_view *all, int nranks, const char **names) {
    int n = 0;
    for (int r = 0; r < nranks; r++) {
        int seen = 0;
        for (int k = 0; k < n && !seen; k++)
            seen = strcmp(names[k], all[r].backend) == 0;
        if (!seen) names[n++] = all[r].backend;
    }
    qsort(names, (size_t)n, sizeof *names, cmp_str);
    return n;
}

static void describe_mix(const rank_view *all, int nranks, const char **names, int n, char *err,
                         size_t errlen) {
    for (int k = 0; k < n; k++) {
        add(err, errlen, "%s%s on ", k ? "; " : "", names[k]);
        int named = 0, count = 0;
        for (int r = 0; r < nranks; r++) {
            if (strcmp(all[r].backend, names[k]) != 0) continue;
            if (++count > NAMED_MAX) continue;
            add(err, errlen, "%srank %d (host %s%s)", named++ ? ", " : "", r, all[r].host,
                all[r].cpu_only ? ", no device in the placement plan" : "");
        }
        if (count > NAMED_MAX) add(err, errlen, " and %d more ranks", count - NAMED_MAX);
    }
}

/* The failed report of a job whose ranks disagree: nothing ran. */
static void write_failed_report(const char *path, const cJSON *job_obj, const rank_view *all,
                                int nranks, const char *job_backend, const char *why) {
    cJSON *report = cJSON_CreateObject();
    cJSON_AddStringToObject(report, "schema_version", HETRUN_REPORT_SCHEMA_VERSION);
    cJSON_AddStringToObject(report, "generator", HETRUN_REPORT_GENERATOR);
    cJSON_AddStringToObject(report, "status", "failed");
    cJSON_AddStringToObject(report, "reason", why);
    cJSON_AddStringToObject(report, "hetrun_version", HETRUN_VERSION);
    if (job_obj) cJSON_AddItemToObject(report, "job", cJSON_Duplicate(job_obj, 1));
    cJSON_AddStringToObject(report, "backend", job_backend);
    cJSON *ranks = cJSON_AddArrayToObject(report, "ranks");
    for (int r = 0; r < nranks; r++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "rank", r);
        cJSON_AddStringToObject(o, "host", all[r].host);
        cJSON_AddStringToObject(o, "backend", all[r].backend);
        cJSON_AddStringToObject(o, "status", "failed");
        cJSON_AddStringToObject(o, "error", "not started: the ranks disagree (see reason)");
        cJSON_AddItemToArray(ranks, o);
    }
    char *text = cJSON_Print(report);
    char err[512];
    if (text && hetrun_write_atomic(path, text, strlen(text), err, sizeof err) != 0)
        HETRUN_ERROR("cannot write the report: %s", err);
    cJSON_free(text);
    cJSON_Delete(report);
}

/* This node's index and the node count: the nodes are the MPI_COMM_TYPE_SHARED groups; their
 * first ranks (the lowest world rank of each) form one communicator ordered by world rank,
 * and a node's index is its first rank's place there. Fills the MPI local rank and size. */
static void mpi_nodes(int rank, int *local_rank, int *local_size, int *node_index, int *nnodes) {
    MPI_Comm node, firsts;
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &node);
    MPI_Comm_rank(node, local_rank);
    MPI_Comm_size(node, local_size);
    MPI_Comm_split(MPI_COMM_WORLD, *local_rank == 0 ? 0 : MPI_UNDEFINED, rank, &firsts);
    int where[2] = {0, 1};
    if (firsts != MPI_COMM_NULL) {
        MPI_Comm_rank(firsts, &where[0]);
        MPI_Comm_size(firsts, &where[1]);
        MPI_Comm_free(&firsts);
    }
    MPI_Bcast(where, 2, MPI_INT, 0, node);
    MPI_Comm_free(&node);
    *node_index = where[0], *nnodes = where[1];
}

/* Rank 0's verdict, broadcast so every rank ends the same way with the same text. */
typedef struct verdict {
    int32_t rc;
    char job_backend[256];
    char err[4096];
} verdict;

/* Rank 0: the verdict over every rank's view. */
static void judge(const hetrun_job *job, const rank_view *all, int nranks, verdict *v) {
    const char **names = calloc((size_t)nranks, sizeof *names);
    if (!names) {
        v->rc = -1;
        snprintf(v->err, sizeof v->err, "rank 0: out of memory judging %d ranks' views", nranks);
        return;
    }
    int n = distinct_backends(all, nranks, names);
    for (int k = 0; k < n; k++)
        add(v->job_backend, sizeof v->job_backend, "%s%s", k ? "+" : "", names[k]);
    v->rc = check_identity(all, nranks, v->err, sizeof v->err);
    if (v->rc == 0 && n > 1 && job->backend_mix != HETRUN_BACKEND_MIX_ALLOW) {
        snprintf(v->err, sizeof v->err, "the ranks would run on different backends: ");
        describe_mix(all, nranks, names, n, v->err, sizeof v->err);
        add(v->err, sizeof v->err,
            ". A job runs on one backend unless the spec says `backend_mix: allow`: install "
            "the missing driver (see `hetrun backends` on each host), list one backend, or "
            "give every rank a device (placement)");
        v->rc = -1;
    } else if (v->rc == 0 && n > 1) {
        char mix[2048] = "";
        describe_mix(all, nranks, names, n, mix, sizeof mix);
        HETRUN_WARN("backend_mix: allow: the ranks run on different backends: %s", mix);
    }
    free(names);
}

int hetrun_job_agree(const hetrun_job *job, hetrun_placement *pl, const char *backend,
                     const char *report_path, const cJSON *job_obj, char *job_backend,
                     size_t job_backend_len, char *err, size_t errlen,
                     void (*before_report)(void)) {
    int rank = 0, nranks = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &nranks);
    rank_view mine;
    memset(&mine, 0, sizeof mine);
    mine.env_rank = pl->id.rank, mine.env_size = pl->id.size;
    mine.env_local_rank = pl->id.local_rank, mine.env_local_size = pl->id.local_size;
    mine.cpu_only = pl->device_index < 0;
    gethostname(mine.host, sizeof mine.host - 1);
    snprintf(mine.backend, sizeof mine.backend, "%s", hetrun_job_rank_backend(pl, backend));
    snprintf(mine.source, sizeof mine.source, "%s", pl->id.source);
    int lr = 0, ls = 1;
    mpi_nodes(rank, &lr, &ls, &pl->id.node_index, &pl->id.nnodes);
    mine.local_rank = lr, mine.local_size = ls;

    /* Gathered on rank 0 only (memory there, not on every rank), judged, broadcast. */
    verdict *v = calloc(1, sizeof *v);
    rank_view *all = rank == 0 ? calloc((size_t)nranks, sizeof *all) : NULL;
    int ready = v && (rank != 0 || all), all_ready = 0;
    MPI_Allreduce(&ready, &all_ready, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    if (!all_ready) { /* every rank takes this branch together */
        snprintf(err, errlen, "out of memory gathering %d ranks' identities", nranks);
        snprintf(job_backend, job_backend_len, "%s", mine.backend);
        free(v), free(all);
        return HETRUN_EXIT_BACKEND;
    }
    MPI_Gather(&mine, (int)sizeof mine, MPI_BYTE, all, (int)sizeof mine, MPI_BYTE, 0,
               MPI_COMM_WORLD);
    if (rank == 0) judge(job, all, nranks, v);
    MPI_Bcast(v, (int)sizeof *v, MPI_BYTE, 0, MPI_COMM_WORLD);
    v->err[sizeof v->err - 1] = v->job_backend[sizeof v->job_backend - 1] = '\0';
    snprintf(job_backend, job_backend_len, "%s", v->job_backend);
    snprintf(err, errlen, "%s", v->err);
    int rc = v->rc;
    if (rc != 0 && rank == 0 && report_path) {
        if (before_report) before_report();
        write_failed_report(report_path, job_obj, all, nranks, job_backend, err);
    }
    free(v);
    free(all);
    return rc == 0 ? HETRUN_EXIT_OK : HETRUN_EXIT_BACKEND;
}
