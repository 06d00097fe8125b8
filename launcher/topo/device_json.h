/**
 * @file launcher/topo/device_json.h
 * @brief A backend device's facts as words and JSON, the same in every command and report.
 */
#ifndef HETRUN_TOPO_DEVICE_JSON_H
#define HETRUN_TOPO_DEVICE_JSON_H

#include <stdint.h>

#include <cjson/cJSON.h>

#include "hetrun/backend.h"

/** "cpu", "gpu", "accelerator", or "unknown" for a kind this launcher does not know. */
const char *hetrun_device_kind_name(uint32_t kind);

/**
 * Every fact of `info` as a JSON object: index (left out when `index` < 0, e.g. for a
 * rank's one device), name, vendor, kind, driver_version, uuid, pci_bus_id, arch,
 * memory_bytes, max_alloc_bytes, compute_units, clock_mhz, peak_flops (per dtype the
 * device declares), visibility_env; an empty uuid, PCI address or visibility variable is
 * null. Returns NULL when out of memory.
 */
cJSON *hetrun_device_info_json(const hetrun_device_info *info, int index);

#endif
