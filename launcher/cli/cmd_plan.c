/**
 * @file launcher/cli/cmd_plan.c
 * @brief `hetrun plan JOB.yaml --ranks N [--nodes M] [--topology FILE.xml]`: the whole
 *        rank -> host -> device -> cpus plan, computed by the same code `hetrun run` uses
 *        (topo/plan.h), without running anything.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cli/backend_select.h"
#include "cli/commands.h"
#include "cli/job_needs.h"
#include "spec/spec.h"
#include "workloads/workload.h"
#include "topo/placement.h"
#include "topo/plan.h"
#include "topo/topology.h"
#include "util/exitcodes.h"

static void usage(FILE *out) {
    fprintf(out,
            "usage: hetrun plan JOB.yaml --ranks N [--nodes M] [--topology FILE.xml]\n"
            "                   [--backend NAME] [--format table|json]\n"
            "\n"
            "Prints where every rank would run (node, device, NUMA node, cpus, threads) with\n"
            "the job's `placement` settings (docs/placement.md), without running anything,\n"
            "then the ops and dtypes the job needs and whether the backend supports each\n"
            "(asked in a probe child; \"needs\" in JSON).\n"
            "\n"
            "options:\n"
            "  --ranks N          total ranks (required)\n"
            "  --nodes M          identical nodes; ranks are spread in blocks (default 1)\n"
            "  --topology FILE    plan for the hwloc XML FILE: its compute devices (GPUs and\n"
            "                     accelerators, never display adapters) are the devices\n"
            "  --backend NAME     without --topology: probe this backend instead of the job's\n"
            "                     `backends` list; with it, `cpu` plans CPU ranks\n"
            "  --format table     (default) one line per rank; json: the plan object\n"
            "  -h, --help         this text\n"
            "\n"
            "exit codes: 0 ok, 2 usage, 3 invalid spec, 4 bad topology file, no backend, or\n"
            "            the backend lacks an op the job needs\n");
}

/* Parses a positive int option value; -1 when invalid. */
static int parse_count(const char *s) {
    char *end = NULL;
    long v = s ? strtol(s, &end, 10) : -1;
    if (!s || end == s || *end || v <= 0 || v > 1000000) return -1;
    return (int)v;
}

int hetrun_cmd_plan(int argc, char **argv) {
    const char *spec = NULL, *topology = NULL, *backend = NULL;
    int ranks = -1, nodes = 1, json = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *val = NULL;
        const char *opts[] = {"--ranks", "--nodes", "--topology", "--backend", "--format"};
        int which = -1;
        for (int k = 0; k < 5; k++) {
            size_t n = strlen(opts[k]);
            if (strncmp(a, opts[k], n) == 0 && (a[n] == '\0' || a[n] == '=')) {
                which = k;
                val = a[n] == '=' ? a + n + 1 : (i + 1 < argc ? argv[++i] : NULL);
                break;
            }
        }
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return HETRUN_EXIT_OK;
        }
        if (which >= 0 && !val) {
            fprintf(stderr, "hetrun plan: %s needs a value\n", opts[which]);
            return HETRUN_EXIT_USAGE;
        }
        switch (which) {
        case 0:
            if ((ranks = parse_count(val)) < 0) {
                fprintf(stderr, "hetrun plan: --ranks '%s' is not a positive integer\n", val);
                return HETRUN_EXIT_USAGE;
            }
            break;
        case 1:
            if ((nodes = parse_count(val)) < 0) {
                fprintf(stderr, "hetrun plan: --nodes '%s' is not a positive integer\n", val);
                return HETRUN_EXIT_USAGE;
            }
            break;
        case 2: topology = val; break;
        case 3: backend = val; break;
        case 4:
            if (strcmp(val, "json") == 0)
                json = 1;
            else if (strcmp(val, "table") == 0)
                json = 0;
            else {
                fprintf(stderr, "hetrun plan: unknown format '%s' (expected table or json)\n", val);
                return HETRUN_EXIT_USAGE;
            }
            break;
        default:
            if (a[0] == '-' && a[1]) {
                fprintf(stderr, "hetrun plan: unknown option '%s' (see 'hetrun plan --help')\n", a);
                return HETRUN_EXIT_USAGE;
            }
            if (spec) {
                fprintf(stderr, "hetrun plan: one spec file only (got '%s' and '%s')\n", spec, a);
                return HETRUN_EXIT_USAGE;
            }
            spec = a;
        }
    }
    if (!spec || ranks < 0) {
        fprintf(stderr, "hetrun plan: %s\n",
                !spec ? "no spec file given" : "--ranks N is required");
        usage(stderr);
        return HETRUN_EXIT_USAGE;
    }
    if (nodes > ranks) {
        fprintf(stderr, "hetrun plan: --nodes %d is more than --ranks %d\n", nodes, ranks);
        return HETRUN_EXIT_USAGE;
    }

    hetrun_diags diags = {0};
    hetrun_job *job = NULL;
    if (hetrun_spec_load(spec, &job, &diags) != 0) {
        hetrun_diags_print(&diags, stderr);
        hetrun_diags_free(&diags);
        hetrun_job_free(job);
        return HETRUN_EXIT_INVALID_SPEC;
    }
    hetrun_diags_free(&diags);

    int rc = HETRUN_EXIT_BACKEND;
    char err[2048] = "";
    hetrun_topo *t = NULL;
    hetrun_plan_device *devs = NULL;
    int ndev = 0;
    char chosen[64] = "";
    if (topology) {
        t = hetrun_topo_load_xml(topology, err, sizeof(err));
        if (!t) {
            fprintf(stderr, "hetrun plan: %s\n", err);
            goto done;
        }
        if (backend && strcmp(backend, "cpu") == 0) {
            /* The cpu backend's one CPU device: every rank gets its share of the cores. */
            devs = calloc(1, sizeof(*devs));
            if (!devs) {
                fprintf(stderr, "hetrun plan: out of memory\n");
                rc = HETRUN_EXIT_FAILED;
                goto done;
            }
            devs[0].info.struct_size = sizeof(devs[0].info);
            devs[0].info.kind = HETRUN_DEVICE_CPU;
            snprintf(devs[0].info.name, sizeof(devs[0].info.name), "CPU");
            ndev = 1;
            snprintf(chosen, sizeof(chosen), "cpu");
        } else if (hetrun_plan_devices_from_topo(t, &devs, &ndev) != 0) {
            fprintf(stderr, "hetrun plan: out of memory listing the devices of %s\n", topology);
            rc = HETRUN_EXIT_FAILED;
            goto done;
        }
    } else {
        hetrun_probe_device *pd = NULL;
        int np = 0;
        char *one[1] = {(char *)backend};
        hetrun_string_list only = {one, 1};
        if (hetrun_backend_select(backend ? &only : &job->backends, job->cpu_fallback, chosen,
                                  sizeof(chosen), &pd, &np, err, sizeof(err)) != 0) {
            fprintf(stderr, "hetrun plan: no usable backend:\n%s", err);
            goto done;
        }
        devs = calloc((size_t)(np > 0 ? np : 1), sizeof(*devs));
        int need_io = 0;
        for (int i = 0; devs && i < np; i++) {
            devs[i].info = pd[i].info;
            devs[i].index = pd[i].index;
            snprintf(devs[i].osdev, sizeof(devs[i].osdev), "%.40s%d", chosen, pd[i].index);
            if (pd[i].info.kind != HETRUN_DEVICE_CPU) need_io = 1;
        }
        free(pd);
        ndev = np;
        if (!devs) {
            fprintf(stderr, "hetrun plan: out of memory for %d devices\n", np);
            rc = HETRUN_EXIT_FAILED;
            goto done;
        }
        t = hetrun_topo_load_system(need_io, err, sizeof(err));
        if (!t) {
            fprintf(stderr, "hetrun plan: %s\n", err);
            goto done;
        }
    }
    hetrun_plan_opts o = {job->placement.policy, job->placement.ranks_per_device,
                          job->placement.map.items, job->placement.map.count};
    cJSON *plan = hetrun_plan_job_json(t, devs, ndev, &o, ranks, nodes, err, sizeof(err));
    if (!plan) {
        /* The spec's placement does not fit this machine (map, ranks_per_device). */
        fprintf(stderr, "hetrun plan: %s: %s\n", spec, err);
        rc = HETRUN_EXIT_INVALID_SPEC;
        goto done;
    }
    /* This machine: the ranks would inherit this process's affinity and thread settings. */
    if (!topology && hetrun_plan_fit_inherited(plan, t) != 0) {
        fprintf(stderr, "hetrun plan: out of memory fitting the plan into the affinity\n");
        cJSON_Delete(plan);
        rc = HETRUN_EXIT_FAILED;
        goto done;
    }
    cJSON_AddStringToObject(plan, "spec", spec);
    cJSON_AddStringToObject(plan, "backend", chosen);
    cJSON_AddBoolToObject(plan, "bind", job->placement.bind);
    /* Which ops the job needs and whether the chosen backend supports them (no backend is
     * asked for a plan of another machine's topology). */
    int unsupported = hetrun_job_needs_json(
        job, topology ? HETRUN_NEEDS_NO_PROBE : HETRUN_NEEDS_ONE, chosen, plan);
    if (json) {
        char *s = cJSON_Print(plan);
        if (s) printf("%s\n", s);
        free(s);
    } else {
        if (chosen[0]) printf("backend: %s\n", chosen);
        hetrun_plan_print_table(plan, stdout);
        hetrun_job_needs_print(plan, stdout);
    }
    cJSON_Delete(plan);
    rc = HETRUN_EXIT_OK;
    if (unsupported > 0) {
        fprintf(stderr,
                "hetrun plan: backend %s does not support %d op%s this job needs (see "
                "\"needs\")\n",
                chosen, unsupported, unsupported == 1 ? "" : "s");
        rc = HETRUN_EXIT_BACKEND;
    }
done:
    free(devs);
    hetrun_topo_free(t);
    hetrun_job_free(job);
    return rc;
}
