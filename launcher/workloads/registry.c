/* The workload types hetrun knows. Adding one: a file with its schema and run function,
 * and one line here. */
#include <string.h>

#include "workloads/workload.h"

extern const hetrun_workload_type hetrun_workload_gemm;
extern const hetrun_workload_type hetrun_workload_train, hetrun_workload_infer;
extern const hetrun_workload_type hetrun_workload_bench;

static const hetrun_workload_type *const all_types[] = {
    &hetrun_workload_gemm,
    &hetrun_workload_train,
    &hetrun_workload_infer,
    &hetrun_workload_bench,
    NULL,
};

const hetrun_workload_type *hetrun_workload_find(const char *name) {
    for (size_t i = 0; name && all_types[i]; i++)
        if (strcmp(all_types[i]->name, name) == 0) return all_types[i];
    return NULL;
}

const hetrun_workload_type *const *hetrun_workload_all(void) {
    return all_types;
}
