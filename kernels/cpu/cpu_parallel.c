/* Persistent worker threads for the CPU kernels: a generation counter wakes them, a shared
 * atomic task counter spreads the work, and the caller works too. */
#include "cpu_parallel.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#define MAX_THREADS 256

static struct pool {
    pthread_mutex_t lock;
    pthread_cond_t wake, done;
    pthread_t tid[MAX_THREADS];
    int started;  /* workers running (not counting the caller) */
    int wanted;   /* threads set by hetrun_cpu_threads_set, caller included */
    int active;   /* workers taking part in the current job */
    uint64_t gen; /* bumped once per job (and to stop) */
    int busy;     /* workers still inside the current job */
    int stop;
    hetrun_cpu_task_fn fn;
    void *ctx;
    int64_t ntasks;
    atomic_llong next;
} pool = {.lock = PTHREAD_MUTEX_INITIALIZER,
          .wake = PTHREAD_COND_INITIALIZER,
          .done = PTHREAD_COND_INITIALIZER,
          .wanted = 1};

static void drain(int worker) {
    for (;;) {
        long long t = atomic_fetch_add(&pool.next, 1);
        if (t >= pool.ntasks) return;
        pool.fn(pool.ctx, t, worker);
    }
}

static void *worker_main(void *arg) {
    const int id = (int)(intptr_t)arg; /* 1-based: the caller is worker 0 */
    uint64_t seen = 0;
    pthread_mutex_lock(&pool.lock);
    for (;;) {
        while (pool.gen == seen && !pool.stop)
            pthread_cond_wait(&pool.wake, &pool.lock);
        if (pool.stop) break;
        seen = pool.gen;
        if (id > pool.active) continue; /* not part of this job */
        pthread_mutex_unlock(&pool.lock);
        drain(id);
        pthread_mutex_lock(&pool.lock);
        if (--pool.busy == 0) pthread_cond_signal(&pool.done);
    }
    pthread_mutex_unlock(&pool.lock);
    return NULL;
}

void hetrun_cpu_threads_set(int threads) {
    pthread_mutex_lock(&pool.lock);
    pool.wanted = threads < 1 ? 1 : threads > MAX_THREADS ? MAX_THREADS : threads;
    pthread_mutex_unlock(&pool.lock);
}

int hetrun_cpu_threads(void) {
    return pool.wanted;
}

void hetrun_cpu_parallel(int64_t ntasks, hetrun_cpu_task_fn fn, void *ctx) {
    hetrun_cpu_parallel_upto(ntasks, pool.wanted, fn, ctx);
}

void hetrun_cpu_parallel_upto(int64_t ntasks, int workers, hetrun_cpu_task_fn fn, void *ctx) {
    if (ntasks <= 0) return;
    int helpers = (workers < pool.wanted ? workers : pool.wanted) - 1;
    if (helpers > ntasks - 1) helpers = (int)(ntasks - 1);
    if (helpers <= 0) {
        for (int64_t t = 0; t < ntasks; t++)
            fn(ctx, t, 0);
        return;
    }
    pthread_mutex_lock(&pool.lock);
    while (pool.started < helpers) { /* a failed start leaves fewer helpers: still correct */
        if (pthread_create(&pool.tid[pool.started], NULL, worker_main,
                           (void *)(intptr_t)(pool.started + 1)) != 0)
            break;
        pool.started++;
    }
    if (helpers > pool.started) helpers = pool.started;
    pool.fn = fn;
    pool.ctx = ctx;
    pool.ntasks = ntasks;
    atomic_store(&pool.next, 0);
    pool.active = helpers;
    pool.busy = helpers;
    pool.gen++;
    pthread_cond_broadcast(&pool.wake);
    pthread_mutex_unlock(&pool.lock);
    drain(0);
    pthread_mutex_lock(&pool.lock);
    while (pool.busy > 0)
        pthread_cond_wait(&pool.done, &pool.lock);
    pthread_mutex_unlock(&pool.lock);
}

void hetrun_cpu_threads_shutdown(void) {
    pthread_mutex_lock(&pool.lock);
    pool.stop = 1;
    pthread_cond_broadcast(&pool.wake);
    int n = pool.started;
    pthread_mutex_unlock(&pool.lock);
    for (int i = 0; i < n; i++)
        pthread_join(pool.tid[i], NULL);
    pthread_mutex_lock(&pool.lock);
    pool.started = 0;
    pool.stop = 0;
    pool.gen = 0;
    pthread_mutex_unlock(&pool.lock);
}
