/**
 * @file launcher/report/live_usage.h
 * @brief This rank's usage so far, for reports written before the rank finishes: the
 *        failure path (signal, timeout, peer loss, abort), the periodic rewrites of the
 *        report kept ready (cli/run_guard.c) and the heartbeat that carries the other ranks'
 *        records to rank 0. The run registers the rank once; any thread may then render its
 *        record. One mechanism: a failure report's ranks[] are these records.
 *
 * The counters are read while the rank's thread updates them: a figure may lag by the op
 * in flight, never more (each is one aligned word, written by that thread only).
 */
#ifndef HETRUN_REPORT_LIVE_USAGE_H
#define HETRUN_REPORT_LIVE_USAGE_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "report/report.h"

/** Registers this rank: its identity from `rank_obj` (rank, host, node, cpus, backend,
 *  backend_version, device: copied now) and the live counters `u` with the clock the rank
 *  started on. `u` must stay valid until hetrun_usage_live_close or _clear. */
void hetrun_usage_live_set(const cJSON *rank_obj, const hetrun_usage *u,
                           const hetrun_usage_clock *c);

/** The rank closed `rank_obj` (its usage, final when it finished its work, is in it): keeps
 *  a copy of its identity and usage, so a failure report written while the job still
 *  gathers its records bills the finished rank, and forgets the live counters. */
void hetrun_usage_live_close(const cJSON *rank_obj);

/** Forgets the rank and any closed record. */
void hetrun_usage_live_clear(void);

/**
 * This rank's record up to now, as one element of a report's ranks[]: rank, host, node,
 * cpus, backend, backend_version, device, usage (started_at, ended_at = now, wall up to
 * now, counters as they stand, final false; once closed: the closed record's usage, final
 * as it was closed), state ("running", or "finished" once closed), status "failed" and
 * `error` (the cause, may be NULL). NULL when no rank is registered or out of memory. Not
 * async-signal-safe: a signal handler fills in a report rendered ahead (cli/run_guard.c).
 */
cJSON *hetrun_usage_live_rank(const char *error);

/**
 * The same record as JSON text in `buf` (no trailing newline), what each rank sends rank 0
 * with its heartbeat. Returns the length, or -1 when nothing is registered or the text does
 * not fit (buf then holds ""). Call it from a normal thread, not a signal handler.
 */
int hetrun_usage_live_render(const char *error, char *buf, size_t len);

#endif
