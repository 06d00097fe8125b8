/* Loading backend modules across a real dlopen boundary (finding them: search.c). */
#include "loader/loader.h"

#include <dlfcn.h>
#include <errno.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MODULE_PREFIX "libhetrun_backend_"
#define MODULE_SUFFIX ".so"

const char *hetrun_module_state_name(hetrun_module_state state) {
    switch (state) {
    case HETRUN_MODULE_LOADED: return "loaded";
    case HETRUN_MODULE_UNAVAILABLE: return "unavailable";
    case HETRUN_MODULE_REFUSED: return "refused";
    case HETRUN_MODULE_SHADOWED: return "shadowed";
    default: return "found";
    }
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
    /* Path, ABI and version: what a vendor needs to know which build was refused. */
    if (m->table_read)
        snprintf(m->reason, sizeof m->reason, "%s (ABI %u.%u, version %s): %s", m->path,
                 m->abi_major, m->abi_minor, m->version[0] ? m->version : "(none)", msg);
    else
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

/* The members a table must set, by name, so a refusal names each NULL one. */
#define REQUIRED(member)                                                                           \
    { offsetof(hetrun_backend_ops, member), #member }
static const struct {
    size_t offset;
    const char *name;
} required[] = {
    REQUIRED(init),
    REQUIRED(finalize),
    REQUIRED(last_error),
    REQUIRED(device_count),
    REQUIRED(device_info),
    REQUIRED(device_open),
    REQUIRED(device_close),
    REQUIRED(mem_alloc),
    REQUIRED(mem_free),
    REQUIRED(copy_h2d),
    REQUIRED(copy_d2h),
    REQUIRED(copy_d2d),
    REQUIRED(queue_create),
    REQUIRED(queue_destroy),
    REQUIRED(queue_sync),
    REQUIRED(event_create),
    REQUIRED(event_destroy),
    REQUIRED(event_record),
    REQUIRED(event_elapsed_ms),
    REQUIRED(op_supported),
    REQUIRED(op_workspace_size),
    REQUIRED(op_run),
};

static int member_set(const hetrun_backend_ops *ops, size_t offset) {
    void (*fn)(void);
    memcpy(&fn, (const char *)ops + offset, sizeof fn);
    return fn != NULL;
}

/* Copies a module string without trusting it to be short or terminated. */
static void copy_module_string(char *dst, size_t len, const char *src) {
    size_t n = src ? strnlen(src, len - 1) : 0;
    if (n) memcpy(dst, src, n);
    dst[n] = '\0';
}

/* <name> of libhetrun_backend_<name>.so, or "" for another file name. */
static void name_from_path(const char *path, char *name, size_t len) {
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t pre = strlen(MODULE_PREFIX), suf = strlen(MODULE_SUFFIX), n = strlen(base);
    name[0] = '\0';
    if (n > pre + suf && strncmp(base, MODULE_PREFIX, pre) == 0 &&
        strcmp(base + n - suf, MODULE_SUFFIX) == 0 && n - pre - suf < len) {
        memcpy(name, base + pre, n - pre - suf);
        name[n - pre - suf] = '\0';
    }
}

static void stage_to(hetrun_module_stage_fn stage, void *ctx, const char *what,
                     const hetrun_backend_module *m) {
    if (stage) stage(ctx, what, m);
}

int hetrun_module_open(hetrun_backend_module *m, const hetrun_host_services *host) {
    return hetrun_module_open_staged(m, host, NULL, NULL);
}

int hetrun_module_open_staged(hetrun_backend_module *m, const hetrun_host_services *host,
                              hetrun_module_stage_fn stage, void *ctx) {
    m->reason[0] = '\0';
    m->table_read = 0;
    if (!m->name[0]) name_from_path(m->path, m->name, sizeof m->name);
    stage_to(stage, ctx, "dlopen", m);
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
    stage_to(stage, ctx, "entry", m);
    const hetrun_backend_ops *ops = entry();
    if (!ops) return refuse(m, "entry symbol %s returned NULL", HETRUN_BACKEND_ENTRY_SYMBOL);
    /* The header never moves across ABI versions: read it before judging the table. */
    m->abi_major = ops->abi_major;
    m->abi_minor = ops->abi_minor;
    m->struct_size = ops->struct_size;
    copy_module_string(m->ops_name, sizeof m->ops_name, ops->name);
    copy_module_string(m->version, sizeof m->version, ops->version);
    m->table_read = 1;
    stage_to(stage, ctx, "checks", m);
    if (ops->abi_major != HETRUN_ABI_MAJOR)
        return refuse(m, "ABI major mismatch: expected %u.x (launcher ABI %u.%u), found %u.%u",
                      HETRUN_ABI_MAJOR, HETRUN_ABI_MAJOR, HETRUN_ABI_MINOR, ops->abi_major,
                      ops->abi_minor);
    /* The size a table must have for the minor it claims; a newer minor than ours is
     * accepted at our size (its extra members are unknown to us and never called). */
    size_t need = ops->abi_minor >= 2   ? HETRUN_OPS_SIZE_V1_2
                  : ops->abi_minor >= 1 ? HETRUN_OPS_SIZE_V1_1
                                        : HETRUN_OPS_SIZE_V1_0;
    if (ops->struct_size < need)
        return refuse(m, "ops table too small for ABI %u.%u: expected at least %zu bytes, found %u",
                      ops->abi_major, ops->abi_minor, need, ops->struct_size);
    if (m->name[0] && strcmp(m->ops_name, m->name) != 0)
        return refuse(m,
                      "name mismatch: found as '%s' but ops->name is '%s' (the file name, or a "
                      "registration file's name, must equal ops->name)",
                      m->name, m->ops_name);
    char missing[512] = "";
    size_t nmissing = 0;
    for (size_t i = 0; i < sizeof required / sizeof required[0]; i++)
        if (!member_set(ops, required[i].offset)) {
            size_t used = strlen(missing);
            snprintf(missing + used, sizeof missing - used, "%s%s", nmissing ? ", " : "",
                     required[i].name);
            nmissing++;
        }
    if (nmissing)
        return refuse(m, "ops table of ABI %u.%u lacks required function%s (NULL): %s",
                      ops->abi_major, ops->abi_minor, nmissing == 1 ? "" : "s", missing);
    int coll =
        !!ops->comm_id_create + !!ops->comm_init + !!ops->comm_destroy + !!ops->comm_allreduce;
    if (coll != 0 && coll != 4)
        return refuse(m, "collective group is partial (%d of 4 functions set)", coll);
    m->ops = ops;
    stage_to(stage, ctx, "init", m);
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
    stage_to(stage, ctx, "device_count", m);
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
