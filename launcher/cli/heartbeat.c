/* Heartbeat between rank 0 and every other rank (see heartbeat.h): one TCP connection per
 * rank to rank 0, a byte each way every period, silence beyond the limit ends the job. */
#define _GNU_SOURCE /* POLLRDHUP: a rank ending by a signal waits for rank 0's end to close */
#include "cli/heartbeat.h"

#include <errno.h>
#include <fcntl.h>
#include <mpi.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cli/run_guard.h"
#include "report/live_usage.h"
#include "util/clock.h"
#include "util/exitcodes.h"
#include "util/log.h"

typedef struct hello {
    int32_t rank;
    char host[64];
} hello;

/* What a rank sends rank 0 every period: a header and its record so far as
 * report/live_usage.h renders it (identity, device, usage; `len` bytes of JSON text, none
 * before its session opens), or, once, that it finished, or the signal that ends it.
 * `magic` lets rank 0 notice a stream that lost its framing instead of misreading it. */
enum { MSG_BEAT = 1, MSG_FINISHED = 2, MSG_SIGNAL = 3 };
enum { RECORD_MAX = 1 << 16 }; /* a longer record is not sent */
#define BEAT_MAGIC 0x32746268  /* "hbt2": header and text */
typedef struct beat_msg {
    int32_t kind;
    int32_t signo; /* MSG_SIGNAL: the signal that ends the rank */
    uint32_t len;  /* bytes of record text that follow */
    int32_t magic;
} beat_msg;

typedef struct peer {
    int fd; /* -1 once closed */
    int rank;
    char host[64];
    double last;
    int finished;   /* said MSG_FINISHED before closing */
    int garbled;    /* a record failed its magic: liveness only from then on */
    char *record;   /* the last record it sent (NUL-terminated), NULL: none */
    double heard;   /* when that record came */
    beat_msg in;    /* the message being read: header, then `text` */
    char *text;     /* `in.len` + 1 bytes */
    size_t in_have; /* bytes of the message read so far */
} peer;

static peer *peers;
static int npeers, me, stop_fds[2] = {-1, -1}, running;
static double limit_s, period_s;
static pthread_t thread;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER; /* peers' records vs the guard */

static void set_nonblocking(int fd) {
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0) fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

/* Reads exactly n bytes within `secs`; 0 or -1. */
static int read_within(int fd, void *buf, size_t n, double secs) {
    char *p = buf;
    double end = hetrun_now_s() + secs;
    while (n > 0) {
        struct pollfd pfd = {fd, POLLIN, 0};
        int left = (int)((end - hetrun_now_s()) * 1000.0);
        if (left <= 0 || poll(&pfd, 1, left) <= 0) return -1;
        ssize_t r = read(fd, p, n);
        if (r < 0 && (errno == EINTR || errno == EAGAIN)) continue;
        if (r <= 0) return -1;
        p += r, n -= (size_t)r;
    }
    return 0;
}

/* Connects to host:port within `secs`; the socket or -1 with the cause in why. */
static int connect_within(const char *host, int port, double secs, char *why, size_t len) {
    char service[16];
    snprintf(service, sizeof service, "%d", port);
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    int gai = getaddrinfo(host, service, &hints, &res);
    if (gai != 0) {
        snprintf(why, len, "cannot resolve %s: %s", host, gai_strerror(gai));
        return -1;
    }
    int fd = -1;
    snprintf(why, len, "no address of %s answered", host);
    for (struct addrinfo *a = res; a && fd < 0; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0) continue;
        set_nonblocking(fd);
        int rc = connect(fd, a->ai_addr, a->ai_addrlen), err = 0;
        if (rc != 0 && errno == EINPROGRESS) {
            struct pollfd pfd = {fd, POLLOUT, 0};
            socklen_t el = sizeof err;
            rc = poll(&pfd, 1, (int)(secs * 1000.0)) == 1 &&
                         getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) == 0 && err == 0
                     ? 0
                     : -1;
            if (rc != 0) errno = err ? err : ETIMEDOUT;
        }
        if (rc != 0) {
            snprintf(why, len, "connect to %s:%d: %s", host, port, strerror(errno));
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    return fd;
}

/* Ends the job because `rank` on `host` is lost: `how` > 0: it said a signal ends it;
 * -1: its connection closed without it finishing (killed or crashed); 0: it was silent
 * `silent` seconds. */
static void lost(int rank, const char *host, int how, double silent) {
    char reason[512];
    if (how == SIGALRM) /* its own clock ran out first */
        snprintf(reason, sizeof reason,
                 "timeout: job exceeded limits.timeout (rank %d on host %s reached it first)", rank,
                 host);
    else if (how > 0)
        snprintf(reason, sizeof reason, "rank %d (host %s) was ended by signal %d (%s)", rank, host,
                 how,
                 how == SIGTERM  ? "SIGTERM"
                 : how == SIGINT ? "SIGINT"
                 : how == SIGHUP ? "SIGHUP"
                                 : "see signal(7)");
    else if (how < 0)
        snprintf(reason, sizeof reason,
                 "rank %d (host %s) ended without finishing: killed, crashed or aborted "
                 "(its heartbeat connection to rank 0 closed)",
                 rank, host);
    else
        snprintf(reason, sizeof reason,
                 "rank %d (host %s) sent no heartbeat for %.1f s: stopped, hung outside hetrun, "
                 "or its node is lost (limits.peer_timeout %g s)",
                 rank, host, silent, limit_s);
    if (me == 0) hetrun_guard_fail_rank(rank, reason); /* writes the report, exits 1 */
    HETRUN_ERROR("%s; ending rank %d so the job does not wait forever", reason, me);
    _exit(HETRUN_EXIT_FAILED);
}

/* Rank 0: the other ranks' records for the guard's reports. */
static void append_peers(cJSON *ranks) {
    pthread_mutex_lock(&mu);
    for (int i = 0; i < npeers; i++) {
        const peer *p = &peers[i];
        cJSON_AddItemToArray(
            ranks, hetrun_guard_peer_record(p->rank, p->host, p->record, p->heard, p->finished));
    }
    pthread_mutex_unlock(&mu);
}

/* Rank 0 reads what a rank sent: 0, the signal that ends the rank, or -1 when its
 * connection closed. */
static int read_peer(peer *p, double t) {
    const size_t hl = sizeof p->in;
    char scratch[4096]; /* a garbled stream: read only to see the rank is alive */
    char *dst = p->garbled        ? scratch
                : p->in_have < hl ? (char *)&p->in + p->in_have
                                  : p->text + (p->in_have - hl);
    size_t want = p->garbled        ? sizeof scratch
                  : p->in_have < hl ? hl - p->in_have
                                    : hl + p->in.len - p->in_have;
    ssize_t r = read(p->fd, dst, want);
    if (r < 0 && (errno == EAGAIN || errno == EINTR)) return 0;
    if (r <= 0) return -1;
    p->last = t;
    if (p->garbled) return 0;
    p->in_have += (size_t)r;
    if (p->in_have < hl) return 0;
    if (p->in_have == hl) { /* the header is in: check it, make room for the text */
        char *grown = NULL;
        if (p->in.magic == BEAT_MAGIC && p->in.kind >= MSG_BEAT && p->in.kind <= MSG_SIGNAL &&
            p->in.len < RECORD_MAX)
            grown = realloc(p->text, (size_t)p->in.len + 1);
        if (!grown) {
            /* Bytes still arrive, so the rank is alive; what they say can no longer be read. */
            p->garbled = 1;
            HETRUN_WARN("heartbeat: rank %d (host %s) sent a record that is not one; its usage "
                        "in a failure report stays as of its last good record",
                        p->rank, p->host);
            return 0;
        }
        p->text = grown;
    }
    if (p->in_have < hl + p->in.len) return 0;
    p->in_have = 0;
    p->text[p->in.len] = '\0';
    pthread_mutex_lock(&mu);
    if (p->in.kind == MSG_FINISHED) p->finished = 1;
    if (p->in.len > 0) { /* keep it: swap the buffers */
        char *old = p->record;
        p->record = p->text;
        p->text = old;
        p->heard = t;
    }
    pthread_mutex_unlock(&mu);
    return p->in.kind == MSG_SIGNAL && p->in.signo > 0 ? p->in.signo : 0;
}

/* Another rank's record in flight (header and text): never abandoned half-sent (a partial
 * one would shift every later record); what does not go out within a call's time stays
 * pending and goes first next time. */
static char out[sizeof(beat_msg) + RECORD_MAX];
static size_t out_len, out_done; /* out_done == out_len: nothing pending */
static atomic_int out_partial;   /* 0 < out_done < out_len: the signal path must wait */

/* Another rank, from the guard's signal handler: which signal ends it, to rank 0, so the
 * report names the signal, not only a closed connection. Async-signal-safe: one send of
 * a message prepared at start, skipped while a beat is half sent (rank 0 then sees the
 * connection close, "ended without finishing", rather than a torn record).
 *
 * Then the rank holds its exit until rank 0 closes its end of the connection (rank 0 wrote
 * the failed report and exited), for at most signal_hold_ms. mpirun signals all local ranks
 * in one loop; on a loaded node rank 0, signalled with a peer but scheduled after it, then
 * vanished without its pending handler running, soon after the peer left (the placeholder
 * stayed: seen in CI, and in 10 of 98 runs beside four CPU hogs; none of 70 with the hold).
 * The likely cause, which every trace fits: Open MPI ends a process whose peer vanished (a
 * closed TCP connection, the runtime's "process aborted" event) on one of its own threads.
 * mpirun's SIGKILL, 1 s after its SIGTERM (odls_base_sigkill_timeout), may cut the hold
 * short; every rank is ending then anyway. */
enum { signal_hold_ms = 3000 };
static int rank0_closed_fd = -1; /* another rank: rank 0's connection once it closed */
static beat_msg signal_msg;
static volatile int signal_fd = -1;
static void notify_signal(int sig) {
    int fd = signal_fd;
    if (fd < 0) return;
    signal_msg.signo = sig;
    if (!atomic_load(&out_partial))
        (void)!send(fd, &signal_msg, sizeof signal_msg, MSG_NOSIGNAL | MSG_DONTWAIT);
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        clock_gettime(CLOCK_MONOTONIC, &now);
        long left = signal_hold_ms - (long)(now.tv_sec - start.tv_sec) * 1000 -
                    (now.tv_nsec - start.tv_nsec) / 1000000;
        if (left <= 0) return;
        struct pollfd pfd = {fd, POLLRDHUP, 0}; /* POLLHUP, POLLERR, POLLNVAL come anyway */
        int r = poll(&pfd, 1, (int)left);
        if (r > 0 || (r < 0 && errno != EINTR)) return;
    }
}

/* Another rank: its usage so far, or that it finished, to rank 0, within `secs`. Returns 1
 * once a record of `kind` went out whole. */
static int send_beat(int fd, int kind, double secs) {
    double end = hetrun_now_s() + secs;
    int mine = 0;
    for (;;) {
        if (out_done == out_len) {
            if (mine) return 1;
            beat_msg h;
            memset(&h, 0, sizeof h);
            h.kind = kind;
            h.magic = BEAT_MAGIC;
            int len = hetrun_usage_live_render(NULL, out + sizeof h, RECORD_MAX);
            h.len = len > 0 ? (uint32_t)len : 0;
            memcpy(out, &h, sizeof h);
            out_len = sizeof h + h.len;
            out_done = 0;
            mine = 1;
        }
        ssize_t w = send(fd, out + out_done, out_len - out_done, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w > 0) {
            out_done += (size_t)w;
            atomic_store(&out_partial, out_done < out_len);
            continue;
        }
        double left = end - hetrun_now_s();
        if (w == 0 || (errno != EAGAIN && errno != EINTR) || left <= 0) return 0;
        struct pollfd pfd = {fd, POLLOUT, 0};
        (void)poll(&pfd, 1, left < 0.1 ? (int)(left * 1000.0) + 1 : 100);
    }
}

static void *beat(void *arg) {
    (void)arg;
    struct pollfd *pfd = calloc((size_t)npeers + 1, sizeof *pfd);
    if (!pfd) return NULL;
    double next_send = 0.0;
    for (;;) {
        pfd[0] = (struct pollfd){stop_fds[0], POLLIN, 0};
        for (int i = 0; i < npeers; i++)
            pfd[i + 1] = (struct pollfd){peers[i].fd, POLLIN, 0}; /* fd -1 is ignored */
        int pr = poll(pfd, (nfds_t)npeers + 1, (int)(period_s * 1000.0));
        if (pr < 0 && errno != EINTR) break;
        if (pfd[0].revents) break;
        double t = hetrun_now_s();
        for (int i = 0; i < npeers; i++) {
            peer *p = &peers[i];
            if (p->fd < 0 || !pfd[i + 1].revents) continue;
            int closed;
            if (me == 0) {
                int got = read_peer(p, t);
                if (got > 0) lost(p->rank, p->host, got, 0.0);
                closed = got < 0;
            } else {
                char buf[64];
                ssize_t r = read(p->fd, buf, sizeof buf);
                if (r > 0) p->last = t;
                closed = r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR);
            }
            if (!closed) continue;
            /* Another rank keeps rank 0's descriptor open until heartbeat_stop: its signal
             * handler may be polling it (notify_signal), and a closed number can be reused. */
            if (me == 0)
                close(p->fd);
            else
                rank0_closed_fd = p->fd;
            p->fd = -1;
            /* Rank 0 names a rank that went away unannounced (mpirun is about to end the
             * job, and would not say which rank died). Rank 0 itself closing means it
             * finished or died; mpirun ends the job either way. */
            if (me == 0 && !p->finished) lost(p->rank, p->host, -1, 0.0);
        }
        if (t >= next_send) {
            for (int i = 0; i < npeers; i++) {
                if (peers[i].fd < 0) continue;
                if (me == 0)
                    (void)!send(peers[i].fd, "b", 1, MSG_NOSIGNAL);
                else
                    (void)send_beat(peers[i].fd, MSG_BEAT, period_s);
            }
            next_send = t + period_s;
        }
        /* Name the longest-silent peer: a stopped rank's node-mates may fall silent too,
         * blocked in a collective with it on a loaded node, but after it. */
        int worst = -1;
        for (int i = 0; i < npeers; i++)
            if (peers[i].fd >= 0 && t - peers[i].last > limit_s &&
                (worst < 0 || peers[i].last < peers[worst].last))
                worst = i;
        if (worst >= 0) lost(peers[worst].rank, peers[worst].host, 0, t - peers[worst].last);
    }
    free(pfd);
    return NULL;
}

static void close_peers(void) {
    hetrun_guard_set_peers(NULL);
    if (rank0_closed_fd >= 0) close(rank0_closed_fd);
    rank0_closed_fd = -1;
    pthread_mutex_lock(&mu);
    for (int i = 0; i < npeers; i++) {
        if (peers[i].fd >= 0) close(peers[i].fd);
        free(peers[i].record);
        free(peers[i].text);
    }
    free(peers);
    peers = NULL;
    npeers = 0;
    pthread_mutex_unlock(&mu);
}

/* The set-up is collective: a peer stopped before it (or during it) would leave this rank
 * waiting in MPI forever, with no heartbeat yet to notice. A watchdog bounds it. */
static pthread_mutex_t setup_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t setup_cv = PTHREAD_COND_INITIALIZER;
static int setup_done;
static double setup_limit_s;

static void *setup_watchdog(void *arg) {
    (void)arg;
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += (time_t)setup_limit_s;
    pthread_mutex_lock(&setup_mu);
    int rc = 0;
    while (!setup_done && rc != ETIMEDOUT)
        rc = pthread_cond_timedwait(&setup_cv, &setup_mu, &until);
    int late = !setup_done;
    pthread_mutex_unlock(&setup_mu);
    if (late) {
        char reason[256];
        snprintf(reason, sizeof reason,
                 "the heartbeat between ranks was not set up within %.0f s: a peer rank is "
                 "stopped, hung or lost since MPI_Init (limits.peer_timeout %g s)",
                 setup_limit_s, limit_s);
        if (me == 0) hetrun_guard_fail(reason); /* writes the report, exits 1 */
        HETRUN_ERROR("%s; ending rank %d so the job does not wait forever", reason, me);
        _exit(HETRUN_EXIT_FAILED);
    }
    return NULL;
}

static void setup_finished(pthread_t watchdog, int have_watchdog) {
    pthread_mutex_lock(&setup_mu);
    setup_done = 1;
    pthread_cond_signal(&setup_cv);
    pthread_mutex_unlock(&setup_mu);
    if (have_watchdog) pthread_join(watchdog, NULL);
}

void hetrun_heartbeat_start(double timeout_s, int rank, int nranks) {
    if (timeout_s <= 0 || nranks < 2) return;
    /* Connecting and greeting are bounded by 10 s each inside; beyond that plus the
     * peer limit, something is stopped. */
    setup_limit_s = 20.0 + timeout_s;
    setup_done = 0;
    pthread_t watchdog;
    sigset_t all, before;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &before); /* signals stay with the main thread */
    int have_watchdog = pthread_create(&watchdog, NULL, setup_watchdog, NULL) == 0;
    pthread_sigmask(SIG_SETMASK, &before, NULL);
    me = rank;
    limit_s = timeout_s;
    period_s = timeout_s / 4 < 1.0 ? timeout_s / 4 : 1.0;
    struct {
        char host[256];
        int32_t port;
    } addr;
    memset(&addr, 0, sizeof addr);
    addr.port = -1;
    int lfd = -1, ok = 1;
    char why[512] = "";
    if (rank == 0) {
        struct sockaddr_in sa;
        socklen_t sl = sizeof sa;
        memset(&sa, 0, sizeof sa);
        sa.sin_family = AF_INET;
        sa.sin_addr.s_addr = htonl(INADDR_ANY);
        lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (lfd >= 0 && bind(lfd, (struct sockaddr *)&sa, sizeof sa) == 0 &&
            listen(lfd, nranks) == 0 && getsockname(lfd, (struct sockaddr *)&sa, &sl) == 0)
            addr.port = ntohs(sa.sin_port);
        else
            snprintf(why, sizeof why, "rank 0 cannot listen: %s", strerror(errno));
        gethostname(addr.host, sizeof addr.host - 1);
    }
    MPI_Bcast(&addr, sizeof addr, MPI_BYTE, 0, MPI_COMM_WORLD);
    npeers = rank == 0 ? nranks - 1 : 1;
    peers = calloc((size_t)npeers, sizeof *peers);
    for (int i = 0; peers && i < npeers; i++)
        peers[i].fd = -1;
    ok = peers != NULL && addr.port > 0;
    /* Connections complete in rank 0's listen backlog; it accepts once all connected. */
    if (ok && rank != 0) {
        hello h;
        memset(&h, 0, sizeof h);
        h.rank = rank;
        gethostname(h.host, sizeof h.host - 1);
        peers[0].fd = connect_within(addr.host, addr.port, 10.0, why, sizeof why);
        peers[0].rank = 0;
        snprintf(peers[0].host, sizeof peers[0].host, "%.63s", addr.host);
        ok = peers[0].fd >= 0 && send(peers[0].fd, &h, sizeof h, MSG_NOSIGNAL) == sizeof h;
    }
    MPI_Allreduce(MPI_IN_PLACE, &ok, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    if (ok && rank == 0) {
        set_nonblocking(lfd);
        for (int i = 0; ok && i < npeers; i++) {
            struct pollfd pfd = {lfd, POLLIN, 0};
            int fd = poll(&pfd, 1, 10000) == 1 ? accept(lfd, NULL, NULL) : -1;
            hello h;
            if (fd < 0 || read_within(fd, &h, sizeof h, 10.0) != 0 || h.rank < 1 ||
                h.rank >= nranks) {
                snprintf(why, sizeof why, "rank 0 got no greeting from every rank");
                if (fd >= 0) close(fd);
                ok = 0;
                break;
            }
            peers[i].fd = fd;
            peers[i].rank = h.rank;
            h.host[sizeof h.host - 1] = '\0';
            snprintf(peers[i].host, sizeof peers[i].host, "%s", h.host);
        }
    }
    if (lfd >= 0) close(lfd);
    MPI_Allreduce(MPI_IN_PLACE, &ok, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    setup_finished(watchdog, have_watchdog); /* no collective from here on */
    if (ok && pipe(stop_fds) != 0) ok = 0;
    double t = hetrun_now_s();
    for (int i = 0; ok && i < npeers; i++) {
        set_nonblocking(peers[i].fd);
        peers[i].last = t;
    }
    if (ok) {
        /* Signals go to the main thread: the guard's handler must not interrupt a send. */
        sigset_t set, old;
        sigfillset(&set);
        pthread_sigmask(SIG_BLOCK, &set, &old);
        running = pthread_create(&thread, NULL, beat, NULL) == 0;
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (running) {
            HETRUN_INFO("heartbeat: on, %d peer connection(s), a beat every %.2f s", npeers,
                        period_s);
            if (rank == 0) {
                hetrun_guard_set_peers(append_peers);
            } else {
                signal_msg.kind = MSG_SIGNAL;
                signal_msg.magic = BEAT_MAGIC;
                signal_fd = peers[0].fd;
                hetrun_guard_set_signal_notify(notify_signal);
            }
            return;
        }
    }
    if (why[0]) HETRUN_WARN("heartbeat: %s", why);
    if (rank == 0)
        HETRUN_WARN("heartbeat between ranks is off: a stopped rank is not detected "
                    "(limits.timeout still bounds the job)");
    close_peers();
}

void hetrun_heartbeat_stop(void) {
    if (!running) return;
    hetrun_guard_set_signal_notify(NULL);
    signal_fd = -1;
    (void)!write(stop_fds[1], "x", 1);
    pthread_join(thread, NULL);
    /* Tell rank 0 this rank finished, so its closing connection is not a lost rank. */
    if (me != 0 && npeers == 1 && peers[0].fd >= 0) (void)send_beat(peers[0].fd, MSG_FINISHED, 2.0);
    close(stop_fds[0]);
    close(stop_fds[1]);
    stop_fds[0] = stop_fds[1] = -1;
    running = 0;
    close_peers();
}
