/* hetrun_placement_apply_devices: visibility narrowing (within a scheduler's list), thread
 * variables, JSON and the binding line, with fake GPU devices on this machine. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spec/job.h"
#include "topo/placement.h"

#include "../check.h"

int main(void) {
    /* Local rank 1 of 2, as mpirun would say. */
    setenv("OMPI_COMM_WORLD_LOCAL_RANK", "1", 1);
    setenv("OMPI_COMM_WORLD_LOCAL_SIZE", "2", 1);
    setenv("OMPI_COMM_WORLD_RANK", "1", 1);
    setenv("OMPI_COMM_WORLD_SIZE", "2", 1);
    unsetenv("FAKE_VISIBLE_DEVICES");
    unsetenv("OPENBLAS_NUM_THREADS");
    setenv("OMP_NUM_THREADS", "7", 1); /* the user's choice must survive */

    hetrun_probe_device d[2];
    memset(d, 0, sizeof(d));
    for (int i = 0; i < 2; i++) {
        d[i].index = i;
        d[i].info.struct_size = sizeof(d[i].info);
        d[i].info.kind = HETRUN_DEVICE_GPU;
        snprintf(d[i].info.name, sizeof(d[i].info.name), "fake gpu %d", i);
        snprintf(d[i].info.visibility_env, sizeof(d[i].info.visibility_env),
                 "FAKE_VISIBLE_DEVICES");
    }
    hetrun_job job;
    memset(&job, 0, sizeof(job));
    job.placement.policy = HETRUN_PLACE_CLOSEST;
    job.placement.bind = false; /* do not bind the test process */

    hetrun_placement p;
    char err[1024];
    int rc = hetrun_placement_apply_devices(&job, "fake", d, 2, &p, err, sizeof(err));
    CHECK(rc == 0, "apply: %s", err);
    if (rc == 0) {
        CHECK(p.device_global == 1 && p.device_index == 0, "global %d index %d", p.device_global,
              p.device_index);
        CHECK(strcmp(getenv("FAKE_VISIBLE_DEVICES"), "1") == 0, "visible %s",
              getenv("FAKE_VISIBLE_DEVICES"));
        CHECK(strcmp(p.visibility_value, "1") == 0, "value %s", p.visibility_value);
        CHECK(strcmp(p.locality, "machine") == 0, "no PCI id: locality %s", p.locality);
        CHECK(p.ncpus >= 1 && p.threads >= 1 && !p.bound, "cpus %d threads %d bound %d", p.ncpus,
              p.threads, p.bound);
        CHECK(strcmp(getenv("OMP_NUM_THREADS"), "7") == 0, "user OMP_NUM_THREADS overwritten");
        char th[16];
        snprintf(th, sizeof(th), "%d", p.threads);
        CHECK(getenv("OPENBLAS_NUM_THREADS") && strcmp(getenv("OPENBLAS_NUM_THREADS"), th) == 0,
              "OPENBLAS_NUM_THREADS %s, threads %s", getenv("OPENBLAS_NUM_THREADS"), th);
        cJSON *j = hetrun_placement_to_json(&p);
        char *s = j ? cJSON_PrintUnformatted(j) : NULL;
        CHECK(s && strstr(s, "\"local_rank\":1") && strstr(s, "\"global_index\":1") &&
                  strstr(s, "\"cpus\":[") && strstr(s, "\"visibility_value\":\"1\""),
              "json %s", s ? s : "(null)");
        free(s);
        cJSON_Delete(j);
        hetrun_placement_print_binding(&p, stdout);
        hetrun_placement_free(&p);
    }
    /* The scheduler already narrowed to "2,3": rank 1 gets the 2nd entry. */
    setenv("FAKE_VISIBLE_DEVICES", "2,3", 1);
    rc = hetrun_placement_apply_devices(&job, "fake", d, 2, &p, err, sizeof(err));
    CHECK(rc == 0, "apply within list: %s", err);
    if (rc == 0) {
        CHECK(strcmp(getenv("FAKE_VISIBLE_DEVICES"), "3") == 0, "within list: %s",
              getenv("FAKE_VISIBLE_DEVICES"));
        hetrun_placement_free(&p);
    }
    /* A list shorter than the probe's devices is inconsistent: an error naming both. */
    setenv("FAKE_VISIBLE_DEVICES", "5", 1);
    rc = hetrun_placement_apply_devices(&job, "fake", d, 2, &p, err, sizeof(err));
    CHECK(rc == -1 && strstr(err, "FAKE_VISIBLE_DEVICES=\"5\"") && strstr(err, "device 1"),
          "short list: rc %d: %s", rc, err);
    /* More local ranks than map entries: the planner's error comes through. */
    int64_t map[] = {0};
    job.placement.policy = HETRUN_PLACE_MAP;
    job.placement.map.items = map;
    job.placement.map.count = 1;
    unsetenv("FAKE_VISIBLE_DEVICES");
    rc = hetrun_placement_apply_devices(&job, "fake", d, 2, &p, err, sizeof(err));
    CHECK(rc == -1 && strstr(err, "1 entries"), "map: rc %d: %s", rc, err);
    /* Malformed identity. */
    setenv("OMPI_COMM_WORLD_LOCAL_RANK", "x", 1);
    rc = hetrun_placement_apply_devices(&job, "fake", d, 2, &p, err, sizeof(err));
    CHECK(rc == -1 && strstr(err, "OMPI_COMM_WORLD_LOCAL_RANK"), "identity: %s", err);
    if (failures) {
        fprintf(stderr, "%d check(s) failed\n", failures);
        return 1;
    }
    printf("test_apply: all checks passed\n");
    return 0;
}
