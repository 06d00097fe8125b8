/* Logging to stderr, one event per line, prefixed [host:rank]. */
#include "util/log.h"
#include "util/progress.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

static hetrun_log_level current_level = HETRUN_LOG_WARN;
static int current_rank = -1;

void hetrun_log_set_rank(int rank) {
    current_rank = rank;
}
void hetrun_log_set_level(hetrun_log_level level) {
    current_level = level;
}
hetrun_log_level hetrun_log_get_level(void) {
    return current_level;
}

void hetrun_log_init_from_env(void) {
    static const char *const names[] = {"error", "warn", "info", "debug"};
    const char *v = getenv("HETRUN_LOG");
    if (!v) return;
    for (int i = 0; i < 4; i++)
        if (strcasecmp(v, names[i]) == 0) current_level = (hetrun_log_level)i;
}

void hetrun_log(hetrun_log_level level, const char *fmt, ...) {
    static const char *const tags[] = {"error", "warning", "info", "debug"};
    if (level > current_level) return;
    char host[256] = "?";
    gethostname(host, sizeof host - 1);
    char *dot = strchr(host, '.');
    if (dot) *dot = '\0';
    char line[4096];
    int n = current_rank >= 0
                ? snprintf(line, sizeof line, "[%s:%d] %s: ", host, current_rank, tags[level])
                : snprintf(line, sizeof line, "[%s] %s: ", host, tags[level]);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    va_end(ap);
    /* One write per event so lines from ranks do not interleave mid-line. */
    size_t len = strlen(line);
    line[len++] = '\n';
    hetrun_progress_clear(); /* a log line never lands on the end of the live progress line */
    fwrite(line, 1, len, stderr);
    fflush(stderr);
}
