/* The converters' readers against inputs that are small (or sparse) on disk but would make them
 * build or allocate without bound: each must be refused with a message naming the file and the
 * limit of anygpt/limits.h, before the memory is spent. Files are made byte by byte here.
 * usage: test_reader_limits WORK_DIR */
#include "../common/ag_check.h"
#include "anygpt/error.h"
#include "anygpt/limits.h"
#include "ckpt.h"
#include "json.h"
#include "spm_model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *work;

typedef struct {
    uint8_t *p;
    size_t n, cap;
} buf;

static void put(buf *b, const void *d, size_t n)
{
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
        if (!b->p)
            abort();
    }
    memcpy(b->p + b->n, d, n);
    b->n += n;
}
static void put_u8(buf *b, uint8_t v) { put(b, &v, 1); }
static void put_le(buf *b, uint64_t v, int bytes)
{
    for (int i = 0; i < bytes; i++)
        put_u8(b, (uint8_t)(v >> (8 * i)));
}
static void put_s(buf *b, const char *s) { put(b, s, strlen(s)); }
/* pickle BINUNICODE */
static void pk_str(buf *b, const char *s)
{
    put_u8(b, 'X');
    put_le(b, strlen(s), 4);
    put_s(b, s);
}

/* A zip of stored entries, as torch.save writes them. */
static void write_zip(const char *path, int n, const char *const *names, const buf *const *data)
{
    buf z = {0}, cd = {0};
    for (int k = 0; k < n; k++) {
        size_t off = z.n, nl = strlen(names[k]);
        put_le(&z, 0x04034b50, 4);
        /* version, flags, method (stored), time, date */
        put_le(&z, 20, 2), put_le(&z, 0, 2), put_le(&z, 0, 2), put_le(&z, 0, 2), put_le(&z, 0, 2);
        put_le(&z, 0, 4), put_le(&z, data[k]->n, 4), put_le(&z, data[k]->n, 4); /* crc, sizes */
        put_le(&z, nl, 2), put_le(&z, 0, 2);
        put_s(&z, names[k]);
        put(&z, data[k]->p, data[k]->n);
        put_le(&cd, 0x02014b50, 4), put_le(&cd, 20, 2), put_le(&cd, 20, 2), put_le(&cd, 0, 2), put_le(&cd, 0, 2);
        put_le(&cd, 0, 2), put_le(&cd, 0, 2), put_le(&cd, 0, 4), put_le(&cd, data[k]->n, 4);
        put_le(&cd, data[k]->n, 4), put_le(&cd, nl, 2), put_le(&cd, 0, 2), put_le(&cd, 0, 2), put_le(&cd, 0, 2);
        put_le(&cd, 0, 2), put_le(&cd, 0, 4), put_le(&cd, off, 4);
        put_s(&cd, names[k]);
    }
    size_t cd_off = z.n;
    put(&z, cd.p, cd.n);
    put_le(&z, 0x06054b50, 4), put_le(&z, 0, 2), put_le(&z, 0, 2), put_le(&z, (uint64_t)n, 2);
    put_le(&z, (uint64_t)n, 2), put_le(&z, cd.n, 4), put_le(&z, cd_off, 4), put_le(&z, 0, 2);
    FILE *f = fopen(path, "wb");
    CHECK(f && fwrite(z.p, 1, z.n, f) == z.n && fclose(f) == 0, "cannot write %s", path);
    free(z.p);
    free(cd.p);
}

static void pickle_refused(const char *name, buf *pkl, const char *want)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/limits-%s.pt", work, name);
    buf storage = {0};
    put_le(&storage, 0x3f800000, 4); /* one float: 1.0 */
    const char *names[] = {"archive/data.pkl", "archive/data/0"};
    const buf *data[] = {pkl, &storage};
    write_zip(path, 2, names, data);
    ckpt c;
    ckpt_init(&c);
    ag_clear_error();
    int rc = torchzip_load(&c, path);
    CHECK(rc == -1 && strstr(ag_last_error(), path) && strstr(ag_last_error(), want), "%s: rc %d, '%s'", name, rc,
          ag_last_error());
    printf("# %-14s -> %s\n", name, ag_last_error());
    ckpt_free(&c);
    free(pkl->p);
    free(storage.p);
    remove(path);
}

/* {'w': _rebuild_tensor_v2(storage of 1 float, 0, (1000000,), (0,), False, OrderedDict())} */
static void expanded_view(void)
{
    buf b = {0};
    put(&b, "\x80\x02}(", 4);
    pk_str(&b, "w");
    put_s(&b, "ctorch._utils\n_rebuild_tensor_v2\n(");
    put_u8(&b, '(');
    pk_str(&b, "storage");
    put_s(&b, "ctorch\nFloatStorage\n");
    pk_str(&b, "0");
    pk_str(&b, "cpu");
    put(&b, "K\x01tQK\x00(J", 8);
    put_le(&b, 1000000, 4);
    put(&b, "t(K\x00t\x89", 6);
    put_s(&b, "ccollections\nOrderedDict\n)RtRu.");
    pickle_refused("expanded-view", &b, "views a storage");
}

/* 17 dicts, each holding the next one under 16 keys (the first inline and memoized, the others
 * through the memo): 16^16 entries from a 2 KB pickle */
static void emit_level(buf *b, int level)
{
    put(b, "}q", 2);
    put_u8(b, (uint8_t)level);
    if (level == 16)
        return;
    put_u8(b, '(');
    for (int k = 0; k < 16; k++) {
        char key[8];
        snprintf(key, sizeof key, "k%d", k);
        pk_str(b, key);
        if (k == 0) {
            emit_level(b, level + 1);
        } else {
            put_u8(b, 'h');
            put_u8(b, (uint8_t)(level + 1));
        }
    }
    put_u8(b, 'u');
}

static void dict_bomb(void)
{
    buf b = {0};
    put(&b, "\x80\x02", 2);
    emit_level(&b, 0);
    put_u8(&b, '.');
    pickle_refused("dict-bomb", &b, "tensors and dict entries");
}

static void memo_index(void)
{
    buf b = {0};
    put(&b, "\x80\x02}r\xff\xff\xff\x7f.", 9);
    pickle_refused("memo-index", &b, "memo index 2147483647");
}

/* AG_MAX_PICKLE_VALUES + 1 empty tuples (~100 MB built before the refusal) */
static void many_objects(void)
{
    buf b = {0};
    put(&b, "\x80\x02", 2);
    for (int k = 0; k <= AG_MAX_PICKLE_VALUES; k++)
        put_u8(&b, ')');
    put_u8(&b, '.');
    pickle_refused("objects", &b, "objects");
}

static void json_limits(void)
{
    /* [0,0,...] with AG_MAX_JSON_VALUES elements: one value more than accepted */
    size_t n = (size_t)AG_MAX_JSON_VALUES;
    char *t = malloc(2 * n + 2);
    t[0] = '[';
    for (size_t k = 0; k < n; k++)
        t[1 + 2 * k] = '0', t[2 + 2 * k] = ',';
    t[2 * n] = ']';
    ag_clear_error();
    json_value *v = json_parse(t, 2 * n + 1, "values.json");
    CHECK(!v && strstr(ag_last_error(), "values.json") && strstr(ag_last_error(), "more than"), "json values: %s",
          ag_last_error());
    printf("# %-14s -> %s\n", "json-values", ag_last_error());
    json_free(v);
    free(t);

    /* a sparse file over AG_MAX_AUX_FILE_BYTES: refused from its size, nothing read */
    char path[4096];
    snprintf(path, sizeof path, "%s/limits-big.json", work);
    FILE *f = fopen(path, "wb");
    CHECK(f && ftruncate(fileno(f), (off_t)AG_MAX_AUX_FILE_BYTES + 1) == 0 && fclose(f) == 0, "sparse file");
    ag_clear_error();
    v = json_parse_file(path);
    CHECK(!v && strstr(ag_last_error(), path) && strstr(ag_last_error(), "accepted"), "big file: %s",
          ag_last_error());
    printf("# %-14s -> %s\n", "json-file", ag_last_error());
    remove(path);

    /* safetensors: a header length over the format's limit, in a 16-byte file */
    snprintf(path, sizeof path, "%s/limits-header.safetensors", work);
    buf s = {0};
    put_le(&s, (uint64_t)AG_MAX_SAFETENSORS_HEADER + 1, 8);
    put_s(&s, "{}      ");
    f = fopen(path, "wb");
    CHECK(f && fwrite(s.p, 1, s.n, f) == s.n && fclose(f) == 0, "write");
    ckpt c;
    ckpt_init(&c);
    ag_clear_error();
    CHECK(safetensors_load(&c, path) == -1 && strstr(ag_last_error(), "accepted"), "safetensors header: %s",
          ag_last_error());
    printf("# %-14s -> %s\n", "safetensors", ag_last_error());
    ckpt_free(&c);
    free(s.p);
    remove(path);
}

static void spm_limit(void)
{
    /* AG_MAX_SPM_PIECES + 1 pieces of one byte each (5 bytes apiece) */
    buf b = {0};
    for (int k = 0; k <= AG_MAX_SPM_PIECES; k++)
        put(&b, "\x0a\x03\x0a\x01" "a", 5);
    spm_model m;
    ag_clear_error();
    CHECK(spm_model_parse(&m, b.p, b.n, "many.model") == -1 && strstr(ag_last_error(), "many.model") &&
              strstr(ag_last_error(), "pieces"),
          "spm pieces: %s", ag_last_error());
    printf("# %-14s -> %s\n", "spm-pieces", ag_last_error());
    free(b.p);
}

int main(int argc, char **argv)
{
    work = argc > 1 ? argv[1] : ".";
    expanded_view();
    dict_bomb();
    memo_index();
    many_objects();
    json_limits();
    spm_limit();
    return t_finish();
}
