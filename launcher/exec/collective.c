/* Data-parallel allreduce: the backend's device collective when it has one, else in place
 * on host memory (ABI 1.2 mem_host_ptr), else host staging through the session's persistent
 * buffer (a fresh 64 MiB buffer per call would cost ~11 us of page faults per 4 KiB page
 * here, more than the reduction itself). */
#include "exec/collective.h"

#include <stdio.h>
#include <string.h>

#include "util/log.h"

static void mpi_error_text(int code, char *out, size_t len) {
    int n = 0;
    char text[MPI_MAX_ERROR_STRING];
    if (MPI_Error_string(code, text, &n) != MPI_SUCCESS)
        snprintf(text, sizeof text, "code %d", code);
    snprintf(out, len, "%s", text);
}

/* Creates s->device_comm on every rank or on none (collective); a failure is a warning
 * and the fallback is host staging, the same on every rank. */
static void join_device_comm(hetrun_session *s) {
    s->device_comm_tried = true;
    struct {
        int32_t status;
        uint8_t id[HETRUN_COMM_ID_BYTES];
    } msg;
    memset(&msg, 0, sizeof msg);
    if (s->rank == 0) {
        msg.status = hetrun_session_comm_id_create(s, msg.id);
        if (msg.status != 0) HETRUN_WARN("%s; allreduce falls back to host staging", s->error);
    }
    MPI_Bcast(&msg, (int)sizeof msg, MPI_BYTE, 0, s->comm);
    if (msg.status != 0) return;
    int ok = hetrun_session_comm_join(s, msg.id) == 0;
    if (!ok) HETRUN_WARN("%s; allreduce falls back to host staging", s->error);
    int all_ok = 0;
    MPI_Allreduce(&ok, &all_ok, 1, MPI_INT, MPI_LAND, s->comm);
    if (!all_ok) hetrun_session_comm_leave(s);
}

int hetrun_collective_prepare(hetrun_session *s, uint64_t bytes) {
    if (s->nranks <= 1) return 0;
    if (hetrun_session_has_device_collective(s) && !s->device_comm && !s->device_comm_tried)
        join_device_comm(s);
    if (s->device_comm) return 0;
    void *host;
    return bytes ? hetrun_session_staging(s, bytes, &host) : 0;
}

int hetrun_collective_is_device(const hetrun_session *s) {
    return s->device_comm != NULL;
}

int hetrun_allreduce_sum(hetrun_session *s, hetrun_tensor buf, uint64_t count, hetrun_dtype dtype) {
    const uint64_t bytes = count * hetrun_dtype_size(dtype);
    if (s->nranks <= 1 || count == 0) return 0;
    if (s->device_comm) return hetrun_session_comm_allreduce(s, buf, count, dtype);
    MPI_Datatype mt = dtype == HETRUN_F64 ? MPI_DOUBLE : dtype == HETRUN_I32 ? MPI_INT : MPI_FLOAT;
    if (dtype != HETRUN_F32 && dtype != HETRUN_F64 && dtype != HETRUN_I32) {
        snprintf(s->error, sizeof s->error,
                 "allreduce: host staging sums fp32, fp64 or int32, not %s",
                 hetrun_dtype_name(dtype));
        return -1;
    }
    if (count > (uint64_t)0x7fffffff) {
        snprintf(s->error, sizeof s->error, "allreduce: %llu elements exceed MPI's int count",
                 (unsigned long long)count);
        return -1;
    }
    void *host = NULL;
    /* Host memory (the cpu backend): in place, once the ops writing it are done. */
    int mapped = hetrun_session_host_ptr(s, buf, bytes, &host);
    if (mapped < 0 || (mapped && hetrun_session_sync(s) != 0)) return -1;
    if (!mapped && hetrun_session_staging(s, bytes, &host) != 0) return -1;
    /* d2h returns when the host copy holds the data, so the queue's prior work is done. */
    if (!mapped && hetrun_session_d2h(s, host, buf, bytes) != 0) return -1;
    int rc = MPI_Allreduce(MPI_IN_PLACE, host, (int)count, mt, MPI_SUM, s->comm);
    if (rc != MPI_SUCCESS) {
        char why[MPI_MAX_ERROR_STRING];
        mpi_error_text(rc, why, sizeof why);
        snprintf(s->error, sizeof s->error, "allreduce: MPI_Allreduce of %llu %s on %d ranks: %s",
                 (unsigned long long)count, hetrun_dtype_name(dtype), s->nranks, why);
        return -1;
    }
    return mapped ? 0 : hetrun_session_h2d(s, buf, host, bytes);
}

int hetrun_allreduce_sum_f32(hetrun_session *s, hetrun_tensor buf, uint64_t count) {
    s->usage.collective_bytes += (double)(count * sizeof(float));
    return hetrun_allreduce_sum(s, buf, count, HETRUN_F32);
}
