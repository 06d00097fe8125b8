/* Pure placement planning (see plan.h and docs/placement.md). */
#include "topo/plan.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spec/job.h"

static const char *const policy_names[] = {"closest", "round-robin", "pack", "map"};

const char *hetrun_policy_name(int policy) {
    if (policy < 0 || policy > HETRUN_PLACE_MAP) return "?";
    return policy_names[policy];
}

int hetrun_policy_parse(const char *name) {
    for (int i = 0; i <= HETRUN_PLACE_MAP; i++)
        if (name && strcmp(name, policy_names[i]) == 0) return i;
    return -1;
}

void hetrun_plan_free(hetrun_rank_plan *plans, int n) {
    if (!plans) return;
    for (int i = 0; i < n; i++)
        free(plans[i].cpus);
    free(plans);
}

typedef struct accel {
    int pos;  /* position in devs */
    int numa; /* locality NUMA node, -1 unknown */
} accel;

static int cmp_accel_numa(const void *a, const void *b) {
    const accel *x = a, *y = b;
    if (x->numa != y->numa) return x->numa < y->numa ? -1 : 1;
    return x->pos - y->pos;
}

/* closest: how many ranks each accelerator gets, balanced per device and per NUMA node:
 * devices are visited NUMA-interleaved (first of each node, then second of each...). */
static void closest_counts(const accel *acc, int D, int M, int *count) {
    accel *s = malloc((size_t)D * sizeof(*s));
    int *order = malloc((size_t)D * sizeof(int));
    int *gstart = malloc((size_t)(D + 1) * sizeof(int));
    if (!s || !order || !gstart) {
        /* Fall back to device order; still balanced per device. */
        for (int k = 0; k < M; k++)
            count[acc[k % D].pos]++;
        free(s);
        free(order);
        free(gstart);
        return;
    }
    memcpy(s, acc, (size_t)D * sizeof(*s));
    qsort(s, (size_t)D, sizeof(*s), cmp_accel_numa);
    int ng = 0;
    for (int i = 0; i < D; i++)
        if (i == 0 || s[i].numa != s[i - 1].numa) gstart[ng++] = i;
    gstart[ng] = D;
    int n = 0;
    for (int round = 0; n < D; round++)
        for (int g = 0; g < ng; g++)
            if (gstart[g] + round < gstart[g + 1]) order[n++] = s[gstart[g] + round].pos;
    for (int k = 0; k < M; k++)
        count[order[k % D]]++;
    free(s);
    free(order);
    free(gstart);
}

typedef struct group {
    hwloc_bitmap_t home;
    int *ranks;
    int n;
} group;

static int cmp_group(const void *a, const void *b) {
    const group *x = a, *y = b;
    int wx = hwloc_bitmap_weight(x->home), wy = hwloc_bitmap_weight(y->home);
    if (wx != wy) return wx < wy ? -1 : 1;
    int fx = hwloc_bitmap_first(x->home), fy = hwloc_bitmap_first(y->home);
    if (fx != fy) return fx < fy ? -1 : 1;
    return x->ranks[0] - y->ranks[0];
}

/* Splits `avail` among the n ranks of a group: whole cores when there are enough, else
 * PUs, else PUs shared round-robin (oversubscribed). */
static int split_group(const hetrun_topo *t, hwloc_const_bitmap_t avail, const int *ranks, int n,
                       hwloc_bitmap_t *sets, int *threads) {
    hwloc_topology_t topo = t->topo;
    int ncore_total = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_CORE);
    int cap = ncore_total > 0 ? ncore_total : hwloc_bitmap_weight(avail);
    hwloc_bitmap_t *units = calloc((size_t)(cap > 0 ? cap : 1), sizeof(*units));
    if (!units) return -1;
    int nu = 0;
    if (ncore_total > 0) {
        for (int c = 0; c < ncore_total; c++) {
            hwloc_obj_t core = hwloc_get_obj_by_type(topo, HWLOC_OBJ_CORE, (unsigned)c);
            if (!core || !core->cpuset || !hwloc_bitmap_intersects(core->cpuset, avail)) continue;
            units[nu] = hwloc_bitmap_alloc();
            if (!units[nu]) goto oom;
            hwloc_bitmap_and(units[nu], core->cpuset, avail);
            nu++;
        }
    }
    int npu = hwloc_bitmap_weight(avail);
    if (nu >= n) {
        for (int j = 0, u = 0; j < n; j++) {
            int cnt = nu / n + (j < nu % n);
            hwloc_bitmap_zero(sets[ranks[j]]);
            for (int k = 0; k < cnt; k++, u++)
                hwloc_bitmap_or(sets[ranks[j]], sets[ranks[j]], units[u]);
            threads[ranks[j]] = cnt;
        }
    } else {
        /* Fewer cores than ranks: hand out PUs in logical (core-major) order. */
        int *pus = malloc((size_t)(npu > 0 ? npu : 1) * sizeof(int));
        if (!pus) goto oom;
        int np = 0;
        hwloc_obj_t pu = NULL;
        while ((pu = hwloc_get_next_obj_by_type(topo, HWLOC_OBJ_PU, pu)) != NULL)
            if (hwloc_bitmap_isset(avail, pu->os_index) && np < npu) pus[np++] = (int)pu->os_index;
        if (np == 0) {
            free(pus);
            goto oom;
        }
        for (int j = 0, u = 0; j < n; j++) {
            hwloc_bitmap_zero(sets[ranks[j]]);
            if (np >= n) {
                int cnt = np / n + (j < np % n);
                for (int k = 0; k < cnt; k++, u++)
                    hwloc_bitmap_set(sets[ranks[j]], (unsigned)pus[u]);
                threads[ranks[j]] = cnt;
            } else {
                hwloc_bitmap_set(sets[ranks[j]], (unsigned)pus[j % np]);
                threads[ranks[j]] = 1;
            }
        }
        free(pus);
    }
    for (int i = 0; i < nu; i++)
        hwloc_bitmap_free(units[i]);
    free(units);
    return 0;
oom:
    for (int i = 0; i < nu; i++)
        hwloc_bitmap_free(units[i]);
    free(units);
    return -1;
}

int hetrun_plan_compute(const hetrun_topo *t, const hetrun_plan_device *devs, int ndev,
                        const hetrun_plan_opts *opts, int L, hetrun_rank_plan **out, char *err,
                        size_t errlen) {
    *out = NULL;
    if (!t || L <= 0 || ndev < 0 || (ndev > 0 && !devs) || !opts) {
        snprintf(err, errlen, "plan: invalid arguments (local ranks %d, devices %d)", L, ndev);
        return -1;
    }
    if (opts->policy < 0 || opts->policy > HETRUN_PLACE_MAP) {
        snprintf(err, errlen, "plan: unknown placement policy %d", opts->policy);
        return -1;
    }
    if (opts->ranks_per_device < 0) {
        snprintf(err, errlen, "plan: ranks_per_device %lld is negative",
                 (long long)opts->ranks_per_device);
        return -1;
    }
    int rc = -1;
    hetrun_locality *loc = calloc((size_t)(ndev > 0 ? ndev : 1), sizeof(*loc));
    accel *acc = calloc((size_t)(ndev > 0 ? ndev : 1), sizeof(*acc));
    int *dev_of = malloc((size_t)L * sizeof(int));
    int *count = calloc((size_t)(ndev > 0 ? ndev : 1), sizeof(int));
    hwloc_bitmap_t *sets = calloc((size_t)L, sizeof(*sets));
    hwloc_bitmap_t *homes = calloc((size_t)L, sizeof(*homes));
    int *threads = calloc((size_t)L, sizeof(int));
    char(*how)[32] = calloc((size_t)L, sizeof(*how));
    group *groups = calloc((size_t)L, sizeof(*groups));
    int ngroups = 0;
    hetrun_rank_plan *plans = calloc((size_t)L, sizeof(*plans));
    hwloc_bitmap_t taken = hwloc_bitmap_alloc(), avail = hwloc_bitmap_alloc();
    int *numa_count = NULL;
    if (!loc || !acc || !dev_of || !count || !sets || !homes || !threads || !how || !groups ||
        !plans || !taken || !avail) {
        snprintf(err, errlen, "plan: out of memory for %d ranks and %d devices", L, ndev);
        goto done;
    }
    for (int r = 0; r < L; r++) {
        sets[r] = hwloc_bitmap_alloc();
        if (!sets[r]) {
            snprintf(err, errlen, "plan: out of memory");
            goto done;
        }
    }

    int D = 0, cpu_dev = -1;
    for (int i = 0; i < ndev; i++) {
        if (hetrun_topo_locate(t, devs[i].info.pci_bus_id, devs[i].osdev, &loc[i]) != 0) {
            snprintf(err, errlen, "plan: out of memory locating device %d", devs[i].index);
            goto done;
        }
        if (devs[i].info.kind == HETRUN_DEVICE_CPU) {
            if (cpu_dev < 0) cpu_dev = i;
        } else {
            acc[D].pos = i;
            acc[D].numa = loc[i].numa_node;
            D++;
        }
    }
    const int64_t rpd = opts->ranks_per_device;
    for (int r = 0; r < L; r++)
        dev_of[r] = -1;

    if (opts->policy == HETRUN_PLACE_MAP) {
        if (opts->map_count < (size_t)L) {
            snprintf(err, errlen,
                     "placement map has %zu entries but this node has %d local ranks (one "
                     "device index per local rank needed)",
                     opts->map_count, L);
            goto done;
        }
        for (int r = 0; r < L; r++) {
            int64_t m = opts->map[r];
            if (m == -1) continue;
            int pos = -1;
            for (int i = 0; i < ndev; i++)
                if (devs[i].index == m) pos = i;
            if (pos < 0) {
                snprintf(err, errlen,
                         "placement map[%d] = %lld: no such device (the backend has %d "
                         "device%s%s)",
                         r, (long long)m, ndev, ndev == 1 ? "" : "s",
                         ndev ? ", indices from 0" : "");
                goto done;
            }
            dev_of[r] = pos;
            if (rpd > 0 && ++count[pos] > rpd) {
                snprintf(err, errlen,
                         "placement map puts more than ranks_per_device=%lld ranks on device %lld",
                         (long long)rpd, (long long)m);
                goto done;
            }
        }
    } else if (D == 0 && cpu_dev >= 0) {
        /* Every device is a CPU device: each rank uses it with its share of the cores. */
        for (int r = 0; r < L; r++)
            dev_of[r] = cpu_dev;
    } else if (D > 0) {
        int64_t capacity = rpd > 0 ? rpd * (int64_t)D : L;
        int M = capacity < L ? (int)capacity : L;
        if (opts->policy == HETRUN_PLACE_CLOSEST) {
            closest_counts(acc, D, M, count);
            /* Consecutive local ranks share a device (in device order). */
            int r = 0;
            for (int k = 0; k < D && r < M; k++) {
                int pos = acc[k].pos;
                for (int c = 0; c < count[pos] && r < M; c++)
                    dev_of[r++] = pos;
            }
        } else if (opts->policy == HETRUN_PLACE_ROUND_ROBIN) {
            for (int r = 0; r < M; r++)
                dev_of[r] = acc[r % D].pos;
        } else { /* pack */
            int64_t per = rpd > 0 ? rpd : (L + D - 1) / D;
            for (int r = 0; r < L; r++)
                if (r / per < D) dev_of[r] = acc[r / per].pos;
        }
    }

    /* Homes: a device rank lives next to its device; a CPU-only rank (or a rank of a CPU
     * device) on the NUMA node with the fewest ranks per PU. */
    hwloc_const_bitmap_t allowed = hwloc_topology_get_allowed_cpuset(t->topo);
    int nnuma = hwloc_get_nbobjs_by_type(t->topo, HWLOC_OBJ_NUMANODE);
    numa_count = calloc((size_t)(nnuma > 0 ? nnuma : 1), sizeof(int));
    if (!numa_count) {
        snprintf(err, errlen, "plan: out of memory");
        goto done;
    }
    for (int r = 0; r < L; r++) {
        int d = dev_of[r];
        if (d >= 0 && devs[d].info.kind != HETRUN_DEVICE_CPU) {
            homes[r] = hwloc_bitmap_dup(loc[d].cpuset);
            snprintf(how[r], sizeof(how[r]), "%s", loc[d].how);
            for (int n = 0; n < nnuma; n++) {
                hwloc_obj_t node = hwloc_get_obj_by_type(t->topo, HWLOC_OBJ_NUMANODE, (unsigned)n);
                if (node && (int)node->os_index == loc[d].numa_node) numa_count[n]++;
            }
        }
    }
    for (int r = 0; r < L; r++) {
        if (homes[r]) continue;
        int best = -1, bestw = 0;
        for (int n = 0; n < nnuma; n++) {
            hwloc_obj_t node = hwloc_get_obj_by_type(t->topo, HWLOC_OBJ_NUMANODE, (unsigned)n);
            if (!node || !node->cpuset || !hwloc_bitmap_intersects(node->cpuset, allowed)) continue;
            int w = hwloc_bitmap_weight(node->cpuset);
            /* count/w < bestcount/bestw, cross-multiplied; ties keep the lower node. */
            if (best < 0 || (long)numa_count[n] * bestw < (long)numa_count[best] * w) {
                best = n;
                bestw = w;
            }
        }
        if (best >= 0) {
            hwloc_obj_t node = hwloc_get_obj_by_type(t->topo, HWLOC_OBJ_NUMANODE, (unsigned)best);
            homes[r] = hwloc_bitmap_alloc();
            if (homes[r]) hwloc_bitmap_and(homes[r], node->cpuset, allowed);
            numa_count[best]++;
            snprintf(how[r], sizeof(how[r]), "numa");
        } else {
            homes[r] = hwloc_bitmap_dup(allowed);
            snprintf(how[r], sizeof(how[r]), "machine");
        }
    }
    for (int r = 0; r < L; r++) {
        if (!homes[r]) {
            snprintf(err, errlen, "plan: out of memory");
            goto done;
        }
        if (hwloc_bitmap_iszero(homes[r])) {
            snprintf(err, errlen, "plan: local rank %d has no usable cores (empty cpuset near %s)",
                     r, dev_of[r] >= 0 ? devs[dev_of[r]].info.name : "its NUMA node");
            goto done;
        }
        int g = 0;
        while (g < ngroups && !hwloc_bitmap_isequal(groups[g].home, homes[r]))
            g++;
        if (g == ngroups) {
            groups[g].home = homes[r];
            groups[g].ranks = malloc((size_t)L * sizeof(int));
            if (!groups[g].ranks) {
                snprintf(err, errlen, "plan: out of memory");
                goto done;
            }
            ngroups++;
        }
        groups[g].ranks[groups[g].n++] = r;
    }
    qsort(groups, (size_t)ngroups, sizeof(*groups), cmp_group);
    for (int g = 0; g < ngroups; g++) {
        hwloc_bitmap_andnot(avail, groups[g].home, taken);
        /* Overlapping homes already handed out: share rather than leave ranks without cores. */
        if (hwloc_bitmap_iszero(avail)) hwloc_bitmap_copy(avail, groups[g].home);
        if (split_group(t, avail, groups[g].ranks, groups[g].n, sets, threads) != 0) {
            snprintf(err, errlen, "plan: out of memory splitting cores");
            goto done;
        }
        hwloc_bitmap_or(taken, taken, avail);
    }

    hwloc_bitmap_t nodeset = hwloc_bitmap_alloc();
    if (!nodeset) {
        snprintf(err, errlen, "plan: out of memory");
        goto done;
    }
    for (int r = 0; r < L; r++) {
        hetrun_rank_plan *p = &plans[r];
        p->local_rank = r;
        p->device = dev_of[r];
        p->threads = threads[r] > 0 ? threads[r] : 1;
        snprintf(p->locality, sizeof(p->locality), "%s", how[r]);
        hwloc_cpuset_to_nodeset(t->topo, sets[r], nodeset);
        p->numa_node = hwloc_bitmap_weight(nodeset) == 1 ? hwloc_bitmap_first(nodeset) : -1;
        if (hetrun_cpuset_to_list(sets[r], &p->cpus, &p->ncpus) != 0) {
            hwloc_bitmap_free(nodeset);
            snprintf(err, errlen, "plan: out of memory");
            goto done;
        }
    }
    hwloc_bitmap_free(nodeset);
    *out = plans;
    plans = NULL;
    rc = 0;
done:
    if (plans) hetrun_plan_free(plans, L);
    for (int i = 0; loc && i < ndev; i++)
        hetrun_locality_fini(&loc[i]);
    for (int r = 0; sets && r < L; r++)
        if (sets[r]) hwloc_bitmap_free(sets[r]);
    for (int r = 0; homes && r < L; r++)
        if (homes[r]) hwloc_bitmap_free(homes[r]);
    for (int g = 0; groups && g < ngroups; g++)
        free(groups[g].ranks);
    if (taken) hwloc_bitmap_free(taken);
    if (avail) hwloc_bitmap_free(avail);
    free(numa_count);
    free(groups);
    free(how);
    free(threads);
    free(homes);
    free(sets);
    free(count);
    free(dev_of);
    free(acc);
    free(loc);
    return rc;
}
