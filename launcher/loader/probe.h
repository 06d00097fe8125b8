/**
 * @file launcher/loader/probe.h
 * @brief A backend's devices, listed without starting its runtime in this process (the
 *        plan needs them before the visibility variable is set and before MPI_Init).
 */
#ifndef HETRUN_LOADER_PROBE_H
#define HETRUN_LOADER_PROBE_H

#include <stddef.h>

#include "hetrun/backend.h"

/** One device reported by a backend probe. */
typedef struct hetrun_probe_device {
    hetrun_device_info info;
    int index;
} hetrun_probe_device;

/**
 * A forked child opens the module, reads device_count/device_info, writes them to a pipe
 * and exits. Returns 0 (free `*devs` with free()), 1 when the module is unavailable or
 * not found (reason in `why`), -1 on error (reason in `why`).
 */
int hetrun_probe_backend(const char *backend, hetrun_probe_device **devs, int *ndevs, char *why,
                         size_t whylen);

/** Bounds each probe (default 20 s); seconds <= 0 leaves it unchanged. */
void hetrun_probe_set_timeout(double seconds);

#endif
