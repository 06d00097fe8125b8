/* hwloc loading and device locality (see topology.h). */
#include "topo/topology.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util/safe_file.h"

static hetrun_topo *topo_new(void) {
    hetrun_topo *t = calloc(1, sizeof(*t));
    if (!t) return NULL;
    if (hwloc_topology_init(&t->topo) != 0) {
        free(t);
        return NULL;
    }
    return t;
}

static void set_io(hetrun_topo *t) {
    /* IMPORTANT keeps GPUs, co-processors, NICs and their PCI parents, not every bridge. */
    hwloc_topology_set_io_types_filter(t->topo, HWLOC_TYPE_FILTER_KEEP_IMPORTANT);
    t->has_io = 1;
}

hetrun_topo *hetrun_topo_load_system(int with_io, char *err, size_t errlen) {
    hetrun_topo *t = topo_new();
    if (!t) {
        snprintf(err, errlen, "hwloc_topology_init failed: %s", strerror(errno));
        return NULL;
    }
    if (with_io) set_io(t);
    if (hwloc_topology_load(t->topo) != 0) {
        snprintf(err, errlen, "hwloc_topology_load (this machine%s) failed: %s",
                 with_io ? ", with I/O" : "", strerror(errno));
        hetrun_topo_free(t);
        return NULL;
    }
    /* HWLOC_XMLFILE makes hwloc load a file here: planning works, binding must not. */
    t->is_this_system = hwloc_topology_is_thissystem(t->topo);
    const char *xml = getenv("HWLOC_XMLFILE");
    if (!t->is_this_system && xml && *xml)
        snprintf(t->source, sizeof(t->source), "HWLOC_XMLFILE=%.4000s", xml);
    else
        snprintf(t->source, sizeof(t->source), "%s", with_io ? "system+io" : "system");
    return t;
}

static hetrun_topo *load_xml(const char *path, int this_system, char *err, size_t errlen) {
    struct stat st;
    if (stat(path, &st) != 0) {
        snprintf(err, errlen, "topology file %s: %s", path, strerror(errno));
        return NULL;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "topology file %s: not a regular file", path);
        return NULL;
    }
    hetrun_topo *t = topo_new();
    if (!t) {
        snprintf(err, errlen, "hwloc_topology_init failed: %s", strerror(errno));
        return NULL;
    }
    set_io(t);
    if (this_system) hwloc_topology_set_flags(t->topo, HWLOC_TOPOLOGY_FLAG_IS_THISSYSTEM);
    errno = 0;
    if (hwloc_topology_set_xml(t->topo, path) != 0) {
        snprintf(err, errlen, "topology file %s: hwloc_topology_set_xml failed: %s", path,
                 errno ? strerror(errno) : "unknown error");
        hetrun_topo_free(t);
        return NULL;
    }
    errno = 0;
    if (hwloc_topology_load(t->topo) != 0) {
        snprintf(err, errlen,
                 "topology file %s: hwloc_topology_load failed: %s (not a valid hwloc XML "
                 "topology?)",
                 path, errno ? strerror(errno) : "unknown error");
        hetrun_topo_free(t);
        return NULL;
    }
    t->is_this_system = this_system;
    snprintf(t->source, sizeof(t->source), "%s%s", this_system ? "cache:" : "", path);
    return t;
}

hetrun_topo *hetrun_topo_load_xml(const char *path, char *err, size_t errlen) {
    return load_xml(path, 0, err, errlen);
}

static void read_boot_id(char *out, size_t len) {
    snprintf(out, len, "noboot");
    FILE *f = fopen("/proc/sys/kernel/random/boot_id", "r");
    if (!f) return;
    char buf[64];
    if (fgets(buf, sizeof(buf), f)) {
        buf[strcspn(buf, "\n")] = '\0';
        snprintf(out, len, "%s", buf);
    }
    fclose(f);
}

/* Keeps cache file names to [A-Za-z0-9._-] whatever the job key contains. */
static void sanitize(char *s) {
    for (; *s; s++) {
        char c = *s;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '-' || c == '_'))
            *s = '_';
    }
}

void hetrun_node_file(const char *cache_dir, const char *what, const char *job_key, const char *ext,
                      char *path, size_t len) {
    char host[256] = "localhost", boot[64], key[512];
    gethostname(host, sizeof(host) - 1);
    host[sizeof(host) - 1] = '\0';
    read_boot_id(boot, sizeof(boot));
    snprintf(key, sizeof(key), "%s-%s-%s", host, boot, job_key);
    sanitize(key);
    snprintf(path, len, "%s/%s-%s.%s", cache_dir, what, key, ext);
}

static int startup_file_name(const char *name) {
    if (name[0] == '.') name++; /* the atomic writer's temporary: .topo-...xml.tmp.PID.XXXXXX */
    const size_t n = strlen(name);
    return (strncmp(name, "topo-", 5) == 0 && strstr(name, ".xml")) ||
           (strncmp(name, "mask-", 5) == 0 && n > 4 && strcmp(name + n - 4, ".txt") == 0);
}

int hetrun_node_files_sweep(const char *cache_dir, double max_age_s) {
    DIR *d = cache_dir && *cache_dir ? opendir(cache_dir) : NULL;
    if (!d) return 0;
    const time_t before = time(NULL) - (time_t)max_age_s;
    int removed = 0;
    struct dirent *e;
    char path[4096];
    while ((e = readdir(d)) != NULL) {
        struct stat st;
        if (!startup_file_name(e->d_name)) continue;
        snprintf(path, sizeof path, "%s/%s", cache_dir, e->d_name);
        if (lstat(path, &st) == 0 && S_ISREG(st.st_mode) && st.st_uid == geteuid() &&
            st.st_mtime < before && unlink(path) == 0) /* our own files only (a shared folder) */
            removed++;
    }
    closedir(d);
    return removed;
}

hetrun_topo *hetrun_topo_load_node_cached(int local_rank, const char *cache_dir,
                                          const char *job_key, char *err, size_t errlen) {
    /* A topology from HWLOC_XMLFILE is not this machine's: caching it as such would make
     * the other ranks believe it is. */
    const char *xmlfile = getenv("HWLOC_XMLFILE");
    if (!cache_dir || !*cache_dir || !job_key || !*job_key || (xmlfile && *xmlfile))
        return hetrun_topo_load_system(1, err, errlen);

    char path[4096];
    hetrun_node_file(cache_dir, "topo", job_key, "xml", path, sizeof(path));

    if (local_rank == 0) {
        hetrun_topo *t = hetrun_topo_load_system(1, err, errlen);
        if (!t) return NULL;
        mkdir(cache_dir, 0700);
        /* Through the atomic writer (no fsync: a cache lost in a crash is rebuilt), so
         * readers never see a half-written file; failure to cache only costs the other
         * ranks their own scan. */
        char *xml = NULL, why[512];
        int len = 0;
        hetrun_atomic_file a;
        if (hwloc_topology_export_xmlbuffer(t->topo, &xml, &len, 0) == 0 && len > 0 &&
            hetrun_atomic_begin(&a, path, 0, why, sizeof why) == 0) {
            if (hetrun_atomic_write(&a, xml, (size_t)len - 1, why, sizeof why) == 0)
                (void)hetrun_atomic_commit(&a, why, sizeof why);
            else
                hetrun_atomic_abort(&a);
        }
        if (xml) hwloc_free_xmlbuffer(t->topo, xml);
        return t;
    }
    /* Others: wait for local rank 0's export, then load it (cheaper than a scan). When the
     * folder is not writable rank 0 cannot have cached anything: do not wait for it. */
    if (access(cache_dir, W_OK) != 0 && access(path, R_OK) != 0)
        return hetrun_topo_load_system(1, err, errlen);
    struct timespec nap = {0, 2 * 1000 * 1000};
    for (int i = 0; i < 5000; i++) {
        if (access(path, R_OK) == 0) {
            char e2[512];
            hetrun_topo *t = load_xml(path, 1, e2, sizeof(e2));
            if (t) return t;
            break;
        }
        nanosleep(&nap, NULL);
    }
    return hetrun_topo_load_system(1, err, errlen);
}

void hetrun_topo_free(hetrun_topo *t) {
    if (!t) return;
    hwloc_topology_destroy(t->topo);
    free(t);
}

void hetrun_topo_count(const hetrun_topo *t, hetrun_topo_counts *out) {
    memset(out, 0, sizeof *out);
    if (!t) return;
    out->valid = 1;
    out->packages = hwloc_get_nbobjs_by_type(t->topo, HWLOC_OBJ_PACKAGE);
    out->numa_nodes = hwloc_get_nbobjs_by_type(t->topo, HWLOC_OBJ_NUMANODE);
    out->cores = hwloc_get_nbobjs_by_type(t->topo, HWLOC_OBJ_CORE);
    out->pus = hwloc_get_nbobjs_by_type(t->topo, HWLOC_OBJ_PU);
    hwloc_obj_t root = hwloc_get_root_obj(t->topo);
    out->memory_bytes = root ? (double)root->total_memory : 0.0;
}

int hetrun_pci_parse(const char *busid, unsigned *domain, unsigned *bus, unsigned *dev,
                     unsigned *func) {
    if (!busid || !*busid) return -1;
    unsigned d = 0, b, v, f;
    char tail;
    if (sscanf(busid, "%x:%x:%x.%x%c", &d, &b, &v, &f, &tail) == 4) {
    } else if (sscanf(busid, "%x:%x.%x%c", &b, &v, &f, &tail) == 3) {
        d = 0;
    } else {
        return -1;
    }
    if (b > 0xff || v > 0x1f || f > 0x7) return -1;
    *domain = d;
    *bus = b;
    *dev = v;
    *func = f;
    return 0;
}

static void locality_from_obj(const hetrun_topo *t, hwloc_obj_t anc, hetrun_locality *loc) {
    hwloc_bitmap_and(loc->cpuset, anc->cpuset, hwloc_topology_get_allowed_cpuset(t->topo));
    if (hwloc_bitmap_iszero(loc->cpuset)) hwloc_bitmap_copy(loc->cpuset, anc->cpuset);
    loc->numa_node = -1;
    if (anc->nodeset && hwloc_bitmap_weight(anc->nodeset) == 1)
        loc->numa_node = hwloc_bitmap_first(anc->nodeset);
}

int hetrun_topo_locate(const hetrun_topo *t, const char *pci_bus_id, const char *osdev_name,
                       hetrun_locality *loc) {
    memset(loc, 0, sizeof(*loc));
    loc->cpuset = hwloc_bitmap_alloc();
    if (!loc->cpuset) return -1;
    unsigned d, b, v, f;
    if (t->has_io && hetrun_pci_parse(pci_bus_id, &d, &b, &v, &f) == 0) {
        hwloc_obj_t pci = hwloc_get_pcidev_by_busid(t->topo, d, b, v, f);
        hwloc_obj_t anc = pci ? hwloc_get_non_io_ancestor_obj(t->topo, pci) : NULL;
        if (anc && anc->cpuset) {
            locality_from_obj(t, anc, loc);
            snprintf(loc->how, sizeof(loc->how), "pci");
            return 0;
        }
    }
    if (t->has_io && osdev_name && *osdev_name) {
        hwloc_obj_t o = NULL;
        while ((o = hwloc_get_next_osdev(t->topo, o)) != NULL) {
            if (o->name && strcmp(o->name, osdev_name) == 0) {
                hwloc_obj_t anc = hwloc_get_non_io_ancestor_obj(t->topo, o);
                if (anc && anc->cpuset) {
                    locality_from_obj(t, anc, loc);
                    snprintf(loc->how, sizeof(loc->how), "osdev");
                    return 0;
                }
            }
        }
    }
    hwloc_obj_t root = hwloc_get_root_obj(t->topo);
    locality_from_obj(t, root, loc);
    snprintf(loc->how, sizeof(loc->how), "machine");
    return 0;
}

void hetrun_locality_fini(hetrun_locality *loc) {
    if (loc && loc->cpuset) hwloc_bitmap_free(loc->cpuset);
    if (loc) loc->cpuset = NULL;
}

static int is_accel_osdev(hwloc_obj_t o) {
    return o->attr && (o->attr->osdev.type == HWLOC_OBJ_OSDEV_GPU ||
                       o->attr->osdev.type == HWLOC_OBJ_OSDEV_COPROC);
}

static int has_prefix_ci(const char *s, const char *prefix) {
    return s && strncasecmp(s, prefix, strlen(prefix)) == 0;
}

/* An OS device of a compute runtime: co-processors (CUDA, OpenCL, Level Zero, VE) and the
 * GPU views of NVML and ROCm SMI. DRM's "card0"/"renderD128" are not: every display
 * adapter has them. */
static int is_compute_osdev(hwloc_obj_t o) {
    if (o->attr->osdev.type == HWLOC_OBJ_OSDEV_COPROC) return 1;
    static const char *const runtimes[] = {"CUDA", "NVML", "RSMI", "OpenCL", "LevelZero", "ze"};
    const char *backend = hwloc_obj_get_info_by_name(o, "Backend");
    for (size_t i = 0; i < sizeof runtimes / sizeof runtimes[0]; i++)
        if (has_prefix_ci(o->subtype, runtimes[i]) ||
            (backend && strcasecmp(backend, runtimes[i]) == 0) ||
            (strcmp(runtimes[i], "ze") != 0 && has_prefix_ci(o->name, runtimes[i])))
            return 1;
    return 0;
}

/* PCI classes of compute devices: 3D controller, processing accelerator, co-processor.
 * A VGA controller (0x0300: the BMC's ASPEED or Matrox chip) is not one. */
static int is_accel_class(hwloc_obj_t pci) {
    unsigned c = pci->attr->pcidev.class_id;
    return c == 0x0302 || c == 0x1200 || c == 0x0b40;
}

static hwloc_obj_t pci_parent(hwloc_obj_t o) {
    hwloc_obj_t p = o->parent;
    while (p && p->type == HWLOC_OBJ_OS_DEVICE)
        p = p->parent;
    return p && p->type == HWLOC_OBJ_PCI_DEVICE ? p : NULL;
}

static int same_slot(hwloc_obj_t a, hwloc_obj_t b) {
    return a->attr->pcidev.domain == b->attr->pcidev.domain &&
           a->attr->pcidev.bus == b->attr->pcidev.bus && a->attr->pcidev.dev == b->attr->pcidev.dev;
}

/* May the OS device `o` receive ranks? Without a PCI parent only a compute runtime's
 * device may; on a PCI slot (all functions of domain:bus:device) any GPU view may when
 * the slot has a compute runtime's OS device or an accelerator-class function. */
static int is_compute_device(const hetrun_topo *t, hwloc_obj_t o) {
    hwloc_obj_t p = pci_parent(o);
    if (!p) return is_compute_osdev(o);
    hwloc_obj_t q = NULL;
    while ((q = hwloc_get_next_pcidev(t->topo, q)) != NULL)
        if (same_slot(p, q) && is_accel_class(q)) return 1;
    hwloc_obj_t x = NULL;
    while ((x = hwloc_get_next_osdev(t->topo, x)) != NULL) {
        if (!is_accel_osdev(x) || !is_compute_osdev(x)) continue;
        hwloc_obj_t xp = pci_parent(x);
        if (xp && same_slot(p, xp)) return 1;
    }
    return 0;
}

static int cmp_topo_dev(const void *a, const void *b) {
    const hetrun_topo_device *x = a, *y = b;
    /* Devices without a PCI id keep their discovery order after the PCI ones. */
    int xe = x->info.pci_bus_id[0] == '\0', ye = y->info.pci_bus_id[0] == '\0';
    if (xe != ye) return xe - ye;
    if (xe) return 0;
    return strcmp(x->info.pci_bus_id, y->info.pci_bus_id);
}

int hetrun_topo_accelerators(const hetrun_topo *t, hetrun_topo_device **devs, int *ndevs) {
    *devs = NULL;
    *ndevs = 0;
    int cap = 0, n = 0;
    hetrun_topo_device *v = NULL;
    hwloc_obj_t o = NULL;
    while ((o = hwloc_get_next_osdev(t->topo, o)) != NULL) {
        if (!is_accel_osdev(o) || !is_compute_device(t, o)) continue;
        hwloc_obj_t p = pci_parent(o);
        char busid[32] = "";
        unsigned dom = 0, bus = 0, dv = 0;
        int has_pci = p != NULL;
        if (has_pci) {
            dom = p->attr->pcidev.domain;
            bus = p->attr->pcidev.bus;
            dv = p->attr->pcidev.dev;
            snprintf(busid, sizeof(busid), "%04x:%02x:%02x.%x", dom, bus, dv,
                     (unsigned)p->attr->pcidev.func);
        }
        int found = -1;
        for (int i = 0; has_pci && i < n; i++) {
            unsigned d2, b2, v2, f2;
            if (hetrun_pci_parse(v[i].info.pci_bus_id, &d2, &b2, &v2, &f2) == 0 && d2 == dom &&
                b2 == bus && v2 == dv) {
                found = i;
                break;
            }
        }
        /* Name: a runtime's GPUModel, else the PCI name (a device only DRM shows), else
         * the OS device's name. */
        const char *model = hwloc_obj_get_info_by_name(o, "GPUModel");
        const char *pciname = p ? hwloc_obj_get_info_by_name(p, "PCIDevice") : NULL;
        if (found >= 0) {
            hetrun_topo_device *d = &v[found];
            size_t l = strlen(d->osdevs);
            snprintf(d->osdevs + l, sizeof(d->osdevs) - l, ",%s", o->name ? o->name : "?");
            if (strcmp(busid, d->info.pci_bus_id) < 0)
                snprintf(d->info.pci_bus_id, sizeof(d->info.pci_bus_id), "%s", busid);
            size_t first = strcspn(d->osdevs, ",");
            int named_by_osdev =
                strlen(d->info.name) == first && strncmp(d->info.name, d->osdevs, first) == 0;
            if (model && (named_by_osdev || (pciname && strncmp(d->info.name, pciname, 127) == 0)))
                snprintf(d->info.name, sizeof(d->info.name), "%.127s", model);
            continue;
        }
        if (n == cap) {
            int nc = cap ? cap * 2 : 16;
            hetrun_topo_device *nv = realloc(v, (size_t)nc * sizeof(*nv));
            if (!nv) {
                free(v);
                return -1;
            }
            v = nv;
            cap = nc;
        }
        hetrun_topo_device *d = &v[n++];
        memset(d, 0, sizeof(*d));
        d->info.struct_size = sizeof(d->info);
        d->info.kind = o->attr->osdev.type == HWLOC_OBJ_OSDEV_GPU ? HETRUN_DEVICE_GPU
                                                                  : HETRUN_DEVICE_ACCELERATOR;
        snprintf(d->osdevs, sizeof(d->osdevs), "%s", o->name ? o->name : "?");
        snprintf(d->info.name, sizeof(d->info.name), "%.127s",
                 model     ? model
                 : pciname ? pciname
                           : d->osdevs);
        const char *vendor = hwloc_obj_get_info_by_name(o, "GPUVendor");
        if (vendor) snprintf(d->info.vendor, sizeof(d->info.vendor), "%s", vendor);
        snprintf(d->info.pci_bus_id, sizeof(d->info.pci_bus_id), "%s", busid);
    }
    /* A GPU seen by CUDA and NVML is a GPU even if its first view was a co-processor. */
    for (int i = 0; i < n; i++)
        if (strstr(v[i].osdevs, "cuda") || strstr(v[i].osdevs, "nvml") ||
            strstr(v[i].osdevs, "rsmi") || strstr(v[i].osdevs, "card"))
            v[i].info.kind = HETRUN_DEVICE_GPU;
    if (n > 1) qsort(v, (size_t)n, sizeof(*v), cmp_topo_dev);
    *devs = v;
    *ndevs = n;
    return 0;
}

int hetrun_cpuset_to_list(hwloc_const_bitmap_t set, int **cpus, int *ncpus) {
    int w = hwloc_bitmap_weight(set);
    *cpus = NULL;
    *ncpus = 0;
    if (w <= 0) return 0;
    int *v = malloc((size_t)w * sizeof(int));
    if (!v) return -1;
    int i = 0;
    unsigned id;
    hwloc_bitmap_foreach_begin(id, set) {
        v[i++] = (int)id;
    }
    hwloc_bitmap_foreach_end();
    *cpus = v;
    *ncpus = i;
    return 0;
}
