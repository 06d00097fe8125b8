/**
 * @file launcher/topo/topology.h
 * @brief The node's hwloc topology: loading (system, XML file, per-node cache) and
 *        device locality by PCI address, OS device name, or the whole machine.
 */
#ifndef HETRUN_TOPO_TOPOLOGY_H
#define HETRUN_TOPO_TOPOLOGY_H

#include <stddef.h>

#include <hwloc.h>

#include "hetrun/backend.h"

/** A loaded topology and how it was obtained. */
typedef struct hetrun_topo {
    hwloc_topology_t topo;
    int has_io;         /**< PCI devices and OS devices were loaded */
    int is_this_system; /**< binding applies (not a foreign XML file) */
    char source[4096];  /**< "system", "system+io", the XML path, or "cache:<path>" */
} hetrun_topo;

/** Where a device's nearest cores are. */
typedef struct hetrun_locality {
    hwloc_bitmap_t cpuset; /**< PUs nearest the device (owned; free with hetrun_locality_fini) */
    int numa_node;         /**< OS index of its NUMA node; -1 unknown or several */
    char how[32];          /**< "pci", "osdev" or "machine" */
} hetrun_locality;

/** Loads the running machine; with `with_io` also PCI and OS devices (about 20x slower).
 *  Returns NULL with a message in `err` on failure. */
hetrun_topo *hetrun_topo_load_system(int with_io, char *err, size_t errlen);

/** Loads an hwloc XML file with its I/O tree. Returns NULL with a message naming the file
 *  and hwloc's error in `err`. */
hetrun_topo *hetrun_topo_load_xml(const char *path, char *err, size_t errlen);

/** `<cache_dir>/<what>-<host>-<boot id>-<job key>.<ext>`: a file shared by one job's ranks
 *  on one node (the job key reduced to [A-Za-z0-9._-]). */
void hetrun_node_file(const char *cache_dir, const char *what, const char *job_key, const char *ext,
                      char *path, size_t len);

/** Removes the start-up files of earlier jobs from `cache_dir`: `topo-*.xml` and `mask-*.txt`
 *  (hetrun_node_file's names, and the atomic writer's temporaries of them) owned by this user
 *  and last modified more than `max_age_s` ago. A node's ranks exchange them in the first seconds
 * of a job and each job removes its own (hetrun_placement_release_files); this catches jobs killed
 * first, so the folder does not grow with every job a node runs. Returns the number removed. */
int hetrun_node_files_sweep(const char *cache_dir, double max_age_s);

/**
 * Loads the running machine with I/O at most once per node per job: local rank 0 scans and
 * exports XML to `<cache_dir>/topo-<host>-<boot id>-<job key>.xml` (atomic rename); other
 * local ranks wait for that file (up to 10 s) and load it, falling back to their own scan.
 * Without a job key (single process) or cache dir it scans directly.
 */
hetrun_topo *hetrun_topo_load_node_cached(int local_rank, const char *cache_dir,
                                          const char *job_key, char *err, size_t errlen);

void hetrun_topo_free(hetrun_topo *t);

/** The node's size: object counts of a loaded topology, kept after it is freed. */
typedef struct hetrun_topo_counts {
    int valid; /**< 0: no topology was counted */
    int packages, numa_nodes, cores, pus;
    double memory_bytes; /**< the root's total memory */
} hetrun_topo_counts;

/** Counts the objects of `t` into `out` (reads `t` only; `valid` is 0 when `t` is NULL). */
void hetrun_topo_count(const hetrun_topo *t, hetrun_topo_counts *out);

/** Parses "dddd:bb:dd.f" or "bb:dd.f" (hex). Returns 0 or -1. */
int hetrun_pci_parse(const char *busid, unsigned *domain, unsigned *bus, unsigned *dev,
                     unsigned *func);

/**
 * Finds the cores nearest a device: by its PCI bus id (nearest non-I/O ancestor of the PCI
 * object), else by the hwloc OS device named `osdev_name` (e.g. "cuda0"), else the whole
 * machine's allowed cpuset. Returns 0 (always fills `loc`) or -1 on allocation failure.
 */
int hetrun_topo_locate(const hetrun_topo *t, const char *pci_bus_id, const char *osdev_name,
                       hetrun_locality *loc);
void hetrun_locality_fini(hetrun_locality *loc);

/** An accelerator found as an hwloc OS device (GPU or co-processor) in the topology. */
typedef struct hetrun_topo_device {
    hetrun_device_info info; /**< name (GPUModel or osdev name), pci_bus_id, kind */
    char osdevs[256];        /**< OS device names on this PCI slot, comma-separated */
} hetrun_topo_device;

/**
 * Lists the compute devices among the GPU/co-processor OS devices of `t`, one per PCI slot
 * (domain:bus:device: the CUDA, NVML and OpenCL views of one GPU are one device), sorted by
 * PCI bus id; devices without a PCI parent follow in topology order. A slot counts when a
 * function is a 3D controller (class 0x0302), processing accelerator (0x1200) or
 * co-processor (0x0b40), or when a compute runtime (CUDA, OpenCL, NVML, RSMI, Level Zero,
 * any co-processor OS device) shows it; a display adapter seen only by DRM (`card0` of the
 * BMC's VGA chip) does not. Caller frees `*devs` with free().
 */
int hetrun_topo_accelerators(const hetrun_topo *t, hetrun_topo_device **devs, int *ndevs);

/** Writes the OS indices of the PUs in `set` to a new array (caller frees). */
int hetrun_cpuset_to_list(hwloc_const_bitmap_t set, int **cpus, int *ncpus);

#endif
