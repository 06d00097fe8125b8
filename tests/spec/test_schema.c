/* Unit test of the schema machinery (launcher/spec/schema.c, yaml_reader.c, diag.c) and of
 * job building (job_schema.c): strict typing of every field type, ranges, defaults,
 * required/unknown/duplicate keys, did-you-mean, cross-field checks, ${VAR} expansion,
 * sweeps and the precision default. Plain C: each CHECK names what it expected. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/catalogue.h"
#include "spec/spec.h"
#include "workloads/workload.h"

#include "../check.h"

/* ---- a test schema with every field type ---- */

typedef struct inner {
    int64_t depth;
    char *label;
} inner;

typedef struct tobj {
    int64_t i;
    double f;
    bool b;
    char *s;
    int e;
    int dt;
    int64_t bytes;
    double secs;
    hetrun_int_list il;
    hetrun_string_list sl;
    inner in;
    int64_t sweepme;
} tobj;

static const char *const colours[] = {"red", "green", "blue", NULL};

static const hetrun_field inner_fields[] = {
    {"depth", HETRUN_FIELD_INT, HETRUN_FIELD_REQUIRED, offsetof(inner, depth), 0, 10, NULL, NULL,
     NULL, "depth"},
    {"label", HETRUN_FIELD_STRING, 0, offsetof(inner, label), 1, 0, NULL, NULL, "deflabel",
     "label"},
};
static const hetrun_schema inner_schema = {"inner", sizeof(inner), inner_fields, 2, NULL};

static int check_calls;
static void tcheck(const void *obj, const hetrun_check_ctx *ctx) {
    const tobj *t = obj;
    check_calls++;
    if (t->i == 13) hetrun_check_error(ctx, "i", "13 conflicts with f=%g", t->f);
}

static const hetrun_field tfields[] = {
    {"i", HETRUN_FIELD_INT, 0, offsetof(tobj, i), -100, 100, NULL, NULL, "7", "int"},
    {"f", HETRUN_FIELD_FLOAT, 0, offsetof(tobj, f), 0, 10, NULL, NULL, "0.5", "float"},
    {"b", HETRUN_FIELD_BOOL, 0, offsetof(tobj, b), 1, 0, NULL, NULL, "true", "bool"},
    {"s", HETRUN_FIELD_STRING, 0, offsetof(tobj, s), 1, 0, NULL, NULL, NULL, "string"},
    {"e", HETRUN_FIELD_ENUM, 0, offsetof(tobj, e), 1, 0, colours, NULL, "green", "enum"},
    {"dt", HETRUN_FIELD_DTYPE, 0, offsetof(tobj, dt), 1, 0, NULL, NULL, "bf16", "dtype"},
    {"bytes", HETRUN_FIELD_BYTES, 0, offsetof(tobj, bytes), 0, 9.3e18, NULL, NULL, "1KiB", "b"},
    {"secs", HETRUN_FIELD_SECONDS, 0, offsetof(tobj, secs), 0, 1e9, NULL, NULL, "2m", "s"},
    {"il", HETRUN_FIELD_INT_LIST, 0, offsetof(tobj, il), -1, 7, NULL, NULL, "[1, 2, 3]", "il"},
    {"sl", HETRUN_FIELD_STRING_LIST, 0, offsetof(tobj, sl), 1, 0, NULL, NULL, "[x, y]", "sl"},
    {"in", HETRUN_FIELD_OBJECT, 0, offsetof(tobj, in), 1, 0, NULL, &inner_schema, NULL, "obj"},
    {"sweepme", HETRUN_FIELD_INT, HETRUN_FIELD_SWEEP, offsetof(tobj, sweepme), 0, 1000, NULL, NULL,
     "0", "sweep"},
};
static const hetrun_schema tschema = {"tobj", sizeof(tobj), tfields,
                                      sizeof tfields / sizeof tfields[0], tcheck};

/** Parses `yaml` and applies tschema; returns the error count; first error text in `first`. */
static int apply_text(const char *yaml, tobj *t, char *first, size_t flen) {
    hetrun_diags d = {0};
    memset(t, 0, sizeof *t);
    hetrun_node *n = hetrun_yaml_parse("t.yaml", (const unsigned char *)yaml, strlen(yaml), &d);
    int errs = n ? hetrun_schema_apply(&tschema, n, "t.yaml", "", t, &d) : (int)d.count;
    if (first) {
        first[0] = '\0';
        if (d.count)
            snprintf(first, flen, "%d:%d: %s: %s", d.items[0].line, d.items[0].column,
                     d.items[0].path, d.items[0].message);
    }
    CHECK(errs == (int)d.count || !n, "error count %d != diags %zu for %s", errs, d.count, yaml);
    hetrun_node_free(n);
    hetrun_diags_free(&d);
    return errs;
}

/** Expects `yaml` to be rejected with an error containing `want`. */
static void expect_error(const char *yaml, const char *want) {
    tobj t;
    char first[1024];
    int errs = apply_text(yaml, &t, first, sizeof first);
    CHECK(errs > 0 && strstr(first, want), "'%s' -> '%s', wanted an error containing '%s'", yaml,
          first, want);
    hetrun_schema_free(&tschema, &t);
}

static void test_typing(void) {
    tobj t;
    char first[1024];
    int errs = apply_text("i: -42\nf: 2.5e0\nb: false\ns: hello\ne: blue\ndt: fp16\nbytes: 2MiB\n"
                          "secs: 1.5h\nil: [-1, 7]\nsl: one\nin: {depth: 3}\nsweepme: 5\n",
                          &t, first, sizeof first);
    CHECK(errs == 0, "valid mapping rejected: %s", first);
    CHECK(t.i == -42, "i=%" PRId64, t.i);
    CHECK(t.f == 2.5, "f=%g", t.f);
    CHECK(t.b == false, "b=%d", t.b);
    CHECK(t.s && strcmp(t.s, "hello") == 0, "s=%s", t.s ? t.s : "(null)");
    CHECK(t.e == 2, "e=%d", t.e);
    CHECK(t.dt == HETRUN_F16, "dt=%d", t.dt);
    CHECK(t.bytes == 2 * 1048576, "bytes=%" PRId64, t.bytes);
    CHECK(t.secs == 5400.0, "secs=%g", t.secs);
    CHECK(t.il.count == 2 && t.il.items[0] == -1 && t.il.items[1] == 7, "il");
    CHECK(t.sl.count == 1 && strcmp(t.sl.items[0], "one") == 0, "sl as one string");
    CHECK(t.in.depth == 3 && t.in.label && strcmp(t.in.label, "deflabel") == 0, "nested+default");
    CHECK(check_calls > 0, "check callback not called on a valid mapping");
    hetrun_schema_free(&tschema, &t);

    /* Defaults are parsed like user input (including a flow-list default). */
    errs = apply_text("s: x\n", &t, first, sizeof first);
    CHECK(errs == 0, "defaults: %s", first);
    CHECK(t.i == 7 && t.f == 0.5 && t.b && t.e == 1 && t.dt == HETRUN_BF16 && t.bytes == 1024 &&
              t.secs == 120.0,
          "scalar defaults i=%" PRId64 " f=%g b=%d e=%d dt=%d bytes=%" PRId64 " secs=%g", t.i, t.f,
          t.b, t.e, t.dt, t.bytes, t.secs);
    CHECK(t.il.count == 3 && t.il.items[2] == 3, "int list default");
    CHECK(t.sl.count == 2 && strcmp(t.sl.items[1], "y") == 0, "string list default");
    CHECK(t.in.label && strcmp(t.in.label, "deflabel") == 0, "nested default of absent object");
    hetrun_schema_free(&tschema, &t);

    expect_error("i: 1.5\n", "expected an integer, got 1.5");
    expect_error("i: 0x10\n", "hexadecimal");
    expect_error("i: 010\n", "leading zeros");
    expect_error("i: +5\n", "without the '+'");
    expect_error("i: 1_000\n", "digit separators");
    expect_error("i: 101\n", "101 is out of range: expected an integer from -100 to 100");
    expect_error("i: 99999999999999999999\n", "does not fit in a 64-bit integer");
    expect_error("i: \"5\"\n", "got the quoted string \"5\"");
    expect_error("i: ~\n", "got null");
    expect_error("i: [1]\n", "got a sequence");
    expect_error("f: .inf\n", "infinity and NaN");
    expect_error("f: nan\n", "infinity and NaN");
    expect_error("f: 10.5\n", "out of range");
    expect_error("f: 1e999\n", "out of range");
    expect_error("f: 0x1p3\n", "expected a number");
    expect_error("b: yes\n", "YAML 1.1 spellings");
    expect_error("b: Off\n", "YAML 1.1 spellings");
    expect_error("b: 1\n", "expected true or false, got \"1\"");
    expect_error("s: {a: 1}\n", "expected a string, got a mapping");
    expect_error("e: gren\n", "did you mean 'green'");
    expect_error("e: purple\n", "expected one of red, green, blue");
    expect_error("dt: fp31\n", "did you mean 'fp32'");
    expect_error("bytes: 3 furlongs\n", "unknown unit \"furlongs\"");
    expect_error("bytes: 0.5B\n", "not a whole number of bytes");
    expect_error("bytes: -1\n", "out of range");
    expect_error("secs: 5 fortnights\n", "unknown unit");
    expect_error("secs: 2e9\n", "out of range");
    expect_error("il: [1, 8]\n", "il[1]: 8 is out of range");
    expect_error("il: 3\n", "expected a list of integers");
    expect_error("sl: [a, {b: 1}]\n", "sl[1]: expected a string, got a mapping");
    expect_error("in: {}\n", "in: missing required key 'depth'");
    expect_error("in: {depth: 1, dpeth: 2}\n",
                 "in.dpeth: unknown key 'dpeth' (did you mean 'depth'?)");
    expect_error("in: 5\n", "expected a mapping");
    expect_error("i: 1\ni: 2\n", "duplicate key 'i' (first given at line 1)");
    expect_error("colour: red\n", "unknown key 'colour'; tobj takes: i, f, b");
    expect_error("sweepme: [1, 2000]\n", "sweepme[1]: 2000 is out of range");
    expect_error("sweepme: []\n", "empty sweep list");
    expect_error("i: [1, 2]\n", "'i' cannot be swept");

    /* Cross-field check runs only when every field parsed. */
    check_calls = 0;
    expect_error("i: 13\nf: 2\n", "1:4: i: 13 conflicts with f=2");
    CHECK(check_calls == 1, "check ran %d times", check_calls);
    check_calls = 0;
    expect_error("i: 13\nf: x\n", "f: expected a number");
    CHECK(check_calls == 0, "check ran on an invalid mapping");

    /* All errors of a mapping are reported, not only the first. */
    tobj t2;
    CHECK(apply_text("i: x\nf: y\nb: z\ne: w\n", &t2, NULL, 0) == 4, "want 4 errors");
    hetrun_schema_free(&tschema, &t2);
}

/* Random round trips: formatted integers and sizes parse back to the same value. */
static void test_random_round_trip(void) {
    uint64_t state = 0x9E3779B97F4A7C15ull;
    for (int r = 0; r < 2000; r++) {
        state = state * 6364136223846793005ull + 1442695040888963407ull;
        int64_t v = (int64_t)((state >> 11) % 201) - 100; /* in the field's range */
        if (v == 13) v = 14;                              /* 13 is refused by tcheck */
        int64_t mib = (int64_t)((state >> 23) % 100000) + 1;
        char yaml[128];
        snprintf(yaml, sizeof yaml, "i: %" PRId64 "\nbytes: %" PRId64 "MiB\nsecs: %" PRId64 "ms\n",
                 v, mib, mib);
        tobj t;
        char first[512];
        int errs = apply_text(yaml, &t, first, sizeof first);
        CHECK(errs == 0 && t.i == v && t.bytes == mib * 1048576 &&
                  fabs(t.secs - (double)mib * 1e-3) < 1e-9,
              "round trip of %s: %s", yaml, first);
        hetrun_schema_free(&tschema, &t);
        if (failures > 20) break;
    }
}

static void test_did_you_mean(void) {
    const char *keys[] = {"iterations", "warmup", "m", "n", "k", "dtype"};
    CHECK(strcmp(hetrun_did_you_mean("iteration", keys, 6), "iterations") == 0, "iteration");
    CHECK(strcmp(hetrun_did_you_mean("itreations", keys, 6), "iterations") == 0, "swap");
    CHECK(strcmp(hetrun_did_you_mean("DTYPE", keys, 6), "dtype") == 0, "case");
    CHECK(hetrun_did_you_mean("zzzzzz", keys, 6) == NULL, "no match expected");
    CHECK(hetrun_did_you_mean("q", keys, 6) != NULL, "one-letter key near m/n/k");
    const char *longw = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    CHECK(hetrun_did_you_mean(longw, keys, 6) == NULL, "very long word");
}

static void test_diags(void) {
    hetrun_diags d = {0};
    hetrun_diags_add(&d, "f.yaml", 5, 2, "b", "second %d", 2);
    hetrun_diags_add(&d, "f.yaml", 1, 9, "", "first");
    hetrun_diags_add(&d, "f.yaml", 5, 2, "a", "same place, added later");
    hetrun_diags_add(&d, "f.yaml", 1, 9, "", "first"); /* exact duplicate: dropped */
    hetrun_diags_sort(&d);
    CHECK(d.count == 3, "count %zu", d.count);
    CHECK(d.items[0].line == 1 && strcmp(d.items[1].path, "b") == 0 &&
              strcmp(d.items[2].path, "a") == 0,
          "sort must be stable by line/column");
    char buf[512] = "";
    FILE *m = fmemopen(buf, sizeof buf, "w");
    hetrun_diags_print(&d, m);
    fclose(m);
    CHECK(strstr(buf, "f.yaml:1:9: first\nf.yaml:5:2: b: second 2\n") == buf, "print: %s", buf);
    hetrun_diags_free(&d);
    d.limit = 5;
    for (int i = 0; i < 50; i++)
        hetrun_diags_add(&d, "f", i + 1, 1, "", "e%d", i);
    CHECK(d.count == 5, "limit: %zu", d.count);
    hetrun_diags_free(&d);
}

static void test_env(void) {
    setenv("HETRUN_UT_A", "alpha", 1);
    setenv("HETRUN_UT_EMPTY", "", 1);
    unsetenv("HETRUN_UT_UNSET");
    const char *y = "a: ${HETRUN_UT_A}-x\nb: ${HETRUN_UT_UNSET:-dflt}\nc: $$HOME $5\n"
                    "d: ${HETRUN_UT_EMPTY:-e}\ne: \"${HETRUN_UT_EMPTY}\"\n${HETRUN_UT_A}: k\n";
    hetrun_diags d = {0};
    hetrun_node *n = hetrun_yaml_parse("e.yaml", (const unsigned char *)y, strlen(y), &d);
    CHECK(n != NULL, "env parse failed");
    if (n) {
        CHECK(strcmp(hetrun_node_get(n, "a")->scalar, "alpha-x") == 0, "a");
        CHECK(strcmp(hetrun_node_get(n, "b")->scalar, "dflt") == 0, "b");
        CHECK(strcmp(hetrun_node_get(n, "c")->scalar, "$HOME $5") == 0, "c=%s",
              hetrun_node_get(n, "c")->scalar);
        CHECK(strcmp(hetrun_node_get(n, "d")->scalar, "e") == 0, "d: empty uses default");
        CHECK(strcmp(hetrun_node_get(n, "e")->scalar, "") == 0, "e: empty is empty");
        CHECK(hetrun_node_get(n, "${HETRUN_UT_A}") != NULL, "keys are not expanded");
    }
    hetrun_node_free(n);
    hetrun_diags_free(&d);
    const char *bad = "a: ${HETRUN_UT_UNSET}\nb: ${HETRUN_UT_UNSET}\n";
    n = hetrun_yaml_parse("e.yaml", (const unsigned char *)bad, strlen(bad), &d);
    CHECK(!n && d.count == 2 && strstr(d.items[0].message, "HETRUN_UT_UNSET is not set"),
          "unset variables: %zu errors", d.count);
    hetrun_node_free(n);
    hetrun_diags_free(&d);
}

/* The spec knows the workload types it is given and no others; the activation names
 * workload schemas accept are the catalogue's, in its order (an enum stores the index). */
static void test_registry(void) {
    int a = 0;
    for (; a < HETRUN_ACT_COUNT && hetrun_act_choices[a]; a++)
        CHECK(strcmp(hetrun_act_choices[a], hetrun_activation_name((hetrun_activation)a)) == 0,
              "activation %d: %s, catalogue %s", a, hetrun_act_choices[a],
              hetrun_activation_name((hetrun_activation)a));
    CHECK(a >= 2 && !hetrun_act_choices[a], "hetrun_act_choices: %d names, not NULL-ended", a);
    const hetrun_workload_type *gemm = hetrun_workload_find("gemm");
    if (!gemm) return;
    const hetrun_workload_schema only[2] = {{"matmul", gemm->schema, gemm}, {NULL, NULL, NULL}};
    const char *y = "version: 1\nworkloads:\n  - matmul: {m: 8, n: 8, k: 8}\n"
                    "  - gemm: {m: 8, n: 8, k: 8}\n";
    hetrun_diags d = {0};
    hetrun_job *job = NULL;
    int rc = hetrun_spec_read_bytes("r.yaml", (const unsigned char *)y, strlen(y), only, &job, &d);
    CHECK(rc == 1 && !job && d.count == 1 &&
              strstr(d.items[0].message, "unknown workload type 'gemm'") &&
              strstr(d.items[0].message, "matmul"),
          "registry not honoured: rc %d, %zu errors, first: %s", rc, d.count,
          d.count ? d.items[0].message : "");
    hetrun_diags_free(&d);
    memset(&d, 0, sizeof d);
    const char *ok = "version: 1\nworkloads:\n  - matmul: {m: 8, n: 8, k: 8}\n";
    rc = hetrun_spec_read_bytes("r.yaml", (const unsigned char *)ok, strlen(ok), only, &job, &d);
    CHECK(rc == 0 && job && job->workload_count == 1 && job->workloads[0].type == gemm &&
              job->workloads[0].schema == gemm->schema,
          "a registered type was not read: rc %d", rc);
    hetrun_job_free(job);
    hetrun_diags_free(&d);
}

/* Job building: defaults of the top level, sweeps, precision default into workloads. */
static void test_job(void) {
    const hetrun_workload_type *gemm = hetrun_workload_find("gemm");
    CHECK(gemm != NULL, "gemm workload not registered");
    if (!gemm) return;
    const hetrun_field *dtf = hetrun_schema_field(gemm->schema, "dtype");
    CHECK(dtf && dtf->type == HETRUN_FIELD_DTYPE, "gemm has a dtype field");
    const char *y = "version: 1\nprecision: {dtype: bf16}\nworkloads:\n"
                    "  - gemm: {m: [1024, 2048], n: 8, k: 8, dtype: [fp32, fp16]}\n"
                    "  - gemm: {m: 8, n: 8, k: 8}\n";
    hetrun_diags d = {0};
    hetrun_job *job = NULL;
    int rc = hetrun_spec_load_bytes("j.yaml", (const unsigned char *)y, strlen(y), &job, &d);
    CHECK(rc == 0 && job, "job rejected (%zu errors)", d.count);
    if (rc == 0 && job) {
        CHECK(job->workload_count == 5, "points %zu", job->workload_count);
        CHECK(job->backends.count == 1 && strcmp(job->backends.items[0], "auto") == 0,
              "backend default auto");
        CHECK(job->report.formats.count == 2, "report formats default json, csv");
        CHECK(job->placement.bind && job->placement.policy == HETRUN_PLACE_CLOSEST, "placement");
        CHECK(job->checkpoint.keep == 3 && !job->checkpoint.dir, "checkpoint defaults");
        CHECK(job->version == 1 && job->seed == 42, "version/seed");
        CHECK(job->precision == HETRUN_BF16, "precision");
        CHECK(strcmp(job->workloads[1].label, "gemm[m=1024,dtype=fp16]") == 0, "label %s",
              job->workloads[1].label);
        CHECK(job->workloads[1].sweep_json &&
                  strcmp(job->workloads[1].sweep_json, "{\"m\":1024,\"dtype\":\"fp16\"}") == 0,
              "sweep_json %s", job->workloads[1].sweep_json ? job->workloads[1].sweep_json : "");
        CHECK(job->workloads[3].point == 3 && job->workloads[3].index == 0, "point numbering");
        CHECK(job->workloads[4].sweep_json == NULL && job->workloads[4].index == 1, "no sweep");
        int dt4 = *(const int *)((const char *)job->workloads[4].params + dtf->offset);
        int dt0 = *(const int *)((const char *)job->workloads[0].params + dtf->offset);
        CHECK(dt4 == HETRUN_BF16, "precision default not applied: dtype %d", dt4);
        CHECK(dt0 == HETRUN_F32, "explicit dtype overridden: %d", dt0);
        CHECK(strlen(job->spec_sha256) == 64, "sha256");
    }
    hetrun_job_free(job);
    hetrun_diags_free(&d);

    /* SHA-256 of the bytes: the standard test vector for "abc" cannot be a valid spec, so
     * compare two loads instead: same bytes, same hash; one byte more, another hash. */
    const char *y1 = "version: 1\nworkloads:\n  - gemm: {m: 8, n: 8, k: 8}\n";
    const char *y2 = "version: 1\nworkloads:\n  - gemm: {m: 8, n: 8, k: 8}\n\n";
    hetrun_job *a = NULL, *b = NULL, *c = NULL;
    hetrun_spec_load_bytes("a", (const unsigned char *)y1, strlen(y1), &a, &d);
    hetrun_spec_load_bytes("b", (const unsigned char *)y1, strlen(y1), &b, &d);
    hetrun_spec_load_bytes("c", (const unsigned char *)y2, strlen(y2), &c, &d);
    CHECK(a && b && c && strcmp(a->spec_sha256, b->spec_sha256) == 0 &&
              strcmp(a->spec_sha256, c->spec_sha256) != 0,
          "sha256 must depend on the bytes only");
    hetrun_job_free(a);
    hetrun_job_free(b);
    hetrun_job_free(c);
    hetrun_diags_free(&d);

    /* Every default of every table parses (a bad default is reported, not ignored). */
    const hetrun_schema *const *all = hetrun_spec_schemas();
    for (size_t s = 0; all[s]; s++)
        for (size_t f = 0; f < all[s]->field_count; f++)
            CHECK(all[s]->fields[f].doc && all[s]->fields[f].doc[0], "%s.%s has no doc",
                  all[s]->name, all[s]->fields[f].key);
}

int main(void) {
    test_typing();
    test_random_round_trip();
    test_did_you_mean();
    test_diags();
    test_env();
    test_job();
    test_registry();
    printf("# %d checks, %d failed\n", checks, failures);
    return failures ? 1 : 0;
}
