/* Helpers of the fuzz targets: scratch files, zero-padded GGUF headers, error checks. */
#include "fuzz_util.h"

#include "anygpt/error.h"
#include "anygpt/tensor.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *tmp_root(void)
{
    const char *t = getenv("TMPDIR");
    return t && *t ? t : "/tmp";
}

static void die(const char *what, const char *path)
{
    fprintf(stderr, "fuzz harness: %s %s: %s\n", what, path, strerror(errno));
    abort();
}

static int write_all(int fd, const uint8_t *d, size_t n)
{
    while (n) {
        ssize_t w = write(fd, d, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        d += w;
        n -= (size_t)w;
    }
    return 0;
}

/* One path per tag: targets use a handful of fixed tags. Removed at exit. */
static struct { char tag[32]; char path[4096]; } slots[16];

static void remove_scratch(void)
{
    for (int i = 0; i < 16 && slots[i].tag[0]; i++) {
        DIR *d = opendir(slots[i].path);
        if (d) {
            struct dirent *e;
            while ((e = readdir(d))) {
                char p[8192];
                if (e->d_name[0] != '.' && snprintf(p, sizeof p, "%s/%s", slots[i].path, e->d_name) < (int)sizeof p)
                    unlink(p);
            }
            closedir(d);
            rmdir(slots[i].path);
        } else {
            unlink(slots[i].path);
        }
    }
}

static char *path_for(const char *tag, const char *suffix)
{
    static bool registered;
    if (!registered)
        registered = atexit(remove_scratch) == 0;
    char want[32];
    if (snprintf(want, sizeof want, "%s%s", tag, suffix) >= (int)sizeof want)
        abort();
    for (int i = 0; i < 16; i++) {
        if (!slots[i].tag[0]) {
            memcpy(slots[i].tag, want, sizeof want);
            if (snprintf(slots[i].path, sizeof slots[i].path, "%s/agfuzz-%d-%s", tmp_root(), (int)getpid(), want) >=
                (int)sizeof slots[i].path) {
                fprintf(stderr, "fuzz harness: TMPDIR too long\n");
                abort();
            }
        }
        if (strcmp(slots[i].tag, want) == 0)
            return slots[i].path;
    }
    fprintf(stderr, "fuzz harness: too many scratch tags\n");
    abort();
}

static void write_file(const char *path, const uint8_t *data, size_t size, size_t total)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        die("cannot create", path);
    if (write_all(fd, data, size) || (total > size && ftruncate(fd, (off_t)total)) || close(fd))
        die("cannot write", path);
}

const char *fz_write_tmp(const char *tag, const uint8_t *data, size_t size)
{
    char *path = path_for(tag, "");
    write_file(path, data, size, size);
    return path;
}

const char *fz_tmp_dir(const char *tag)
{
    char *path = path_for(tag, ".d");
    if (mkdir(path, 0700) && errno != EEXIST)
        die("cannot create", path);
    return path;
}

const char *fz_split_to_dir(const char *tag, const uint8_t *data, size_t size, const char *const *names, int n)
{
    const char *dir = fz_tmp_dir(tag);
    const size_t sl = strlen(FZ_SPLIT);
    const uint8_t *p = data, *end = data + size;
    for (int k = 0; k < n; k++) {
        const uint8_t *q = p < end ? memmem(p, (size_t)(end - p), FZ_SPLIT, sl) : NULL;
        const uint8_t *part_end = q ? q : end;
        char path[8192];
        if (snprintf(path, sizeof path, "%s/%s", dir, names[k]) >= (int)sizeof path)
            abort();
        if (p < part_end)
            write_file(path, p, (size_t)(part_end - p), (size_t)(part_end - p));
        else if (unlink(path) && errno != ENOENT)
            die("cannot remove", path);
        p = q ? q + sl : end;
    }
    return dir;
}

void fz_expect_error(const char *what)
{
    const char *e = ag_last_error();
    if (!e || !*e) {
        fprintf(stderr, "fuzz: %s failed without an error message\n", what);
        abort();
    }
}

/* ---- a minimal GGUF header walk (only to find where the tensor data ends) ---- */
typedef struct {
    const uint8_t *p;
    size_t n, pos;
} hw;

static bool hw_take(hw *h, uint64_t k, const uint8_t **at)
{
    if (k > h->n - h->pos)
        return false;
    if (at)
        *at = h->p + h->pos;
    h->pos += (size_t)k;
    return true;
}

static bool hw_u32(hw *h, uint32_t *v)
{
    const uint8_t *a;
    if (!hw_take(h, 4, &a))
        return false;
    memcpy(v, a, 4);
    return true;
}

static bool hw_u64(hw *h, uint64_t *v)
{
    const uint8_t *a;
    if (!hw_take(h, 8, &a))
        return false;
    memcpy(v, a, 8);
    return true;
}

static size_t plain_size(uint32_t t)
{
    static const size_t sz[13] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
    return t < 13 ? sz[t] : 0;
}

static bool hw_str(hw *h, const uint8_t **s, uint64_t *len)
{
    return hw_u64(h, len) && hw_take(h, *len, s);
}

/* End of the tensor data (absolute offset) the header declares, 0 when it does not parse. */
static uint64_t gguf_data_end(const uint8_t *data, size_t size, uint64_t *declared)
{
    hw h = {data, size, 0};
    uint32_t version;
    uint64_t n_t, n_kv, align = 32;
    const uint8_t *magic;
    *declared = 0;
    if (!hw_take(&h, 4, &magic) || memcmp(magic, "GGUF", 4) || !hw_u32(&h, &version) || !hw_u64(&h, &n_t) ||
        !hw_u64(&h, &n_kv) || n_t > (1u << 20) || n_kv > (1u << 20))
        return 0;
    for (uint64_t i = 0; i < n_kv; i++) {
        const uint8_t *k, *s;
        uint64_t kl, len;
        uint32_t t;
        if (!hw_str(&h, &k, &kl) || !hw_u32(&h, &t))
            return 0;
        if (t == 8) {
            if (!hw_str(&h, &s, &len))
                return 0;
        } else if (t == 9) {
            uint32_t et;
            uint64_t n;
            if (!hw_u32(&h, &et) || !hw_u64(&h, &n))
                return 0;
            if (et == 8) {
                for (uint64_t j = 0; j < n; j++)
                    if (!hw_str(&h, &s, &len))
                        return 0;
            } else if (!plain_size(et) || n > size || !hw_take(&h, n * plain_size(et), NULL)) {
                return 0;
            }
        } else {
            const uint8_t *v;
            if (!plain_size(t) || !hw_take(&h, plain_size(t), &v))
                return 0;
            if (t == 4 && kl == 17 && !memcmp(k, "general.alignment", 17)) {
                uint32_t a;
                memcpy(&a, v, 4);
                align = a;
            }
        }
    }
    uint64_t end = 0;
    for (uint64_t i = 0; i < n_t; i++) {
        const uint8_t *s;
        uint64_t len, off;
        uint32_t nd, type;
        int64_t ne[AG_MAX_DIMS] = {1, 1, 1, 1};
        if (!hw_str(&h, &s, &len) || !hw_u32(&h, &nd) || nd < 1 || nd > AG_MAX_DIMS)
            return 0;
        for (uint32_t d = 0; d < nd; d++) {
            uint64_t v;
            if (!hw_u64(&h, &v) || v == 0 || v > (1ull << 40))
                return 0;
            ne[d] = (int64_t)v;
        }
        if (!hw_u32(&h, &type) || !hw_u64(&h, &off) || !ag_type_valid((int)type))
            return 0;
        int64_t be = ag_type_block_elems((ag_type)type);
        if (ne[0] % be)
            return 0;
        uint64_t bytes = (uint64_t)(ne[0] / be) * ag_type_block_size((ag_type)type);
        for (uint32_t d = 1; d < nd; d++)
            if (__builtin_mul_overflow(bytes, (uint64_t)ne[d], &bytes))
                return 0;
        uint64_t e;
        if (__builtin_add_overflow(off, bytes, &e) || __builtin_add_overflow(*declared, bytes, declared))
            return 0;
        if (e > end)
            end = e;
    }
    if (align == 0 || (align & (align - 1)))
        return 0;
    uint64_t data_off = (h.pos + align - 1) / align * align;
    return data_off + end;
}

uint64_t fz_gguf_declared_bytes(const uint8_t *data, size_t size)
{
    uint64_t declared;
    gguf_data_end(data, size, &declared);
    return declared;
}

const char *fz_write_gguf_padded(const char *tag, const uint8_t *data, size_t size, size_t max_total,
                                 bool *padded)
{
    uint64_t declared, end = gguf_data_end(data, size, &declared);
    char *path = path_for(tag, ".gguf");
    *padded = end > size && end <= max_total;
    write_file(path, data, size, *padded ? (size_t)end : size);
    return path;
}

/* ---- structured parameters ---- */
uint8_t fz_u8(fz_reader *r)
{
    if (!r->n)
        return 0;
    r->n--;
    return *r->p++;
}

uint32_t fz_u32(fz_reader *r)
{
    uint32_t v = 0;
    for (int k = 0; k < 4; k++)
        v |= (uint32_t)fz_u8(r) << (8 * k);
    return v;
}

int64_t fz_range(fz_reader *r, int64_t lo, int64_t hi)
{
    uint64_t span = (uint64_t)(hi - lo) + 1;
    return lo + (int64_t)(span ? fz_u32(r) % span : fz_u32(r));
}
