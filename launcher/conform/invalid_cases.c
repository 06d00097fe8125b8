/* The invalid descriptors of invalid_cases.h, each a valid one with one fault. */
#include "conform/invalid_cases.h"

#include <stddef.h>
#include <string.h>

const hetrun_invalid_case hetrun_invalid_cases[] = {
    {"shape overflow", "m 1099511627776", 0},
    {"batch stride smaller than a matrix", "stride_a 10", 0},
    {"negative batch stride", "stride_b -64", 0},
    {"attention batch stride overlapping", "stride_c 100", 0},
    {"attention row stride below heads x head dim", "lda 24", 0},
    {"mask flag on GEMM", "flags 0x10", 0},
    {"bias flag on attention", "flags 0x28", 0},
    {"mismatched dtypes", "out_dtype fp32", 0},
    {"batched GEMM epilogue", "batch 4", 0},
    {"unknown activation", "act 9", 0},
    {"1.1 op in a 1.0 descriptor", "struct_size", 0},
    {"layernorm backward beta 0.5", "beta 0.5", 0},
    {"int8 GEMM alpha 2", "alpha 2", 0},
    {"one operand short", "nargs 2", -1},
};
const int hetrun_invalid_case_count =
    (int)(sizeof hetrun_invalid_cases / sizeof hetrun_invalid_cases[0]);

static hetrun_op_desc small(hetrun_op_kind kind, hetrun_dtype t) {
    hetrun_op_desc d = hetrun_op_desc_init(kind, t);
    d.m = d.n = d.k = 8;
    return d;
}

hetrun_op_desc hetrun_invalid_desc(const hetrun_invalid_case *c) {
    const int i = (int)(c - hetrun_invalid_cases);
    hetrun_op_desc d = small(HETRUN_OP_GEMM, HETRUN_F32);
    switch (i) {
    case 0: d.m = d.n = (int64_t)1 << 40; break;
    case 1: d.batch = 4, d.stride_a = 10; break;
    case 2: d.batch = 2, d.stride_b = -64; break;
    case 3:
        d = small(HETRUN_OP_ATTENTION_FORWARD, HETRUN_F32);
        d.batch = 2, d.heads = 2, d.stride_c = 100; /* one entry spans 7 x 16 + 16 = 128 */
        break;
    case 4:
        d = small(HETRUN_OP_ATTENTION_BACKWARD, HETRUN_BF16);
        d.heads = 4, d.lda = 24; /* 4 heads x 8 = 32 */
        break;
    case 5: d.flags = HETRUN_OP_KEY_PADDING_MASK; break;
    case 6:
        d = small(HETRUN_OP_ATTENTION_FORWARD, HETRUN_F16);
        d.flags = HETRUN_OP_CAUSAL | HETRUN_OP_HAS_BIAS;
        break;
    case 7:
        d = small(HETRUN_OP_ATTENTION_FORWARD, HETRUN_F16);
        d.out_dtype = HETRUN_F32;
        break;
    case 8:
        d = small(HETRUN_OP_GEMM_BIAS_ACT, HETRUN_F32);
        d.batch = 4;
        break;
    case 9:
        d = small(HETRUN_OP_ACT_FORWARD, HETRUN_F32);
        d.act = 9;
        break;
    case 10:
        d = small(HETRUN_OP_SOFTMAX_BACKWARD, HETRUN_F32);
        d.struct_size = (uint32_t)HETRUN_OP_DESC_SIZE_V1_0;
        break;
    case 11:
        d = small(HETRUN_OP_LAYERNORM_BACKWARD, HETRUN_F32);
        d.beta = 0.5;
        break;
    case 12:
        d = small(HETRUN_OP_GEMM, HETRUN_I8);
        d.out_dtype = HETRUN_I32, d.alpha = 2.0;
        break;
    default: break; /* one operand short: the descriptor itself is valid */
    }
    return d;
}
