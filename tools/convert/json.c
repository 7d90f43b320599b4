/* Strict JSON: no comments, no trailing commas, no NaN, UTF-8 validated in strings, depth limited. */
#include "json.h"

#include "anygpt/error.h"
#include "anygpt/limits.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct {
    const char *s;
    size_t n, pos;
    const char *label;
    bool failed;
    size_t values; /* made so far: at most AG_MAX_JSON_VALUES (each costs ~90 bytes for 2 of text) */
} jparser;

static void jfail(jparser *p, const char *what)
{
    if (!p->failed)
        ag_set_error("%s: invalid JSON at byte %zu: %s", p->label, p->pos, what);
    p->failed = true;
}

static void skip_ws(jparser *p)
{
    while (p->pos < p->n) {
        char c = p->s[p->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
            break;
        p->pos++;
    }
}

static json_value *new_value(jparser *p, json_kind k)
{
    if (++p->values > AG_MAX_JSON_VALUES) {
        if (!p->failed)
            ag_set_error("%s: JSON text holds more than %d values: refused", p->label, AG_MAX_JSON_VALUES);
        p->failed = true;
        return NULL;
    }
    json_value *v = calloc(1, sizeof *v);
    if (v)
        v->kind = k;
    return v;
}

/* Growable byte buffer for strings. */
typedef struct {
    char *d;
    size_t n, cap;
} sbuf;

static bool sb_put(sbuf *b, const char *src, size_t k)
{
    if (b->n + k + 1 > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 32;
        while (cap < b->n + k + 1)
            cap *= 2;
        char *d = realloc(b->d, cap);
        if (!d)
            return false;
        b->d = d;
        b->cap = cap;
    }
    memcpy(b->d + b->n, src, k);
    b->n += k;
    b->d[b->n] = 0;
    return true;
}

static size_t utf8_encode(uint32_t cp, char out[4])
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xc0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xe0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        out[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    out[0] = (char)(0xf0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    out[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/* Length of a valid UTF-8 sequence at s (max n bytes), 0 if invalid. */
static size_t utf8_valid(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    size_t len;
    uint32_t cp, min;
    if (c < 0x80)
        return 1;
    if ((c & 0xe0) == 0xc0) {
        len = 2, cp = c & 0x1f, min = 0x80;
    } else if ((c & 0xf0) == 0xe0) {
        len = 3, cp = c & 0x0f, min = 0x800;
    } else if ((c & 0xf8) == 0xf0) {
        len = 4, cp = c & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if (len > n)
        return 0;
    for (size_t k = 1; k < len; k++) {
        if ((s[k] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[k] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

static int hex4(jparser *p, uint32_t *out)
{
    if (p->pos + 4 > p->n) {
        jfail(p, "truncated \\u escape");
        return -1;
    }
    uint32_t v = 0;
    for (int k = 0; k < 4; k++) {
        char c = p->s[p->pos++];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (uint32_t)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (uint32_t)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (uint32_t)(c - 'A' + 10);
        else {
            jfail(p, "bad hex digit in \\u escape");
            return -1;
        }
    }
    *out = v;
    return 0;
}

/* Parses a string starting at the opening quote into a new buffer. */
static char *parse_string(jparser *p, size_t *len)
{
    sbuf b = {0};
    p->pos++; /* opening quote */
    if (!sb_put(&b, "", 0))
        goto oom;
    for (;;) {
        if (p->pos >= p->n) {
            jfail(p, "unterminated string");
            goto fail;
        }
        unsigned char c = (unsigned char)p->s[p->pos];
        if (c == '"') {
            p->pos++;
            break;
        }
        if (c < 0x20) {
            jfail(p, "control character in string");
            goto fail;
        }
        if (c == '\\') {
            if (p->pos + 1 >= p->n) {
                jfail(p, "truncated escape");
                goto fail;
            }
            char e = p->s[p->pos + 1];
            p->pos += 2;
            char ch;
            switch (e) {
            case '"': ch = '"'; break;
            case '\\': ch = '\\'; break;
            case '/': ch = '/'; break;
            case 'b': ch = '\b'; break;
            case 'f': ch = '\f'; break;
            case 'n': ch = '\n'; break;
            case 'r': ch = '\r'; break;
            case 't': ch = '\t'; break;
            case 'u': {
                uint32_t cp, lo;
                if (hex4(p, &cp))
                    goto fail;
                if (cp >= 0xdc00 && cp <= 0xdfff) {
                    jfail(p, "lone low surrogate");
                    goto fail;
                }
                if (cp >= 0xd800 && cp <= 0xdbff) {
                    if (p->pos + 2 > p->n || p->s[p->pos] != '\\' || p->s[p->pos + 1] != 'u') {
                        jfail(p, "high surrogate without low surrogate");
                        goto fail;
                    }
                    p->pos += 2;
                    if (hex4(p, &lo))
                        goto fail;
                    if (lo < 0xdc00 || lo > 0xdfff) {
                        jfail(p, "bad low surrogate");
                        goto fail;
                    }
                    cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                }
                char u[4];
                if (!sb_put(&b, u, utf8_encode(cp, u)))
                    goto oom;
                continue;
            }
            default:
                jfail(p, "unknown escape");
                goto fail;
            }
            if (!sb_put(&b, &ch, 1))
                goto oom;
            continue;
        }
        size_t k = utf8_valid((const unsigned char *)p->s + p->pos, p->n - p->pos);
        if (!k) {
            jfail(p, "invalid UTF-8 in string");
            goto fail;
        }
        if (!sb_put(&b, p->s + p->pos, k))
            goto oom;
        p->pos += k;
    }
    *len = b.n;
    return b.d;
oom:
    jfail(p, "out of memory");
fail:
    free(b.d);
    return NULL;
}

static bool parse_number(jparser *p, json_value *v)
{
    size_t start = p->pos;
    bool is_int = true;
    if (p->pos < p->n && p->s[p->pos] == '-')
        p->pos++;
    if (p->pos >= p->n) {
        jfail(p, "truncated number");
        return false;
    }
    if (p->s[p->pos] == '0') {
        p->pos++;
    } else if (p->s[p->pos] >= '1' && p->s[p->pos] <= '9') {
        while (p->pos < p->n && p->s[p->pos] >= '0' && p->s[p->pos] <= '9')
            p->pos++;
    } else {
        jfail(p, "bad number");
        return false;
    }
    if (p->pos < p->n && p->s[p->pos] == '.') {
        is_int = false;
        p->pos++;
        size_t d = p->pos;
        while (p->pos < p->n && p->s[p->pos] >= '0' && p->s[p->pos] <= '9')
            p->pos++;
        if (d == p->pos) {
            jfail(p, "digits expected after '.'");
            return false;
        }
    }
    if (p->pos < p->n && (p->s[p->pos] == 'e' || p->s[p->pos] == 'E')) {
        is_int = false;
        p->pos++;
        if (p->pos < p->n && (p->s[p->pos] == '+' || p->s[p->pos] == '-'))
            p->pos++;
        size_t d = p->pos;
        while (p->pos < p->n && p->s[p->pos] >= '0' && p->s[p->pos] <= '9')
            p->pos++;
        if (d == p->pos) {
            jfail(p, "digits expected in exponent");
            return false;
        }
    }
    char tmp[64];
    size_t len = p->pos - start;
    if (len >= sizeof tmp) {
        /* Very long literals: parse as double only. */
        char *big = malloc(len + 1);
        if (!big) {
            jfail(p, "out of memory");
            return false;
        }
        memcpy(big, p->s + start, len);
        big[len] = 0;
        v->num = strtod(big, NULL);
        free(big);
        is_int = false;
    } else {
        memcpy(tmp, p->s + start, len);
        tmp[len] = 0;
        v->num = strtod(tmp, NULL);
        if (is_int) {
            errno = 0;
            long long ll = strtoll(tmp, NULL, 10);
            if (errno == ERANGE)
                is_int = false;
            else
                v->i = ll;
        }
    }
    if (!isfinite(v->num)) {
        jfail(p, "number out of range");
        return false;
    }
    v->is_int = is_int;
    if (!is_int)
        v->i = (int64_t)0;
    return true;
}

static bool push_item(json_value *v, json_value *item, char *key, size_t *cap)
{
    if (v->n == *cap) {
        size_t nc = *cap ? *cap * 2 : 8;
        json_value **ni = realloc(v->items, nc * sizeof *ni);
        if (!ni)
            return false;
        v->items = ni;
        if (v->kind == JSON_OBJECT) {
            char **nk = realloc(v->keys, nc * sizeof *nk);
            if (!nk)
                return false;
            v->keys = nk;
        }
        *cap = nc;
    }
    v->items[v->n] = item;
    if (v->kind == JSON_OBJECT)
        v->keys[v->n] = key;
    v->n++;
    return true;
}

static bool match_lit(jparser *p, const char *lit)
{
    size_t k = strlen(lit);
    if (p->pos + k > p->n || memcmp(p->s + p->pos, lit, k) != 0)
        return false;
    p->pos += k;
    return true;
}

static json_value *parse_value(jparser *p, int depth)
{
    skip_ws(p);
    if (p->pos >= p->n) {
        jfail(p, "unexpected end of input");
        return NULL;
    }
    if (depth > AG_MAX_JSON_DEPTH) {
        jfail(p, "nesting too deep");
        return NULL;
    }
    char c = p->s[p->pos];
    json_value *v = NULL;
    if (c == '{' || c == '[') {
        bool obj = c == '{';
        char close = obj ? '}' : ']';
        v = new_value(p, obj ? JSON_OBJECT : JSON_ARRAY);
        if (!v) {
            jfail(p, "out of memory");
            return NULL;
        }
        size_t cap = 0;
        p->pos++;
        skip_ws(p);
        if (p->pos < p->n && p->s[p->pos] == close) {
            p->pos++;
            return v;
        }
        for (;;) {
            char *key = NULL;
            if (obj) {
                skip_ws(p);
                if (p->pos >= p->n || p->s[p->pos] != '"') {
                    jfail(p, "object key expected");
                    goto fail;
                }
                size_t kl;
                key = parse_string(p, &kl);
                if (!key)
                    goto fail;
                skip_ws(p);
                if (p->pos >= p->n || p->s[p->pos] != ':') {
                    free(key);
                    jfail(p, "':' expected");
                    goto fail;
                }
                p->pos++;
            }
            json_value *item = parse_value(p, depth + 1);
            if (!item) {
                free(key);
                goto fail;
            }
            if (!push_item(v, item, key, &cap)) {
                free(key);
                json_free(item);
                jfail(p, "out of memory");
                goto fail;
            }
            skip_ws(p);
            if (p->pos < p->n && p->s[p->pos] == ',') {
                p->pos++;
                continue;
            }
            if (p->pos < p->n && p->s[p->pos] == close) {
                p->pos++;
                return v;
            }
            jfail(p, obj ? "',' or '}' expected" : "',' or ']' expected");
            goto fail;
        }
    }
    if (c == '"') {
        v = new_value(p, JSON_STRING);
        if (!v) {
            jfail(p, "out of memory");
            return NULL;
        }
        v->str = parse_string(p, &v->len);
        if (!v->str)
            goto fail;
        return v;
    }
    if (c == '-' || (c >= '0' && c <= '9')) {
        v = new_value(p, JSON_NUMBER);
        if (!v) {
            jfail(p, "out of memory");
            return NULL;
        }
        if (!parse_number(p, v))
            goto fail;
        return v;
    }
    if (match_lit(p, "true") || match_lit(p, "false")) {
        v = new_value(p, JSON_BOOL);
        if (v)
            v->b = p->s[p->pos - 1] == 'e' && p->s[p->pos - 2] == 'u';
        return v;
    }
    if (match_lit(p, "null"))
        return new_value(p, JSON_NULL);
    jfail(p, "unexpected character");
    return NULL;
fail:
    json_free(v);
    return NULL;
}

json_value *json_parse(const char *text, size_t n, const char *label)
{
    jparser p = {text, n, 0, label ? label : "json", false, 0};
    /* A UTF-8 byte order mark is tolerated (some editors write one). */
    if (n >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0)
        p.pos = 3;
    json_value *v = parse_value(&p, 0);
    if (!v) {
        if (!p.failed)
            jfail(&p, "out of memory");
        return NULL;
    }
    skip_ws(&p);
    if (p.pos != p.n) {
        jfail(&p, "trailing characters after the value");
        json_free(v);
        return NULL;
    }
    return v;
}

char *read_whole_file(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        ag_set_error("%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fileno(f), &st) == 0 && S_ISREG(st.st_mode) && (uint64_t)st.st_size > AG_MAX_AUX_FILE_BYTES) {
        fclose(f);
        ag_set_error("%s: %lld bytes, more than the %zu accepted (a config or tokenizer file is far smaller)", path,
                     (long long)st.st_size, AG_MAX_AUX_FILE_BYTES);
        return NULL;
    }
    char *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n + 65536 + 1 > cap) {
            size_t nc = cap ? cap * 2 : 65536 * 2;
            char *nb = realloc(buf, nc);
            if (!nb) {
                free(buf);
                fclose(f);
                ag_set_error("%s: out of memory", path);
                return NULL;
            }
            buf = nb;
            cap = nc;
        }
        size_t r = fread(buf + n, 1, 65536, f);
        n += r;
        if (r < 65536)
            break;
        if (n > AG_MAX_AUX_FILE_BYTES) {
            free(buf);
            fclose(f);
            ag_set_error("%s: more than %zu bytes: refused (a config or tokenizer file is far smaller)", path,
                         AG_MAX_AUX_FILE_BYTES);
            return NULL;
        }
    }
    if (ferror(f)) {
        free(buf);
        fclose(f);
        ag_set_error("%s: read error", path);
        return NULL;
    }
    fclose(f);
    buf[n] = 0;
    *size = n;
    return buf;
}

json_value *json_parse_file(const char *path)
{
    size_t n;
    char *text = read_whole_file(path, &n);
    if (!text)
        return NULL;
    json_value *v = json_parse(text, n, path);
    free(text);
    return v;
}

void json_free(json_value *v)
{
    if (!v)
        return;
    for (size_t k = 0; k < v->n; k++) {
        json_free(v->items[k]);
        if (v->keys)
            free(v->keys[k]);
    }
    free(v->items);
    free(v->keys);
    free(v->str);
    free(v);
}

const json_value *json_get(const json_value *v, const char *key)
{
    if (!v || v->kind != JSON_OBJECT)
        return NULL;
    for (size_t k = 0; k < v->n; k++)
        if (strcmp(v->keys[k], key) == 0)
            return v->items[k];
    return NULL;
}

bool json_get_int(const json_value *v, const char *key, int64_t *out)
{
    const json_value *m = json_get(v, key);
    if (!m || m->kind != JSON_NUMBER || !m->is_int)
        return false;
    *out = m->i;
    return true;
}

bool json_get_num(const json_value *v, const char *key, double *out)
{
    const json_value *m = json_get(v, key);
    if (!m || m->kind != JSON_NUMBER)
        return false;
    *out = m->num;
    return true;
}

bool json_get_bool(const json_value *v, const char *key, bool *out)
{
    const json_value *m = json_get(v, key);
    if (!m || m->kind != JSON_BOOL)
        return false;
    *out = m->b;
    return true;
}

const char *json_get_str(const json_value *v, const char *key)
{
    const json_value *m = json_get(v, key);
    return m && m->kind == JSON_STRING ? m->str : NULL;
}
