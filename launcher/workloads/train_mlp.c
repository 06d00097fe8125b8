/* `model: mlp` of the train workload: an MLP classifier on rows of `data`.
 *
 * Every rank loads the whole dataset, splits it with the same seed and takes its shard of
 * every global batch (ranks 0..n-1 take consecutive slices of the shuffled batch; the
 * epoch's shuffle comes from (seed, epoch) alone, so a resumed run sees the same rows).
 * The backward pass overwrites the gradients (one micro-batch a step) and reports each
 * layer as a bucket, the last layer first. On the cpu backend a run is bitwise
 * reproducible for a given seed, rank count and cpu_threads (fixed reduction orders in the
 * kernels, OpenBLAS's partitioning fixed by its thread count, MPI's allreduce order fixed
 * by rank count and size). */
#include <math.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report/fields.h"
#include "util/clock.h"
#include "util/progress.h"
#include "workloads/model.h"
#include "workloads/stats.h"
#include "workloads/train_common.h"
#include "workloads/train_loop.h"
#include "workloads/train_model.h"
#include "workloads/train_spec.h"

static const char *const opt_names[] = {"sgd", "adamw"};

typedef struct mlp_self {
    const hetrun_train_spec *p;
    uint64_t seed;
    hetrun_mlp net;
    hetrun_dataset train, test;
    float *mean, *std, *hx, *logits;
    int32_t *hy;
    int64_t *perm;
    int64_t spe, shuffled_epoch; /* steps per epoch; the epoch `perm` holds */
    hetrun_param_tensor tensors[2 * HETRUN_MLP_MAX_LAYERS];
    hetrun_grad_bucket buckets[HETRUN_MLP_MAX_LAYERS];
    /* the epoch so far (this rank), and the latest test accuracy */
    double loss_sum, epoch_t0, acc;
    int64_t epoch_steps;
    cJSON *epochs;
} mlp_self;

/* SHA-256 of everything that determines the weight trajectory, in a fixed text form.
 * Deliberately not the spec file's hash: that changes when `checkpoint.resume` is flipped
 * (and with comments or debug knobs like stop_after), which would defeat resume. */
static void config_hash(const hetrun_train_spec *p, uint64_t seed, const hetrun_mlp_shape *sh,
                        char out[65]) {
    char text[4096];
    int n = snprintf(text, sizeof text,
                     "hetrun-train-v1|src=%d|path=%s|labels=%s|lc=%lld|hdr=%d|syn=%lld,%lld,%lld,"
                     "%.17g|test=%.17g|std=%d|act=%d|opt=%d|lr=%.17g|mom=%.17g|wd=%.17g|b=%.17g,"
                     "%.17g,%.17g|sched=%d,%lld,%.17g|batch=%lld|epochs=%lld|steps=%lld|seed=%llu"
                     "|dims=",
                     p->data.source, p->data.path ? p->data.path : "",
                     p->data.labels ? p->data.labels : "", (long long)p->data.label_column,
                     p->data.header, (long long)p->data.samples, (long long)p->data.features,
                     (long long)p->data.classes, p->data.spread, p->data.test_fraction,
                     p->data.standardize, p->activation, p->optimizer, p->lr, p->momentum,
                     p->weight_decay, p->beta1, p->beta2, p->eps, p->schedule,
                     (long long)p->warmup_steps, p->min_lr, (long long)p->batch,
                     (long long)p->epochs, (long long)p->steps, (unsigned long long)seed);
    for (int l = 0; l <= sh->layers && n > 0 && (size_t)n < sizeof text; l++)
        n += snprintf(text + n, sizeof text - (size_t)n, "%lld,", (long long)sh->dims[l]);
    unsigned char md[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)text, strlen(text), md);
    for (int i = 0; i < SHA256_DIGEST_LENGTH; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

/* Permutation of n training rows from the generator state of (seed, epoch). */
static void shuffle(int64_t *perm, int64_t n, uint64_t seed, int64_t epoch) {
    hetrun_rng r = hetrun_rng_seed(seed ^ 0x7a11u, (uint64_t)epoch);
    for (int64_t i = 0; i < n; i++)
        perm[i] = i;
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)(hetrun_rng_next(&r) % (uint64_t)(i + 1));
        int64_t t = perm[i];
        perm[i] = perm[j], perm[j] = t;
    }
}

static int load_batch(hetrun_session *s, hetrun_train_model *m, int64_t step, int64_t first,
                      int64_t count) {
    mlp_self *x = m->self;
    const int64_t f = x->train.features, epoch = step / x->spe, within = step % x->spe;
    if (epoch != x->shuffled_epoch)
        shuffle(x->perm, x->train.samples, x->seed, epoch), x->shuffled_epoch = epoch;
    for (int64_t i = 0; i < count; i++) {
        int64_t row = x->perm[within * m->rows_global + m->rows_first + first + i];
        memcpy(x->hx + i * f, x->train.x + row * f, (size_t)f * 4);
        x->hy[i] = x->train.y[row];
    }
    return hetrun_session_h2d(s, hetrun_mlp_input(&x->net), x->hx, (uint64_t)(count * f) * 4) ||
                   hetrun_session_h2d(s, hetrun_mlp_labels(&x->net), x->hy, (uint64_t)count * 4)
               ? -1
               : 0;
}

static int forward(hetrun_session *s, hetrun_train_model *m, int64_t count, double *loss_sum) {
    mlp_self *x = m->self;
    if (hetrun_mlp_forward(s, &x->net, count, 1, 0) != 0 ||
        hetrun_session_d2h(s, x->logits, hetrun_mlp_loss(&x->net), (uint64_t)count * 4) != 0)
        return -1;
    double sum = 0.0;
    for (int64_t i = 0; i < count; i++)
        sum += x->logits[i];
    *loss_sum = sum;
    return 0;
}

typedef struct layer_ctx {
    int layers;
    hetrun_bucket_done_fn done;
    void *ctx;
} layer_ctx;

static int layer_done(hetrun_session *s, int layer, void *ctx) {
    const layer_ctx *c = ctx;
    return c->done(s, c->layers - 1 - layer, c->ctx);
}

static int backward(hetrun_session *s, hetrun_train_model *m, int64_t count, double scale,
                    hetrun_bucket_done_fn done, void *ctx) {
    mlp_self *x = m->self;
    layer_ctx c = {x->net.shape.layers, done, ctx};
    return hetrun_mlp_backward(s, &x->net, count, scale, done ? layer_done : NULL, &c);
}

static int step(hetrun_session *s, hetrun_train_model *m, const hetrun_train_opt *o) {
    mlp_self *x = m->self;
    hetrun_opt_step os = {o->lr, o->momentum, o->weight_decay, o->beta1, o->beta2, o->eps, o->t};
    return hetrun_mlp_step(s, &x->net, &os);
}

/* Test accuracy: each rank evaluates its slice of the test split; counts are summed. */
static int evaluate(hetrun_session *s, mlp_self *x, double *accuracy) {
    hetrun_mlp *net = &x->net;
    const hetrun_dataset *test = &x->test;
    const int64_t n = test->samples, f = test->features, C = net->shape.dims[net->shape.layers];
    const int64_t lo = n * s->rank / s->nranks, hi = n * (s->rank + 1) / s->nranks;
    long long correct = 0;
    for (int64_t i = lo; i < hi; i += net->rows) {
        int64_t rows = hi - i < net->rows ? hi - i : net->rows;
        if (hetrun_session_h2d(s, hetrun_mlp_input(net), test->x + i * f,
                               (uint64_t)(rows * f) * 4) ||
            hetrun_mlp_forward(s, net, rows, 0, 0) ||
            hetrun_session_d2h(s, x->logits, hetrun_mlp_output(net, 0), (uint64_t)(rows * C) * 4))
            return -1;
        for (int64_t r = 0; r < rows; r++) {
            int64_t best = 0;
            for (int64_t c = 1; c < C; c++)
                if (x->logits[r * C + c] > x->logits[r * C + best]) best = c;
            correct += best == test->y[i + r];
        }
    }
    long long local[2] = {correct, hi - lo}, global[2];
    MPI_Allreduce(local, global, 2, MPI_LONG_LONG, MPI_SUM, s->comm);
    *accuracy = global[1] ? (double)global[0] / (double)global[1] : NAN;
    return 0;
}

static void progress(const hetrun_session *s, int64_t step, int64_t total, int64_t epoch,
                     double loss, double acc, double sps) {
    if (s->rank != 0) return;
    char line[256];
    if (isnan(acc))
        snprintf(line, sizeof line, "train: step %lld/%lld epoch %lld loss %.4f %.0f samples/s",
                 (long long)step, (long long)total, (long long)epoch, loss, sps);
    else
        snprintf(line, sizeof line,
                 "train: step %lld/%lld epoch %lld loss %.4f test acc %.2f%% %.0f samples/s",
                 (long long)step, (long long)total, (long long)epoch, loss, 100.0 * acc, sps);
    hetrun_progress_note(s->rank, line);
}

/* Epoch bookkeeping: at an epoch's end (or the run's), the epoch's loss and test accuracy. */
static int after_step(hetrun_session *s, hetrun_train_model *m, const hetrun_train_step_info *i) {
    mlp_self *x = m->self;
    const int64_t B = m->rows_global, epoch = (i->step - 1) / x->spe;
    x->loss_sum += i->local_loss, x->epoch_steps++;
    const int epoch_end = i->step % x->spe == 0 || i->step == i->total;
    if (x->p->log_every > 0 && i->step % x->p->log_every == 0 && i->step % x->spe != 0)
        progress(s, i->step, i->total, epoch,
                 x->loss_sum / (double)(x->epoch_steps * m->rows_local), x->acc, i->rate);
    if (!epoch_end) return 0;
    double gl = 0.0;
    MPI_Allreduce(&x->loss_sum, &gl, 1, MPI_DOUBLE, MPI_SUM, s->comm);
    if (evaluate(s, x, &x->acc) != 0) return -1;
    cJSON *e = cJSON_CreateObject();
    cJSON_AddNumberToObject(e, HETRUN_RF_EPOCH, (double)epoch);
    cJSON_AddNumberToObject(e, HETRUN_RF_STEPS, (double)x->epoch_steps);
    cJSON_AddNumberToObject(e, HETRUN_RF_LOSS, gl / (double)(x->epoch_steps * B));
    if (isnan(x->acc))
        cJSON_AddNullToObject(e, HETRUN_RF_TEST_ACCURACY);
    else
        cJSON_AddNumberToObject(e, HETRUN_RF_TEST_ACCURACY, x->acc);
    cJSON_AddNumberToObject(e, HETRUN_RF_SECONDS, hetrun_now_s() - x->epoch_t0);
    cJSON_AddItemToArray(x->epochs, e);
    progress(s, i->step, i->total, epoch, gl / (double)(x->epoch_steps * B), x->acc, i->rate);
    x->loss_sum = 0.0, x->epoch_steps = 0, x->epoch_t0 = hetrun_now_s();
    return 0;
}

static int finish(hetrun_session *s, hetrun_train_model *m, cJSON *result, int interrupted,
                  int *ok) {
    mlp_self *x = m->self;
    (void)interrupted;
    if (isnan(x->acc) && evaluate(s, x, &x->acc) != 0) return -1;
    cJSON_AddStringToObject(result, HETRUN_RF_OPTIMIZER, opt_names[x->p->optimizer]);
    cJSON_AddNumberToObject(result, HETRUN_RF_GLOBAL_BATCH, (double)m->rows_global);
    cJSON_AddNumberToObject(result, HETRUN_RF_LOCAL_BATCH, (double)m->rows_local);
    cJSON_AddNumberToObject(result, HETRUN_RF_TRAIN_SAMPLES, (double)x->train.samples);
    cJSON_AddNumberToObject(result, HETRUN_RF_TEST_SAMPLES, (double)x->test.samples);
    if (isnan(x->acc))
        cJSON_AddNullToObject(result, HETRUN_RF_FINAL_TEST_ACCURACY);
    else
        cJSON_AddNumberToObject(result, HETRUN_RF_FINAL_TEST_ACCURACY, x->acc);
    const double min = x->p->min_accuracy;
    if (min > 0.0) cJSON_AddNumberToObject(result, HETRUN_RF_MIN_ACCURACY, min);
    *ok = min <= 0.0 || (!isnan(x->acc) && x->acc >= min);
    return 0;
}

static void destroy(hetrun_session *s, hetrun_train_model *m) {
    mlp_self *x = m->self;
    hetrun_mlp_destroy(s, &x->net);
    hetrun_data_free(&x->train);
    hetrun_data_free(&x->test);
    free(x->mean), free(x->std), free(x->hx), free(x->hy), free(x->perm), free(x->logits);
}

static const hetrun_train_model_ops mlp_ops = {load_batch, forward,    backward, NULL,
                                               step,       after_step, finish,   destroy};

static int create(hetrun_session *s, const hetrun_train_spec *p, uint64_t seed,
                  hetrun_train_model *m, cJSON *result) {
    mlp_self *x = hetrun_train_model_begin(s, m, &mlp_ops, sizeof *x);
    if (!x) return -1;
    x->p = p, x->seed = seed, x->shuffled_epoch = -1, x->acc = NAN;
    if (hetrun_train_prepare_data(s, &p->data, seed, &x->train, &x->test, &x->mean, &x->std) != 0)
        return -1;
    hetrun_mlp_shape sh;
    memset(&sh, 0, sizeof sh);
    sh.layers = (int32_t)p->hidden.count + 1;
    sh.act = p->activation;
    sh.dims[0] = x->train.features;
    for (size_t i = 0; i < p->hidden.count; i++)
        sh.dims[i + 1] = p->hidden.items[i];
    sh.dims[sh.layers] = x->train.classes;

    const int64_t B = p->batch, n = s->nranks, r = s->rank;
    if (B < n) {
        snprintf(s->error, sizeof s->error, "global batch %lld is smaller than %lld ranks",
                 (long long)B, (long long)n);
        return -1;
    }
    x->spe = x->train.samples / B; /* steps per epoch; the last partial batch drops */
    if (x->spe < 1) {
        snprintf(s->error, sizeof s->error, "global batch %lld exceeds the %lld training samples",
                 (long long)B, (long long)x->train.samples);
        return -1;
    }
    m->rows_global = B;
    m->rows_local = B / n + (r < B % n);
    m->rows_first = r * (B / n) + (r < B % n ? r : B % n);
    m->micro_batch = m->rows_local; /* backward overwrites: the whole share at once */
    m->units_per_row = 1, m->rate_field = HETRUN_RF_SAMPLES_PER_S;
    m->total_steps = p->steps > 0 ? p->steps : p->epochs * x->spe;
    m->compute = HETRUN_F32;
    const int64_t lb_max = B / n + (B % n != 0);
    const int64_t rows = lb_max > 256 ? lb_max : 256; /* also the evaluation chunk */
    if (hetrun_mlp_create(s, &x->net, &sh, p->optimizer, rows) != 0 ||
        hetrun_mlp_init_weights(s, &x->net, seed) != 0)
        return -1;
    const int64_t f = x->train.features, C = x->train.classes;
    x->hx = malloc((size_t)(lb_max * f) * 4);
    x->hy = malloc((size_t)lb_max * 4);
    x->perm = malloc((size_t)x->train.samples * sizeof *x->perm);
    x->logits = malloc((size_t)(rows * C) * 4);
    if (!x->hx || !x->hy || !x->perm || !x->logits) {
        snprintf(s->error, sizeof s->error, "out of host memory (%lld training samples)",
                 (long long)x->train.samples);
        return -1;
    }
    /* Named tensors (in x out weights, as the layout stores them) and one bucket a layer. */
    const hetrun_mlp *net = &x->net;
    for (int l = 0; l < sh.layers; l++) {
        hetrun_param_tensor *w = &x->tensors[2 * l], *b = &x->tensors[2 * l + 1];
        snprintf(w->name, sizeof w->name, "layers.%d.weight", l);
        snprintf(b->name, sizeof b->name, "layers.%d.bias", l);
        w->dtype = b->dtype = HETRUN_F32;
        w->ndim = 2, w->shape[0] = sh.dims[l], w->shape[1] = sh.dims[l + 1];
        w->offset = net->w_off[l], w->count = (uint64_t)(sh.dims[l] * sh.dims[l + 1]);
        b->ndim = 1, b->shape[0] = sh.dims[l + 1];
        b->offset = net->b_off[l], b->count = (uint64_t)sh.dims[l + 1];
        m->real_params += w->count + b->count;
        const uint64_t end = l + 1 < sh.layers ? net->w_off[l + 1] : net->param_count;
        x->buckets[sh.layers - 1 - l] = (hetrun_grad_bucket){net->w_off[l], end - net->w_off[l]};
    }
    m->tensors = x->tensors, m->tensor_count = 2 * sh.layers;
    m->buckets = x->buckets, m->bucket_count = sh.layers;
    m->bucket_text = "one per layer, the last layer first";
    m->param_count = net->param_count;
    m->params = net->params, m->grads = net->grads, m->state = net->state;
    m->state_slots = p->optimizer == HETRUN_OPT_ADAMW ? 2 : 1;
    char shape_text[100];
    hetrun_mlp_shape_text(&sh, shape_text, sizeof shape_text);
    snprintf(m->model, sizeof m->model, "mlp %s", shape_text);
    config_hash(p, seed, &sh, m->config_sha256);
    /* infer standardises its rows with the training split's moments */
    m->extra_count = 2;
    m->extra[0] = (hetrun_nn_ckpt_extra){"data.feature_mean", x->mean, f};
    m->extra[1] = (hetrun_nn_ckpt_extra){"data.feature_std", x->std, f};
    x->epochs = cJSON_AddArrayToObject(result, HETRUN_RF_EPOCHS);
    x->epoch_t0 = hetrun_now_s();
    return 0;
}

/* model.c's ops, all fp32. */
static void needs(const hetrun_train_spec *p, hetrun_op_needs *needs) {
    static const hetrun_op_kind ops[] = {
        HETRUN_OP_GEMM,          HETRUN_OP_BIAS_ADD,         HETRUN_OP_XENT_FORWARD,
        HETRUN_OP_XENT_BACKWARD, HETRUN_OP_REDUCE_SUM_AXIS0, HETRUN_OP_FILL};
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
        hetrun_op_needs_add(needs, ops[i], HETRUN_F32, HETRUN_F32, 0);
    hetrun_op_needs_add(needs, HETRUN_OP_ACT_FORWARD, HETRUN_F32, HETRUN_F32,
                        (uint32_t)p->activation);
    hetrun_op_needs_add(needs, HETRUN_OP_ACT_BACKWARD, HETRUN_F32, HETRUN_F32,
                        (uint32_t)p->activation);
    hetrun_op_needs_add(needs,
                        p->optimizer == HETRUN_OPT_ADAMW ? HETRUN_OP_ADAMW : HETRUN_OP_SGD_MOMENTUM,
                        HETRUN_F32, HETRUN_F32, 0);
}

const hetrun_train_model_type hetrun_train_mlp = {create, needs};
