/* Rank 0 reads, everyone receives: the state every rank resumes from is rank 0's bytes. */
#include "workloads/ckpt_resume.h"

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
    char path[4096];
    char err[1536];
} outcome;

static int share_outcome(hetrun_session *s, outcome *o, char *path, size_t path_len, char *err,
                         size_t err_len) {
    char host[64] = "";
    if (s->rank == 0) {
        gethostname(host, sizeof host - 1);
        if (o->got < 0) {
            char why[sizeof o->err];
            snprintf(why, sizeof why, "%s", o->err);
            snprintf(o->err, sizeof o->err,
                     "rank 0 (host %s) reads the checkpoint for every rank: %s", host, why);
        }
    }
    if (MPI_Bcast(o, (int)sizeof *o, MPI_BYTE, 0, s->comm) != MPI_SUCCESS) {
        snprintf(err, err_len, "rank %d: MPI_Bcast of rank 0's checkpoint outcome failed", s->rank);
        return -1;
    }
    snprintf(path, path_len, "%s", o->path);
    if (o->got < 0) snprintf(err, err_len, "%s", o->err);
    return o->got;
}

/* After the arrays arrived: each rank checks their CRC against rank 0's and every rank
 * learns whether all agree. Returns 0, or -1 on every rank with the ranks named in err. */
static int agree_crc(hetrun_session *s, int sent_ok, uint32_t want, uint32_t have, char *err,
                     size_t err_len) {
    int bad = !sent_ok || have != want;
    int any = 0;
    if (MPI_Allreduce(&bad, &any, 1, MPI_INT, MPI_MAX, s->comm) != MPI_SUCCESS) any = 1;
    if (!any) return 0;
    int *flags = calloc((size_t)s->nranks, sizeof *flags);
    snprintf(err, err_len,
             "the checkpoint state broadcast from rank 0 (CRC32 %08x) did not "
             "arrive intact on rank(s)",
             (unsigned)want);
    if (flags && MPI_Allgather(&bad, 1, MPI_INT, flags, 1, MPI_INT, s->comm) == MPI_SUCCESS) {
        for (int r = 0; r < s->nranks; r++)
            if (flags[r]) {
                size_t used = strlen(err);
                snprintf(err + used, err_len - used, " %d", r);
            }
    }
    free(flags);
    return -1;
}

int hetrun_ckpt_resume(hetrun_session *s, const char *dir, hetrun_ckpt *c, char *path,
                       size_t path_len, char *err, size_t err_len) {
    outcome out, *o = &out;
    memset(o, 0, sizeof *o);
    memset(c, 0, sizeof *c);
    if (s->rank == 0) {
        o->got = hetrun_ckpt_load_newest(dir, c, o->path, sizeof o->path, o->err, sizeof o->err);
        if (o->got > 0) {
            uint64_t f = (uint64_t)c->h.shape.dims[0] * 4;
            o->crc = crc_add(0, c->mean, f);
            o->crc = crc_add(o->crc, c->std, f);
            o->crc = crc_add(o->crc, c->params, c->h.param_count * 4);
            if (c->h.state_count) o->crc = crc_add(o->crc, c->state, c->h.state_count * 4);
        }
    }
    int got = share_outcome(s, o, path, path_len, err, err_len);
    uint32_t want = o->crc;
    if (got <= 0) return got;
    int ok = bcast_bytes(&c->h, sizeof c->h, s->comm) == 0;
    uint64_t f = (uint64_t)c->h.shape.dims[0] * 4, p = c->h.param_count * 4,
             st = c->h.state_count * 4;
    if (s->rank != 0) {
        c->mean = malloc(f ? f : 1), c->std = malloc(f ? f : 1);
        c->params = malloc(p ? p : 1), c->state = malloc(st ? st : 1);
        if (!c->mean || !c->std || !c->params || !c->state) ok = 0;
    }
    /* Every rank must join every broadcast: a rank short of memory says so afterwards. */
    int all_ok = 0;
    MPI_Allreduce(&ok, &all_ok, 1, MPI_INT, MPI_MIN, s->comm);
    uint32_t have = 0;
    if (all_ok) {
        ok = bcast_bytes(c->mean, f, s->comm) == 0 && bcast_bytes(c->std, f, s->comm) == 0 &&
             bcast_bytes(c->params, p, s->comm) == 0 && bcast_bytes(c->state, st, s->comm) == 0;
        have = crc_add(0, c->mean, f);
        have = crc_add(have, c->std, f);
        have = crc_add(have, c->params, p);
        if (st) have = crc_add(have, c->state, st);
    }
    if (agree_crc(s, ok && all_ok, want, have, err, err_len) != 0) {
        hetrun_ckpt_free(c);
        return -1;
    }
    if (s->rank == 0)
        HETRUN_INFO("resume: %s (step %lld, CRC32 %08x) sent to all %d ranks", path,
                    (long long)c->h.step, (unsigned)want, s->nranks);
    return 1;
}

int hetrun_nn_ckpt_resume(hetrun_session *s, const char *dir, const hetrun_param_tensor *tensors,
                          int count, uint64_t param_count, float *params, float *state,
                          hetrun_nn_ckpt_meta *meta, char *path, size_t path_len, char *err,
                          size_t err_len) {
    outcome out, *o = &out;
    memset(o, 0, sizeof *o);
    const uint64_t p = param_count * 4, st = param_count * 8;
    if (s->rank == 0) {
        o->got = hetrun_nn_ckpt_load_newest(dir, tensors, count, param_count, params, state, meta,
                                            o->path, sizeof o->path, o->err, sizeof o->err);
        if (o->got > 0) o->crc = crc_add(crc_add(0, params, p), state, st);
    }
    int got = share_outcome(s, o, path, path_len, err, err_len);
    uint32_t want = o->crc;
    if (got <= 0) return got;
    int ok = bcast_bytes(meta, sizeof *meta, s->comm) == 0 &&
             bcast_bytes(params, p, s->comm) == 0 && bcast_bytes(state, st, s->comm) == 0;
    uint32_t have = crc_add(crc_add(0, params, p), state, st);
    if (agree_crc(s, ok, want, have, err, err_len) != 0) return -1;
    if (s->rank == 0)
        HETRUN_INFO("resume: %s (step %lld, CRC32 %08x) sent to all %d ranks", path,
                    (long long)meta->step, (unsigned)want, s->nranks);
    return 1;
}
