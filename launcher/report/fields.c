/* Result check words (see fields.h). */
#include "report/fields.h"

#include <string.h>

static const char *const names[] = {NULL, "passed", "failed", "skipped", "error"};

const char *hetrun_check_name(hetrun_check c) {
    return (unsigned)c < sizeof names / sizeof names[0] ? names[c] : NULL;
}

void hetrun_result_set_check(cJSON *result, hetrun_check c) {
    const char *w = hetrun_check_name(c);
    if (!result || !w) return;
    cJSON_DeleteItemFromObject(result, HETRUN_RF_CHECK);
    cJSON_AddStringToObject(result, HETRUN_RF_CHECK, w);
}

hetrun_check hetrun_result_check(const cJSON *result) {
    const char *w = cJSON_GetStringValue(cJSON_GetObjectItem(result, HETRUN_RF_CHECK));
    for (unsigned i = 1; w && i < sizeof names / sizeof names[0]; i++)
        if (strcmp(w, names[i]) == 0) return (hetrun_check)i;
    return HETRUN_CHECK_NONE;
}

int hetrun_check_is_failure(hetrun_check c) {
    return c == HETRUN_CHECK_FAILED || c == HETRUN_CHECK_ERROR;
}
