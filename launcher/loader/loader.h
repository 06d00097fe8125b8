/**
 * @file launcher/loader/loader.h
 * @brief Finding and loading backend modules across a real dlopen boundary.
 *
 * Search order (the first file found for a name wins; later ones are "shadowed"):
 *  1. each directory of HETRUN_BACKEND_PATH (colon list, in order): `libhetrun_backend_<name>.so`
 *  2. registration folders, like OpenCL's /etc/OpenCL/vendors: `<exe>/../etc/hetrun/backends.d`
 *     then `/etc/hetrun/backends.d`; each `<name>.conf` holds the module's absolute path
 *     (one line; blank lines and `#` comments ignored), in file-name order
 *  3. the install's module folder, `<exe>/../<libdir>/hetrun`; for an executable that lives
 *     in the build tree's bin folder, the build tree's module folder instead (an installed
 *     binary never searches a build tree)
 */
#ifndef HETRUN_LOADER_LOADER_H
#define HETRUN_LOADER_LOADER_H

#include <stddef.h>

#include "hetrun/backend.h"

typedef enum hetrun_module_state {
    HETRUN_MODULE_FOUND = 0,       /**< file found, not opened yet */
    HETRUN_MODULE_LOADED = 1,      /**< dlopen + ABI check + init succeeded */
    HETRUN_MODULE_UNAVAILABLE = 2, /**< init said no driver / no device (skipped quietly) */
    HETRUN_MODULE_REFUSED = 3,     /**< dlopen failed, no entry symbol, ABI mismatch, name
                                        mismatch, NULL required function, init failed, or a
                                        broken registration file: a loud error */
    HETRUN_MODULE_SHADOWED = 4     /**< a module of the same name comes earlier in the
                                        search order; never opened */
} hetrun_module_state;

typedef struct hetrun_backend_module {
    char name[64];   /**< <name> from the file name (or the registration file's name) */
    char path[4096]; /**< file that was (or would be) loaded */
    hetrun_module_state state;
    char reason[1024];             /**< why unavailable/refused ("" when loaded) */
    void *handle;                  /**< dlopen handle */
    const hetrun_backend_ops *ops; /**< valid when LOADED */
    int device_count;              /**< when LOADED */
    /* Where the file was found: "HETRUN_BACKEND_PATH", "registration FILE.conf",
     * "install folder" or "build tree". */
    char origin[4160];
    char shadowed_by[4096]; /**< SHADOWED: the path that wins */
    /* The table's header as the module claims it, copied when the entry symbol returned
     * (table_read 1), so refusals and later crashes can name them. */
    int table_read;
    uint32_t abi_major, abi_minor, struct_size;
    char ops_name[64], version[64];
} hetrun_backend_module;

typedef struct hetrun_module_list {
    hetrun_backend_module *items;
    size_t count;
} hetrun_module_list;

/** State name for tables and JSON ("loaded", "unavailable", "refused", "shadowed",
 *  "found"). */
const char *hetrun_module_state_name(hetrun_module_state state);

/** The places searched, in order (module folders and registration folders that exist),
 *  NULL-terminated; free with hetrun_loader_free_dirs. */
char **hetrun_loader_search_dirs(void);
void hetrun_loader_free_dirs(char **dirs);

/** 1 when this executable runs from the build tree it was configured in (then, and only
 *  then, the build tree's module folder is searched). */
int hetrun_loader_in_build_tree(void);

/** Finds the module file that wins for `name`; returns 0 and writes `path`, or -1. */
int hetrun_loader_find(const char *name, char *path, size_t path_len);

/** Lists the module that wins for each name (state FOUND, or REFUSED for a broken
 *  registration file), sorted by name. Free with hetrun_module_list_free. */
int hetrun_loader_scan(hetrun_module_list *list);
/** As hetrun_loader_scan, followed by every shadowed candidate (state SHADOWED,
 *  `shadowed_by` set) in search order. */
int hetrun_loader_scan_all(hetrun_module_list *list);
void hetrun_module_list_free(hetrun_module_list *list);

/** Called by hetrun_module_open_staged before each step ("dlopen", "entry", "checks",
 *  "init", "device_count"); at "checks" the table header fields of `m` are filled. */
typedef void (*hetrun_module_stage_fn)(void *ctx, const char *stage,
                                       const hetrun_backend_module *m);

/**
 * Opens the module at m->path: dlopen(RTLD_NOW|RTLD_LOCAL), looks up the entry symbol,
 * checks ABI major, minor and struct size, that ops->name equals m->name (derived from
 * the file name when empty), that no required function is NULL (naming each), then calls
 * init with `host`. Sets m->state and m->reason. Returns 0 when LOADED, 1 when
 * UNAVAILABLE, -1 when REFUSED.
 */
int hetrun_module_open(hetrun_backend_module *m, const hetrun_host_services *host);
/** hetrun_module_open reporting each step to `stage` (may be NULL). */
int hetrun_module_open_staged(hetrun_backend_module *m, const hetrun_host_services *host,
                              hetrun_module_stage_fn stage, void *ctx);
/** Finalizes (if loaded) and dlcloses. */
void hetrun_module_close(hetrun_backend_module *m);

/** The launcher's host services (log through util/log, malloc, cache dir, threads). */
const hetrun_host_services *hetrun_host_services_get(void);
/** Sets the CPU thread count modules are told about (from the placement). */
void hetrun_host_services_set_threads(int threads);

#endif
