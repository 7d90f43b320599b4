/* Q8_0 / Q4_0 / F16 / F32 weights kept as packed row groups (quant.h) for the matmul kernels.
 *
 * Which weights: 2-D, contiguous PARAM tensors in a borrowed host buffer (a model file mapped by
 * core/weights.c). Those are immutable while the buffer lives, so a copy made on the first
 * graph that multiplies by them stays valid; writes through the backend and freeing the buffer
 * drop it. Packing happens once, on the pool, and costs no memory in the end: a packed copy has
 * the size of the rows it replaces, and when those rows are a read-only private file mapping
 * their pages are given back (MADV_DONTNEED: a later read faults them in again from the file,
 * so nothing is lost; anonymous memory is never dropped). The copies ask for transparent huge
 * pages (MADV_HUGEPAGE; a no-op where THP is off): packing faulted every 4 KiB before, and the
 * first step of a 7B (the packing) took 9-22 s, now 2.2-4.8 s (2-core VM, alternating runs).
 * The decode over them measured within noise against small pages (4 alternating pairs, the other
 * big buffers on small pages in both); with every big buffer on huge pages too (KV cache
 * included, which cpu_backend.c now keeps on small pages), 7 pairs: Q4_0 decode +3 to +19%, Q8_0
 * +4 to +14%, prefill +12 to +35%. No memory is lost to rounding: the kernel puts huge pages
 * only on 2 MiB wholly inside the mapping.
 *
 * The cache is process-wide (a model shared by several backends is packed once). */
#include "cpu/cpu_internal.h"
#include "anygpt/quant.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

typedef struct repack_entry {
    const char *src; /* the rows in the file layout */
    size_t src_bytes;
    ag_type type;
    int64_t K, N;
    const ag_buffer *buf;
    void *packed;
    size_t map_bytes; /* of the anonymous mapping holding `packed` */
    bool drop;        /* src is a read-only private file mapping: its pages may be given back */
    struct repack_entry *next;
} repack_entry;

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static repack_entry *g_head;
static size_t g_packed_bytes;

static const ag_tensor *storage_of(const ag_tensor *t) { return t->view_src ? t->view_src : t; }

bool cpu_repack_eligible(const ag_tensor *w)
{
    const ag_tensor *s = storage_of(w);
    return ag_packed_size(w->type, AG_PACK_ROWS, w->ne[0]) != 0 && (s->flags & AG_FLAG_PARAM) && s->buffer &&
           s->buffer->borrowed && ag_is_contiguous(w) && w->ne[2] == 1 && w->ne[3] == 1 && w->ne[1] > 0 &&
           cpu_data(w) != NULL;
}

static repack_entry *find_locked(const ag_tensor *w)
{
    const char *src = cpu_data(w);
    for (repack_entry *e = g_head; e; e = e->next)
        if (e->src == src && e->type == w->type && e->K == w->ne[0] && e->N == w->ne[1])
            return e;
    return NULL;
}

const void *cpu_repack_find(const ag_tensor *w)
{
    pthread_mutex_lock(&g_mu);
    const repack_entry *e = find_locked(w);
    const void *p = e ? e->packed : NULL;
    pthread_mutex_unlock(&g_mu);
    return p;
}

/* Is [p, p + n) inside one read-only private mapping of a file? Only then may its pages be
 * dropped: they come back from the file unchanged. */
static bool is_private_file_map(const void *p, size_t n)
{
    FILE *f = fopen("/proc/self/maps", "r");
    if (!f)
        return false;
    const uintptr_t a = (uintptr_t)p, b = a + n;
    char line[512];
    bool ok = false;
    while (fgets(line, sizeof line, f)) {
        unsigned long lo, hi, inode;
        char perms[8];
        unsigned long long off;
        char dev[16];
        if (sscanf(line, "%lx-%lx %7s %llx %15s %lu", &lo, &hi, perms, &off, dev, &inode) != 6)
            continue;
        if (a >= lo && b <= hi) {
            ok = inode != 0 && perms[0] == 'r' && perms[1] == '-' && perms[3] == 'p';
            break;
        }
    }
    fclose(f);
    return ok;
}

/* Gives back the whole pages inside [p, p + n) of a file mapping. */
static void drop_pages(const char *p, size_t n)
{
    const uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    const uintptr_t a = ((uintptr_t)p + page - 1) / page * page;
    const uintptr_t b = ((uintptr_t)p + n) / page * page;
    if (b > a)
        madvise((void *)a, b - a, MADV_DONTNEED);
}

static void entry_free(repack_entry *e)
{
    g_packed_bytes -= e->map_bytes;
    munmap(e->packed, e->map_bytes);
    free(e);
}

/* ---- packing on the pool ---- */

typedef struct {
    repack_entry **todo;
    size_t n;
    atomic_long next; /* work item: (entry, chunk of groups) flattened */
    long *first_item; /* per entry: index of its first item; n + 1 entries */
} pack_job;

#define PACK_CHUNK_GROUPS 16

static void pack_worker(void *arg, int ith, int nth)
{
    (void)ith;
    (void)nth;
    pack_job *j = arg;
    const long total = j->first_item[j->n];
    for (long it; (it = atomic_fetch_add(&j->next, 1)) < total;) {
        size_t e = 0;
        while (j->first_item[e + 1] <= it)
            e++;
        const repack_entry *en = j->todo[e];
        const int64_t g0 = (int64_t)(it - j->first_item[e]) * PACK_CHUNK_GROUPS;
        const int64_t r0 = g0 * AG_PACK_ROWS;
        int64_t nr = (int64_t)PACK_CHUNK_GROUPS * AG_PACK_ROWS;
        if (nr > en->N - r0)
            nr = en->N - r0;
        const size_t stride = ag_row_size(en->type, en->K);
        ag_pack_rows(en->type, en->src + (size_t)r0 * stride, stride, nr, en->K,
                     (char *)en->packed + (size_t)g0 * ag_packed_size(en->type, AG_PACK_ROWS, en->K));
        if (en->drop) /* as we go, so the copy and the file pages are never all resident at once */
            drop_pages(en->src + (size_t)r0 * stride, (size_t)nr * stride);
    }
}

int cpu_repack_prepare(cpu_pool *pool, const ag_tensor *const *ws, size_t n)
{
    if (n == 0)
        return 0;
    pthread_mutex_lock(&g_mu);
    repack_entry **todo = calloc(n, sizeof *todo);
    long *first = calloc(n + 1, sizeof *first);
    size_t nt = 0;
    int rc = 0;
    if (!todo || !first) {
        rc = -1;
        ag_set_error("cpu: out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        const ag_tensor *w = ws[i];
        bool dup = find_locked(w) != NULL;
        for (size_t k = 0; k < nt && !dup; k++)
            dup = todo[k]->src == cpu_data(w) && todo[k]->type == w->type && todo[k]->K == w->ne[0] &&
                  todo[k]->N == w->ne[1];
        if (dup)
            continue;
        repack_entry *e = calloc(1, sizeof *e);
        const size_t bytes = ag_packed_size(w->type, w->ne[1], w->ne[0]);
        const size_t page = (size_t)sysconf(_SC_PAGESIZE);
        const size_t map_bytes = (bytes + page - 1) / page * page;
        void *mem = e && bytes ? cpu_map(map_bytes) : NULL; /* huge pages: see the top of the file */
        if (!mem) { /* not fatal: the matmuls read the file layout instead */
            free(e);
            continue;
        }
        e->src = cpu_data(w);
        e->src_bytes = (size_t)w->ne[1] * ag_row_size(w->type, w->ne[0]);
        e->type = w->type;
        e->K = w->ne[0];
        e->N = w->ne[1];
        e->buf = storage_of(w)->buffer;
        e->packed = mem;
        e->map_bytes = map_bytes;
        e->drop = is_private_file_map(e->src, e->src_bytes);
        g_packed_bytes += map_bytes;
        const int64_t groups = (e->N + AG_PACK_ROWS - 1) / AG_PACK_ROWS;
        first[nt + 1] = first[nt] + (long)((groups + PACK_CHUNK_GROUPS - 1) / PACK_CHUNK_GROUPS);
        todo[nt++] = e;
    }
    if (nt) {
        pack_job job = {.todo = todo, .n = nt, .first_item = first};
        atomic_init(&job.next, 0);
        cpu_pool_run(pool, pack_worker, &job);
        for (size_t k = 0; k < nt; k++) {
            if (todo[k]->drop) /* the pages straddling two work items */
                drop_pages(todo[k]->src, todo[k]->src_bytes);
            todo[k]->next = g_head;
            g_head = todo[k];
        }
        nt = 0;
    }
out:
    for (size_t k = 0; k < nt; k++)
        entry_free(todo[k]);
    free(todo);
    free(first);
    pthread_mutex_unlock(&g_mu);
    return rc;
}

void cpu_repack_forget(const ag_buffer *buf, size_t off, size_t n)
{
    pthread_mutex_lock(&g_mu);
    const char *lo = (const char *)buf->host + off, *hi = lo + n;
    for (repack_entry **pe = &g_head; *pe;) {
        repack_entry *e = *pe;
        if (e->buf == buf && e->src < hi && e->src + e->src_bytes > lo) {
            *pe = e->next;
            entry_free(e);
        } else {
            pe = &e->next;
        }
    }
    pthread_mutex_unlock(&g_mu);
}

size_t cpu_repack_bytes(void)
{
    pthread_mutex_lock(&g_mu);
    const size_t n = g_packed_bytes;
    pthread_mutex_unlock(&g_mu);
    return n;
}
