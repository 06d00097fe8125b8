/* Checkpoint on a signal (see checkpoint_request.h). */
#include "exec/checkpoint_request.h"

#include <mpi.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "util/log.h"

static volatile sig_atomic_t pending;
static int armed_signal, stop_after_request, stopped_by;

static void on_request(int sig) {
    (void)sig;
    pending = 1;
}

void hetrun_checkpoint_request_arm(const hetrun_job_limits *limits) {
    int signo = limits->checkpoint_signal == HETRUN_CKPT_SIGNAL_USR1   ? SIGUSR1
                : limits->checkpoint_signal == HETRUN_CKPT_SIGNAL_USR2 ? SIGUSR2
                                                                       : 0;
    armed_signal = signo;
    stop_after_request = limits->on_signal == HETRUN_ON_SIGNAL_STOP;
    if (!signo) return;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_request;
    sa.sa_flags = SA_RESTART; /* a request must not fail a read or a wait */
    sigemptyset(&sa.sa_mask);
    sigaction(signo, &sa, NULL);
}

static const char *signal_name(void) {
    return armed_signal == SIGUSR1 ? "SIGUSR1" : armed_signal == SIGUSR2 ? "SIGUSR2" : "signal";
}

int hetrun_checkpoint_request_poll(hetrun_session *s, int64_t step) {
    if (!armed_signal) return HETRUN_CKPT_REQ_NONE;
    int mine = pending;
    if (mine) pending = 0;
    if (s->nranks > 1) MPI_Allreduce(MPI_IN_PLACE, &mine, 1, MPI_INT, MPI_MAX, s->comm);
    if (!mine) return HETRUN_CKPT_REQ_NONE;
    const char *dir = s->job ? s->job->checkpoint.dir : NULL;
    if (s->rank == 0) {
        if (dir)
            HETRUN_WARN("%s: writing a checkpoint to %s at step %lld, then %s (limits.on_signal)",
                        signal_name(), dir, (long long)step,
                        stop_after_request ? "stopping" : "continuing");
        else
            HETRUN_WARN("%s: no checkpoint written at step %lld: the spec has no checkpoint.dir; "
                        "%s (limits.on_signal)",
                        signal_name(), (long long)step,
                        stop_after_request ? "stopping" : "continuing");
    }
    if (!stop_after_request) return HETRUN_CKPT_REQ_CONTINUE;
    stopped_by = armed_signal;
    return HETRUN_CKPT_REQ_STOP;
}

void hetrun_checkpoint_request_stop_error(hetrun_session *s, int64_t step) {
    const char *dir = s->job ? s->job->checkpoint.dir : NULL;
    if (dir)
        snprintf(s->error, sizeof s->error,
                 "stopped on %s at step %lld after writing a checkpoint to %s "
                 "(limits.on_signal: checkpoint-stop); resume with checkpoint.resume: true",
                 signal_name(), (long long)step, dir);
    else
        snprintf(s->error, sizeof s->error,
                 "stopped on %s at step %lld (limits.on_signal: checkpoint-stop); no checkpoint "
                 "written: the spec has no checkpoint.dir",
                 signal_name(), (long long)step);
}

int hetrun_checkpoint_request_stopped(void) {
    return stopped_by;
}
