/* The inherited CPU affinity and fitting a plan into it (see affinity.h). */
#define _GNU_SOURCE
#include "topo/affinity.h"

#include <sched.h>
#include <stdlib.h>

/* Large enough for 32768 CPUs; the kernel rejects a mask smaller than its own. */
#define MASK_CPUS 32768

static hwloc_bitmap_t start_mask;

static int read_mask(hwloc_bitmap_t out) {
    hwloc_bitmap_zero(out);
    size_t size = CPU_ALLOC_SIZE(MASK_CPUS);
    cpu_set_t *set = CPU_ALLOC(MASK_CPUS);
    if (!set) return -1;
    CPU_ZERO_S(size, set);
    int rc = sched_getaffinity(0, size, set);
    if (rc == 0)
        for (int c = 0; c < MASK_CPUS; c++)
            if (CPU_ISSET_S((size_t)c, size, set)) hwloc_bitmap_set(out, (unsigned)c);
    CPU_FREE(set);
    return rc == 0 ? 0 : -1;
}

/* Before main: nothing in this process has bound yet, so this is what the launcher gave. */
__attribute__((constructor)) static void capture_start_mask(void) {
    start_mask = hwloc_bitmap_alloc();
    if (start_mask && read_mask(start_mask) != 0) hwloc_bitmap_zero(start_mask);
}

int hetrun_affinity_inherited(hwloc_bitmap_t out) {
    if (!start_mask || hwloc_bitmap_iszero(start_mask)) {
        hwloc_bitmap_zero(out);
        return -1;
    }
    return hwloc_bitmap_copy(out, start_mask) == 0 ? 0 : -1;
}

int hetrun_affinity_current(hwloc_bitmap_t out) {
    return read_mask(out);
}

int hetrun_affinity_fit(hwloc_const_bitmap_t planned, hwloc_const_bitmap_t inherited,
                        hwloc_const_bitmap_t machine, hwloc_bitmap_t out) {
    if (hwloc_bitmap_iszero(inherited) || hwloc_bitmap_isincluded(machine, inherited)) {
        hwloc_bitmap_copy(out, planned);
        return HETRUN_FIT_PLAN;
    }
    hwloc_bitmap_and(out, planned, inherited);
    if (hwloc_bitmap_isequal(out, planned)) return HETRUN_FIT_PLAN;
    if (!hwloc_bitmap_iszero(out)) return HETRUN_FIT_NARROWED;
    hwloc_bitmap_copy(out, inherited);
    return HETRUN_FIT_INHERITED;
}

const char *hetrun_affinity_fit_name(int kind) {
    switch (kind) {
    case HETRUN_FIT_PLAN: return "plan";
    case HETRUN_FIT_NARROWED: return "narrowed";
    case HETRUN_FIT_INHERITED: return "inherited";
    default: return "?";
    }
}
