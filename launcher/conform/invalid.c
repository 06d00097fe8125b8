/* The invalid-descriptor group: each descriptor of invalid_cases.c through op_supported and
 * op_run must give HETRUN_ERR_INVALID with a message naming the op, the field and the value. */
#include <stdio.h>
#include <string.h>

#include "conform/conform.h"
#include "conform/invalid_cases.h"
#include "util/exitcodes.h"

int conform_group_invalid(const conform_opts *opts, int device) {
    conform_dev b;
    int rc = conform_dev_open_check(&b, opts, device, "invalid_descriptors");
    if (rc != 0) return rc;
    const hetrun_backend_ops *o = b.module.ops;
    int fails = 0;
    char first[768] = "";
    for (int i = 0; i < hetrun_invalid_case_count; i++) {
        const hetrun_invalid_case *c = &hetrun_invalid_cases[i];
        hetrun_op_desc d = hetrun_invalid_desc(c);
        const hetrun_op_info *op = hetrun_op_info_of(d.kind);
        int nargs = op->arity + c->nargs_delta;
        hetrun_buffer *buf = NULL;
        hetrun_tensor args[HETRUN_OP_MAX_ARGS + 1];
        char line[768] = "";
        if (o->mem_alloc(b.dev, 1 << 20, &buf) != HETRUN_OK) {
            snprintf(line, sizeof line, "invalid %s: mem_alloc: %.600s", c->what, o->last_error());
        } else {
            for (int a = 0; a <= HETRUN_OP_MAX_ARGS; a++)
                args[a] = (hetrun_tensor){buf, 0};
            for (int call = c->nargs_delta ? 1 : 0; call < 2 && !line[0]; call++) {
                hetrun_status st = call == 0
                                       ? o->op_supported(b.dev, &d)
                                       : o->op_run(b.q, &d, args, nargs, (hetrun_tensor){NULL, 0});
                const char *msg = o->last_error();
                const char *fn = call == 0 ? "op_supported" : "op_run";
                if (st != HETRUN_ERR_INVALID)
                    snprintf(line, sizeof line,
                             "invalid %s: %s returned %d, not INVALID (%d): %.500s", c->what, fn,
                             st, HETRUN_ERR_INVALID, msg);
                else if (!strstr(msg, op->name) || !strstr(msg, c->expect))
                    snprintf(line, sizeof line,
                             "invalid %s: %s message does not name '%s' and '%s': %.500s", c->what,
                             fn, op->name, c->expect, msg);
                else if (opts->verbose)
                    conform_emit_log(device, CONFORM_PASS, "invalid %s: %s: %.600s", c->what, fn,
                                     msg);
            }
            o->queue_sync(b.q);
            o->mem_free(buf);
        }
        if (line[0]) {
            conform_emit_log(device, CONFORM_FAIL, "%s", line);
            if (!fails++) snprintf(first, sizeof first, "%s", line);
        }
    }
    if (fails)
        conform_emit_check(device, "invalid_descriptors", CONFORM_FAIL,
                           "%d of %d failed; first: %s", fails, hetrun_invalid_case_count, first);
    else
        conform_emit_check(device, "invalid_descriptors", CONFORM_PASS,
                           "%d descriptors refused with INVALID, op, field and value named",
                           hetrun_invalid_case_count);
    conform_dev_close(&b);
    return fails ? HETRUN_EXIT_FAILED : 0;
}
