/**
 * @file launcher/cli/run_guard.h
 * @brief Keeps `hetrun run` from hanging or leaving a report that looks complete or says
 *        nothing. Armed before MPI_Init (the rank comes from the launcher's environment),
 *        so limits.timeout counts from the start, not from the slowest node's arrival.
 *        Rank 0 leaves a placeholder "failed: did not finish" report at once and refreshes it
 *        every 2 s with every rank's record as report/live_usage.h renders it (backend,
 *        device, cpus, usage so far): a SIGKILL of rank 0 still leaves a billable report.
 *        The same refresh keeps the failed report ready as a template whose reason, states,
 *        ended_at and wall seconds are left open; a signal handler fills them in for the
 *        moment of the signal (clock_gettime and arithmetic only) and writes the file with
 *        open/write/rename, long before Open MPI's SIGKILL follows its SIGTERM. Failures
 *        seen by a thread (a lost peer, a rank's error) render the report afresh.
 */
#ifndef HETRUN_CLI_RUN_GUARD_H
#define HETRUN_CLI_RUN_GUARD_H

#include <cjson/cJSON.h>

/**
 * Arms the guard. `report_path` may be NULL (ranks other than 0 write no report);
 * `job_json` is the report's "job" object as JSON text. timeout_s <= 0: no timeout.
 * Returns 0 or -1 (report path unusable: message in err).
 */
int hetrun_guard_arm(double timeout_s, const char *report_path, const char *job_json, char *err,
                     unsigned long errlen);

/** Starts the thread that refreshes the placeholder and the template every 2 s (when
 *  hetrun_guard_arm was given a report path). Called after the backend probes: a probe
 *  forks a child that loads a module, and a fork while another thread holds a lock (the
 *  allocator's, under ASan) can leave that child deadlocked. */
void hetrun_guard_start_refresh(void);
/**
 * Ends the job from any thread: while armed, replaces the report with a failed one giving
 * `reason` (and every rank's usage up to now); prints it; exits 1 (mpirun then stops the
 * other ranks).
 */
void hetrun_guard_fail(const char *reason) __attribute__((noreturn));
/** hetrun_guard_fail naming the rank that failed: its record in the report says so. */
void hetrun_guard_fail_rank(int rank, const char *reason) __attribute__((noreturn));
/** Rank 0 failed in a job whose ranks communicate, and the caller will abort the job:
 *  writes the failed report now with `reason`, rank 0's record `own` (its closed record,
 *  results included) and the others' records as last heard, and keeps any signal from
 *  replacing it. Only on the rank that writes the report, while armed. */
void hetrun_guard_abort_report(const cJSON *own, const char *reason);
/** An error before the job started (no backend, no placement): while armed, writes the
 *  failed report with `reason`, then disarms; the caller returns its own exit code. */
void hetrun_guard_end(const char *reason);
/** Called (async-signal-safe) by the handler of a rank without the report when a signal
 *  ends it, before it exits: the heartbeat tells rank 0. NULL: nobody. */
void hetrun_guard_set_signal_notify(void (*notify)(int sig));
/** After MPI_Init: a process armed as rank 0 (from the environment) that MPI says is rank
 *  `mpi_rank` != 0 stops writing the report (it keeps its timeout and signal handling). */
void hetrun_guard_confirm_rank(int mpi_rank);
/** Disarms (before the final report is written). */
void hetrun_guard_disarm(void);

/** Who adds the other ranks' records to a report being rendered (rank 0's heartbeat, with
 *  hetrun_guard_peer_record for each); NULL: none. Called from the refresh thread and from
 *  the failure path, never from a signal handler. */
void hetrun_guard_set_peers(void (*append)(cJSON *ranks));
/**
 * One other rank's record for the report being rendered, from what it last sent:
 * `live_text` (its hetrun_usage_live_render text; NULL or unparsable: rank and host only,
 * nothing counted), received at `heard_s` (hetrun_now_s on this node). `finished`: it said
 * it finished. Its state and error follow the report (the failed rank, "finished",
 * "running" or "interrupted"), usage_as_of is when it was heard, and a rank still working
 * is billed up to the report's moment (its wall then plus the time since it was heard).
 */
cJSON *hetrun_guard_peer_record(int rank, const char *host, const char *live_text, double heard_s,
                                int finished);

#endif
