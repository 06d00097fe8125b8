/* The bench correctness checks must be able to fail: the op comparison (every catalogue
 * op but GEMM, against kernels/reference.c), the GEMM comparison (full and sampled) and
 * the collectives' exact #wrong count, each fed a correct output (must pass) and outputs
 * with one wrong element, an unwritten (poisoned) element, or a wrong rank's data
 * (must fail). The bench sources are included so their static helpers are reachable. */
#include "../../launcher/workloads/bench.c"
#include "../../launcher/workloads/bench_coll.c"

#include "../check.h"

/* Runs the reference twice on the same inputs (as "device" and as reference), then
 * perturbs one output element and checks the comparison notices. Shapes, inputs and
 * written operands come from the op table, as in a bench point. */
static void op_case(hetrun_op_kind kind, hetrun_dtype t) {
    hetrun_bench_params p;
    memset(&p, 0, sizeof p);
    p.op = kind, p.dtype = t, p.size = 7, p.cols = 33, p.act = HETRUN_ACT_GELU;
    hetrun_session s;
    memset(&s, 0, sizeof s);
    hetrun_op_desc d = point_desc(&p, &s);
    int arity = hetrun_op_arity(kind);
    uint64_t bytes[HETRUN_OP_MAX_ARGS] = {0};
    void *host[HETRUN_OP_MAX_ARGS] = {0}, *got[HETRUN_OP_MAX_ARGS] = {0},
         *ref[HETRUN_OP_MAX_ARGS] = {0};
    for (int a = 0; a < arity; a++) {
        bytes[a] = hetrun_op_arg_bytes(&d, a);
        host[a] = malloc(bytes[a]), got[a] = malloc(bytes[a]), ref[a] = malloc(bytes[a]);
    }
    hetrun_rng rng = hetrun_rng_seed(5, (uint64_t)kind);
    fill_inputs(&d, host, bytes, &rng);
    for (int a = 0; a < arity; a++)
        memcpy(got[a], host[a], bytes[a]), memcpy(ref[a], host[a], bytes[a]);
    const char *name = hetrun_op_name(kind);
    CHECK(hetrun_reference_run(&d, got) == 0 && hetrun_reference_run(&d, ref) == 0,
          "%s: reference refused", name);
    double tol = hetrun_op_tolerance(&d);
    double e = compare_full(&d, got, ref, bytes);
    CHECK(e <= tol, "%s %s: identical outputs rejected (%g > %g)", name, hetrun_dtype_name(t), e,
          tol);
    /* The last written operand, element 3 (or its only one): add one plus 5 % of
     * |ref| + max|ref| (the comparison's scale, so wide-range casts are hit too). */
    int w = 0;
    for (int a = 0; a < arity; a++)
        if (hetrun_op_arg_writes(&d, a)) w = a;
    hetrun_dtype wt = hetrun_op_arg_dtype(&d, w);
    uint64_t at = hetrun_op_arg_elements(&d, w) > 3 ? 3 : 0;
    double v = hetrun_load_as_double(got[w], wt, at), maxref = 0.0;
    for (uint64_t i = 0; i < hetrun_op_arg_elements(&d, w); i++)
        maxref = fmax(maxref, fabs(hetrun_load_as_double(ref[w], wt, i)));
    hetrun_store_from_double(got[w], wt, at, v + 1.0 + 0.05 * (fabs(v) + maxref));
    e = compare_full(&d, got, ref, bytes);
    CHECK(e > tol, "%s %s: a wrong element passed (%g <= %g)", name, hetrun_dtype_name(t), e, tol);
    /* An element the "device" never wrote (still the poison). */
    if (wt == HETRUN_I32)
        ((int32_t *)got[w])[at] = INT32_MIN;
    else
        hetrun_store_from_double(got[w], wt, at, NAN);
    e = compare_full(&d, got, ref, bytes);
    CHECK(!(e <= tol), "%s %s: an unwritten element passed", name, hetrun_dtype_name(t));
    for (int a = 0; a < arity; a++)
        free(host[a]), free(got[a]), free(ref[a]);
}

static void gemm_case(int64_t n, hetrun_dtype t) {
    hetrun_op_desc d = hetrun_op_desc_init(HETRUN_OP_GEMM, t);
    d.m = d.n = d.k = n;
    if (t == HETRUN_I8) d.out_dtype = HETRUN_I32;
    uint64_t ba = hetrun_op_arg_bytes(&d, 0), bc = hetrun_op_arg_bytes(&d, 2);
    void *in[2] = {malloc(ba), malloc(ba)}, *c = malloc(bc);
    hetrun_rng rng = hetrun_rng_seed(9, (uint64_t)n);
    double r = t == HETRUN_I8 ? 8.0 : 1.0;
    hetrun_fill_uniform(in[0], t, ba / hetrun_dtype_size(t), -r, r, &rng);
    hetrun_fill_uniform(in[1], t, ba / hetrun_dtype_size(t), -r, r, &rng);
    void *args[3] = {in[0], in[1], c};
    CHECK(hetrun_reference_run(&d, args) == 0, "gemm reference refused");
    hetrun_dtype to = (hetrun_dtype)d.out_dtype;
    double tol = hetrun_op_tolerance(&d);
    int sampled = 0;
    hetrun_rng crng = hetrun_rng_seed(1, 2);
    double e = compare_gemm(&d, in, c, &crng, &sampled);
    CHECK(e <= tol, "gemm %lld %s: the reference's own C rejected (%g > %g)", (long long)n,
          hetrun_dtype_name(t), e, tol);
    CHECK(sampled == (n * n * n > 16777216), "gemm %lld: sampled %d", (long long)n, sampled);
    /* Full mode must find one wrong element; sampled mode a wrong row everywhere. */
    uint64_t count = bc / hetrun_dtype_size(to);
    if (!sampled) {
        double v = hetrun_load_as_double(c, to, count / 2);
        hetrun_store_from_double(c, to, count / 2, v + 1.0);
    } else {
        for (uint64_t i = 0; i < count; i++)
            hetrun_store_from_double(c, to, i, hetrun_load_as_double(c, to, i) * 1.01 + 0.5);
    }
    crng = hetrun_rng_seed(1, 2);
    e = compare_gemm(&d, in, c, &crng, &sampled);
    CHECK(e > tol, "gemm %lld %s: a wrong C passed (%g <= %g)", (long long)n, hetrun_dtype_name(t),
          e, tol);
    free(in[0]), free(in[1]), free(c);
}

static void collective_case(int coll, hetrun_dtype t, int nranks) {
    hetrun_session s;
    memset(&s, 0, sizeof s);
    coll_ctx c = {&s, coll, 1, nranks, t, hetrun_dtype_size(t), MPI_FLOAT, 77};
    uint64_t in, out;
    shape(&c, 4096, &in, &out);
    double *want = calloc(out, sizeof *want);
    void *recv = malloc(out * c.es);
    /* Build the correct output by hand from every rank's inputs. */
    for (uint64_t i = 0; i < out; i++) {
        double v = 0.0;
        if (coll == HETRUN_BENCH_ALLREDUCE)
            for (int r = 0; r < nranks; r++)
                v += input_value(c.seed, r, i);
        else if (coll == HETRUN_BENCH_ALLGATHER)
            v = input_value(c.seed, (int)(i / in), i % in);
        else if (coll == HETRUN_BENCH_REDUCE_SCATTER)
            for (int r = 0; r < nranks; r++)
                v += input_value(c.seed, r, (uint64_t)c.rank * out + i);
        else
            v = input_value(c.seed, 0, i);
        store(recv, t, i, v);
    }
    const char *name = hetrun_bench_op_name(coll);
    CHECK(count_wrong(&c, recv, out) == 0, "%s: the correct output has wrong elements", name);
    store(recv, t, 5, load(recv, t, 5) + 1.0);
    CHECK(count_wrong(&c, recv, out) == 1, "%s: one wrong element not counted once", name);
    memset(recv, 0xff, out * c.es); /* poison: nothing written */
    CHECK(count_wrong(&c, recv, out) == out, "%s: unwritten output not all wrong", name);
    /* Another rank's share in place of ours (reduce-scatter, allreduce with a rank missing). */
    if (coll == HETRUN_BENCH_ALLREDUCE) {
        for (uint64_t i = 0; i < out; i++)
            store(recv, t, i, input_value(c.seed, 0, i) + input_value(c.seed, 1, i));
        CHECK(nranks == 2 || count_wrong(&c, recv, out) == out,
              "allreduce missing a rank's contribution not all wrong");
    }
    free(want), free(recv);
}

int main(void) {
    for (int k = 1; k < HETRUN_OP_KIND_COUNT; k++) { /* every op but GEMM, every input type */
        const hetrun_op_info *op = hetrun_op_info_of((uint32_t)k);
        for (int i = 0; i < op->npairs; i++)
            if (i == 0 || op->pairs[i][0] != op->pairs[i - 1][0])
                op_case((hetrun_op_kind)k, (hetrun_dtype)op->pairs[i][0]);
    }
    gemm_case(33, HETRUN_F32);
    gemm_case(64, HETRUN_BF16);
    gemm_case(48, HETRUN_I8);
    gemm_case(300, HETRUN_F32); /* 2.7e7 > 2^24: sampled */
    static const int colls[] = {HETRUN_BENCH_ALLREDUCE, HETRUN_BENCH_ALLGATHER,
                                HETRUN_BENCH_REDUCE_SCATTER, HETRUN_BENCH_BROADCAST};
    for (int i = 0; i < 4; i++) {
        collective_case(colls[i], HETRUN_F32, 2);
        collective_case(colls[i], HETRUN_I32, 4);
        collective_case(colls[i], HETRUN_F64, 3);
    }
    printf("# %d checks, %d failed\n", checks, failures);
    return failures ? 1 : 0;
}
