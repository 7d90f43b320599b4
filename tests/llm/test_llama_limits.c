/* The LLaMA loader against a file whose context_length (2^20) and width (4096) ask for a 32 GiB
 * F32 KV cache when the caller takes the model's own context (context-length 0): refused with the
 * limit of anygpt/limits.h, naming the way out, before the cache is allocated; a short context on
 * the same file loads. The file is a hand-made GGUF header over a sparse (zero) data section.
 * usage: test_llama_limits WORK_DIR */
#include "../common/ag_check.h"
#include "../gguf/image_builder.h"
#include "anygpt/error.h"
#include "anygpt/limits.h"
#include "anygpt/llama.h"

#include <stdio.h>
#include <unistd.h>

enum { E = 4096, FF = 32, VOCAB = 32 };

static uint64_t q4_bytes(uint64_t ne0, uint64_t ne1) { return ne0 / 32 * 18 * ne1; }

static void kv_u32(img *b, const char *k, uint32_t v)
{
    img_kv(b, k, 4 /* u32 */);
    img_u32(b, v);
}

int main(int argc, char **argv)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/limits-kv-cache.gguf", argc > 1 ? argv[1] : ".");
    struct { const char *name; uint32_t nd; uint64_t ne[2]; uint32_t type; } t[] = {
        {"token_embd.weight", 2, {E, VOCAB}, 2}, {"output_norm.weight", 1, {E, 1}, 0},
        {"blk.0.attn_norm.weight", 1, {E, 1}, 0}, {"blk.0.attn_q.weight", 2, {E, E}, 2},
        {"blk.0.attn_k.weight", 2, {E, E}, 2}, {"blk.0.attn_v.weight", 2, {E, E}, 2},
        {"blk.0.attn_output.weight", 2, {E, E}, 2}, {"blk.0.ffn_norm.weight", 1, {E, 1}, 0},
        {"blk.0.ffn_gate.weight", 2, {E, FF}, 2}, {"blk.0.ffn_up.weight", 2, {E, FF}, 2},
        {"blk.0.ffn_down.weight", 2, {FF, E}, 2}};
    const int n_t = (int)(sizeof t / sizeof t[0]);
    img b = {0};
    img_header(&b, 3, (uint64_t)n_t, 8);
    img_kv(&b, "general.architecture", 8 /* str */);
    img_str(&b, "llama");
    kv_u32(&b, "llama.embedding_length", E);
    kv_u32(&b, "llama.block_count", 1);
    kv_u32(&b, "llama.feed_forward_length", FF);
    kv_u32(&b, "llama.attention.head_count", 32);
    kv_u32(&b, "llama.context_length", 1u << 20);
    kv_u32(&b, "llama.rope.dimension_count", 128);
    img_kv(&b, "llama.attention.layer_norm_rms_epsilon", 6 /* f32 */);
    float eps = 1e-5f;
    img_put(&b, &eps, 4);
    uint64_t off = 0;
    for (int i = 0; i < n_t; i++) {
        img_tinfo(&b, t[i].name, t[i].nd, t[i].ne, t[i].type, off);
        uint64_t sz = t[i].type == 2 ? q4_bytes(t[i].ne[0], t[i].ne[1]) : t[i].ne[0] * 4;
        off += (sz + 31) / 32 * 32;
    }
    img_pad(&b, 32);
    FILE *f = fopen(path, "wb");
    CHECK(f && fwrite(b.p, 1, b.len, f) == b.len && ftruncate(fileno(f), (off_t)(b.len + off)) == 0 && fclose(f) == 0,
          "cannot write %s", path);
    free(b.p);

    ag_backend *be = ag_backend_cpu_new(1);
    ag_clear_error();
    ag_llama *m = ag_llama_load(be, path, 0, AG_TYPE_F32, NULL, NULL);
    const char *e = ag_last_error();
    CHECK(!m && strstr(e, path) && strstr(e, "KV cache") && strstr(e, "accepted") && strstr(e, "context-length"),
          "a 32 GiB cache: %s", m ? "loaded" : e);
    printf("# %s\n", e);
    ag_llama_free(m);
    m = ag_llama_load(be, path, 64, AG_TYPE_F32, NULL, NULL);
    CHECK(m && ag_llama_cache_bytes(m) == (size_t)2 * 64 * E * 4, "a 64-token context: %s",
          m ? "wrong size" : ag_last_error());
    ag_llama_free(m);
    ag_backend_free(be);
    remove(path);
    return t_finish();
}
