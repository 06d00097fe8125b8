/**
 * @file launcher/util/clock.h
 * @brief The one host clock for wall times (monotonic, so a clock step cannot make a
 *        duration negative).
 */
#ifndef HETRUN_UTIL_CLOCK_H
#define HETRUN_UTIL_CLOCK_H

/** Seconds on CLOCK_MONOTONIC (an arbitrary origin: use differences). */
double hetrun_now_s(void);

#endif
