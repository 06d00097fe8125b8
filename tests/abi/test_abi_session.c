/* A 1.1 launcher's session on a module built against the ABI 1.0 headers (abi10): a strided
 * batched GEMM (padded rows, broadcast B, padded C batch stride) runs as one call per
 * batch entry, each with batch 1, and matches the reference; a 1.1 op is refused with a
 * message naming the op, the module and both ABI versions; the 1.3 CONST_B hint is stripped
 * before it reaches the module. Needs HETRUN_BACKEND_PATH on
 * the folder of libhetrun_backend_abi10.so. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exec/session.h"
#include "kernels/catalogue.h"
#include "kernels/reference.h"
#include "loader/loader.h"

#include "../check.h"

static void batched_gemm(hetrun_session *s) {
    hetrun_op_desc d = hetrun_op_desc_init(HETRUN_OP_GEMM, HETRUN_F32);
    d.m = 5, d.n = 7, d.k = 4, d.batch = 3, d.alpha = 0.5, d.beta = 0.25;
    d.lda = 6, d.ldc = 9;                   /* padded rows */
    d.stride_a = 5 * 6 + 2, d.stride_b = 0; /* B broadcast to every entry */
    d.stride_c = 5 * 9 + 3;                 /* padded batch stride */
    char why[256];
    CHECK(hetrun_op_desc_valid(&d, why, sizeof why), "descriptor: %s", why);
    void *host[3], *want[3];
    hetrun_buffer *buf[3] = {NULL};
    hetrun_tensor args[3];
    uint64_t bytes[3], state = 7;
    for (int a = 0; a < 3; a++) {
        bytes[a] = hetrun_op_arg_bytes(&d, a);
        host[a] = malloc(bytes[a]), want[a] = malloc(bytes[a]);
        hetrun_op_fill_arg(&d, a, host[a], hetrun_op_arg_elements(&d, a), &state);
        memcpy(want[a], host[a], bytes[a]);
        CHECK(hetrun_session_alloc(s, bytes[a], &buf[a]) == 0, "alloc: %s", s->error);
        args[a] = (hetrun_tensor){buf[a], 0};
        CHECK(hetrun_session_h2d(s, args[a], host[a], bytes[a]) == 0, "h2d: %s", s->error);
    }
    CHECK(hetrun_exec_op(s, &d, args) == 0, "batched gemm on a 1.0 module: %s", s->error);
    CHECK(hetrun_session_d2h(s, host[2], args[2], bytes[2]) == 0, "d2h: %s", s->error);
    CHECK(hetrun_reference_run(&d, want) == 0, "reference refused");
    double maxdiff = 0.0, maxref = 0.0;
    for (uint64_t i = 0; i < hetrun_op_arg_elements(&d, 2); i++) {
        double g = ((float *)host[2])[i], w = ((float *)want[2])[i];
        maxdiff = fmax(maxdiff, fabs(g - w)), maxref = fmax(maxref, fabs(w));
    }
    double tol = hetrun_op_tolerance(&d);
    CHECK(maxdiff <= tol * maxref, "batched gemm error %g > %g", maxdiff / maxref, tol);
    CHECK(s->usage.op_counts[HETRUN_OP_GEMM] == 3, "%llu gemm calls, want one per entry (3)",
          (unsigned long long)s->usage.op_counts[HETRUN_OP_GEMM]);
    CHECK(fabs(s->usage.flops - hetrun_op_flops(&d)) < 1e-9 * hetrun_op_flops(&d),
          "accounted %g FLOPs, the batched op counts %g", s->usage.flops, hetrun_op_flops(&d));
    for (int a = 0; a < 3; a++) {
        hetrun_session_free(s, buf[a], bytes[a]);
        free(host[a]), free(want[a]);
    }
    printf("batched gemm (3 entries, broadcast B, padded strides) on abi10: error %.3g\n",
           maxref > 0 ? maxdiff / maxref : maxdiff);
}

/* The 1.3 constant-operand hint never reaches a 1.0 module (whose validation refuses unknown
 * flags): the launcher strips it, so the GEMM runs and is supported. */
static void const_hint_stripped(hetrun_session *s) {
    hetrun_op_desc d = hetrun_op_desc_init(HETRUN_OP_GEMM, HETRUN_F32);
    d.m = 3, d.n = 4, d.k = 5, d.flags = HETRUN_OP_CONST_B;
    char why[512] = "";
    CHECK(hetrun_session_supports(s, &d, why, sizeof why), "CONST_B gemm not supported: %s", why);
    hetrun_buffer *buf[3] = {NULL};
    hetrun_tensor args[3];
    for (int a = 0; a < 3; a++) {
        CHECK(hetrun_session_alloc(s, hetrun_op_arg_bytes(&d, a), &buf[a]) == 0, "alloc: %s",
              s->error);
        args[a] = (hetrun_tensor){buf[a], 0};
    }
    CHECK(hetrun_exec_op(s, &d, args) == 0, "CONST_B gemm on a 1.0 module: %s", s->error);
    for (int a = 0; a < 3; a++)
        hetrun_session_free(s, buf[a], hetrun_op_arg_bytes(&d, a));
    printf("CONST_B gemm on abi10: hint stripped, ran\n");
}

static void refuses_v1_1(hetrun_session *s) {
    hetrun_op_desc d = hetrun_op_desc_init(HETRUN_OP_SOFTMAX_BACKWARD, HETRUN_F32);
    d.m = 2, d.n = 3;
    hetrun_tensor args[3] = {{NULL, 0}, {NULL, 0}, {NULL, 0}};
    CHECK(hetrun_exec_op(s, &d, args) != 0, "a 1.1 op ran on a 1.0 module");
    const char *need[] = {"softmax_backward", "ABI 1.1", "abi10", "1.0"};
    for (int i = 0; i < 4; i++)
        CHECK(strstr(s->error, need[i]), "message does not name '%s': %s", need[i], s->error);
    printf("1.1 op refused: %s\n", s->error);
}

int main(void) {
    hetrun_backend_module m;
    memset(&m, 0, sizeof m);
    snprintf(m.name, sizeof m.name, "abi10");
    if (hetrun_loader_find("abi10", m.path, sizeof m.path) != 0 ||
        hetrun_module_open(&m, hetrun_host_services_get()) != 0) {
        printf("FAIL: module abi10 did not load: %s\n", m.reason);
        return 1;
    }
    CHECK(m.ops->abi_major == 1 && m.ops->abi_minor == 0, "module declares ABI %u.%u",
          (unsigned)m.ops->abi_major, (unsigned)m.ops->abi_minor);
    hetrun_session s;
    memset(&s, 0, sizeof s);
    if (hetrun_session_open(&s, &m, 0) != 0) {
        printf("FAIL: session: %s\n", s.error);
        hetrun_module_close(&m);
        return 1;
    }
    batched_gemm(&s);
    const_hint_stripped(&s);
    refuses_v1_1(&s);
    hetrun_session_close(&s);
    hetrun_module_close(&m);
    printf("# %d failed\n", failures);
    return failures ? 1 : 0;
}
