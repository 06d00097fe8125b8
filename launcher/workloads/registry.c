/* The workload types hetrun knows. Adding one: a file with its schema and run function,
 * and one line here. The spec reads workloads against the schemas listed here, passed
 * in (the spec room does not know the workloads). */
#include <stdlib.h>
#include <string.h>

#include "kernels/catalogue.h"

#include "workloads/workload.h"

extern const hetrun_workload_type hetrun_workload_gemm;
extern const hetrun_workload_type hetrun_workload_train, hetrun_workload_infer;
extern const hetrun_workload_type hetrun_workload_bench;
extern const hetrun_workload_type hetrun_workload_embed;

static const hetrun_workload_type *const all_types[] = {
    &hetrun_workload_gemm,  &hetrun_workload_train, &hetrun_workload_infer,
    &hetrun_workload_bench, &hetrun_workload_embed, NULL,
};

/* The activations workloads take, by their ::hetrun_activation value (an enum field stores
 * the index): the catalogue's first two. gelu_erf and identity (ABI 1.1) are not offered
 * to specs yet. */
_Static_assert(HETRUN_ACT_RELU == 0 && HETRUN_ACT_GELU == 1, "hetrun_act_choices order");
const char *const hetrun_act_choices[] = {"relu", "gelu", NULL};

const hetrun_workload_type *hetrun_workload_find(const char *name) {
    for (size_t i = 0; name && all_types[i]; i++)
        if (strcmp(all_types[i]->name, name) == 0) return all_types[i];
    return NULL;
}

const hetrun_workload_type *const *hetrun_workload_all(void) {
    return all_types;
}

const hetrun_workload_schema *hetrun_workload_schemas(void) {
    enum { N = sizeof all_types / sizeof all_types[0] };
    static hetrun_workload_schema schemas[N]; /* the last stays zero: the end mark */
    if (!schemas[0].name)
        for (size_t i = 0; all_types[i]; i++)
            schemas[i] =
                (hetrun_workload_schema){all_types[i]->name, all_types[i]->schema, all_types[i]};
    return schemas;
}

int hetrun_spec_load(const char *path, hetrun_job **job, hetrun_diags *diags) {
    return hetrun_spec_read(path, hetrun_workload_schemas(), job, diags);
}

int hetrun_spec_load_bytes(const char *name, const unsigned char *bytes, size_t len,
                           hetrun_job **job, hetrun_diags *diags) {
    return hetrun_spec_read_bytes(name, bytes, len, hetrun_workload_schemas(), job, diags);
}

void hetrun_op_needs_add(hetrun_op_needs *needs, uint32_t kind, uint32_t dtype, uint32_t out_dtype,
                         uint32_t act) {
    const hetrun_op_info *op = hetrun_op_info_of(kind);
    if (!op || !op->uses_act) act = 0;
    for (size_t i = 0; i < needs->count; i++) {
        const hetrun_op_need *n = &needs->items[i];
        if (n->kind == kind && n->dtype == dtype && n->out_dtype == out_dtype && n->act == act)
            return;
    }
    hetrun_op_need *grown = realloc(needs->items, (needs->count + 1) * sizeof *grown);
    if (!grown) {
        needs->failed = 1;
        return;
    }
    needs->items = grown;
    grown[needs->count++] = (hetrun_op_need){kind, dtype, out_dtype, act};
}

void hetrun_op_needs_free(hetrun_op_needs *needs) {
    free(needs->items);
    needs->items = NULL;
    needs->count = 0;
}
