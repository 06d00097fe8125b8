/* Checks a hetrun JSON report: schema fields, rank count, status, every check passed,
 * each rank on its own cpus, and per-rank FLOP counts equal to what the spec predicts
 * for gemm points (flops_per_iteration x (1 checked run + warmup + iterations)).
 * usage: check_report REPORT.json RANKS STATUS [WARMUP ITERATIONS]
 * exit 0 when every property holds; prints each violation otherwise. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "../check.h"

/* A cpu both lists hold, or -1. */
static int shared_cpu(const cJSON *a, const cJSON *b) {
    const cJSON *x, *y;
    cJSON_ArrayForEach(x, a) {
        cJSON_ArrayForEach(y, b) {
            if (x->valuedouble == y->valuedouble) return (int)x->valuedouble;
        }
    }
    return -1;
}

int main(int argc, char **argv) {
    if (argc != 4 && argc != 6) {
        fprintf(stderr, "usage: check_report REPORT.json RANKS STATUS [WARMUP ITERATIONS]\n");
        return 2;
    }
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
    int want_ranks = atoi(argv[2]);
    const char *want_status = argv[3];
    CHECK(cJSON_IsString(cJSON_GetObjectItem(r, "schema_version")), "schema_version missing");
    const char *status = cJSON_GetStringValue(cJSON_GetObjectItem(r, "status"));
    CHECK(status && strcmp(status, want_status) == 0, "status %s, expected %s",
          status ? status : "(none)", want_status);
    cJSON *job = cJSON_GetObjectItem(r, "job");
    CHECK(cJSON_IsObject(job) && cJSON_IsString(cJSON_GetObjectItem(job, "spec_sha256")),
          "job.spec_sha256 missing");
    cJSON *ranks = cJSON_GetObjectItem(r, "ranks");
    CHECK(cJSON_GetArraySize(ranks) == want_ranks, "%d ranks, expected %d",
          cJSON_GetArraySize(ranks), want_ranks);
    int idx = 0;
    cJSON *rank;
    cJSON_ArrayForEach(rank, ranks) {
        CHECK((int)cJSON_GetNumberValue(cJSON_GetObjectItem(rank, "rank")) == idx,
              "ranks[%d].rank out of order", idx);
        CHECK(cJSON_IsString(cJSON_GetObjectItem(rank, "host")), "ranks[%d].host missing", idx);
        CHECK(cJSON_IsString(cJSON_GetObjectItem(rank, "backend")), "ranks[%d].backend missing",
              idx);
        cJSON *dev = cJSON_GetObjectItem(rank, "device");
        CHECK(cJSON_IsString(cJSON_GetObjectItem(dev, "name")), "ranks[%d].device.name missing",
              idx);
        cJSON *pci = cJSON_GetObjectItem(dev, "pci_bus_id");
        CHECK(cJSON_IsNull(pci) || cJSON_IsString(pci),
              "ranks[%d].device.pci_bus_id must be null or a string", idx);
        cJSON *cpus = cJSON_GetObjectItem(rank, "cpus");
        CHECK(cJSON_IsArray(cpus) && cJSON_GetArraySize(cpus) > 0, "ranks[%d].cpus empty", idx);
        for (int j = 0; j < idx; j++) { /* ranks on one host never share a core */
            cJSON *other = cJSON_GetArrayItem(ranks, j);
            const char *h = cJSON_GetStringValue(cJSON_GetObjectItem(rank, "host")),
                       *oh = cJSON_GetStringValue(cJSON_GetObjectItem(other, "host"));
            int cpu = h && oh && !strcmp(h, oh)
                          ? shared_cpu(cpus, cJSON_GetObjectItem(other, "cpus"))
                          : -1;
            CHECK(cpu < 0, "cpu %d of host %s is bound to rank %d and rank %d", cpu, h, j, idx);
        }
        double predicted = 0.0;
        cJSON *res;
        cJSON_ArrayForEach(res, cJSON_GetObjectItem(rank, "results")) {
            if (strcmp(want_status, "ok") == 0) {
                const char *chk = cJSON_GetStringValue(cJSON_GetObjectItem(res, "check"));
                CHECK(chk && strcmp(chk, "passed") == 0, "ranks[%d] %s check %s", idx,
                      cJSON_GetStringValue(cJSON_GetObjectItem(res, "label")),
                      chk ? chk : "(none)");
                CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(res, "gflops")) > 0,
                      "ranks[%d] gflops not positive", idx);
            }
            predicted += cJSON_GetNumberValue(cJSON_GetObjectItem(res, "flops_per_iteration"));
        }
        if (argc == 6 && strcmp(want_status, "ok") == 0) {
            double runs = 1.0 + atof(argv[4]) + atof(argv[5]);
            double counted = cJSON_GetNumberValue(
                cJSON_GetObjectItem(cJSON_GetObjectItem(rank, "usage"), "flops"));
            CHECK(fabs(counted - predicted * runs) <= 1e-9 * counted,
                  "ranks[%d] usage.flops %.17g, predicted %.17g", idx, counted, predicted * runs);
        }
        idx++;
    }
    CHECK(cJSON_IsObject(cJSON_GetObjectItem(r, "summary")), "summary missing");
    cJSON_Delete(r);
    if (!failures)
        printf("report %s: %d ranks, status %s: all properties hold\n", argv[1], want_ranks,
               want_status);
    return failures ? 1 : 0;
}
