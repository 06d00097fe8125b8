/**
 * @file launcher/util/cache_dir.h
 * @brief The host's cache folder, shared by the launcher (topology and peak caches) and
 *        the backend modules (told through hetrun_host_services.cache_dir).
 */
#ifndef HETRUN_UTIL_CACHE_DIR_H
#define HETRUN_UTIL_CACHE_DIR_H

/** $HETRUN_CACHE_DIR, else $XDG_CACHE_HOME/hetrun, else ~/.cache/hetrun; created on
 *  demand. NULL when none can be made (callers then do without a cache). */
const char *hetrun_cache_dir(void);

#endif
