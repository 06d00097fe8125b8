/**
 * @file launcher/cli/run_guard.h
 * @brief Keeps `hetrun run` from hanging or leaving a report that looks complete or says
 *        nothing. Armed before MPI_Init (the rank comes from the launcher's environment),
 *        so limits.timeout counts from the start, not from the slowest node's arrival.
 *        Rank 0 leaves a placeholder "failed: did not finish" report at once and keeps, per
 *        signal (SIGTERM, SIGINT, SIGHUP) and for the timeout, a complete failed report
 *        beside it, fsynced in advance and refreshed every few seconds with every rank's
 *        usage so far: the signal handler only rename(2)s the right one over the report,
 *        which finishes long before Open MPI's SIGKILL follows its SIGTERM.
 */
#ifndef HETRUN_CLI_RUN_GUARD_H
#define HETRUN_CLI_RUN_GUARD_H

#include <cjson/cJSON.h>

#include "exec/session.h"

/**
 * Arms the guard. `report_path` may be NULL (ranks other than 0 write no report);
 * `job_json` is the report's "job" object as JSON text. timeout_s <= 0: no timeout.
 * Returns 0 or -1 (report path unusable: message in err).
 */
int hetrun_guard_arm(double timeout_s, const char *report_path, const char *job_json, char *err,
                     unsigned long errlen);

/** Starts the thread that refreshes the pre-written failure reports every 2 s (when
 *  hetrun_guard_arm was given a report path). Called after the backend probes: a probe
 *  forks a child that loads a module, and a fork while another thread holds a lock (the
 *  allocator's, under ASan) can leave that child deadlocked. */
void hetrun_guard_start_refresh(void);
/**
 * Ends the job from any thread: while armed, replaces the report with a failed one giving
 * `reason` (and the ranks' usage so far); prints it; exits 1 (mpirun then stops the other
 * ranks).
 */
void hetrun_guard_fail(const char *reason) __attribute__((noreturn));
/** hetrun_guard_fail naming the rank that failed: its record in the report says so. */
void hetrun_guard_fail_rank(int rank, const char *reason) __attribute__((noreturn));
/** An error before the job started (no backend, no placement): while armed, writes the
 *  failed report with `reason`, then disarms; the caller returns its own exit code. */
void hetrun_guard_end(const char *reason);
/** Called (async-signal-safe) by the handler of a rank without the report when a signal
 *  ends it, before it exits: the heartbeat tells rank 0. NULL: nobody. */
void hetrun_guard_set_signal_notify(void (*notify)(int sig));
/** After MPI_Init: a process armed as rank 0 (from the environment) that MPI says is rank
 *  `mpi_rank` != 0 stops writing the report (it keeps its timeout and signal handling). */
void hetrun_guard_confirm_rank(int mpi_rank);
/** Disarms (before the final report is written) and removes the pre-written reports. */
void hetrun_guard_disarm(void);

/** The usage counters of this rank's session (NULL: none, e.g. the session closed);
 *  snapshots of it go into the pre-written reports and to rank 0 with the heartbeat. */
void hetrun_guard_track_usage(const hetrun_usage *u);
/** This rank's usage so far: 0 and *out (wall_s up to now) with the start time (Unix
 *  seconds) in *started, or -1 when no session is tracked. */
int hetrun_guard_usage_snapshot(hetrun_usage *out, double *started);
/**
 * One rank's record in a failed report written by the guard: rank, host, status "failed"
 * (the report schema's), state ("running" in the placeholder, "interrupted" when the job
 * was ended, "failed" for the rank that caused it, "finished" for a rank that was done),
 * error (from the state and the job's `reason`), started_at, usage_as_of (ISO 8601 UTC)
 * and the usage record of report/report.h (hetrun_report_usage_json; zeros when `u` is
 * NULL: no session yet).
 */
cJSON *hetrun_guard_rank_record(int rank, const char *host, const char *state, const char *reason,
                                double started, double as_of, const hetrun_usage *u);
/** Who adds the other ranks' records (rank 0's heartbeat); NULL: none. Called from the
 *  guard's refresh thread and from hetrun_guard_fail: `failed_rank` (-1: none) gets state
 *  "failed", ranks that finished "finished", the others `others`; `reason` as above. */
void hetrun_guard_set_peers(void (*append)(cJSON *ranks, int failed_rank, const char *others,
                                           const char *reason));

#endif
