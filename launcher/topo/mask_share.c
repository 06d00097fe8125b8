/* Telling a shared inherited mask from per-rank ones (see mask_share.h). */
#include "topo/mask_share.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* 1: all `n` ranks seen with `mine`; 0: a different mask seen; -1: not yet. */
static int scan(const char *path, int n, const char *mine, unsigned char *seen) {
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    char line[16384];
    int count = 0, differs = 0;
    memset(seen, 0, (size_t)n);
    while (fgets(line, sizeof line, f)) {
        char *end = NULL;
        long r = strtol(line, &end, 10);
        /* A line still being written has no newline yet: read it next time. */
        if (end == line || *end != ' ' || r < 0 || r >= n || !strchr(end, '\n')) continue;
        char *mask = end + 1;
        mask[strcspn(mask, "\n")] = '\0';
        if (strcmp(mask, mine) != 0) differs = 1;
        if (!seen[r]) count++;
        seen[r] = 1;
    }
    fclose(f);
    return differs ? 0 : count == n ? 1 : -1;
}

int hetrun_mask_shared(const char *path, int local_rank, int local_size, hwloc_const_bitmap_t mine,
                       double timeout_s, char *why, size_t whylen) {
    char *list = NULL;
    if (local_size < 1 || local_rank < 0 || local_rank >= local_size ||
        hwloc_bitmap_list_asprintf(&list, mine) < 0 || !list) {
        snprintf(why, whylen, "mask exchange: bad arguments or out of memory");
        free(list);
        return -1;
    }
    char line[16384];
    int len = snprintf(line, sizeof line, "%d %s\n", local_rank, list);
    unsigned char *seen = malloc((size_t)local_size);
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    int rc = -1;
    if (!seen || len <= 0 || len >= (int)sizeof line) {
        snprintf(why, whylen, "mask exchange: mask %.64s... too long or out of memory", list);
    } else if (fd < 0 || write(fd, line, (size_t)len) != len) {
        snprintf(why, whylen, "mask exchange: cannot append to %s: %s", path, strerror(errno));
    } else {
        double end = now_s() + timeout_s;
        struct timespec nap = {0, 2 * 1000 * 1000};
        while ((rc = scan(path, local_size, list, seen)) < 0 && now_s() < end)
            nanosleep(&nap, NULL);
        if (rc < 0)
            snprintf(why, whylen, "mask exchange: not every local rank wrote %s within %.0f s",
                     path, timeout_s);
    }
    if (fd >= 0) close(fd);
    free(seen);
    free(list);
    return rc;
}
