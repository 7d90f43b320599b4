/* set_timesteps: the timestep of every model evaluation, as diffusers computes it with numpy.
 *  grid (ascending)  leading:  i * (N // n) + steps_offset
 *                    trailing: rint(numpy.arange(N, 0, -N / n)) - 1, reversed
 *                    linspace: rint(numpy.linspace(0, N - 1, n))
 *  DDIM              the grid descending.
 *  PNDM skip_prk     grid[:-1] + grid[-2] + grid[-1], descending: the second-largest timestep
 *                    twice (the PLMS warm-up evaluates it twice).
 *  PNDM with PRK     the last four grid points each with a midpoint (+ N // n // 2), arranged
 *                    as 12 Runge-Kutta evaluations, then grid[:-3] descending.
 * numpy's arange of floats has ceil((stop - start) / step) elements, element i being
 * start + i * ((start + step) - start); linspace's element i is i * ((N - 1) / (n - 1)) with the
 * last one set to N - 1 exactly; rint rounds half to even like numpy.round. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "anygpt/error.h"
#include "unclip_sched_internal.h"

/* The ascending grid; *len may exceed steps for trailing (numpy's arange length rule). */
static int64_t *make_grid(const ag_sched_config *c, int32_t steps, int32_t *len)
{
    const int32_t N = c->num_train_timesteps;
    int64_t count = steps;
    double ratio_f = (double)N / steps;
    if (c->spacing == AG_SPACING_TRAILING) {
        count = (int64_t)ceil((0.0 - N) / -ratio_f);
        if (count < 1 || count > 2 * (int64_t)N) {
            ag_set_error("scheduler: trailing spacing gives %lld timesteps for %d steps", (long long)count, steps);
            return NULL;
        }
    }
    int64_t *g = malloc(sizeof(int64_t) * (size_t)count);
    if (!g) {
        ag_set_error("scheduler: out of memory");
        return NULL;
    }
    switch (c->spacing) {
    case AG_SPACING_LEADING:
        for (int32_t i = 0; i < steps; i++)
            g[i] = (int64_t)i * (N / steps) + c->steps_offset;
        break;
    case AG_SPACING_TRAILING: {
        const double start = N, second = start + -ratio_f, delta = second - start;
        for (int64_t i = 0; i < count; i++) {
            double v = i == 0 ? start : i == 1 ? second : start + (double)i * delta;
            g[count - 1 - i] = (int64_t)rint(v) - 1;
        }
        break;
    }
    case AG_SPACING_LINSPACE:
        if (steps == 1) {
            g[0] = 0;
        } else {
            const double step = (double)(N - 1) / (steps - 1);
            for (int32_t i = 0; i < steps; i++)
                g[i] = (int64_t)rint(i == steps - 1 ? (double)(N - 1) : (double)i * step);
        }
        break;
    default:
        free(g);
        ag_set_error("scheduler: unknown timestep spacing %d", (int)c->spacing);
        return NULL;
    }
    *len = (int32_t)count;
    return g;
}

int ag_sched_build_timesteps(ag_sched *s)
{
    const ag_sched_config *c = &s->cfg;
    int32_t m = 0;
    int64_t *g = make_grid(c, s->steps, &m);
    if (!g)
        return -1;
    int64_t *list = malloc(sizeof(int64_t) * ((size_t)m + 12));
    if (!list) {
        free(g);
        ag_set_error("scheduler: out of memory");
        return -1;
    }
    int32_t n = 0;
    s->n_prk = 0;
    if (c->kind == AG_SCHED_DDIM) {
        for (int32_t i = m - 1; i >= 0; i--)
            list[n++] = g[i];
    } else if (c->skip_prk_steps) {
        list[n++] = g[m - 1];
        if (m >= 2)
            list[n++] = g[m - 2];
        for (int32_t i = m - 2; i >= 0; i--)
            list[n++] = g[i];
    } else {
        if (m < 4) {
            free(g);
            free(list);
            ag_set_error("scheduler: PNDM with Runge-Kutta warm-up needs at least 4 steps (got %d)", s->steps);
            return -1;
        }
        const int64_t half = c->num_train_timesteps / s->steps / 2;
        int64_t a[7];
        for (int k = 0; k < 7; k++)
            a[k] = g[m - 4 + k / 2] + (k % 2 ? half : 0);
        /* a[0], a[1], a[1], ..., a[5], a[5], a[6], reversed */
        int64_t prk[12];
        for (int k = 0; k < 12; k++)
            prk[k] = a[(k + 1) / 2];
        for (int k = 11; k >= 0; k--)
            list[n++] = prk[k];
        s->n_prk = 12;
        for (int32_t i = m - 4; i >= 0; i--)
            list[n++] = g[i];
    }
    free(g);
    s->ts = malloc(sizeof(int32_t) * (size_t)n);
    if (!s->ts) {
        free(list);
        ag_set_error("scheduler: out of memory");
        return -1;
    }
    for (int32_t i = 0; i < n; i++) {
        if (list[i] < 0 || list[i] >= c->num_train_timesteps) {
            ag_set_error("scheduler: %d steps give timestep %lld outside 0..%d (steps_offset %d)", s->steps,
                         (long long)list[i], c->num_train_timesteps - 1, c->steps_offset);
            free(list);
            free(s->ts);
            s->ts = NULL;
            return -1;
        }
        s->ts[i] = (int32_t)list[i];
    }
    s->n_evals = n;
    free(list);
    return 0;
}
