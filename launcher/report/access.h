/**
 * @file launcher/report/access.h
 * @brief Reading report JSON where a field may be missing: a number is NaN and a string
 *        the fallback, so readers of partial (failed) reports never crash.
 */
#ifndef HETRUN_REPORT_ACCESS_H
#define HETRUN_REPORT_ACCESS_H

#include <math.h>

#include <cjson/cJSON.h>

#include "report/fields.h"

static inline double hetrun_rj_num(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItem(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

static inline const char *hetrun_rj_str(const cJSON *o, const char *key, const char *fallback) {
    const char *s = cJSON_GetStringValue(cJSON_GetObjectItem(o, key));
    return s ? s : fallback;
}

/** Whether a result is a collective point (one row per message size). */
static inline int hetrun_rj_is_collective(const cJSON *res) {
    return cJSON_IsArray(cJSON_GetObjectItem(res, HETRUN_RF_ROWS));
}

#endif
