/* ATTENTION, flash style: for a block of query rows of one head, walk the keys in tiles,
 * S = Q K^T on the tile only, online softmax (running max and sum per row), O += P V.
 * Memory is O(block x tile + Nk x D), never Nq x Nk, so 9216-token self-attention fits.
 * Both products run on the packed float GEMM (quant.h, ag_packed_matmul_f): a kv head's keys
 * are packed once per head a thread visits (groups of 16 keys), and its values as V^T (groups
 * of 16 of V's columns, a tile's keys along K), F16 kept F16 (widened in registers), other
 * types widened to F32. It replaced sgemm here: OpenBLAS 0.3.21 falls back to its SSE3
 * (Prescott) kernels on CPUs it does not know (Intel Emerald Rapids), where these sgemms were
 * 11% of a 7B prefill. */
#include "cpu/cpu_internal.h"
#include "anygpt/quant.h"

#include <math.h>
#include <string.h>

#define BQ 64  /* query rows per block */
#define BK 256 /* keys per tile (a multiple of AG_PACK_ROWS: a tile's key groups are whole) */
#define DIRECT_MAX_Q 4 /* up to this many query rows (decoding): dot kernels on k in place */

typedef struct {
    float *q, *s, *o, *po, *m, *l, *row;
    char *pk, *pv;
} att_scratch;

/* The type a K or V tensor is packed as: F16 stays F16, everything else is widened to F32. */
static ag_type att_pack_type(const ag_tensor *t)
{
    return t->type == AG_TYPE_F16 ? AG_TYPE_F16 : AG_TYPE_F32;
}

static int64_t att_tiles(int64_t Nk)
{
    return (Nk + BK - 1) / BK;
}

/* Bytes of one tile of packed V^T (whole tile; a last short tile uses less) */
static size_t att_vtile_bytes(const ag_tensor *v)
{
    return ag_packed_size(att_pack_type(v), v->ne[0], BK);
}

static size_t att_layout(const ag_tensor *node, att_scratch *sc, char *base)
{
    const ag_tensor *k = node->src[1], *v = node->src[2];
    const size_t D = (size_t)k->ne[0], Dv = (size_t)v->ne[0], Nk = (size_t)k->ne[1];
    const size_t Dmax = D > Dv ? D : Dv;
    const bool flash = node->src[0]->ne[1] > DIRECT_MAX_Q; /* decoding packs nothing */
    const size_t sz[9] = {
        cpu_align(BQ * D * 4),  cpu_align((size_t)BQ * BK * 4), cpu_align(BQ * Dv * 4),
        cpu_align(BQ * Dv * 4), cpu_align(BQ * 4),              cpu_align(BQ * 4),
        cpu_align(Dmax * 4),
        flash ? cpu_align(ag_packed_size(att_pack_type(k), (int64_t)Nk, (int64_t)D)) : 0,
        flash ? cpu_align((size_t)att_tiles((int64_t)Nk) * att_vtile_bytes(v)) : 0,
    };
    size_t off = 0;
    void **dst[9] = {(void **)&sc->q, (void **)&sc->s, (void **)&sc->o, (void **)&sc->po, (void **)&sc->m,
                     (void **)&sc->l, (void **)&sc->row, (void **)&sc->pk, (void **)&sc->pv};
    for (int i = 0; i < 9; i++) {
        if (base)
            *dst[i] = base + off;
        off += sz[i];
    }
    return off;
}

size_t cpu_priv_attention(const ag_tensor *node)
{
    att_scratch sc;
    return att_layout(node, &sc, NULL);
}

/* Row j of kv head `head` of t in its pack type: in place when it already is, else widened
 * into tmp. */
static const void *att_row_as(const ag_tensor *t, const char *head, int64_t j, float *tmp)
{
    const char *src = head + j * (int64_t)t->nb[1];
    if (t->type == att_pack_type(t))
        return src;
    cpu_to_f32(t->type, src, tmp, t->ne[0]);
    return tmp;
}

/* One element of a packed float group: es bytes (2 or 4, constant after inlining) */
static inline void att_put(char *dst, const char *src, size_t es)
{
    if (es == 2)
        memcpy(dst, src, 2);
    else
        memcpy(dst, src, 4);
}

/* The head's Nk keys as packed groups of 16, key j being row j of the GEMM's weights */
static void att_pack_keys(const ag_tensor *k, const char *head, int64_t Nk, float *tmp, char *dst)
{
    const ag_type pt = att_pack_type(k);
    const int64_t D = k->ne[0];
    const size_t es = pt == AG_TYPE_F16 ? 2 : 4, gbytes = ag_packed_size(pt, AG_PACK_ROWS, D);
    for (int64_t g = 0; g * AG_PACK_ROWS < Nk; g++) {
        char *gd = dst + (size_t)g * gbytes;
        for (int64_t jj = 0; jj < AG_PACK_ROWS; jj++) {
            const int64_t j = g * AG_PACK_ROWS + jj;
            if (j >= Nk) { /* padding keys: zeros (their scores are never read) */
                for (int64_t d = 0; d < D; d++)
                    memset(gd + ((size_t)d * AG_PACK_ROWS + (size_t)jj) * es, 0, es);
                continue;
            }
            const char *row = att_row_as(k, head, j, tmp);
            if (es == 2)
                for (int64_t d = 0; d < D; d++)
                    att_put(gd + ((size_t)d * AG_PACK_ROWS + (size_t)jj) * 2, row + (size_t)d * 2, 2);
            else
                for (int64_t d = 0; d < D; d++)
                    att_put(gd + ((size_t)d * AG_PACK_ROWS + (size_t)jj) * 4, row + (size_t)d * 4, 4);
        }
    }
}

/* The head's values as V^T, tile by tile (att_vtile_bytes apart): in a tile of nk keys, group g
 * holds columns 16g.. of V with the keys along K, so key j of the tile is 16 contiguous values */
static void att_pack_values(const ag_tensor *v, const char *head, int64_t Nk, float *tmp, char *dst)
{
    const ag_type pt = att_pack_type(v);
    const int64_t Dv = v->ne[0], ngv = (Dv + AG_PACK_ROWS - 1) / AG_PACK_ROWS;
    const size_t es = pt == AG_TYPE_F16 ? 2 : 4, tile_bytes = att_vtile_bytes(v);
    for (int64_t j = 0; j < Nk; j++) {
        const char *row = att_row_as(v, head, j, tmp);
        const int64_t t = j / BK, jt = j % BK, nk = Nk - t * BK < BK ? Nk - t * BK : BK;
        char *td = dst + (size_t)t * tile_bytes;
        for (int64_t g = 0; g < ngv; g++) {
            char *col = td + (size_t)(g * nk + jt) * AG_PACK_ROWS * es;
            const int64_t d0 = g * AG_PACK_ROWS, nd = Dv - d0 < AG_PACK_ROWS ? Dv - d0 : AG_PACK_ROWS;
            memcpy(col, row + (size_t)d0 * es, (size_t)nd * es);
            if (nd < AG_PACK_ROWS)
                memset(col + (size_t)nd * es, 0, (size_t)(AG_PACK_ROWS - nd) * es);
        }
    }
}

/* One query row against all visible keys: scores straight from k's rows with the dot kernels
 * (no copy of k), online softmax per tile on the vector kernels, then the tile's V rows summed
 * with their weights (F16 V: ag_mad_rows_f16, the sum held in registers across the rows). */
static void att_row(const ag_tensor *k, const ag_tensor *v, const char *Kh, const char *Vh, const float *q,
                    const float *mrow, int64_t kend, float scale, const att_scratch *sc, float *out)
{
    const int64_t D = k->ne[0], Dv = v->ne[0];
    float m = -INFINITY, l = 0.0f;
    float *o = sc->o, *s = sc->s, *vr = sc->row;
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
    const ag_type kpt = att_pack_type(k), vpt = att_pack_type(v);
    const size_t kgroup = ag_packed_size(kpt, AG_PACK_ROWS, D), vtile = att_vtile_bytes(v);
    const int64_t nqb = (Nq + BQ - 1) / BQ;
    int64_t have_hk = -1; /* kv head whose keys and values sit packed in sc.pk / sc.pv */
    for (int64_t u = p->ith; u < H * nqb; u += p->nth) {
        const int64_t h = u / nqb, q0 = (u % nqb) * BQ, nq = q0 + BQ < Nq ? BQ : Nq - q0, hk = h / grp;
        if (hk != have_hk) {
            att_pack_keys(k, Kd + hk * (int64_t)k->nb[2], Nk, sc.row, sc.pk);
            att_pack_values(v, Vd + hk * (int64_t)v->nb[2], Nk, sc.row, sc.pv);
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
            ag_packed_matmul_f(kpt, D, sc.pk + (size_t)(j0 / AG_PACK_ROWS) * kgroup, nk, sc.q, D, nq, sc.s, BK);
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
            /* V^T was packed by whole tiles: keys nk.. of this one (causally hidden from the
             * whole block) get weight 0 */
            const int64_t nkt = Nk - j0 < BK ? Nk - j0 : BK;
            if (nkt > nk)
                for (int64_t r = 0; r < nq; r++)
                    memset(sc.s + r * BK + nk, 0, (size_t)(nkt - nk) * 4);
            ag_packed_matmul_f(vpt, nkt, sc.pv + (size_t)(j0 / BK) * vtile, Dv, sc.s, BK, nq, sc.po, Dv);
            for (int64_t i = 0; i < nq * Dv; i++)
                sc.o[i] += sc.po[i];
        }
        for (int64_t r = 0; r < nq; r++) {
            float *dst = O + ((q0 + r) * H + h) * Dv;
            const float inv = sc.l[r] > 0.0f ? 1.0f / sc.l[r] : 0.0f;
            for (int64_t d = 0; d < Dv; d++)
                dst[d] = sc.o[r * Dv + d] * inv;
        }
    }
}
