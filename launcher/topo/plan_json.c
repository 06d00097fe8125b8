/* Whole-job plans for `hetrun plan` and `hetrun topo` (see plan.h). */
#include <stdlib.h>
#include <string.h>

#include "topo/affinity.h"
#include "topo/device_json.h"
#include "topo/placement.h"
#include "topo/plan.h"
#include "topo/threads.h"

int hetrun_plan_devices_from_topo(const hetrun_topo *topo, hetrun_plan_device **devs, int *ndev) {
    hetrun_topo_device *td = NULL;
    int n = 0;
    *devs = NULL;
    *ndev = 0;
    if (hetrun_topo_accelerators(topo, &td, &n) != 0) return -1;
    hetrun_plan_device *v = calloc((size_t)(n > 0 ? n : 1), sizeof(*v));
    if (!v) {
        free(td);
        return -1;
    }
    for (int i = 0; i < n; i++) {
        v[i].info = td[i].info;
        v[i].index = i;
        /* First OS device name: the fallback when the PCI id does not resolve. */
        snprintf(v[i].osdev, sizeof(v[i].osdev), "%.*s", (int)strcspn(td[i].osdevs, ","),
                 td[i].osdevs);
    }
    free(td);
    *devs = v;
    *ndev = n;
    return 0;
}

static cJSON *int_array(const int *v, int n) {
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; a && i < n; i++)
        cJSON_AddItemToArray(a, cJSON_CreateNumber(v[i]));
    return a;
}

cJSON *hetrun_plan_job_json(const hetrun_topo *topo, const hetrun_plan_device *devs, int ndev,
                            const hetrun_plan_opts *opts, int ranks, int nodes, char *err,
                            size_t errlen) {
    if (ranks <= 0 || nodes <= 0 || nodes > ranks) {
        snprintf(err, errlen, "plan: need 1 <= nodes <= ranks (got %d ranks on %d nodes)", ranks,
                 nodes);
        return NULL;
    }
    cJSON *root = cJSON_CreateObject();
    if (!root) goto oom;
    cJSON_AddNumberToObject(root, "ranks", ranks);
    cJSON_AddNumberToObject(root, "nodes", nodes);
    cJSON_AddStringToObject(root, "policy", hetrun_policy_name(opts->policy));
    cJSON_AddNumberToObject(root, "ranks_per_device", (double)opts->ranks_per_device);
    cJSON_AddStringToObject(root, "topology", topo->source);
    cJSON *jd = cJSON_AddArrayToObject(root, "devices");
    for (int i = 0; jd && i < ndev; i++) {
        hetrun_locality loc;
        if (hetrun_topo_locate(topo, devs[i].info.pci_bus_id, devs[i].osdev, &loc) != 0) goto oom;
        int *cpus = NULL, ncpus = 0;
        hetrun_cpuset_to_list(loc.cpuset, &cpus, &ncpus);
        char cs[1024];
        hetrun_cpus_format(cpus, ncpus, cs, sizeof(cs));
        cJSON *d = cJSON_CreateObject();
        cJSON_AddNumberToObject(d, "index", devs[i].index);
        cJSON_AddStringToObject(d, "name", devs[i].info.name);
        cJSON_AddStringToObject(d, "kind", hetrun_device_kind_name(devs[i].info.kind));
        cJSON_AddStringToObject(d, "pci_bus_id", devs[i].info.pci_bus_id);
        cJSON_AddNumberToObject(d, "numa_node", loc.numa_node);
        cJSON_AddStringToObject(d, "locality", loc.how);
        cJSON_AddStringToObject(d, "cpus", cs);
        cJSON_AddItemToArray(jd, d);
        free(cpus);
        hetrun_locality_fini(&loc);
    }
    cJSON *jp = cJSON_AddArrayToObject(root, "plan");
    if (!jp) goto oom;
    /* Nodes differ only in their local size (base or base+1): plan each size once. */
    int base = ranks / nodes, extra = ranks % nodes;
    hetrun_rank_plan *pl[2] = {NULL, NULL};
    int sizes[2] = {base + 1, base};
    for (int k = 0; k < 2; k++) {
        if (sizes[k] <= 0 || (k == 0 && extra == 0) || (k == 1 && extra == nodes)) continue;
        if (hetrun_plan_compute(topo, devs, ndev, opts, sizes[k], &pl[k], err, errlen) != 0) {
            hetrun_plan_free(pl[0], sizes[0]);
            cJSON_Delete(root);
            return NULL;
        }
    }
    int rank = 0;
    for (int n = 0; n < nodes; n++) {
        int k = n < extra ? 0 : 1;
        char host[32];
        snprintf(host, sizeof(host), "node%d", n);
        for (int l = 0; l < sizes[k]; l++, rank++) {
            const hetrun_rank_plan *p = &pl[k][l];
            cJSON *r = cJSON_CreateObject();
            if (!r) goto oom_plans;
            cJSON_AddItemToArray(jp, r);
            cJSON_AddNumberToObject(r, "rank", rank);
            cJSON_AddNumberToObject(r, "node", n);
            cJSON_AddStringToObject(r, "host", host);
            cJSON_AddNumberToObject(r, "local_rank", l);
            cJSON_AddNumberToObject(r, "local_size", sizes[k]);
            if (p->device >= 0) {
                const hetrun_plan_device *d = &devs[p->device];
                cJSON *jdv = cJSON_AddObjectToObject(r, "device");
                cJSON_AddNumberToObject(jdv, "index", d->index);
                cJSON_AddStringToObject(jdv, "pci_bus_id", d->info.pci_bus_id);
                cJSON_AddStringToObject(jdv, "name", d->info.name);
                cJSON_AddStringToObject(jdv, "kind", hetrun_device_kind_name(d->info.kind));
                cJSON_AddNumberToObject(jdv, "numa_node", p->numa_node);
            } else {
                cJSON_AddNullToObject(r, "device");
            }
            cJSON_AddNumberToObject(r, "numa_node", p->numa_node);
            cJSON_AddItemToObject(r, "cpus", int_array(p->cpus, p->ncpus));
            cJSON_AddNumberToObject(r, "threads", p->threads);
            cJSON_AddStringToObject(r, "locality", p->locality);
        }
    }
    hetrun_plan_free(pl[0], sizes[0]);
    hetrun_plan_free(pl[1], sizes[1]);
    return root;
oom_plans:
    hetrun_plan_free(pl[0], sizes[0]);
    hetrun_plan_free(pl[1], sizes[1]);
oom:
    cJSON_Delete(root);
    snprintf(err, errlen, "plan: out of memory building the plan of %d ranks", ranks);
    return NULL;
}

static const char *env_get(const char *name) {
    return getenv(name);
}

int hetrun_plan_fit_inherited(cJSON *plan, const hetrun_topo *t) {
    hwloc_bitmap_t inherited = hwloc_bitmap_alloc(), planned = hwloc_bitmap_alloc(),
                   fitted = hwloc_bitmap_alloc();
    int rc = -1;
    if (!inherited || !planned || !fitted) goto done;
    hetrun_affinity_inherited(inherited);
    hwloc_const_bitmap_t machine = hwloc_topology_get_allowed_cpuset(t->topo);
    cJSON *r;
    cJSON_ArrayForEach(r, cJSON_GetObjectItemCaseSensitive(plan, "plan")) {
        cJSON *c = cJSON_GetObjectItemCaseSensitive(r, "cpus");
        const cJSON *e;
        hwloc_bitmap_zero(planned);
        cJSON_ArrayForEach(e, c) hwloc_bitmap_set(planned, (unsigned)e->valueint);
        int kind = hetrun_affinity_fit(planned, inherited, machine, fitted);
        int *v = NULL, n = 0;
        if (hetrun_cpuset_to_list(fitted, &v, &n) != 0) goto done;
        cJSON *threads = cJSON_GetObjectItemCaseSensitive(r, "threads");
        int th = cJSON_IsNumber(threads) ? threads->valueint : 1;
        if (kind != HETRUN_FIT_PLAN) {
            int cores = 0;
            hwloc_obj_t core = NULL;
            while ((core = hwloc_get_next_obj_by_type(t->topo, HWLOC_OBJ_CORE, core)) != NULL)
                if (core->cpuset && hwloc_bitmap_intersects(core->cpuset, fitted)) cores++;
            th = cores > 0 ? cores : n;
        }
        char src[160];
        th = hetrun_threads_decide(env_get, th, n, src, sizeof src);
        cJSON_DetachItemViaPointer(r, c);
        cJSON_AddItemToObject(r, "planned_cpus", c);
        cJSON_AddItemToObject(r, "cpus", int_array(v, n));
        cJSON_AddStringToObject(r, "fit", hetrun_affinity_fit_name(kind));
        if (threads) cJSON_SetNumberValue(threads, th);
        cJSON_AddStringToObject(r, "threads_source", src);
        free(v);
    }
    rc = 0;
done:
    if (inherited) hwloc_bitmap_free(inherited);
    if (planned) hwloc_bitmap_free(planned);
    if (fitted) hwloc_bitmap_free(fitted);
    return rc;
}

static int jint(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valueint : -1;
}

static const char *jstr(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : "";
}

void hetrun_plan_print_table(const cJSON *plan, FILE *out) {
    const cJSON *devs = cJSON_GetObjectItemCaseSensitive(plan, "devices");
    fprintf(out,
            "plan: %d ranks on %d node%s, policy %s, ranks_per_device %d, %d device%s per "
            "node, topology %s\n",
            jint(plan, "ranks"), jint(plan, "nodes"), jint(plan, "nodes") == 1 ? "" : "s",
            jstr(plan, "policy"), jint(plan, "ranks_per_device"), cJSON_GetArraySize(devs),
            cJSON_GetArraySize(devs) == 1 ? "" : "s", jstr(plan, "topology"));
    fprintf(out, "%5s  %-8s %5s  %6s  %-13s %-28s %4s  %7s  %-9s %s\n", "rank", "host", "local",
            "device", "pci_bus_id", "name", "numa", "threads", "locality", "cpus");
    const cJSON *r;
    cJSON_ArrayForEach(r, cJSON_GetObjectItemCaseSensitive(plan, "plan")) {
        const cJSON *d = cJSON_GetObjectItemCaseSensitive(r, "device");
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(r, "cpus");
        int n = cJSON_GetArraySize(c), *v = malloc((size_t)(n > 0 ? n : 1) * sizeof(int));
        char cs[1024] = "?";
        if (v) {
            int i = 0;
            const cJSON *e;
            cJSON_ArrayForEach(e, c) v[i++] = e->valueint;
            hetrun_cpus_format(v, n, cs, sizeof(cs));
            free(v);
        }
        char dev[16] = "-";
        if (cJSON_IsObject(d)) snprintf(dev, sizeof(dev), "%d", jint(d, "index"));
        fprintf(out, "%5d  %-8s %5d  %6s  %-13s %-28.28s %4d  %7d  %-9s %s\n", jint(r, "rank"),
                jstr(r, "host"), jint(r, "local_rank"), dev,
                cJSON_IsObject(d) && *jstr(d, "pci_bus_id") ? jstr(d, "pci_bus_id") : "-",
                cJSON_IsObject(d) ? jstr(d, "name") : "(CPU only)", jint(r, "numa_node"),
                jint(r, "threads"), jstr(r, "locality"), cs);
    }
}
