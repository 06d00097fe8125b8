/* Backend choice from the spec's preference list (see backend_select.h). */
#include "cli/backend_select.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loader/loader.h"
#include "loader/probe.h"
#include "util/log.h"

/* Order in which `auto` considers modules: cuda, vendor modules (by name), opencl. */
static int auto_rank(const char *name) {
    if (strcmp(name, "cuda") == 0) return 0;
    if (strcmp(name, "opencl") == 0) return 2;
    return 1;
}

static void append(char *err, size_t errlen, const char *fmt, const char *a, const char *b) {
    size_t used = strlen(err);
    if (used < errlen) snprintf(err + used, errlen - used, fmt, a, b);
}

static int has_accelerator(const hetrun_probe_device *devs, int n) {
    for (int i = 0; i < n; i++)
        if (devs[i].info.kind != HETRUN_DEVICE_CPU) return 1;
    return 0;
}

/* Probes `name`; returns 1 when it has devices (and `accel_only` is satisfied). */
static int try_backend(const char *name, int accel_only, hetrun_probe_device **devs, int *n,
                       char *err, size_t errlen) {
    char why[1024] = "";
    *devs = NULL;
    *n = 0;
    int rc = hetrun_probe_backend(name, devs, n, why, sizeof why);
    if (rc != 0) {
        append(err, errlen, "  %s: %s\n", name, why);
        /* Unavailable is normal (no driver); a broken or hung module is worth a line even
         * when a later backend is chosen. */
        if (rc < 0) HETRUN_WARN("%s; trying the next backend", why);
        return 0;
    }
    if (*n == 0 || (accel_only && !has_accelerator(*devs, *n))) {
        append(err, errlen, "  %s: %s\n", name,
               *n == 0 ? "no devices" : "only CPU devices (auto prefers accelerators)");
        free(*devs);
        *devs = NULL;
        *n = 0;
        return 0;
    }
    return 1;
}

int hetrun_backend_select(const hetrun_string_list *prefs, bool cpu_fallback, char *chosen,
                          size_t chosen_len, hetrun_probe_device **devs, int *ndevs, char *err,
                          size_t errlen) {
    err[0] = '\0';
    size_t count = prefs && prefs->count ? prefs->count : 1;
    for (size_t i = 0; i < count; i++) {
        const char *want = prefs && prefs->count ? prefs->items[i] : "auto";
        if (strcmp(want, "auto") != 0) {
            if (try_backend(want, 0, devs, ndevs, err, errlen)) {
                snprintf(chosen, chosen_len, "%s", want);
                return 0;
            }
            continue;
        }
        hetrun_module_list list;
        if (hetrun_loader_scan(&list) != 0) continue;
        for (int pass = 0; pass < 3; pass++)
            for (size_t k = 0; k < list.count; k++) {
                const char *name = list.items[k].name;
                if (strcmp(name, "cpu") == 0 || auto_rank(name) != pass) continue;
                if (try_backend(name, 1, devs, ndevs, err, errlen)) {
                    snprintf(chosen, chosen_len, "%s", name);
                    hetrun_module_list_free(&list);
                    return 0;
                }
            }
        hetrun_module_list_free(&list);
        if (try_backend("cpu", 0, devs, ndevs, err, errlen)) {
            snprintf(chosen, chosen_len, "cpu");
            return 0;
        }
    }
    if (cpu_fallback && try_backend("cpu", 0, devs, ndevs, err, errlen)) {
        snprintf(chosen, chosen_len, "cpu");
        return 0;
    }
    return -1;
}
