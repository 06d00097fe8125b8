/* Worker threads that run the independent pieces of one op at once (the matrices of a
 * batched GEMM). Created on first use and kept: a pthread_create per op would cost tens of
 * microseconds, as much as a small GEMM. Idle workers sleep on a condition variable, so
 * they take nothing from the BLAS's own threads or from other ranks. */
#include <pthread.h>
#include <stdatomic.h>

#include "cpu_blas.h"

enum { MAX_WORKERS = 256 };

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t start = PTHREAD_COND_INITIALIZER, done = PTHREAD_COND_INITIALIZER;
static pthread_t tid[MAX_WORKERS];
static int started, quit, busy;
static unsigned long generation;
static cpu_pool_fn job_fn;
static void *job_ctx;
static int64_t job_count;
static int job_workers;
static atomic_llong next_index;

static void take_pieces(int worker) {
    for (;;) {
        int64_t i = atomic_fetch_add(&next_index, 1);
        if (i >= job_count) return;
        job_fn(job_ctx, i, worker);
    }
}

static void *worker_main(void *arg) {
    int worker = (int)(intptr_t)arg;
    unsigned long seen = 0;
    pthread_mutex_lock(&lock);
    for (;;) {
        while (generation == seen && !quit)
            pthread_cond_wait(&start, &lock);
        if (quit) break;
        seen = generation;
        pthread_mutex_unlock(&lock);
        if (worker < job_workers) take_pieces(worker); /* ids index per-worker scratch */
        pthread_mutex_lock(&lock);
        if (--busy == 0) pthread_cond_signal(&done);
    }
    pthread_mutex_unlock(&lock);
    return NULL;
}

int cpu_pool_run(int workers, int64_t count, cpu_pool_fn fn, void *ctx) {
    if (workers > MAX_WORKERS) workers = MAX_WORKERS;
    pthread_mutex_lock(&lock);
    while (started < workers - 1 &&
           pthread_create(&tid[started], NULL, worker_main, (void *)(intptr_t)(started + 1)) == 0)
        started++;
    int helpers = started < workers - 1 ? started : workers - 1;
    job_fn = fn;
    job_ctx = ctx;
    job_count = count;
    job_workers = helpers + 1;
    atomic_store(&next_index, 0);
    busy = started; /* every started worker wakes for a generation and reports back */
    generation++;
    pthread_cond_broadcast(&start);
    pthread_mutex_unlock(&lock);
    take_pieces(0);
    pthread_mutex_lock(&lock);
    while (busy > 0)
        pthread_cond_wait(&done, &lock);
    pthread_mutex_unlock(&lock);
    return helpers + 1;
}

void cpu_pool_shutdown(void) {
    pthread_mutex_lock(&lock);
    quit = 1;
    pthread_cond_broadcast(&start);
    pthread_mutex_unlock(&lock);
    for (int i = 0; i < started; i++)
        pthread_join(tid[i], NULL);
    started = quit = 0;
}
