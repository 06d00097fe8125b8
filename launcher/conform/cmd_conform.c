/* `hetrun conform --backend NAME`: the certificate of a backend module. The module facts come
 * from a child (as every group's do), then each selected check group runs on each device in a
 * child of its own, then the training run once; the certificate is printed (table or JSON)
 * and written with --out. Exit: 0 passed, 1 a check failed, 2 usage, 4 no such module or
 * refused, 5 nothing selected, 77 backend unavailable here. */
#include <getopt.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/commands.h"
#include "conform/conform.h"
#include "kernels/catalogue.h"
#include "util/exitcodes.h"
#include "util/log.h"

const char *const conform_group_names[] = {"ops",       "invalid",       "copy",        "events",
                                           "free",      "handles",       "concurrency", "train",
                                           "telemetry", "const_operand", NULL};

/* The groups in run order: selecting bit, check name (for a crash), body, time limit. */
static const struct {
    unsigned bit;
    const char *name;
    conform_group_fn fn;
    double limit_s;
} groups[] = {
    {CONFORM_CHECK_OPS, "ops", conform_group_ops, 3600},
    {CONFORM_CHECK_INVALID, "invalid_descriptors", conform_group_invalid, 120},
    {CONFORM_CHECK_COPY, "copy", conform_group_copy, 120},
    {CONFORM_CHECK_EVENTS, "events", conform_group_events, 120},
    {CONFORM_CHECK_FREE, "mem_free_pending", conform_group_free, 120},
    {CONFORM_CHECK_FREE, "mem_free_releases", conform_group_leak, 300},
    {CONFORM_CHECK_HANDLES, "invalid_handles", conform_group_handles, 120},
    {CONFORM_CHECK_CONCURRENCY, "concurrency", conform_group_concurrency, 300},
    {CONFORM_CHECK_TELEMETRY, "telemetry", conform_group_telemetry, 120},
    {CONFORM_CHECK_CONST_OPERAND, "const_operand", conform_group_const_operand, 120},
};

static void usage(FILE *out) {
    fprintf(out,
            "usage: hetrun conform --backend NAME [--device N|all] [--format table|json]\n"
            "                      [--out CERT.json] [--checks LIST] [--op OP] [--dtype T]\n"
            "                      [--quick] [--verbose]\n"
            "Certifies a backend module: every op x dtype it claims against the reference,\n"
            "and the ABI contract (copies, in-place, beta 0, events, mem_free, invalid\n"
            "handles, two queues, a 2-rank training run, constant operands), on every\n"
            "device. Each check group runs in a child process: a crash or hang fails that\n"
            "check, by name.\n"
            "  --device N|all     devices to test (default: all)\n"
            "  --format F         table (default) or json on stdout\n"
            "  --out FILE         also write the JSON certificate to FILE\n"
            "  --checks LIST      comma list of ops,invalid,copy,events,free,handles,\n"
            "                     concurrency,train,telemetry,const_operand (default: all)\n"
            "  --op, --dtype      only this op / input dtype in the ops group (and, without\n"
            "                     --checks, only the ops group)\n"
            "  --quick            skip the large cases\n"
            "  --verbose          print every case, not only failures\n"
            "exit: 0 passed, 1 a check failed, 2 usage, 4 no such backend or module refused,\n"
            "      5 nothing selected to test, 77 backend unavailable here (docs/exit-codes.md)\n");
}

static int parse_checks(const char *list, unsigned *bits) {
    char *copy = strdup(list), *save = NULL;
    *bits = 0;
    int rc = 0;
    for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        int found = strcmp(t, "all") == 0;
        if (found) *bits |= CONFORM_CHECK_ALL;
        for (int i = 0; !found && conform_group_names[i]; i++)
            if (strcmp(t, conform_group_names[i]) == 0) *bits |= 1u << i, found = 1;
        if (!found) {
            fprintf(stderr, "hetrun conform: --checks: unknown group '%s'\n", t);
            rc = -1;
        }
    }
    free(copy);
    return rc;
}

/* Folder of a file path (for the executable and the module). */
static void dir_of(const char *path, char *out, size_t len) {
    char *copy = strdup(path);
    snprintf(out, len, "%s", copy ? dirname(copy) : ".");
    free(copy);
}

int hetrun_cmd_conform(int argc, char **argv) {
    static const struct option longopts[] = {{"backend", required_argument, NULL, 'b'},
                                             {"device", required_argument, NULL, 'd'},
                                             {"format", required_argument, NULL, 'f'},
                                             {"out", required_argument, NULL, 'O'},
                                             {"checks", required_argument, NULL, 'c'},
                                             {"op", required_argument, NULL, 'o'},
                                             {"dtype", required_argument, NULL, 't'},
                                             {"quick", no_argument, NULL, 'q'},
                                             {"verbose", no_argument, NULL, 'v'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    conform_opts o;
    memset(&o, 0, sizeof o);
    o.checks = CONFORM_CHECK_ALL;
    const char *device_arg = "all", *format = "table", *out_path = NULL;
    int c;
    bool checks_given = false;
    optind = 1;
    while ((c = getopt_long(argc, argv, "b:d:f:O:c:o:t:qvh", longopts, NULL)) != -1) {
        switch (c) {
        case 'b': o.backend = optarg; break;
        case 'd': device_arg = optarg; break;
        case 'f': format = optarg; break;
        case 'O': out_path = optarg; break;
        case 'c':
            if (parse_checks(optarg, &o.checks) != 0) return HETRUN_EXIT_USAGE;
            checks_given = true;
            break;
        case 'o': o.only_op = optarg; break;
        case 't': o.only_dtype = optarg; break;
        case 'q': o.quick = true; break;
        case 'v': o.verbose = true; break;
        case 'h': usage(stdout); return HETRUN_EXIT_OK;
        default: usage(stderr); return HETRUN_EXIT_USAGE;
        }
    }
    /* --op/--dtype narrow the numbers: alone, they mean the ops group only. */
    if ((o.only_op || o.only_dtype) && !checks_given) o.checks = CONFORM_CHECK_OPS;
    const bool json = strcmp(format, "json") == 0;
    if (!o.backend || optind != argc || (!json && strcmp(format, "table") != 0)) {
        fprintf(stderr, "hetrun conform: %s\n",
                !o.backend       ? "--backend NAME is required"
                : optind != argc ? "unexpected argument"
                                 : "--format must be table or json");
        usage(stderr);
        return HETRUN_EXIT_USAGE;
    }
    char *end = NULL;
    long only_device = strcmp(device_arg, "all") == 0 ? -1 : strtol(device_arg, &end, 10);
    if (only_device < -1 || (end && (*end || end == device_arg))) {
        fprintf(stderr, "hetrun conform: --device '%s': a device index or 'all'\n", device_arg);
        return HETRUN_EXIT_USAGE;
    }
    if (o.only_op && hetrun_op_from_name(o.only_op) < 0) {
        fprintf(stderr, "hetrun conform: unknown op '%s' (docs/ops.md lists them)\n", o.only_op);
        return HETRUN_EXIT_USAGE;
    }
    if (o.only_dtype && hetrun_dtype_from_name(o.only_dtype) < 0) {
        fprintf(stderr, "hetrun conform: unknown dtype '%s'\n", o.only_dtype);
        return HETRUN_EXIT_USAGE;
    }
    hetrun_log_init_from_env();
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    exe[n > 0 ? n : 0] = '\0';
    dir_of(exe, o.exe_dir, sizeof o.exe_dir);

    conform_results res = {NULL, 0, 0};
    /* Where the loader's child probe plugs in: the module facts, from a child. */
    const char *probe_s = getenv("HETRUN_PROBE_TIMEOUT");
    const double load_limit = probe_s && atof(probe_s) > 0 ? atof(probe_s) : 60.0;
    int rc = conform_isolate("load", conform_group_module, &o, -1, load_limit, &res);
    int ndev = 0;
    for (int i = 0; i < res.count; i++)
        if (res.items[i].type == CONFORM_REC_MODULE) {
            ndev = res.items[i].unsup;
            dir_of(res.items[i].detail, o.module_dir, sizeof o.module_dir);
        }
    if (rc != 0 && !ndev) { /* crashed or hung before saying anything: name the file */
        char path[4096] = "";
        hetrun_loader_find(o.backend, path, sizeof path);
        for (int i = 0; i < res.count; i++)
            if (res.items[i].type == CONFORM_REC_CHECK && path[0] &&
                !strstr(res.items[i].detail, path)) {
                char detail[sizeof res.items[i].detail];
                snprintf(detail, sizeof detail, "%.2000s: %s", path, res.items[i].detail);
                snprintf(res.items[i].detail, sizeof res.items[i].detail, "%s", detail);
            }
    }
    if (rc == HETRUN_EXIT_SKIPPED || rc == HETRUN_EXIT_BACKEND) {
        for (int i = 0; i < res.count; i++)
            if (res.items[i].type == CONFORM_REC_CHECK)
                fprintf(stderr, "hetrun conform: %s\n", res.items[i].detail);
        free(res.items);
        return rc;
    }
    if (only_device >= ndev && rc == 0) {
        fprintf(stderr, "hetrun conform: backend %s has %d devices, no device %ld\n", o.backend,
                ndev, only_device);
        free(res.items);
        return HETRUN_EXIT_BACKEND;
    }
    if (!json) {
        printf("hetrun conform: backend %s, %s, vs %s\n", o.backend,
               only_device < 0 ? "every device" : "one device",
               strcmp(o.backend, "cpu") == 0 ? "kernels/reference.c (double)" : "the cpu backend");
        fflush(stdout);
    }
    for (int dev = 0; rc == 0 && dev < ndev; dev++) {
        if (only_device >= 0 && dev != only_device) continue;
        for (size_t g = 0; g < sizeof groups / sizeof groups[0]; g++)
            if (o.checks & groups[g].bit)
                conform_isolate(groups[g].name, groups[g].fn, &o, dev, groups[g].limit_s, &res);
    }
    if (rc == 0 && (o.checks & CONFORM_CHECK_TRAIN))
        conform_isolate("train_data_parallel", conform_group_train, &o, -1, 300, &res);

    int pass = 0, fail = 0;
    for (int i = 0; i < res.count; i++) {
        const conform_record *r = &res.items[i];
        if (r->type != CONFORM_REC_CHECK && r->type != CONFORM_REC_OP) continue;
        if (r->type == CONFORM_REC_CHECK && strcmp(r->name, "load") == 0) continue;
        r->status == CONFORM_FAIL ? fail++ : r->status == CONFORM_PASS ? pass++ : 0;
    }
    if (rc != 0) fail++; /* the module crashed or hung while loading */
    const char *verdict = fail ? "fail" : pass ? "pass" : "nothing tested";
    if (json) {
        if (conform_write_json(&o, &res, verdict, "-") != 0) fail++;
    } else {
        conform_print_table(&o, &res, verdict);
    }
    if (out_path && conform_write_json(&o, &res, verdict, out_path) != 0) {
        free(res.items);
        return HETRUN_EXIT_FAILED;
    }
    free(res.items);
    return fail ? HETRUN_EXIT_FAILED : pass ? HETRUN_EXIT_OK : HETRUN_EXIT_NOTHING;
}
