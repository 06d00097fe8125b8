/**
 * @file launcher/loader/loader.h
 * @brief Finding and loading backend modules across a real dlopen boundary.
 *
 * Search order for `libhetrun_backend_<name>.so`: each directory of HETRUN_BACKEND_PATH
 * (colon list, in order), then the build tree's module folder, then
 * `<exe>/../lib/hetrun` (the install folder). The first file found for a name wins.
 */
#ifndef HETRUN_LOADER_LOADER_H
#define HETRUN_LOADER_LOADER_H

#include <stddef.h>

#include "hetrun/backend.h"

typedef enum hetrun_module_state {
    HETRUN_MODULE_FOUND = 0,       /**< file found, not opened yet */
    HETRUN_MODULE_LOADED = 1,      /**< dlopen + ABI check + init succeeded */
    HETRUN_MODULE_UNAVAILABLE = 2, /**< init said no driver / no device (skipped quietly) */
    HETRUN_MODULE_REFUSED = 3      /**< dlopen failed, no entry symbol, ABI mismatch, or
                                        init failed: a loud error */
} hetrun_module_state;

typedef struct hetrun_backend_module {
    char name[64];   /**< <name> from the file name */
    char path[4096]; /**< file that was (or would be) loaded */
    hetrun_module_state state;
    char reason[1024];             /**< why unavailable/refused ("" when loaded) */
    void *handle;                  /**< dlopen handle */
    const hetrun_backend_ops *ops; /**< valid when LOADED */
    int device_count;              /**< when LOADED */
} hetrun_backend_module;

typedef struct hetrun_module_list {
    hetrun_backend_module *items;
    size_t count;
} hetrun_module_list;

/** State name for tables and JSON ("loaded", "unavailable", "refused", "found"). */
const char *hetrun_module_state_name(hetrun_module_state state);

/** Fills `dirs` with the search directories in order (NULL-terminated, owned by the
 *  caller: free with hetrun_loader_free_dirs). */
char **hetrun_loader_search_dirs(void);
void hetrun_loader_free_dirs(char **dirs);

/** Finds the module file for `name`; returns 0 and writes `path`, or -1. */
int hetrun_loader_find(const char *name, char *path, size_t path_len);

/** Lists every module in the search directories (first per name wins), state FOUND,
 *  sorted by name. Free with hetrun_module_list_free. */
int hetrun_loader_scan(hetrun_module_list *list);
void hetrun_module_list_free(hetrun_module_list *list);

/**
 * Opens the module at m->path: dlopen(RTLD_NOW|RTLD_LOCAL), looks up the entry symbol,
 * checks ABI major, minor and struct size, then calls init with `host`. Sets m->state
 * and m->reason. Returns 0 when LOADED, 1 when UNAVAILABLE, -1 when REFUSED.
 */
int hetrun_module_open(hetrun_backend_module *m, const hetrun_host_services *host);
/** Finalizes (if loaded) and dlcloses. */
void hetrun_module_close(hetrun_backend_module *m);

/** The launcher's host services (log through util/log, malloc, cache dir, threads). */
const hetrun_host_services *hetrun_host_services_get(void);
/** Sets the CPU thread count modules are told about (from the placement). */
void hetrun_host_services_set_threads(int threads);

#endif
