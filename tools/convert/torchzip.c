/* PyTorch zip checkpoints (torch.save since 1.6): <prefix>/data.pkl + <prefix>/data/<key>.
 * data.pkl is run through a RESTRICTED unpickler: only the opcodes torch.save emits and only
 * the globals a state dict needs (OrderedDict, _rebuild_tensor_v2, _rebuild_parameter, the typed
 * storage classes). Any other global is refused by name before anything is built: no code runs. */
#include "ckpt.h"
#include "zip.h"

#include "anygpt/error.h"
#include "anygpt/limits.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum { V_NONE, V_BOOL, V_INT, V_FLOAT, V_STR, V_TUPLE, V_LIST, V_DICT, V_GLOBAL, V_STORAGE, V_TENSOR } vkind;
typedef enum { G_ORDEREDDICT, G_REBUILD_TENSOR_V2, G_REBUILD_PARAMETER, G_REBUILD_PARAMETER_STATE, G_STORAGE } gkind;

typedef struct pval pval;
struct pval {
    vkind kind;
    pval *next_alloc; /* every value is on one list, freed at the end */
    int64_t i;        /* V_INT, V_BOOL */
    double f;
    char *s;          /* V_STR */
    size_t slen;
    pval **items;     /* tuple/list items; dict: keys at 2k, values at 2k+1 */
    size_t n, cap;
    gkind g;          /* V_GLOBAL */
    ckpt_dtype dtype; /* V_GLOBAL storage class, V_STORAGE */
    const uint8_t *data; /* V_STORAGE: entry bytes */
    uint64_t nbytes;
    ckpt_tensor *t;   /* V_TENSOR (name unset); separate, so the many other values stay small */
};

typedef struct {
    const char *label;
    const uint8_t *p, *end, *start;
    pval *allocs;
    pval **stack;
    size_t sp, scap;
    size_t *marks;
    size_t n_marks, mcap;
    pval **memo;
    size_t memo_cap, memo_len; /* memo_len: entries set (MEMOIZE's index, as len(memo) in Python) */
    size_t n_values;
    const zip_archive *zip;
    const char *prefix;
} unpickler;

static pval *vnew(unpickler *u, vkind k)
{
    if (u->n_values >= AG_MAX_PICKLE_VALUES) {
        ag_set_error("%s: pickle builds more than %d objects: refused (a state dict needs a few per tensor)",
                     u->label, AG_MAX_PICKLE_VALUES);
        return NULL;
    }
    u->n_values++;
    pval *v = calloc(1, sizeof *v);
    if (!v) {
        ag_set_error("%s: out of memory", u->label);
        return NULL;
    }
    v->kind = k;
    v->next_alloc = u->allocs;
    u->allocs = v;
    return v;
}

static void vfree_all(unpickler *u)
{
    while (u->allocs) {
        pval *n = u->allocs->next_alloc;
        free(u->allocs->s);
        free(u->allocs->items);
        free(u->allocs->t);
        free(u->allocs);
        u->allocs = n;
    }
}

static int vappend(unpickler *u, pval *c, pval *item)
{
    if (c->n == c->cap) {
        size_t nc = c->cap ? c->cap * 2 : 8;
        pval **ni = realloc(c->items, nc * sizeof *ni);
        if (!ni) {
            ag_set_error("%s: out of memory", u->label);
            return -1;
        }
        c->items = ni;
        c->cap = nc;
    }
    c->items[c->n++] = item;
    return 0;
}

static int push(unpickler *u, pval *v)
{
    if (!v)
        return -1;
    if (u->sp == u->scap) {
        size_t nc = u->scap ? u->scap * 2 : 64;
        pval **ns = realloc(u->stack, nc * sizeof *ns);
        if (!ns) {
            ag_set_error("%s: out of memory", u->label);
            return -1;
        }
        u->stack = ns;
        u->scap = nc;
    }
    u->stack[u->sp++] = v;
    return 0;
}

static size_t floor_sp(const unpickler *u)
{
    return u->n_marks ? u->marks[u->n_marks - 1] : 0;
}

static pval *pop(unpickler *u)
{
    if (u->sp <= floor_sp(u)) {
        ag_set_error("%s: pickle stack underflow at byte %td", u->label, u->p - u->start);
        return NULL;
    }
    return u->stack[--u->sp];
}

static pval *top(unpickler *u)
{
    if (u->sp <= floor_sp(u)) {
        ag_set_error("%s: pickle stack underflow at byte %td", u->label, u->p - u->start);
        return NULL;
    }
    return u->stack[u->sp - 1];
}

/* Items above the last mark; the mark is removed. */
static int pop_mark(unpickler *u, size_t *first)
{
    if (!u->n_marks) {
        ag_set_error("%s: pickle has no MARK for a collection opcode", u->label);
        return -1;
    }
    *first = u->marks[--u->n_marks];
    return 0;
}

static int need(unpickler *u, size_t n)
{
    if ((size_t)(u->end - u->p) < n) {
        ag_set_error("%s: data.pkl truncated at byte %td", u->label, u->p - u->start);
        return -1;
    }
    return 0;
}

static uint64_t rdle(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int k = n - 1; k >= 0; k--)
        v = v << 8 | p[k];
    return v;
}

static pval *mkstr(unpickler *u, const uint8_t *s, size_t n)
{
    pval *v = vnew(u, V_STR);
    if (!v)
        return NULL;
    v->s = malloc(n + 1);
    if (!v->s) {
        ag_set_error("%s: out of memory", u->label);
        return NULL;
    }
    memcpy(v->s, s, n);
    v->s[n] = 0;
    v->slen = n;
    return v;
}

static pval *mkint(unpickler *u, int64_t i)
{
    pval *v = vnew(u, V_INT);
    if (v)
        v->i = i;
    return v;
}

static int memo_put(unpickler *u, uint64_t idx, pval *v)
{
    if (idx >= AG_MAX_PICKLE_VALUES) {
        ag_set_error("%s: pickle memo index %llu too large (at most %d objects are accepted)", u->label,
                     (unsigned long long)idx, AG_MAX_PICKLE_VALUES);
        return -1;
    }
    if (idx >= u->memo_cap) {
        size_t nc = u->memo_cap ? u->memo_cap : 64;
        while (nc <= idx)
            nc *= 2;
        pval **nm = realloc(u->memo, nc * sizeof *nm);
        if (!nm) {
            ag_set_error("%s: out of memory", u->label);
            return -1;
        }
        memset(nm + u->memo_cap, 0, (nc - u->memo_cap) * sizeof *nm);
        u->memo = nm;
        u->memo_cap = nc;
    }
    if (!u->memo[idx])
        u->memo_len++;
    u->memo[idx] = v;
    return 0;
}

static pval *memo_get(unpickler *u, uint64_t idx)
{
    if (idx >= u->memo_cap || !u->memo[idx]) {
        ag_set_error("%s: pickle refers to unknown memo entry %llu", u->label, (unsigned long long)idx);
        return NULL;
    }
    return u->memo[idx];
}

static const struct { const char *name; ckpt_dtype d; } storage_classes[] = {
    {"FloatStorage", CKPT_F32}, {"HalfStorage", CKPT_F16}, {"BFloat16Storage", CKPT_BF16},
    {"DoubleStorage", CKPT_F64}, {"LongStorage", CKPT_I64}, {"IntStorage", CKPT_I32},
    {"CharStorage", CKPT_I8}, {"ByteStorage", CKPT_U8}, {"BoolStorage", CKPT_BOOL}};

/* The whitelist. Everything else is refused by its name. */
static pval *find_global(unpickler *u, const char *mod, const char *name)
{
    pval *v = NULL;
    if (strcmp(mod, "collections") == 0 && strcmp(name, "OrderedDict") == 0) {
        v = vnew(u, V_GLOBAL);
        if (v)
            v->g = G_ORDEREDDICT;
        return v;
    }
    if (strcmp(mod, "torch._utils") == 0) {
        static const struct { const char *n; gkind g; } fns[] = {
            {"_rebuild_tensor_v2", G_REBUILD_TENSOR_V2},
            {"_rebuild_parameter", G_REBUILD_PARAMETER},
            {"_rebuild_parameter_with_state", G_REBUILD_PARAMETER_STATE}};
        for (size_t k = 0; k < sizeof fns / sizeof fns[0]; k++)
            if (strcmp(name, fns[k].n) == 0) {
                v = vnew(u, V_GLOBAL);
                if (v)
                    v->g = fns[k].g;
                return v;
            }
    }
    if (strcmp(mod, "torch") == 0) {
        for (size_t k = 0; k < sizeof storage_classes / sizeof storage_classes[0]; k++)
            if (strcmp(name, storage_classes[k].name) == 0) {
                v = vnew(u, V_GLOBAL);
                if (v) {
                    v->g = G_STORAGE;
                    v->dtype = storage_classes[k].d;
                }
                return v;
            }
    }
    ag_set_error("%s: pickle refers to forbidden global '%s.%s': refused (only tensors and state dicts can be "
                 "loaded; no code is ever run)",
                 u->label, mod, name);
    return NULL;
}

static int as_int(unpickler *u, const pval *v, int64_t *out, const char *what)
{
    if (!v || (v->kind != V_INT && v->kind != V_BOOL)) {
        ag_set_error("%s: pickle: %s must be an integer", u->label, what);
        return -1;
    }
    *out = v->i;
    return 0;
}

/* persistent_load(('storage', StorageClass, key, location, numel)) -> the data/<key> entry. */
static pval *persistent_load(unpickler *u, pval *pid)
{
    if (pid->kind != V_TUPLE || pid->n != 5 || pid->items[0]->kind != V_STR ||
        strcmp(pid->items[0]->s, "storage") != 0 || pid->items[1]->kind != V_GLOBAL ||
        pid->items[1]->g != G_STORAGE || pid->items[2]->kind != V_STR) {
        ag_set_error("%s: pickle: unsupported persistent id (expected ('storage', type, key, location, numel))",
                     u->label);
        return NULL;
    }
    int64_t numel;
    if (as_int(u, pid->items[4], &numel, "storage numel") || numel < 0)
        return NULL;
    char entry[512];
    if (snprintf(entry, sizeof entry, "%s/data/%s", u->prefix, pid->items[2]->s) >= (int)sizeof entry) {
        ag_set_error("%s: storage key too long", u->label);
        return NULL;
    }
    uint64_t size;
    const uint8_t *data = zip_find_data(u->zip, entry, &size, u->label);
    if (!data)
        return NULL;
    pval *v = vnew(u, V_STORAGE);
    if (!v)
        return NULL;
    v->dtype = pid->items[1]->dtype;
    uint64_t need_bytes = (uint64_t)numel * ckpt_dtype_size(v->dtype);
    if ((uint64_t)numel > UINT64_MAX / 8 || need_bytes > size) {
        ag_set_error("%s: storage '%s' holds %llu bytes but %lld elements of %s are declared (truncated?)",
                     u->label, entry, (unsigned long long)size, (long long)numel, ckpt_dtype_name(v->dtype));
        return NULL;
    }
    v->data = data;
    v->nbytes = need_bytes;
    return v;
}

static int int_tuple(unpickler *u, const pval *v, int64_t *out, int *n, const char *what)
{
    if (v->kind != V_TUPLE || v->n > CKPT_MAX_DIMS) {
        ag_set_error("%s: pickle: tensor %s must be a tuple of at most %d ints", u->label, what, CKPT_MAX_DIMS);
        return -1;
    }
    for (size_t k = 0; k < v->n; k++)
        if (as_int(u, v->items[k], &out[k], what))
            return -1;
    *n = (int)v->n;
    return 0;
}

static pval *reduce(unpickler *u, pval *fn, pval *args)
{
    if (fn->kind != V_GLOBAL || args->kind != V_TUPLE) {
        ag_set_error("%s: pickle: REDUCE on something that is not an allowed callable", u->label);
        return NULL;
    }
    switch (fn->g) {
    case G_ORDEREDDICT:
        if (args->n != 0) {
            ag_set_error("%s: pickle: OrderedDict with constructor arguments is not supported", u->label);
            return NULL;
        }
        return vnew(u, V_DICT);
    case G_REBUILD_TENSOR_V2: {
        /* (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata]) */
        if (args->n < 4 || args->items[0]->kind != V_STORAGE) {
            ag_set_error("%s: pickle: bad _rebuild_tensor_v2 arguments", u->label);
            return NULL;
        }
        pval *st = args->items[0];
        pval *v = vnew(u, V_TENSOR);
        if (!v)
            return NULL;
        if (!(v->t = calloc(1, sizeof *v->t))) {
            ag_set_error("%s: out of memory", u->label);
            return NULL;
        }
        int64_t off;
        int nd_stride;
        if (as_int(u, args->items[1], &off, "storage offset") ||
            int_tuple(u, args->items[2], v->t->shape, &v->t->n_dims, "size") ||
            int_tuple(u, args->items[3], v->t->strides, &nd_stride, "stride"))
            return NULL;
        if (nd_stride != v->t->n_dims || off < 0 || (uint64_t)off > st->nbytes / ckpt_dtype_size(st->dtype)) {
            ag_set_error("%s: pickle: tensor stride rank or storage offset is invalid", u->label);
            return NULL;
        }
        /* Not more elements than the storage holds (an expanded, stride-0 view is no weight and
         * would make reading it out allocate more than the file has). */
        int64_t numel = 1;
        for (int d = 0; d < v->t->n_dims; d++)
            if (v->t->shape[d] < 0 || __builtin_mul_overflow(numel, v->t->shape[d], &numel))
                numel = INT64_MAX;
        if ((uint64_t)numel > st->nbytes / ckpt_dtype_size(st->dtype)) {
            ag_set_error("%s: pickle: a tensor of %lld elements views a storage of %llu: refused (negative, "
                         "overflowing or expanded shape)",
                         u->label, (long long)numel, (unsigned long long)(st->nbytes / ckpt_dtype_size(st->dtype)));
            return NULL;
        }
        v->t->dtype = st->dtype;
        v->t->data = st->data + (size_t)off * ckpt_dtype_size(st->dtype);
        v->t->file = u->label;
        v->t->name = (char *)"(tensor)";
        if (ckpt_check_extent(v->t, st->data, (size_t)st->nbytes, "storage"))
            return NULL;
        return v;
    }
    case G_REBUILD_PARAMETER:
    case G_REBUILD_PARAMETER_STATE:
        if (args->n < 1 || args->items[0]->kind != V_TENSOR) {
            ag_set_error("%s: pickle: bad _rebuild_parameter arguments", u->label);
            return NULL;
        }
        return args->items[0];
    case G_STORAGE:
    default:
        ag_set_error("%s: pickle: calling a storage class is not supported", u->label);
        return NULL;
    }
}

static int setitem(unpickler *u, pval *d, pval *k, pval *v)
{
    if (d->kind != V_DICT) {
        ag_set_error("%s: pickle: SETITEM(S) on a non-dict", u->label);
        return -1;
    }
    if (vappend(u, d, k) || vappend(u, d, v))
        return -1;
    return 0;
}

static pval *make_tuple(unpickler *u, size_t first)
{
    pval *t = vnew(u, V_TUPLE);
    if (!t)
        return NULL;
    for (size_t k = first; k < u->sp; k++)
        if (vappend(u, t, u->stack[k]))
            return NULL;
    u->sp = first;
    return t;
}

static pval *run(unpickler *u)
{
    while (u->p < u->end) {
        uint8_t op = *u->p++;
        pval *a, *b, *c;
        size_t first;
        switch (op) {
        case 0x80: /* PROTO */
            if (need(u, 1))
                return NULL;
            if (*u->p > 5) {
                ag_set_error("%s: pickle protocol %u not supported", u->label, *u->p);
                return NULL;
            }
            u->p++;
            break;
        case 0x95: /* FRAME */
            if (need(u, 8))
                return NULL;
            u->p += 8;
            break;
        case '}': if (push(u, vnew(u, V_DICT))) return NULL; break;
        case ']': if (push(u, vnew(u, V_LIST))) return NULL; break;
        case ')': if (push(u, vnew(u, V_TUPLE))) return NULL; break;
        case 'N': if (push(u, vnew(u, V_NONE))) return NULL; break;
        case 0x88: case 0x89:
            a = vnew(u, V_BOOL);
            if (!a)
                return NULL;
            a->i = op == 0x88;
            if (push(u, a))
                return NULL;
            break;
        case '(': /* MARK */
            if (u->n_marks == u->mcap) {
                size_t nc = u->mcap ? u->mcap * 2 : 16;
                size_t *nm = realloc(u->marks, nc * sizeof *nm);
                if (!nm) {
                    ag_set_error("%s: out of memory", u->label);
                    return NULL;
                }
                u->marks = nm;
                u->mcap = nc;
            }
            u->marks[u->n_marks++] = u->sp;
            break;
        case 't':
            if (pop_mark(u, &first) || push(u, make_tuple(u, first)))
                return NULL;
            break;
        case 'l':
            if (pop_mark(u, &first) || !(a = make_tuple(u, first)))
                return NULL;
            a->kind = V_LIST;
            if (push(u, a))
                return NULL;
            break;
        case 'd':
            if (pop_mark(u, &first) || !(a = make_tuple(u, first)))
                return NULL;
            if (a->n % 2) {
                ag_set_error("%s: pickle: DICT with an odd number of items", u->label);
                return NULL;
            }
            a->kind = V_DICT;
            if (push(u, a))
                return NULL;
            break;
        case 0x85: case 0x86: case 0x87: { /* TUPLE1..3 */
            size_t n = (size_t)(op - 0x84);
            if (u->sp < floor_sp(u) + n) {
                ag_set_error("%s: pickle stack underflow", u->label);
                return NULL;
            }
            if (push(u, make_tuple(u, u->sp - n)))
                return NULL;
            break;
        }
        case 'a':
            if (!(b = pop(u)) || !(a = top(u)))
                return NULL;
            if (a->kind != V_LIST) {
                ag_set_error("%s: pickle: APPEND to a non-list", u->label);
                return NULL;
            }
            if (vappend(u, a, b))
                return NULL;
            break;
        case 'e':
            if (pop_mark(u, &first))
                return NULL;
            if (first == 0 || u->stack[first - 1]->kind != V_LIST) {
                ag_set_error("%s: pickle: APPENDS to a non-list", u->label);
                return NULL;
            }
            for (size_t k = first; k < u->sp; k++)
                if (vappend(u, u->stack[first - 1], u->stack[k]))
                    return NULL;
            u->sp = first;
            break;
        case 's':
            if (!(c = pop(u)) || !(b = pop(u)) || !(a = top(u)) || setitem(u, a, b, c))
                return NULL;
            break;
        case 'u':
            if (pop_mark(u, &first))
                return NULL;
            if (first == 0 || (u->sp - first) % 2) {
                ag_set_error("%s: pickle: bad SETITEMS", u->label);
                return NULL;
            }
            for (size_t k = first; k < u->sp; k += 2)
                if (setitem(u, u->stack[first - 1], u->stack[k], u->stack[k + 1]))
                    return NULL;
            u->sp = first;
            break;
        case 'q': case 'r': case 0x94: { /* BINPUT, LONG_BINPUT, MEMOIZE */
            uint64_t idx;
            if (op == 0x94) {
                idx = u->memo_len;
            } else {
                int w = op == 'q' ? 1 : 4;
                if (need(u, (size_t)w))
                    return NULL;
                idx = rdle(u->p, w);
                u->p += w;
            }
            if (!(a = top(u)) || memo_put(u, idx, a))
                return NULL;
            break;
        }
        case 'h': case 'j': {
            int w = op == 'h' ? 1 : 4;
            if (need(u, (size_t)w))
                return NULL;
            uint64_t idx = rdle(u->p, w);
            u->p += w;
            if (push(u, memo_get(u, idx)))
                return NULL;
            break;
        }
        case 'X': case 0x8c: case 0x8d: case 'T': case 'U': case 'B': case 'C': { /* strings / bytes */
            int w = (op == 0x8c || op == 'U' || op == 'C') ? 1 : op == 0x8d ? 8 : 4;
            if (need(u, (size_t)w))
                return NULL;
            uint64_t n = rdle(u->p, w);
            u->p += w;
            if (n > (uint64_t)(u->end - u->p)) {
                ag_set_error("%s: data.pkl truncated inside a string", u->label);
                return NULL;
            }
            if (push(u, mkstr(u, u->p, (size_t)n)))
                return NULL;
            u->p += n;
            break;
        }
        case 'K': case 'M': case 'J': {
            int w = op == 'K' ? 1 : op == 'M' ? 2 : 4;
            if (need(u, (size_t)w))
                return NULL;
            int64_t v = (int64_t)rdle(u->p, w);
            if (op == 'J')
                v = (int32_t)(uint32_t)v;
            u->p += w;
            if (push(u, mkint(u, v)))
                return NULL;
            break;
        }
        case 0x8a: { /* LONG1 */
            if (need(u, 1))
                return NULL;
            int n = *u->p++;
            if (n > 8 || need(u, (size_t)n)) {
                if (n > 8)
                    ag_set_error("%s: pickle integer wider than 64 bits", u->label);
                return NULL;
            }
            uint64_t v = n ? rdle(u->p, n) : 0;
            if (n && n < 8 && (u->p[n - 1] & 0x80))
                v |= ~(uint64_t)0 << (8 * n); /* sign-extend */
            u->p += n;
            if (push(u, mkint(u, (int64_t)v)))
                return NULL;
            break;
        }
        case 'G': {
            if (need(u, 8))
                return NULL;
            uint64_t bits = 0;
            for (int k = 0; k < 8; k++)
                bits = bits << 8 | u->p[k];
            u->p += 8;
            a = vnew(u, V_FLOAT);
            if (!a)
                return NULL;
            memcpy(&a->f, &bits, 8);
            if (push(u, a))
                return NULL;
            break;
        }
        case 'c': { /* GLOBAL "module\nname\n" */
            const uint8_t *nl1 = memchr(u->p, '\n', (size_t)(u->end - u->p));
            const uint8_t *nl2 = nl1 ? memchr(nl1 + 1, '\n', (size_t)(u->end - nl1 - 1)) : NULL;
            if (!nl2 || nl1 - u->p > 200 || nl2 - nl1 > 200) {
                ag_set_error("%s: pickle: bad GLOBAL opcode", u->label);
                return NULL;
            }
            char mod[256], name[256];
            memcpy(mod, u->p, (size_t)(nl1 - u->p));
            mod[nl1 - u->p] = 0;
            memcpy(name, nl1 + 1, (size_t)(nl2 - nl1 - 1));
            name[nl2 - nl1 - 1] = 0;
            u->p = nl2 + 1;
            if (push(u, find_global(u, mod, name)))
                return NULL;
            break;
        }
        case 0x93: /* STACK_GLOBAL */
            if (!(b = pop(u)) || !(a = pop(u)))
                return NULL;
            if (a->kind != V_STR || b->kind != V_STR) {
                ag_set_error("%s: pickle: STACK_GLOBAL needs two strings", u->label);
                return NULL;
            }
            if (push(u, find_global(u, a->s, b->s)))
                return NULL;
            break;
        case 'Q': /* BINPERSID */
            if (!(a = pop(u)) || push(u, persistent_load(u, a)))
                return NULL;
            break;
        case 'R':
            if (!(b = pop(u)) || !(a = pop(u)) || push(u, reduce(u, a, b)))
                return NULL;
            break;
        case 'b': /* BUILD: state of an OrderedDict (its _metadata) or a parameter: ignored */
            if (!(b = pop(u)) || !(a = top(u)))
                return NULL;
            if (a->kind != V_DICT && a->kind != V_TENSOR) {
                ag_set_error("%s: pickle: BUILD on an unsupported object", u->label);
                return NULL;
            }
            break;
        case '.': /* STOP */
            if (u->sp != 1 || u->n_marks) {
                ag_set_error("%s: pickle ends with %zu values on the stack", u->label, u->sp);
                return NULL;
            }
            return u->stack[0];
        default:
            ag_set_error("%s: pickle opcode 0x%02x at byte %td is not supported by the restricted unpickler",
                         u->label, op, u->p - 1 - u->start);
            return NULL;
        }
    }
    ag_set_error("%s: data.pkl ends without STOP (truncated?)", u->label);
    return NULL;
}

/* Adds tensors of a dict (recursing into nested dicts, names joined with '.'). *budget counts
 * the entries visited: the memo lets one dict appear under many keys, so a few bytes could
 * otherwise name more tensors than memory holds. */
static int add_dict(ckpt *c, unpickler *u, const pval *d, const char *prefix, int depth, size_t *budget)
{
    if (depth > AG_MAX_PICKLE_DEPTH) {
        ag_set_error("%s: dicts nested more than %d deep", u->label, AG_MAX_PICKLE_DEPTH);
        return -1;
    }
    for (size_t k = 0; k + 1 < d->n; k += 2) {
        if (++*budget > AG_MAX_CKPT_TENSORS) {
            ag_set_error("%s: more than %d tensors and dict entries: refused", u->label, AG_MAX_CKPT_TENSORS);
            return -1;
        }
        const pval *key = d->items[k], *val = d->items[k + 1];
        char name[1024];
        if (key->kind != V_STR)
            continue; /* e.g. integer keys of optimizer state: not weights */
        if (snprintf(name, sizeof name, "%s%s%s", prefix, *prefix ? "." : "", key->s) >= (int)sizeof name) {
            ag_set_error("%s: tensor name too long", u->label);
            return -1;
        }
        if (val->kind == V_TENSOR) {
            ckpt_tensor t = *val->t;
            t.name = name;
            if (ckpt_add(c, &t))
                return -1;
        } else if (val->kind == V_DICT) {
            if (add_dict(c, u, val, name, depth + 1, budget))
                return -1;
        }
    }
    return 0;
}

static const pval *dict_get(const pval *d, const char *key)
{
    for (size_t k = 0; k + 1 < d->n; k += 2)
        if (d->items[k]->kind == V_STR && strcmp(d->items[k]->s, key) == 0)
            return d->items[k + 1];
    return NULL;
}

int torchzip_load(ckpt *c, const char *path)
{
    const ckpt_map *m = ckpt_map_file(c, path);
    if (!m)
        return -1;
    if (m->size >= 2 && ((const uint8_t *)m->base)[0] == 0x80) {
        ag_set_error("%s: legacy (pre-1.6, non-zip) torch format is not supported; re-save it with torch.save",
                     path);
        return -1;
    }
    if (m->size < 4 || memcmp(m->base, "PK\x03\x04", 4) != 0) {
        ag_set_error("%s: not a PyTorch zip checkpoint (no zip signature; truncated?)", path);
        return -1;
    }
    zip_archive z;
    if (zip_open(&z, m->base, m->size, m->path))
        return -1;
    int rc = -1;
    unpickler u = {0};
    char prefix[512] = "";
    const zip_entry *pkl = NULL;
    for (size_t k = 0; k < z.n && !pkl; k++) {
        const char *slash = strchr(z.e[k].name, '/');
        if (slash && strcmp(slash, "/data.pkl") == 0 && (size_t)(slash - z.e[k].name) < sizeof prefix) {
            pkl = &z.e[k];
            memcpy(prefix, z.e[k].name, (size_t)(slash - z.e[k].name));
            prefix[slash - z.e[k].name] = 0;
        }
    }
    if (!pkl) {
        ag_set_error("%s: zip has no <name>/data.pkl: not a torch.save checkpoint", path);
        goto done;
    }
    char bo_name[600];
    snprintf(bo_name, sizeof bo_name, "%s/byteorder", prefix);
    const zip_entry *bo = zip_find(&z, bo_name);
    if (bo && bo->data && bo->size == 3 && memcmp(bo->data, "big", 3) == 0) {
        ag_set_error("%s: big-endian checkpoint not supported", path);
        goto done;
    }
    uint64_t psize;
    const uint8_t *pdata = zip_find_data(&z, pkl->name, &psize, m->path);
    if (!pdata)
        goto done;
    if (psize > AG_MAX_PICKLE_BYTES) {
        ag_set_error("%s: %s is %llu bytes, more than the %zu accepted", path, pkl->name, (unsigned long long)psize,
                     AG_MAX_PICKLE_BYTES);
        goto done;
    }
    u.label = m->path;
    u.p = u.start = pdata;
    u.end = pdata + psize;
    u.zip = &z;
    u.prefix = prefix;
    const pval *root = run(&u);
    if (!root)
        goto done;
    if (root->kind != V_DICT) {
        ag_set_error("%s: checkpoint's top-level object is not a dict", path);
        goto done;
    }
    /* Training checkpoints wrap the weights: {'state_dict': ...}, {'model': ...}. */
    static const char *const wrappers[] = {"state_dict", "model_state_dict", "model", "module", "generator"};
    for (size_t k = 0; k < sizeof wrappers / sizeof wrappers[0]; k++) {
        const pval *inner = dict_get(root, wrappers[k]);
        if (inner && inner->kind == V_DICT) {
            root = inner;
            break;
        }
    }
    size_t budget = 0;
    rc = add_dict(c, &u, root, "", 0, &budget);
done:
    vfree_all(&u);
    free(u.stack);
    free(u.marks);
    free(u.memo);
    zip_close(&z);
    return rc;
}
