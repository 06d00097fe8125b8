/* Opening the module and a device inside a check's child, and the module facts group. */
#include <stdio.h>
#include <string.h>

#include "conform/conform.h"
#include "kernels/catalogue.h"
#include "util/exitcodes.h"

int conform_dev_open(conform_dev *d, const char *backend, int index, char *why, size_t len) {
    memset(d, 0, sizeof *d);
    d->index = index;
    snprintf(d->module.name, sizeof d->module.name, "%s", backend);
    if (hetrun_loader_find(backend, d->module.path, sizeof d->module.path) != 0) {
        snprintf(why, len, "module libhetrun_backend_%s.so not found on the search path", backend);
        return HETRUN_EXIT_BACKEND;
    }
    int rc = hetrun_module_open(&d->module, hetrun_host_services_get());
    if (rc != 0) {
        snprintf(why, len, "backend %s (%s) %s: %s", backend, d->module.path,
                 hetrun_module_state_name(d->module.state), d->module.reason);
        return rc > 0 ? HETRUN_EXIT_SKIPPED : HETRUN_EXIT_BACKEND;
    }
    if (index < 0) return 0;
    const hetrun_backend_ops *o = d->module.ops;
    if (index >= d->module.device_count) {
        snprintf(why, len, "backend %s has %d devices, no device %d", backend,
                 d->module.device_count, index);
        return HETRUN_EXIT_FAILED;
    }
    if (o->device_open(index, &d->dev) != HETRUN_OK) {
        snprintf(why, len, "device_open(%d): %s", index, o->last_error());
        d->dev = NULL;
        return HETRUN_EXIT_FAILED;
    }
    if (o->queue_create(d->dev, &d->q) != HETRUN_OK) {
        snprintf(why, len, "queue_create on device %d: %s", index, o->last_error());
        d->q = NULL;
        return HETRUN_EXIT_FAILED;
    }
    return 0;
}

int conform_dev_open_check(conform_dev *d, const conform_opts *o, int index, const char *check) {
    char why[2048];
    int rc = conform_dev_open(d, o->backend, index, why, sizeof why);
    if (rc != 0) conform_emit_check(index, check, CONFORM_FAIL, "%s", why);
    return rc;
}

void conform_dev_close(conform_dev *d) {
    if (!d->module.ops) return;
    if (d->q) d->module.ops->queue_sync(d->q);
    d->module.ops->mem_free(d->ws.buf);
    if (d->q) d->module.ops->queue_destroy(d->q);
    if (d->dev) d->module.ops->device_close(d->dev);
    hetrun_module_close(&d->module);
}

/* The module's version, ABI and devices; a module that cannot be opened says why (as a
 * check named "load") and the exit code tells the parent whether that is a skip. */
int conform_group_module(const conform_opts *o, int device) {
    (void)device;
    conform_dev d;
    char why[2048];
    int rc = conform_dev_open(&d, o->backend, -1, why, sizeof why);
    if (rc != 0) {
        conform_emit_check(-1, "load", rc == HETRUN_EXIT_SKIPPED ? CONFORM_SKIP : CONFORM_FAIL,
                           "%s", why);
        return rc;
    }
    const hetrun_backend_ops *ops = d.module.ops;
    conform_record r;
    memset(&r, 0, sizeof r);
    r.type = CONFORM_REC_MODULE;
    r.device = -1;
    r.pass = (int32_t)ops->abi_major, r.fail = (int32_t)ops->abi_minor;
    r.unsup = d.module.device_count;
    snprintf(r.name, sizeof r.name, "%s", ops->name ? ops->name : "");
    snprintf(r.version, sizeof r.version, "%s", ops->version ? ops->version : "");
    snprintf(r.detail, sizeof r.detail, "%s", d.module.path);
    conform_emit(&r);
    conform_emit_check(-1, "load", CONFORM_PASS, "%s: ABI %u.%u, %d devices", d.module.path,
                       ops->abi_major, ops->abi_minor, d.module.device_count);
    for (int i = 0; i < d.module.device_count; i++) {
        hetrun_device_info info;
        memset(&info, 0, sizeof info);
        info.struct_size = sizeof info;
        memset(&r, 0, sizeof r);
        r.type = CONFORM_REC_DEVICE;
        r.device = i;
        if (ops->device_info(i, &info) != HETRUN_OK) {
            conform_emit_check(i, "device_info", CONFORM_FAIL, "device_info(%d): %s", i,
                               ops->last_error());
            continue;
        }
        snprintf(r.name, sizeof r.name, "%s", info.name);
        snprintf(r.version, sizeof r.version, "%s", info.vendor);
        snprintf(r.extra, sizeof r.extra, "driver %.60s, pci %.31s", info.driver_version,
                 info.pci_bus_id[0] ? info.pci_bus_id : "none");
        conform_emit(&r);
    }
    conform_dev_close(&d);
    return 0;
}

hetrun_status conform_fill(conform_dev *d, hetrun_tensor t, int64_t count, float value) {
    hetrun_op_desc desc = hetrun_op_desc_init(HETRUN_OP_FILL, HETRUN_F32);
    desc.m = 1, desc.n = count, desc.alpha = value;
    return d->module.ops->op_run(d->q, &desc, &t, 1, (hetrun_tensor){NULL, 0});
}

hetrun_status conform_gemm(conform_dev *d, hetrun_queue *q, hetrun_buffer *a, hetrun_buffer *b,
                           hetrun_buffer *c, int64_t n, conform_ws *ws) {
    hetrun_op_desc desc = hetrun_op_desc_init(HETRUN_OP_GEMM, HETRUN_F32);
    desc.m = desc.n = desc.k = n;
    const hetrun_tensor args[3] = {{a, 0}, {b, 0}, {c, 0}};
    hetrun_tensor w;
    hetrun_status st = conform_ws_get(d, q, ws, &desc, &w);
    return st != HETRUN_OK ? st : d->module.ops->op_run(q, &desc, args, 3, w);
}

hetrun_status conform_ws_get(conform_dev *d, hetrun_queue *q, conform_ws *ws,
                             const hetrun_op_desc *desc, hetrun_tensor *out) {
    const hetrun_backend_ops *o = d->module.ops;
    uint64_t bytes = 0;
    hetrun_status st = o->op_workspace_size(d->dev, desc, &bytes);
    if (st != HETRUN_OK) return st;
    if (bytes > ws->bytes) { /* grown between syncs only: callers sync before the next size */
        o->queue_sync(q);
        o->mem_free(ws->buf);
        ws->buf = NULL, ws->bytes = 0;
        if ((st = o->mem_alloc(d->dev, bytes, &ws->buf)) != HETRUN_OK) return st;
        ws->bytes = bytes;
    }
    *out = (hetrun_tensor){bytes ? ws->buf : NULL, 0};
    return HETRUN_OK;
}
