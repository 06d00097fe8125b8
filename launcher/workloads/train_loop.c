/* The one training driver of the train workload (train_loop.h). */
#include "workloads/train_loop.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exec/checkpoint_request.h"
#include "exec/grad_sync.h"
#include "report/fields.h"
#include "spec/job.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/progress.h"
#include "workloads/ckpt_resume.h"
#include "workloads/nn_checkpoint.h"
#include "workloads/stats.h"
#include "workloads/train_common.h"

void *hetrun_train_model_begin(hetrun_session *s, hetrun_train_model *m,
                               const hetrun_train_model_ops *ops, size_t size) {
    memset(m, 0, sizeof *m);
    m->self = calloc(1, size);
    if (!m->self) {
        snprintf(s->error, sizeof s->error, "out of host memory for the model");
        return NULL;
    }
    m->ops = ops;
    return m->self;
}

void hetrun_train_model_end(hetrun_session *s, hetrun_train_model *m) {
    if (m->self) m->ops->destroy(s, m);
    free(m->self);
    m->self = NULL;
}

double hetrun_train_lr_at(const hetrun_train_spec *p, int64_t step, int64_t total) {
    if (p->warmup_steps > 0 && step < p->warmup_steps)
        return p->lr * (double)(step + 1) / (double)p->warmup_steps;
    if (p->schedule != HETRUN_SCHED_COSINE) return p->lr;
    int64_t span = total - p->warmup_steps;
    double frac = span > 0 ? (double)(step - p->warmup_steps) / (double)span : 1.0;
    return p->min_lr + (p->lr - p->min_lr) * 0.5 * (1.0 + cos(M_PI * frac));
}

/* The one call site of the data-parallel sum: backward reports each gradient bucket as it
 * completes it, and its sum starts there (exec/grad_sync.h) while backward computes the
 * rest; the step waits for all of them before anything reads the gradients. */
typedef struct bucket_ctx {
    hetrun_grad_sync *gs;
    int active;      /* reduce during this backward (the step's last micro-batch) */
    double reduce_s; /* time started sums and the final wait kept this rank from computing */
} bucket_ctx;

static int reduce_bucket(hetrun_session *s, int b, void *ctx) {
    (void)s;
    bucket_ctx *c = ctx;
    if (!c->active) return 0;
    double t0 = hetrun_now_s();
    int rc = hetrun_grad_sync_bucket_ready(c->gs, b);
    c->reduce_s += hetrun_now_s() - t0;
    return rc;
}

/* Squared norm and non-finite count of the whole gradient buffer (scratch: 2 scalars). */
static int grad_stats(hetrun_session *s, const hetrun_train_model *m, hetrun_buffer *scratch,
                      double *sumsq, int64_t *nonfinite) {
    hetrun_op_desc d = hetrun_op_desc_init(HETRUN_OP_SUM_SQUARES, HETRUN_F32);
    d.m = 1, d.n = (int64_t)m->param_count, d.beta = 0.0;
    hetrun_tensor a1[2] = {hetrun_tensor_at(m->grads, 0), hetrun_tensor_at(scratch, 0)};
    hetrun_op_desc e = hetrun_op_desc_init(HETRUN_OP_NONFINITE_COUNT, HETRUN_F32);
    e.m = 1, e.n = (int64_t)m->param_count, e.beta = 0.0;
    hetrun_tensor a2[2] = {hetrun_tensor_at(m->grads, 0), hetrun_tensor_at(scratch, 256)};
    float ss = 0.0f;
    int32_t nf = 0;
    if (hetrun_exec_op(s, &d, a1) != 0 || hetrun_exec_op(s, &e, a2) != 0 ||
        hetrun_session_d2h(s, &ss, hetrun_tensor_at(scratch, 0), 4) != 0 ||
        hetrun_session_d2h(s, &nf, hetrun_tensor_at(scratch, 256), 4) != 0)
        return -1;
    *sumsq = ss, *nonfinite = nf;
    return 0;
}

static int scale_grads(hetrun_session *s, const hetrun_train_model *m, double alpha) {
    hetrun_op_desc d = hetrun_op_desc_init(HETRUN_OP_SCALE, HETRUN_F32);
    d.m = 1, d.n = (int64_t)m->param_count, d.alpha = alpha;
    hetrun_tensor args[2] = {hetrun_tensor_at(m->grads, 0), hetrun_tensor_at(m->grads, 0)};
    return hetrun_exec_op(s, &d, args);
}

/* Names the first non-finite parameter ("tensor layers.1.weight [17] = nan, 40 of 6272
 * values non-finite"); empty when every value is finite. */
static void first_nonfinite(const hetrun_train_model *m, const float *hp, char *out, size_t len) {
    out[0] = '\0';
    for (int i = 0; i < m->tensor_count; i++) {
        const hetrun_param_tensor *t = &m->tensors[i];
        uint64_t bad = 0, first = 0;
        for (uint64_t j = t->count; j-- > 0;)
            if (!isfinite(hp[t->offset + j])) bad++, first = j;
        if (bad) {
            snprintf(out, len, "tensor %s [%llu] = %g, %llu of %llu values non-finite", t->name,
                     (unsigned long long)first, (double)hp[t->offset + first],
                     (unsigned long long)bad, (unsigned long long)t->count);
            return;
        }
    }
}

/* fp16 dynamic loss scaling state (as PyTorch's GradScaler); checkpointed. */
typedef struct loss_scaler {
    double scale;
    int64_t good, skipped; /* clean steps since the last change; steps skipped in all */
} loss_scaler;

static int write_ckpt(hetrun_session *s, hetrun_train_model *m, int64_t step, const loss_scaler *ls,
                      float *hp, float *hs, int *written) {
    const hetrun_job *job = s->job;
    const uint64_t state_floats = m->param_count * (uint64_t)m->state_slots;
    int rc = 0;
    if (hetrun_session_d2h(s, hp, hetrun_tensor_at(m->params, 0), m->param_count * 4) != 0 ||
        hetrun_session_d2h(s, hs, hetrun_tensor_at(m->state, 0), state_floats * 4) != 0)
        rc = -1;
    char where[256] = "";
    if (rc == 0) first_nonfinite(m, hp, where, sizeof where); /* same weights on every rank */
    if (where[0]) {
        snprintf(s->error, sizeof s->error,
                 "step %lld: non-finite weights (%s); no checkpoint written", (long long)step,
                 where);
        return -1;
    }
    if (rc == 0 && s->rank == 0) {
        hetrun_nn_ckpt_meta meta = {.step = step, .vocab = m->vocab, .state_slots = m->state_slots};
        snprintf(meta.config_sha256, sizeof meta.config_sha256, "%s", m->config_sha256);
        snprintf(meta.model, sizeof meta.model, "%s", m->model);
        if (m->compute == HETRUN_F16)
            snprintf(meta.loss_scaler, sizeof meta.loss_scaler,
                     "scale=%.17g good=%lld skipped=%lld", ls->scale, (long long)ls->good,
                     (long long)ls->skipped);
        meta.extra_count = m->extra_count;
        memcpy(meta.extra, m->extra, sizeof meta.extra);
        char err[1024];
        if (hetrun_nn_ckpt_write(job->checkpoint.dir, m->tensors, m->tensor_count, m->param_count,
                                 hp, hs, &meta, job->checkpoint.keep, err, sizeof err) != 0) {
            snprintf(s->error, sizeof s->error, "%s", err);
            rc = -1;
        }
    }
    return hetrun_train_ckpt_agree(s, rc, written);
}

/* Loads the newest valid checkpoint when the job asks to resume. Returns 1 (resumed: *step,
 * *ls set), 0 (start fresh) or -1 (s->error). Collective. */
static int resume(hetrun_session *s, hetrun_train_model *m, float *hp, float *hs, int64_t *step,
                  loss_scaler *ls, cJSON *result) {
    const hetrun_job *job = s->job;
    if (!job || !job->checkpoint.dir || !job->checkpoint.resume) return 0;
    char path[4096], err[2048];
    hetrun_nn_ckpt_meta meta = {.vocab = m->vocab, .state_slots = m->state_slots};
    snprintf(meta.model, sizeof meta.model, "%s", m->model);
    /* Padding of the flat buffers is zero; the loader fills only the tensors. */
    const uint64_t state_floats = m->param_count * (uint64_t)m->state_slots;
    memset(hp, 0, (size_t)m->param_count * 4), memset(hs, 0, (size_t)state_floats * 4);
    int got =
        hetrun_nn_ckpt_resume(s, job->checkpoint.dir, m->tensors, m->tensor_count, m->param_count,
                              hp, hs, &meta, path, sizeof path, err, sizeof err);
    if (got < 0) {
        snprintf(s->error, sizeof s->error, "resume: %s", err);
        return -1;
    }
    if (got == 0) {
        if (s->rank == 0)
            HETRUN_INFO("train: no checkpoint in %s yet; starting at step 0", job->checkpoint.dir);
        return 0;
    }
    const int other = strcmp(meta.config_sha256, m->config_sha256) != 0;
    if (other || meta.step > m->total_steps) {
        snprintf(
            s->error, sizeof s->error,
            "resume: checkpoint %s does not match this job: %s (checkpoint config %.16s... "
            "step %lld; job config %.16s... %lld steps)",
            path, other ? "training configuration hash differs" : "step beyond this run's total",
            meta.config_sha256, (long long)meta.step, m->config_sha256, (long long)m->total_steps);
        return -1;
    }
    if (hetrun_session_h2d(s, hetrun_tensor_at(m->params, 0), hp, m->param_count * 4) != 0 ||
        hetrun_session_h2d(s, hetrun_tensor_at(m->state, 0), hs, state_floats * 4) != 0)
        return -1;
    if (m->compute == HETRUN_F16) {
        long long good = 0, skipped = 0;
        if (sscanf(meta.loss_scaler, "scale=%lg good=%lld skipped=%lld", &ls->scale, &good,
                   &skipped) != 3 ||
            !(ls->scale > 0)) {
            snprintf(s->error, sizeof s->error,
                     "resume: checkpoint %s lacks a valid fp16 loss_scaler in its "
                     "__metadata__ (found \"%s\")",
                     path, meta.loss_scaler);
            return -1;
        }
        ls->good = good, ls->skipped = skipped;
    }
    *step = meta.step;
    cJSON_AddStringToObject(result, HETRUN_RF_RESUMED_FROM, path);
    cJSON_AddNumberToObject(result, HETRUN_RF_RESUMED_AT_STEP, (double)*step);
    if (s->rank == 0) HETRUN_INFO("train: resumed from %s at step %lld", path, (long long)*step);
    return 1;
}

/* Ends a run whose loss or gradients went non-finite: names the step and the weights. */
static void fail_nonfinite(hetrun_session *s, const hetrun_train_model *m, float *hp, int64_t step,
                           double loss, int64_t nonfinite) {
    char where[256] = "";
    if (hetrun_session_d2h(s, hp, hetrun_tensor_at(m->params, 0), m->param_count * 4) == 0)
        first_nonfinite(m, hp, where, sizeof where);
    char what[160];
    if (!isfinite(loss))
        snprintf(what, sizeof what, "the loss is %g (not finite)", loss);
    else
        snprintf(what, sizeof what, "non-finite gradient (loss %g, %lld non-finite elements)", loss,
                 (long long)nonfinite);
    snprintf(s->error, sizeof s->error,
             "step %lld: %s; %s%s; lower train.lr or check the data's scale%s", (long long)step,
             what, where[0] ? "weights before this step: " : "",
             where[0] ? where : "weights are still finite: the forward or backward pass overflowed",
             m->compute == HETRUN_F16
                 ? " (33 steps in a row although the fp16 loss scale was halved each time: the "
                   "forward pass itself overflows fp16: try precision bf16)"
                 : "");
}

int hetrun_train_loop(hetrun_session *s, hetrun_train_model *m, const hetrun_train_spec *p,
                      cJSON *result) {
    const hetrun_job *job = s->job;
    const int64_t total = m->total_steps, lb = m->rows_local, mb = m->micro_batch;
    const uint64_t state_floats = m->param_count * (uint64_t)m->state_slots;
    float *hp = malloc((size_t)m->param_count * 4);
    float *hs = malloc((size_t)(state_floats ? state_floats : 1) * 4);
    double *step_ms = malloc((size_t)(total > 0 ? total : 1) * sizeof *step_ms);
    hetrun_buffer *scratch = NULL;
    hetrun_grad_sync *gs = NULL;
    int rc = -1;
    if (!hp || !hs || !step_ms) {
        snprintf(s->error, sizeof s->error, "out of host memory (%llu parameters)",
                 (unsigned long long)m->param_count);
        goto out;
    }
    if (m->grad_stats && hetrun_session_alloc(s, 512, &scratch) != 0) goto out;
    int64_t step = 0;
    /* fp16: the loss is scaled before backward so small gradients survive fp16; an overflow
     * skips the step and halves the scale, 2000 clean steps double it; the optimizer's step
     * count advances only on applied steps. */
    loss_scaler ls = {m->compute == HETRUN_F16 ? m->loss_scale : 1.0, 0, 0};
    if (resume(s, m, hp, hs, &step, &ls, result) < 0) goto out;
    if (hetrun_grad_sync_create(s, m->grads, m->param_count, m->buckets, m->bucket_count, &gs) != 0)
        goto out;

    const double inv = 1.0 / (double)(m->rows_global * m->units_per_row);
    double train_s = 0.0, reduce_s = 0.0, flops = 0.0, ema = 0.0, best_ema = INFINITY;
    int64_t steps_run = 0, overflow_run = 0;
    int ckpts = 0, interrupted = 0;
    const int64_t every = job ? job->checkpoint.every : 0;
    while (step < total) {
        const double t0 = hetrun_now_s(), f0 = s->usage.flops;
        bucket_ctx bc = {gs, 0, 0.0};
        double loss_sum = 0.0;
        if (m->ops->zero_grads && m->ops->zero_grads(s, m) != 0) goto out;
        for (int64_t i = 0; i < lb; i += mb) {
            const int64_t k = lb - i < mb ? lb - i : mb;
            double part = 0.0;
            bc.active = i + k == lb;
            if (m->ops->load_batch(s, m, step, i, k) != 0 || m->ops->forward(s, m, k, &part) != 0 ||
                m->ops->backward(s, m, k, inv * ls.scale, reduce_bucket, &bc) != 0)
                goto out;
            loss_sum += part;
        }
        const double tw = hetrun_now_s();
        if (hetrun_grad_sync_wait_all(gs) != 0) goto out;
        bc.reduce_s += hetrun_now_s() - tw;
        /* Every rank decides on the global loss, so all stop or skip at the same step. */
        double gl = 0.0, sumsq = 0.0;
        int64_t nonfinite = 0;
        MPI_Allreduce(&loss_sum, &gl, 1, MPI_DOUBLE, MPI_SUM, s->comm);
        gl *= inv;
        if (m->grad_stats && grad_stats(s, m, scratch, &sumsq, &nonfinite) != 0) goto out;
        const int overflow = !isfinite(gl) || nonfinite > 0 || !isfinite(sumsq);
        const int skip = overflow && m->compute == HETRUN_F16 && ++overflow_run <= 32;
        if (overflow && !skip) {
            fail_nonfinite(s, m, hp, step + 1, gl, nonfinite);
            goto out;
        }
        const double lr = hetrun_train_lr_at(p, step, total);
        double gnorm = NAN;
        if (skip) {
            if (s->rank == 0)
                HETRUN_WARN("train: step %lld: fp16 gradients overflowed at loss scale %g: step "
                            "skipped, scale now %g",
                            (long long)(step + 1), ls.scale, ls.scale / 2);
            ls.scale /= 2, ls.good = 0, ls.skipped++;
        } else {
            overflow_run = 0;
            double clip = 1.0; /* one pass over the gradients: unscale and clip together */
            if (m->grad_stats) {
                gnorm = sqrt(sumsq) / ls.scale;
                if (m->grad_clip > 0.0 && gnorm > m->grad_clip) clip = m->grad_clip / gnorm;
            }
            if (clip / ls.scale != 1.0 && scale_grads(s, m, clip / ls.scale) != 0) goto out;
            if (m->compute == HETRUN_F16 && ++ls.good == 2000) ls.scale *= 2, ls.good = 0;
            hetrun_train_opt o = {lr,       p->momentum, p->weight_decay,      p->beta1,
                                  p->beta2, p->eps,      step + 1 - ls.skipped};
            if (m->ops->step(s, m, &o) != 0) goto out;
        }
        if (hetrun_session_sync(s) != 0) goto out;
        if (p->divergence.max_loss_ratio > 0.0) {
            ema = steps_run ? 0.9 * ema + 0.1 * gl : gl;
            if (steps_run + 1 >= p->divergence.after_steps) {
                if (ema < best_ema) best_ema = ema;
                if (best_ema > 0.0 && ema > p->divergence.max_loss_ratio * best_ema) {
                    snprintf(s->error, sizeof s->error,
                             "step %lld: the loss diverged: smoothed loss %.4g is %.1fx its "
                             "lowest %.4g (train.divergence.max_loss_ratio %g); lower train.lr",
                             (long long)step + 1, ema, ema / best_ema, best_ema,
                             p->divergence.max_loss_ratio);
                    goto out;
                }
            }
        }
        const double dt = hetrun_now_s() - t0;
        flops += s->usage.flops - f0;
        train_s += dt, reduce_s += bc.reduce_s;
        step_ms[steps_run++] = dt * 1e3;
        step++;
        hetrun_train_step_info info = {
            step,     total, gl, loss_sum,
            gnorm,    lr,    dt, (double)(steps_run * m->rows_global * m->units_per_row) / train_s,
            steps_run};
        char detail[48];
        snprintf(detail, sizeof detail, "loss %.4f", gl);
        hetrun_progress_update(step, total, "steps", detail);
        if (m->ops->after_step(s, m, &info) != 0) goto out;
        const int req = hetrun_checkpoint_request_poll(s, step); /* a signal asked for one */
        if (job && job->checkpoint.dir && ((every > 0 && step % every == 0) || req) &&
            step < total && write_ckpt(s, m, step, &ls, hp, hs, &ckpts) != 0)
            goto out;
        if (req == HETRUN_CKPT_REQ_STOP && step < total) {
            hetrun_checkpoint_request_stop_error(s, step);
            goto out;
        }
        if (p->stop_after > 0 && steps_run >= p->stop_after && step < total) {
            interrupted = 1;
            break;
        }
    }
    if (!interrupted && steps_run > 0 && job && job->checkpoint.dir &&
        write_ckpt(s, m, step, &ls, hp, hs, &ckpts) != 0)
        goto out;
    int ok = 1;
    if (m->ops->finish(s, m, result, interrupted, &ok) != 0) goto out;

    /* Weights identical on every rank: CRC32 of the flat parameter buffer. */
    if (hetrun_session_d2h(s, hp, hetrun_tensor_at(m->params, 0), m->param_count * 4) != 0)
        goto out;
    char broken[256];
    first_nonfinite(m, hp, broken, sizeof broken);
    if (broken[0]) {
        snprintf(s->error, sizeof s->error, "step %lld: non-finite weights at the end: %s",
                 (long long)step, broken);
        goto out;
    }
    char crc[9];
    hetrun_train_crc_hex(hp, m->param_count, crc);
    int equal = hetrun_train_crc_all_equal(s, crc, result);
    if (equal < 0) goto out;

    const double peak = s->info.peak_flops[m->compute];
    cJSON_AddStringToObject(result, HETRUN_RF_MODEL, m->model);
    cJSON_AddNumberToObject(result, HETRUN_RF_PARAMETERS, (double)m->real_params);
    cJSON_AddStringToObject(result, HETRUN_RF_PRECISION, hetrun_dtype_name(m->compute));
    if (m->compute == HETRUN_F16) {
        cJSON_AddNumberToObject(result, HETRUN_RF_LOSS_SCALE, ls.scale);
        cJSON_AddNumberToObject(result, HETRUN_RF_SKIPPED_STEPS, (double)ls.skipped);
    }
    cJSON_AddNumberToObject(result, HETRUN_RF_RANKS, (double)s->nranks);
    cJSON_AddNumberToObject(
        result, m->rate_field,
        train_s > 0 ? (double)(steps_run * m->rows_global * m->units_per_row) / train_s : 0.0);
    cJSON_AddNumberToObject(result, HETRUN_RF_STEPS_TOTAL, (double)total);
    cJSON_AddNumberToObject(result, HETRUN_RF_STEPS_RUN, (double)steps_run);
    cJSON_AddNumberToObject(result, HETRUN_RF_FINAL_STEP, (double)step);
    cJSON_AddBoolToObject(result, HETRUN_RF_INTERRUPTED, interrupted);
    cJSON_AddItemToObject(result, HETRUN_RF_STEP_TIME_MS,
                          hetrun_stats_json(hetrun_stats_of(step_ms, (size_t)steps_run)));
    cJSON_AddNumberToObject(result, HETRUN_RF_COMPUTE_MS_PER_STEP,
                            steps_run ? 1e3 * (train_s - reduce_s) / (double)steps_run : 0.0);
    cJSON_AddNumberToObject(result, HETRUN_RF_ALLREDUCE_MS_PER_STEP,
                            steps_run ? 1e3 * reduce_s / (double)steps_run : 0.0);
    cJSON_AddStringToObject(result, HETRUN_RF_ALLREDUCE, hetrun_grad_sync_path(gs));
    char buckets[160];
    snprintf(buckets, sizeof buckets, "%d (%s), each allreduced as backward completes it",
             m->bucket_count, m->bucket_text);
    cJSON_AddStringToObject(result, HETRUN_RF_ALLREDUCE_BUCKETS, buckets);
    cJSON_AddNumberToObject(result, HETRUN_RF_TRAIN_FLOPS_COUNTED, flops);
    cJSON_AddNumberToObject(result, HETRUN_RF_ACHIEVED_FLOP_S, train_s > 0 ? flops / train_s : 0.0);
    if (peak > 0)
        cJSON_AddNumberToObject(result, HETRUN_RF_MFU, train_s > 0 ? flops / train_s / peak : 0.0);
    else
        cJSON_AddNullToObject(result, HETRUN_RF_MFU);
    cJSON_AddNumberToObject(result, HETRUN_RF_PEAK_FLOP_S, peak); /* of the compute dtype */
    cJSON_AddStringToObject(result, HETRUN_RF_WEIGHTS_CRC32, crc);
    cJSON_AddBoolToObject(result, HETRUN_RF_WEIGHTS_EQUAL, equal == 1);
    cJSON_AddStringToObject(result, HETRUN_RF_CONFIG_SHA256, m->config_sha256);
    cJSON_AddNumberToObject(result, HETRUN_RF_CHECKPOINTS_WRITTEN, ckpts);
    hetrun_result_set_check(result, interrupted && equal == 1 ? HETRUN_CHECK_SKIPPED
                                    : equal == 1 && ok        ? HETRUN_CHECK_PASSED
                                                              : HETRUN_CHECK_FAILED);
    rc = 0;
out:
    hetrun_grad_sync_destroy(gs);
    hetrun_session_free(s, scratch, 512);
    free(hp), free(hs), free(step_ms);
    return rc;
}
