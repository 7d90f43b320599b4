/* Memory planner: intermediates share space once dead, but outputs, live values and the bases of
 * live views are never overwritten (checked by computing closed forms on the cpu backend). */
#include "anygpt/backend.h"
#include "anygpt/error.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/ag_check.h"

enum { N = 100003 }; /* odd, not a multiple of the alignment */

static float *get(const ag_tensor *t)
{
    float *v = malloc(N * sizeof *v);
    if (ag_tensor_get(t, v, 0, N * sizeof *v) != 0)
        printf("get: %s\n", ag_last_error());
    return v;
}

int main(void)
{
    ag_backend *be = ag_backend_cpu_new(2);
    if (!be) {
        printf("cpu backend: %s\n", ag_last_error());
        return 1;
    }
    float *x0 = malloc(N * sizeof *x0);
    for (int i = 0; i < N; i++)
        x0[i] = (float)(i % 97) * 0.25f - 3.0f;

    ag_ctx *ctx = ag_ctx_new(256);
    ag_graph *g = ag_graph_new(ctx, 256);
    ag_tensor *x = ag_new_1d(ctx, AG_TYPE_F32, N);
    ag_set_input(x);
    /* a chain: y_{k+1} = 2 y_k + 1; a kept output in the middle; a diamond at the end that
     * needs y_5 alive across two nodes; a view of a dead-looking base */
    ag_tensor *y = x, *mid = NULL, *y5 = NULL;
    for (int k = 0; k < 10; k++) {
        y = ag_scale(ctx, y, 2.0f, 1.0f);
        if (k == 3) {
            mid = y;
            ag_set_output(mid);
        }
        if (k == 5)
            y5 = y;
    }
    ag_tensor *d = ag_add(ctx, y, ag_scale(ctx, y5, -1.0f, 0.0f)); /* y10 - y6 */
    ag_tensor *v = ag_reshape_2d(ctx, d, 1, N);                    /* view of d */
    ag_tensor *out = ag_scale(ctx, ag_reshape(ctx, v, 1, (const int64_t[]){N}), 1.0f, 0.0f);
    ag_allocator *al = ag_allocator_new(be);
    CHECK(out && ag_graph_expand(g, mid) == 0 && ag_graph_expand(g, out) == 0, "graph: %s", ag_last_error());
    CHECK(ag_allocator_alloc_graph(al, g) == 0, "alloc: %s", ag_last_error());
    const size_t one = (N * sizeof(float) + 63) / 64 * 64;
    /* 15 tensors are planned; at most x/y_k/y_k+1, mid, y5 and the diamond's pieces live at once */
    CHECK(ag_allocator_buffer_size(al) <= 6 * one, "compute buffer %zu bytes = %.1f tensors, expected <= 6",
          ag_allocator_buffer_size(al), (double)ag_allocator_buffer_size(al) / (double)one);
    CHECK(ag_tensor_set(x, x0, 0, N * sizeof *x0) == 0, "set: %s", ag_last_error());
    CHECK(ag_backend_compute(be, g) == 0, "compute: %s", ag_last_error());
    float *m = get(mid), *o = get(out);
    int bad_mid = 0, bad_out = 0;
    for (int i = 0; i < N; i++) {
        const double xp1 = (double)x0[i] + 1.0;
        bad_mid += fabs(m[i] - (16.0 * xp1 - 1.0)) > 1e-4 * fabs(16.0 * xp1) + 1e-4;
        bad_out += fabs(o[i] - 960.0 * xp1) > 1e-4 * fabs(960.0 * xp1) + 1e-3;
    }
    CHECK(bad_mid == 0, "kept output in the middle of the chain was overwritten (%d wrong)", bad_mid);
    CHECK(bad_out == 0, "diamond/view result wrong in %d places (o[5] = %g)", bad_out, o[5]);
    free(m);
    free(o);
    /* a second, larger plan grows the buffer; the same plan again reuses it */
    const size_t before = ag_allocator_buffer_size(al);
    CHECK(ag_allocator_alloc_graph(al, g) == 0 && ag_allocator_buffer_size(al) == before, "re-plan reuses the buffer");
    ag_allocator_free(al);
    ag_graph_free(g);
    ag_ctx_free(ctx);

    /* limits.h: a plan whose intermediates exceed AG_MAX_GRAPH_BYTES is refused before anything is
     * allocated (two 2^31-float tensors: 16 GiB) */
    ctx = ag_ctx_new(8);
    g = ag_graph_new(ctx, 8);
    ag_tensor *big = ag_new_1d(ctx, AG_TYPE_F32, (int64_t)1 << 31);
    ag_set_input(big);
    ag_tensor *twice = ag_scale(ctx, big, 2.0f, 0.0f);
    al = ag_allocator_new(be);
    CHECK(twice && ag_graph_expand(g, twice) == 0, "big graph: %s", ag_last_error());
    ag_clear_error();
    CHECK(ag_allocator_alloc_graph(al, g) != 0 && strstr(ag_last_error(), "accepted") &&
              ag_allocator_buffer_size(al) == 0,
          "a 16 GiB plan: '%s', buffer %zu", ag_last_error(), ag_allocator_buffer_size(al));
    printf("# %s\n", ag_last_error());
    ag_allocator_free(al);
    ag_graph_free(g);
    ag_ctx_free(ctx);
    free(x0);
    ag_backend_free(be);
    return t_finish();
}
