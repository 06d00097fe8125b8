/* The cpu backend's thread pool (kernels/cpu/cpu_parallel.c): every task of every job runs
 * exactly once, on a worker index below the job's limit, with jobs back to back (workers
 * still spinning), after a pause longer than the spin (workers asleep), with the thread count
 * changed between jobs, with two callers at once, and across a shutdown and restart. Built
 * with SPIN_NS of 20 us so a 1 ms pause always sends the workers to sleep. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "../check.h"
#include "kernels/cpu/cpu_parallel.h"

#define MAX_TASKS 4096

typedef struct job {
    atomic_int runs[MAX_TASKS];
    atomic_int bad_worker;
    int limit;
} job;

static void count_task(void *ctx, int64_t t, int worker) {
    job *j = ctx;
    atomic_fetch_add(&j->runs[t], 1);
    if (worker < 0 || worker >= j->limit) atomic_fetch_add(&j->bad_worker, 1);
    if (t % 7 == 0) /* uneven tasks, so workers finish out of step */
        for (volatile int spin = 0; spin < 2000; spin++) {
        }
}

static job jobs; /* static: 16 KB of counters */

static void run_one(int64_t ntasks, int workers, int threads, const char *what) {
    memset(&jobs, 0, sizeof jobs);
    jobs.limit = workers < threads ? workers : threads;
    hetrun_cpu_parallel_upto(ntasks, workers, count_task, &jobs);
    int wrong = 0;
    for (int64_t t = 0; t < MAX_TASKS; t++)
        wrong += atomic_load(&jobs.runs[t]) != (t < ntasks ? 1 : 0);
    CHECK(wrong == 0, "%s: %d of %lld tasks ran other than once (workers %d, threads %d)", what,
          wrong, (long long)ntasks, workers, threads);
    CHECK(atomic_load(&jobs.bad_worker) == 0, "%s: a task ran on a worker index >= %d", what,
          jobs.limit);
}

static void pause_ms(int ms) {
    struct timespec ts = {0, ms * 1000000L};
    nanosleep(&ts, NULL);
}

/* Two callers at once (two queues on two threads): each job still runs every task once. */
typedef struct caller {
    job *j;
    int wrong;
} caller;

static job second; /* the other caller's counters */

static void *call_repeatedly(void *arg) {
    caller *c = arg;
    for (int rep = 0; rep < 300; rep++) {
        memset(c->j, 0, sizeof *c->j);
        c->j->limit = hetrun_cpu_threads();
        hetrun_cpu_parallel(1000, count_task, c->j);
        for (int64_t t = 0; t < MAX_TASKS; t++)
            c->wrong += atomic_load(&c->j->runs[t]) != (t < 1000 ? 1 : 0);
        c->wrong += atomic_load(&c->j->bad_worker);
    }
    return NULL;
}

static void concurrent_callers(void) {
    hetrun_cpu_threads_set(3);
    caller a = {&jobs, 0}, b = {&second, 0};
    pthread_t other;
    if (pthread_create(&other, NULL, call_repeatedly, &b) != 0) {
        CHECK(0, "pthread_create failed");
        return;
    }
    call_repeatedly(&a);
    pthread_join(other, NULL);
    CHECK(a.wrong == 0 && b.wrong == 0,
          "two callers at once: %d and %d tasks ran other than once or on a bad worker", a.wrong,
          b.wrong);
}

int main(void) {
    static const int64_t sizes[] = {1, 2, 3, 5, 64, 1000, MAX_TASKS};
    for (int round = 0; round < 2; round++) { /* the second round after a shutdown */
        for (int threads = 1; threads <= 4; threads++) {
            hetrun_cpu_threads_set(threads);
            CHECK(hetrun_cpu_threads() == threads, "threads set %d, read %d", threads,
                  hetrun_cpu_threads());
            for (int rep = 0; rep < 200; rep++) /* back to back: workers still spinning */
                for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++)
                    run_one(sizes[s], 1 + (rep + (int)s) % 4, threads, "back to back");
            for (int rep = 0; rep < 5; rep++) { /* after a pause: workers asleep */
                pause_ms(1);
                run_one(1000, threads, threads, "after a pause");
            }
        }
        concurrent_callers();
        hetrun_cpu_threads_shutdown();
    }
    printf("%d checks, %d failures\n", checks, failures);
    return failures ? 1 : 0;
}
