/* Shared helpers of the train and infer workloads. */
#include "workloads/train_common.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "spec/job.h"

void hetrun_train_resolve(const hetrun_session *s, const char *path, char *out, size_t len) {
    const char *spec = s->job ? s->job->spec_path : NULL;
    const char *slash = spec ? strrchr(spec, '/') : NULL;
    if (path[0] == '/' || !slash)
        snprintf(out, len, "%s", path);
    else
        snprintf(out, len, "%.*s/%s", (int)(slash - spec), spec, path);
}

int hetrun_train_prepare_data(hetrun_session *s, const hetrun_data_params *p, uint64_t seed,
                              hetrun_dataset *train, hetrun_dataset *test, float **mean,
                              float **std) {
    hetrun_data_params q = *p;
    char path[4096], labels[4096];
    if (p->path) hetrun_train_resolve(s, p->path, path, sizeof path), q.path = path;
    if (p->labels) hetrun_train_resolve(s, p->labels, labels, sizeof labels), q.labels = labels;
    hetrun_dataset all;
    if (hetrun_data_load(&q, seed, &all, s->error, sizeof s->error) != 0) return -1;
    int rc =
        hetrun_data_split(&all, p->test_fraction, seed, train, test, s->error, sizeof s->error);
    hetrun_data_free(&all);
    if (rc != 0) return -1;
    const int64_t f = train->features;
    *mean = malloc((size_t)f * sizeof(float));
    *std = malloc((size_t)f * sizeof(float));
    if (!*mean || !*std) {
        snprintf(s->error, sizeof s->error, "data: out of memory for %lld feature moments",
                 (long long)f);
        return -1;
    }
    if (p->standardize) {
        hetrun_data_moments(train, *mean, *std);
        hetrun_data_apply_moments(train, *mean, *std);
        hetrun_data_apply_moments(test, *mean, *std);
    } else {
        for (int64_t j = 0; j < f; j++)
            (*mean)[j] = 0.0f, (*std)[j] = 1.0f;
    }
    /* Standardising values near the float32 limit can overflow: never train on inf. */
    const hetrun_dataset *sets[] = {train, test};
    for (int k = 0; k < 2; k++)
        for (int64_t i = 0; i < sets[k]->samples * f; i++)
            if (!isfinite(sets[k]->x[i])) {
                snprintf(s->error, sizeof s->error,
                         "data: %s: feature %lld of a %s sample is not finite after "
                         "standardising (mean %g, std %g): values too large for float32",
                         p->path ? p->path : "synthetic data", (long long)(i % f),
                         k ? "test" : "training", (double)(*mean)[i % f], (double)(*std)[i % f]);
                return -1;
            }
    return 0;
}

void hetrun_train_crc_hex(const float *v, uint64_t count, char out[9]) {
    uLong crc = crc32(0L, Z_NULL, 0);
    const Bytef *b = (const Bytef *)v;
    uint64_t bytes = count * sizeof(float);
    while (bytes) {
        uInt chunk = bytes > (1u << 30) ? (1u << 30) : (uInt)bytes;
        crc = crc32(crc, b, chunk);
        b += chunk, bytes -= chunk;
    }
    snprintf(out, 9, "%08lx", (unsigned long)(crc & 0xffffffffUL));
}

int hetrun_train_crc_all_equal(hetrun_session *s, const char crc[9], cJSON *result) {
    char *all = malloc((size_t)s->nranks * 9);
    if (!all) return -1;
    if (MPI_Allgather(crc, 9, MPI_CHAR, all, 9, MPI_CHAR, s->comm) != MPI_SUCCESS) {
        free(all);
        snprintf(s->error, sizeof s->error, "MPI_Allgather of weight checksums failed");
        return -1;
    }
    int equal = 1;
    cJSON *arr = cJSON_AddArrayToObject(result, "weights_crc32_per_rank");
    for (int r = 0; r < s->nranks; r++) {
        all[r * 9 + 8] = '\0';
        cJSON_AddItemToArray(arr, cJSON_CreateString(all + r * 9));
        if (strcmp(all + r * 9, crc) != 0) equal = 0;
    }
    free(all);
    return equal;
}

int hetrun_train_ckpt_agree(hetrun_session *s, int rc, int *written) {
    MPI_Bcast(&rc, 1, MPI_INT, 0, s->comm);
    if (rc != 0) { /* every rank carries the cause: whichever aborts first reports it */
        char why[sizeof s->error];
        snprintf(why, sizeof why, "%s", s->error);
        MPI_Bcast(why, (int)sizeof why, MPI_CHAR, 0, s->comm);
        why[sizeof why - 1] = '\0';
        if (s->rank != 0)
            snprintf(s->error, sizeof s->error, "checkpoint write on rank 0 failed: %.900s", why);
    }
    if (rc == 0) (*written)++;
    return rc;
}
