/* The services the launcher hands to every backend module (see hetrun_host_services). */
#define _GNU_SOURCE /* sched_getaffinity, CPU_COUNT */
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "loader/loader.h"
#include "topo/threads.h"
#include "util/cache_dir.h"
#include "util/log.h"

static void host_log(hetrun_log_level level, const char *backend, const char *message) {
    hetrun_log(level, "%s: %s", backend ? backend : "backend", message ? message : "");
}

static void *host_alloc(size_t bytes) {
    return malloc(bytes);
}
static void host_free(void *ptr) {
    free(ptr);
}

static hetrun_host_services services;
static int initialised;

static const char *env_get(const char *name) {
    return getenv(name);
}

/* Before placement has decided (probes, `hetrun backends`): the CPUs this process may run
 * on, through the one thread rule (topo/threads.h), so `taskset -c 1` or OMP_NUM_THREADS=1
 * holds there too. */
static int default_threads(void) {
    cpu_set_t set;
    int n = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : 0;
    if (n < 1) {
        long online = sysconf(_SC_NPROCESSORS_ONLN);
        n = online > 0 ? (int)online : 1;
    }
    char source[128];
    return hetrun_threads_decide(env_get, n, n, source, sizeof source);
}

const hetrun_host_services *hetrun_host_services_get(void) {
    if (!initialised) {
        services.struct_size = sizeof services;
        services.abi_major = HETRUN_ABI_MAJOR;
        services.abi_minor = HETRUN_ABI_MINOR;
        services.log = host_log;
        services.alloc = host_alloc;
        services.free = host_free;
        services.cache_dir = hetrun_cache_dir();
        if (services.cpu_threads < 1) services.cpu_threads = default_threads();
        initialised = 1;
    }
    services.log_level = (int32_t)hetrun_log_get_level();
    return &services;
}

void hetrun_host_services_set_threads(int threads) {
    services.cpu_threads = threads > 0 ? threads : default_threads();
}
