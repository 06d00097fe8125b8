/**
 * @file launcher/cli/heartbeat.h
 * @brief Detects a stopped or lost peer rank. A rank spinning in a collective cannot tell
 *        a slow peer from one that was SIGSTOPped or whose node died, and would wait
 *        forever; a heartbeat thread per rank, on a TCP connection to rank 0 that is
 *        independent of MPI, can. Rank 0 names a silent rank (rank and host) in the failed
 *        report and ends the job; a rank that hears nothing from rank 0 ends itself.
 */
#ifndef HETRUN_CLI_HEARTBEAT_H
#define HETRUN_CLI_HEARTBEAT_H

/**
 * Collective over MPI_COMM_WORLD, right after MPI_Init so that every later collective
 * (the job agreement, the workloads, the report) is covered. `timeout_s` <= 0 or one rank:
 * nothing. The set-up itself is bounded (20 s + `timeout_s`): a peer stopped before it ends
 * the job named as such. When a rank cannot reach rank 0 (a firewall between nodes), every
 * rank warns and runs without it. On a lost peer rank 0 calls hetrun_guard_fail (exit 1).
 */
void hetrun_heartbeat_start(double timeout_s, int rank, int nranks);
/** Stops the thread and closes the connections (before MPI_Finalize). */
void hetrun_heartbeat_stop(void);

#endif
