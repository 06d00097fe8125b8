/**
 * @file launcher/exec/checkpoint_request.h
 * @brief A checkpoint asked for from outside the job: a signal (limits.checkpoint_signal,
 *        SIGUSR1 by default: Slurm's `--signal=USR1@SECONDS` warning before the time
 *        limit) makes training write a checkpoint at the next step boundary, then go
 *        on or stop (limits.on_signal).
 *        The handler only sets a flag; train loops poll once per step, collectively, so
 *        every rank acts at the same step even when the signal reached only some.
 */
#ifndef HETRUN_EXEC_CHECKPOINT_REQUEST_H
#define HETRUN_EXEC_CHECKPOINT_REQUEST_H

#include "exec/session.h"
#include "spec/job.h"

/** What a poll says: nothing, or checkpoint now and then continue or stop. */
enum { HETRUN_CKPT_REQ_NONE = 0, HETRUN_CKPT_REQ_CONTINUE = 1, HETRUN_CKPT_REQ_STOP = 2 };

/** Installs the handler for limits.checkpoint_signal (none: nothing) with what a request
 *  does afterwards (limits.on_signal). Early, so no rank dies of the signal. */
void hetrun_checkpoint_request_arm(const hetrun_job_limits *limits);
/** Collective over s->comm, once per step (after step `step`): one of HETRUN_CKPT_REQ_*;
 *  a request counts once. Rank 0 logs what happens next. */
int hetrun_checkpoint_request_poll(hetrun_session *s, int64_t step);
/** After the checkpoint of a stop request: the rank's error (the signal, the step, where
 *  the checkpoint is, how to resume) in s->error. */
void hetrun_checkpoint_request_stop_error(hetrun_session *s, int64_t step);
/** The signal whose request stopped the job, or 0. */
int hetrun_checkpoint_request_stopped(void);

#endif
