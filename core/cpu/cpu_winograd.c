/* CONV2D 3x3, stride 1, dilation 1, padding 1 (the UNet's and VAE's convolutions) by Winograd's
 * F(2x2, 3x3): each 2x2 output tile is A^T [(G g G^T) . (B^T d B)] A of its 4x4 input patch d, so
 * the 9 multiplies per output and input channel become 4 (16 per tile) in 16 GEMMs
 * (Cout x Cin) x (Cin x tiles) per chunk of tiles; the transforms are additions (and halves in G),
 * so the rounding stays that of a few more additions per sum. The weight transform U is made
 * once per node by all threads; then each thread takes chunks of tiles of one image: input
 * transform V [16][Cin][tiles], 16 sgemm into M [16][Cout][tiles], output transform.
 * AG_CPU_NO_WINOGRAD=1 turns it off (the im2col path then runs every conv). */
#include "cpu/cpu_internal.h"
#include "anygpt/quant.h"

#include <stdlib.h>
#include <string.h>

#define WG_CHUNK_BYTES (8u << 20) /* V and M of one chunk, per thread */
#define WG_MAX_U_BYTES (128u << 20) /* no more scratch than the widened f16 weights of im2col */

typedef struct {
    int64_t W, H, Cin, Cout, N, TW, TH, T, tc;
} wg_shape;

static wg_shape wg_get(const ag_tensor *node, int nth)
{
    const ag_tensor *x = node->src[0], *w = node->src[1];
    wg_shape s = {.W = x->ne[0], .H = x->ne[1], .Cin = x->ne[2], .N = x->ne[3], .Cout = w->ne[3]};
    s.TW = (s.W + 1) / 2;
    s.TH = (s.H + 1) / 2;
    s.T = s.TW * s.TH;
    int64_t tc = (int64_t)(WG_CHUNK_BYTES / (64 * (size_t)(s.Cin + s.Cout)));
    const int64_t want = (s.T * s.N + nth - 1) / nth; /* every thread gets work */
    tc = tc > want ? want : tc;
    tc = tc < 16 ? 16 : tc;
    s.tc = tc > s.T ? s.T : tc;
    return s;
}

bool cpu_winograd_applies(const ag_tensor *node)
{
    static int off = -1;
    if (off < 0) {
        const char *e = getenv("AG_CPU_NO_WINOGRAD");
        off = e && *e && strcmp(e, "0") != 0;
    }
    const ag_tensor *x = node->src[0], *w = node->src[1];
    const int32_t *pp = node->op_params;
    if (off || w->ne[0] != 3 || w->ne[1] != 3 || pp[0] != 1 || pp[1] != 1 || pp[2] != 1 || pp[3] != 1 || pp[4] != 1 ||
        pp[5] != 1)
        return false;
    /* worth it where the GEMMs are wide (enough tiles) and deep (enough channels); U must stay small */
    return x->ne[0] * x->ne[1] >= 256 && x->ne[2] >= 16 && w->ne[3] >= 16 &&
           (uint64_t)w->ne[3] * (uint64_t)x->ne[2] * 64u <= WG_MAX_U_BYTES;
}

static size_t u_bytes(const wg_shape *s) { return cpu_align((size_t)(16 * s->Cout * s->Cin) * sizeof(float)); }
static size_t chunk_bytes(const wg_shape *s)
{
    return cpu_align((size_t)(16 * (s->Cin + s->Cout) * s->tc + 18 * (s->tc + 1)) * sizeof(float));
}

size_t cpu_work_winograd(const ag_tensor *node, int nth)
{
    const wg_shape s = wg_get(node, nth);
    return u_bytes(&s) + (size_t)nth * chunk_bytes(&s);
}

/* U[xi][co][ci] = (G g G^T)[xi] for the 3x3 kernel g of (co, ci); G = [1 0 0; .5 .5 .5; .5 -.5 .5; 0 0 1]. */
static void weight_transform(const cpu_params *p, const ag_tensor *w, const wg_shape *s, float *U)
{
    const int64_t n = s->Cout * s->Cin, plane = n;
    int64_t r0, r1;
    cpu_range(n, p->ith, p->nth, &r0, &r1);
    for (int64_t r = r0; r < r1; r++) {
        float g[9];
        cpu_to_f32(w->type, (const char *)cpu_data(w) + (size_t)r * 9 * ag_type_block_size(w->type), g, 9);
        float t[4][3]; /* G g */
        for (int j = 0; j < 3; j++) {
            const float a = g[0 * 3 + j], b = g[1 * 3 + j], c = g[2 * 3 + j];
            t[0][j] = a;
            t[1][j] = 0.5f * (a + b + c);
            t[2][j] = 0.5f * (a - b + c);
            t[3][j] = c;
        }
        for (int i = 0; i < 4; i++) { /* (G g) G^T */
            const float a = t[i][0], b = t[i][1], c = t[i][2];
            U[(i * 4 + 0) * plane + r] = a;
            U[(i * 4 + 1) * plane + r] = 0.5f * (a + b + c);
            U[(i * 4 + 2) * plane + r] = 0.5f * (a - b + c);
            U[(i * 4 + 3) * plane + r] = c;
        }
    }
}

/* The transforms' inner loops, unit-stride over the tiles of a run (restrict: vectorisable). */
static void deinterleave(const float *restrict x, float *restrict e, float *restrict o, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        e[i] = x[2 * i];
        o[i] = x[2 * i + 1];
    }
}

/* along x: from the even (E) and odd (O) columns of a row, B^T on each tile's 4 columns */
static void xform_x(const float *restrict E, const float *restrict O, float *restrict c0, float *restrict c1,
                    float *restrict c2, float *restrict c3, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        c0[i] = E[i] - E[i + 1];
        c1[i] = O[i] + E[i + 1];
        c2[i] = E[i + 1] - O[i];
        c3[i] = O[i] - O[i + 1];
    }
}

/* along y: B^T on the 4 transformed rows */
static void xform_y(const float *restrict r0, const float *restrict r1, const float *restrict r2,
                    const float *restrict r3, float *restrict v0, float *restrict v1, float *restrict v2,
                    float *restrict v3, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        v0[i] = r0[i] - r2[i];
        v1[i] = r1[i] + r2[i];
        v2[i] = r2[i] - r1[i];
        v3[i] = r1[i] - r3[i];
    }
}

/* V[xi][ci][j] = (B^T d B)[xi] of tile t0 + j's 4x4 input patch (rows 2 th - 1 .., cols
 * 2 tw - 1 ..), B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]. A chunk is walked in runs of one
 * tile row: each of the 4 input rows is split into its even and odd columns, transformed along
 * x, then the 4 rows are combined along y. */
static void input_transform(const float *X, const wg_shape *s, int64_t t0, int64_t nt, float *V, float *tmp)
{
    const int64_t plane = s->Cin * nt, ld = s->tc + 1;
    float *E = tmp, *Od = tmp + ld, *c = tmp + 2 * ld; /* c[a][b]: 4 x 4 rows of ld */
    for (int64_t ci = 0; ci < s->Cin; ci++) {
        const float *xc = X + ci * s->H * s->W;
        for (int64_t j = 0, t = t0; j < nt;) {
            const int64_t th = t / s->TW, tw0 = t % s->TW;
            const int64_t len = s->TW - tw0 < nt - j ? s->TW - tw0 : nt - j;
            for (int a = 0; a < 4; a++) {
                float *ca = c + a * 4 * ld;
                const int64_t y = 2 * th - 1 + a;
                if (y < 0 || y >= s->H) {
                    memset(ca, 0, 4 * (size_t)ld * sizeof *ca);
                    continue;
                }
                /* E[i] = x[2 (tw0 + i) - 1], Od[i] = x[2 (tw0 + i)] for i <= len, zero outside */
                const float *row = xc + y * s->W;
                int64_t lo = tw0 == 0 ? 1 : 0, hi = (s->W - 1) / 2 - tw0 + 1; /* both inside: lo <= i < hi */
                hi = hi > len + 1 ? len + 1 : (hi < lo ? lo : hi);
                for (int64_t i = 0; i < lo; i++) {
                    E[i] = 0.0f;
                    Od[i] = row[0];
                }
                deinterleave(row + 2 * (tw0 + lo) - 1, E + lo, Od + lo, hi - lo);
                for (int64_t i = hi; i <= len; i++) {
                    const int64_t xe = 2 * (tw0 + i) - 1;
                    E[i] = xe < s->W ? row[xe] : 0.0f;
                    Od[i] = 0.0f;
                }
                xform_x(E, Od, ca, ca + ld, ca + 2 * ld, ca + 3 * ld, len);
            }
            for (int b = 0; b < 4; b++) {
                float *v = V + b * plane + ci * nt + j;
                xform_y(c + (0 * 4 + b) * ld, c + (1 * 4 + b) * ld, c + (2 * 4 + b) * ld, c + (3 * 4 + b) * ld, v,
                        v + 4 * plane, v + 8 * plane, v + 12 * plane, len);
            }
            j += len;
            t += len;
        }
    }
}

/* m A per row a of the tile (A^T = [1 1 1 0; 0 1 -1 -1]), then A^T on the rows: the 2x2 outputs */
static void xform_out(const float *restrict m, int64_t plane, float *restrict tl, float *restrict tr,
                      float *restrict bl, float *restrict br, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        float r0[4], r1[4];
        for (int a = 0; a < 4; a++) {
            const float m0 = m[(a * 4 + 0) * plane + i], m1 = m[(a * 4 + 1) * plane + i];
            const float m2 = m[(a * 4 + 2) * plane + i], m3 = m[(a * 4 + 3) * plane + i];
            r0[a] = m0 + m1 + m2;
            r1[a] = m1 - m2 - m3;
        }
        tl[i] = r0[0] + r0[1] + r0[2];
        tr[i] = r1[0] + r1[1] + r1[2];
        bl[i] = r0[1] - r0[2] - r0[3];
        br[i] = r1[1] - r1[2] - r1[3];
    }
}

static void interleave(const float *restrict l, const float *restrict r, float *restrict o, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        o[2 * i] = l[i];
        o[2 * i + 1] = r[i];
    }
}

/* The 2x2 outputs A^T m A of tiles t0 .., in runs of one tile row; clipped at odd edges. */
static void output_transform(const float *M, const wg_shape *s, int64_t t0, int64_t nt, float *O, float *tmp)
{
    const int64_t plane = s->Cout * nt, ld = s->tc + 1;
    float *q = tmp; /* top-left, top-right, bottom-left, bottom-right of each tile: 4 rows of ld */
    for (int64_t co = 0; co < s->Cout; co++) {
        float *oc = O + co * s->H * s->W;
        for (int64_t j = 0, t = t0; j < nt;) {
            const int64_t th = t / s->TW, tw0 = t % s->TW;
            const int64_t len = s->TW - tw0 < nt - j ? s->TW - tw0 : nt - j;
            xform_out(M + co * nt + j, plane, q, q + ld, q + 2 * ld, q + 3 * ld, len);
            const int64_t y = 2 * th, x0 = 2 * tw0;
            const int64_t wl = x0 + 2 * len <= s->W ? len : len - 1; /* tiles whose right column fits */
            for (int h = 0; h < 2 && y + h < s->H; h++) {
                float *o = oc + (y + h) * s->W + x0;
                const float *l = q + (2 * h) * ld;
                interleave(l, q + (2 * h + 1) * ld, o, wl);
                if (wl < len)
                    o[2 * wl] = l[wl];
            }
            j += len;
            t += len;
        }
    }
}

void cpu_conv2d_winograd(const cpu_params *p, ag_tensor *node)
{
    const wg_shape s = wg_get(node, p->nth);
    float *U = (float *)p->work;
    weight_transform(p, node->src[1], &s, U);
    cpu_barrier(p);
    float *V = (float *)(p->work + u_bytes(&s) + (size_t)p->ith * chunk_bytes(&s));
    float *M = V + 16 * s.Cin * s.tc, *tmp = M + 16 * s.Cout * s.tc;
    const float *X = (const float *)cpu_data(node->src[0]);
    float *O = (float *)cpu_data(node);
    const int64_t nchunks = (s.T + s.tc - 1) / s.tc, img = s.H * s.W;
    for (int64_t u = p->ith; u < s.N * nchunks; u += p->nth) {
        const int64_t n = u / nchunks, t0 = (u % nchunks) * s.tc, nt = t0 + s.tc < s.T ? s.tc : s.T - t0;
        input_transform(X + n * s.Cin * img, &s, t0, nt, V, tmp);
        for (int xi = 0; xi < 16; xi++)
            cpu_sgemm(false, false, s.Cout, nt, s.Cin, U + xi * s.Cout * s.Cin, s.Cin, V + xi * s.Cin * nt, nt,
                      M + xi * s.Cout * nt, nt, false);
        output_transform(M, &s, t0, nt, O + n * s.Cout * img, tmp);
    }
}
