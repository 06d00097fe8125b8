/* The op table is consistent: every kind has a row whose arity matches hetrun_op_arity
 * (ops.h), whose ABI minor matches HETRUN_OP_FIRST_V1_1, whose names round-trip, whose
 * aliases pair operands of one shape and dtype, whose optional operands name accepted
 * flags, and whose every case is a valid descriptor for every dtype pair; the counts of
 * known descriptors are what the conventions say; and each invalid descriptor of
 * invalid_cases.c is refused with a message naming the op, the field and the value. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "invalid_cases.h"
#include "kernels/catalogue.h"

#include "../check.h"

static void check_row(int kind) {
    const hetrun_op_info *op = hetrun_op_info_of((uint32_t)kind);
    CHECK(op != NULL, "kind %d has no row", kind);
    if (!op) return;
    CHECK(op->arity == hetrun_op_arity((uint32_t)kind), "%s: arity %d, ops.h says %d", op->name,
          op->arity, hetrun_op_arity((uint32_t)kind));
    CHECK(hetrun_op_from_name(op->name) == kind, "%s: name does not round-trip", op->name);
    CHECK(op->since_minor == (kind >= HETRUN_OP_FIRST_V1_1 ? 1u : 0u), "%s: since 1.%u", op->name,
          (unsigned)op->since_minor);
    CHECK(op->reference && op->npairs > 0 && op->ncases > 0 && op->tol_ulps >= 0,
          "%s: reference, pairs and cases are required", op->name);
    int written = 0;
    for (int a = 0; a < op->arity; a++) {
        const hetrun_op_arg *g = &op->args[a];
        written += g->role != HETRUN_ARG_IN;
        CHECK(g->name && g->extent < HETRUN_EXT_COUNT, "%s operand %d: name and extent", op->name,
              a);
        CHECK((g->present_flag & ~op->flags) == 0, "%s %s: optional with a foreign flag", op->name,
              g->name);
        for (int b = 0; b < op->arity; b++)
            if (g->may_alias & (1u << b))
                CHECK(b != a && g->role == HETRUN_ARG_OUT && op->args[b].role == HETRUN_ARG_IN &&
                          g->extent == op->args[b].extent && g->type == op->args[b].type,
                      "%s: %s may alias %s, but they differ in role, shape or dtype", op->name,
                      g->name, op->args[b].name);
    }
    CHECK(written > 0, "%s writes nothing", op->name);
    for (int p = 0; p < op->npairs; p++)
        for (int c = 0; c < op->ncases; c++) {
            hetrun_op_desc d = hetrun_op_case_desc((hetrun_op_kind)kind, &op->cases[c],
                                                   (hetrun_dtype)op->pairs[p][0],
                                                   (hetrun_dtype)op->pairs[p][1], HETRUN_ACT_GELU);
            char why[256] = "";
            CHECK(hetrun_op_desc_valid(&d, why, sizeof why), "%s case '%s' %s->%s invalid: %s",
                  op->name, op->cases[c].what, hetrun_dtype_name(d.dtype),
                  hetrun_dtype_name(d.out_dtype), why);
            const bool exact = hetrun_dtype_unit_roundoff(d.out_dtype) == 0.0;
            CHECK(exact ? hetrun_op_tolerance(&d) == 0.0
                        : hetrun_op_tolerance(&d) > 0.0 && hetrun_op_tolerance(&d) < 0.5,
                  "%s case '%s': tolerance %g", op->name, op->cases[c].what,
                  hetrun_op_tolerance(&d));
        }
    hetrun_op_desc b =
        hetrun_op_bench_desc((hetrun_op_kind)kind, (hetrun_dtype)op->pairs[0][0], 256, 512);
    char why[256] = "";
    CHECK(hetrun_op_desc_valid(&b, why, sizeof why), "%s: bench descriptor invalid: %s", op->name,
          why);
}

/* Counting conventions on descriptors whose counts are known by hand. */
static void check_counts(void) {
    hetrun_op_desc g = hetrun_op_desc_init(HETRUN_OP_GEMM, HETRUN_F32);
    g.m = 4, g.n = 5, g.k = 6, g.batch = 3, g.beta = 1.0;
    CHECK(hetrun_op_flops(&g) == 3.0 * (2 * 4 * 5 * 6 + 2 * 4 * 5), "batched gemm flops %g",
          hetrun_op_flops(&g));
    /* A and B packed per entry (stride = span), C read and written. */
    g.stride_a = 24, g.stride_b = 30;
    CHECK(hetrun_op_bytes(&g) == 4.0 * (3 * 24 + 3 * 30 + 2 * 3 * 20), "batched gemm bytes %g",
          hetrun_op_bytes(&g));
    g.stride_a = 0; /* broadcast A: read once */
    CHECK(hetrun_op_arg_elements(&g, 0) == 24, "broadcast A spans %llu",
          (unsigned long long)hetrun_op_arg_elements(&g, 0));
    hetrun_op_desc a = hetrun_op_desc_init(HETRUN_OP_ATTENTION_FORWARD, HETRUN_BF16);
    a.m = a.n = 4, a.k = 8, a.batch = 2, a.heads = 3, a.flags = HETRUN_OP_CAUSAL;
    CHECK(hetrun_op_flops(&a) == 2.0 * 3 * 10 * (4 * 8 + 5), "causal attention flops %g",
          hetrun_op_flops(&a));
    CHECK(hetrun_op_arg_elements(&a, 5) == 2 * 3 * 4 && hetrun_op_arg_dtype(&a, 5) == HETRUN_F32,
          "lse is batch x heads x m fp32");
    CHECK(!hetrun_op_arg_present(&a, 3), "mask present without its flag");
    a.flags |= HETRUN_OP_KEY_PADDING_MASK;
    CHECK(hetrun_op_arg_present(&a, 3) && hetrun_op_arg_elements(&a, 3) == 8,
          "mask is batch x n with its flag");
    hetrun_op_desc l = hetrun_op_desc_init(HETRUN_OP_LAYERNORM_BACKWARD, HETRUN_F32);
    l.m = 3, l.n = 5;
    CHECK(!hetrun_op_arg_reads(&l, 5) && !hetrun_op_arg_reads(&l, 6), "beta 0 reads dX");
    l.beta = 1.0, l.p[1] = 1.0;
    CHECK(hetrun_op_arg_reads(&l, 5) && hetrun_op_arg_reads(&l, 7), "accumulating reads");
}

static void check_invalid(void) {
    for (int i = 0; i < hetrun_invalid_case_count; i++) {
        const hetrun_invalid_case *c = &hetrun_invalid_cases[i];
        hetrun_op_desc d = hetrun_invalid_desc(c);
        char why[256] = "";
        bool valid = hetrun_op_desc_valid(&d, why, sizeof why);
        if (c->nargs_delta) { /* the operand count is the fault: the descriptor is fine */
            CHECK(valid, "%s: descriptor refused: %s", c->what, why);
            continue;
        }
        const char *op = hetrun_op_name((hetrun_op_kind)d.kind);
        CHECK(!valid && strstr(why, op) && strstr(why, c->expect),
              "%s: %s; message '%s' must name %s and '%s'", c->what, valid ? "accepted" : "refused",
              why, op, c->expect);
    }
}

int main(void) {
    CHECK(hetrun_op_info_of(HETRUN_OP_KIND_COUNT) == NULL, "a row past the last kind");
    for (int k = 0; k < HETRUN_OP_KIND_COUNT; k++)
        check_row(k);
    check_counts();
    check_invalid();
    printf("# %d checks, %d failed\n", checks, failures);
    return failures ? 1 : 0;
}
