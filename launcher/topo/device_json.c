/* One rendering of hetrun_device_info, shared by `hetrun backends`, `hetrun topo`, the
 * plan and the placement, so the same device reads the same everywhere. */
#include "topo/device_json.h"

#include "kernels/catalogue.h"

const char *hetrun_device_kind_name(uint32_t kind) {
    switch (kind) {
    case HETRUN_DEVICE_CPU: return "cpu";
    case HETRUN_DEVICE_GPU: return "gpu";
    case HETRUN_DEVICE_ACCELERATOR: return "accelerator";
    default: return "unknown";
    }
}

static void add_text_or_null(cJSON *o, const char *key, const char *text) {
    if (text[0])
        cJSON_AddStringToObject(o, key, text);
    else
        cJSON_AddNullToObject(o, key);
}

cJSON *hetrun_device_info_json(const hetrun_device_info *d, int index) {
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    if (index >= 0) cJSON_AddNumberToObject(o, "index", index);
    cJSON_AddStringToObject(o, "name", d->name);
    cJSON_AddStringToObject(o, "vendor", d->vendor);
    cJSON_AddStringToObject(o, "kind", hetrun_device_kind_name(d->kind));
    cJSON_AddStringToObject(o, "driver_version", d->driver_version);
    add_text_or_null(o, "uuid", d->uuid);
    add_text_or_null(o, "pci_bus_id", d->pci_bus_id);
    cJSON_AddStringToObject(o, "arch", d->arch);
    cJSON_AddNumberToObject(o, "memory_bytes", (double)d->memory_bytes);
    cJSON_AddNumberToObject(o, "max_alloc_bytes", (double)d->max_alloc_bytes);
    cJSON_AddNumberToObject(o, "compute_units", d->compute_units);
    cJSON_AddNumberToObject(o, "clock_mhz", d->clock_mhz);
    cJSON *peak = cJSON_AddObjectToObject(o, "peak_flops");
    for (int t = 0; peak && t < HETRUN_DTYPE_COUNT; t++)
        if (d->peak_flops[t] > 0)
            cJSON_AddNumberToObject(peak, hetrun_dtype_name((hetrun_dtype)t), d->peak_flops[t]);
    add_text_or_null(o, "visibility_env", d->visibility_env);
    return o;
}
