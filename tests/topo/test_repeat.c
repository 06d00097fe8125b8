/* Plans are byte-identical across 100 repeats (fresh topology load each time), and a
 * 16-rank DGX-2 plan takes well under a second. Usage: test_repeat TOPOLOGY_DIR */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "spec/job.h"
#include "topo/plan.h"
#include "topo/topology.h"
#include "util/clock.h"

/* Loads the file, lists devices, plans; returns the compact JSON (caller frees). */
static char *plan_once(const char *path, int policy, int ranks, int nodes) {
    char err[1024];
    hetrun_topo *t = hetrun_topo_load_xml(path, err, sizeof(err));
    if (!t) {
        fprintf(stderr, "FAIL: %s\n", err);
        exit(1);
    }
    hetrun_plan_device *devs = NULL;
    int ndev = 0;
    if (hetrun_plan_devices_from_topo(t, &devs, &ndev) != 0) {
        fprintf(stderr, "FAIL: devices of %s\n", path);
        exit(1);
    }
    hetrun_plan_opts o = {policy, 0, NULL, 0};
    cJSON *j = hetrun_plan_job_json(t, devs, ndev, &o, ranks, nodes, err, sizeof(err));
    if (!j) {
        fprintf(stderr, "FAIL: plan %s: %s\n", path, err);
        exit(1);
    }
    char *s = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    free(devs);
    hetrun_topo_free(t);
    return s;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s TOPOLOGY_DIR\n", argv[0]);
        return 2;
    }
    const char *files[] = {"nvidia-dgx2-16gpu.xml", "2socket-1gpu-cuda-opencl.xml",
                           "2socket-cpu-only.xml"};
    int failures = 0;
    for (int f = 0; f < 3; f++) {
        char path[4096];
        snprintf(path, sizeof(path), "%s/%s", argv[1], files[f]);
        for (int policy = HETRUN_PLACE_CLOSEST; policy <= HETRUN_PLACE_PACK; policy++) {
            int ranks = f == 0 ? 16 : 7, nodes = f == 0 ? 1 : 2;
            char *first = plan_once(path, policy, ranks, nodes);
            double t0 = hetrun_now_s(), worst = 0;
            for (int i = 1; i < 100; i++) {
                double a = hetrun_thread_cpu_s(); /* work, not the node's load */
                char *s = plan_once(path, policy, ranks, nodes);
                double b = hetrun_thread_cpu_s() - a;
                worst = b > worst ? b : worst;
                if (strcmp(s, first) != 0) {
                    fprintf(stderr, "FAIL: %s policy %s: repeat %d differs\n", files[f],
                            hetrun_policy_name(policy), i);
                    failures++;
                    free(s);
                    break;
                }
                free(s);
            }
            double mean = (hetrun_now_s() - t0) / 99.0;
            printf("%-30s %-11s %2d ranks/%d node(s): 100 identical plans, load+plan mean %.2f "
                   "ms, worst %.2f ms CPU (%zu bytes JSON)\n",
                   files[f], hetrun_policy_name(policy), ranks, nodes, mean * 1e3, worst * 1e3,
                   strlen(first));
            /* A plan is interactive: anything near a second is a bug, not a slow machine. */
            if (f == 0 && policy == HETRUN_PLACE_CLOSEST && worst > 0.5) {
                fprintf(stderr, "FAIL: DGX-2 16-rank plan took %.3f s\n", worst);
                failures++;
            }
            free(first);
        }
    }
    return failures ? 1 : 0;
}
