/* hetrun-ops-doc: writes docs/ops.md from the op table (kernels/catalogue.c), so the
 * reference a vendor reads is the table the code runs. With --check FILE it compares
 * instead and exits 1 when FILE is stale (the conformance_ops_doc_current test).
 * usage: hetrun-ops-doc [--check docs/ops.md] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/catalogue.h"

static const char *const role_text[] = {"in", "out", "in-out", "out (read if beta != 0)",
                                        "out (read if p[1] != 0)"};
static const char *const extent_text[HETRUN_EXT_COUNT] = {"m x n",
                                                          "m",
                                                          "n",
                                                          "k x n",
                                                          "1",
                                                          "op(A) m x k, lda, stride_a",
                                                          "op(B) k x n, ldb, stride_b",
                                                          "m x n, ldc, stride_c",
                                                          "batch x m x heads x k, lda, stride_a",
                                                          "batch x n x heads x k, ldb, stride_b",
                                                          "batch x m x heads x k, ldc, stride_c",
                                                          "batch x n",
                                                          "batch x heads x m"};
static const char *const type_text[] = {"dtype", "out_dtype", "int32", "fp32"};
static const char *const red_text[] = {"1", "k", "n", "m", "m n", "max(m, n)", "k + max(m, n)"};

static void flags_text(uint32_t flags, char *out, size_t len) {
    static const struct {
        uint32_t bit;
        const char *name;
    } names[] = {{HETRUN_OP_TRANS_A, "TRANS_A"},
                 {HETRUN_OP_TRANS_B, "TRANS_B"},
                 {HETRUN_OP_ALLOW_TF32, "ALLOW_TF32"},
                 {HETRUN_OP_CAUSAL, "CAUSAL"},
                 {HETRUN_OP_KEY_PADDING_MASK, "KEY_PADDING_MASK"},
                 {HETRUN_OP_HAS_BIAS, "HAS_BIAS"},
                 {HETRUN_OP_HAS_AUX, "HAS_AUX"},
                 {HETRUN_OP_CONST_B, "CONST_B (1.3)"}};
    size_t o = 0;
    out[0] = '\0';
    for (size_t i = 0; i < sizeof names / sizeof names[0] && o < len; i++)
        if (flags & names[i].bit)
            o += (size_t)snprintf(out + o, len - o, "%s%s", o ? ", " : "", names[i].name);
    if (!o) snprintf(out, len, "none");
}

static void write_doc(FILE *f) {
    fprintf(f, "# The op table\n\n"
               "Generated from `kernels/catalogue.c` by `hetrun-ops-doc > docs/ops.md`; the\n"
               "`conformance_ops_doc_current` test fails when this file is stale. Semantics in "
               "full are on\n"
               "`hetrun_op_kind` in `include/hetrun/ops.h`; the plain C definitions are in\n"
               "`kernels/reference*.c`. Operands come in the order listed; an optional operand\n"
               "is used only with its flag (its tensor may otherwise have a NULL buffer); \"may\n"
               "alias\" names the operands an output may share memory with (the in-place form).\n\n"
               "Check tolerance, relative to the largest |reference| of an output:\n"
               "`4 u_out + ulps u_acc + 8 u_acc sqrt(L)` (`8 u_acc L` where marked linear), u_out\n"
               "the unit roundoff of the coarser of dtype and out_dtype, u_acc that of the\n"
               "arithmetic (fp32 for fp16/bf16; TF32 with ALLOW_TF32), ulps the allowance for\n"
               "transcendental functions, L the reduction length.\n\n");
    fprintf(f, "| kind | op | ABI | operands | FLOPs |\n|---:|---|---|---|---|\n");
    for (int k = 0; k < HETRUN_OP_KIND_COUNT; k++) {
        const hetrun_op_info *op = hetrun_op_info_of((uint32_t)k);
        fprintf(f, "| %d | [`%s`](#%s) | 1.%u | %d | %s |\n", k, op->name, op->name,
                (unsigned)op->since_minor, op->arity, op->flops_doc);
    }
    for (int k = 0; k < HETRUN_OP_KIND_COUNT; k++) {
        const hetrun_op_info *op = hetrun_op_info_of((uint32_t)k);
        char flags[160];
        flags_text(op->flags, flags, sizeof flags);
        fprintf(f, "\n## %s\n\n%s. Kind %d, since ABI 1.%u.\n\n", op->name, op->summary, k,
                (unsigned)op->since_minor);
        fprintf(f, "| # | operand | role | elements | dtype | optional | may alias |\n"
                   "|---:|---|---|---|---|---|---|\n");
        for (int a = 0; a < op->arity; a++) {
            const hetrun_op_arg *g = &op->args[a];
            char opt[64] = "", alias[64] = "";
            if (g->present_flag) flags_text(g->present_flag, opt, sizeof opt);
            for (int b = 0, o = 0; b < op->arity; b++)
                if (g->may_alias & (1u << b))
                    o += snprintf(alias + o, sizeof alias - (size_t)o, "%s%s", o ? ", " : "",
                                  op->args[b].name);
            fprintf(f, "| %d | %s | %s | %s | %s | %s | %s |\n", a, g->name, role_text[g->role],
                    extent_text[g->extent], type_text[g->type], opt, alias);
        }
        fprintf(f, "\n- dtype -> out_dtype:");
        for (int p = 0; p < op->npairs; p++)
            fprintf(f, "%s %s->%s", p ? "," : "", hetrun_dtype_name(op->pairs[p][0]),
                    hetrun_dtype_name(op->pairs[p][1]));
        fprintf(f, "\n- flags: %s%s%s\n", flags, op->uses_act ? "; reads `act`" : "",
                op->batched ? "; batched (`batch`, strides)" : "");
        fprintf(f, "- FLOPs: %s; reduction length L: %s; tolerance: 4 u_out + %g u_acc + %s\n",
                op->flops_doc, red_text[op->reduction], op->tol_ulps,
                op->tol_linear ? "8 u_acc L" : "8 u_acc sqrt(L)");
        fprintf(f, "- conformance cases:");
        for (int c = 0; c < op->ncases; c++) {
            const hetrun_op_case *cs = &op->cases[c];
            fprintf(f, "%s %s (%lldx%lldx%lld", c ? ";" : "", cs->what, (long long)cs->m,
                    (long long)cs->n, (long long)cs->k);
            if (cs->batch > 1) fprintf(f, ", batch %lld", (long long)cs->batch);
            if (cs->heads > 1) fprintf(f, ", %lld heads", (long long)cs->heads);
            fprintf(f, ")");
        }
        fprintf(f, "\n");
    }
}

int main(int argc, char **argv) {
    if (argc == 1) {
        write_doc(stdout);
        return 0;
    }
    if (argc != 3 || strcmp(argv[1], "--check") != 0) {
        fprintf(stderr, "usage: hetrun-ops-doc [--check docs/ops.md]\n");
        return 2;
    }
    char *want = NULL, have[1 << 17];
    size_t want_len = 0;
    FILE *mem = open_memstream(&want, &want_len);
    if (!mem) return 1;
    write_doc(mem);
    fclose(mem);
    FILE *f = fopen(argv[2], "r");
    size_t n = f ? fread(have, 1, sizeof have, f) : 0;
    if (f) fclose(f);
    int ok = f && n == want_len && memcmp(have, want, n) == 0;
    if (!ok)
        fprintf(stderr, "%s is %s: regenerate it with hetrun-ops-doc > %s\n", argv[2],
                f ? "stale" : "missing", argv[2]);
    free(want);
    return ok ? 0 : 1;
}
