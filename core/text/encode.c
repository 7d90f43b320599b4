/* Text -> token ids: added-token split (HF Trie.split semantics), then SentencePiece BPE on each
 * text segment. See anygpt/text.h for the behaviour this reproduces. */
#include "text_internal.h"
#include "utf8.h"

#include "anygpt/error.h"

#include <stdlib.h>
#include <string.h>

typedef struct ivec {
    int32_t *v;
    size_t n, cap;
} ivec;

static int ivec_push(ivec *a, int32_t x)
{
    if (a->n == a->cap) {
        size_t nc = a->cap ? a->cap * 2 : 64;
        int32_t *nv = realloc(a->v, nc * sizeof *nv);
        if (!nv)
            return -1;
        a->v = nv;
        a->cap = nc;
    }
    a->v[a->n++] = x;
    return 0;
}

/* ---------------- SentencePiece BPE on one segment ---------------- */

typedef struct sym {
    int32_t prev, next; /* -1 at the ends */
    uint32_t start, len; /* bytes in the normalized string; len 0 = merged away */
} sym;

typedef struct pair {
    float score;
    int32_t left, right;
    uint32_t size; /* bytes of the merged piece when queued (stale check) */
} pair;

typedef struct bpe {
    const struct ag_text_tokenizer *t;
    const char *s; /* normalized */
    sym *syms;
    pair *heap;
    size_t nheap, capheap;
    int32_t *rev_id; /* UNUSED pieces queued for merging: id -> byte length of the left part */
    uint32_t *rev_left;
    size_t nrev, caprev;
} bpe;

/* The merge order: highest score first, leftmost on ties. */
static bool better(const pair *a, const pair *b)
{
    return a->score > b->score || (a->score == b->score && a->left < b->left);
}

static int heap_push(bpe *b, pair p)
{
    if (b->nheap == b->capheap) {
        size_t nc = b->capheap ? b->capheap * 2 : 64;
        pair *nh = realloc(b->heap, nc * sizeof *nh);
        if (!nh)
            return -1;
        b->heap = nh;
        b->capheap = nc;
    }
    size_t i = b->nheap++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!better(&p, &b->heap[parent]))
            break;
        b->heap[i] = b->heap[parent];
        i = parent;
    }
    b->heap[i] = p;
    return 0;
}

static pair heap_pop(bpe *b)
{
    pair top = b->heap[0];
    pair last = b->heap[--b->nheap];
    size_t i = 0, n = b->nheap;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && better(&b->heap[c + 1], &b->heap[c]))
            c++;
        if (!better(&b->heap[c], &last))
            break;
        b->heap[i] = b->heap[c];
        i = c;
    }
    if (n > 0)
        b->heap[i] = last;
    return top;
}

/* SentencePiece's pieces_ (what merges may produce): NORMAL and UNUSED pieces. USER_DEFINED tokens
 * are HF added tokens here; they were split off before BPE and are never merged into. */
static int32_t piece_id(const struct ag_text_tokenizer *t, const char *s, size_t n)
{
    int32_t id = ag_text_map_find(t, s, n);
    if (id >= 0 && (t->type[id] == AG_TOKEN_NORMAL || t->type[id] == AG_TOKEN_UNUSED))
        return id;
    return -1;
}

static int maybe_add_pair(bpe *b, int32_t left, int32_t right)
{
    if (left < 0 || right < 0)
        return 0;
    const sym *l = &b->syms[left], *r = &b->syms[right];
    uint32_t size = l->len + r->len;
    int32_t id = piece_id(b->t, b->s + l->start, size);
    if (id < 0)
        return 0;
    pair p = {b->t->score[id], left, right, size};
    if (heap_push(b, p) < 0)
        return -1;
    if (b->t->type[id] == AG_TOKEN_UNUSED) { /* remember the split: the latest one wins, as in SentencePiece */
        if (b->nrev == b->caprev) {
            size_t nc = b->caprev ? b->caprev * 2 : 16;
            int32_t *ni = realloc(b->rev_id, nc * sizeof *ni);
            if (!ni)
                return -1;
            b->rev_id = ni;
            uint32_t *nl = realloc(b->rev_left, nc * sizeof *nl);
            if (!nl)
                return -1;
            b->rev_left = nl;
            b->caprev = nc;
        }
        b->rev_id[b->nrev] = id;
        b->rev_left[b->nrev] = l->len;
        b->nrev++;
    }
    return 0;
}

/* Emit one final piece, splitting UNUSED pieces back into what they were merged from. */
typedef struct emit_state {
    bool prev_unk;
} emit_state;

static int emit_piece(bpe *b, ivec *out, emit_state *es, uint32_t start, uint32_t len, int depth)
{
    const struct ag_text_tokenizer *t = b->t;
    int32_t id = piece_id(t, b->s + start, len);
    if (id >= 0 && t->type[id] == AG_TOKEN_UNUSED && depth < 64) {
        for (size_t k = b->nrev; k-- > 0;) {
            if (b->rev_id[k] == id) {
                uint32_t ll = b->rev_left[k];
                if (emit_piece(b, out, es, start, ll, depth + 1) < 0)
                    return -1;
                return emit_piece(b, out, es, start + ll, len - ll, depth + 1);
            }
        }
    }
    if (id >= 0) {
        es->prev_unk = false;
        return ivec_push(out, id);
    }
    /* not in the vocab */
    if (t->byte_fallback) {
        for (uint32_t k = 0; k < len; k++)
            if (ivec_push(out, t->byte_id[(unsigned char)b->s[start + k]]) < 0)
                return -1;
        es->prev_unk = true;
        return 0;
    }
    if (t->unk < 0) {
        ag_set_error("%s: text needs the unknown token but the vocab has none", t->label);
        return -2;
    }
    if (es->prev_unk) /* SentencePiece merges a run of unknown pieces into one */
        return 0;
    es->prev_unk = true;
    return ivec_push(out, t->unk);
}

/* Normalize (identity + whitespace escaping + optional dummy prefix) and BPE-encode n bytes. */
static int sp_encode(const struct ag_text_tokenizer *t, const char *text, size_t n, bool dummy, ivec *out)
{
    if (n == 0)
        return 0;
    int rc = -1;
    char *norm = malloc(3 * n + 3);
    sym *syms = NULL;
    bpe b;
    memset(&b, 0, sizeof b);
    if (!norm)
        goto oom;
    size_t m = 0;
    if (dummy) {
        memcpy(norm, "\xE2\x96\x81", 3);
        m = 3;
    }
    const unsigned char *p = (const unsigned char *)text;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        int l = ag_utf8_decode(p + i, n - i, &cp);
        if (l == 0) { /* malformed byte: U+FFFD, one byte consumed (SentencePiece's normalizer) */
            memcpy(norm + m, AG_UTF8_REPLACEMENT, 3);
            m += 3;
            i += 1;
        } else if (cp == ' ') {
            memcpy(norm + m, "\xE2\x96\x81", 3);
            m += 3;
            i += 1;
        } else {
            memcpy(norm + m, p + i, (size_t)l);
            m += (size_t)l;
            i += (size_t)l;
        }
    }
    /* one symbol per character */
    syms = malloc(m * sizeof *syms);
    if (!syms)
        goto oom;
    int32_t ns = 0;
    for (size_t i = 0; i < m;) {
        uint32_t l = (uint32_t)ag_utf8_lead_len((unsigned char)norm[i]); /* norm is valid UTF-8 */
        syms[ns].start = (uint32_t)i;
        syms[ns].len = l;
        syms[ns].prev = ns - 1;
        syms[ns].next = (i + l < m) ? ns + 1 : -1;
        ns++;
        i += l;
    }
    b.t = t;
    b.s = norm;
    b.syms = syms;
    for (int32_t i = 1; i < ns; i++)
        if (maybe_add_pair(&b, i - 1, i) < 0)
            goto oom;
    while (b.nheap > 0) {
        pair top = heap_pop(&b);
        sym *l = &syms[top.left], *r = &syms[top.right];
        if (l->len == 0 || r->len == 0 || l->len + r->len != top.size)
            continue; /* stale: one side changed since it was queued */
        l->len += r->len;
        l->next = r->next;
        if (r->next >= 0)
            syms[r->next].prev = top.left;
        r->len = 0;
        if (maybe_add_pair(&b, l->prev, top.left) < 0 || maybe_add_pair(&b, top.left, l->next) < 0)
            goto oom;
    }
    emit_state es = {false};
    for (int32_t i = 0; i >= 0; i = syms[i].next) {
        int e = emit_piece(&b, out, &es, syms[i].start, syms[i].len, 0);
        if (e == -1)
            goto oom;
        if (e < 0)
            goto done;
    }
    rc = 0;
    goto done;
oom:
    ag_set_error("%s: out of memory while encoding", t->label);
done:
    free(norm);
    free(syms);
    free(b.heap);
    free(b.rev_id);
    free(b.rev_left);
    return rc;
}

/* ---------------- added-token split (HF Trie.split) ---------------- */

typedef struct tstate {
    int32_t start, node;
    bool dead; /* no longer matching; kept until the end of this step, as HF does */
} tstate;

/* Cut offsets (in code points) exactly as HF's Trie.split computes them, including its
 * lookahead for the longest match and the earliest start. offs receives the offsets
 * (0, s1, e1, s2, e2, ...) before the final length is appended. */
static int trie_split(const struct ag_text_tokenizer *t, const uint32_t *cps, int32_t n, ivec *offs)
{
    const ag_text_trie *tr = &t->trie;
    tstate *st = malloc(((size_t)n + 1) * sizeof *st);
    if (!st)
        return -1;
    int32_t nst = 0, skip = 0;
    if (ivec_push(offs, 0) < 0)
        goto oom;
    for (int32_t cur = 0; cur < n; cur++) {
        if (cur < skip)
            continue;
        uint32_t c = cps[cur];
        bool reset = false;
        for (int32_t i = 0; i < nst; i++) {
            if (tr->term[st[i].node] >= 0) {
                /* a token ended just before cur: look for a longer one, or one starting earlier */
                int32_t start = st[i].start, end = cur;
                for (int32_t j = 0; j < nst; j++) {
                    int32_t ls = st[j].start, ln = st[j].node, li;
                    if (ls > start)
                        break;
                    if (ls < start) { /* that state already took c */
                        li = cur + 1;
                        end = cur + 1;
                    } else {
                        li = cur;
                        end = cur;
                    }
                    while (li < n) {
                        int32_t nx = ag_text_trie_child(tr, ln, cps[li]);
                        if (nx < 0)
                            break;
                        ln = nx;
                        li++;
                        if (tr->term[ln] >= 0) {
                            start = ls;
                            end = li;
                            skip = li;
                        }
                    }
                }
                if (ivec_push(offs, start) < 0 || ivec_push(offs, end) < 0)
                    goto oom;
                reset = true;
                break;
            }
            int32_t nx = ag_text_trie_child(tr, st[i].node, c);
            if (nx >= 0)
                st[i].node = nx;
            else
                st[i].dead = true;
        }
        if (reset) {
            nst = 0;
        } else {
            int32_t k = 0;
            for (int32_t i = 0; i < nst; i++)
                if (!st[i].dead)
                    st[k++] = st[i];
            nst = k;
        }
        int32_t r = ag_text_trie_child(tr, 0, c);
        if (r >= 0) {
            st[nst].start = cur;
            st[nst].node = r;
            st[nst].dead = false;
            nst++;
        }
    }
    for (int32_t i = 0; i < nst; i++) {
        if (tr->term[st[i].node] >= 0) {
            if (ivec_push(offs, st[i].start) < 0 || ivec_push(offs, n) < 0)
                goto oom;
            break;
        }
    }
    free(st);
    return 0;
oom:
    free(st);
    return -1;
}

static bool is_added(const struct ag_text_tokenizer *t, int32_t id)
{
    return id >= 0 && (t->type[id] == AG_TOKEN_USER_DEFINED || t->type[id] == AG_TOKEN_CONTROL ||
                       t->type[id] == AG_TOKEN_UNKNOWN);
}

static int encode_text(const struct ag_text_tokenizer *t, const char *text, size_t len, ivec *out)
{
    int rc = -1;
    char *work = NULL;
    uint32_t *cps = NULL;
    size_t *boff = NULL;
    ivec offs = {0};
    const ag_text_prefix_mode mode = t->mode;
    if (len == 0)
        return 0;
    /* HF legacy=False: "▁" + text with every U+2581 turned into a space */
    if (mode == AG_TEXT_PREFIX_FIRST) {
        work = malloc(len + 3);
        if (!work)
            goto oom;
        size_t m = 0;
        memcpy(work, "\xE2\x96\x81", 3);
        m = 3;
        for (size_t i = 0; i < len;) {
            if (i + 3 <= len && memcmp(text + i, "\xE2\x96\x81", 3) == 0) {
                work[m++] = ' ';
                i += 3;
            } else {
                work[m++] = text[i++];
            }
        }
        text = work;
        len = m;
    }
    /* code points (malformed bytes become values no token contains) with their byte offsets */
    cps = malloc(len * sizeof *cps);
    boff = malloc((len + 1) * sizeof *boff);
    if (!cps || !boff)
        goto oom;
    int32_t ncp = 0;
    const unsigned char *p = (const unsigned char *)text;
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        int l = ag_utf8_decode(p + i, len - i, &cp);
        if (l == 0) {
            cp = 0x110000u + p[i];
            l = 1;
        }
        boff[ncp] = i;
        cps[ncp++] = cp;
        i += (size_t)l;
    }
    boff[ncp] = len;
    if (t->trie.n_nodes > 1) {
        if (trie_split(t, cps, ncp, &offs) < 0)
            goto oom;
    } else if (ivec_push(&offs, 0) < 0) {
        goto oom;
    }
    if (ivec_push(&offs, ncp) < 0)
        goto oom;
    /* cut and encode the segments */
    const size_t first_out = out->n;
    int32_t start = 0;
    for (size_t k = 0; k < offs.n; k++) {
        int32_t end = offs.v[k];
        if (start >= end) /* empty cut, or HF's "bug in Trie algorithm" recovery: skip it */
            continue;
        const char *seg = text + boff[start];
        size_t sl = boff[end] - boff[start];
        int32_t id = ag_text_map_find(t, seg, sl);
        if (is_added(t, id)) {
            if (ivec_push(out, id) < 0)
                goto oom;
        } else {
            int e = sp_encode(t, seg, sl, mode == AG_TEXT_PREFIX_LEGACY, out);
            if (e < 0)
                goto done;
        }
        start = end;
    }
    /* HF legacy=False drops a lone leading "▁" before a special token */
    if (mode == AG_TEXT_PREFIX_FIRST && out->n - first_out > 1 && t->space_id >= 0 &&
        out->v[first_out] == t->space_id) {
        uint8_t ty = t->type[out->v[first_out + 1]];
        if (ty == AG_TOKEN_CONTROL || ty == AG_TOKEN_UNKNOWN) {
            memmove(out->v + first_out, out->v + first_out + 1, (out->n - first_out - 1) * sizeof(int32_t));
            out->n--;
        }
    }
    rc = 0;
    goto done;
oom:
    ag_set_error("%s: out of memory while encoding", t->label);
done:
    free(work);
    free(cps);
    free(boff);
    free(offs.v);
    return rc;
}

int64_t ag_text_encode_alloc(const ag_text_tokenizer *t, const char *text, size_t len, bool add_special,
                             int32_t **out)
{
    if (!t || !out || (!text && len)) {
        ag_set_error("ag_text_encode: bad arguments");
        return -1;
    }
    *out = NULL;
    ivec v = {0};
    if (add_special && t->add_bos && ivec_push(&v, t->bos) < 0)
        goto oom;
    if (encode_text(t, text, len, &v) < 0)
        goto fail;
    if (add_special && t->add_eos && ivec_push(&v, t->eos) < 0)
        goto oom;
    *out = v.v;
    return (int64_t)v.n;
oom:
    ag_set_error("%s: out of memory while encoding", t->label);
fail:
    free(v.v);
    return -1;
}

int64_t ag_text_encode(const ag_text_tokenizer *t, const char *text, size_t len, bool add_special, int32_t *out,
                       size_t cap)
{
    int32_t *ids;
    int64_t n = ag_text_encode_alloc(t, text, len, add_special, &ids);
    if (n < 0)
        return -1;
    size_t k = (size_t)n < cap ? (size_t)n : cap;
    if (out && k)
        memcpy(out, ids, k * sizeof *out);
    free(ids);
    return n;
}
