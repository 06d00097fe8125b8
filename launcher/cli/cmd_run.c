/* `hetrun run JOB.yaml`: validate, choose the backend, place this rank (before MPI_Init
 * and before any vendor runtime starts), run every workload point, gather every rank's
 * record to rank 0, and write one report. */
#include <errno.h>
#include <getopt.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/backend_select.h"
#include "cli/commands.h"
#include "cli/heartbeat.h"
#include "cli/run_guard.h"
#include "exec/checkpoint_request.h"
#include "exec/session.h"
#include "loader/loader.h"
#include "report/report.h"
#include "spec/spec.h"
#include "topo/placement.h"
#include "util/exitcodes.h"
#include "util/log.h"
#include "workloads/workload.h"

static void usage(FILE *out) {
    fprintf(out, "usage: hetrun run [options] JOB.yaml\n"
                 "       mpirun -np N hetrun run JOB.yaml\n\n"
                 "Runs the job spec on this node's devices, one process per rank.\n\n"
                 "options:\n"
                 "  -b, --backend NAME   use this backend (overrides the spec's `backend`)\n"
                 "  -r, --report PATH    write the JSON report here (overrides `report.path`)\n"
                 "  -v, --verbose        more logging; -v shows each rank's binding\n"
                 "  -q, --quiet          no table on stdout\n"
                 "  -h, --help           this text\n"
                 "exit codes: 0 ok, 1 job failed (report says why), 2 usage, 3 invalid spec,\n"
                 "            4 backend/config, 124 timeout, 128+N killed by signal N\n");
}

static const char *env_get(const char *name) {
    return getenv(name);
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void iso_time(char *buf, size_t len) {
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static cJSON *job_json(const hetrun_job *job) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", job->name ? job->name : "");
    cJSON_AddStringToObject(o, "spec_path", job->spec_path ? job->spec_path : "");
    cJSON_AddStringToObject(o, "spec_sha256", job->spec_sha256);
    cJSON_AddNumberToObject(o, "seed", (double)job->seed);
    cJSON_AddNumberToObject(o, "workload_points", (double)job->workload_count);
    return o;
}

static cJSON *device_json(const hetrun_device_info *d) {
    static const char *const kinds[] = {"cpu", "gpu", "accelerator"};
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", d->name);
    cJSON_AddStringToObject(o, "vendor", d->vendor);
    cJSON_AddStringToObject(o, "kind", d->kind < 3 ? kinds[d->kind] : "unknown");
    if (d->pci_bus_id[0])
        cJSON_AddStringToObject(o, "pci_bus_id", d->pci_bus_id);
    else
        cJSON_AddNullToObject(o, "pci_bus_id");
    if (d->uuid[0])
        cJSON_AddStringToObject(o, "uuid", d->uuid);
    else
        cJSON_AddNullToObject(o, "uuid");
    cJSON_AddStringToObject(o, "driver_version", d->driver_version);
    cJSON_AddStringToObject(o, "arch", d->arch);
    cJSON_AddNumberToObject(o, "memory_bytes", (double)d->memory_bytes);
    cJSON_AddNumberToObject(o, "compute_units", d->compute_units);
    /* Declared peaks, for percent-of-peak and rooflines; unknown dtypes are left out. */
    cJSON *peak = cJSON_AddObjectToObject(o, "peak_flops");
    for (int t = 0; t < HETRUN_DTYPE_COUNT && t < HETRUN_MAX_DTYPES; t++)
        if (d->peak_flops[t] > 0.0)
            cJSON_AddNumberToObject(peak, hetrun_dtype_name((hetrun_dtype)t), d->peak_flops[t]);
    return o;
}

/* Runs every workload point on this rank; fills `rank_obj`. Returns 0, or -1 when the
 * rank failed (its error is in the record). */
static int run_rank(const hetrun_job *job, const char *backend_name, const hetrun_placement *pl,
                    int rank, int nranks, cJSON *rank_obj) {
    hetrun_backend_module module;
    memset(&module, 0, sizeof module);
    hetrun_session s;
    memset(&s, 0, sizeof s);
    s.comm = MPI_COMM_WORLD;
    s.rank = rank;
    s.nranks = nranks;
    s.job = job;
    int device = pl->device_index < 0 ? 0 : pl->device_index;
    /* A rank the plan left without a device (more ranks than devices) runs on the CPU. */
    const char *name = pl->device_index < 0 ? "cpu" : backend_name;
    cJSON_AddStringToObject(rank_obj, "backend", name);
    int rc = -1;
    snprintf(module.name, sizeof module.name, "%s", name);
    if (hetrun_loader_find(name, module.path, sizeof module.path) != 0) {
        snprintf(s.error, sizeof s.error, "backend module libhetrun_backend_%s.so not found", name);
    } else if (hetrun_module_open(&module, hetrun_host_services_get()) != 0) {
        snprintf(s.error, sizeof s.error, "backend %s: %s", name, module.reason);
    } else if (module.device_count <= device) {
        snprintf(s.error, sizeof s.error, "backend %s has %d devices, the plan wants index %d",
                 name, module.device_count, device);
    } else if (hetrun_session_open(&s, &module, device) == 0) {
        rc = 0;
        hetrun_guard_track_usage(&s.usage);
    }
    if (module.ops && module.ops->version)
        cJSON_AddStringToObject(rank_obj, "backend_version", module.ops->version);
    cJSON_AddItemToObject(rank_obj, "device", device_json(&s.info));
    cJSON *results = cJSON_AddArrayToObject(rank_obj, "results");
    double t0 = now_s();
    for (size_t i = 0; rc == 0 && i < job->workload_count; i++) {
        const hetrun_job_workload *w = &job->workloads[i];
        cJSON *res = cJSON_CreateObject();
        cJSON_AddStringToObject(res, "workload", w->type->name);
        cJSON_AddStringToObject(res, "label", w->label ? w->label : w->type->name);
        cJSON_AddNumberToObject(res, "index", (double)w->index);
        cJSON_AddNumberToObject(res, "point", (double)w->point);
        cJSON *sweep = w->sweep_json ? cJSON_Parse(w->sweep_json) : NULL;
        if (sweep) cJSON_AddItemToObject(res, "sweep", sweep);
        cJSON_AddItemToArray(results, res);
        HETRUN_INFO("running %s", w->label ? w->label : w->type->name);
        if (w->type->run(&s, w->params, res) != 0) {
            cJSON_AddStringToObject(res, "check", "error");
            cJSON_AddStringToObject(res, "error", s.error);
            HETRUN_ERROR("%s: %s", w->label ? w->label : w->type->name, s.error);
            rc = -1;
        }
    }
    /* Close the last busy span so device_busy_seconds covers all work enqueued. */
    if (s.queue && hetrun_session_sync(&s) != 0 && rc == 0) rc = -1;
    s.usage.wall_s = now_s() - t0;
    cJSON *usage = hetrun_report_usage_json(&s.usage);
    uint64_t peak = 0;
    if (s.device && s.ops->memory_peak && s.ops->memory_peak(s.device, &peak) == HETRUN_OK)
        cJSON_ReplaceItemInObject(usage, "device_memory_peak_bytes",
                                  cJSON_CreateNumber((double)peak));
    double joules = 0.0;
    if (s.device && s.ops->energy_joules && s.ops->energy_joules(s.device, &joules) == HETRUN_OK)
        cJSON_ReplaceItemInObject(usage, "energy_joules", cJSON_CreateNumber(joules));
    cJSON_AddItemToObject(rank_obj, "usage", usage);
    cJSON_AddStringToObject(rank_obj, "status", rc == 0 ? "ok" : "failed");
    if (rc != 0) {
        cJSON_AddStringToObject(rank_obj, "error", s.error);
        if (!cJSON_GetArraySize(results)) HETRUN_ERROR("%s", s.error);
    }
    hetrun_guard_track_usage(NULL);
    hetrun_session_close(&s);
    hetrun_module_close(&module);
    return rc;
}

/* Gathers every rank's JSON text on rank 0 into `ranks` (an array). */
static int gather_ranks(const char *mine, int rank, int nranks, cJSON *ranks) {
    int len = (int)strlen(mine) + 1;
    int *lens = rank == 0 ? calloc((size_t)nranks, sizeof *lens) : NULL;
    int *offs = rank == 0 ? calloc((size_t)nranks, sizeof *offs) : NULL;
    MPI_Gather(&len, 1, MPI_INT, lens, 1, MPI_INT, 0, MPI_COMM_WORLD);
    char *all = NULL;
    if (rank == 0) {
        size_t total = 0;
        for (int r = 0; r < nranks; r++) {
            offs[r] = (int)total;
            total += (size_t)lens[r];
        }
        all = malloc(total ? total : 1);
    }
    MPI_Gatherv(mine, len, MPI_CHAR, all, lens, offs, MPI_CHAR, 0, MPI_COMM_WORLD);
    int bad = 0;
    if (rank == 0) {
        for (int r = 0; r < nranks; r++) {
            cJSON *o = cJSON_Parse(all + offs[r]);
            if (!o) {
                bad = 1;
                o = cJSON_CreateObject();
                cJSON_AddNumberToObject(o, "rank", r);
                cJSON_AddStringToObject(o, "status", "failed");
                cJSON_AddStringToObject(o, "error", "rank record could not be parsed");
            }
            cJSON_AddItemToArray(ranks, o);
        }
    }
    free(lens);
    free(offs);
    free(all);
    return bad ? -1 : 0;
}

static int count_failed_checks(const cJSON *ranks) {
    int failed = 0;
    const cJSON *rank, *res;
    cJSON_ArrayForEach(rank, ranks) {
        const char *status = cJSON_GetStringValue(cJSON_GetObjectItem(rank, "status"));
        if (!status || strcmp(status, "ok") != 0) failed++;
        cJSON_ArrayForEach(res, cJSON_GetObjectItem(rank, "results")) {
            const char *c = cJSON_GetStringValue(cJSON_GetObjectItem(res, "check"));
            if (c && strcmp(c, "failed") == 0) failed++;
        }
    }
    return failed;
}

/* Whether any workload point exchanges data between ranks during its run. */
static int job_communicates(const hetrun_job *job) {
    for (size_t i = 0; i < job->workload_count; i++)
        if (job->workloads[i].type->collective) return 1;
    return 0;
}

/* The report rank 0 leaves when it must abort the job: its own record and the cause. */
static void write_abort_report(const char *path, const cJSON *job_obj, const cJSON *mine,
                               const char *why) {
    cJSON *report = cJSON_CreateObject();
    char reason[1200], err[512];
    snprintf(reason, sizeof reason, "rank 0 failed and the job was aborted: %s",
             why ? why : "unknown error");
    cJSON_AddStringToObject(report, "schema_version", HETRUN_REPORT_SCHEMA_VERSION);
    cJSON_AddStringToObject(report, "generator", HETRUN_REPORT_GENERATOR);
    cJSON_AddStringToObject(report, "status", "failed");
    cJSON_AddStringToObject(report, "reason", reason);
    cJSON_AddItemToObject(report, "job", cJSON_Duplicate(job_obj, 1));
    cJSON *ranks = cJSON_AddArrayToObject(report, "ranks");
    cJSON_AddItemToArray(ranks, cJSON_Duplicate(mine, 1));
    char *text = cJSON_Print(report);
    if (text && hetrun_write_atomic(path, text, strlen(text), err, sizeof err) != 0)
        HETRUN_ERROR("cannot write the report: %s", err);
    cJSON_free(text);
    cJSON_Delete(report);
}

static int has_format(const hetrun_job *job, const char *fmt) {
    if (!job->report.formats.count) return strcmp(fmt, "json") == 0;
    for (size_t i = 0; i < job->report.formats.count; i++)
        if (strcmp(job->report.formats.items[i], fmt) == 0) return 1;
    return 0;
}

/* Rank 0, before anything runs: refuse a report path (or a CSV table beside it) that
 * would replace a file hetrun did not write, then leave the placeholder report and remove
 * tables of an earlier run, so no stale "ok" table sits beside this run's report. Returns
 * an exit code: 0, HETRUN_EXIT_INVALID_SPEC (path refused) or HETRUN_EXIT_FAILED. */
static int prepare_report(const char *path, const hetrun_job *job, const char *job_text, char *err,
                          size_t errlen) {
    char tables[3][4200];
    hetrun_report_table_paths(path, tables);
    int owned[3];
    if (hetrun_report_target_check(path, job->spec_path, err, errlen) < 0)
        return HETRUN_EXIT_INVALID_SPEC;
    for (int i = 0; i < 3; i++) { /* a table this job will not write is only left alone */
        owned[i] = hetrun_report_target_check(tables[i], job->spec_path, err, errlen);
        if (owned[i] < 0 && has_format(job, "csv")) return HETRUN_EXIT_INVALID_SPEC;
    }
    char dir[4096];
    const char *slash = strrchr(path, '/');
    snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - path) : 1,
             slash ? (slash == path ? "/" : path) : ".");
    hetrun_clean_stale_temps(dir, slash ? slash + 1 : path);
    if (hetrun_guard_arm(job->limits.timeout_s, path, job_text, err, errlen) != 0)
        return HETRUN_EXIT_FAILED;
    for (int i = 0; i < 3; i++)
        if (owned[i] == 1 && unlink(tables[i]) != 0)
            HETRUN_WARN("cannot remove %s of an earlier run: %s", tables[i], strerror(errno));
    return HETRUN_EXIT_OK;
}

int hetrun_cmd_run(int argc, char **argv) {
    static const struct option longopts[] = {
        {"backend", required_argument, NULL, 'b'}, {"report", required_argument, NULL, 'r'},
        {"verbose", no_argument, NULL, 'v'},       {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0}};
    const char *backend_override = NULL, *report_override = NULL;
    int verbose = 0, quiet = 0, c;
    hetrun_log_init_from_env();
    optind = 1;
    while ((c = getopt_long(argc, argv, "b:r:vqh", longopts, NULL)) != -1) {
        switch (c) {
        case 'b': backend_override = optarg; break;
        case 'r': report_override = optarg; break;
        case 'v': verbose++; break;
        case 'q': quiet = 1; break;
        case 'h': usage(stdout); return HETRUN_EXIT_OK;
        default: usage(stderr); return HETRUN_EXIT_USAGE;
        }
    }
    if (optind != argc - 1) {
        fprintf(stderr, "hetrun run: expected exactly one job spec, got %d\n", argc - optind);
        usage(stderr);
        return HETRUN_EXIT_USAGE;
    }
    if (verbose) hetrun_log_set_level(verbose > 1 ? HETRUN_LOG_DEBUG : HETRUN_LOG_INFO);
    const char *spec_path = argv[optind];

    /* Who am I (before MPI_Init): only the first rank prints spec errors. */
    hetrun_rank_identity id;
    char err[4096] = "";
    if (hetrun_identity_parse(env_get, &id, err, sizeof err) != 0) {
        fprintf(stderr, "hetrun run: %s\n", err);
        return HETRUN_EXIT_BACKEND;
    }
    hetrun_log_set_rank(id.rank);
    hetrun_diags diags = {0};
    hetrun_job *job = NULL;
    if (hetrun_spec_load(spec_path, &job, &diags) != 0) {
        if (id.rank == 0) {
            hetrun_diags_print(&diags, stderr);
            fprintf(stderr, "hetrun run: %s is not a valid job spec; nothing ran\n", spec_path);
        }
        hetrun_diags_free(&diags);
        return HETRUN_EXIT_INVALID_SPEC;
    }
    hetrun_diags_free(&diags);

    /* The timeout clock and the placeholder report start now, before the backend probe and
     * MPI_Init: a late node must not stretch the job, nor an old ok report outlive it. */
    const char *report_path = report_override    ? report_override
                              : job->report.path ? job->report.path
                                                 : "hetrun-report.json";
    cJSON *job_obj = job_json(job);
    char *job_text = cJSON_PrintUnformatted(job_obj), report_err[4096] = "";
    int exit_code = id.rank == 0
                        ? prepare_report(report_path, job, job_text, report_err, sizeof report_err)
                        : hetrun_guard_arm(job->limits.timeout_s, NULL, NULL, err, sizeof err);
    free(job_text);
    hetrun_checkpoint_request_arm(&job->limits);

    /* Backend and placement, before MPI_Init and before any vendor runtime starts. The
     * probe of each module is bounded by the default, HETRUN_PROBE_TIMEOUT, and 90% of the
     * job's own limits.timeout (already running), whichever is shortest: a hung module is
     * named before the job times out. */
    const char *pt = getenv("HETRUN_PROBE_TIMEOUT");
    double probe_s = pt && atof(pt) > 0 ? atof(pt) : 20.0;
    if (job->limits.timeout_s > 0 && 0.9 * job->limits.timeout_s < probe_s)
        probe_s = 0.9 * job->limits.timeout_s;
    hetrun_probe_set_timeout(probe_s);
    char backend[64];
    hetrun_probe_device *devs = NULL;
    int ndevs = 0;
    hetrun_string_list one = {(char **)&backend_override, 1};
    if (hetrun_backend_select(backend_override ? &one : &job->backends, job->cpu_fallback, backend,
                              sizeof backend, &devs, &ndevs, err, sizeof err) != 0) {
        if (id.rank == 0)
            fprintf(stderr, "hetrun run: no usable backend for %s; tried:\n%s", spec_path, err);
        hetrun_guard_end("no usable backend (see the log for each backend tried)");
        cJSON_Delete(job_obj);
        hetrun_job_free(job);
        return HETRUN_EXIT_BACKEND;
    }
    hetrun_placement pl;
    memset(&pl, 0, sizeof pl);
    if (hetrun_placement_apply_devices(job, backend, devs, ndevs, &pl, err, sizeof err) != 0) {
        fprintf(stderr, "hetrun run: placement failed: %s\n", err);
        hetrun_guard_end(err);
        cJSON_Delete(job_obj);
        free(devs);
        hetrun_job_free(job);
        return HETRUN_EXIT_BACKEND;
    }
    free(devs);
    hetrun_host_services_set_threads(pl.threads);

    int provided = 0;
    MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided);
    int rank = 0, nranks = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &nranks);
    hetrun_log_set_rank(rank);
    if (verbose) hetrun_placement_print_binding(&pl, stderr);
    /* The environment named another rank 0 (an unknown launcher): MPI's rank 0 reports. */
    hetrun_guard_confirm_rank(rank);
    if (rank == 0 && id.rank != 0) {
        job_text = cJSON_PrintUnformatted(job_obj);
        exit_code = prepare_report(report_path, job, job_text, report_err, sizeof report_err);
        free(job_text);
    }

    MPI_Bcast(&exit_code, 1, MPI_INT, 0, MPI_COMM_WORLD);
    if (exit_code != HETRUN_EXIT_OK) {
        if (rank == 0) fprintf(stderr, "hetrun run: %s; nothing ran\n", report_err);
        cJSON_Delete(job_obj);
        goto done;
    }

    hetrun_heartbeat_start(job->limits.peer_timeout_s, rank, nranks);
    char started[32], finished[32];
    iso_time(started, sizeof started);
    double t0 = now_s();
    cJSON *mine = cJSON_CreateObject();
    char host[256] = "";
    gethostname(host, sizeof host - 1);
    cJSON_AddNumberToObject(mine, "rank", rank);
    cJSON_AddStringToObject(mine, "host", host);
    cJSON *placement = hetrun_placement_to_json(&pl);
    cJSON *cpus = placement ? cJSON_GetObjectItem(placement, "cpus") : NULL;
    cJSON_AddItemToObject(mine, "cpus", cpus ? cJSON_Duplicate(cpus, 1) : cJSON_CreateArray());
    cJSON_AddItemToObject(mine, "placement", placement ? placement : cJSON_CreateNull());
    /* A stop asked for by a signal happened on every rank at the same step: no abort. */
    if (run_rank(job, backend, &pl, rank, nranks, mine) != 0 && nranks > 1 &&
        job_communicates(job) && !hetrun_checkpoint_request_stopped()) {
        /* Peers may be waiting in a collective this rank will never join: end the job
         * rather than hang. Rank 0 leaves a failed report with the cause first; mpirun
         * then stops the other ranks (whose guard exits 128+signal). */
        const char *why = cJSON_GetStringValue(cJSON_GetObjectItem(mine, "error"));
        HETRUN_ERROR("rank %d failed in a job whose workloads communicate between ranks; "
                     "aborting the job so no rank waits forever: %s",
                     rank, why ? why : "unknown error");
        if (rank == 0) write_abort_report(report_path, job_obj, mine, why);
        hetrun_guard_disarm();
        MPI_Abort(MPI_COMM_WORLD, HETRUN_EXIT_FAILED);
    }
    char *mine_text = cJSON_PrintUnformatted(mine);
    cJSON_Delete(mine);

    cJSON *report = rank == 0 ? cJSON_CreateObject() : NULL;
    cJSON *ranks = rank == 0 ? cJSON_CreateArray() : NULL;
    int gather_rc = gather_ranks(mine_text ? mine_text : "{}", rank, nranks, ranks);
    free(mine_text);
    if (rank == 0) {
        int failed = count_failed_checks(ranks) + (gather_rc != 0);
        iso_time(finished, sizeof finished);
        cJSON_AddStringToObject(report, "schema_version", HETRUN_REPORT_SCHEMA_VERSION);
        cJSON_AddStringToObject(report, "generator", HETRUN_REPORT_GENERATOR);
        cJSON_AddStringToObject(report, "status", failed ? "failed" : "ok");
        if (failed)
            cJSON_AddStringToObject(report, "reason",
                                    "a rank failed or a check failed; see ranks[]");
        else
            cJSON_AddNullToObject(report, "reason");
        cJSON_AddStringToObject(report, "hetrun_version", HETRUN_VERSION);
        cJSON_AddItemToObject(report, "job", job_obj);
        job_obj = NULL;
        cJSON_AddStringToObject(report, "backend", backend);
        cJSON_AddStringToObject(report, "started_at", started);
        cJSON_AddStringToObject(report, "finished_at", finished);
        cJSON_AddNumberToObject(report, "wall_seconds", now_s() - t0);
        cJSON *env = hetrun_report_environment();
        hetrun_report_environment_ranks(env, ranks);
        cJSON_AddItemToObject(report, "environment", env);
        cJSON_AddItemToObject(report, "ranks", ranks);
        hetrun_report_summarize(report);
        hetrun_guard_disarm();
        char *text = cJSON_Print(report);
        size_t len = text ? strlen(text) : 0;
        int wrote = text && has_format(job, "json")
                        ? hetrun_write_atomic(report_path, text, len, err, sizeof err)
                        : 0;
        if (wrote == 0 && has_format(job, "csv")) {
            char csv[4096];
            hetrun_report_csv_path(report_path, csv, sizeof csv);
            wrote = hetrun_report_write_csv(csv, report, err, sizeof err);
        }
        free(text);
        if (!quiet) hetrun_report_print_table(report, stdout);
        if (wrote != 0) {
            fprintf(stderr, "hetrun run: cannot write the report: %s\n", err);
            failed = 1;
        } else if (!quiet) {
            printf("report: %s\n", report_path);
        }
        fflush(stdout);
        exit_code = failed ? HETRUN_EXIT_FAILED : HETRUN_EXIT_OK;
        cJSON_Delete(report);
    } else {
        hetrun_guard_disarm();
    }
    cJSON_Delete(job_obj);
    MPI_Bcast(&exit_code, 1, MPI_INT, 0, MPI_COMM_WORLD);
    hetrun_heartbeat_stop();
done:
    MPI_Finalize();
    hetrun_placement_free(&pl);
    hetrun_job_free(job);
    return exit_code;
}
