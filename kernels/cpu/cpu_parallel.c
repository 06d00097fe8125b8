/* Persistent worker threads for the CPU kernels: a generation counter wakes them, a shared
 * atomic task counter spreads the work, and the caller works too. After a job a worker spins
 * for a short while (SPIN_NS) before it sleeps, so the next of a run of short calls (a
 * batch-1 transformer layer issues dozens of 0.1-1 ms ops) finds it awake instead of paying
 * a futex wake and a reschedule; the spin is bounded so an idle pool never holds a core. */
#include "cpu_parallel.h"

#include <immintrin.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#define MAX_THREADS 256
#ifndef SPIN_NS
#define SPIN_NS 50000 /* 50 us: a few ops' worth of gaps; bench/RESULTS.md "Pool spin" */
#endif

static struct pool {
    pthread_mutex_t owner; /* held by the caller whose job the workers run */
    pthread_mutex_t lock;
    pthread_cond_t wake, done;
    pthread_t tid[MAX_THREADS];
    int started; /* workers running (not counting the caller) */
    int wanted;  /* threads set by hetrun_cpu_threads_set, caller included */
    /* (job sequence << 16) | workers taking part: one word, so a worker left out of a job
     * never reads a later job's count; its release store publishes the job's fields */
    atomic_ullong gen;
    atomic_int busy; /* workers still inside the current job */
    atomic_int stop;
    hetrun_cpu_task_fn fn;
    void *ctx;
    int64_t ntasks;
    atomic_llong next;
} pool = {.owner = PTHREAD_MUTEX_INITIALIZER,
          .lock = PTHREAD_MUTEX_INITIALIZER,
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

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Waits until the generation differs from `seen` (or stop): spinning first when `spin`,
 * then asleep. */
static uint64_t await_job(uint64_t seen, int spin) {
    const int64_t until = now_ns() + (spin ? SPIN_NS : 0);
    for (int i = 1; spin; i++) {
        const uint64_t g = atomic_load_explicit(&pool.gen, memory_order_acquire);
        if (g != seen || atomic_load_explicit(&pool.stop, memory_order_relaxed)) return g;
        _mm_pause();
        if ((i & 63) == 0 && now_ns() > until) break;
    }
    pthread_mutex_lock(&pool.lock);
    uint64_t g;
    while ((g = atomic_load(&pool.gen)) == seen && !atomic_load(&pool.stop))
        pthread_cond_wait(&pool.wake, &pool.lock);
    pthread_mutex_unlock(&pool.lock);
    return g;
}

static void *worker_main(void *arg) {
    const int id = (int)(intptr_t)arg; /* 1-based: the caller is worker 0 */
    uint64_t seen = 0;
    int took_part = 0; /* only a worker that just worked spins: the others go back to sleep */
    for (;;) {
        seen = await_job(seen, took_part);
        if (atomic_load(&pool.stop)) break;
        took_part = id <= (int)(seen & 0xffff);
        if (!took_part) continue; /* not part of this job */
        drain(id);
        if (atomic_fetch_sub(&pool.busy, 1) == 1) { /* the last one out tells the caller */
            pthread_mutex_lock(&pool.lock);
            pthread_cond_signal(&pool.done);
            pthread_mutex_unlock(&pool.lock);
        }
    }
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
    /* One job at a time: a second caller (another queue's thread) runs its tasks itself. */
    if (helpers <= 0 || pthread_mutex_trylock(&pool.owner) != 0) {
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
    /* every worker is past the previous job (busy reached 0), so these plain writes race
     * with nothing; the release store of gen publishes them to spinning and sleeping ones */
    pool.fn = fn;
    pool.ctx = ctx;
    pool.ntasks = ntasks;
    atomic_store_explicit(&pool.next, 0, memory_order_relaxed);
    atomic_store_explicit(&pool.busy, helpers, memory_order_relaxed);
    const uint64_t seq = (atomic_load_explicit(&pool.gen, memory_order_relaxed) >> 16) + 1;
    atomic_store_explicit(&pool.gen, seq << 16 | (uint64_t)helpers, memory_order_release);
    pthread_cond_broadcast(&pool.wake);
    pthread_mutex_unlock(&pool.lock);
    drain(0);
    const int64_t until = now_ns() + SPIN_NS; /* the helpers' last tasks end soon */
    for (int i = 1; atomic_load_explicit(&pool.busy, memory_order_acquire) > 0; i++) {
        _mm_pause();
        if ((i & 63) == 0 && now_ns() > until) {
            pthread_mutex_lock(&pool.lock);
            while (atomic_load(&pool.busy) > 0)
                pthread_cond_wait(&pool.done, &pool.lock);
            pthread_mutex_unlock(&pool.lock);
            break;
        }
    }
    pthread_mutex_unlock(&pool.owner);
}

void hetrun_cpu_threads_shutdown(void) {
    pthread_mutex_lock(&pool.lock);
    atomic_store(&pool.stop, 1);
    pthread_cond_broadcast(&pool.wake);
    int n = pool.started;
    pthread_mutex_unlock(&pool.lock);
    for (int i = 0; i < n; i++)
        pthread_join(pool.tid[i], NULL);
    pthread_mutex_lock(&pool.lock);
    pool.started = 0;
    atomic_store(&pool.stop, 0);
    atomic_store(&pool.gen, 0);
    pthread_mutex_unlock(&pool.lock);
}
