/**
 * @file launcher/util/progress.h
 * @brief A run you can watch: rank 0's progress on stderr. On a terminal one line, rewritten
 *        in place (`\r`) at most 5 times a second: the workload point (i/N), the point's
 *        units done/total (iterations, sizes, steps, batches), the job's percentage, elapsed
 *        time and ETA, and a workload detail (loss). Elsewhere (a log file, a batch job) the
 *        same text as a plain line every $HETRUN_PROGRESS_INTERVAL seconds (10). Never on a
 *        rank but 0. Shown or not: `hetrun run --progress`, else $HETRUN_PROGRESS, else the
 *        spec's `job.progress`, each auto, always or never (auto: the next one decides; at
 *        the end, shown). Workloads call it without knowing which.
 */
#ifndef HETRUN_UTIL_PROGRESS_H
#define HETRUN_UTIL_PROGRESS_H

#include <stddef.h>
#include <stdint.h>

/** Whether progress is shown (in the order of the spec's job.progress choices). AUTO: no
 *  preference at that level. */
typedef enum {
    HETRUN_PROGRESS_AUTO,
    HETRUN_PROGRESS_ALWAYS,
    HETRUN_PROGRESS_NEVER
} hetrun_progress_mode;

/** "auto", "always" or "never" (and, for the environment, "1" and "0"): the mode, or -1. */
int hetrun_progress_mode_parse(const char *text);

/** Who decides, before the first point: the command line's mode and the spec's; the
 *  environment's HETRUN_PROGRESS is read between them (an unknown value: a warning, then
 *  ignored). CLI > environment > spec > shown. */
void hetrun_progress_configure(hetrun_progress_mode cli, hetrun_progress_mode spec);

/** A workload point starts: point `index` (0-based) of `count`, named `label`. The first
 *  call starts the job's clock; `rank` decides who prints (rank 0 only). */
void hetrun_progress_point(int rank, size_t index, size_t count, const char *label);

/** Within the current point: `done` of `total` `unit`s (e.g. "iterations"), and an optional
 *  workload detail ("loss 2.3104"; NULL: none). Cheap when nothing is due to print. */
void hetrun_progress_update(int64_t done, int64_t total, const char *unit, const char *detail);

/** Serving workloads (infer, embed): batch size `batch`, the `bi`-th of `nb`, `count` timed
 *  requests so far of `iterations`, or `elapsed` of `duration` seconds when duration > 0. */
void hetrun_progress_serving(int64_t batch, size_t bi, size_t nb, int64_t count, int64_t iterations,
                             double elapsed, double duration);

/** A line that stays (a workload's own log line, e.g. train's `log_every`): printed once,
 *  prefixed "[rank 0] ", above the live line on a terminal. Rank 0 only; not silenced by
 *  the progress mode never (the workload asked for it). */
void hetrun_progress_note(int rank, const char *line);

/** Takes the live line off the terminal (the next update redraws it); util/log.c calls it
 *  before each log line. */
void hetrun_progress_clear(void);

/** The job's work is done: clears the live line on a terminal. */
void hetrun_progress_end(void);

#endif
