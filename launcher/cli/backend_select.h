/**
 * @file launcher/cli/backend_select.h
 * @brief Choosing the job's backend from its preference list, before MPI_Init and
 *        without starting any vendor runtime in this process (devices are probed in a
 *        child process, see topo/placement.h).
 *
 * `auto` means: the first module (cuda first, then vendor modules by name, then opencl)
 * that has a GPU or accelerator device; otherwise cpu. An explicit list is tried in
 * order; the first backend with at least one device wins. When none is usable the job
 * fails with every candidate's reason, unless cpu_fallback allows the cpu backend.
 */
#ifndef HETRUN_CLI_BACKEND_SELECT_H
#define HETRUN_CLI_BACKEND_SELECT_H

#include <stdbool.h>
#include <stddef.h>

#include "spec/schema.h"
#include "topo/placement.h"

/**
 * Returns 0 with the chosen name in `chosen` and its probed devices in `*devs` (free()),
 * or -1 with the reasons in `err`.
 */
int hetrun_backend_select(const hetrun_string_list *prefs, bool cpu_fallback, char *chosen,
                          size_t chosen_len, hetrun_probe_device **devs, int *ndevs, char *err,
                          size_t errlen);

#endif
