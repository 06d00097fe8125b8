/* `hetrun backends`: every module found, where, loaded or refused and why, and every
 * device. Each module is probed in a child process under a time limit, so a module that
 * crashes or hangs in its init is reported, never fatal. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cli/commands.h"
#include "loader/loader.h"
#include "loader/probe.h"
#include "util/exitcodes.h"
#include "util/log.h"
#include "topo/device_json.h"

static void usage(FILE *out) {
    fprintf(out,
            "usage: hetrun backends [--format table|json] [--probe-timeout SECONDS]\n\n"
            "Lists every backend module found, in search order: HETRUN_BACKEND_PATH, the\n"
            "registration folders (<prefix>/etc/hetrun/backends.d, /etc/hetrun/backends.d:\n"
            "one NAME.conf per module holding its absolute path), the install's module\n"
            "folder (and the build tree, for a hetrun run from it). Each module is opened in\n"
            "a child process: loaded, unavailable (no driver/device), refused (broken module,\n"
            "ABI or name mismatch, NULL required function), crashed (signal), hung (no answer\n"
            "within the time limit) or exited; shadowed when a module of the same name comes\n"
            "first. Every line names the module's path, ABI and version.\n\n"
            "  --probe-timeout S  time limit per module (default HETRUN_PROBE_TIMEOUT or 5)\n\n"
            "exit codes: 0 ok (also when some modules are unavailable or shadowed), 2 usage,\n"
            "            4 a module was refused, crashed, hung or exited, or none was found\n");
}

static cJSON *module_json(const hetrun_backend_module *m, const hetrun_probe_result *r,
                          const char *state, const char *reason) {
    cJSON *mo = cJSON_CreateObject();
    if (!mo) return NULL;
    cJSON_AddStringToObject(mo, "name", m->name);
    cJSON_AddStringToObject(mo, "path", m->path);
    cJSON_AddStringToObject(mo, "origin", m->origin);
    cJSON_AddStringToObject(mo, "state", state);
    if (reason && *reason)
        cJSON_AddStringToObject(mo, "reason", reason);
    else
        cJSON_AddNullToObject(mo, "reason");
    if (r && r->table_read) {
        char abi[32];
        snprintf(abi, sizeof abi, "%u.%u", r->abi_major, r->abi_minor);
        cJSON_AddStringToObject(mo, "abi", abi);
        cJSON_AddStringToObject(mo, "version", r->version);
        cJSON_AddStringToObject(mo, "ops_name", r->ops_name);
    } else {
        cJSON_AddNullToObject(mo, "abi");
        cJSON_AddNullToObject(mo, "version");
        cJSON_AddNullToObject(mo, "ops_name");
    }
    if (r) {
        cJSON_AddStringToObject(mo, "stage", r->stage);
        cJSON_AddNumberToObject(mo, "probe_seconds", r->elapsed_s);
        if (r->outcome == HETRUN_PROBE_CRASHED) cJSON_AddNumberToObject(mo, "signal", r->signal);
        if (r->outcome == HETRUN_PROBE_EXITED)
            cJSON_AddNumberToObject(mo, "exit_status", r->exit_status);
        if (r->outcome == HETRUN_PROBE_LOADED)
            cJSON_AddBoolToObject(mo, "collectives", r->collectives != 0);
    }
    if (m->state == HETRUN_MODULE_SHADOWED)
        cJSON_AddStringToObject(mo, "shadowed_by", m->shadowed_by);
    cJSON *devs = cJSON_AddArrayToObject(mo, "devices");
    for (int d = 0; r && devs && d < r->device_count; d++)
        cJSON_AddItemToArray(devs, hetrun_device_info_json(&r->devices[d].info, d));
    return mo;
}

static void print_row(const hetrun_backend_module *m, const hetrun_probe_result *r,
                      const char *state, const char *reason) {
    char abi[32] = "-";
    if (r && r->table_read) snprintf(abi, sizeof abi, "%u.%u", r->abi_major, r->abi_minor);
    printf("%-10s %-11s %-5s %-14s %s (%s)\n", m->name, state, abi,
           r && r->table_read && r->version[0] ? r->version : "-", m->path, m->origin);
    if (reason && *reason) printf("%-10s %s\n", "", reason);
    for (int d = 0; r && d < r->device_count; d++)
        printf("%-10s device %d: %s (pci %s)\n", "", d, r->devices[d].info.name,
               r->devices[d].info.pci_bus_id[0] ? r->devices[d].info.pci_bus_id : "-");
    if (r && r->outcome == HETRUN_PROBE_LOADED && r->device_count == 0)
        printf("%-10s (no devices)\n", "");
}

int hetrun_cmd_backends(int argc, char **argv) {
    static const struct option longopts[] = {{"format", required_argument, NULL, 'f'},
                                             {"probe-timeout", required_argument, NULL, 't'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    int json = 0, c;
    double timeout = 0;
    hetrun_log_init_from_env();
    optind = 1;
    while ((c = getopt_long(argc, argv, "f:h", longopts, NULL)) != -1) {
        if (c == 'h') {
            usage(stdout);
            return HETRUN_EXIT_OK;
        }
        if (c == 'f' && (strcmp(optarg, "json") == 0 || strcmp(optarg, "table") == 0)) {
            json = strcmp(optarg, "json") == 0;
            continue;
        }
        if (c == 't') {
            char *end = NULL;
            timeout = strtod(optarg, &end);
            if (end != optarg && !*end && timeout > 0 && timeout <= 3600) continue;
            fprintf(stderr,
                    "hetrun backends: --probe-timeout '%s' is not a number of seconds in "
                    "(0, 3600]\n",
                    optarg);
            return HETRUN_EXIT_USAGE;
        }
        if (c == 'f')
            fprintf(stderr, "hetrun backends: unknown format '%s' (table or json)\n", optarg);
        usage(stderr);
        return HETRUN_EXIT_USAGE;
    }
    if (optind != argc) {
        fprintf(stderr, "hetrun backends: unexpected argument '%s'\n", argv[optind]);
        return HETRUN_EXIT_USAGE;
    }
    if (timeout <= 0) timeout = hetrun_probe_default_timeout();
    hetrun_module_list list;
    if (hetrun_loader_scan_all(&list) != 0) {
        fprintf(stderr, "hetrun backends: out of memory listing modules\n");
        return HETRUN_EXIT_FAILED;
    }
    cJSON *root = cJSON_CreateObject();
    cJSON *search = cJSON_AddArrayToObject(root, "search_path");
    char **dirs = hetrun_loader_search_dirs();
    for (size_t i = 0; dirs && dirs[i]; i++)
        cJSON_AddItemToArray(search, cJSON_CreateString(dirs[i]));
    hetrun_loader_free_dirs(dirs);
    cJSON_AddNumberToObject(root, "probe_timeout_s", timeout);
    cJSON *mods = cJSON_AddArrayToObject(root, "backends");
    int broken = 0, winners = 0;
    if (!json)
        printf("%-10s %-11s %-5s %-14s %s\n", "backend", "state", "ABI", "version",
               "path (found in)");
    /* Every module at once: n hung modules cost one time limit. */
    const char **paths = calloc(list.count ? list.count : 1, sizeof *paths);
    hetrun_probe_options *opts = calloc(list.count ? list.count : 1, sizeof *opts);
    hetrun_probe_result *res = calloc(list.count ? list.count : 1, sizeof *res);
    size_t *slot = calloc(list.count ? list.count : 1, sizeof *slot);
    if (!paths || !opts || !res || !slot) {
        fprintf(stderr, "hetrun backends: out of memory for %zu probes\n", list.count);
        free(paths);
        free(opts);
        free(res);
        free(slot);
        cJSON_Delete(root);
        hetrun_module_list_free(&list);
        return HETRUN_EXIT_FAILED;
    }
    size_t nprobe = 0;
    for (size_t i = 0; i < list.count; i++)
        if (list.items[i].state == HETRUN_MODULE_FOUND) {
            slot[i] = nprobe;
            paths[nprobe] = list.items[i].path;
            opts[nprobe++] =
                (hetrun_probe_options){.timeout_s = timeout, .name = list.items[i].name};
        }
    hetrun_probe_modules(nprobe, paths, opts, res);
    for (size_t i = 0; i < list.count; i++) {
        const hetrun_backend_module *m = &list.items[i];
        const hetrun_probe_result *rp = m->state == HETRUN_MODULE_FOUND ? &res[slot[i]] : NULL;
        const char *state =
            rp ? hetrun_probe_outcome_name(rp->outcome) : hetrun_module_state_name(m->state);
        const char *reason = rp ? rp->reason : m->reason;
        winners += m->state != HETRUN_MODULE_SHADOWED;
        broken += m->state == HETRUN_MODULE_REFUSED || (rp && rp->outcome != HETRUN_PROBE_LOADED &&
                                                        rp->outcome != HETRUN_PROBE_UNAVAILABLE);
        cJSON *mo = module_json(m, rp, state, reason);
        if (mo) cJSON_AddItemToArray(mods, mo);
        if (!json) print_row(m, rp, state, reason);
    }
    for (size_t i = 0; i < nprobe; i++)
        hetrun_probe_result_free(&res[i]);
    free(paths);
    free(opts);
    free(res);
    free(slot);
    if (json) {
        char *text = cJSON_Print(root);
        if (text) puts(text);
        cJSON_free(text);
    } else if (winners == 0) {
        printf("(no backend modules found; set HETRUN_BACKEND_PATH or register one in "
               "<prefix>/etc/hetrun/backends.d)\n");
    }
    cJSON_Delete(root);
    hetrun_module_list_free(&list);
    return (broken || winners == 0) ? HETRUN_EXIT_BACKEND : HETRUN_EXIT_OK;
}
