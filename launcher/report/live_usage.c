/* This rank's usage so far (see live_usage.h). */
#include "report/live_usage.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
/* A copy of the rank's identity, taken at registration: the rank's own record grows on its
 * thread (results) while others render, so no other thread ever reads it. */
static cJSON *live_ident;
static const hetrun_usage *live_u;
static hetrun_usage_clock live_clock;
static cJSON *closed; /* the rank's record once closed: identity and final usage */

/* The rank's identity, the fields a bill needs besides the usage, then the usage. */
static const char *const copied[] = {"rank",   "host", "node", "cpus", "backend", "backend_version",
                                     "device", "usage"};
enum { IDENTITY = sizeof copied / sizeof copied[0] - 1 };

static cJSON *copy_fields(const cJSON *from, size_t n) {
    cJSON *o = cJSON_CreateObject();
    for (size_t i = 0; o && i < n; i++) {
        const cJSON *v = cJSON_GetObjectItem(from, copied[i]);
        if (v) cJSON_AddItemToObject(o, copied[i], cJSON_Duplicate(v, 1));
    }
    return o;
}

/* Replaces what is registered (under the lock). */
static void keep(cJSON *ident, const hetrun_usage *u, cJSON *closed_rec) {
    cJSON_Delete(live_ident);
    live_ident = ident;
    live_u = u;
    cJSON_Delete(closed);
    closed = closed_rec;
}

void hetrun_usage_live_set(const cJSON *rank_obj, const hetrun_usage *u,
                           const hetrun_usage_clock *c) {
    cJSON *ident = copy_fields(rank_obj, IDENTITY);
    pthread_mutex_lock(&lock);
    keep(ident, u, NULL);
    live_clock = *c;
    pthread_mutex_unlock(&lock);
}

void hetrun_usage_live_close(const cJSON *rank_obj) {
    cJSON *rec = copy_fields(rank_obj, IDENTITY + 1);
    pthread_mutex_lock(&lock);
    keep(NULL, NULL, rec);
    pthread_mutex_unlock(&lock);
}

void hetrun_usage_live_clear(void) {
    pthread_mutex_lock(&lock);
    keep(NULL, NULL, NULL);
    pthread_mutex_unlock(&lock);
}

cJSON *hetrun_usage_live_rank(const char *error) {
    pthread_mutex_lock(&lock);
    cJSON *o = NULL;
    if (live_ident && live_u) {
        o = cJSON_Duplicate(live_ident, 1);
        /* Telemetry needs the backend, which may be the thing that hung: not asked here. */
        hetrun_usage snap = *live_u;
        if (o)
            cJSON_AddItemToObject(o, "usage",
                                  hetrun_report_usage_json(&snap, &live_clock, -1.0, -1.0, 0));
        if (o) cJSON_AddStringToObject(o, "state", "running");
    } else if (closed) {
        o = cJSON_Duplicate(closed, 1);
        if (o) cJSON_AddStringToObject(o, "state", "finished");
    }
    if (o) cJSON_AddStringToObject(o, "status", "failed");
    if (o) cJSON_AddStringToObject(o, "error", error ? error : "the rank did not finish");
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
