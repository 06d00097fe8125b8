/**
 * @file launcher/cli/cmd_topo.c
 * @brief `hetrun topo`: the node's devices per backend with PCI id, NUMA node and nearest
 *        cores (a vendor-neutral `nvidia-smi topo -m`), plus hwloc's own accelerator OS
 *        devices when --topology is given.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cli/commands.h"
#include "loader/loader.h"
#include "loader/probe.h"
#include "topo/placement.h"
#include "topo/topology.h"
#include "util/exitcodes.h"
#include "topo/device_json.h"

static void usage(FILE *out) {
    fprintf(out,
            "usage: hetrun topo [--topology FILE.xml] [--backend NAME] [--format table|json]\n"
            "\n"
            "Lists every backend module's devices (probed in a child process) with their PCI\n"
            "bus id, NUMA node and nearest cores, found from the hwloc topology by PCI address.\n"
            "With --topology, locality comes from that hwloc XML file and its GPU/co-processor\n"
            "OS devices are listed too (what `hetrun plan --topology` places ranks on).\n"
            "\n"
            "options:\n"
            "  --topology FILE   hwloc XML topology instead of this machine\n"
            "  --backend NAME    probe only this backend\n"
            "  --format table    (default) or json\n"
            "  -h, --help        this text\n"
            "\n"
            "exit codes: 0 ok, 2 usage, 4 bad topology file or --backend NAME not found\n");
}

/* Device row: locality from the topology, as JSON (also the source of the table). */
static cJSON *device_json(const hetrun_topo *t, int index, const hetrun_device_info *info,
                          const char *osdev) {
    hetrun_locality loc;
    if (hetrun_topo_locate(t, info->pci_bus_id, osdev, &loc) != 0) return NULL;
    int *cpus = NULL, n = 0;
    char cs[1024] = "";
    if (hetrun_cpuset_to_list(loc.cpuset, &cpus, &n) == 0)
        hetrun_cpus_format(cpus, n, cs, sizeof(cs));
    free(cpus);
    cJSON *d = hetrun_device_info_json(info, index);
    if (d) {
        cJSON_AddNumberToObject(d, "numa_node", loc.numa_node);
        cJSON_AddStringToObject(d, "locality", loc.how);
        cJSON_AddStringToObject(d, "cpus", cs);
    }
    hetrun_locality_fini(&loc);
    return d;
}

static cJSON *machine_json(const hetrun_topo *t) {
    hwloc_topology_t h = t->topo;
    cJSON *m = cJSON_CreateObject();
    if (!m) return NULL;
    cJSON_AddNumberToObject(m, "packages", hwloc_get_nbobjs_by_type(h, HWLOC_OBJ_PACKAGE));
    cJSON_AddNumberToObject(m, "cores", hwloc_get_nbobjs_by_type(h, HWLOC_OBJ_CORE));
    cJSON_AddNumberToObject(m, "pus", hwloc_get_nbobjs_by_type(h, HWLOC_OBJ_PU));
    cJSON *nodes = cJSON_AddArrayToObject(m, "numa_nodes");
    hwloc_obj_t n = NULL;
    while (nodes && (n = hwloc_get_next_obj_by_type(h, HWLOC_OBJ_NUMANODE, n)) != NULL) {
        int *cpus = NULL, k = 0;
        char cs[1024] = "";
        if (n->cpuset && hetrun_cpuset_to_list(n->cpuset, &cpus, &k) == 0)
            hetrun_cpus_format(cpus, k, cs, sizeof(cs));
        free(cpus);
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "os_index", n->os_index);
        cJSON_AddNumberToObject(o, "memory_bytes", (double)n->attr->numanode.local_memory);
        cJSON_AddStringToObject(o, "cpus", cs);
        cJSON_AddItemToArray(nodes, o);
    }
    return m;
}

static const char *js(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) && v->valuestring[0] ? v->valuestring : "-";
}

static int ji(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valueint : -1;
}

static void print_table(const cJSON *root) {
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(root, "machine");
    printf("topology: %s: %d package(s), %d core(s), %d PU(s)\n", js(root, "topology"),
           ji(m, "packages"), ji(m, "cores"), ji(m, "pus"));
    const cJSON *n;
    cJSON_ArrayForEach(n, cJSON_GetObjectItemCaseSensitive(m, "numa_nodes"))
        printf("  NUMA node %d: cpus %s\n", ji(n, "os_index"), js(n, "cpus"));
    printf("\n%-10s %5s  %-11s %-30s %-13s %4s  %-8s %-20s %s\n", "backend", "index", "kind",
           "name", "pci_bus_id", "numa", "locality", "visibility", "cpus");
    const cJSON *b;
    cJSON_ArrayForEach(b, cJSON_GetObjectItemCaseSensitive(root, "backends")) {
        const cJSON *devs = cJSON_GetObjectItemCaseSensitive(b, "devices");
        if (strcmp(js(b, "state"), "loaded") != 0) {
            printf("%-10s %5s  (%s: %s)\n", js(b, "name"), "-", js(b, "state"), js(b, "reason"));
            continue;
        }
        if (cJSON_GetArraySize(devs) == 0) printf("%-10s %5s  (no devices)\n", js(b, "name"), "-");
        const cJSON *d;
        cJSON_ArrayForEach(d, devs)
            printf("%-10s %5d  %-11s %-30.30s %-13s %4d  %-8s %-20.20s %s\n", js(b, "name"),
                   ji(d, "index"), js(d, "kind"), js(d, "name"), js(d, "pci_bus_id"),
                   ji(d, "numa_node"), js(d, "locality"), js(d, "visibility_env"), js(d, "cpus"));
    }
    const cJSON *os = cJSON_GetObjectItemCaseSensitive(root, "osdevs");
    if (os) {
        printf("\nhwloc accelerator OS devices (%d):\n", cJSON_GetArraySize(os));
        printf("%-26s %5s  %-11s %-30s %-13s %4s  %-8s %s\n", "osdevs", "index", "kind", "name",
               "pci_bus_id", "numa", "locality", "cpus");
        const cJSON *d;
        cJSON_ArrayForEach(d, os)
            printf("%-26.26s %5d  %-11s %-30.30s %-13s %4d  %-8s %s\n", js(d, "osdevs"),
                   ji(d, "index"), js(d, "kind"), js(d, "name"), js(d, "pci_bus_id"),
                   ji(d, "numa_node"), js(d, "locality"), js(d, "cpus"));
    }
}

int hetrun_cmd_topo(int argc, char **argv) {
    const char *topology = NULL, *backend = NULL;
    int json = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return HETRUN_EXIT_OK;
        }
        const char *opts[] = {"--topology", "--backend", "--format"};
        int which = -1;
        const char *val = NULL;
        for (int k = 0; k < 3; k++) {
            size_t n = strlen(opts[k]);
            if (strncmp(a, opts[k], n) == 0 && (a[n] == '\0' || a[n] == '=')) {
                which = k;
                val = a[n] == '=' ? a + n + 1 : (i + 1 < argc ? argv[++i] : NULL);
            }
        }
        if (which < 0) {
            fprintf(stderr, "hetrun topo: unknown argument '%s' (see 'hetrun topo --help')\n", a);
            return HETRUN_EXIT_USAGE;
        }
        if (!val) {
            fprintf(stderr, "hetrun topo: %s needs a value\n", opts[which]);
            return HETRUN_EXIT_USAGE;
        }
        if (which == 0)
            topology = val;
        else if (which == 1)
            backend = val;
        else if (strcmp(val, "json") == 0)
            json = 1;
        else if (strcmp(val, "table") == 0)
            json = 0;
        else {
            fprintf(stderr, "hetrun topo: unknown format '%s' (expected table or json)\n", val);
            return HETRUN_EXIT_USAGE;
        }
    }
    char err[2048];
    hetrun_topo *t = topology ? hetrun_topo_load_xml(topology, err, sizeof(err))
                              : hetrun_topo_load_system(1, err, sizeof(err));
    if (!t) {
        fprintf(stderr, "hetrun topo: %s\n", err);
        return HETRUN_EXIT_BACKEND;
    }
    cJSON *root = cJSON_CreateObject();
    if (!root) {
        hetrun_topo_free(t);
        fprintf(stderr, "hetrun topo: out of memory\n");
        return HETRUN_EXIT_FAILED;
    }
    cJSON_AddStringToObject(root, "topology", t->source);
    cJSON_AddItemToObject(root, "machine", machine_json(t));
    cJSON *jb = cJSON_AddArrayToObject(root, "backends");

    hetrun_module_list list = {0};
    if (hetrun_loader_scan(&list) != 0)
        fprintf(stderr, "hetrun topo: cannot list backend modules\n");
    /* Each module in a child under the time limit, all at once: one that crashes or hangs
     * is a row naming its path, ABI and version, never the end of `topo`. */
    size_t n = list.count ? list.count : 1, k = 0;
    const char **paths = calloc(n, sizeof *paths);
    hetrun_probe_options *opts = calloc(n, sizeof *opts);
    hetrun_probe_result *res = calloc(n, sizeof *res);
    size_t *slot = calloc(n, sizeof *slot);
    int found = !backend;
    int have_mem = paths && opts && res && slot;
    if (!have_mem) fprintf(stderr, "hetrun topo: out of memory for %zu probes\n", n);
    for (size_t i = 0; i < list.count; i++) {
        const hetrun_backend_module *m = &list.items[i];
        if (backend && strcmp(m->name, backend) != 0) continue;
        found = 1;
        if (m->state != HETRUN_MODULE_FOUND || !have_mem) continue;
        slot[i] = k;
        paths[k] = m->path;
        opts[k++] = (hetrun_probe_options){.name = m->name};
    }
    if (k) hetrun_probe_modules(k, paths, opts, res);
    for (size_t i = 0; jb && have_mem && i < list.count; i++) {
        const hetrun_backend_module *m = &list.items[i];
        if (backend && strcmp(m->name, backend) != 0) continue;
        const hetrun_probe_result *r = m->state == HETRUN_MODULE_FOUND ? &res[slot[i]] : NULL;
        cJSON *b = cJSON_CreateObject();
        cJSON_AddStringToObject(b, "name", m->name);
        cJSON_AddStringToObject(b, "path", m->path);
        cJSON_AddStringToObject(b, "state",
                                r ? hetrun_probe_outcome_name(r->outcome)
                                  : hetrun_module_state_name(m->state));
        cJSON_AddStringToObject(b, "reason", r ? r->reason : m->reason);
        cJSON *jd = cJSON_AddArrayToObject(b, "devices");
        for (int d = 0; jd && r && d < r->device_count; d++) {
            char osdev[80];
            snprintf(osdev, sizeof(osdev), "%.60s%d", m->name, r->devices[d].index);
            cJSON *dj = device_json(t, r->devices[d].index, &r->devices[d].info, osdev);
            if (dj) cJSON_AddItemToArray(jd, dj);
        }
        cJSON_AddItemToArray(jb, b);
    }
    for (size_t i = 0; res && i < k; i++)
        hetrun_probe_result_free(&res[i]);
    free(paths);
    free(opts);
    free(res);
    free(slot);
    if (!found) {
        fprintf(stderr,
                "hetrun topo: --backend %s: no module of that name on the search path (see "
                "'hetrun backends')\n",
                backend);
        hetrun_module_list_free(&list);
        cJSON_Delete(root);
        hetrun_topo_free(t);
        return HETRUN_EXIT_BACKEND;
    }
    hetrun_module_list_free(&list);

    if (topology) {
        hetrun_topo_device *td = NULL;
        int n = 0;
        cJSON *jo = cJSON_AddArrayToObject(root, "osdevs");
        if (hetrun_topo_accelerators(t, &td, &n) == 0) {
            for (int k = 0; jo && k < n; k++) {
                char first[64];
                snprintf(first, sizeof(first), "%.*s", (int)strcspn(td[k].osdevs, ","),
                         td[k].osdevs);
                cJSON *d = device_json(t, k, &td[k].info, first);
                if (!d) continue;
                cJSON_AddStringToObject(d, "osdevs", td[k].osdevs);
                cJSON_AddItemToArray(jo, d);
            }
            free(td);
        }
    }
    if (json) {
        char *s = cJSON_Print(root);
        if (s) printf("%s\n", s);
        free(s);
    } else {
        print_table(root);
    }
    cJSON_Delete(root);
    hetrun_topo_free(t);
    return HETRUN_EXIT_OK;
}
