/**
 * @file launcher/util/clock.h
 * @brief The host clocks: wall time (monotonic, so a clock step cannot make a duration
 *        negative) and this thread's CPU time.
 */
#ifndef HETRUN_UTIL_CLOCK_H
#define HETRUN_UTIL_CLOCK_H

/** Seconds on CLOCK_MONOTONIC (an arbitrary origin: use differences). */
double hetrun_now_s(void);

/** CPU seconds this thread has run: the work done, whatever the node's load (time spent
 *  waiting for a core does not count). Use differences. */
double hetrun_thread_cpu_s(void);

#endif
