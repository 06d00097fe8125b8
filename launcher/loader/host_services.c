/* The services the launcher hands to every backend module (see hetrun_host_services). */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "loader/loader.h"
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

static int default_threads(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
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
