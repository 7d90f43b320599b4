/* ATTENTION, flash style: for a block of query rows of one head, walk the keys in tiles,
 * S = Q K^T (sgemm) on the tile only, online softmax (running max and sum per row), O += P V.
 * Memory is O(block x tile + Nk x D), never Nq x Nk, so 9216-token self-attention fits.
 * F32 K/V are read in place; F16 ones are widened once per kv head a thread visits. */
#include "cpu/cpu_internal.h"
#include "anygpt/quant.h"

#include <math.h>
#include <string.h>

#define BQ 64  /* query rows per block */
#define BK 256 /* keys per tile */
#define DIRECT_MAX_Q 4 /* up to this many query rows (decoding): dot kernels on k in place */

typedef struct {
    float *q, *k, *v, *s, *o, *m, *l;
} att_scratch;

/* K/V used in place when they are F32 rows sgemm can address, else widened per head. */
static bool att_copy(const ag_tensor *t)
{
    return t->type != AG_TYPE_F32 || t->nb[1] % 4 != 0 || t->nb[2] % 4 != 0 || (uintptr_t)cpu_data(t) % 4 != 0;
}

static size_t att_layout(const ag_tensor *node, att_scratch *sc, char *base)
{
    const ag_tensor *k = node->src[1], *v = node->src[2];
    const size_t D = (size_t)k->ne[0], Dv = (size_t)v->ne[0], Nk = (size_t)k->ne[1];
    const size_t krows = att_copy(k) ? Nk : 0, vrows = att_copy(v) ? (Nk > BK ? Nk : BK) : BK;
    const size_t sz[7] = {
        cpu_align(BQ * D * 4), cpu_align(krows * D * 4), cpu_align(vrows * Dv * 4), cpu_align((size_t)BQ * BK * 4),
        cpu_align(BQ * Dv * 4), cpu_align(BQ * 4), cpu_align(BQ * 4),
    };
    size_t off = 0;
    float **dst[7] = {&sc->q, &sc->k, &sc->v, &sc->s, &sc->o, &sc->m, &sc->l};
    for (int i = 0; i < 7; i++) {
        if (base)
            *dst[i] = (float *)(base + off);
        off += sz[i];
    }
    return off;
}

size_t cpu_priv_attention(const ag_tensor *node)
{
    att_scratch sc;
    return att_layout(node, &sc, NULL);
}

/* One query row against all visible keys: scores straight from k's rows with the dot kernels
 * (no copy of k), online softmax per tile on the vector kernels, then the tile's V rows summed
 * with their weights (F16 V: ag_mad_rows_f16, the sum held in registers across the rows). */
static void att_row(const ag_tensor *k, const ag_tensor *v, const char *Kh, const char *Vh, const float *q,
                    const float *mrow, int64_t kend, float scale, const att_scratch *sc, float *out)
{
    const int64_t D = k->ne[0], Dv = v->ne[0];
    float m = -INFINITY, l = 0.0f;
    float *o = sc->o, *s = sc->s, *vr = sc->v;
    memset(o, 0, (size_t)Dv * 4);
    for (int64_t j0 = 0; j0 < kend; j0 += BK) {
        const int64_t nk = j0 + BK < kend ? BK : kend - j0;
        ag_vec_dot_rows(k->type, D, Kh + j0 * (int64_t)k->nb[1], k->nb[1], (int)nk, q, s);
        float mx = m;
        if (!mrow) {
            const float tm = ag_vec_scale_max(s, nk, scale);
            mx = tm > mx ? tm : mx;
        } else {
            for (int64_t j = 0; j < nk; j++) {
                s[j] = s[j] * scale + mrow[j0 + j];
                mx = s[j] > mx ? s[j] : mx;
            }
        }
        if (mx == -INFINITY)
            continue;
        const float alpha = expf(m - mx);
        l *= alpha;
        if (alpha != 1.0f)
            for (int64_t d = 0; d < Dv; d++)
                o[d] *= alpha;
        l += ag_vec_exp_sum(s, nk, mx); /* s[j] = exp(s[j] - mx): the weights */
        const char *V0 = Vh + j0 * (int64_t)v->nb[1];
        if (v->type == AG_TYPE_F16) {
            ag_mad_rows_f16(Dv, nk, s, (const ag_fp16 *)V0, v->nb[1], o);
        } else {
            for (int64_t j = 0; j < nk; j++) {
                if (s[j] == 0.0f)
                    continue;
                const char *vrow = V0 + j * (int64_t)v->nb[1];
                const float *vf = (const float *)vrow;
                if (v->type != AG_TYPE_F32) {
                    cpu_to_f32(v->type, vrow, vr, Dv);
                    vf = vr;
                }
                for (int64_t d = 0; d < Dv; d++)
                    o[d] += s[j] * vf[d];
            }
        }
        m = mx;
    }
    const float inv = l > 0.0f ? 1.0f / l : 0.0f;
    for (int64_t d = 0; d < Dv; d++)
        out[d] = o[d] * inv;
}

void cpu_op_attention(const cpu_params *p, ag_tensor *node)
{
    const ag_tensor *q = node->src[0], *k = node->src[1], *v = node->src[2], *mask = node->src[3];
    const int64_t D = q->ne[0], Nq = q->ne[1], H = q->ne[2], Nk = k->ne[1], Hkv = k->ne[2], Dv = v->ne[0];
    const int64_t grp = H / Hkv, off = Nk - Nq;
    const float scale = ag_op_param_f32(node, 0);
    const bool causal = node->op_params[1] != 0;
    const char *Q = cpu_data(q), *Kd = cpu_data(k), *Vd = cpu_data(v);
    const float *Mk = mask ? (const float *)cpu_data(mask) : NULL;
    float *O = (float *)cpu_data(node);
    att_scratch sc;
    att_layout(node, &sc, p->priv);

    if (Nq <= DIRECT_MAX_Q) {
        for (int64_t u = p->ith; u < H * Nq; u += p->nth) {
            const int64_t h = u / Nq, i = u % Nq, hk = h / grp;
            int64_t kend = Nk;
            if (causal) {
                kend = i + off + 1;
                kend = kend < 0 ? 0 : (kend > Nk ? Nk : kend);
            }
            att_row(k, v, Kd + hk * (int64_t)k->nb[2], Vd + hk * (int64_t)v->nb[2],
                    (const float *)(Q + i * (int64_t)q->nb[1] + h * (int64_t)q->nb[2]), Mk ? Mk + i * Nk : NULL, kend,
                    scale, &sc, O + (i * H + h) * Dv);
        }
        return;
    }
    const bool kcopy = att_copy(k), vcopy = att_copy(v);
    const int64_t nqb = (Nq + BQ - 1) / BQ;
    int64_t have_hk = -1; /* kv head whose rows sit widened in sc.k / sc.v */
    for (int64_t u = p->ith; u < H * nqb; u += p->nth) {
        const int64_t h = u / nqb, q0 = (u % nqb) * BQ, nq = q0 + BQ < Nq ? BQ : Nq - q0, hk = h / grp;
        const float *kf = kcopy ? sc.k : (const float *)(Kd + hk * (int64_t)k->nb[2]);
        const float *vf = vcopy ? sc.v : (const float *)(Vd + hk * (int64_t)v->nb[2]);
        const int64_t ldk = kcopy ? D : (int64_t)k->nb[1] / 4, ldv = vcopy ? Dv : (int64_t)v->nb[1] / 4;
        if ((kcopy || vcopy) && hk != have_hk) {
            for (int64_t j = 0; j < Nk; j++) {
                if (kcopy)
                    cpu_to_f32(k->type, Kd + j * (int64_t)k->nb[1] + hk * (int64_t)k->nb[2], sc.k + j * D, D);
                if (vcopy)
                    cpu_to_f32(v->type, Vd + j * (int64_t)v->nb[1] + hk * (int64_t)v->nb[2], sc.v + j * Dv, Dv);
            }
            have_hk = hk;
        }
        for (int64_t r = 0; r < nq; r++) {
            memcpy(sc.q + r * D, Q + (q0 + r) * (int64_t)q->nb[1] + h * (int64_t)q->nb[2], (size_t)D * 4);
            sc.m[r] = -INFINITY;
            sc.l[r] = 0.0f;
        }
        memset(sc.o, 0, (size_t)nq * (size_t)Dv * 4);
        /* keys past kend are causally hidden from every row of the block */
        int64_t kend = Nk;
        if (causal) {
            kend = q0 + nq - 1 + off + 1;
            kend = kend < 0 ? 0 : (kend > Nk ? Nk : kend);
        }
        for (int64_t j0 = 0; j0 < kend; j0 += BK) {
            const int64_t nk = j0 + BK < kend ? BK : kend - j0;
            cpu_sgemm(false, true, nq, nk, D, sc.q, D, kf + j0 * ldk, ldk, sc.s, BK, false);
            for (int64_t r = 0; r < nq; r++) {
                const int64_t i = q0 + r;
                float *s = sc.s + r * BK;
                const float *mrow = Mk ? Mk + i * Nk + j0 : NULL;
                const int64_t vis = causal ? i + off + 1 - j0 : nk; /* columns < vis are visible */
                float mx = sc.m[r];
                if (!mrow && vis >= nk) { /* the common case, on the SIMD kernels */
                    const float tm = ag_vec_scale_max(s, nk, scale);
                    mx = tm > mx ? tm : mx;
                } else {
                    for (int64_t j = 0; j < nk; j++) {
                        float x = j < vis ? s[j] * scale + (mrow ? mrow[j] : 0.0f) : -INFINITY;
                        s[j] = x;
                        mx = x > mx ? x : mx;
                    }
                }
                if (mx == -INFINITY) { /* nothing visible yet: contributes nothing */
                    memset(s, 0, (size_t)nk * 4);
                    continue;
                }
                const float alpha = expf(sc.m[r] - mx); /* 0 when the old max was -inf */
                const float sum = ag_vec_exp_sum(s, nk, mx);
                sc.l[r] = sc.l[r] * alpha + sum;
                sc.m[r] = mx;
                if (alpha != 1.0f) {
                    float *o = sc.o + r * Dv;
                    for (int64_t d = 0; d < Dv; d++)
                        o[d] *= alpha;
                }
            }
            cpu_sgemm(false, false, nq, Dv, nk, sc.s, BK, vf + j0 * ldv, ldv, sc.o, Dv, true);
        }
        for (int64_t r = 0; r < nq; r++) {
            float *dst = O + ((q0 + r) * H + h) * Dv;
            const float inv = sc.l[r] > 0.0f ? 1.0f / sc.l[r] : 0.0f;
            for (int64_t d = 0; d < Dv; d++)
                dst[d] = sc.o[r * Dv + d] * inv;
        }
    }
}
