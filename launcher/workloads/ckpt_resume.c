/* Rank 0 reads, everyone receives: the state every rank resumes from is rank 0's bytes. */
#include "workloads/ckpt_resume.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "util/log.h"

/* MPI counts are int: large tensors go in pieces of 1 GiB. */
#define PIECE (1ull << 30)

static int bcast_bytes(void *p, uint64_t bytes, MPI_Comm comm) {
    for (uint64_t off = 0; off < bytes; off += PIECE) {
        uint64_t n = bytes - off < PIECE ? bytes - off : PIECE;
        if (MPI_Bcast((char *)p + off, (int)n, MPI_BYTE, 0, comm) != MPI_SUCCESS) return -1;
    }
    return 0;
}

static uint32_t crc_add(uint32_t crc, const void *p, uint64_t bytes) {
    const Bytef *b = p;
    uLong c = crc;
    while (bytes) {
        uInt n = bytes > PIECE ? (uInt)PIECE : (uInt)bytes;
        c = crc32(c, b, n);
        b += n, bytes -= n;
    }
    return (uint32_t)c;
}

/* Rank 0's outcome and message, then its path: what every rank learns first. */
typedef struct outcome {
    int32_t got;
    uint32_t crc; /* of every array sent, in order */
    int64_t step; /* the step resumed from, -1: none */
    char host[64];
    char path[4096];
    char err[1536];
} outcome;

/* Newest step a ckpt-<12 digits><suffix> name in `dir` claims, or -1. Names only. */
static int64_t newest_named(const char *dir, const char *suffix, char *name, size_t name_len) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    int64_t best = -1;
    const struct dirent *e;
    while ((e = readdir(d))) {
        long long step = -1;
        int n = 0;
        if (sscanf(e->d_name, "ckpt-%12lld%n", &step, &n) == 1 && n == 17 && step > best &&
            strcmp(e->d_name + n, suffix) == 0) {
            best = step;
            snprintf(name, name_len, "%s", e->d_name);
        }
    }
    closedir(d);
    return best;
}

/* Broadcasts rank 0's outcome. A rank whose own folder names a newer checkpoint says so:
 * with node-local folders that is the sign that rank 0 now runs on another node than the
 * one that wrote them (its state is used all the same, so no rank diverges). */
static int share_outcome(hetrun_session *s, const char *dir, const char *suffix, outcome *o,
                         char *path, size_t path_len, char *err, size_t err_len) {
    if (s->rank == 0) {
        gethostname(o->host, sizeof o->host - 1);
        if (o->got < 0) {
            char why[sizeof o->err];
            snprintf(why, sizeof why, "%s", o->err);
            snprintf(o->err, sizeof o->err,
                     "rank 0 (host %s) reads the checkpoint for every rank: %s", o->host, why);
        }
    }
    if (MPI_Bcast(o, (int)sizeof *o, MPI_BYTE, 0, s->comm) != MPI_SUCCESS) {
        snprintf(err, err_len, "rank %d: MPI_Bcast of rank 0's checkpoint outcome failed", s->rank);
        return -1;
    }
    char name[256], host[64] = "";
    int64_t own = s->rank == 0 ? -1 : newest_named(dir, suffix, name, sizeof name);
    if (own > o->step) {
        gethostname(host, sizeof host - 1);
        char theirs[64] = "no valid checkpoint";
        if (o->step >= 0) snprintf(theirs, sizeof theirs, "step %lld", (long long)o->step);
        HETRUN_WARN("resume: checkpoint folder %s on host %s holds %s (step %lld), newer than "
                    "what rank 0 (host %s) has (%s); every rank resumes from rank 0's state. "
                    "With node-local folders only rank 0's node counts: keep rank 0 on the node "
                    "that wrote them, or use a shared folder",
                    dir, host, name, (long long)own, o->host, theirs);
    }
    snprintf(path, path_len, "%s", o->path);
    if (o->got < 0) snprintf(err, err_len, "%s", o->err);
    return o->got;
}

/* How the state arrived on one rank. */
enum { ARRIVED = 0, NO_MEMORY, MPI_FAILED, CRC_DIFFERS };

/* After the arrays arrived: every rank learns whether all hold rank 0's bytes. Returns 0, or
 * -1 on every rank with each rank that does not named with its host and why in err. */
static int agree_state(hetrun_session *s, int status, uint32_t want, uint64_t bytes, char *err,
                       size_t err_len) {
    int any = 0;
    if (MPI_Allreduce(&status, &any, 1, MPI_INT, MPI_MAX, s->comm) != MPI_SUCCESS) any = 1;
    if (!any) return 0;
    static const char *const why[] = {"", "out of host memory", "MPI_Bcast failed",
                                      "CRC32 differs"};
    struct {
        int32_t status;
        char host[64];
    } mine = {status, ""}, *all = calloc((size_t)s->nranks, sizeof mine);
    gethostname(mine.host, sizeof mine.host - 1);
    snprintf(err, err_len,
             "the checkpoint state broadcast from rank 0 (%llu bytes, CRC32 %08x) did not arrive "
             "intact on every rank:",
             (unsigned long long)bytes, (unsigned)want);
    if (all && MPI_Allgather(&mine, (int)sizeof mine, MPI_BYTE, all, (int)sizeof mine, MPI_BYTE,
                             s->comm) == MPI_SUCCESS) {
        for (int r = 0; r < s->nranks; r++)
            if (all[r].status > ARRIVED && all[r].status <= CRC_DIFFERS) {
                size_t used = strlen(err);
                snprintf(err + used, err_len - used, " rank %d (host %s): %s;", r, all[r].host,
                         why[all[r].status]);
            }
    }
    free(all);
    return -1;
}

int hetrun_nn_ckpt_resume(hetrun_session *s, const char *dir, const hetrun_param_tensor *tensors,
                          int count, uint64_t param_count, float *params, float *state,
                          hetrun_nn_ckpt_meta *meta, char *path, size_t path_len, char *err,
                          size_t err_len) {
    outcome out, *o = &out;
    memset(o, 0, sizeof *o);
    const uint64_t p = param_count * 4, st = param_count * 4 * (uint64_t)meta->state_slots;
    if (s->rank == 0) {
        o->got = hetrun_nn_ckpt_load_newest(dir, tensors, count, param_count, params, state, meta,
                                            o->path, sizeof o->path, o->err, sizeof o->err);
        o->step = o->got > 0 ? meta->step : -1;
        if (o->got > 0) o->crc = crc_add(crc_add(0, params, p), state, st);
    }
    int got = share_outcome(s, dir, ".safetensors", o, path, path_len, err, err_len);
    uint32_t want = o->crc;
    if (got <= 0) return got;
    int status = bcast_bytes(meta, sizeof *meta, s->comm) || bcast_bytes(params, p, s->comm) ||
                         bcast_bytes(state, st, s->comm)
                     ? MPI_FAILED
                     : ARRIVED;
    if (status == ARRIVED && crc_add(crc_add(0, params, p), state, st) != want)
        status = CRC_DIFFERS;
    if (agree_state(s, status, want, p + st, err, err_len) != 0) return -1;
    if (s->rank == 0)
        HETRUN_INFO("resume: %s (step %lld, CRC32 %08x) sent to all %d ranks", path,
                    (long long)meta->step, (unsigned)want, s->nranks);
    return 1;
}
