/* Prints the docs/jobspec.md parameter table of a workload type from its schema, so the
 * docs start from the code: `hetrun_schema_table train`. Without an argument, lists the
 * registered types. */
#include <stdio.h>
#include <string.h>

#include "kernels/catalogue.h"
#include "workloads/workload.h"

static void type_text(const hetrun_field *f, char *out, size_t len) {
    bool ranged = f->min <= f->max;
    switch (f->type) {
    case HETRUN_FIELD_INT:
        if (ranged && f->max < 9.2e18)
            snprintf(out, len, "integer %.0f..%.0f", f->min, f->max);
        else if (ranged)
            snprintf(out, len, "integer >= %.0f", f->min);
        else
            snprintf(out, len, "integer");
        break;
    case HETRUN_FIELD_FLOAT:
        if (ranged)
            snprintf(out, len, "number %g..%g", f->min, f->max);
        else
            snprintf(out, len, "number");
        break;
    case HETRUN_FIELD_BOOL: snprintf(out, len, "true/false"); break;
    case HETRUN_FIELD_ENUM: {
        size_t o = 0;
        out[0] = '\0';
        for (size_t i = 0; f->choices && f->choices[i] && o < len; i++)
            o += (size_t)snprintf(out + o, len - o, "%s`%s`", i ? ", " : "", f->choices[i]);
        break;
    }
    default: snprintf(out, len, "%s", hetrun_field_type_name(f->type)); break;
    }
}

int main(int argc, char **argv) {
    const hetrun_workload_type *const *all = hetrun_workload_all();
    if (argc < 2) {
        for (size_t i = 0; all[i]; i++)
            printf("%s\t%s\n", all[i]->name, all[i]->summary);
        return 0;
    }
    const hetrun_workload_type *t = hetrun_workload_find(argv[1]);
    if (!t) {
        fprintf(stderr, "hetrun_schema_table: no workload type '%s'\n", argv[1]);
        return 2;
    }
    printf("### `%s`\n\n%s\n\n", t->name, t->summary ? t->summary : "");
    printf("| key | type | sweep | default | meaning |\n");
    printf("|-----|------|-------|---------|---------|\n");
    for (size_t i = 0; i < t->schema->field_count; i++) {
        const hetrun_field *f = &t->schema->fields[i];
        char ty[512];
        type_text(f, ty, sizeof ty);
        const char *def = (f->flags & HETRUN_FIELD_REQUIRED) ? "required"
                          : f->default_value                 ? f->default_value
                                                             : "none";
        bool code = f->default_value && !(f->flags & HETRUN_FIELD_REQUIRED);
        printf("| `%s` | %s | %s | %s%s%s | %s |\n", f->key, ty,
               (f->flags & HETRUN_FIELD_SWEEP) ? "sweep" : "", code ? "`" : "", def,
               code ? "`" : "", f->doc ? f->doc : "");
    }
    return 0;
}
