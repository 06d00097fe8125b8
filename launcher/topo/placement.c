/* Applying this rank's placement before MPI_Init (see placement.h, docs/placement.md). */
#include "topo/placement.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "spec/job.h"
#include "topo/affinity.h"
#include "topo/device_json.h"
#include "topo/mask_share.h"
#include "topo/plan.h"
#include "topo/threads.h"
#include "topo/topology.h"
#include "util/cache_dir.h"
#include "util/log.h"

static const char *env_get(const char *name) {
    return getenv(name);
}

void hetrun_cpus_format(const int *cpus, int n, char *buf, size_t len) {
    size_t off = 0;
    buf[0] = '\0';
    for (int i = 0; i < n && off < len;) {
        int j = i;
        while (j + 1 < n && cpus[j + 1] == cpus[j] + 1)
            j++;
        int w = j > i ? snprintf(buf + off, len - off, "%s%d-%d", off ? "," : "", cpus[i], cpus[j])
                      : snprintf(buf + off, len - off, "%s%d", off ? "," : "", cpus[i]);
        if (w < 0) break;
        off += (size_t)w;
        i = j + 1;
    }
    if (n == 0) snprintf(buf, len, "none");
}

/* A key shared by the ranks of one job on one node, for the topology cache; "" if none. */
static void job_key(char *out, size_t len) {
    const char *v;
    out[0] = '\0';
    if ((v = getenv("PMIX_NAMESPACE")) && *v)
        snprintf(out, len, "pmix-%s", v);
    else if ((v = getenv("OMPI_MCA_ess_base_jobid")) && *v)
        snprintf(out, len, "ompi-%s", v);
    else if ((v = getenv("SLURM_JOB_ID")) && *v) {
        const char *s = getenv("SLURM_STEP_ID");
        snprintf(out, len, "slurm-%s.%s", v, s ? s : "x");
    } else if ((v = getenv("FLUX_JOB_ID")) && *v)
        snprintf(out, len, "flux-%s", v);
}

static void tmp_dir(char *out, size_t len) {
    const char *t = getenv("TMPDIR");
    snprintf(out, len, "%s/hetrun-%ld", t && *t ? t : "/tmp", (long)getuid());
}

static void cache_dir(char *out, size_t len) {
    const char *dir = hetrun_cache_dir();
    if (dir)
        snprintf(out, len, "%s", dir);
    else
        tmp_dir(out, len);
}

/* Narrows `env` to device `g`; within a list the scheduler already set, takes its g-th entry. */
static int set_visibility(const char *env, int g, char *value, size_t vlen, char *err,
                          size_t errlen) {
    const char *pre = getenv(env);
    if (pre && *pre) {
        char copy[1024];
        snprintf(copy, sizeof(copy), "%s", pre);
        int k = 0;
        char *save = NULL;
        value[0] = '\0';
        for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save), k++)
            if (k == g) snprintf(value, vlen, "%s", tok);
        if (!value[0]) {
            snprintf(err, errlen,
                     "%s=\"%s\" (already set) has %d entr%s but the probe reported device %d", env,
                     pre, k, k == 1 ? "y" : "ies", g);
            return -1;
        }
    } else {
        snprintf(value, vlen, "%d", g);
    }
    if (setenv(env, value, 1) != 0) {
        snprintf(err, errlen, "setenv(%s=%s) failed: %s", env, value, strerror(errno));
        return -1;
    }
    return 0;
}

/* Cores of `t` that `set` touches (a rank on one PU of a two-PU core has one core). */
static int cores_touched(const hetrun_topo *t, hwloc_const_bitmap_t set) {
    int n = 0;
    hwloc_obj_t core = NULL;
    while ((core = hwloc_get_next_obj_by_type(t->topo, HWLOC_OBJ_CORE, core)) != NULL)
        if (core->cpuset && hwloc_bitmap_intersects(core->cpuset, set)) n++;
    return n > 0 ? n : hwloc_bitmap_weight(set);
}

static int list_of(hwloc_const_bitmap_t set, int **cpus, int *n, char *err, size_t errlen) {
    if (hetrun_cpuset_to_list(set, cpus, n) == 0) return 0;
    snprintf(err, errlen, "placement: out of memory listing cpus");
    return -1;
}

/* Fits the plan into the inherited mask, binds (this machine only), reads the affinity
 * back into p->cpus and decides the thread count. Fails only on allocation failure. */
static int bind_and_read_back(const hetrun_topo *t, int bind, hetrun_placement *p, char *err,
                              size_t errlen) {
    hwloc_bitmap_t planned = hwloc_bitmap_alloc(), inherited = hwloc_bitmap_alloc(),
                   target = hwloc_bitmap_alloc(), now = hwloc_bitmap_alloc();
    int rc = -1;
    if (!planned || !inherited || !target || !now) {
        snprintf(err, errlen, "placement: out of memory");
        goto done;
    }
    for (int i = 0; i < p->nplanned; i++)
        hwloc_bitmap_set(planned, (unsigned)p->planned_cpus[i]);
    int known = hetrun_affinity_inherited(inherited) == 0;
    if (known && list_of(inherited, &p->inherited_cpus, &p->ninherited, err, errlen) != 0)
        goto done;
    hwloc_const_bitmap_t machine = hwloc_topology_get_allowed_cpuset(t->topo);
    int fit = hetrun_affinity_fit(planned, inherited, machine, target);
    snprintf(p->fit, sizeof p->fit, "%s", hetrun_affinity_fit_name(fit));
    char want[512], have[512];
    hetrun_cpus_format(p->inherited_cpus, p->ninherited, have, sizeof have);
    hetrun_cpus_format(p->planned_cpus, p->nplanned, want, sizeof want);
    if (fit == HETRUN_FIT_NARROWED)
        snprintf(p->bind_note, sizeof p->bind_note, "plan %s narrowed to the inherited affinity %s",
                 want, have);
    if (fit == HETRUN_FIT_INHERITED)
        snprintf(p->bind_note, sizeof p->bind_note,
                 "inherited affinity %s (scheduler/launcher) excludes the planned cpus %s; "
                 "kept the inherited affinity",
                 have, want);

    const char *xml = getenv("HWLOC_XMLFILE");
    if (!bind) {
        snprintf(p->fit, sizeof p->fit, "none");
        snprintf(p->bind_note, sizeof p->bind_note, "placement.bind is false: not bound");
    } else if (!t->is_this_system || !hwloc_topology_is_thissystem(t->topo)) {
        snprintf(p->fit, sizeof p->fit, "none");
        /* hwloc "binds" a foreign topology by doing nothing and reporting success. */
        snprintf(p->bind_note, sizeof p->bind_note,
                 "topology %.200s is not this machine's%s: nothing bound",
                 xml && *xml ? xml : t->source, xml && *xml ? " (HWLOC_XMLFILE)" : "");
    } else if (hwloc_set_cpubind(t->topo, target, HWLOC_CPUBIND_PROCESS) != 0) {
        char buf[512];
        int *v = NULL, n = 0;
        if (list_of(target, &v, &n, err, errlen) != 0) goto done;
        hetrun_cpus_format(v, n, buf, sizeof buf);
        free(v);
        /* Containers may forbid binding; the run is still correct, only slower. */
        snprintf(p->bind_note, sizeof p->bind_note, "hwloc_set_cpubind(cpus %.200s) failed: %s",
                 buf, strerror(errno));
        HETRUN_WARN("placement: %s; running unbound", p->bind_note);
    } else {
        p->bound = 1;
        if (fit == HETRUN_FIT_INHERITED)
            HETRUN_WARN("placement: rank %d: %s", p->id.rank, p->bind_note);
    }
    /* The report states what the process really has, whatever was asked for. */
    if (hetrun_affinity_current(now) != 0 || hwloc_bitmap_iszero(now)) {
        if (p->bound)
            hwloc_bitmap_copy(now, target);
        else
            hwloc_bitmap_copy(now, inherited);
    }
    if (p->bound && !hwloc_bitmap_isequal(now, target)) {
        p->bound = 0;
        snprintf(p->bind_note, sizeof p->bind_note,
                 "hwloc_set_cpubind succeeded but the affinity read back differs");
    }
    if (list_of(now, &p->cpus, &p->ncpus, err, errlen) != 0) goto done;

    /* Threads follow the cores the rank really has, unless the plan shares PUs. */
    int cores = p->threads;
    if (p->bound && fit != HETRUN_FIT_PLAN) cores = cores_touched(t, now);
    int pus = hwloc_bitmap_weight(now);
    if (pus > 0 && cores > pus) cores = pus;
    p->threads =
        hetrun_threads_decide(env_get, cores, pus, p->threads_source, sizeof p->threads_source);
    if (hetrun_threads_export(p->threads) != 0) {
        snprintf(err, errlen, "placement: setenv(OMP/OPENBLAS/MKL_NUM_THREADS=%d) failed: %s",
                 p->threads, strerror(errno));
        goto done;
    }
    rc = 0;
done:
    if (planned) hwloc_bitmap_free(planned);
    if (inherited) hwloc_bitmap_free(inherited);
    if (target) hwloc_bitmap_free(target);
    if (now) hwloc_bitmap_free(now);
    return rc;
}

/* A narrower-than-machine mask that every local rank inherited (taskset or numactl around
 * `mpirun --bind-to none`) is the node as far as this job is concerned: the topology is
 * restricted to it so the ranks split it. Per-rank masks (Slurm, mpirun's binding) are
 * left to the fitting in bind_and_read_back. Fails only when hwloc cannot restrict. */
static int plan_within_shared_mask(hetrun_topo *t, hetrun_placement *p, const char *dir,
                                   const char *key, char *err, size_t errlen) {
    hwloc_bitmap_t m = hwloc_bitmap_alloc();
    if (!m) {
        snprintf(err, errlen, "placement: out of memory");
        return -1;
    }
    hwloc_const_bitmap_t allowed = hwloc_topology_get_allowed_cpuset(t->topo);
    int rc = 0;
    if (p->id.local_size > 1 && key[0] && t->is_this_system && hetrun_affinity_inherited(m) == 0 &&
        !hwloc_bitmap_isincluded(allowed, m) && hwloc_bitmap_intersects(m, allowed)) {
        char path[4096], why[512], tmp[4096];
        mkdir(dir, 0700);
        /* A read-only home (common on compute nodes): the node-local temporary folder;
         * every local rank meets the same condition, so all pick the same file. */
        if (access(dir, W_OK) != 0) {
            tmp_dir(tmp, sizeof tmp);
            mkdir(tmp, 0700);
            dir = tmp;
        }
        hetrun_node_file(dir, "mask", key, "txt", path, sizeof path);
        snprintf(p->startup_files[1], sizeof p->startup_files[1], "%s", path);
        int shared =
            hetrun_mask_shared(path, p->id.local_rank, p->id.local_size, m, 10.0, why, sizeof why);
        if (shared < 0) HETRUN_WARN("placement: %s; fitting each rank's plan into its mask", why);
        if (shared == 1) {
            hwloc_bitmap_and(m, m, allowed);
            char *list = NULL;
            hwloc_bitmap_list_asprintf(&list, m);
            if (hwloc_topology_restrict(t->topo, m, HWLOC_RESTRICT_FLAG_ADAPT_IO) != 0) {
                snprintf(err, errlen, "placement: hwloc_topology_restrict(cpus %s) failed: %s",
                         list ? list : "?", strerror(errno));
                rc = -1;
            } else {
                snprintf(
                    p->bind_note, sizeof p->bind_note,
                    "the %d local ranks share the inherited affinity %.200s: planned within it",
                    p->id.local_size, list ? list : "?");
            }
            free(list);
        }
    }
    hwloc_bitmap_free(m);
    return rc;
}

int hetrun_placement_apply_devices(const struct hetrun_job *job, const char *backend,
                                   const hetrun_probe_device *devs, int ndevs,
                                   hetrun_placement *out, char *err, size_t errlen) {
    hetrun_placement p;
    memset(&p, 0, sizeof(p));
    if (hetrun_identity_parse(env_get, &p.id, err, errlen) != 0) return -1;

    hetrun_plan_opts opts = {HETRUN_PLACE_CLOSEST, 0, NULL, 0};
    int bind = 1;
    if (job) {
        opts.policy = job->placement.policy;
        opts.ranks_per_device = job->placement.ranks_per_device;
        opts.map = job->placement.map.items;
        opts.map_count = job->placement.map.count;
        bind = job->placement.bind;
    }
    hetrun_plan_device *pd = calloc((size_t)(ndevs > 0 ? ndevs : 1), sizeof(*pd));
    if (!pd) {
        snprintf(err, errlen, "placement: out of memory for %d devices", ndevs);
        return -1;
    }
    int need_io = 0;
    for (int i = 0; i < ndevs; i++) {
        pd[i].info = devs[i].info;
        pd[i].index = devs[i].index;
        snprintf(pd[i].osdev, sizeof(pd[i].osdev), "%.40s%d", backend ? backend : "",
                 devs[i].index);
        if (devs[i].info.kind != HETRUN_DEVICE_CPU) need_io = 1;
    }

    /* A plain load costs ~1 ms; the I/O scan ~16 ms, so only when a device needs it, and
     * once per node (local rank 0 shares it as XML). */
    hetrun_topo *t;
    char dir[4096], key[512];
    cache_dir(dir, sizeof(dir));
    job_key(key, sizeof(key));
    if (p.id.local_size > 1 && key[0] && p.id.local_rank == 0)
        hetrun_node_files_sweep(dir, 3600.0); /* earlier jobs' files: start-up takes seconds */
    if (need_io && p.id.local_size > 1) {
        t = hetrun_topo_load_node_cached(p.id.local_rank, dir, key, err, errlen);
        if (key[0]) hetrun_node_file(dir, "topo", key, "xml", p.startup_files[0], 4096);
    } else {
        t = hetrun_topo_load_system(need_io, err, errlen);
    }
    hetrun_topo_count(t, &p.node);
    if (!t || plan_within_shared_mask(t, &p, dir, key, err, errlen) != 0) {
        hetrun_topo_free(t);
        free(pd);
        return -1;
    }
    hetrun_rank_plan *plans = NULL;
    if (hetrun_plan_compute(t, pd, ndevs, &opts, p.id.local_size, &plans, err, errlen) != 0) {
        hetrun_topo_free(t);
        free(pd);
        return -1;
    }
    hetrun_rank_plan *me = &plans[p.id.local_rank];
    p.numa_node = me->numa_node;
    p.threads = me->threads;
    p.planned_cpus = me->cpus;
    p.nplanned = me->ncpus;
    me->cpus = NULL;
    snprintf(p.locality, sizeof(p.locality), "%s", me->locality);
    snprintf(p.policy, sizeof(p.policy), "%s", hetrun_policy_name(opts.policy));
    p.device_index = -1;
    p.device_global = -1;
    int rc = -1;
    if (me->device >= 0) {
        const hetrun_device_info *di = &devs[me->device].info;
        p.device = *di;
        p.device_global = devs[me->device].index;
        p.device_index = p.device_global;
        if (di->kind != HETRUN_DEVICE_CPU && di->visibility_env[0]) {
            snprintf(p.visibility_env, sizeof(p.visibility_env), "%s", di->visibility_env);
            if (set_visibility(di->visibility_env, p.device_global, p.visibility_value,
                               sizeof(p.visibility_value), err, errlen) != 0)
                goto done;
            p.device_index = 0;
        }
    }
    if (bind_and_read_back(t, bind, &p, err, errlen) != 0) goto done;
    *out = p;
    memset(&p, 0, sizeof p);
    rc = 0;
done:
    hetrun_placement_free(&p);
    hetrun_plan_free(plans, p.id.local_size);
    hetrun_topo_free(t);
    free(pd);
    return rc;
}

int hetrun_placement_read_back(hetrun_placement *p) {
    hwloc_bitmap_t now = hwloc_bitmap_alloc();
    int *v = NULL, n = 0;
    if (!now || hetrun_affinity_current(now) != 0 || hwloc_bitmap_iszero(now) ||
        hetrun_cpuset_to_list(now, &v, &n) != 0) {
        if (now) hwloc_bitmap_free(now);
        return -1;
    }
    hwloc_bitmap_free(now);
    if (n == p->ncpus && memcmp(v, p->cpus, (size_t)n * sizeof(int)) == 0) {
        free(v);
        return 0;
    }
    char was[512], is[512];
    hetrun_cpus_format(p->cpus, p->ncpus, was, sizeof was);
    hetrun_cpus_format(v, n, is, sizeof is);
    snprintf(p->bind_note, sizeof p->bind_note,
             "affinity changed after placement (MPI_Init?): cpus %.150s, not %.150s", is, was);
    HETRUN_WARN("placement: rank %d: %s", p->id.rank, p->bind_note);
    free(p->cpus);
    p->cpus = v;
    p->ncpus = n;
    p->bound = 0;
    return 0;
}

cJSON *hetrun_placement_to_json(const hetrun_placement *p) {
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    cJSON_AddNumberToObject(o, "rank", p->id.rank);
    cJSON_AddNumberToObject(o, "size", p->id.size);
    cJSON_AddNumberToObject(o, "local_rank", p->id.local_rank);
    cJSON_AddNumberToObject(o, "local_size", p->id.local_size);
    cJSON_AddNumberToObject(o, "node_index", p->id.node_index);
    cJSON_AddNumberToObject(o, "nnodes", p->id.nnodes);
    cJSON_AddStringToObject(o, "identity_source", p->id.source);
    cJSON_AddStringToObject(o, "policy", p->policy);
    if (p->device_global >= 0) {
        cJSON *d = cJSON_AddObjectToObject(o, "device");
        if (d) {
            cJSON_AddNumberToObject(d, "index", p->device_index);
            cJSON_AddNumberToObject(d, "global_index", p->device_global);
            cJSON_AddStringToObject(d, "name", p->device.name);
            cJSON_AddStringToObject(d, "kind", hetrun_device_kind_name(p->device.kind));
            cJSON_AddStringToObject(d, "pci_bus_id", p->device.pci_bus_id);
            cJSON_AddNumberToObject(d, "numa_node", p->numa_node);
        }
    } else {
        cJSON_AddNullToObject(o, "device");
    }
    cJSON_AddNumberToObject(o, "numa_node", p->numa_node);
    cJSON *c = cJSON_AddArrayToObject(o, "cpus");
    for (int i = 0; c && i < p->ncpus; i++)
        cJSON_AddItemToArray(c, cJSON_CreateNumber(p->cpus[i]));
    cJSON *pc = cJSON_AddArrayToObject(o, "planned_cpus");
    for (int i = 0; pc && i < p->nplanned; i++)
        cJSON_AddItemToArray(pc, cJSON_CreateNumber(p->planned_cpus[i]));
    if (p->ninherited > 0) {
        cJSON *ic = cJSON_AddArrayToObject(o, "inherited_cpus");
        for (int i = 0; ic && i < p->ninherited; i++)
            cJSON_AddItemToArray(ic, cJSON_CreateNumber(p->inherited_cpus[i]));
    } else {
        cJSON_AddNullToObject(o, "inherited_cpus");
    }
    cJSON_AddStringToObject(o, "fit", p->fit);
    cJSON_AddNumberToObject(o, "threads", p->threads);
    cJSON_AddStringToObject(o, "threads_source", p->threads_source);
    cJSON_AddStringToObject(o, "locality", p->locality);
    cJSON_AddStringToObject(o, "visibility_env", p->visibility_env);
    cJSON_AddStringToObject(o, "visibility_value", p->visibility_value);
    cJSON_AddBoolToObject(o, "bound", p->bound);
    cJSON_AddStringToObject(o, "bind_note", p->bind_note);
    return o;
}

void hetrun_placement_print_binding(const hetrun_placement *p, FILE *out) {
    char host[256] = "?", cpus[512], dev[256], vis[384] = "", line[2048];
    gethostname(host, sizeof(host) - 1);
    host[sizeof(host) - 1] = '\0';
    hetrun_cpus_format(p->cpus, p->ncpus, cpus, sizeof(cpus));
    if (p->device_global >= 0)
        snprintf(dev, sizeof(dev), "device %d (%.128s%s%.32s)", p->device_global, p->device.name,
                 p->device.pci_bus_id[0] ? " " : "", p->device.pci_bus_id);
    else
        snprintf(dev, sizeof(dev), "no device (CPU only)");
    if (p->visibility_env[0])
        snprintf(vis, sizeof(vis), " %.64s=%.256s", p->visibility_env, p->visibility_value);
    /* One write per line, so lines of ranks sharing a terminal do not interleave. */
    snprintf(line, sizeof(line),
             "[%s:%d] rank %d/%d local %d/%d: %s numa %d cpus %s threads %d "
             "[%s, %s]%s %s%s%.384s\n",
             host, p->id.rank, p->id.rank, p->id.size, p->id.local_rank, p->id.local_size, dev,
             p->numa_node, cpus, p->threads, p->policy, p->locality, vis,
             p->bound ? "bound" : "not bound", p->bind_note[0] ? ": " : "", p->bind_note);
    fputs(line, out);
    fflush(out);
}

void hetrun_placement_release_files(hetrun_placement *p) {
    for (int i = 0; i < 2; i++) {
        if (p->id.local_rank == 0 && p->startup_files[i][0]) unlink(p->startup_files[i]);
        p->startup_files[i][0] = '\0';
    }
}

void hetrun_placement_free(hetrun_placement *p) {
    if (!p) return;
    free(p->cpus);
    free(p->planned_cpus);
    free(p->inherited_cpus);
    p->cpus = p->planned_cpus = p->inherited_cpus = NULL;
    p->ncpus = p->nplanned = p->ninherited = 0;
}
