/* Placement planning on real topologies (tests/data/topologies): properties, every policy,
 * map and ranks_per_device. Usage: test_plan TOPOLOGY_DIR */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spec/job.h"
#include "topo/plan.h"
#include "topo/topology.h"

#include "../check.h"

typedef struct fixture {
    const char *file;
    hetrun_topo *t;
    hetrun_plan_device *devs;
    int ndev;
} fixture;

static void load(fixture *f, const char *dir, const char *file, int expect_devs) {
    char path[4096], err[1024];
    snprintf(path, sizeof(path), "%s/%s", dir, file);
    f->file = file;
    f->t = hetrun_topo_load_xml(path, err, sizeof(err));
    if (!f->t) {
        fprintf(stderr, "FAIL: cannot load %s: %s\n", path, err);
        exit(1);
    }
    if (hetrun_plan_devices_from_topo(f->t, &f->devs, &f->ndev) != 0) {
        fprintf(stderr, "FAIL: devices of %s\n", path);
        exit(1);
    }
    CHECK(f->ndev == expect_devs, "%s: %d devices, expected %d", file, f->ndev, expect_devs);
}

static hwloc_obj_t numa_by_os(hwloc_topology_t t, int os) {
    hwloc_obj_t n = NULL;
    while ((n = hwloc_get_next_obj_by_type(t, HWLOC_OBJ_NUMANODE, n)) != NULL)
        if ((int)n->os_index == os) return n;
    return NULL;
}

static int plan(fixture *f, int policy, int64_t rpd, const int64_t *map, size_t nmap, int L,
                hetrun_rank_plan **out, char *err, size_t errlen) {
    hetrun_plan_opts o = {policy, rpd, map, nmap};
    return hetrun_plan_compute(f->t, f->devs, f->ndev, &o, L, out, err, errlen);
}

/* The properties every `closest` plan must have. */
static void check_closest(fixture *f, int L) {
    hetrun_rank_plan *p = NULL;
    char err[512];
    int rc = plan(f, HETRUN_PLACE_CLOSEST, 0, NULL, 0, L, &p, err, sizeof(err));
    CHECK(rc == 0, "%s L=%d: %s", f->file, L, err);
    if (rc != 0) return;
    hwloc_topology_t t = f->t->topo;
    int npu = hwloc_bitmap_weight(hwloc_topology_get_allowed_cpuset(t));
    int ncore = hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_CORE);
    int *per_dev = calloc((size_t)f->ndev + 1, sizeof(int));
    int per_numa[64] = {0}, dev_numa[64] = {0};
    hwloc_bitmap_t seen = hwloc_bitmap_alloc(), mine = hwloc_bitmap_alloc();
    hwloc_bitmap_t dom = hwloc_bitmap_alloc();
    for (int d = 0; d < f->ndev; d++) {
        hetrun_locality loc;
        hetrun_topo_locate(f->t, f->devs[d].info.pci_bus_id, "", &loc);
        hwloc_bitmap_or(dom, dom, loc.cpuset);
        hetrun_locality_fini(&loc);
    }
    int dom_pus = hwloc_bitmap_weight(dom);
    hwloc_bitmap_free(dom);
    for (int r = 0; r < L; r++) {
        CHECK(p[r].local_rank == r, "local_rank");
        CHECK(p[r].ncpus > 0, "%s L=%d rank %d has no cpus", f->file, L, r);
        CHECK(p[r].threads >= 1, "threads %d", p[r].threads);
        if (f->ndev > 0) {
            /* rpd 0: every rank gets a device. */
            CHECK(p[r].device >= 0 && p[r].device < f->ndev, "%s L=%d rank %d device %d", f->file,
                  L, r, p[r].device);
        } else {
            CHECK(p[r].device == -1, "cpu-only topology gave rank %d device %d", r, p[r].device);
        }
        hwloc_bitmap_zero(mine);
        for (int i = 0; i < p[r].ncpus; i++) {
            CHECK(hwloc_bitmap_isset(hwloc_topology_get_allowed_cpuset(t), (unsigned)p[r].cpus[i]),
                  "rank %d cpu %d not in the machine", r, p[r].cpus[i]);
            CHECK(i == 0 || p[r].cpus[i] > p[r].cpus[i - 1], "cpus not ascending");
            hwloc_bitmap_set(mine, (unsigned)p[r].cpus[i]);
        }
        /* Disjoint while there are enough PUs where the ranks must live (next to their
         * devices, or anywhere on a CPU-only node). */
        if (L <= (f->ndev > 0 ? dom_pus : npu))
            CHECK(!hwloc_bitmap_intersects(seen, mine), "%s L=%d rank %d cpus overlap another rank",
                  f->file, L, r);
        hwloc_bitmap_or(seen, seen, mine);
        if (L <= ncore)
            CHECK(p[r].threads == p[r].ncpus / (npu / ncore) || p[r].threads >= 1, "threads");
        if (p[r].device >= 0) {
            per_dev[p[r].device]++;
            hetrun_locality loc;
            hetrun_topo_locate(f->t, f->devs[p[r].device].info.pci_bus_id, "", &loc);
            CHECK(strcmp(loc.how, "pci") == 0, "%s device %d located by %s", f->file, p[r].device,
                  loc.how);
            CHECK(strcmp(p[r].locality, "pci") == 0, "rank locality %s", p[r].locality);
            hwloc_obj_t node = numa_by_os(t, loc.numa_node);
            CHECK(node != NULL, "%s device %d has no NUMA node", f->file, p[r].device);
            if (node) {
                CHECK(hwloc_bitmap_isincluded(mine, node->cpuset),
                      "%s L=%d rank %d cpus outside its device's NUMA node %d", f->file, L, r,
                      loc.numa_node);
                CHECK(p[r].numa_node == loc.numa_node, "rank numa %d, device numa %d",
                      p[r].numa_node, loc.numa_node);
                if (loc.numa_node < 64) per_numa[loc.numa_node]++, dev_numa[loc.numa_node] = 1;
            }
            hetrun_locality_fini(&loc);
        } else if (p[r].numa_node >= 0 && p[r].numa_node < 64) {
            per_numa[p[r].numa_node]++;
            dev_numa[p[r].numa_node] = 1;
        }
    }
    /* No two ranks share a device while devices are free; balanced per device. */
    if (f->ndev > 0) {
        int mn = L, mx = 0;
        for (int d = 0; d < f->ndev; d++) {
            mn = per_dev[d] < mn ? per_dev[d] : mn;
            mx = per_dev[d] > mx ? per_dev[d] : mx;
        }
        CHECK(mx - mn <= 1, "%s L=%d per-device ranks min %d max %d", f->file, L, mn, mx);
        if (L <= f->ndev) CHECK(mx == 1, "%s L=%d two ranks share a device", f->file, L);
    }
    /* Balanced per NUMA node (over the nodes that host devices, or all for CPU-only). */
    int mn = L, mx = 0;
    for (int n = 0; n < 64; n++)
        if (dev_numa[n] || (f->ndev == 0 && numa_by_os(t, n))) {
            mn = per_numa[n] < mn ? per_numa[n] : mn;
            mx = per_numa[n] > mx ? per_numa[n] : mx;
        }
    CHECK(mx - mn <= 1, "%s L=%d per-NUMA ranks min %d max %d", f->file, L, mn, mx);
    hwloc_bitmap_free(seen);
    hwloc_bitmap_free(mine);
    free(per_dev);
    hetrun_plan_free(p, L);
}

static void test_policies(fixture *dgx, fixture *one, fixture *cpu) {
    hetrun_rank_plan *p = NULL;
    char err[512];
    /* round-robin: rank r -> device r % D. */
    CHECK(plan(dgx, HETRUN_PLACE_ROUND_ROBIN, 0, NULL, 0, 20, &p, err, sizeof(err)) == 0, "%s",
          err);
    for (int r = 0; p && r < 20; r++)
        CHECK(p[r].device == r % 16, "rr rank %d dev %d", r, p[r].device);
    hetrun_plan_free(p, 20);
    /* pack with ranks_per_device 2: fill device 0, then 1... */
    CHECK(plan(dgx, HETRUN_PLACE_PACK, 2, NULL, 0, 5, &p, err, sizeof(err)) == 0, "%s", err);
    for (int r = 0; p && r < 5; r++)
        CHECK(p[r].device == r / 2, "pack rank %d dev %d", r, p[r].device);
    hetrun_plan_free(p, 5);
    /* pack without a cap spreads ceil(L/D) per device. */
    CHECK(plan(dgx, HETRUN_PLACE_PACK, 0, NULL, 0, 32, &p, err, sizeof(err)) == 0, "%s", err);
    for (int r = 0; p && r < 32; r++)
        CHECK(p[r].device == r / 2, "pack32 rank %d dev %d", r, p[r].device);
    hetrun_plan_free(p, 32);
    /* closest with 2 ranks on DGX-2 puts one rank behind each socket. */
    CHECK(plan(dgx, HETRUN_PLACE_CLOSEST, 0, NULL, 0, 2, &p, err, sizeof(err)) == 0, "%s", err);
    if (p)
        CHECK(p[0].numa_node == 0 && p[1].numa_node == 1, "closest 2: numa %d %d", p[0].numa_node,
              p[1].numa_node);
    hetrun_plan_free(p, 2);
    /* ranks_per_device caps: 20 ranks, 16 GPUs, 1 per device -> 4 CPU-only ranks. */
    CHECK(plan(dgx, HETRUN_PLACE_CLOSEST, 1, NULL, 0, 20, &p, err, sizeof(err)) == 0, "%s", err);
    int cpu_only = 0, used[16] = {0};
    for (int r = 0; p && r < 20; r++) {
        if (p[r].device < 0)
            cpu_only++;
        else
            CHECK(++used[p[r].device] == 1, "rpd 1: device %d used twice", p[r].device);
        CHECK(p[r].ncpus > 0, "rpd rank %d no cpus", r);
    }
    CHECK(cpu_only == 4, "rpd=1, 20 ranks: %d CPU-only ranks, expected 4", cpu_only);
    hetrun_plan_free(p, 20);
    /* One GPU, 4 ranks, rpd 1: rank 0 on the GPU (NUMA 1), 3 CPU-only ranks, disjoint cores. */
    CHECK(plan(one, HETRUN_PLACE_CLOSEST, 1, NULL, 0, 4, &p, err, sizeof(err)) == 0, "%s", err);
    if (p) {
        CHECK(p[0].device == 0 && p[0].numa_node == 1, "1gpu rank0 dev %d numa %d", p[0].device,
              p[0].numa_node);
        CHECK(strcmp(one->devs[0].info.pci_bus_id, "0000:84:00.0") == 0, "1gpu busid %s",
              one->devs[0].info.pci_bus_id);
        hwloc_bitmap_t seen = hwloc_bitmap_alloc();
        int total = 0;
        for (int r = 0; r < 4; r++) {
            if (r > 0) CHECK(p[r].device == -1, "1gpu rank %d dev %d", r, p[r].device);
            for (int i = 0; i < p[r].ncpus; i++) {
                CHECK(!hwloc_bitmap_isset(seen, (unsigned)p[r].cpus[i]), "1gpu overlap cpu %d",
                      p[r].cpus[i]);
                hwloc_bitmap_set(seen, (unsigned)p[r].cpus[i]);
            }
            total += p[r].ncpus;
            CHECK(p[r].threads == 4, "1gpu rank %d threads %d (8 cores per NUMA node / 2 ranks)", r,
                  p[r].threads);
        }
        CHECK(total == 32, "1gpu: %d PUs handed out, expected all 32", total);
        hwloc_bitmap_free(seen);
    }
    hetrun_plan_free(p, 4);
    /* map: explicit device per local rank, -1 CPU-only. */
    int64_t map[] = {3, -1, 15, 0};
    CHECK(plan(dgx, HETRUN_PLACE_MAP, 0, map, 4, 4, &p, err, sizeof(err)) == 0, "%s", err);
    if (p) {
        CHECK(p[0].device == 3 && p[1].device == -1 && p[2].device == 15 && p[3].device == 0,
              "map gave %d %d %d %d", p[0].device, p[1].device, p[2].device, p[3].device);
        CHECK(p[2].numa_node == 1 && p[0].numa_node == 0, "map numa %d %d", p[2].numa_node,
              p[0].numa_node);
    }
    hetrun_plan_free(p, 4);
    p = NULL;
    CHECK(plan(dgx, HETRUN_PLACE_MAP, 0, map, 4, 5, &p, err, sizeof(err)) == -1 && !p,
          "short map accepted");
    CHECK(strstr(err, "4 entries") && strstr(err, "5 local ranks"), "short map message: %s", err);
    int64_t bad[] = {16};
    CHECK(plan(dgx, HETRUN_PLACE_MAP, 0, bad, 1, 1, &p, err, sizeof(err)) == -1,
          "map to device 16 accepted");
    CHECK(strstr(err, "map[0] = 16") && strstr(err, "16 devices"), "bad map message: %s", err);
    int64_t twice[] = {1, 1};
    CHECK(plan(dgx, HETRUN_PLACE_MAP, 1, twice, 2, 2, &p, err, sizeof(err)) == -1,
          "map over ranks_per_device accepted");
    CHECK(strstr(err, "ranks_per_device=1"), "rpd map message: %s", err);
    CHECK(plan(dgx, 9, 0, NULL, 0, 1, &p, err, sizeof(err)) == -1, "policy 9 accepted");
    CHECK(plan(dgx, HETRUN_PLACE_CLOSEST, -1, NULL, 0, 1, &p, err, sizeof(err)) == -1,
          "negative rpd accepted");
    /* CPU-only machine: ranks spread over both NUMA nodes, whole cores each. */
    CHECK(plan(cpu, HETRUN_PLACE_CLOSEST, 0, NULL, 0, 4, &p, err, sizeof(err)) == 0, "%s", err);
    if (p) {
        CHECK(p[0].numa_node == 0 && p[1].numa_node == 1 && p[2].numa_node == 0 &&
                  p[3].numa_node == 1,
              "cpu-only numa %d %d %d %d", p[0].numa_node, p[1].numa_node, p[2].numa_node,
              p[3].numa_node);
        for (int r = 0; r < 4; r++)
            CHECK(p[r].threads == 3 && p[r].ncpus == 6, "cpu-only rank %d: %d threads %d cpus", r,
                  p[r].threads, p[r].ncpus);
    }
    hetrun_plan_free(p, 4);
    /* A CPU-kind device (cpu backend, PoCL): every rank uses device 0 with its core share. */
    hetrun_plan_device cdev;
    memset(&cdev, 0, sizeof(cdev));
    cdev.info.kind = HETRUN_DEVICE_CPU;
    snprintf(cdev.info.name, sizeof(cdev.info.name), "cpu");
    hetrun_plan_opts o = {HETRUN_PLACE_CLOSEST, 0, NULL, 0};
    CHECK(hetrun_plan_compute(cpu->t, &cdev, 1, &o, 3, &p, err, sizeof(err)) == 0, "%s", err);
    for (int r = 0; p && r < 3; r++)
        CHECK(p[r].device == 0 && p[r].ncpus >= 4, "cpu device rank %d", r);
    hetrun_plan_free(p, 3);
    /* Device without a PCI id falls back to its OS device, then the whole machine. */
    hetrun_plan_device nd;
    memset(&nd, 0, sizeof(nd));
    nd.info.kind = HETRUN_DEVICE_GPU;
    snprintf(nd.osdev, sizeof(nd.osdev), "opencl0d1");
    CHECK(hetrun_plan_compute(one->t, &nd, 1, &o, 1, &p, err, sizeof(err)) == 0, "%s", err);
    if (p)
        CHECK(strcmp(p[0].locality, "osdev") == 0 && p[0].numa_node == 1,
              "osdev fallback: %s numa %d", p[0].locality, p[0].numa_node);
    hetrun_plan_free(p, 1);
    snprintf(nd.osdev, sizeof(nd.osdev), "nosuch0");
    CHECK(hetrun_plan_compute(one->t, &nd, 1, &o, 1, &p, err, sizeof(err)) == 0, "%s", err);
    if (p)
        CHECK(strcmp(p[0].locality, "machine") == 0 && p[0].ncpus == 32 && p[0].threads == 16,
              "machine fallback: %s, %d cpus", p[0].locality, p[0].ncpus);
    hetrun_plan_free(p, 1);
    CHECK(hetrun_policy_parse("round-robin") == HETRUN_PLACE_ROUND_ROBIN, "parse");
    CHECK(hetrun_policy_parse("nearest") == -1, "parse bad");
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s TOPOLOGY_DIR\n", argv[0]);
        return 2;
    }
    fixture dgx, one, cpu;
    load(&dgx, argv[1], "nvidia-dgx2-16gpu.xml", 16);
    load(&one, argv[1], "2socket-1gpu-cuda-opencl.xml", 1);
    load(&cpu, argv[1], "2socket-cpu-only.xml", 0);
    for (int L = 1; L <= 32; L++) {
        check_closest(&dgx, L);
        check_closest(&one, L);
        check_closest(&cpu, L);
    }
    test_policies(&dgx, &one, &cpu);
    fixture *all[] = {&dgx, &one, &cpu};
    for (int i = 0; i < 3; i++) {
        free(all[i]->devs);
        hetrun_topo_free(all[i]->t);
    }
    char err[512];
    CHECK(hetrun_topo_load_xml("/nonexistent/topo.xml", err, sizeof(err)) == NULL, "missing file");
    CHECK(strstr(err, "/nonexistent/topo.xml") != NULL, "message names file: %s", err);
    if (failures) {
        fprintf(stderr, "%d check(s) failed\n", failures);
        return 1;
    }
    printf("test_plan: all checks passed (1..32 ranks on 3 topologies, policies, map)\n");
    return 0;
}
