/* Checks the train (or infer) results of a hetrun JSON report.
 * usage: check_train REPORT.json RANKS MIN_ACCURACY [train|infer]
 * train: status ok, RANKS ranks, every rank's final_test_accuracy >= MIN_ACCURACY, check
 *        passed, weights CRC32 equal on all ranks and flagged so; prints the CRC32.
 * infer: status ok, accuracy >= MIN_ACCURACY, each batch with p50 <= p90 <= p99 <= max.
 * Exit 0 when every property holds; prints each violation otherwise. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

static int failures;
#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            printf("FAIL: " __VA_ARGS__);                                                          \
            printf("\n");                                                                          \
            failures++;                                                                            \
        }                                                                                          \
    } while (0)

static double num(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItem(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : -1.0;
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: check_train REPORT.json RANKS MIN_ACCURACY [train|infer]\n");
        return 2;
    }
    const int infer = argc > 4 && strcmp(argv[4], "infer") == 0;
    FILE *f = fopen(argv[1], "rb");
    if (!f) {
        printf("FAIL: cannot open %s\n", argv[1]);
        return 1;
    }
    static char buf[1 << 22];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    cJSON *r = cJSON_Parse(buf);
    if (!r) {
        printf("FAIL: %s is not JSON\n", argv[1]);
        return 1;
    }
    const int want_ranks = atoi(argv[2]);
    const double min_acc = atof(argv[3]);
    const char *status = cJSON_GetStringValue(cJSON_GetObjectItem(r, "status"));
    CHECK(status && strcmp(status, "ok") == 0, "job status %s, expected ok",
          status ? status : "(none)");
    cJSON *ranks = cJSON_GetObjectItem(r, "ranks");
    CHECK(cJSON_GetArraySize(ranks) == want_ranks, "%d ranks, expected %d",
          cJSON_GetArraySize(ranks), want_ranks);
    const char *crc0 = NULL;
    const cJSON *rank;
    int idx = 0;
    cJSON_ArrayForEach(rank, ranks) {
        const cJSON *res = cJSON_GetArrayItem(cJSON_GetObjectItem(rank, "results"), 0);
        CHECK(res != NULL, "rank %d has no result", idx);
        if (!res) continue;
        const char *check = cJSON_GetStringValue(cJSON_GetObjectItem(res, "check"));
        if (infer) {
            double acc = num(res, "accuracy");
            CHECK(acc >= min_acc, "rank %d accuracy %.4f < %.4f", idx, acc, min_acc);
            const cJSON *b;
            int nb = 0;
            cJSON_ArrayForEach(b, cJSON_GetObjectItem(res, "batches")) {
                double p50 = num(b, "latency_ms_p50"), p90 = num(b, "latency_ms_p90");
                double p99 = num(b, "latency_ms_p99"), mx = num(b, "latency_ms_max");
                CHECK(p50 > 0 && p50 <= p90 && p90 <= p99 && p99 <= mx * (1 + 1e-12),
                      "rank %d batch %g: percentiles not ordered (%g %g %g %g)", idx,
                      num(b, "batch"), p50, p90, p99, mx);
                CHECK(num(b, "samples_per_s") > 0, "rank %d batch %g: no throughput", idx,
                      num(b, "batch"));
                nb++;
            }
            CHECK(nb > 0, "rank %d: no batches", idx);
        } else {
            double acc = num(res, "final_test_accuracy");
            CHECK(acc >= min_acc, "rank %d final test accuracy %.4f < %.4f", idx, acc, min_acc);
            CHECK(check && strcmp(check, "passed") == 0, "rank %d check %s", idx,
                  check ? check : "(none)");
            const char *crc = cJSON_GetStringValue(cJSON_GetObjectItem(res, "weights_crc32"));
            CHECK(crc && strlen(crc) == 8, "rank %d weights_crc32 missing", idx);
            if (crc && !crc0) crc0 = crc;
            CHECK(crc && crc0 && strcmp(crc, crc0) == 0,
                  "rank %d weights %s differ from rank 0's %s", idx, crc ? crc : "-",
                  crc0 ? crc0 : "-");
            CHECK(cJSON_IsTrue(cJSON_GetObjectItem(res, "weights_equal_on_all_ranks")),
                  "rank %d: weights_equal_on_all_ranks is not true", idx);
            CHECK(num(res, "samples_per_s") > 0, "rank %d: samples_per_s missing", idx);
            CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(res, "epochs")) > 0, "rank %d: no epochs",
                  idx);
        }
        idx++;
    }
    if (crc0) printf("%s\n", crc0);
    cJSON_Delete(r);
    return failures ? 1 : 0;
}
