/* The per-node topology cache: local rank 0 scans with I/O and exports XML; other local
 * ranks load that file instead of scanning; an unusable cache folder falls back at once. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "topo/topology.h"
#include "util/clock.h"

int main(void) {
    char dir[] = "/tmp/hetrun-topo-cache-XXXXXX", err[1024], key[64];
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(key, sizeof(key), "test-%ld", (long)getpid());
    int fail = 0;
    hetrun_topo *a = hetrun_topo_load_node_cached(0, dir, key, err, sizeof(err));
    if (!a) {
        fprintf(stderr, "FAIL: rank 0 load: %s\n", err);
        return 1;
    }
    double t0 = hetrun_now_s();
    hetrun_topo *b = hetrun_topo_load_node_cached(1, dir, key, err, sizeof(err));
    double tb = hetrun_now_s() - t0;
    if (!b || strncmp(b->source, "cache:", 6) != 0 || !b->has_io || !b->is_this_system) {
        fprintf(stderr, "FAIL: rank 1 did not load the cache (source %s)\n", b ? b->source : err);
        fail = 1;
    } else if (!hwloc_bitmap_isequal(hwloc_topology_get_allowed_cpuset(a->topo),
                                     hwloc_topology_get_allowed_cpuset(b->topo)) ||
               hwloc_get_nbobjs_by_type(a->topo, HWLOC_OBJ_PCI_DEVICE) !=
                   hwloc_get_nbobjs_by_type(b->topo, HWLOC_OBJ_PCI_DEVICE)) {
        fprintf(stderr, "FAIL: cached topology differs from the scan\n");
        fail = 1;
    }
    printf("cache: rank 0 scanned (%s), rank 1 loaded %s in %.2f ms\n", a->source,
           b ? b->source : "-", tb * 1e3);
    hetrun_topo_free(a);
    hetrun_topo_free(b);
    /* No cache folder possible: no 10 s wait for a file that will never come (8 s of wall
     * time tells that wait from a scan on a loaded node). */
    t0 = hetrun_now_s();
    hetrun_topo *c =
        hetrun_topo_load_node_cached(1, "/proc/hetrun-no-such-dir", key, err, sizeof(err));
    double tc = hetrun_now_s() - t0;
    if (!c || strcmp(c->source, "system+io") != 0 || tc > 8.0) {
        fprintf(stderr, "FAIL: unusable cache dir: %s after %.2f s\n", c ? c->source : err, tc);
        fail = 1;
    }
    hetrun_topo_free(c);
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "warning: could not remove %s\n", dir);
    return fail;
}
