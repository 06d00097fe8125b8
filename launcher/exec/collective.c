/* Data-parallel allreduce: device collective when the backend has one, else host staging
 * through one persistent buffer (a fresh 64 MiB buffer per call would cost ~11 us of page
 * faults per 4 KiB page here, more than the reduction itself). */
#include "exec/collective.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"

static struct {
    void *host;                       /* persistent staging buffer */
    uint64_t host_bytes;              /* its size */
    int device_tried;                 /* device communicator creation attempted */
    const hetrun_session *device_for; /* session whose device_comm we created */
} g_coll;

static int has_device_collective(const hetrun_session *s) {
    const hetrun_backend_ops *o = s->ops;
    return o && o->comm_id_create && o->comm_init && o->comm_destroy && o->comm_allreduce;
}

static void mpi_error_text(int code, char *out, size_t len) {
    int n = 0;
    char text[MPI_MAX_ERROR_STRING];
    if (MPI_Error_string(code, text, &n) != MPI_SUCCESS)
        snprintf(text, sizeof text, "code %d", code);
    snprintf(out, len, "%s", text);
}

/* Creates s->device_comm on every rank or on none (collective). */
static void join_device_comm(hetrun_session *s) {
    g_coll.device_tried = 1;
    g_coll.device_for = s;
    struct {
        int32_t status;
        uint8_t id[HETRUN_COMM_ID_BYTES];
    } msg;
    memset(&msg, 0, sizeof msg);
    if (s->rank == 0) {
        msg.status = s->ops->comm_id_create(msg.id);
        if (msg.status != HETRUN_OK)
            HETRUN_WARN("%s comm_id_create failed (%s); allreduce falls back to host staging",
                        s->ops->name, s->ops->last_error());
    }
    MPI_Bcast(&msg, (int)sizeof msg, MPI_BYTE, 0, s->comm);
    if (msg.status != HETRUN_OK) return;
    hetrun_comm *comm = NULL;
    int ok = s->ops->comm_init(s->device, msg.id, s->nranks, s->rank, &comm) == HETRUN_OK;
    if (!ok)
        HETRUN_WARN("%s comm_init(rank %d of %d) failed: %s; allreduce falls back to host staging",
                    s->ops->name, s->rank, s->nranks, s->ops->last_error());
    int all_ok = 0;
    MPI_Allreduce(&ok, &all_ok, 1, MPI_INT, MPI_LAND, s->comm);
    if (!all_ok) {
        if (comm) s->ops->comm_destroy(comm);
        return;
    }
    s->device_comm = comm;
}

int hetrun_collective_prepare(hetrun_session *s, uint64_t bytes) {
    if (s->nranks <= 1) return 0;
    if (has_device_collective(s) && !s->device_comm &&
        !(g_coll.device_tried && g_coll.device_for == s))
        join_device_comm(s);
    if (s->device_comm) return 0;
    if (bytes <= g_coll.host_bytes) return 0;
    void *p = NULL;
    if (posix_memalign(&p, 4096, (size_t)bytes) != 0 || !p) {
        snprintf(s->error, sizeof s->error,
                 "allreduce: posix_memalign(%llu bytes) for the host staging buffer failed",
                 (unsigned long long)bytes);
        return -1;
    }
    memset(p, 0, (size_t)bytes); /* pre-fault every page now, not inside the first step */
    free(g_coll.host);
    g_coll.host = p;
    g_coll.host_bytes = bytes;
    return 0;
}

int hetrun_collective_is_device(const hetrun_session *s) {
    return s->device_comm != NULL;
}

int hetrun_allreduce_sum_f32(hetrun_session *s, hetrun_tensor buf, uint64_t count) {
    const uint64_t bytes = count * sizeof(float);
    s->usage.collective_bytes += (double)bytes;
    if (s->nranks <= 1 || count == 0) return 0;
    if (s->device_comm) {
        hetrun_session_activity(s); /* device work outside hetrun_exec_op: count it busy */
        if (s->ops->comm_allreduce(s->device_comm, s->queue, buf, count, HETRUN_F32,
                                   HETRUN_REDUCE_SUM) != HETRUN_OK) {
            snprintf(s->error, sizeof s->error, "allreduce: %s comm_allreduce of %llu fp32: %s",
                     s->ops->name, (unsigned long long)count, s->ops->last_error());
            return -1;
        }
        return 0;
    }
    if (count > (uint64_t)0x7fffffff) {
        snprintf(s->error, sizeof s->error, "allreduce: %llu elements exceed MPI's int count",
                 (unsigned long long)count);
        return -1;
    }
    if (bytes > g_coll.host_bytes && hetrun_collective_prepare(s, bytes) != 0) return -1;
    /* d2h returns when the host copy holds the data, so the queue's prior work is done. */
    if (hetrun_session_d2h(s, g_coll.host, buf, bytes) != 0) return -1;
    int rc = MPI_Allreduce(MPI_IN_PLACE, g_coll.host, (int)count, MPI_FLOAT, MPI_SUM, s->comm);
    if (rc != MPI_SUCCESS) {
        char why[MPI_MAX_ERROR_STRING];
        mpi_error_text(rc, why, sizeof why);
        snprintf(s->error, sizeof s->error, "allreduce: MPI_Allreduce of %llu fp32 on %d ranks: %s",
                 (unsigned long long)count, s->nranks, why);
        return -1;
    }
    return hetrun_session_h2d(s, buf, g_coll.host, bytes);
}

void hetrun_collective_release(void) {
    free(g_coll.host);
    memset(&g_coll, 0, sizeof g_coll);
}
