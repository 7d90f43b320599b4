/* One backend shared by several threads, one copy of a weights file shared by several loads:
 * - fair turns: two threads asking for turns back to back alternate (a plain mutex lets the
 *   releasing thread take it again), and turns nest on one thread;
 * - compute from two threads at once on one cpu backend gives each its exact result (closed
 *   form) while both run;
 * - ag_weights_load of one file onto one backend twice returns the same weights, counted, freed
 *   with the last user; another backend, or the file rewritten, gets its own copy; a wrong
 *   architecture is still refused for a shared file. */
#include "anygpt/backend.h"
#include "anygpt/error.h"
#include "anygpt/gguf.h"
#include "anygpt/weights.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../common/ag_check.h"

static void sleep_ms(int ms)
{
    struct timespec ts = {0, (long)ms * 1000000L};
    nanosleep(&ts, NULL);
}

/* ---- fair turns ---- */

enum { TURNS = 40 };

typedef struct {
    ag_backend *be;
    int id;
    int *order;
    atomic_int *n, *finished;
} turn_arg;

static void *turn_thread(void *p)
{
    turn_arg *a = p;
    for (int i = 0; i < TURNS; i++) {
        ag_backend_turn_begin(a->be);
        a->order[atomic_fetch_add(a->n, 1)] = a->id;
        /* hold the turn until the other thread asks for one (unless it is done), so that
         * every release finds a waiter: the order is then the lock's alone, not the scheduler's */
        int waiting = 0;
        for (;;) {
            ag_backend_turn_stats(a->be, NULL, NULL, &waiting);
            if (waiting > 0 || atomic_load(a->finished) > 0)
                break;
            sleep_ms(1);
        }
        ag_backend_turn_end(a->be);
    }
    atomic_fetch_add(a->finished, 1);
    return NULL;
}

static void test_turns(ag_backend *be)
{
    int order[2 * TURNS];
    atomic_int n = 0, finished = 0;
    turn_arg a = {be, 0, order, &n, &finished}, b = {be, 1, order, &n, &finished};
    pthread_t ta, tb;
    pthread_create(&ta, NULL, turn_thread, &a);
    pthread_create(&tb, NULL, turn_thread, &b);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    CHECK(n == 2 * TURNS, "%d turns", (int)n);
    /* every release found the other thread waiting: strict alternation */
    int repeats = 0;
    for (int i = 1; i < 2 * TURNS; i++)
        repeats += order[i] == order[i - 1];
    CHECK(repeats == 0, "%d times a thread took two turns in a row while the other waited", repeats);
    uint64_t served, waited;
    int waiting;
    ag_backend_turn_stats(be, &served, &waited, &waiting);
    CHECK(served >= 2 * TURNS && waited >= 2 * TURNS - 1 && waiting == 0, "served %llu, waited %llu, waiting %d",
          (unsigned long long)served, (unsigned long long)waited, waiting);
    /* nesting on one thread: no self-deadlock, one turn counted */
    ag_backend_turn_stats(be, &served, NULL, NULL);
    ag_backend_turn_begin(be);
    ag_backend_turn_begin(be);
    ag_backend_turn_end(be);
    ag_backend_turn_end(be);
    uint64_t after;
    ag_backend_turn_stats(be, &after, NULL, NULL);
    CHECK(after == served + 1, "nested turns counted %llu", (unsigned long long)(after - served));
}

/* ---- compute from two threads ---- */

enum { N = 4099, ROUNDS = 30 };

typedef struct {
    ag_backend *be;
    float scale;
    int bad;
} compute_arg;

static void *compute_thread(void *p)
{
    compute_arg *a = p;
    ag_ctx *ctx = ag_ctx_new(16);
    ag_graph *g = ag_graph_new(ctx, 16);
    ag_tensor *x = ag_new_1d(ctx, AG_TYPE_F32, N);
    ag_set_input(x);
    ag_tensor *y = ag_scale(ctx, ag_scale(ctx, x, a->scale, 1.0f), 1.0f, 0.5f);
    ag_allocator *al = ag_allocator_new(a->be);
    float *in = malloc(N * sizeof *in), *out = malloc(N * sizeof *out);
    if (ag_graph_expand(g, y) != 0 || ag_allocator_alloc_graph(al, g) != 0)
        a->bad = -1;
    for (int r = 0; r < ROUNDS && a->bad == 0; r++) {
        for (int i = 0; i < N; i++)
            in[i] = (float)((i + r) % 13) - 6.0f;
        if (ag_tensor_set(x, in, 0, N * sizeof *in) != 0 || ag_backend_compute(a->be, g) != 0 ||
            ag_tensor_get(y, out, 0, N * sizeof *out) != 0) {
            a->bad = -1;
            break;
        }
        for (int i = 0; i < N; i++)
            if (out[i] != in[i] * a->scale + 1.5f)
                a->bad++;
    }
    free(in);
    free(out);
    ag_allocator_free(al);
    ag_graph_free(g);
    ag_ctx_free(ctx);
    return NULL;
}

static void test_compute(ag_backend *be)
{
    compute_arg a = {be, 2.0f, 0}, b = {be, -3.0f, 0};
    pthread_t ta, tb;
    pthread_create(&ta, NULL, compute_thread, &a);
    pthread_create(&tb, NULL, compute_thread, &b);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    CHECK(a.bad == 0 && b.bad == 0, "wrong values: %d and %d (-1: %s)", a.bad, b.bad, ag_last_error());
}

/* ---- shared weights ---- */

static int write_model(const char *path, const char *arch, float v)
{
    static float data[2][64];
    int slot = arch[0] == 'b';
    for (int i = 0; i < 64; i++)
        data[slot][i] = v + (float)i;
    ag_gguf_writer *w = ag_gguf_writer_new();
    int rc = ag_gguf_set_str(w, "general.architecture", arch) |
             ag_gguf_add_tensor(w, "w", AG_TYPE_F32, 1, (const int64_t[]){64}, data[slot], sizeof data[slot]) |
             ag_gguf_writer_write(w, path);
    ag_gguf_writer_free(w);
    return rc;
}

static float first_value(ag_weights *w)
{
    float v = -1;
    ag_tensor *t = ag_weights_get(w, "w");
    if (t)
        ag_tensor_get(t, &v, 0, sizeof v);
    return v;
}

static void test_weights(ag_backend *be, ag_backend *other, const char *dir)
{
    char path[512];
    snprintf(path, sizeof path, "%s/test_shared_weights.gguf", dir);
    CHECK(write_model(path, "alpha", 7.0f) == 0, "write: %s", ag_last_error());
    size_t files0, users0;
    ag_weights_shared_stats(&files0, &users0, NULL);

    ag_weights *a = ag_weights_load(be, path, "alpha", NULL, NULL);
    ag_weights *b = ag_weights_load(be, path, NULL, NULL, NULL);
    CHECK(a && a == b, "a second load of the file on the backend is the same weights (%p, %p)", (void *)a,
          (void *)b);
    CHECK(a && ag_weights_users(a) == 2 && ag_weights_shared_users(be, path) == 2, "users %d",
          a ? ag_weights_users(a) : -1);
    size_t files, users;
    ag_weights_shared_stats(&files, &users, NULL);
    CHECK(files == files0 + 1 && users == users0 + 2, "%zu files, %zu users", files - files0, users - users0);
    CHECK(ag_weights_load(be, path, "beta", NULL, NULL) == NULL && strstr(ag_last_error(), "expected 'beta'"),
          "wrong architecture on a shared file: %s", ag_last_error());
    CHECK(ag_weights_users(a) == 2, "a refused load is not a user (%d)", ag_weights_users(a));

    ag_weights *c = ag_weights_load(other, path, "alpha", NULL, NULL);
    CHECK(c && c != a && ag_weights_shared_users(other, path) == 1, "another backend gets its own copy");

    ag_weights_free(b);
    CHECK(ag_weights_users(a) == 1 && first_value(a) == 7.0f, "one user left, weights intact");

    /* rewritten in place (new mtime/size/inode): loaded anew, the old copy still valid */
    sleep_ms(20);
    unlink(path);
    CHECK(write_model(path, "alpha", 9.0f) == 0, "rewrite: %s", ag_last_error());
    ag_weights *d = ag_weights_load(be, path, "alpha", NULL, NULL);
    CHECK(d && d != a && first_value(d) == 9.0f && first_value(a) == 7.0f, "a changed file is a new copy");
    ag_weights_free(a);
    ag_weights_free(c);
    ag_weights_free(d);
    ag_weights_shared_stats(&files, &users, NULL);
    CHECK(files == files0 && users == users0, "all freed: %zu files, %zu users left", files - files0,
          users - users0);
    unlink(path);
}

int main(int argc, char **argv)
{
    ag_backend *be = ag_backend_cpu_new(2), *other = ag_backend_cpu_new(1);
    if (!be || !other) {
        printf("cpu backend: %s\n", ag_last_error());
        return 1;
    }
    test_turns(be);
    test_compute(be);
    test_weights(be, other, argc > 1 ? argv[1] : ".");
    ag_backend_free(be);
    ag_backend_free(other);
    return t_finish();
}
