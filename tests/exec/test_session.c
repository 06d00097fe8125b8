/* The session on real modules: a GEMM on the cpu backend checked against the plain-C
 * reference (random inputs in [-1, 1], tolerance 2k * 2^-24 relative to sum |a||b|),
 * its accounting (op count, catalogue FLOPs and bytes, copies, device memory in use and
 * peak, busy time inside the wall time of the region), the staging buffer, and the
 * error for an op the backend does not support (template backend, fp64 GEMM), which
 * must name op, dtype and backend. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exec/session.h"
#include "kernels/reference.h"
#include "loader/loader.h"
#include "util/clock.h"

#include "../check.h"

static int open_module(hetrun_backend_module *m, const char *name, const char *path) {
    memset(m, 0, sizeof *m);
    snprintf(m->name, sizeof m->name, "%s", name);
    snprintf(m->path, sizeof m->path, "%s", path);
    int rc = hetrun_module_open(m, hetrun_host_services_get());
    if (rc != 0) printf("FAIL: cannot open %s (%s): %s\n", name, path, m->reason);
    return rc;
}

static void fill(float *v, uint64_t n, uint32_t seed) {
    for (uint64_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        v[i] = (float)((seed >> 8) * (2.0 / 16777216.0) - 1.0); /* [-1, 1), never all zero */
    }
}

static void session_init(hetrun_session *s) {
    memset(s, 0, sizeof *s);
    s->comm = MPI_COMM_NULL; /* no collective here */
    s->rank = 0, s->nranks = 1;
}

static void test_cpu_gemm(void) {
    hetrun_backend_module m;
    if (open_module(&m, "cpu", CPU_MODULE) != 0) {
        failures++;
        return;
    }
    hetrun_session s;
    session_init(&s);
    CHECK(hetrun_session_open(&s, &m, 0) == 0, "open: %s", s.error);
    CHECK(strcmp(hetrun_session_backend_name(&s), "cpu") == 0, "backend name %s",
          hetrun_session_backend_name(&s));

    const int64_t M = 33, N = 47, K = 65; /* odd sizes: no kernel's happy path */
    hetrun_op_desc d = hetrun_op_desc_init(HETRUN_OP_GEMM, HETRUN_F32);
    d.m = M, d.n = N, d.k = K;
    uint64_t bytes[3], total = 0;
    hetrun_buffer *buf[3];
    float *host[3], *ref[3];
    for (int a = 0; a < 3; a++) {
        bytes[a] = hetrun_op_arg_bytes(&d, a);
        total += bytes[a];
        host[a] = malloc(bytes[a]);
        ref[a] = malloc(bytes[a]);
        fill(host[a], bytes[a] / 4, 7u + (uint32_t)a);
        memcpy(ref[a], host[a], bytes[a]);
        CHECK(hetrun_session_alloc(&s, bytes[a], &buf[a]) == 0, "alloc: %s", s.error);
    }
    CHECK(s.usage.mem_in_use == total, "mem_in_use %llu, want %llu",
          (unsigned long long)s.usage.mem_in_use, (unsigned long long)total);

    double t0 = hetrun_now_s();
    for (int a = 0; a < 2; a++)
        CHECK(hetrun_session_h2d(&s, hetrun_tensor_at(buf[a], 0), host[a], bytes[a]) == 0,
              "h2d: %s", s.error);
    hetrun_tensor args[3] = {hetrun_tensor_at(buf[0], 0), hetrun_tensor_at(buf[1], 0),
                             hetrun_tensor_at(buf[2], 0)};
    CHECK(hetrun_exec_op(&s, &d, args) == 0, "gemm: %s", s.error);
    CHECK(hetrun_session_d2h(&s, host[2], args[2], bytes[2]) == 0, "d2h: %s", s.error);
    double wall = hetrun_now_s() - t0;

    void *rargs[3] = {ref[0], ref[1], ref[2]};
    CHECK(hetrun_reference_run(&d, rargs) == 0, "reference gemm");
    double worst = 0.0;
    for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < N; j++) {
            double bound = 0.0;
            for (int64_t k = 0; k < K; k++)
                bound += fabs((double)ref[0][i * K + k] * ref[1][k * N + j]);
            double e = fabs((double)host[2][i * N + j] - ref[2][i * N + j]) / bound;
            if (!(e <= worst)) worst = isnan(e) ? INFINITY : e;
        }
    CHECK(worst <= 2.0 * K * ldexp(1.0, -24), "gemm differs from the reference: %g", worst);

    /* Accounting: what the catalogue says, once. */
    CHECK(s.usage.ops == 1 && s.usage.op_counts[HETRUN_OP_GEMM] == 1, "ops %llu",
          (unsigned long long)s.usage.ops);
    CHECK(s.usage.flops == hetrun_op_flops(&d) && s.usage.flops == 2.0 * M * N * K,
          "flops %g, catalogue %g", s.usage.flops, hetrun_op_flops(&d));
    CHECK(s.usage.op_flops[HETRUN_OP_GEMM] == s.usage.flops, "op_flops %g",
          s.usage.op_flops[HETRUN_OP_GEMM]);
    CHECK(s.usage.bytes == hetrun_op_bytes(&d), "bytes %g, catalogue %g", s.usage.bytes,
          hetrun_op_bytes(&d));
    CHECK(s.usage.h2d_bytes == bytes[0] + bytes[1] && s.usage.d2h_bytes == bytes[2],
          "copies h2d %llu d2h %llu", (unsigned long long)s.usage.h2d_bytes,
          (unsigned long long)s.usage.d2h_bytes);
    /* The busy span ran from the first copy to the d2h: inside the host's wall time. */
    CHECK(s.usage.device_busy_s > 0.0 && s.usage.device_busy_s <= wall, "busy %g s, wall %g s",
          s.usage.device_busy_s, wall);

    /* A timed region lies inside a busy span: the busy time grows by at least the
     * region's time and by no more than the host's wall time around it. */
    double busy = s.usage.device_busy_s, ms = -1.0, t1 = hetrun_now_s();
    CHECK(hetrun_session_timer_start(&s) == 0 && hetrun_exec_op(&s, &d, args) == 0 &&
              hetrun_session_timer_stop(&s, &ms) == 0,
          "timed gemm: %s", s.error);
    double grew = s.usage.device_busy_s - busy, wall1 = hetrun_now_s() - t1;
    CHECK(ms > 0.0 && grew >= ms * 1e-3 * (1.0 - 1e-9) && grew <= wall1,
          "timer %g ms, busy grew by %g s in %g s of wall time", ms, grew, wall1);
    CHECK(s.usage.ops == 2, "ops after the timed gemm %llu", (unsigned long long)s.usage.ops);

    /* Memory: freeing lowers the bytes in use, never the peak. */
    uint64_t peak = s.usage.mem_peak;
    CHECK(peak >= total, "peak %llu < %llu", (unsigned long long)peak, (unsigned long long)total);
    hetrun_session_free(&s, buf[0], bytes[0]);
    CHECK(s.usage.mem_in_use == total - bytes[0] + s.workspace_bytes, "mem_in_use after free %llu",
          (unsigned long long)s.usage.mem_in_use);
    CHECK(s.usage.mem_peak == peak, "peak moved to %llu", (unsigned long long)s.usage.mem_peak);

    /* Staging: page-aligned, reused when big enough. */
    void *h1 = NULL, *h2 = NULL;
    CHECK(hetrun_session_staging(&s, 10000, &h1) == 0 && ((uintptr_t)h1 % 4096) == 0,
          "staging %p: %s", h1, s.error);
    CHECK(hetrun_session_staging(&s, 100, &h2) == 0 && h2 == h1, "a smaller staging moved");

    hetrun_session_free(&s, buf[1], bytes[1]);
    hetrun_session_free(&s, buf[2], bytes[2]);
    hetrun_session_close(&s);
    CHECK(s.staging == NULL && s.usage.mem_in_use == 0, "close left staging %p, %llu bytes",
          s.staging, (unsigned long long)s.usage.mem_in_use);
    for (int a = 0; a < 3; a++)
        free(host[a]), free(ref[a]);
    hetrun_module_close(&m);
}

static void test_unsupported(void) {
    hetrun_backend_module m;
    if (open_module(&m, "template", TEMPLATE_MODULE) != 0) {
        failures++;
        return;
    }
    hetrun_session s;
    session_init(&s);
    CHECK(hetrun_session_open(&s, &m, 0) == 0, "open: %s", s.error);
    hetrun_op_desc d = hetrun_op_desc_init(HETRUN_OP_GEMM, HETRUN_F64);
    d.m = d.n = d.k = 8;
    hetrun_buffer *buf[3];
    uint64_t bytes[3];
    for (int a = 0; a < 3; a++) {
        bytes[a] = hetrun_op_arg_bytes(&d, a);
        CHECK(hetrun_session_alloc(&s, bytes[a], &buf[a]) == 0, "alloc: %s", s.error);
    }
    hetrun_tensor args[3] = {hetrun_tensor_at(buf[0], 0), hetrun_tensor_at(buf[1], 0),
                             hetrun_tensor_at(buf[2], 0)};
    CHECK(hetrun_exec_op(&s, &d, args) != 0, "fp64 gemm ran on the template backend");
    CHECK(strstr(s.error, "gemm") && strstr(s.error, "fp64") && strstr(s.error, "template"),
          "error does not name op, dtype and backend: %s", s.error);
    CHECK(s.usage.ops == 0 && s.usage.flops == 0.0, "a refused op was counted");
    char why[512];
    CHECK(!hetrun_session_supports(&s, &d, why, sizeof why) && strstr(why, "gemm") &&
              strstr(why, "fp64") && strstr(why, "template"),
          "supports() reason: %s", why);

    /* A supported fp32 GEMM on the same backend uses a workspace, counted as memory. */
    d = hetrun_op_desc_init(HETRUN_OP_GEMM, HETRUN_F32);
    d.m = d.n = d.k = 8;
    uint64_t before = s.usage.mem_in_use;
    CHECK(hetrun_exec_op(&s, &d, args) == 0 && hetrun_session_sync(&s) == 0, "fp32 gemm: %s",
          s.error);
    CHECK(s.workspace_bytes > 0 && s.usage.mem_in_use == before + s.workspace_bytes,
          "workspace %llu not in mem_in_use %llu", (unsigned long long)s.workspace_bytes,
          (unsigned long long)s.usage.mem_in_use);
    for (int a = 0; a < 3; a++)
        hetrun_session_free(&s, buf[a], bytes[a]);
    hetrun_session_close(&s);
    hetrun_module_close(&m);
}

int main(void) {
    test_cpu_gemm();
    test_unsupported();
    printf("%d checks, %d failures\n", checks, failures);
    return failures ? 1 : 0;
}
