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
#include "exec/job_agree.h"
#include "exec/session.h"
#include "exec/slurm_step.h"
#include "loader/loader.h"
#include "report/assemble.h"
#include "spec/spec.h"
#include "topo/placement.h"
#include "util/exitcodes.h"
#include "util/log.h"
#include "util/progress.h"
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
                 "  -f, --format F       table (default) or json: the summary as one JSON\n"
                 "                       document on stdout (the full report is in the file)\n"
                 "  -P, --progress WHEN  rank 0's progress line on stderr: auto (default),\n"
                 "                       always or never; rewritten in place on a terminal,\n"
                 "                       else a plain line every HETRUN_PROGRESS_INTERVAL\n"
                 "                       seconds (10). auto leaves it to HETRUN_PROGRESS, then\n"
                 "                       to the spec's job.progress, then shows it\n"
                 "  -h, --help           this text\n"
                 "environment: HETRUN_PROGRESS=auto|always|never (or 1|0): as --progress, which\n"
                 "            wins over it; it wins over the spec's job.progress\n"
                 "exit codes: 0 ok, 1 job failed (report says why), 2 usage, 3 invalid spec,\n"
                 "            4 backend/config, 124 timeout, 128+N killed by signal N\n");
}

static const char *env_get(const char *name) {
    return getenv(name);
}

/* Runs every workload point on this rank; fills `rank_obj`. Returns 0, or -1 when the
 * rank failed (its error is in the record). */
static int run_rank(const hetrun_job *job, const char *backend_name, const hetrun_placement *pl,
                    int rank, int nranks, cJSON *rank_obj) {
    hetrun_usage_clock clock = hetrun_usage_clock_start();
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
    }
    hetrun_report_rank_start(rank_obj, name, module.ops ? module.ops->version : NULL, &s, &clock);
    for (size_t i = 0; rc == 0 && i < job->workload_count; i++) {
        const hetrun_job_workload *w = &job->workloads[i];
        cJSON *res = hetrun_report_point_new(rank_obj, w);
        HETRUN_INFO("running %s", w->label ? w->label : w->type->name);
        hetrun_progress_point(rank, i, job->workload_count, w->label ? w->label : w->type->name);
        if (w->type->run(&s, w->params, res) != 0) {
            hetrun_report_point_error(res, s.error);
            HETRUN_ERROR("%s: %s", w->label ? w->label : w->type->name, s.error);
            rc = -1;
        }
    }
    hetrun_progress_end();
    /* Close the last busy span so device_busy_seconds covers all work enqueued. */
    if (s.queue && hetrun_session_sync(&s) != 0 && rc == 0) rc = -1;
    hetrun_report_rank_close(rank_obj, &s, &clock, rc);
    if (rc != 0 && !cJSON_GetArraySize(cJSON_GetObjectItem(rank_obj, "results")))
        HETRUN_ERROR("%s", s.error);
    hetrun_session_close(&s);
    hetrun_module_close(&module);
    return rc;
}

/* Whether any workload point exchanges data between ranks during its run. */
static int job_communicates(const hetrun_job *job) {
    for (size_t i = 0; i < job->workload_count; i++)
        if (job->workloads[i].type->collective) return 1;
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
        if (owned[i] < 0 && hetrun_report_wants(job, "csv")) return HETRUN_EXIT_INVALID_SPEC;
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
        {"format", required_argument, NULL, 'f'},  {"progress", required_argument, NULL, 'P'},
        {"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0}};
    const char *backend_override = NULL, *report_override = NULL;
    int verbose = 0, quiet = 0, json_out = 0, progress = HETRUN_PROGRESS_AUTO, c;
    hetrun_log_init_from_env();
    optind = 1;
    while ((c = getopt_long(argc, argv, "b:r:f:P:vqh", longopts, NULL)) != -1) {
        switch (c) {
        case 'b': backend_override = optarg; break;
        case 'r': report_override = optarg; break;
        case 'v': verbose++; break;
        case 'q': quiet = 1; break;
        case 'f':
            if (strcmp(optarg, "json") != 0 && strcmp(optarg, "table") != 0) {
                fprintf(stderr, "hetrun run: --format must be table or json, got '%s'\n", optarg);
                return HETRUN_EXIT_USAGE;
            }
            json_out = strcmp(optarg, "json") == 0;
            break;
        case 'P':
            progress = hetrun_progress_mode_parse(optarg);
            if (progress < 0) {
                fprintf(stderr, "hetrun run: --progress must be auto, always or never, got '%s'\n",
                        optarg);
                return HETRUN_EXIT_USAGE;
            }
            break;
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
    hetrun_progress_configure((hetrun_progress_mode)progress, (hetrun_progress_mode)job->progress);

    /* The timeout clock and the placeholder report start now, before the backend probe and
     * MPI_Init: a late node must not stretch the job, nor an old ok report outlive it. */
    const char *report_path = report_override    ? report_override
                              : job->report.path ? job->report.path
                                                 : "hetrun-report.json";
    cJSON *job_obj = hetrun_report_job_json(job);
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

    /* srun without PMIx: MPI_Init would die without naming the fix (exec/slurm_step.h). */
    char launch_reason[1024];
    if (hetrun_slurm_step_refused(id.rank, launch_reason, sizeof launch_reason)) {
        if (id.rank == 0 && exit_code != HETRUN_EXIT_OK)
            fprintf(stderr, "hetrun run: %s; nothing ran\n", report_err);
        hetrun_guard_end(launch_reason); /* rank 0's failed report */
        cJSON_Delete(job_obj);
        hetrun_placement_free(&pl);
        hetrun_job_free(job);
        return HETRUN_EXIT_FAILED;
    }

    int provided = 0;
    MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided);
    int rank = 0, nranks = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &nranks);
    hetrun_log_set_rank(rank);
    (void)hetrun_placement_read_back(&pl); /* the report states the affinity after MPI_Init */
    if (verbose) hetrun_placement_print_binding(&pl, stderr);
    /* The environment named another rank 0 (an unknown launcher): MPI's rank 0 reports. */
    hetrun_guard_confirm_rank(rank);
    /* No fork from here on (the backend probes fork, and so does a singleton's MPI_Init,
     * which starts its own server): the refresh thread may hold a lock a child would need. */
    hetrun_guard_start_refresh();
    /* From here every collective is covered: a stopped peer ends the job, not a hang. */
    hetrun_heartbeat_start(job->limits.peer_timeout_s, rank, nranks);
    if (rank == 0 && id.rank != 0) {
        job_text = cJSON_PrintUnformatted(job_obj);
        exit_code = prepare_report(report_path, job, job_text, report_err, sizeof report_err);
        free(job_text);
        hetrun_guard_start_refresh();
    }

    MPI_Bcast(&exit_code, 1, MPI_INT, 0, MPI_COMM_WORLD);
    char job_backend[256]; /* identity, nodes and one backend agreed across ranks */
    if (exit_code == HETRUN_EXIT_OK) {
        exit_code = hetrun_job_agree(job, &pl, backend, report_path, job_obj, job_backend,
                                     sizeof job_backend, err, sizeof err, hetrun_guard_disarm);
        hetrun_placement_release_files(&pl); /* every rank is past placement: nobody reads them */
    }
    if (exit_code != HETRUN_EXIT_OK) {
        hetrun_guard_disarm(); /* a refusal after MPI_Init wrote its own failed report */
        hetrun_heartbeat_stop();
        if (rank == 0)
            fprintf(stderr, "hetrun run: %s; nothing ran\n", report_err[0] ? report_err : err);
        cJSON_Delete(job_obj);
        goto done;
    }

    hetrun_report_run run = {job,   job_backend, report_path,        hetrun_usage_clock_start(),
                             quiet, json_out,    hetrun_guard_disarm};
    cJSON *mine = hetrun_report_rank_new(rank, &pl);
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
        if (rank == 0) {
            char reason[1200];
            snprintf(reason, sizeof reason, "rank 0 failed and the job was aborted: %s",
                     why ? why : "unknown error");
            hetrun_guard_abort_report(mine, reason); /* with the other ranks' usage */
        }
        hetrun_guard_disarm();
        MPI_Abort(MPI_COMM_WORLD, HETRUN_EXIT_FAILED);
    }
    exit_code = hetrun_report_finish(&run, job_obj, mine, rank, nranks);
    hetrun_heartbeat_stop();
done:
    MPI_Finalize();
    hetrun_placement_free(&pl);
    hetrun_job_free(job);
    return exit_code;
}
