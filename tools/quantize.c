/* anygpt-quantize: rewrite a GGUF file with its weight matrices in Q8_0 or Q4_0.
 *
 *   anygpt-quantize IN.gguf OUT.gguf q8_0|q4_0 [--keep PATTERN]...
 *
 * llama.cpp's convention: 2-D (and higher) F32/F16 tensors named "*weight" whose rows are a
 * multiple of 32 are quantized; 1-D tensors (norms, biases) are stored as F32; everything else
 * (I32 tables, tensors already quantized, tensors matching a --keep glob) is copied unchanged.
 * All KVs are copied; general.file_type and general.quantization_version are set. */
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "anygpt/error.h"
#include "anygpt/gguf.h"
#include "anygpt/quant.h"
#include "anygpt/tensor.h"

/* llama.cpp's llama_ftype values for the two file types we write. */
#define FTYPE_MOSTLY_Q4_0 2
#define FTYPE_MOSTLY_Q8_0 7
#define QUANT_VERSION 2 /* ggml's GGML_QNT_VERSION: the Q4_0/Q8_0 layouts of today */

static void usage(const char *argv0)
{
    fprintf(stderr, "usage: %s IN.gguf OUT.gguf q8_0|q4_0 [--keep PATTERN]...\n"
                    "  --keep PATTERN  leave tensors whose name matches this glob as they are\n",
            argv0);
}

static int ends_with(const char *s, const char *suffix)
{
    const size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

static const char *human(size_t bytes, char *buf, size_t len)
{
    if (bytes >= ((size_t)1 << 20))
        snprintf(buf, len, "%.2f MiB", bytes / 1048576.0);
    else
        snprintf(buf, len, "%.2f KiB", bytes / 1024.0);
    return buf;
}

/* Converts a tensor of nrows rows of ne0 elements from F32/F16 to dst type; NULL on error. */
static void *convert(const void *src, ag_type src_type, ag_type dst_type, int64_t nrows, int64_t ne0, size_t *out_size)
{
    const size_t src_row = ag_row_size(src_type, ne0), dst_row = ag_row_size(dst_type, ne0);
    float *tmp = malloc((size_t)ne0 * sizeof(float));
    char *dst = malloc(dst_row * (size_t)nrows + 1);
    if (!tmp || !dst) {
        free(tmp);
        free(dst);
        ag_set_error("out of memory");
        return NULL;
    }
    for (int64_t r = 0; r < nrows; r++) {
        ag_dequantize_row(src_type, (const char *)src + (size_t)r * src_row, tmp, ne0);
        ag_quantize(dst_type, tmp, dst + (size_t)r * dst_row, 1, ne0);
    }
    free(tmp);
    *out_size = dst_row * (size_t)nrows;
    return dst;
}

int main(int argc, char **argv)
{
    const char *in = NULL, *out = NULL, *tname = NULL;
    const char **keep = calloc((size_t)argc, sizeof *keep);
    int nkeep = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--keep") == 0 && i + 1 < argc)
            keep[nkeep++] = argv[++i];
        else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            usage(argv[0]);
            free(keep);
            return 0;
        } else if (!in)
            in = argv[i];
        else if (!out)
            out = argv[i];
        else if (!tname)
            tname = argv[i];
        else {
            usage(argv[0]);
            free(keep);
            return 2;
        }
    }
    if (!tname) {
        usage(argv[0]);
        free(keep);
        return 2;
    }
    ag_type qtype;
    uint32_t ftype;
    if (strcmp(tname, "q8_0") == 0 || strcmp(tname, "Q8_0") == 0) {
        qtype = AG_TYPE_Q8_0;
        ftype = FTYPE_MOSTLY_Q8_0;
    } else if (strcmp(tname, "q4_0") == 0 || strcmp(tname, "Q4_0") == 0) {
        qtype = AG_TYPE_Q4_0;
        ftype = FTYPE_MOSTLY_Q4_0;
    } else {
        fprintf(stderr, "%s: unknown type '%s' (q8_0 or q4_0)\n", argv[0], tname);
        free(keep);
        return 2;
    }

    ag_gguf *f = ag_gguf_open(in);
    if (!f) {
        fprintf(stderr, "%s: %s\n", argv[0], ag_last_error());
        free(keep);
        return 1;
    }
    ag_gguf_writer *w = ag_gguf_writer_new();
    const int64_t nt = ag_gguf_n_tensors(f);
    void **owned = calloc((size_t)(nt > 0 ? nt : 1), sizeof *owned);
    int rc = 1;
    if (!w || !owned) {
        fprintf(stderr, "%s: out of memory\n", argv[0]);
        goto done;
    }
    /* set first: copy_kvs skips keys already present, so the input's file_type is replaced */
    if (ag_gguf_set_u32(w, "general.file_type", ftype) ||
        ag_gguf_set_u32(w, "general.quantization_version", QUANT_VERSION) || ag_gguf_copy_kvs(w, f))
        goto gguf_error;

    size_t total_in = 0, total_out = 0;
    for (int64_t i = 0; i < nt; i++) {
        const char *name = ag_gguf_tensor_name(f, i);
        const ag_type type = ag_gguf_tensor_type(f, i);
        const int nd = ag_gguf_tensor_n_dims(f, i);
        int64_t ne[AG_MAX_DIMS];
        ag_gguf_tensor_ne(f, i, ne);
        const void *data = ag_gguf_tensor_data(f, i);
        const size_t size = ag_gguf_tensor_size(f, i);
        const int64_t nrows = ne[1] * ne[2] * ne[3];
        const int is_float = type == AG_TYPE_F32 || type == AG_TYPE_F16;

        int kept = 0;
        for (int k = 0; k < nkeep; k++)
            kept |= fnmatch(keep[k], name, 0) == 0;
        ag_type to = type;
        const char *why = "";
        if (kept)
            why = " (--keep)";
        else if (!is_float)
            why = type == AG_TYPE_I32 ? " (integer)" : " (already quantized)";
        else if (nd < 2)
            to = AG_TYPE_F32; /* norms and biases stay in full precision */
        else if (!ends_with(name, "weight"))
            why = " (not a weight)";
        else if (ne[0] % 32 != 0)
            why = " (rows not a multiple of 32)";
        else
            to = qtype;

        const void *out_data = data;
        size_t out_size = size;
        if (to != type) {
            owned[i] = convert(data, type, to, nrows, ne[0], &out_size);
            if (!owned[i])
                goto gguf_error;
            out_data = owned[i];
        }
        char shape[96];
        int pos = snprintf(shape, sizeof shape, "%lld", (long long)ne[0]);
        for (int d = 1; d < nd && pos < (int)sizeof shape; d++)
            pos += snprintf(shape + pos, sizeof shape - (size_t)pos, " x %lld", (long long)ne[d]);
        char h1[32], h2[32];
        printf("[%4lld/%4lld] %-40s %-20s %4s -> %-4s %12s -> %12s%s\n", (long long)i + 1, (long long)nt, name, shape,
               ag_type_name(type), ag_type_name(to), human(size, h1, sizeof h1), human(out_size, h2, sizeof h2),
               to == type ? why : "");
        total_in += size;
        total_out += out_size;
        if (ag_gguf_add_tensor(w, name, to, nd, ne, out_data, out_size))
            goto gguf_error;
    }
    if (ag_gguf_writer_write(w, out))
        goto gguf_error;
    char h1[32], h2[32];
    printf("%s: %s -> %s (%s)\n", out, human(total_in, h1, sizeof h1), human(total_out, h2, sizeof h2),
           ag_type_name(qtype));
    rc = 0;
    goto done;
gguf_error:
    fprintf(stderr, "%s: %s\n", argv[0], ag_last_error());
done:
    if (owned)
        for (int64_t i = 0; i < nt; i++)
            free(owned[i]);
    free(owned);
    free(keep);
    ag_gguf_writer_free(w);
    ag_gguf_close(f);
    return rc;
}
