/* Finding backend modules and loading them across a real dlopen boundary. */
#include "loader/loader.h"

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MODULE_PREFIX "libhetrun_backend_"
#define MODULE_SUFFIX ".so"

const char *hetrun_module_state_name(hetrun_module_state state) {
    switch (state) {
    case HETRUN_MODULE_LOADED: return "loaded";
    case HETRUN_MODULE_UNAVAILABLE: return "unavailable";
    case HETRUN_MODULE_REFUSED: return "refused";
    default: return "found";
    }
}

static int is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static int push_dir(char ***dirs, size_t *n, const char *dir) {
    if (!dir || !*dir) return 0;
    for (size_t i = 0; i < *n; i++)
        if (strcmp((*dirs)[i], dir) == 0) return 0; /* keep the first occurrence */
    char **grown = realloc(*dirs, (*n + 2) * sizeof **dirs);
    if (!grown) return -1;
    *dirs = grown;
    if (!(grown[*n] = strdup(dir))) return -1;
    grown[++*n] = NULL;
    return 0;
}

char **hetrun_loader_search_dirs(void) {
    char **dirs = calloc(1, sizeof *dirs);
    size_t n = 0;
    if (!dirs) return NULL;
    const char *env = getenv("HETRUN_BACKEND_PATH");
    if (env) {
        char *copy = strdup(env), *save = NULL;
        for (char *tok = copy ? strtok_r(copy, ":", &save) : NULL; tok;
             tok = strtok_r(NULL, ":", &save))
            push_dir(&dirs, &n, tok);
        free(copy);
    }
#ifdef HETRUN_MODULE_BUILD_DIR
    if (is_dir(HETRUN_MODULE_BUILD_DIR)) push_dir(&dirs, &n, HETRUN_MODULE_BUILD_DIR);
#endif
    /* Installed layout: <prefix>/bin/hetrun and <prefix>/<libdir>/hetrun/. */
    char exe[PATH_MAX];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (len > 0) {
        exe[len] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash) {
            *slash = '\0';
            char inst[PATH_MAX + 64];
            snprintf(inst, sizeof inst, "%s/../%s", exe, HETRUN_MODULE_INSTALL_SUBDIR);
            char real[PATH_MAX];
            if (realpath(inst, real) && is_dir(real)) push_dir(&dirs, &n, real);
        }
    }
    return dirs;
}

void hetrun_loader_free_dirs(char **dirs) {
    for (size_t i = 0; dirs && dirs[i]; i++)
        free(dirs[i]);
    free(dirs);
}

int hetrun_loader_find(const char *name, char *path, size_t path_len) {
    char **dirs = hetrun_loader_search_dirs();
    int rc = -1;
    for (size_t i = 0; dirs && dirs[i] && rc != 0; i++) {
        char candidate[PATH_MAX];
        snprintf(candidate, sizeof candidate, "%s/" MODULE_PREFIX "%s" MODULE_SUFFIX, dirs[i],
                 name);
        if (access(candidate, R_OK) == 0) {
            snprintf(path, path_len, "%s", candidate);
            rc = 0;
        }
    }
    hetrun_loader_free_dirs(dirs);
    return rc;
}

static int by_name(const void *a, const void *b) {
    return strcmp(((const hetrun_backend_module *)a)->name,
                  ((const hetrun_backend_module *)b)->name);
}

int hetrun_loader_scan(hetrun_module_list *list) {
    list->items = NULL;
    list->count = 0;
    char **dirs = hetrun_loader_search_dirs();
    if (!dirs) return -1;
    for (size_t i = 0; dirs[i]; i++) {
        DIR *d = opendir(dirs[i]);
        if (!d) continue;
        struct dirent *e;
        while ((e = readdir(d))) {
            size_t len = strlen(e->d_name), pre = strlen(MODULE_PREFIX),
                   suf = strlen(MODULE_SUFFIX);
            if (len <= pre + suf || strncmp(e->d_name, MODULE_PREFIX, pre) != 0 ||
                strcmp(e->d_name + len - suf, MODULE_SUFFIX) != 0 || len - pre - suf >= 64)
                continue;
            char name[64];
            memcpy(name, e->d_name + pre, len - pre - suf);
            name[len - pre - suf] = '\0';
            int seen = 0;
            for (size_t k = 0; k < list->count; k++)
                seen |= strcmp(list->items[k].name, name) == 0;
            if (seen) continue; /* an earlier directory wins */
            hetrun_backend_module *grown = realloc(list->items, (list->count + 1) * sizeof *grown);
            if (!grown) break;
            list->items = grown;
            hetrun_backend_module *m = &grown[list->count++];
            memset(m, 0, sizeof *m);
            snprintf(m->name, sizeof m->name, "%s", name);
            snprintf(m->path, sizeof m->path, "%s/%s", dirs[i], e->d_name);
        }
        closedir(d);
    }
    hetrun_loader_free_dirs(dirs);
    if (list->count) qsort(list->items, list->count, sizeof *list->items, by_name);
    return 0;
}

void hetrun_module_list_free(hetrun_module_list *list) {
    for (size_t i = 0; i < list->count; i++)
        hetrun_module_close(&list->items[i]);
    free(list->items);
    list->items = NULL;
    list->count = 0;
}

static int refuse(hetrun_backend_module *m, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int refuse(hetrun_backend_module *m, const char *fmt, ...) {
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(m->reason, sizeof m->reason, "%s: %s", m->path, msg);
    m->state = HETRUN_MODULE_REFUSED;
    if (m->handle) dlclose(m->handle);
    m->handle = NULL;
    m->ops = NULL;
    return -1;
}

/* A dependency of the module (a vendor runtime library) that is not installed means the
 * vendor stack is absent: that is "unavailable", not a broken module. */
static int missing_dependency(const char *err, const char *path) {
    const char *marker = ": cannot open shared object file";
    const char *hit = err ? strstr(err, marker) : NULL;
    if (!hit) return 0;
    return strncmp(err, path, strlen(path)) != 0; /* the error names another file */
}

int hetrun_module_open(hetrun_backend_module *m, const hetrun_host_services *host) {
    m->reason[0] = '\0';
    dlerror();
    m->handle = dlopen(m->path, RTLD_NOW | RTLD_LOCAL);
    if (!m->handle) {
        const char *err = dlerror();
        if (missing_dependency(err, m->path)) {
            m->state = HETRUN_MODULE_UNAVAILABLE;
            snprintf(m->reason, sizeof m->reason, "runtime library missing: %s", err);
            return 1;
        }
        return refuse(m, "dlopen failed: %s", err ? err : "unknown error");
    }
    hetrun_backend_entry_fn entry;
    void *sym = dlsym(m->handle, HETRUN_BACKEND_ENTRY_SYMBOL);
    memcpy(&entry, &sym, sizeof entry); /* object -> function pointer without a cast warning */
    if (!sym) return refuse(m, "no entry symbol '%s' exported", HETRUN_BACKEND_ENTRY_SYMBOL);
    const hetrun_backend_ops *ops = entry();
    if (!ops) return refuse(m, "entry symbol %s returned NULL", HETRUN_BACKEND_ENTRY_SYMBOL);
    if (ops->abi_major != HETRUN_ABI_MAJOR)
        return refuse(m, "ABI major mismatch: expected %u.x (launcher ABI %u.%u), found %u.%u",
                      HETRUN_ABI_MAJOR, HETRUN_ABI_MAJOR, HETRUN_ABI_MINOR, ops->abi_major,
                      ops->abi_minor);
    /* The size a table must have for the minor it claims; a newer minor than ours is
     * accepted at our size (its extra members are unknown to us and never called). */
    size_t need = ops->abi_minor >= 1 ? HETRUN_OPS_SIZE_V1_1 : HETRUN_OPS_SIZE_V1_0;
    if (ops->struct_size < need)
        return refuse(m, "ops table too small for ABI %u.%u: expected at least %zu bytes, found %u",
                      ops->abi_major, ops->abi_minor, need, ops->struct_size);
    if (!ops->init || !ops->finalize || !ops->last_error || !ops->device_count ||
        !ops->device_info || !ops->device_open || !ops->device_close || !ops->mem_alloc ||
        !ops->mem_free || !ops->copy_h2d || !ops->copy_d2h || !ops->copy_d2d ||
        !ops->queue_create || !ops->queue_destroy || !ops->queue_sync || !ops->event_create ||
        !ops->event_destroy || !ops->event_record || !ops->event_elapsed_ms || !ops->op_supported ||
        !ops->op_workspace_size || !ops->op_run)
        return refuse(m, "ops table of ABI %u.%u lacks a required function", ops->abi_major,
                      ops->abi_minor);
    int coll =
        !!ops->comm_id_create + !!ops->comm_init + !!ops->comm_destroy + !!ops->comm_allreduce;
    if (coll != 0 && coll != 4)
        return refuse(m, "collective group is partial (%d of 4 functions set)", coll);
    m->ops = ops;
    hetrun_status st = ops->init(host);
    if (st == HETRUN_ERR_UNAVAILABLE) {
        snprintf(m->reason, sizeof m->reason, "%s", ops->last_error());
        m->state = HETRUN_MODULE_UNAVAILABLE;
        dlclose(m->handle);
        m->handle = NULL;
        m->ops = NULL;
        return 1;
    }
    if (st != HETRUN_OK) return refuse(m, "init failed: %s", ops->last_error());
    int32_t count = 0;
    if (ops->device_count(&count) != HETRUN_OK) {
        char why[512];
        snprintf(why, sizeof why, "%s", ops->last_error());
        ops->finalize();
        return refuse(m, "device_count failed: %s", why);
    }
    m->device_count = count;
    m->state = HETRUN_MODULE_LOADED;
    return 0;
}

void hetrun_module_close(hetrun_backend_module *m) {
    if (m->state == HETRUN_MODULE_LOADED && m->ops) m->ops->finalize();
    if (m->handle) dlclose(m->handle);
    m->handle = NULL;
    m->ops = NULL;
    if (m->state == HETRUN_MODULE_LOADED) m->state = HETRUN_MODULE_FOUND;
}
