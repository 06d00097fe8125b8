/**
 * @file launcher/cli/run_guard.h
 * @brief Keeps `hetrun run` from hanging or leaving a report that looks complete: a
 *        placeholder "failed: did not finish" report at start, and on timeout
 *        (limits.timeout) or SIGTERM/SIGINT a failed report naming the cause, written
 *        with async-signal-safe calls only, then exit 124 or 128+signal.
 */
#ifndef HETRUN_CLI_RUN_GUARD_H
#define HETRUN_CLI_RUN_GUARD_H

/**
 * Arms the guard. `report_path` may be NULL (ranks other than 0 write no report);
 * `job_json` is the report's "job" object as JSON text. timeout_s <= 0: no timeout.
 * Returns 0 or -1 (report path unusable: message in err).
 */
int hetrun_guard_arm(double timeout_s, const char *report_path, const char *job_json, char *err,
                     unsigned long errlen);
/**
 * Ends the job from any thread: while armed, replaces the report with a failed one giving
 * `reason`; prints it; exits 1 (mpirun then stops the other ranks).
 */
void hetrun_guard_fail(const char *reason) __attribute__((noreturn));
/** Disarms (before the final report is written). */
void hetrun_guard_disarm(void);

#endif
