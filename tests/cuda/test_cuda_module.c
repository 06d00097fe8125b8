/* Loads the CUDA backend module the way the launcher does and checks its lifecycle:
 * on a machine without an NVIDIA driver or GPU, init must return HETRUN_ERR_UNAVAILABLE
 * with a reason naming the driver/device (never crash); with a GPU, device info must be
 * complete (UUID "GPU-...", lower-case PCI bus id, sm_XY arch, visibility variable). */
#include <ctype.h>
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "hetrun/backend.h"

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                                   \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
            return 1;                                                                              \
        }                                                                                          \
    } while (0)

static int contains_ci(const char *hay, const char *needle) {
    size_t n = strlen(needle);
    for (; *hay; hay++)
        if (strncasecmp(hay, needle, n) == 0) return 1;
    return 0;
}

static int check_bus_id(const char *s) {
    unsigned a, b, c, d;
    char tail;
    if (sscanf(s, "%4x:%2x:%2x.%1x%c", &a, &b, &c, &d, &tail) != 4) return 0;
    for (; *s; s++)
        if (isupper((unsigned char)*s)) return 0;
    return 1;
}

int main(int argc, char **argv) {
    const char *path = argc > 1 ? argv[1] : HETRUN_CUDA_MODULE;
    void *lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    CHECK(lib, "dlopen(%s): %s", path, dlerror());
    hetrun_backend_entry_fn entry =
        (hetrun_backend_entry_fn)dlsym(lib, HETRUN_BACKEND_ENTRY_SYMBOL);
    CHECK(entry, "dlsym(%s): %s", HETRUN_BACKEND_ENTRY_SYMBOL, dlerror());
    const hetrun_backend_ops *ops = entry();
    CHECK(ops, "entry returned NULL");
    CHECK(ops->abi_major == HETRUN_ABI_MAJOR, "abi_major %u", ops->abi_major);
    CHECK(ops->struct_size >= HETRUN_OPS_SIZE_V1_0, "struct_size %u", ops->struct_size);
    CHECK(ops->name && strcmp(ops->name, "cuda") == 0, "name %s", ops->name ? ops->name : "NULL");
    CHECK(ops->last_error && ops->last_error() != NULL, "last_error NULL");
    /* The collective group is all-or-nothing. */
    int ncoll =
        !!ops->comm_id_create + !!ops->comm_init + !!ops->comm_destroy + !!ops->comm_allreduce;
    CHECK(ncoll == 0 || ncoll == 4, "collective group partially set (%d of 4)", ncoll);

    /* Calls before init must fail cleanly, not crash. */
    int32_t count = -1;
    CHECK(ops->device_count(&count) != HETRUN_OK, "device_count before init succeeded");

    hetrun_host_services host;
    memset(&host, 0, sizeof host);
    host.struct_size = sizeof host;
    host.abi_major = HETRUN_ABI_MAJOR;
    host.abi_minor = HETRUN_ABI_MINOR;
    host.cpu_threads = 1;
    host.log_level = HETRUN_LOG_WARN;
    hetrun_status st = ops->init(&host);
    const char *why = ops->last_error();
    if (st == HETRUN_ERR_UNAVAILABLE) {
        printf("cuda unavailable (expected without a GPU): %s\n", why);
        CHECK(why && *why, "unavailable without a reason");
        CHECK(contains_ci(why, "driver") || contains_ci(why, "device"),
              "reason does not mention the driver or device: %s", why);
        CHECK(getenv("CUDA_DEVICE_ORDER") && strcmp(getenv("CUDA_DEVICE_ORDER"), "PCI_BUS_ID") == 0,
              "CUDA_DEVICE_ORDER not set to PCI_BUS_ID by init");
        ops->finalize();
        dlclose(lib);
        return 0;
    }
    CHECK(st == HETRUN_OK, "init returned %d: %s", (int)st, why);
    CHECK(ops->device_count(&count) == HETRUN_OK && count > 0, "device_count %d", (int)count);
    for (int32_t i = 0; i < count; i++) {
        hetrun_device_info info;
        memset(&info, 0xab, sizeof info); /* the module must terminate every string */
        info.struct_size = sizeof info;
        CHECK(ops->device_info(i, &info) == HETRUN_OK, "device_info(%d): %s", (int)i,
              ops->last_error());
        printf("device %d: %s uuid %s bus %s arch %s mem %llu SMs %u clock %u MHz "
               "peak fp32 %.1f TF bf16 %.1f TF\n",
               (int)i, info.name, info.uuid, info.pci_bus_id, info.arch,
               (unsigned long long)info.memory_bytes, info.compute_units, info.clock_mhz,
               info.peak_flops[HETRUN_F32] / 1e12, info.peak_flops[HETRUN_BF16] / 1e12);
        CHECK(info.kind == HETRUN_DEVICE_GPU, "kind %u", info.kind);
        CHECK(strncmp(info.uuid, "GPU-", 4) == 0 && strlen(info.uuid) == 40, "uuid %s", info.uuid);
        CHECK(check_bus_id(info.pci_bus_id), "bus id %s", info.pci_bus_id);
        CHECK(strncmp(info.arch, "sm_", 3) == 0, "arch %s", info.arch);
        CHECK(strcmp(info.visibility_env, "CUDA_VISIBLE_DEVICES") == 0, "visibility %s",
              info.visibility_env);
        CHECK(info.memory_bytes > 0 && info.compute_units > 0, "memory/SMs zero");
    }
    hetrun_device_info bad;
    bad.struct_size = sizeof bad;
    CHECK(ops->device_info(count, &bad) == HETRUN_ERR_INVALID, "out-of-range index accepted");
    CHECK(strstr(ops->last_error(), "out of range") != NULL, "message: %s", ops->last_error());

    /* Memory errors name the bytes asked for and the free memory. */
    hetrun_device *dev = NULL;
    CHECK(ops->device_open(0, &dev) == HETRUN_OK, "device_open: %s", ops->last_error());
    hetrun_buffer *buf = NULL;
    st = ops->mem_alloc(dev, 1ull << 50, &buf);
    CHECK(st == HETRUN_ERR_NO_MEMORY, "1 PiB alloc returned %d", (int)st);
    printf("oversized alloc: %s\n", ops->last_error());
    CHECK(strstr(ops->last_error(), "1125899906842624") && strstr(ops->last_error(), "free"),
          "message lacks bytes/free: %s", ops->last_error());
    CHECK(ops->mem_alloc(dev, 1024, &buf) == HETRUN_OK, "alloc after OOM: %s", ops->last_error());
    uint64_t peak = 0;
    CHECK(ops->memory_peak(dev, &peak) == HETRUN_OK && peak >= 1024, "memory_peak %llu",
          (unsigned long long)peak);
    ops->mem_free(buf);
    ops->device_close(dev);
    ops->finalize();
    dlclose(lib);
    return 0;
}
