/* A persistent thread pool: workers spin briefly on a generation counter, then sleep on a
 * condition variable; the same spin-then-sleep wait backs the barrier between graph nodes.
 * Sleeping matters: the machines we run on are often oversubscribed. */
#include "cpu/cpu_internal.h"

#include <pthread.h>
#include <sched.h>
#include <stdlib.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define CPU_RELAX() _mm_pause()
#else
#define CPU_RELAX() ((void)0)
#endif

#define SPIN_ITERS 1000
#define YIELD_ITERS 20 /* then give the core away a few times: helps when threads outnumber cores */

struct cpu_pool {
    int nth;
    pthread_t *threads;
    pthread_mutex_t mu;
    pthread_cond_t cv_job, cv_bar;
    atomic_int job_sleepers, bar_sleepers;

    atomic_uint job_gen;
    cpu_job_fn fn;
    void *arg;
    atomic_bool quit;
    atomic_int n_done;

    atomic_int bar_count;
    atomic_uint bar_phase;
    bool bar_flag; /* cpu_pool_barrier_check: what the last thread in saw */
};

typedef struct {
    cpu_pool *p;
    int ith;
} worker_arg;

/* Wait until *word differs from old. */
static void wait_change(cpu_pool *p, atomic_uint *word, unsigned old, pthread_cond_t *cv, atomic_int *sleepers)
{
    for (int i = 0; i < SPIN_ITERS; i++) {
        if (atomic_load(word) != old)
            return;
        CPU_RELAX();
    }
    for (int i = 0; i < YIELD_ITERS; i++) {
        if (atomic_load(word) != old)
            return;
        sched_yield();
    }
    pthread_mutex_lock(&p->mu);
    atomic_fetch_add(sleepers, 1);
    while (atomic_load(word) == old)
        pthread_cond_wait(cv, &p->mu);
    atomic_fetch_sub(sleepers, 1);
    pthread_mutex_unlock(&p->mu);
}

/* Called after *word was changed: wakes sleepers (they registered under the mutex). */
static void notify(cpu_pool *p, pthread_cond_t *cv, atomic_int *sleepers)
{
    if (atomic_load(sleepers) > 0) {
        pthread_mutex_lock(&p->mu);
        pthread_cond_broadcast(cv);
        pthread_mutex_unlock(&p->mu);
    }
}

static void *worker_main(void *varg)
{
    worker_arg *wa = varg;
    cpu_pool *p = wa->p;
    const int ith = wa->ith;
    free(wa);
    unsigned seen = 0;
    for (;;) {
        wait_change(p, &p->job_gen, seen, &p->cv_job, &p->job_sleepers);
        seen = atomic_load(&p->job_gen);
        if (atomic_load(&p->quit))
            break;
        p->fn(p->arg, ith, p->nth);
        atomic_fetch_add(&p->n_done, 1);
    }
    return NULL;
}

cpu_pool *cpu_pool_new(int nth)
{
    cpu_pool *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->nth = nth < 1 ? 1 : nth;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv_job, NULL);
    pthread_cond_init(&p->cv_bar, NULL);
    p->threads = calloc((size_t)p->nth, sizeof *p->threads);
    if (!p->threads) {
        cpu_pool_free(p);
        return NULL;
    }
    for (int i = 1; i < p->nth; i++) {
        worker_arg *wa = malloc(sizeof *wa);
        if (wa) {
            wa->p = p;
            wa->ith = i;
        }
        if (!wa || pthread_create(&p->threads[i], NULL, worker_main, wa) != 0) {
            free(wa);
            ag_set_error("cpu: cannot start worker thread %d of %d", i, p->nth);
            p->nth = i; /* only join what started */
            cpu_pool_free(p);
            return NULL;
        }
    }
    return p;
}

void cpu_pool_free(cpu_pool *p)
{
    if (!p)
        return;
    if (p->threads) {
        atomic_store(&p->quit, true);
        atomic_fetch_add(&p->job_gen, 1);
        pthread_mutex_lock(&p->mu);
        pthread_cond_broadcast(&p->cv_job);
        pthread_mutex_unlock(&p->mu);
        for (int i = 1; i < p->nth; i++)
            pthread_join(p->threads[i], NULL);
        free(p->threads);
    }
    pthread_cond_destroy(&p->cv_job);
    pthread_cond_destroy(&p->cv_bar);
    pthread_mutex_destroy(&p->mu);
    free(p);
}

int cpu_pool_nth(const cpu_pool *p) { return p->nth; }

void cpu_pool_run(cpu_pool *p, cpu_job_fn fn, void *arg)
{
    if (p->nth == 1) {
        fn(arg, 0, 1);
        return;
    }
    p->fn = fn;
    p->arg = arg;
    atomic_store(&p->n_done, 0);
    atomic_fetch_add(&p->job_gen, 1);
    notify(p, &p->cv_job, &p->job_sleepers);
    fn(arg, 0, p->nth);
    /* workers leave right after the job's last barrier: this wait is short */
    for (int i = 0; atomic_load(&p->n_done) < p->nth - 1; i++) {
        if (i < SPIN_ITERS)
            CPU_RELAX();
        else
            sched_yield();
    }
}

bool cpu_pool_barrier_check(cpu_pool *p, atomic_int *flag)
{
    unsigned phase = atomic_load(&p->bar_phase);
    if (atomic_fetch_add(&p->bar_count, 1) == p->nth - 1) {
        /* nobody reads bar_flag of the previous phase any more: all threads are in here */
        p->bar_flag = atomic_load(flag) != 0;
        atomic_store(&p->bar_count, 0);
        atomic_fetch_add(&p->bar_phase, 1);
        notify(p, &p->cv_bar, &p->bar_sleepers);
        return p->bar_flag;
    }
    wait_change(p, &p->bar_phase, phase, &p->cv_bar, &p->bar_sleepers);
    return p->bar_flag;
}

void cpu_pool_barrier(cpu_pool *p)
{
    unsigned phase = atomic_load(&p->bar_phase);
    if (atomic_fetch_add(&p->bar_count, 1) == p->nth - 1) {
        atomic_store(&p->bar_count, 0);
        atomic_fetch_add(&p->bar_phase, 1);
        notify(p, &p->cv_bar, &p->bar_sleepers);
        return;
    }
    wait_change(p, &p->bar_phase, phase, &p->cv_bar, &p->bar_sleepers);
}
