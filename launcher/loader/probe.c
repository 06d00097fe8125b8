/* Backend probes in a child process (see probe.h). The child writes tagged records to a
 * pipe as it goes; the parent reads them under a deadline, so whatever the child reached
 * before it crashed or hung is still known. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "loader/loader.h"
#include "loader/probe.h"

/* A module that hangs must not hold a diagnostic tool or an `auto` job for long; a cold
 * runtime start that needs longer raises it (HETRUN_PROBE_TIMEOUT, --probe-timeout). */
#define PROBE_DEFAULT_S 5.0
#define PROBE_MAX_DEVICES 4096
#define PROBE_MAX_OPS 4096
static double probe_timeout_s; /* 0: not set by hetrun_probe_set_timeout */

enum { REC_STAGE = 1, REC_IDENT, REC_OUTCOME, REC_DEVICE, REC_OP, REC_END };

typedef struct rec_header {
    uint32_t tag, len;
} rec_header;

typedef struct rec_ident {
    uint32_t abi_major, abi_minor, struct_size;
    int32_t collectives;
    char ops_name[64], version[64];
} rec_ident;

typedef struct rec_outcome {
    int32_t outcome; /* LOADED, UNAVAILABLE or REFUSED */
    int32_t device_count;
    char reason[1024];
} rec_outcome;

/* ---- child ---- */

static int write_all(int fd, const void *buf, size_t len) {
    const char *p = buf;
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

static void send_rec(int fd, uint32_t tag, const void *payload, uint32_t len) {
    rec_header h = {tag, len};
    if (write_all(fd, &h, sizeof h) != 0 || (len && write_all(fd, payload, len) != 0))
        _exit(4); /* the parent is gone or stopped listening */
}

static void send_stage(int fd, const char *stage) {
    send_rec(fd, REC_STAGE, stage, (uint32_t)strlen(stage) + 1);
}

static void on_stage(void *ctx, const char *stage, const hetrun_backend_module *m) {
    int fd = *(const int *)ctx;
    if (strcmp(stage, "checks") == 0) {
        rec_ident id;
        memset(&id, 0, sizeof id);
        id.abi_major = m->abi_major;
        id.abi_minor = m->abi_minor;
        id.struct_size = m->struct_size;
        memcpy(id.ops_name, m->ops_name, sizeof id.ops_name);
        memcpy(id.version, m->version, sizeof id.version);
        send_rec(fd, REC_IDENT, &id, sizeof id);
    }
    send_stage(fd, stage);
}

static void finish(int fd, int32_t outcome, int32_t count, const char *reason) {
    rec_outcome o;
    memset(&o, 0, sizeof o);
    o.outcome = outcome;
    o.device_count = count;
    snprintf(o.reason, sizeof o.reason, "%s", reason ? reason : "");
    send_rec(fd, REC_OUTCOME, &o, sizeof o);
}

static void terminate(char *s, size_t len) {
    s[len - 1] = '\0';
}

static void child(const char *path, const hetrun_probe_options *opt, int fd) {
    /* The module's own prints must never land in the caller's stdout (JSON output). */
    dup2(STDERR_FILENO, STDOUT_FILENO);
    /* The caller's handlers (a test framework's, MPI's, a crash reporter's) must not catch
     * the module's crash in the child and carry on as the caller: default dispositions. */
    for (int sig = 1; sig < NSIG; sig++)
        if (sig != SIGKILL && sig != SIGSTOP) signal(sig, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    prctl(PR_SET_PDEATHSIG, SIGKILL); /* a killed parent takes its probe along */
    struct rlimit nocore = {0, 0};
    setrlimit(RLIMIT_CORE, &nocore); /* a crashing module leaves no core file behind */
    hetrun_backend_module m;
    memset(&m, 0, sizeof m);
    snprintf(m.name, sizeof m.name, "%s", opt->name ? opt->name : "");
    snprintf(m.path, sizeof m.path, "%s", path);
    int rc = hetrun_module_open_staged(&m, hetrun_host_services_get(), on_stage, &fd);
    if (rc != 0) {
        finish(fd, rc > 0 ? HETRUN_PROBE_UNAVAILABLE : HETRUN_PROBE_REFUSED, 0, m.reason);
        send_rec(fd, REC_END, NULL, 0);
        _exit(0);
    }
    const hetrun_backend_ops *ops = m.ops;
    rec_ident id; /* again, now with the collective group known to be whole */
    memset(&id, 0, sizeof id);
    id.abi_major = m.abi_major;
    id.abi_minor = m.abi_minor;
    id.struct_size = m.struct_size;
    id.collectives = ops->comm_allreduce != NULL;
    memcpy(id.ops_name, m.ops_name, sizeof id.ops_name);
    memcpy(id.version, m.version, sizeof id.version);
    send_rec(fd, REC_IDENT, &id, sizeof id);
    char why[1024];
    if (m.device_count < 0 || m.device_count > PROBE_MAX_DEVICES) {
        snprintf(why, sizeof why, "device_count returned an implausible count %d", m.device_count);
        finish(fd, HETRUN_PROBE_REFUSED, 0, why);
        send_rec(fd, REC_END, NULL, 0);
        _exit(0);
    }
    send_stage(fd, "device_info");
    for (int32_t i = 0; i < m.device_count; i++) {
        hetrun_probe_device d;
        memset(&d, 0, sizeof d);
        d.index = i;
        d.info.struct_size = sizeof d.info;
        hetrun_status st = ops->device_info(i, &d.info);
        if (st != HETRUN_OK) {
            snprintf(why, sizeof why, "device_info(%d) failed (status %d): %s", (int)i, (int)st,
                     ops->last_error());
            finish(fd, HETRUN_PROBE_REFUSED, 0, why);
            send_rec(fd, REC_END, NULL, 0);
            _exit(0);
        }
        /* Never trust module strings to be terminated. */
        terminate(d.info.name, sizeof d.info.name);
        terminate(d.info.vendor, sizeof d.info.vendor);
        terminate(d.info.pci_bus_id, sizeof d.info.pci_bus_id);
        terminate(d.info.visibility_env, sizeof d.info.visibility_env);
        terminate(d.info.uuid, sizeof d.info.uuid);
        terminate(d.info.arch, sizeof d.info.arch);
        terminate(d.info.driver_version, sizeof d.info.driver_version);
        send_rec(fd, REC_DEVICE, &d, sizeof d);
    }
    why[0] = '\0';
    if (opt->nops > 0) {
        hetrun_device *dev = NULL;
        send_stage(fd, "device_open");
        hetrun_status st = HETRUN_ERR_INVALID;
        if (opt->device < 0 || opt->device >= m.device_count)
            snprintf(why, sizeof why, "no device %d to ask op_supported on (%d devices)",
                     opt->device, m.device_count);
        else if ((st = ops->device_open(opt->device, &dev)) != HETRUN_OK)
            snprintf(why, sizeof why, "device_open(%d) failed (status %d): %s", opt->device,
                     (int)st, ops->last_error());
        if (dev) {
            send_stage(fd, "op_supported");
            for (int i = 0; i < opt->nops && i < PROBE_MAX_OPS; i++) {
                hetrun_probe_op a;
                memset(&a, 0, sizeof a);
                a.status = ops->op_supported(dev, &opt->ops[i]);
                if (a.status != HETRUN_OK)
                    snprintf(a.reason, sizeof a.reason, "%s", ops->last_error());
                send_rec(fd, REC_OP, &a, sizeof a);
            }
        }
    }
    send_stage(fd, "done");
    /* The module answered: why[] only says the op questions could not be asked. */
    finish(fd, HETRUN_PROBE_LOADED, m.device_count, why);
    send_rec(fd, REC_END, NULL, 0);
    /* Skip finalize: the process ends now and some runtimes hang in teardown. */
    _exit(0);
}

/* ---- parent ---- */

static long long now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000LL + t.tv_nsec / 1000000;
}

typedef struct reader {
    unsigned char *buf;
    size_t len, cap, parsed;
    int ended;
} reader;

/* Module strings end up in JSON and terminals: printable ASCII only. */
static void printable(char *s) {
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e) *s = '?';
}

/* Applies every complete record in the buffer to `r`. */
static void parse(reader *rd, hetrun_probe_result *r, const hetrun_probe_options *opt,
                  int *ndev_cap, int *nops) {
    for (;;) {
        rec_header h;
        if (rd->len - rd->parsed < sizeof h) return;
        memcpy(&h, rd->buf + rd->parsed, sizeof h);
        if (h.len > (1u << 20)) { /* not our child's writing: stop trusting the stream */
            rd->ended = -1;
            return;
        }
        if (rd->len - rd->parsed - sizeof h < h.len) return;
        const unsigned char *p = rd->buf + rd->parsed + sizeof h;
        rd->parsed += sizeof h + h.len;
        if (h.tag == REC_STAGE && h.len > 0) {
            snprintf(r->stage, sizeof r->stage, "%.*s", (int)h.len - 1, (const char *)p);
        } else if (h.tag == REC_IDENT && h.len == sizeof(rec_ident)) {
            rec_ident id;
            memcpy(&id, p, sizeof id);
            r->table_read = 1;
            r->abi_major = id.abi_major;
            r->abi_minor = id.abi_minor;
            r->struct_size = id.struct_size;
            r->collectives = id.collectives;
            terminate(id.ops_name, sizeof id.ops_name);
            terminate(id.version, sizeof id.version);
            snprintf(r->ops_name, sizeof r->ops_name, "%s", id.ops_name);
            snprintf(r->version, sizeof r->version, "%s", id.version);
            printable(r->ops_name);
            printable(r->version);
        } else if (h.tag == REC_OUTCOME && h.len == sizeof(rec_outcome)) {
            rec_outcome o;
            memcpy(&o, p, sizeof o);
            terminate(o.reason, sizeof o.reason);
            r->outcome = (hetrun_probe_outcome)o.outcome;
            snprintf(r->reason, sizeof r->reason, "%s", o.reason);
            printable(r->reason);
        } else if (h.tag == REC_DEVICE && h.len == sizeof(hetrun_probe_device)) {
            if (r->device_count == *ndev_cap) {
                int cap = *ndev_cap ? 2 * *ndev_cap : 8;
                hetrun_probe_device *g = realloc(r->devices, (size_t)cap * sizeof *g);
                if (!g) continue;
                r->devices = g;
                *ndev_cap = cap;
            }
            memcpy(&r->devices[r->device_count++], p, sizeof(hetrun_probe_device));
        } else if (h.tag == REC_OP && h.len == sizeof(hetrun_probe_op)) {
            if (!r->ops) r->ops = calloc((size_t)opt->nops, sizeof *r->ops);
            if (r->ops && *nops < opt->nops) {
                memcpy(&r->ops[*nops], p, sizeof(hetrun_probe_op));
                terminate(r->ops[*nops].reason, sizeof r->ops[*nops].reason);
                printable(r->ops[*nops].reason);
                ++*nops;
            }
        } else if (h.tag == REC_END) {
            rd->ended = 1;
            return;
        }
    }
}

/* Reads what is available; returns 1 on data, 0 on EOF, -1 on error. */
static int read_some(int fd, reader *rd) {
    if (rd->cap - rd->len < 4096) {
        size_t cap = rd->cap ? 2 * rd->cap : 16384;
        unsigned char *g = realloc(rd->buf, cap);
        if (!g) return -1;
        rd->buf = g;
        rd->cap = cap;
    }
    ssize_t n = read(fd, rd->buf + rd->len, rd->cap - rd->len);
    if (n < 0 && errno == EINTR) return 1;
    if (n < 0) return -1;
    rd->len += (size_t)n;
    return n > 0;
}

static const char *signal_abbrev(int sig) {
    static const struct {
        int sig;
        const char *name;
    } names[] = {{SIGSEGV, "SIGSEGV"}, {SIGBUS, "SIGBUS"},   {SIGILL, "SIGILL"},
                 {SIGFPE, "SIGFPE"},   {SIGABRT, "SIGABRT"}, {SIGKILL, "SIGKILL"},
                 {SIGTERM, "SIGTERM"}, {SIGTRAP, "SIGTRAP"}, {SIGSYS, "SIGSYS"},
                 {SIGPIPE, "SIGPIPE"}, {SIGINT, "SIGINT"},   {SIGQUIT, "SIGQUIT"},
                 {SIGHUP, "SIGHUP"},   {SIGALRM, "SIGALRM"}, {SIGUSR1, "SIGUSR1"},
                 {SIGUSR2, "SIGUSR2"}, {SIGXCPU, "SIGXCPU"}, {SIGXFSZ, "SIGXFSZ"}};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (names[i].sig == sig) return names[i].name;
    return "a signal";
}

const char *hetrun_probe_outcome_name(hetrun_probe_outcome outcome) {
    switch (outcome) {
    case HETRUN_PROBE_LOADED: return "loaded";
    case HETRUN_PROBE_UNAVAILABLE: return "unavailable";
    case HETRUN_PROBE_REFUSED: return "refused";
    case HETRUN_PROBE_CRASHED: return "crashed";
    case HETRUN_PROBE_HUNG: return "hung";
    case HETRUN_PROBE_EXITED: return "exited";
    case HETRUN_PROBE_NOT_FOUND: return "not found";
    default: return "error";
    }
}

void hetrun_probe_identity(const hetrun_probe_result *r, char *out, size_t len) {
    if (!r->table_read)
        snprintf(out, len, "ABI and version unknown (the ops table was not read)");
    else
        snprintf(out, len, "ABI %u.%u, version %s", r->abi_major, r->abi_minor,
                 r->version[0] ? r->version : "(none)");
}

double hetrun_probe_default_timeout(void) {
    if (probe_timeout_s > 0) return probe_timeout_s;
    const char *env = getenv("HETRUN_PROBE_TIMEOUT");
    double s = env ? atof(env) : 0;
    return s > 0 ? s : PROBE_DEFAULT_S;
}

void hetrun_probe_set_timeout(double seconds) {
    if (seconds > 0) probe_timeout_s = seconds;
}

static void fail(hetrun_probe_result *r, hetrun_probe_outcome outcome, const char *what) {
    r->outcome = outcome;
    snprintf(r->reason, sizeof r->reason, "%s: %s", r->path, what);
}

/* One probe in flight. */
typedef struct probe_job {
    const hetrun_probe_options *opt;
    hetrun_probe_result *r;
    pid_t pid;
    int fd; /* -1 once reading is over */
    reader rd;
    int ndev_cap, nops, reaped, wst, io_error;
    long long start, deadline;
} probe_job;

/* Forks the child; returns 0, or -1 with the result already final. */
static int job_start(probe_job *j, const char *path) {
    hetrun_probe_result *r = j->r;
    const hetrun_probe_options *opt = j->opt;
    memset(r, 0, sizeof *r);
    j->fd = -1;
    snprintf(r->path, sizeof r->path, "%s", path ? path : "");
    snprintf(r->name, sizeof r->name, "%s", opt->name ? opt->name : "");
    r->timeout_s = opt->timeout_s > 0 ? opt->timeout_s : hetrun_probe_default_timeout();
    if (!path || !*path) {
        fail(r, HETRUN_PROBE_ERROR, "no module path given");
        return -1;
    }
    if (opt->nops < 0 || opt->nops > PROBE_MAX_OPS || (opt->nops && !opt->ops)) {
        fail(r, HETRUN_PROBE_ERROR, "invalid op list for the probe");
        return -1;
    }
    int fds[2];
    if (pipe(fds) != 0) {
        fail(r, HETRUN_PROBE_ERROR, strerror(errno));
        return -1;
    }
    j->start = now_ms();
    j->deadline = j->start + (long long)(r->timeout_s * 1000.0 + 0.5);
    fflush(NULL); /* the child must not flush the parent's buffers again */
    pid_t pid = fork();
    if (pid < 0) {
        char why[256];
        snprintf(why, sizeof why, "probe fork failed: %s", strerror(errno));
        close(fds[0]);
        close(fds[1]);
        fail(r, HETRUN_PROBE_ERROR, why);
        return -1;
    }
    if (pid == 0) {
        close(fds[0]);
        child(path, opt, fds[1]);
        _exit(0);
    }
    close(fds[1]);
    j->pid = pid;
    j->fd = fds[0];
    return 0;
}

static void stop_reading(probe_job *j) {
    close(j->fd);
    j->fd = -1;
}

/* The fd is readable (or hung up). */
static void job_read(probe_job *j) {
    int got = read_some(j->fd, &j->rd);
    if (got < 0) j->io_error = 1;
    if (got > 0) parse(&j->rd, j->r, j->opt, &j->ndev_cap, &j->nops);
    if (got <= 0 || j->rd.ended) stop_reading(j); /* EOF: the child is ending */
}

/* No data: a child that is gone while a helper process it started still holds the pipe
 * open ends the reading too, after what is still buffered. */
static void job_check_child(probe_job *j) {
    if (j->reaped || waitpid(j->pid, &j->wst, WNOHANG) != j->pid) return;
    j->reaped = 1;
    struct pollfd again = {j->fd, POLLIN, 0};
    while (!j->rd.ended && poll(&again, 1, 0) > 0 && read_some(j->fd, &j->rd) > 0)
        parse(&j->rd, j->r, j->opt, &j->ndev_cap, &j->nops);
    stop_reading(j);
}

/* Reading is over: reap or kill the child, then say what happened. */
static void job_finish(probe_job *j) {
    hetrun_probe_result *r = j->r;
    const hetrun_probe_options *opt = j->opt;
    if (!j->reaped && j->rd.ended == 0) {
        /* EOF or deadline without an answer: the child is dying (a core dump may take a
         * while) or stuck; it gets until the deadline. */
        while (!j->reaped && now_ms() < j->deadline) {
            pid_t w = waitpid(j->pid, &j->wst, WNOHANG);
            if (w == j->pid) j->reaped = 1;
            if (w == 0) usleep(10000);
            if (w < 0 && errno != EINTR) break;
        }
    }
    if (!j->reaped && waitpid(j->pid, &j->wst, WNOHANG) != j->pid) {
        /* After END the child only calls _exit; otherwise it hung (or garbled its answer). */
        kill(j->pid, SIGKILL);
        while (waitpid(j->pid, &j->wst, 0) < 0 && errno == EINTR) {
        }
        if (j->rd.ended == 0) j->wst = -1;
    }
    free(j->rd.buf);
    j->rd.buf = NULL;
    r->elapsed_s = (double)(now_ms() - j->start) / 1000.0;
    char id[160], why[1200];
    hetrun_probe_identity(r, id, sizeof id);
    const char *stage = r->stage[0] ? r->stage : "fork";
    if (j->rd.ended == 1) {
        if (opt->nops > 0 && j->nops < opt->nops && r->outcome == HETRUN_PROBE_LOADED) {
            free(r->ops); /* the device could not be opened: the reason says why */
            r->ops = NULL;
        }
        if (r->outcome == HETRUN_PROBE_LOADED && !r->reason[0]) return;
        /* The loader's refusals start with the path (and identity), which the line names
         * first anyway. */
        char with_id[4400], plain[4200];
        snprintf(with_id, sizeof with_id, "%s (%s): ", r->path, id);
        snprintf(plain, sizeof plain, "%s: ", r->path);
        const char *own = r->reason;
        if (strncmp(own, with_id, strlen(with_id)) == 0)
            own += strlen(with_id);
        else if (strncmp(own, plain, strlen(plain)) == 0)
            own += strlen(plain);
        snprintf(why, sizeof why, "%s", own);
        snprintf(r->reason, sizeof r->reason, "%s (%s): %s%s%s", r->path, id,
                 r->outcome == HETRUN_PROBE_LOADED ? "" : hetrun_probe_outcome_name(r->outcome),
                 r->outcome == HETRUN_PROBE_LOADED ? "" : ": ", why);
        return;
    }
    r->device_count = 0; /* a partial device list is no list */
    free(r->devices);
    r->devices = NULL;
    free(r->ops);
    r->ops = NULL;
    if (j->rd.ended < 0 || (j->io_error && j->wst != -1)) {
        r->outcome = HETRUN_PROBE_ERROR;
        snprintf(why, sizeof why, "probe failed in %s: %s", stage,
                 j->rd.ended < 0 ? "garbled answer" : "read error");
    } else if (j->wst == -1) {
        r->outcome = HETRUN_PROBE_HUNG;
        /* The file-name phrase is kept: scripts and tests grep for it. */
        const char *base = strrchr(r->path, '/');
        snprintf(why, sizeof why,
                 "hung in %s: module %s gave no device list within %.3g s (probe killed); "
                 "HETRUN_PROBE_TIMEOUT=SECONDS allows a slower runtime start",
                 stage, base ? base + 1 : r->path, r->timeout_s);
    } else if (WIFSIGNALED(j->wst)) {
        r->outcome = HETRUN_PROBE_CRASHED;
        r->signal = WTERMSIG(j->wst);
        snprintf(why, sizeof why, "crashed in %s: killed by signal %d (%s, %s)", stage, r->signal,
                 signal_abbrev(r->signal), strsignal(r->signal));
    } else {
        r->outcome = HETRUN_PROBE_EXITED;
        r->exit_status = WIFEXITED(j->wst) ? WEXITSTATUS(j->wst) : -1;
        snprintf(why, sizeof why, "the module ended the process in %s (exit status %d)", stage,
                 r->exit_status);
    }
    snprintf(r->reason, sizeof r->reason, "%s (%s): %s", r->path, id, why);
}

void hetrun_probe_modules(size_t n, const char *const *paths, const hetrun_probe_options *opts,
                          hetrun_probe_result *results) {
    static const hetrun_probe_options none;
    probe_job *jobs = calloc(n ? n : 1, sizeof *jobs);
    struct pollfd *pfds = calloc(n ? n : 1, sizeof *pfds);
    size_t *which = calloc(n ? n : 1, sizeof *which);
    int alloc_ok = jobs && pfds && which;
    /* Without memory for the batch, one at a time (a batch of one needs nothing more). */
    size_t batch = alloc_ok ? n : 1;
    for (size_t first = 0; first < n; first += batch) {
        probe_job single;
        probe_job *jv = alloc_ok ? jobs : &single;
        struct pollfd pone;
        size_t wone;
        struct pollfd *pv = alloc_ok ? pfds : &pone;
        size_t *wv = alloc_ok ? which : &wone;
        size_t count = n - first < batch ? n - first : batch;
        for (size_t i = 0; i < count; i++) {
            memset(&jv[i], 0, sizeof jv[i]);
            jv[i].opt = opts ? &opts[first + i] : &none;
            jv[i].r = &results[first + i];
            jv[i].wst = 0;
            if (job_start(&jv[i], paths[first + i]) != 0) jv[i].fd = -2; /* final already */
        }
        for (;;) {
            long long now = now_ms(), wait = 100;
            nfds_t k = 0;
            for (size_t i = 0; i < count; i++) {
                if (jv[i].fd < 0) continue;
                if (now >= jv[i].deadline) {
                    stop_reading(&jv[i]);
                    continue;
                }
                if (jv[i].deadline - now < wait) wait = jv[i].deadline - now;
                pv[k] = (struct pollfd){jv[i].fd, POLLIN, 0};
                wv[k++] = i;
            }
            if (k == 0) break;
            int pr = poll(pv, k, (int)wait);
            if (pr < 0 && errno != EINTR) {
                for (nfds_t q = 0; q < k; q++) {
                    jv[wv[q]].io_error = 1;
                    stop_reading(&jv[wv[q]]);
                }
                break;
            }
            for (nfds_t q = 0; q < k; q++) {
                probe_job *j = &jv[wv[q]];
                if (pr > 0 && pv[q].revents)
                    job_read(j);
                else
                    job_check_child(j);
            }
        }
        for (size_t i = 0; i < count; i++)
            if (jv[i].fd != -2) job_finish(&jv[i]);
    }
    free(jobs);
    free(pfds);
    free(which);
}

hetrun_probe_outcome hetrun_probe_module(const char *path, const hetrun_probe_options *opt,
                                         hetrun_probe_result *r) {
    static const hetrun_probe_options none;
    hetrun_probe_modules(1, &path, opt ? opt : &none, r);
    return r->outcome;
}

void hetrun_probe_result_free(hetrun_probe_result *r) {
    free(r->devices);
    free(r->ops);
    r->devices = NULL;
    r->ops = NULL;
    r->device_count = 0;
}

int hetrun_probe_backend(const char *backend, hetrun_probe_device **devs, int *ndevs, char *why,
                         size_t whylen) {
    *devs = NULL;
    *ndevs = 0;
    why[0] = '\0';
    if (!backend || !*backend || strlen(backend) > 60 || strchr(backend, '/')) {
        snprintf(why, whylen, "invalid backend name \"%s\"", backend ? backend : "(null)");
        return -1;
    }
    char path[4096];
    if (hetrun_loader_find(backend, path, sizeof path) != 0) {
        /* A broken registration of that name says more than "not found". */
        hetrun_module_list list;
        int said = 0;
        if (hetrun_loader_scan(&list) == 0) {
            for (size_t i = 0; i < list.count && !said; i++)
                if (strcmp(list.items[i].name, backend) == 0) {
                    snprintf(why, whylen, "%s", list.items[i].reason);
                    said = 1;
                }
            hetrun_module_list_free(&list);
        }
        if (said) return -1;
        snprintf(why, whylen,
                 "module libhetrun_backend_%s.so not found on HETRUN_BACKEND_PATH, in the "
                 "registration folders or in the module folders (see 'hetrun backends')",
                 backend);
        return 1;
    }
    hetrun_probe_options opt = {.name = backend};
    hetrun_probe_result r;
    hetrun_probe_module(path, &opt, &r);
    if (r.outcome == HETRUN_PROBE_LOADED) {
        *devs = r.devices;
        *ndevs = r.device_count;
        r.devices = NULL;
        hetrun_probe_result_free(&r);
        return 0;
    }
    snprintf(why, whylen, "%s", r.reason);
    hetrun_probe_result_free(&r);
    return r.outcome == HETRUN_PROBE_UNAVAILABLE ? 1 : -1;
}
