/* `hetrun backends`: every module found, loaded or refused and why, and every device. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cli/commands.h"
#include "kernels/catalogue.h"
#include "loader/loader.h"
#include "util/exitcodes.h"
#include "util/log.h"
#include "topo/device_json.h"

static void usage(FILE *out) {
    fprintf(out, "usage: hetrun backends [--format table|json]\n\n"
                 "Lists every backend module on the search path (HETRUN_BACKEND_PATH, the build\n"
                 "tree, the install dir): loaded, unavailable (no driver/device) or refused\n"
                 "(broken module, ABI mismatch), with the reason, and each device's facts.\n"
                 "exit codes: 0 ok (also when some modules are unavailable), 2 usage,\n"
                 "            4 a module was refused or no module was found\n");
}

int hetrun_cmd_backends(int argc, char **argv) {
    static const struct option longopts[] = {{"format", required_argument, NULL, 'f'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    int json = 0, c;
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
        if (c == 'f')
            fprintf(stderr, "hetrun backends: unknown format '%s' (table or json)\n", optarg);
        usage(stderr);
        return HETRUN_EXIT_USAGE;
    }
    if (optind != argc) {
        fprintf(stderr, "hetrun backends: unexpected argument '%s'\n", argv[optind]);
        return HETRUN_EXIT_USAGE;
    }
    hetrun_module_list list;
    hetrun_loader_scan(&list);
    cJSON *root = cJSON_CreateObject();
    cJSON *search = cJSON_AddArrayToObject(root, "search_path");
    char **dirs = hetrun_loader_search_dirs();
    for (size_t i = 0; dirs && dirs[i]; i++)
        cJSON_AddItemToArray(search, cJSON_CreateString(dirs[i]));
    hetrun_loader_free_dirs(dirs);
    cJSON *mods = cJSON_AddArrayToObject(root, "backends");
    int refused = 0;
    if (!json) printf("%-8s %-12s %-44s %s\n", "backend", "state", "device", "pci / reason");
    for (size_t i = 0; i < list.count; i++) {
        hetrun_backend_module *m = &list.items[i];
        hetrun_module_open(m, hetrun_host_services_get());
        cJSON *mo = cJSON_CreateObject();
        cJSON_AddStringToObject(mo, "name", m->name);
        cJSON_AddStringToObject(mo, "path", m->path);
        cJSON_AddStringToObject(mo, "state", hetrun_module_state_name(m->state));
        if (m->reason[0])
            cJSON_AddStringToObject(mo, "reason", m->reason);
        else
            cJSON_AddNullToObject(mo, "reason");
        cJSON *devs = cJSON_AddArrayToObject(mo, "devices");
        refused += m->state == HETRUN_MODULE_REFUSED;
        if (m->state == HETRUN_MODULE_LOADED) {
            cJSON_AddStringToObject(mo, "version", m->ops->version ? m->ops->version : "");
            cJSON_AddItemToObject(mo, "abi", cJSON_CreateString("1.0"));
            cJSON_AddBoolToObject(mo, "collectives", m->ops->comm_allreduce != NULL);
            for (int d = 0; d < m->device_count; d++) {
                hetrun_device_info info;
                memset(&info, 0, sizeof info);
                info.struct_size = sizeof info;
                if (m->ops->device_info(d, &info) != HETRUN_OK) {
                    fprintf(stderr, "hetrun backends: %s device %d: %s\n", m->name, d,
                            m->ops->last_error());
                    continue;
                }
                cJSON_AddItemToArray(devs, hetrun_device_info_json(&info, d));
                if (!json)
                    printf("%-8s %-12s %-44.44s %s\n", m->name, d == 0 ? "loaded" : "", info.name,
                           info.pci_bus_id[0] ? info.pci_bus_id : "-");
            }
            if (m->device_count == 0 && !json)
                printf("%-8s %-12s %-44s\n", m->name, "loaded", "(no devices)");
        } else if (!json) {
            printf("%-8s %-12s %-44s %s\n", m->name, hetrun_module_state_name(m->state), "-",
                   m->reason);
        }
        cJSON_AddItemToArray(mods, mo);
    }
    if (json) {
        char *text = cJSON_Print(root);
        if (text) puts(text);
        cJSON_free(text);
    } else if (list.count == 0) {
        printf("(no backend modules found; set HETRUN_BACKEND_PATH)\n");
    }
    cJSON_Delete(root);
    int rc = (refused || list.count == 0) ? HETRUN_EXIT_BACKEND : HETRUN_EXIT_OK;
    hetrun_module_list_free(&list);
    return rc;
}
