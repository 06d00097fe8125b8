/* Binding within the inherited affinity (topo/affinity.h), the thread-count precedence
 * (topo/threads.h), and, run under `taskset -c LIST`, that hetrun_placement_apply_devices
 * keeps the process inside LIST and reports exactly the affinity /proc/self/status shows.
 * Usage: test_bind [EXPECTED_CPU_LIST] (the live part runs only with the argument). */
#define _GNU_SOURCE
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spec/job.h"
#include "topo/affinity.h"
#include "topo/mask_share.h"
#include "topo/placement.h"
#include "topo/threads.h"

#include "../check.h"

static hwloc_bitmap_t set_of(const char *list) {
    hwloc_bitmap_t b = hwloc_bitmap_alloc();
    if (b && *list) hwloc_bitmap_list_sscanf(b, list);
    return b;
}

static int fit_is(const char *planned, const char *inherited, const char *machine, int kind,
                  const char *want) {
    hwloc_bitmap_t p = set_of(planned), i = set_of(inherited), m = set_of(machine),
                   out = hwloc_bitmap_alloc(), w = set_of(want);
    int k = hetrun_affinity_fit(p, i, m, out);
    char got[128];
    hwloc_bitmap_list_snprintf(got, sizeof got, out);
    int ok = k == kind && hwloc_bitmap_isequal(out, w);
    if (!ok)
        fprintf(stderr, "fit(plan %s, inherited %s, machine %s) = %s %s, want %s %s\n", planned,
                inherited, machine, hetrun_affinity_fit_name(k), got,
                hetrun_affinity_fit_name(kind), want);
    hwloc_bitmap_free(p);
    hwloc_bitmap_free(i);
    hwloc_bitmap_free(m);
    hwloc_bitmap_free(out);
    hwloc_bitmap_free(w);
    return ok;
}

/* A fake environment for hetrun_threads_decide. */
static const char *fake_env[8][2];
static const char *fake_get(const char *name) {
    for (int i = 0; i < 8 && fake_env[i][0]; i++)
        if (strcmp(fake_env[i][0], name) == 0) return fake_env[i][1];
    return NULL;
}
static void fake_set(const char *a, const char *av, const char *b, const char *bv) {
    memset(fake_env, 0, sizeof fake_env);
    fake_env[0][0] = a, fake_env[0][1] = av;
    fake_env[1][0] = b, fake_env[1][1] = bv;
}

static void pure_checks(void) {
    /* The whole machine inherited: the plan as is. Unknown (empty) counts as the machine. */
    CHECK(fit_is("0-3", "0-7", "0-7", HETRUN_FIT_PLAN, "0-3"), "whole machine");
    CHECK(fit_is("0-3", "", "0-7", HETRUN_FIT_PLAN, "0-3"), "unknown inherited mask");
    /* Slurm -n1 -c1 jobs with masks 0x1 and 0x2: each plan (0-1) shrinks to its own cpu. */
    CHECK(fit_is("0-1", "0", "0-1", HETRUN_FIT_NARROWED, "0"), "slurm mask 0x1");
    CHECK(fit_is("0-1", "1", "0-1", HETRUN_FIT_NARROWED, "1"), "slurm mask 0x2");
    /* map_cpu:1,0: the plan wanted cpu 0, the scheduler said 1: the scheduler wins. */
    CHECK(fit_is("0", "1", "0-1", HETRUN_FIT_INHERITED, "1"), "disjoint");
    CHECK(fit_is("2-3", "0-5", "0-7", HETRUN_FIT_PLAN, "2-3"), "plan inside the mask");

    char src[160];
    fake_set("OMP_NUM_THREADS", "1", "OPENBLAS_NUM_THREADS", "2");
    CHECK(hetrun_threads_decide(fake_get, 8, 8, src, sizeof src) == 1 &&
              strcmp(src, "OMP_NUM_THREADS") == 0,
          "OMP_NUM_THREADS=1 must beat OPENBLAS_NUM_THREADS=2 (%s)", src);
    fake_set("OPENBLAS_NUM_THREADS", "3", "SLURM_CPUS_PER_TASK", "2");
    CHECK(hetrun_threads_decide(fake_get, 8, 8, src, sizeof src) == 3, "OPENBLAS over SLURM");
    fake_set("SLURM_CPUS_PER_TASK", "2", NULL, NULL);
    CHECK(hetrun_threads_decide(fake_get, 8, 8, src, sizeof src) == 2 &&
              strcmp(src, "SLURM_CPUS_PER_TASK") == 0,
          "SLURM_CPUS_PER_TASK over cores (%s)", src);
    CHECK(hetrun_threads_decide(fake_get, 1, 1, src, sizeof src) == 1 && strstr(src, "capped"),
          "SLURM_CPUS_PER_TASK capped to the rank's cpus (%s)", src);
    fake_set("OMP_NUM_THREADS", "4,2", NULL, NULL);
    CHECK(hetrun_threads_decide(fake_get, 8, 8, src, sizeof src) == 4, "nested OMP list");
    fake_set("OMP_NUM_THREADS", "lots", NULL, NULL);
    CHECK(hetrun_threads_decide(fake_get, 6, 8, src, sizeof src) == 6 && strstr(src, "ignored"),
          "malformed OMP_NUM_THREADS falls through to cores (%s)", src);
    fake_set(NULL, NULL, NULL, NULL);
    CHECK(hetrun_threads_decide(fake_get, 5, 8, src, sizeof src) == 5 && !strcmp(src, "cores"),
          "cores (%s)", src);
}

/* The shared-mask exchange: the other local rank's line is written first, as if it had
 * started earlier. Returns hetrun_mask_shared's answer for local rank 0 with mask 0-3. */
static int exchange(const char *dir, const char *other_line, double timeout_s) {
    char path[512], why[512];
    static int n;
    snprintf(path, sizeof path, "%s/mask-%d.txt", dir, n++);
    if (other_line) {
        FILE *f = fopen(path, "w");
        if (!f) return -9;
        fputs(other_line, f);
        fclose(f);
    }
    hwloc_bitmap_t m = set_of("0-3");
    int rc = hetrun_mask_shared(path, 0, 2, m, timeout_s, why, sizeof why);
    hwloc_bitmap_free(m);
    return rc;
}

static void exchange_checks(void) {
    char dir[] = "/tmp/hetrun-test-bind-XXXXXX";
    if (!mkdtemp(dir)) {
        CHECK(0, "mkdtemp failed");
        return;
    }
    CHECK(exchange(dir, "1 0-3\n", 5.0) == 1, "same mask: shared");
    CHECK(exchange(dir, "1 4-7\n", 5.0) == 0, "different mask: not shared");
    CHECK(exchange(dir, "7 0-3\n", 0.05) == -1, "a rank beyond the local size is ignored");
    CHECK(exchange(dir, NULL, 0.05) == -1, "the other rank never wrote: not known");
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0, "cleanup of %s", dir);
}

/* Cpus_allowed_list of this process, as the kernel says. */
static int proc_cpus(char *out, size_t len) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[4096];
    int found = 0;
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "Cpus_allowed_list:", 18) == 0) {
            char *v = line + 18;
            v += strspn(v, " \t");
            v[strcspn(v, "\n")] = '\0';
            snprintf(out, len, "%s", v);
            found = 1;
        }
    if (f) fclose(f);
    return found ? 0 : -1;
}

static void live_checks(const char *expected) {
    unsetenv("OMP_NUM_THREADS");
    unsetenv("OPENBLAS_NUM_THREADS");
    unsetenv("MKL_NUM_THREADS");
    unsetenv("SLURM_CPUS_PER_TASK");
    unsetenv("HWLOC_XMLFILE");
    hetrun_probe_device d;
    memset(&d, 0, sizeof d);
    d.info.struct_size = sizeof d.info;
    d.info.kind = HETRUN_DEVICE_CPU;
    snprintf(d.info.name, sizeof d.info.name, "cpu");
    hetrun_job job;
    memset(&job, 0, sizeof job);
    job.placement.policy = HETRUN_PLACE_CLOSEST;
    job.placement.bind = true;
    hetrun_placement p;
    char err[1024], proc[4096], mine[4096];
    int rc = hetrun_placement_apply_devices(&job, "cpu", &d, 1, &p, err, sizeof err);
    CHECK(rc == 0, "apply: %s", err);
    if (rc != 0) return;
    hetrun_cpus_format(p.cpus, p.ncpus, mine, sizeof mine);
    CHECK(proc_cpus(proc, sizeof proc) == 0, "no Cpus_allowed_list in /proc/self/status");
    CHECK(strcmp(mine, expected) == 0, "placement cpus %s, started under %s (widened?)", mine,
          expected);
    CHECK(strcmp(proc, mine) == 0, "placement says cpus %s, the kernel says %s", mine, proc);
    CHECK(p.bound, "not bound: %s", p.bind_note);
    char th[16];
    snprintf(th, sizeof th, "%d", p.threads);
    CHECK(p.threads >= 1 && p.threads <= p.ncpus && !strcmp(getenv("OMP_NUM_THREADS"), th) &&
              !strcmp(getenv("OPENBLAS_NUM_THREADS"), th),
          "threads %d for %d cpus, OMP %s OPENBLAS %s", p.threads, p.ncpus,
          getenv("OMP_NUM_THREADS"), getenv("OPENBLAS_NUM_THREADS"));
    printf("test_bind: started under %s: placement cpus %s (fit %s), kernel %s, threads %d\n",
           expected, mine, p.fit, proc, p.threads);
    /* Something binds after placement (as MPI_Init may): the read-back follows it. */
    int other = strcmp(expected, "0") == 0 ? 1 : 0;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(other, &set);
    if (sched_setaffinity(0, sizeof set, &set) == 0) {
        CHECK(hetrun_placement_read_back(&p) == 0, "read back failed");
        CHECK(p.ncpus == 1 && p.cpus[0] == other && !p.bound && strstr(p.bind_note, "changed"),
              "after rebinding to cpu %d: %d cpus, first %d, bound %d, note %s", other, p.ncpus,
              p.ncpus ? p.cpus[0] : -1, p.bound, p.bind_note);
    }
    hetrun_placement_free(&p);
}

int main(int argc, char **argv) {
    pure_checks();
    exchange_checks();
    if (argc > 1) live_checks(argv[1]);
    if (failures) {
        fprintf(stderr, "%d check(s) failed\n", failures);
        return 1;
    }
    printf("test_bind: all checks passed\n");
    return 0;
}
