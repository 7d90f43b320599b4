/* Zip central directory reader: EOCD (and ZIP64 EOCD) -> central entries -> local headers. */
#include "zip.h"

#include "anygpt/error.h"

#include <stdlib.h>
#include <string.h>

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t rd32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }
static uint64_t rd64(const uint8_t *p) { return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32; }

void zip_close(zip_archive *z)
{
    for (size_t k = 0; k < z->n; k++)
        free(z->e[k].name);
    free(z->e);
    free(z->by_name);
    z->e = NULL;
    z->by_name = NULL;
    z->n = 0;
}

/* qsort has no context argument in C17: the entries being sorted are passed through this. */
static const zip_entry *sort_entries;

static int cmp_entry(const void *a, const void *b)
{
    size_t i = *(const size_t *)a, j = *(const size_t *)b;
    int c = strcmp(sort_entries[i].name, sort_entries[j].name);
    return c ? c : (i > j) - (i < j);
}

int zip_open(zip_archive *z, const uint8_t *base, size_t size, const char *label)
{
    memset(z, 0, sizeof *z);
    if (size < 22) {
        ag_set_error("%s: too short to be a zip archive (truncated?)", label);
        return -1;
    }
    /* The end-of-central-directory record sits in the last 22 + 65535 bytes. */
    size_t eocd = SIZE_MAX;
    size_t lo = size > 22 + 65535 ? size - 22 - 65535 : 0;
    for (size_t p = size - 22 + 1; p-- > lo;) {
        if (rd32(base + p) == 0x06054b50 && p + 22 + rd16(base + p + 20) == size) {
            eocd = p;
            break;
        }
    }
    if (eocd == SIZE_MAX) {
        ag_set_error("%s: no zip end-of-central-directory record (truncated or not a zip file)", label);
        return -1;
    }
    uint64_t n_ent = rd16(base + eocd + 10), cd_size = rd32(base + eocd + 12), cd_off = rd32(base + eocd + 16);
    if (n_ent == 0xffff || cd_size == 0xffffffffu || cd_off == 0xffffffffu) {
        if (eocd < 20 || rd32(base + eocd - 20) != 0x07064b50) {
            ag_set_error("%s: ZIP64 locator missing", label);
            return -1;
        }
        uint64_t e64 = rd64(base + eocd - 20 + 8);
        if (size < 56 || e64 > size - 56 || rd32(base + e64) != 0x06064b50) {
            ag_set_error("%s: bad ZIP64 end-of-central-directory record", label);
            return -1;
        }
        n_ent = rd64(base + e64 + 32);
        cd_size = rd64(base + e64 + 40);
        cd_off = rd64(base + e64 + 48);
    }
    if (cd_off > size || cd_size > size - cd_off || n_ent > cd_size / 46) {
        ag_set_error("%s: zip central directory out of bounds (truncated?)", label);
        return -1;
    }
    z->e = calloc(n_ent ? n_ent : 1, sizeof *z->e);
    if (!z->e) {
        ag_set_error("%s: out of memory", label);
        return -1;
    }
    const uint8_t *p = base + cd_off, *end = base + cd_off + cd_size;
    for (uint64_t k = 0; k < n_ent; k++) {
        if (end - p < 46 || rd32(p) != 0x02014b50) {
            ag_set_error("%s: bad zip central directory entry %llu", label, (unsigned long long)k);
            goto fail;
        }
        uint16_t flags = rd16(p + 8), method = rd16(p + 10);
        uint64_t csize = rd32(p + 20), usize = rd32(p + 24), loff = rd32(p + 42);
        size_t nlen = rd16(p + 28), xlen = rd16(p + 30), clen = rd16(p + 32);
        if ((size_t)(end - p) < 46 + nlen + xlen + clen) {
            ag_set_error("%s: zip central directory entry %llu out of bounds", label, (unsigned long long)k);
            goto fail;
        }
        const uint8_t *x = p + 46 + nlen, *xe = x + xlen;
        while (xe - x >= 4) { /* ZIP64 extended information: only the saturated fields, in order */
            uint16_t id = rd16(x), len = rd16(x + 2);
            if ((size_t)(xe - x - 4) < len)
                break;
            if (id == 0x0001) {
                const uint8_t *f = x + 4, *fe = x + 4 + len;
                if (usize == 0xffffffffu && fe - f >= 8) { usize = rd64(f); f += 8; }
                if (csize == 0xffffffffu && fe - f >= 8) { csize = rd64(f); f += 8; }
                if (loff == 0xffffffffu && fe - f >= 8) { loff = rd64(f); f += 8; }
            }
            x += 4 + len;
        }
        zip_entry *e = &z->e[z->n];
        e->name = malloc(nlen + 1);
        if (!e->name) {
            ag_set_error("%s: out of memory", label);
            goto fail;
        }
        memcpy(e->name, p + 46, nlen);
        e->name[nlen] = 0;
        e->method = method;
        e->flags = flags;
        e->size = usize;
        z->n++;
        if (method == 0 && !(flags & 1)) {
            if (csize != usize || loff > size - 30 || rd32(base + loff) != 0x04034b50) {
                ag_set_error("%s: zip entry '%s': bad local header (truncated?)", label, e->name);
                goto fail;
            }
            uint64_t data = loff + 30 + rd16(base + loff + 26) + rd16(base + loff + 28);
            if (data > size || usize > size - data) {
                ag_set_error("%s: zip entry '%s' runs past the end of the file (truncated?)", label, e->name);
                goto fail;
            }
            e->data = base + data;
        }
        p += 46 + nlen + xlen + clen;
    }
    z->by_name = malloc((z->n ? z->n : 1) * sizeof *z->by_name);
    if (!z->by_name) {
        ag_set_error("%s: out of memory", label);
        goto fail;
    }
    for (size_t k = 0; k < z->n; k++)
        z->by_name[k] = k;
    sort_entries = z->e;
    qsort(z->by_name, z->n, sizeof *z->by_name, cmp_entry);
    return 0;
fail:
    zip_close(z);
    return -1;
}

const zip_entry *zip_find(const zip_archive *z, const char *name)
{
    /* the first entry of that name (lowest index), as a linear scan would find it */
    size_t lo = 0, hi = z->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(z->e[z->by_name[mid]].name, name) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < z->n && strcmp(z->e[z->by_name[lo]].name, name) == 0 ? &z->e[z->by_name[lo]] : NULL;
}

const uint8_t *zip_find_data(const zip_archive *z, const char *name, uint64_t *size, const char *label)
{
    const zip_entry *e = zip_find(z, name);
    if (!e) {
        ag_set_error("%s: zip entry '%s' missing", label, name);
        return NULL;
    }
    if (e->flags & 1) {
        ag_set_error("%s: zip entry '%s' is encrypted", label, name);
        return NULL;
    }
    if (e->method != 0 || !e->data) {
        ag_set_error("%s: zip entry '%s' is compressed (method %u); only stored entries (as torch.save "
                     "writes them) are supported: re-save the checkpoint with torch.save",
                     label, name, e->method);
        return NULL;
    }
    *size = e->size;
    return e->data;
}
