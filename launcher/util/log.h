/**
 * @file launcher/util/log.h
 * @brief Logging: stderr, one event per line, prefixed `[host:rank]`.
 *        Level from `-v` (repeatable) or HETRUN_LOG=error|warn|info|debug.
 */
#ifndef HETRUN_UTIL_LOG_H
#define HETRUN_UTIL_LOG_H

#include "hetrun/backend.h"

/** Sets the rank shown in the prefix (-1 before it is known). */
void hetrun_log_set_rank(int rank);
/** Sets the level; messages above it are dropped. */
void hetrun_log_set_level(hetrun_log_level level);
hetrun_log_level hetrun_log_get_level(void);
/** Reads HETRUN_LOG if set. */
void hetrun_log_init_from_env(void);
/** Logs one line. */
void hetrun_log(hetrun_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define HETRUN_ERROR(...) hetrun_log(HETRUN_LOG_ERROR, __VA_ARGS__)
#define HETRUN_WARN(...) hetrun_log(HETRUN_LOG_WARN, __VA_ARGS__)
#define HETRUN_INFO(...) hetrun_log(HETRUN_LOG_INFO, __VA_ARGS__)
#define HETRUN_DEBUG(...) hetrun_log(HETRUN_LOG_DEBUG, __VA_ARGS__)

#endif
