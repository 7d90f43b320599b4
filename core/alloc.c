/* Graph memory planner. Walks the nodes in execution order, gives each tensor that needs
 * storage a range of one compute buffer (best fit from a free list), and returns a range to
 * the free list after the last node that reads it. Outputs stay alive to the end. */
#include "anygpt/backend.h"
#include "anygpt/error.h"
#include "anygpt/limits.h"

#include <stdlib.h>
#include <string.h>

struct ag_allocator {
    ag_backend *be;
    ag_buffer *buf;
};

typedef struct {
    size_t off, size;
} range;

typedef struct {
    range *r;
    size_t n, cap;
    size_t high; /* high-water mark of the arena */
} freelist;

typedef struct {
    const ag_tensor *t;
    long last;   /* index of the last node reading it */
    size_t off;
    bool planned;
} slot;

typedef struct {
    slot *s;
    size_t cap;
} slotmap;

static slot *slot_get(slotmap *m, const ag_tensor *t)
{
    size_t h = ((uintptr_t)t >> 4) * 0x9E3779B97F4A7C15ull;
    for (size_t i = h & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        if (m->s[i].t == t)
            return &m->s[i];
        if (!m->s[i].t) {
            m->s[i].t = t;
            m->s[i].last = -1;
            return &m->s[i];
        }
    }
}

static size_t align_up(size_t x, size_t a) { return (x + a - 1) / a * a; }

static int fl_alloc(freelist *fl, size_t size, size_t *off)
{
    size_t best = SIZE_MAX;
    for (size_t i = 0; i < fl->n; i++)
        if (fl->r[i].size >= size && (best == SIZE_MAX || fl->r[i].size < fl->r[best].size))
            best = i;
    if (best != SIZE_MAX) {
        *off = fl->r[best].off;
        fl->r[best].off += size;
        fl->r[best].size -= size;
        if (fl->r[best].size == 0) {
            memmove(&fl->r[best], &fl->r[best + 1], (fl->n - best - 1) * sizeof *fl->r);
            fl->n--;
        }
        return 0;
    }
    /* grow the arena; a free block touching the end is extended instead of wasted */
    if (fl->n && fl->r[fl->n - 1].off + fl->r[fl->n - 1].size == fl->high) {
        *off = fl->r[fl->n - 1].off;
        fl->high = *off + size;
        fl->n--;
        return 0;
    }
    *off = fl->high;
    fl->high += size;
    return 0;
}

static int fl_free(freelist *fl, size_t off, size_t size)
{
    size_t i = 0;
    while (i < fl->n && fl->r[i].off < off)
        i++;
    /* merge with neighbours */
    bool left = i > 0 && fl->r[i - 1].off + fl->r[i - 1].size == off;
    bool right = i < fl->n && off + size == fl->r[i].off;
    if (left && right) {
        fl->r[i - 1].size += size + fl->r[i].size;
        memmove(&fl->r[i], &fl->r[i + 1], (fl->n - i - 1) * sizeof *fl->r);
        fl->n--;
        return 0;
    }
    if (left) {
        fl->r[i - 1].size += size;
        return 0;
    }
    if (right) {
        fl->r[i].off = off;
        fl->r[i].size += size;
        return 0;
    }
    if (fl->n == fl->cap) {
        size_t nc = fl->cap ? 2 * fl->cap : 16;
        range *nr = realloc(fl->r, nc * sizeof *nr);
        if (!nr) {
            ag_set_error("out of memory");
            return -1;
        }
        fl->r = nr;
        fl->cap = nc;
    }
    memmove(&fl->r[i + 1], &fl->r[i], (fl->n - i) * sizeof *fl->r);
    fl->r[i] = (range){off, size};
    fl->n++;
    return 0;
}

ag_allocator *ag_allocator_new(ag_backend *be)
{
    ag_allocator *a = calloc(1, sizeof *a);
    if (a)
        a->be = be;
    return a;
}

void ag_allocator_free(ag_allocator *a)
{
    if (!a)
        return;
    ag_buffer_free(a->buf);
    free(a);
}

size_t ag_allocator_buffer_size(const ag_allocator *a) { return a->buf ? a->buf->size : 0; }

static const ag_tensor *base_of(const ag_tensor *t) { return t->view_src ? t->view_src : t; }

/* Does this tensor get its storage from the planner? */
static bool needs_storage(const ag_allocator *a, const ag_tensor *t)
{
    if (t->view_src || (t->flags & AG_FLAG_PARAM))
        return false;
    return !t->buffer || (a->buf && t->buffer == a->buf);
}

int ag_allocator_alloc_graph(ag_allocator *a, ag_graph *g)
{
    const size_t n_nodes = ag_graph_n_nodes(g), n_leafs = ag_graph_n_leafs(g);
    slotmap m = {0};
    m.cap = 16;
    while (m.cap < 2 * (n_nodes + n_leafs) + 16)
        m.cap <<= 1;
    m.s = calloc(m.cap, sizeof *m.s);
    freelist fl = {0};
    int rc = -1;
    if (!m.s) {
        ag_set_error("out of memory planning a graph of %zu nodes", n_nodes);
        return -1;
    }
    const size_t align = a->be->alignment ? a->be->alignment : 64;

    /* last readers */
    for (size_t i = 0; i < n_nodes; i++) {
        const ag_tensor *n = ag_graph_node(g, i);
        for (int s = 0; s < AG_MAX_SRC; s++)
            if (n->src[s])
                slot_get(&m, base_of(n->src[s]))->last = (long)i;
        if (n->view_src)
            slot_get(&m, n->view_src)->last = (long)i;
    }

    /* inputs (leaves) first: they are written before compute */
    for (size_t i = 0; i < n_leafs; i++) {
        const ag_tensor *l = ag_graph_leaf(g, i);
        if (!needs_storage(a, l))
            continue;
        slot *s = slot_get(&m, l);
        if (fl_alloc(&fl, align_up(ag_nbytes(l), align), &s->off) != 0)
            goto out;
        s->planned = true;
    }
    for (size_t i = 0; i < n_nodes; i++) {
        const ag_tensor *n = ag_graph_node(g, i);
        if (needs_storage(a, n)) {
            slot *s = slot_get(&m, n);
            if (fl_alloc(&fl, align_up(ag_nbytes(n), align), &s->off) != 0)
                goto out;
            s->planned = true;
            if (s->last < (long)i)
                s->last = (long)i;
        }
        /* release what this node was the last to read (never outputs) */
        for (int k = -1; k < AG_MAX_SRC; k++) {
            const ag_tensor *src = k < 0 ? n : n->src[k];
            if (!src)
                continue;
            const ag_tensor *b = base_of(src);
            slot *s = slot_get(&m, b);
            if (!s->planned || s->last != (long)i || (b->flags & AG_FLAG_OUTPUT))
                continue;
            if (fl_free(&fl, s->off, align_up(ag_nbytes(b), align)) != 0)
                goto out;
            s->planned = false; /* freed; keep offset */
            s->last = -2;
        }
    }

    size_t need = fl.high ? fl.high : align;
    if (need > AG_MAX_GRAPH_BYTES) {
        ag_set_error("%s: the graph's intermediates need %.1f GiB, more than the %.0f GiB accepted (input too long "
                     "for one pass?)",
                     ag_backend_name(a->be), (double)need / (1u << 30), (double)AG_MAX_GRAPH_BYTES / (1u << 30));
        goto out;
    }
    if (!a->buf || a->buf->size < need) {
        ag_buffer_free(a->buf);
        a->buf = ag_buffer_alloc(a->be, need);
        if (!a->buf) {
            ag_set_error("%s: cannot allocate %zu bytes for graph intermediates (%s)", ag_backend_name(a->be), need,
                         ag_last_error());
            goto out;
        }
    }
    /* bind every planned tensor (freed ones keep their offset) */
    for (size_t i = 0; i < m.cap; i++) {
        ag_tensor *t = (ag_tensor *)m.s[i].t;
        if (t && needs_storage(a, t) && (m.s[i].planned || m.s[i].last == -2)) {
            if (ag_tensor_bind(t, a->buf, m.s[i].off) != 0)
                goto out;
        }
    }
    /* views inherit their base's place */
    for (size_t i = 0; i < n_nodes; i++) {
        ag_tensor *n = ag_graph_node(g, i);
        if (n->view_src && n->view_src->buffer) {
            n->buffer = n->view_src->buffer;
            n->offset = n->view_src->offset + n->view_offs;
            n->data = n->buffer->host ? (char *)n->buffer->host + n->offset : NULL;
        }
    }
    rc = 0;
out:
    free(m.s);
    free(fl.r);
    return rc;
}
