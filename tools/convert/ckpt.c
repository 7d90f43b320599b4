/* Checkpoint container: file mappings, the tensor table, strided reads to f32. */
#include "ckpt.h"

#include "anygpt/error.h"
#include "anygpt/limits.h"
#include "anygpt/quant.h"
#include "anygpt/tensor.h"

#include <errno.h>
#include <stdint.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

void ckpt_init(ckpt *c)
{
    memset(c, 0, sizeof *c);
}

void ckpt_free(ckpt *c)
{
    for (size_t k = 0; k < c->n; k++)
        free(c->t[k].name);
    free(c->t);
    for (size_t k = 0; k < c->n_maps; k++) {
        if (c->maps[k].base && c->maps[k].size)
            munmap(c->maps[k].base, c->maps[k].size);
        free(c->maps[k].path);
    }
    free(c->maps);
    free(c->slots);
    memset(c, 0, sizeof *c);
}

const ckpt_map *ckpt_map_file(ckpt *c, const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        ag_set_error("%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        ag_set_error("%s: not a regular file", path);
        close(fd);
        return NULL;
    }
    void *base = NULL;
    size_t size = (size_t)st.st_size;
    if (size) {
        base = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (base == MAP_FAILED) {
            ag_set_error("%s: mmap failed: %s", path, strerror(errno));
            close(fd);
            return NULL;
        }
    }
    close(fd);
    if (c->n_maps == c->cap_maps) {
        size_t nc = c->cap_maps ? c->cap_maps * 2 : 8;
        ckpt_map *nm = realloc(c->maps, nc * sizeof *nm);
        if (!nm) {
            if (base)
                munmap(base, size);
            ag_set_error("%s: out of memory", path);
            return NULL;
        }
        c->maps = nm;
        c->cap_maps = nc;
    }
    ckpt_map *m = &c->maps[c->n_maps];
    m->path = strdup(path);
    if (!m->path) {
        if (base)
            munmap(base, size);
        ag_set_error("%s: out of memory", path);
        return NULL;
    }
    m->base = base;
    m->size = size;
    c->n_maps++;
    return m;
}

/* Names are looked up through a hash table (open addressing, at most half full): checkpoints
 * hold up to AG_MAX_CKPT_TENSORS tensors and the plans look each one up. */
static size_t name_hash(const char *s)
{
    size_t h = 1469598103934665603u; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211u;
    return h;
}

static size_t *find_slot(const ckpt *c, const char *name)
{
    size_t mask = c->n_slots - 1;
    for (size_t i = name_hash(name) & mask;; i = (i + 1) & mask)
        if (!c->slots[i] || strcmp(c->t[c->slots[i] - 1].name, name) == 0)
            return &c->slots[i];
}

static int grow_slots(ckpt *c)
{
    size_t n = c->n_slots ? c->n_slots * 2 : 256;
    size_t *s = calloc(n, sizeof *s);
    if (!s) {
        ag_set_error("out of memory");
        return -1;
    }
    free(c->slots);
    c->slots = s;
    c->n_slots = n;
    for (size_t k = 0; k < c->n; k++)
        *find_slot(c, c->t[k].name) = k + 1;
    return 0;
}

const ckpt_tensor *ckpt_find(const ckpt *c, const char *name)
{
    if (!c->n_slots)
        return NULL;
    size_t k = *find_slot(c, name);
    return k ? &c->t[k - 1] : NULL;
}

int ckpt_add(ckpt *c, const ckpt_tensor *t)
{
    const ckpt_tensor *old = ckpt_find(c, t->name);
    if (old) {
        ag_set_error("tensor '%s' appears twice (%s and %s)", t->name, old->file, t->file);
        return -1;
    }
    if (c->n >= AG_MAX_CKPT_TENSORS) {
        ag_set_error("%s: more than %d tensors in the checkpoint: refused", t->file, AG_MAX_CKPT_TENSORS);
        return -1;
    }
    if (2 * (c->n + 1) > c->n_slots && grow_slots(c))
        return -1;
    if (c->n == c->cap) {
        size_t nc = c->cap ? c->cap * 2 : 64;
        ckpt_tensor *nt = realloc(c->t, nc * sizeof *nt);
        if (!nt) {
            ag_set_error("out of memory");
            return -1;
        }
        c->t = nt;
        c->cap = nc;
    }
    c->t[c->n] = *t;
    c->t[c->n].name = strdup(t->name);
    if (!c->t[c->n].name) {
        ag_set_error("out of memory");
        return -1;
    }
    *find_slot(c, t->name) = c->n + 1;
    c->n++;
    return 0;
}

int ckpt_load_file(ckpt *c, const char *path)
{
    const size_t len = strlen(path);
    if (len > 12 && strcmp(path + len - 12, ".safetensors") == 0)
        return safetensors_load(c, path);
    return torchzip_load(c, path);
}

size_t ckpt_dtype_size(ckpt_dtype d)
{
    switch (d) {
    case CKPT_F64: case CKPT_I64: return 8;
    case CKPT_F32: case CKPT_I32: return 4;
    case CKPT_F16: case CKPT_BF16: return 2;
    default: return 1;
    }
}

const char *ckpt_dtype_name(ckpt_dtype d)
{
    static const char *const names[] = {"F32", "F16", "BF16", "F64", "I64", "I32", "I8", "U8", "BOOL"};
    return (unsigned)d < sizeof names / sizeof names[0] ? names[d] : "?";
}

int64_t ckpt_numel(const ckpt_tensor *t)
{
    int64_t n = 1;
    for (int d = 0; d < t->n_dims; d++)
        n *= t->shape[d];
    return n;
}

bool ckpt_has_shape(const ckpt_tensor *t, int n_dims, const int64_t *shape)
{
    bool ok = t->n_dims == n_dims;
    for (int d = 0; ok && d < n_dims; d++)
        ok = t->shape[d] == shape[d];
    return ok;
}

int ckpt_check_used(const ckpt *c, const bool *used, bool (*ignorable)(const char *name), const char *what)
{
    for (size_t i = 0; i < c->n; i++) {
        if (!used[i] && !(ignorable && ignorable(c->t[i].name))) {
            ag_set_error("unexpected tensor '%s' in the checkpoint (not part of %s)", c->t[i].name, what);
            return -1;
        }
    }
    return 0;
}

int ckpt_check_extent(const ckpt_tensor *t, const uint8_t *lo, size_t size, const char *what)
{
    /* Shapes and strides are non-negative; the highest addressed element bounds the extent. */
    const size_t es = ckpt_dtype_size(t->dtype);
    uint64_t last = 0;
    for (int d = 0; d < t->n_dims; d++) {
        if (t->shape[d] < 0 || t->strides[d] < 0) {
            ag_set_error("%s: tensor '%s': negative shape or stride", t->file, t->name);
            return -1;
        }
        if (t->shape[d] == 0)
            return 0; /* empty: nothing addressed */
        uint64_t span;
        if (__builtin_mul_overflow((uint64_t)(t->shape[d] - 1), (uint64_t)t->strides[d], &span) ||
            __builtin_add_overflow(last, span, &last)) {
            ag_set_error("%s: tensor '%s': size overflow", t->file, t->name);
            return -1;
        }
    }
    uint64_t end;
    if (t->data < lo || __builtin_mul_overflow(last + 1, (uint64_t)es, &end) ||
        __builtin_add_overflow(end, (uint64_t)(t->data - lo), &end) || end > size) {
        ag_set_error("%s: tensor '%s' data runs past the end of its %s (file truncated?)", t->file, t->name, what);
        return -1;
    }
    return 0;
}

static float load_elem(const uint8_t *p, ckpt_dtype d)
{
    switch (d) {
    case CKPT_F32: {
        float f;
        memcpy(&f, p, 4);
        return f;
    }
    case CKPT_F16: {
        uint16_t h;
        memcpy(&h, p, 2);
        return ag_fp16_to_fp32(h);
    }
    case CKPT_BF16: {
        uint16_t h;
        memcpy(&h, p, 2);
        return ckpt_bf16_to_f32(h);
    }
    default: {
        double x;
        memcpy(&x, p, 8);
        return (float)x;
    }
    }
}

int ckpt_rows_to_f32(const ckpt_tensor *t, int64_t row0, int64_t n_rows, float *out)
{
    if (t->n_dims < 1 || row0 < 0 || n_rows < 0 || row0 > t->shape[0] || n_rows > t->shape[0] - row0) {
        ag_set_error("%s: tensor '%s': row range out of bounds", t->file, t->name);
        return -1;
    }
    ckpt_tensor v = *t;
    v.data = t->data + (size_t)(row0 * t->strides[0]) * ckpt_dtype_size(t->dtype);
    v.shape[0] = n_rows;
    return ckpt_to_f32(&v, out);
}

void ckpt_release(const ckpt_tensor *t)
{
    /* Done with this tensor: drop its pages from our mapping (they stay in the page cache), so
     * the resident set does not grow to the whole model. Contiguous tensors only; best effort. */
    const int64_t n = ckpt_numel(t);
    if (n <= 0)
        return;
    const uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t lo = (uintptr_t)t->data, hi = lo + (uintptr_t)n * ckpt_dtype_size(t->dtype);
    lo = (lo + page - 1) / page * page; /* whole pages inside the tensor only */
    hi = hi / page * page;
    if (hi > lo)
        madvise((void *)lo, hi - lo, MADV_DONTNEED);
}

int ckpt_to_f32(const ckpt_tensor *t, float *out)
{
    if (t->dtype != CKPT_F32 && t->dtype != CKPT_F16 && t->dtype != CKPT_BF16 && t->dtype != CKPT_F64) {
        ag_set_error("%s: tensor '%s' has dtype %s, a floating-point type is needed", t->file, t->name,
                     ckpt_dtype_name(t->dtype));
        return -1;
    }
    const size_t es = ckpt_dtype_size(t->dtype);
    const int64_t n = ckpt_numel(t);
    if (n == 0)
        return 0;
    if (t->n_dims == 0) {
        out[0] = load_elem(t->data, t->dtype);
        return 0;
    }
    /* Walk rows of the innermost dimension with an index counter over the outer ones. */
    int64_t idx[CKPT_MAX_DIMS] = {0};
    const int nd = t->n_dims;
    const int64_t inner = t->shape[nd - 1], istr = t->strides[nd - 1];
    int64_t o = 0;
    for (;;) {
        int64_t off = 0;
        for (int d = 0; d < nd - 1; d++)
            off += idx[d] * t->strides[d];
        const uint8_t *row = t->data + (size_t)off * es;
        if (t->dtype == CKPT_F32 && istr == 1) {
            memcpy(out + o, row, (size_t)inner * 4);
        } else if (t->dtype == CKPT_BF16 && istr == 1) { /* the common 7B case: keep it a tight loop */
            for (int64_t k = 0; k < inner; k++) {
                uint16_t hv;
                memcpy(&hv, row + 2 * k, 2);
                out[o + k] = ckpt_bf16_to_f32(hv);
            }
        } else if (t->dtype == CKPT_F16 && istr == 1 && ((uintptr_t)row & 1) == 0) {
            /* a hostile zip can store its data at an odd offset: that row takes the loop below */
            ag_fp16_to_fp32_row((const ag_fp16 *)(const void *)row, out + o, inner);
        } else {
            for (int64_t k = 0; k < inner; k++)
                out[o + k] = load_elem(row + (size_t)(k * istr) * es, t->dtype);
        }
        o += inner;
        int d = nd - 2;
        while (d >= 0 && ++idx[d] == t->shape[d])
            idx[d--] = 0;
        if (d < 0)
            break;
    }
    return 0;
}
