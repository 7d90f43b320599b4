/* Fair turns on a shared backend: a FIFO ticket lock (see backend.h). A plain mutex lets the
 * thread that just released it take it again before a sleeping waiter wakes up, so an LLM
 * submitting one decode graph after the other could hold the device for a whole reply while a
 * SoundStorm pass waits. Tickets serve threads in the order they asked. */
#include "backend_turns.h"
#include "anygpt/error.h"

#include <pthread.h>
#include <stdlib.h>

struct ag_backend_turns {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    uint64_t next_ticket, serving;
    pthread_t owner;
    bool owned;
    int depth; /* nested turns of the owner */
    uint64_t served, waited;
};

int ag_backend_turns_attach(ag_backend *be)
{
    struct ag_backend_turns *t = calloc(1, sizeof *t);
    if (!t) {
        ag_set_error("out of memory");
        return -1;
    }
    pthread_mutex_init(&t->mu, NULL);
    pthread_cond_init(&t->cv, NULL);
    be->turns = t;
    return 0;
}

void ag_backend_turns_detach(ag_backend *be)
{
    struct ag_backend_turns *t = be->turns;
    if (!t)
        return;
    pthread_cond_destroy(&t->cv);
    pthread_mutex_destroy(&t->mu);
    free(t);
    be->turns = NULL;
}

void ag_backend_turn_begin(ag_backend *be)
{
    struct ag_backend_turns *t = be->turns;
    if (!t)
        return;
    pthread_mutex_lock(&t->mu);
    if (t->owned && pthread_equal(t->owner, pthread_self())) {
        t->depth++;
        pthread_mutex_unlock(&t->mu);
        return;
    }
    const uint64_t mine = t->next_ticket++;
    if (t->serving != mine)
        t->waited++;
    while (t->serving != mine)
        pthread_cond_wait(&t->cv, &t->mu);
    t->owner = pthread_self();
    t->owned = true;
    t->depth = 1;
    t->served++;
    pthread_mutex_unlock(&t->mu);
}

void ag_backend_turn_end(ag_backend *be)
{
    struct ag_backend_turns *t = be->turns;
    if (!t)
        return;
    pthread_mutex_lock(&t->mu);
    if (t->owned && pthread_equal(t->owner, pthread_self()) && --t->depth == 0) {
        t->owned = false;
        t->serving++;
        /* every waiter checks whether its ticket is up; only one is */
        pthread_cond_broadcast(&t->cv);
    }
    pthread_mutex_unlock(&t->mu);
}

void ag_backend_turn_stats(ag_backend *be, uint64_t *served, uint64_t *waited, int *waiting)
{
    struct ag_backend_turns *t = be->turns;
    uint64_t s = 0, w = 0;
    int now = 0;
    if (t) {
        pthread_mutex_lock(&t->mu);
        s = t->served;
        w = t->waited;
        now = (int)(t->next_ticket - t->serving) - (t->owned ? 1 : 0);
        pthread_mutex_unlock(&t->mu);
    }
    if (waiting)
        *waiting = now;
    if (served)
        *served = s;
    if (waited)
        *waited = w;
}
