/* Shared by fuzz_torchzip.c and fuzz_safetensors.c: every tensor a reader accepted must lie
 * inside the file, and the small floating-point ones are read out with their strides. */
#ifndef AG_FUZZ_CKPT_H
#define AG_FUZZ_CKPT_H

#include "fuzz_util.h"

#include "anygpt/error.h"
#include "ckpt.h"

#include <stdio.h>
#include <stdlib.h>

static inline void fz_ckpt_walk(ckpt *c)
{
    for (size_t k = 0; k < c->n; k++) {
        const ckpt_tensor *t = &c->t[k];
        const ckpt_map *m = &c->maps[c->n_maps - 1];
        if (ckpt_check_extent(t, m->base, m->size, "file") != 0) {
            fprintf(stderr, "fuzz: tensor '%s' accepted but outside its file: %s\n", t->name, ag_last_error());
            abort();
        }
        int64_t n = ckpt_numel(t);
        if (n < 0 || n > (1 << 16))
            continue;
        float *out = malloc((size_t)(n ? n : 1) * sizeof *out);
        if (!out)
            abort();
        if (ckpt_to_f32(t, out) != 0)
            fz_expect_error("ckpt_to_f32");
        if (t->n_dims >= 1 && t->shape[0] > 1) {
            ag_clear_error();
            if (ckpt_rows_to_f32(t, 1, t->shape[0] - 1, out) != 0)
                fz_expect_error("ckpt_rows_to_f32");
        }
        free(out);
    }
}

#endif
