/* Environment facts for reproducibility: per node (host, processors, topology, variables)
 * and per job (MPI, libraries, hosts, backends). */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <yaml.h>

#include "report/report.h"
#include "topo/topology.h"

extern char **environ;

static int relevant_variable(const char *kv) {
    static const char *const prefixes[] = {"OPENBLAS_",
                                           "OMP_",
                                           "MKL_",
                                           "GOTO_",
                                           "HETRUN_",
                                           "CUDA_VISIBLE_DEVICES=",
                                           "CUDA_DEVICE_ORDER=",
                                           "ASCEND_RT_VISIBLE_DEVICES=",
                                           "MLU_VISIBLE_DEVICES=",
                                           "HIP_VISIBLE_DEVICES=",
                                           "ROCR_VISIBLE_DEVICES=",
                                           "POCL_",
                                           "SLURM_JOB_ID=",
                                           "SLURM_STEP_ID=",
                                           "SLURM_JOB_NODELIST=",
                                           "PBS_JOBID=",
                                           "OMPI_COMM_WORLD_SIZE="};
    for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++)
        if (strncmp(kv, prefixes[i], strlen(prefixes[i])) == 0) return 1;
    return 0;
}

/* Object counts of this node, as the placement counted them when it loaded the topology
 * (null when it could not): hwloc is loaded once per process. */
static cJSON *topology_summary(const hetrun_topo_counts *c) {
    if (!c || !c->valid) return cJSON_CreateNull();
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "packages", c->packages);
    cJSON_AddNumberToObject(o, "numa_nodes", c->numa_nodes);
    cJSON_AddNumberToObject(o, "cores", c->cores);
    cJSON_AddNumberToObject(o, "pus", c->pus);
    cJSON_AddNumberToObject(o, "memory_bytes", c->memory_bytes);
    return o;
}

cJSON *hetrun_report_node_environment(const hetrun_topo_counts *topology) {
    cJSON *env = cJSON_CreateObject();
    char host[256] = "";
    gethostname(host, sizeof host - 1);
    cJSON_AddStringToObject(env, "host", host);
    char cpu[256] = "unknown";
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (f) {
        char line[512];
        while (fgets(line, sizeof line, f))
            if (strncmp(line, "model name", 10) == 0 && strchr(line, ':')) {
                snprintf(cpu, sizeof cpu, "%s", strchr(line, ':') + 2);
                cpu[strcspn(cpu, "\n")] = '\0';
                break;
            }
        fclose(f);
    }
    cJSON_AddStringToObject(env, "cpu_model", cpu);
    cJSON_AddNumberToObject(env, "online_cpus", (double)sysconf(_SC_NPROCESSORS_ONLN));
    cJSON_AddItemToObject(env, "topology", topology_summary(topology));
    cJSON *vars = cJSON_AddObjectToObject(env, "variables");
    for (char **e = environ; e && *e; e++) {
        if (!relevant_variable(*e)) continue;
        const char *eq = strchr(*e, '=');
        if (!eq) continue;
        char key[128];
        size_t kl = (size_t)(eq - *e) < sizeof key - 1 ? (size_t)(eq - *e) : sizeof key - 1;
        memcpy(key, *e, kl);
        key[kl] = '\0';
        cJSON_AddStringToObject(vars, key, eq + 1);
    }
    return env;
}

cJSON *hetrun_report_environment(void) {
    cJSON *env = cJSON_CreateObject();
    char mpi[MPI_MAX_LIBRARY_VERSION_STRING] = "";
    int len = 0;
    MPI_Get_library_version(mpi, &len);
    mpi[strcspn(mpi, "\n,")] = '\0';
    cJSON_AddStringToObject(env, "mpi", mpi);
    int mv = 0, msub = 0;
    MPI_Get_version(&mv, &msub);
    char buf[64];
    snprintf(buf, sizeof buf, "%d.%d", mv, msub);
    cJSON_AddStringToObject(env, "mpi_standard", buf);
    cJSON *libs = cJSON_AddObjectToObject(env, "libraries");
    unsigned hv = hwloc_get_api_version();
    snprintf(buf, sizeof buf, "%u.%u.%u", hv >> 16, (hv >> 8) & 0xff, hv & 0xff);
    cJSON_AddStringToObject(libs, "hwloc", buf);
    cJSON_AddStringToObject(libs, "cjson", cJSON_Version());
    cJSON_AddStringToObject(libs, "libyaml", yaml_get_version_string());
    return env;
}

static void add_unique(cJSON *arr, const char *v) {
    const cJSON *e;
    if (!v) return;
    cJSON_ArrayForEach(e, arr) if (strcmp(cJSON_GetStringValue(e), v) == 0) return;
    cJSON_AddItemToArray(arr, cJSON_CreateString(v));
}

void hetrun_report_environment_ranks(cJSON *env, cJSON *ranks) {
    cJSON *hosts = cJSON_AddArrayToObject(env, "hosts");
    cJSON *backends = cJSON_AddArrayToObject(env, "backends");
    cJSON *nodes = cJSON_AddArrayToObject(env, "nodes");
    cJSON *rank;
    cJSON_ArrayForEach(rank, ranks) {
        add_unique(hosts, cJSON_GetStringValue(cJSON_GetObjectItem(rank, "host")));
        /* The node's first rank carried the node's facts; they belong to the node. */
        cJSON *ne = cJSON_DetachItemFromObject(rank, "node_environment");
        if (ne) {
            cJSON_AddNumberToObject(ne, "node",
                                    cJSON_GetNumberValue(cJSON_GetObjectItem(rank, "node")));
            cJSON_AddArrayToObject(ne, "ranks");
            cJSON_AddItemToArray(nodes, ne);
        }
        const char *b = cJSON_GetStringValue(cJSON_GetObjectItem(rank, "backend"));
        const char *v = cJSON_GetStringValue(cJSON_GetObjectItem(rank, "backend_version"));
        const cJSON *dev = cJSON_GetObjectItem(rank, "device");
        const char *drv = cJSON_GetStringValue(cJSON_GetObjectItem(dev, "driver_version"));
        const char *devname = cJSON_GetStringValue(cJSON_GetObjectItem(dev, "name"));
        if (!b) continue;
        cJSON *entry = NULL, *e;
        cJSON_ArrayForEach(e, backends) {
            if (strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(e, "name")), b) == 0) entry = e;
        }
        if (!entry) {
            entry = cJSON_CreateObject();
            cJSON_AddStringToObject(entry, "name", b);
            cJSON_AddStringToObject(entry, "module_version", v ? v : "");
            cJSON_AddArrayToObject(entry, "driver_versions");
            cJSON_AddArrayToObject(entry, "devices");
            cJSON_AddItemToArray(backends, entry);
        }
        add_unique(cJSON_GetObjectItem(entry, "driver_versions"), drv);
        add_unique(cJSON_GetObjectItem(entry, "devices"), devname);
    }
    /* Membership: each rank listed under its node. */
    cJSON_ArrayForEach(rank, ranks) {
        const cJSON *ni = cJSON_GetObjectItem(rank, "node");
        cJSON *node;
        cJSON_ArrayForEach(node, nodes) {
            if (cJSON_IsNumber(ni) &&
                cJSON_GetNumberValue(cJSON_GetObjectItem(node, "node")) == ni->valuedouble)
                cJSON_AddItemToArray(
                    cJSON_GetObjectItem(node, "ranks"),
                    cJSON_CreateNumber(cJSON_GetNumberValue(cJSON_GetObjectItem(rank, "rank"))));
        }
    }
}
