/* GPT forward/backward against PyTorch's reference tensors (gpt_reference.h). */
#include "report/fields.h"
#include "workloads/gpt_reference.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/catalogue.h"
#include "workloads/train_common.h"

/* Reads exactly `bytes` from dir/name into a new buffer. */
static void *slurp(hetrun_session *s, const char *dir, const char *name, size_t bytes) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    void *buf = malloc(bytes ? bytes : 1);
    size_t got = f && buf ? fread(buf, 1, bytes, f) : 0;
    int extra = f ? fgetc(f) != EOF : 0;
    if (f) fclose(f);
    if (!f || !buf || got != bytes || extra) {
        snprintf(s->error, sizeof s->error,
                 "gpt reference: %s: %s (want exactly %zu bytes, read %zu%s)", path,
                 !f ? "cannot open" : "wrong size", bytes, got, extra ? " and more" : "");
        free(buf);
        return NULL;
    }
    return buf;
}

/* max |a-b| / max |b| over n floats. */
static double rel_err(const float *a, const float *b, uint64_t n) {
    double e = 0.0, m = 0.0;
    for (uint64_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (!(d <= e)) e = d; /* NaN propagates */
        if (fabs((double)b[i]) > m) m = fabs((double)b[i]);
    }
    return m > 0 ? e / m : e;
}

int hetrun_gpt_reference_check(hetrun_session *s, const hetrun_gpt_config *spec, const char *dir_in,
                               cJSON *result) {
    char dir[4096], path[4096];
    hetrun_train_resolve(s, dir_in, dir, sizeof dir);
    snprintf(path, sizeof path, "%s/manifest.txt", dir);
    FILE *mf = fopen(path, "r");
    long long L = 0, H = 0, C = 0, T = 0, V = 0, B = 0;
    if (!mf ||
        fscanf(mf, "# gpt layers %lld heads %lld width %lld context %lld vocab %lld batch %lld", &L,
               &H, &C, &T, &V, &B) != 6) {
        snprintf(s->error, sizeof s->error, "gpt reference: %s: %s", path,
                 mf ? "first line is not '# gpt layers L heads H width C context T vocab V batch B'"
                    : "cannot open");
        if (mf) fclose(mf);
        return -1;
    }
    char rest[256];
    if (!fgets(rest, sizeof rest, mf)) rest[0] = '\0';           /* the end of the first line */
    hetrun_gpt_config cfg = {L, H, C, T, V, spec->compute, 0.0}; /* the reference: no dropout */
    if (memcmp(&cfg, spec, sizeof cfg) != 0)
        cJSON_AddStringToObject(result, "note",
                                "model shape taken from the reference manifest, "
                                "not the spec's gpt section");
    hetrun_gpt g;
    float *w = NULL, *gr = NULL, *flat = NULL, *want_logits = NULL, *logits = NULL, *loss = NULL;
    int32_t *batch = NULL;
    int rc = -1;
    if (hetrun_gpt_create(s, &g, &cfg, B, 1) != 0) {
        fclose(mf);
        return -1;
    }
    const uint64_t N = (uint64_t)(B * T);
    if (!(w = slurp(s, dir, "weights.f32", g.real_params * 4)) ||
        !(gr = slurp(s, dir, "grads.f32", g.real_params * 4)) ||
        !(batch = slurp(s, dir, "batch.i32", 2 * N * 4)) ||
        !(want_logits = slurp(s, dir, "logits.f32", N * (uint64_t)V * 4)))
        goto out;
    flat = calloc((size_t)g.param_count, 4);
    logits = malloc((size_t)(N * (uint64_t)V) * 4);
    loss = malloc((size_t)N * 4);
    if (!flat || !logits || !loss) {
        snprintf(s->error, sizeof s->error, "gpt reference: out of host memory");
        goto out;
    }
    /* The manifest lists tensors in the model's order; check each name and shape. */
    uint64_t off = 0;
    for (int i = 0; i < g.tensor_count; i++) {
        const hetrun_param_tensor *t = &g.tensors[i];
        char name[128];
        long long d0 = 0, d1 = 0;
        char line[512];
        if (!fgets(line, sizeof line, mf)) line[0] = '\0';
        int got = sscanf(line, "%127s %lld %lld", name, &d0, &d1);
        if (got < 2 || strcmp(name, t->name) != 0 || d0 != t->shape[0] ||
            (t->ndim == 2 ? d1 != t->shape[1] : got != 2)) {
            snprintf(s->error, sizeof s->error,
                     "gpt reference: %s: entry %d is '%.200s', expected %s with the model's shape",
                     path, i + 1, line, t->name);
            goto out;
        }
        memcpy(flat + t->offset, w + off, t->count * 4);
        off += t->count;
    }
    double want_loss = 0.0;
    {
        char lp[4096];
        snprintf(lp, sizeof lp, "%s/loss.txt", dir);
        FILE *lf = fopen(lp, "r");
        int okl = lf && fscanf(lf, "%lf", &want_loss) == 1;
        if (lf) fclose(lf);
        if (!okl) {
            snprintf(s->error, sizeof s->error, "gpt reference: %s: no loss value", lp);
            goto out;
        }
    }
    if (hetrun_session_h2d(s, hetrun_tensor_at(g.params, 0), flat, g.param_count * 4) ||
        hetrun_session_h2d(s, hetrun_gpt_ids(&g), batch, N * 4) ||
        hetrun_session_h2d(s, hetrun_gpt_targets(&g), batch + N, N * 4) ||
        hetrun_gpt_forward(s, &g, B, T, 1) ||
        hetrun_session_d2h(s, logits, hetrun_gpt_logits(&g), N * (uint64_t)V * 4) ||
        hetrun_session_d2h(s, loss, hetrun_gpt_loss(&g), N * 4) || hetrun_gpt_zero_grads(s, &g) ||
        hetrun_gpt_backward(s, &g, B, T, 1.0 / (double)N, NULL, NULL) ||
        hetrun_session_d2h(s, flat, hetrun_tensor_at(g.grads, 0), g.param_count * 4))
        goto out;
    double mean = 0.0;
    for (uint64_t i = 0; i < N; i++)
        mean += loss[i];
    mean /= (double)N;
    const double tol = cfg.compute == HETRUN_F32 ? HETRUN_GPT_REFERENCE_RTOL
                                                 : HETRUN_GPT_REFERENCE_MIXED_UNITS *
                                                       hetrun_dtype_unit_roundoff(cfg.compute);
    double worst = 0.0;
    const char *worst_name = "logits";
    cJSON *errs = cJSON_AddObjectToObject(result, "relative_errors");
    double e = rel_err(logits, want_logits, N * (uint64_t)V);
    cJSON_AddNumberToObject(errs, "logits", e);
    worst = e;
    e = fabs(mean - want_loss) / fabs(want_loss);
    cJSON_AddNumberToObject(errs, "loss", e);
    if (!(e <= worst)) worst = e, worst_name = "loss";
    off = 0;
    for (int i = 0; i < g.tensor_count; i++) {
        const hetrun_param_tensor *t = &g.tensors[i];
        e = rel_err(flat + t->offset, gr + off, t->count);
        off += t->count;
        char key[HETRUN_TENSOR_NAME_MAX + 8];
        snprintf(key, sizeof key, "grad.%s", t->name);
        cJSON_AddNumberToObject(errs, key, e);
        if (!(e <= worst)) worst = e, worst_name = t->name;
    }
    cJSON_AddNumberToObject(result, "loss", mean);
    cJSON_AddNumberToObject(result, "reference_loss", want_loss);
    cJSON_AddNumberToObject(result, "tolerance", tol);
    cJSON_AddStringToObject(result, "precision", hetrun_dtype_name(cfg.compute));
    cJSON_AddNumberToObject(result, "worst_relative_error", worst);
    cJSON_AddStringToObject(result, "worst_tensor", worst_name);
    hetrun_result_set_check(result, worst <= tol ? HETRUN_CHECK_PASSED : HETRUN_CHECK_FAILED);
    if (s->rank == 0)
        fprintf(stderr,
                "[rank 0] gpt reference: loss %.6f (PyTorch %.6f), worst relative error %.3g "
                "(%s), tolerance %g: %s\n",
                mean, want_loss, worst, worst_name, tol, worst <= tol ? "passed" : "FAILED");
    rc = 0;
out:
    fclose(mf);
    hetrun_gpt_destroy(s, &g);
    free(w), free(gr), free(flat), free(want_logits), free(logits), free(loss), free(batch);
    return rc;
}
