#include "util/cache_dir.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

const char *hetrun_cache_dir(void) {
    static char dir[PATH_MAX];
    const char *env = getenv("HETRUN_CACHE_DIR");
    if (env && *env) {
        snprintf(dir, sizeof dir, "%s", env);
    } else if ((env = getenv("XDG_CACHE_HOME")) && *env) {
        snprintf(dir, sizeof dir, "%s/hetrun", env);
    } else if ((env = getenv("HOME")) && *env) {
        char parent[PATH_MAX];
        snprintf(parent, sizeof parent, "%s/.cache", env);
        mkdir(parent, 0755);
        snprintf(dir, sizeof dir, "%s/hetrun", parent);
    } else {
        return NULL;
    }
    if (mkdir(dir, 0755) != 0) {
        struct stat st;
        if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) return NULL;
    }
    return dir;
}
