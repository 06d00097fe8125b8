/* Finding backend modules: HETRUN_BACKEND_PATH, registration folders, the install folder
 * and (for a binary run from the build tree only) the build tree; see loader.h. */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "loader/loader.h"

#define MODULE_PREFIX "libhetrun_backend_"
#define MODULE_SUFFIX ".so"
#define REG_SUFFIX ".conf"
#define REG_SUBDIR "etc/hetrun/backends.d"
#define REG_SYSTEM "/etc/hetrun/backends.d"

typedef enum place_kind { PLACE_ENV, PLACE_REGISTRY, PLACE_INSTALL, PLACE_BUILD } place_kind;

typedef struct place {
    place_kind kind;
    char *dir;
} place;

static int is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Appends `dir` unless it names a folder already listed (compared by real path). */
static int push_place(place **v, size_t *n, place_kind kind, const char *dir) {
    if (!dir || !*dir) return 0;
    char real[PATH_MAX];
    const char *key = realpath(dir, real) ? real : dir;
    for (size_t i = 0; i < *n; i++)
        if (strcmp((*v)[i].dir, key) == 0) return 0; /* keep the first occurrence */
    place *grown = realloc(*v, (*n + 1) * sizeof *grown);
    if (!grown) return -1;
    *v = grown;
    if (!(grown[*n].dir = strdup(key))) return -1;
    grown[(*n)++].kind = kind;
    return 0;
}

/* The folder holding this executable (real path), or "" when unknown. */
static void exe_dir(char *out, size_t len) {
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    out[0] = '\0';
    if (n <= 0) return;
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    if (!slash) return;
    *slash = '\0';
    char real[PATH_MAX];
    snprintf(out, len, "%s", realpath(exe, real) ? real : exe);
}

int hetrun_loader_in_build_tree(void) {
#ifdef HETRUN_BUILD_BIN_DIR
    char here[PATH_MAX], build[PATH_MAX];
    exe_dir(here, sizeof here);
    return here[0] && realpath(HETRUN_BUILD_BIN_DIR, build) && strcmp(here, build) == 0;
#else
    return 0;
#endif
}

static void free_places(place *v, size_t n) {
    for (size_t i = 0; i < n; i++)
        free(v[i].dir);
    free(v);
}

static place *search_places(size_t *count) {
    place *v = NULL;
    size_t n = 0;
    const char *env = getenv("HETRUN_BACKEND_PATH");
    if (env) {
        char *copy = strdup(env), *save = NULL;
        for (char *tok = copy ? strtok_r(copy, ":", &save) : NULL; tok;
             tok = strtok_r(NULL, ":", &save))
            push_place(&v, &n, PLACE_ENV, tok);
        free(copy);
    }
    char here[PATH_MAX], dir[PATH_MAX + 64];
    exe_dir(here, sizeof here);
    /* Installed layout: <prefix>/bin/hetrun, <prefix>/etc/hetrun/backends.d and
     * <prefix>/<libdir>/hetrun/. */
    if (here[0]) {
        snprintf(dir, sizeof dir, "%s/../" REG_SUBDIR, here);
        if (is_dir(dir)) push_place(&v, &n, PLACE_REGISTRY, dir);
    }
    if (is_dir(REG_SYSTEM)) push_place(&v, &n, PLACE_REGISTRY, REG_SYSTEM);
    /* A binary in the build tree has no install folder: <exe>/../lib there is the build
     * tree's own (named so). */
    int in_build = hetrun_loader_in_build_tree();
#ifdef HETRUN_MODULE_BUILD_DIR
    if (in_build && is_dir(HETRUN_MODULE_BUILD_DIR))
        push_place(&v, &n, PLACE_BUILD, HETRUN_MODULE_BUILD_DIR);
#endif
    if (here[0] && !in_build) {
        snprintf(dir, sizeof dir, "%s/../%s", here, HETRUN_MODULE_INSTALL_SUBDIR);
        if (is_dir(dir)) push_place(&v, &n, PLACE_INSTALL, dir);
    }
    *count = n;
    return v;
}

char **hetrun_loader_search_dirs(void) {
    size_t n = 0;
    place *v = search_places(&n);
    char **dirs = calloc(n + 1, sizeof *dirs);
    for (size_t i = 0; dirs && i < n; i++) {
        dirs[i] = v[i].dir;
        v[i].dir = NULL;
    }
    free_places(v, n);
    return dirs;
}

void hetrun_loader_free_dirs(char **dirs) {
    for (size_t i = 0; dirs && dirs[i]; i++)
        free(dirs[i]);
    free(dirs);
}

/* The candidate list under construction: winners first come first; a later candidate of a
 * known name is shadowed, unless it is the very same file (registered twice). */
typedef struct candidates {
    hetrun_backend_module *items;
    size_t count;
    int failed;
} candidates;

static hetrun_backend_module *add(candidates *c, const char *name, const char *path,
                                  const char *origin) {
    const hetrun_backend_module *winner = NULL;
    char real_new[PATH_MAX], real_old[PATH_MAX];
    int have_new = realpath(path, real_new) != NULL;
    for (size_t k = 0; k < c->count; k++) {
        const hetrun_backend_module *o = &c->items[k];
        if (o->state == HETRUN_MODULE_SHADOWED || strcmp(o->name, name) != 0) continue;
        if (have_new && realpath(o->path, real_old) && strcmp(real_new, real_old) == 0)
            return NULL; /* the same file found again: not a second module */
        winner = o;
        break;
    }
    hetrun_backend_module *grown = realloc(c->items, (c->count + 1) * sizeof *grown);
    if (!grown) {
        c->failed = 1;
        return NULL;
    }
    if (winner) winner = grown + (winner - c->items);
    c->items = grown;
    hetrun_backend_module *m = &grown[c->count++];
    memset(m, 0, sizeof *m);
    snprintf(m->name, sizeof m->name, "%s", name);
    snprintf(m->path, sizeof m->path, "%s", path);
    snprintf(m->origin, sizeof m->origin, "%s", origin);
    if (winner) {
        m->state = HETRUN_MODULE_SHADOWED;
        snprintf(m->shadowed_by, sizeof m->shadowed_by, "%s", winner->path);
        snprintf(m->reason, sizeof m->reason, "shadowed by %s (%s comes first in the search order)",
                 winner->path, winner->origin);
    }
    return m;
}

static int by_name(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Directory entries ending in `suffix` (and starting with `prefix`), sorted by name, so the
 * order never depends on the file system. */
static char **list_dir(const char *dir, const char *prefix, const char *suffix, size_t *count) {
    *count = 0;
    DIR *d = opendir(dir);
    if (!d) return NULL;
    char **names = NULL;
    size_t n = 0, pre = strlen(prefix), suf = strlen(suffix);
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (len <= pre + suf || strncmp(e->d_name, prefix, pre) != 0 ||
            strcmp(e->d_name + len - suf, suffix) != 0)
            continue;
        char **grown = realloc(names, (n + 1) * sizeof *grown);
        if (!grown) break;
        names = grown;
        if ((names[n] = strdup(e->d_name))) n++;
    }
    closedir(d);
    if (n) qsort(names, n, sizeof *names, by_name);
    *count = n;
    return names;
}

static void scan_module_dir(candidates *c, const char *dir, const char *origin) {
    size_t n = 0;
    char **names = list_dir(dir, MODULE_PREFIX, MODULE_SUFFIX, &n);
    size_t pre = strlen(MODULE_PREFIX), suf = strlen(MODULE_SUFFIX);
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(names[i]) - pre - suf;
        if (len < 64) {
            char name[64], path[PATH_MAX];
            memcpy(name, names[i] + pre, len);
            name[len] = '\0';
            snprintf(path, sizeof path, "%s/%s", dir, names[i]);
            add(c, name, path, origin);
        }
        free(names[i]);
    }
    free(names);
}

/* Reads the module path a registration file names: the first line that is neither blank
 * nor a comment, trimmed. Returns 0, or -1 with the cause in `why`. */
static int read_registration(const char *file, char *path, size_t len, char *why, size_t wlen) {
    FILE *f = fopen(file, "r");
    if (!f) {
        snprintf(why, wlen, "cannot read: %s", strerror(errno));
        return -1;
    }
    char line[PATH_MAX + 2];
    int rc = -1;
    snprintf(why, wlen, "names no module (expected one line with the module's absolute path)");
    while (fgets(line, sizeof line, f)) {
        char *s = line, *e;
        while (*s == ' ' || *s == '\t')
            s++;
        e = s + strlen(s);
        while (e > s && (e[-1] == '\n' || e[-1] == '\r' || e[-1] == ' ' || e[-1] == '\t'))
            *--e = '\0';
        if (!*s || *s == '#') continue;
        if (*s != '/')
            snprintf(why, wlen, "module path \"%s\" is not absolute", s);
        else if (access(s, R_OK) != 0)
            snprintf(why, wlen, "module %s: %s", s, strerror(errno));
        else {
            snprintf(path, len, "%s", s);
            rc = 0;
        }
        break;
    }
    fclose(f);
    return rc;
}

static void scan_registry(candidates *c, const char *dir) {
    size_t n = 0;
    char **names = list_dir(dir, "", REG_SUFFIX, &n);
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(names[i]) - strlen(REG_SUFFIX);
        char name[64], file[PATH_MAX], origin[PATH_MAX + 16], path[PATH_MAX], why[PATH_MAX + 64];
        snprintf(file, sizeof file, "%s/%s", dir, names[i]);
        snprintf(origin, sizeof origin, "registration %s", file);
        if (len >= sizeof name) {
            free(names[i]);
            continue;
        }
        memcpy(name, names[i], len);
        name[len] = '\0';
        if (read_registration(file, path, sizeof path, why, sizeof why) == 0) {
            add(c, name, path, origin);
        } else {
            /* A broken registration is still listed (refused, never opened), so a vendor
             * sees why their package's module is missing. */
            hetrun_backend_module *m = add(c, name, file, origin);
            if (m && m->state != HETRUN_MODULE_SHADOWED) {
                m->state = HETRUN_MODULE_REFUSED;
                snprintf(m->reason, sizeof m->reason, "registration file %s: %s", file, why);
            }
        }
        free(names[i]);
    }
    free(names);
}

static const char *origin_of(place_kind kind) {
    switch (kind) {
    case PLACE_ENV: return "HETRUN_BACKEND_PATH";
    case PLACE_INSTALL: return "install folder";
    case PLACE_BUILD: return "build tree";
    default: return "registration";
    }
}

static int by_module_name(const void *a, const void *b) {
    return strcmp(((const hetrun_backend_module *)a)->name,
                  ((const hetrun_backend_module *)b)->name);
}

int hetrun_loader_scan_all(hetrun_module_list *list) {
    list->items = NULL;
    list->count = 0;
    size_t np = 0;
    place *places = search_places(&np);
    candidates c = {0};
    for (size_t i = 0; i < np; i++) {
        if (places[i].kind == PLACE_REGISTRY)
            scan_registry(&c, places[i].dir);
        else
            scan_module_dir(&c, places[i].dir, origin_of(places[i].kind));
    }
    free_places(places, np);
    if (c.failed) {
        free(c.items);
        return -1;
    }
    /* Winners sorted by name, then the shadowed ones in search order. */
    size_t w = 0;
    for (size_t i = 0; i < c.count; i++)
        if (c.items[i].state != HETRUN_MODULE_SHADOWED) {
            hetrun_backend_module tmp = c.items[i];
            memmove(&c.items[w + 1], &c.items[w], (i - w) * sizeof tmp);
            c.items[w++] = tmp;
        }
    if (w) qsort(c.items, w, sizeof *c.items, by_module_name);
    list->items = c.items;
    list->count = c.count;
    return 0;
}

int hetrun_loader_scan(hetrun_module_list *list) {
    if (hetrun_loader_scan_all(list) != 0) return -1;
    size_t w = 0;
    while (w < list->count && list->items[w].state != HETRUN_MODULE_SHADOWED)
        w++;
    list->count = w;
    return 0;
}

int hetrun_loader_find(const char *name, char *path, size_t path_len) {
    hetrun_module_list list;
    if (hetrun_loader_scan(&list) != 0) return -1;
    int rc = -1;
    for (size_t i = 0; i < list.count && rc != 0; i++)
        if (strcmp(list.items[i].name, name) == 0 && list.items[i].state != HETRUN_MODULE_REFUSED) {
            snprintf(path, path_len, "%s", list.items[i].path);
            rc = 0;
        }
    hetrun_module_list_free(&list);
    return rc;
}
