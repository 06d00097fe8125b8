/* This rank's usage so far (see live_usage.h). */
#include "report/live_usage.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static const cJSON *live_rank;
static const hetrun_usage *live_u;
static hetrun_usage_clock live_clock;

void hetrun_usage_live_set(const cJSON *rank_obj, const hetrun_usage *u,
                           const hetrun_usage_clock *c) {
    pthread_mutex_lock(&lock);
    live_rank = rank_obj;
    live_u = u;
    live_clock = *c;
    pthread_mutex_unlock(&lock);
}

void hetrun_usage_live_clear(void) {
    pthread_mutex_lock(&lock);
    live_rank = NULL;
    live_u = NULL;
    pthread_mutex_unlock(&lock);
}

cJSON *hetrun_usage_live_rank(const char *error) {
    static const char *const copied[] = {
        "rank", "host", "node", "cpus", "backend", "backend_version", "device"};
    pthread_mutex_lock(&lock);
    cJSON *o = NULL;
    if (live_rank && live_u) {
        o = cJSON_CreateObject();
        for (size_t i = 0; o && i < sizeof copied / sizeof copied[0]; i++) {
            const cJSON *v = cJSON_GetObjectItem(live_rank, copied[i]);
            if (v) cJSON_AddItemToObject(o, copied[i], cJSON_Duplicate(v, 1));
        }
        /* Telemetry needs the backend, which may be the thing that hung: not asked here. */
        hetrun_usage snap = *live_u;
        if (o)
            cJSON_AddItemToObject(o, "usage",
                                  hetrun_report_usage_json(&snap, &live_clock, -1.0, -1.0, 0));
        if (o) cJSON_AddStringToObject(o, "status", "failed");
        if (o) cJSON_AddStringToObject(o, "error", error ? error : "the rank did not finish");
    }
    pthread_mutex_unlock(&lock);
    return o;
}

int hetrun_usage_live_render(const char *error, char *buf, size_t len) {
    if (len) buf[0] = '\0';
    cJSON *o = hetrun_usage_live_rank(error);
    if (!o) return -1;
    int ok =
        len > 0 && cJSON_PrintPreallocated(o, buf, (int)(len > 0x7fffffff ? 0x7fffffff : len), 0);
    cJSON_Delete(o);
    if (!ok) {
        if (len) buf[0] = '\0';
        return -1;
    }
    return (int)strlen(buf);
}
