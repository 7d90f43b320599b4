/* The seed-tokenizer converter's key plan against the real checkpoints' key lists: names,
 * dtypes and shapes of the upstream modules' state_dict() at the real size (EVA ViT-g's 40 blocks
 * as eva_vit_g.pth holds them; Blip2QformerQuantizer without its ViT as seed_quantizer.pt does),
 * written by tests/reference/seed_tokenizer_ref.py without allocating any weight. The plan must
 * accept exactly them (every key used or on the ignore list), derive the real sizes, and refuse
 * the lists with one key missing or one key too many, naming it.
 *
 * usage: test_seed_keys FIXTURE_DIR */
#include "../common/ag_check.h"

#include "anygpt/error.h"
#include "ckpt.h"
#include "seed_tokenizer_plan.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* 'name dtype d0,d1,...' lines -> tensors without data; skip: a name left out (NULL: none) */
static int read_list(const char *dir, const char *file, ckpt *c, const char *skip, const char *extra)
{
    char path[4096], line[512];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    FILE *f = fopen(path, "r");
    if (!f) {
        ag_set_error("cannot open %s", path);
        return -1;
    }
    int rc = 0;
    while (rc == 0 && fgets(line, sizeof line, f)) {
        char name[256], dt[16], shape[128];
        if (sscanf(line, "%255s %15s %127s", name, dt, shape) != 3) {
            ag_set_error("%s: bad line '%s'", path, line);
            rc = -1;
            break;
        }
        if (skip && !strcmp(name, skip))
            continue;
        ckpt_tensor t = {0};
        t.name = name;
        t.dtype = !strcmp(dt, "f16") ? CKPT_F16 : !strcmp(dt, "i64") ? CKPT_I64 : CKPT_F32;
        t.file = file;
        for (char *s = shape; *s && t.n_dims < CKPT_MAX_DIMS; t.n_dims++) {
            t.shape[t.n_dims] = strtoll(s, &s, 10);
            if (*s == ',')
                s++;
        }
        rc = ckpt_add(c, &t);
    }
    fclose(f);
    if (rc == 0 && extra) {
        ckpt_tensor t = {0};
        t.name = (char *)extra;
        t.dtype = CKPT_F32;
        t.n_dims = 1;
        t.shape[0] = 4;
        rc = ckpt_add(c, &t);
    }
    return rc;
}

/* Plan the lists (one key skipped or one extra, in the named file); 0 when accepted. */
static int plan(const char *dir, const char *skip, const char *extra, bool in_vit, seedtok_plan *p)
{
    ckpt vit, seed;
    ckpt_init(&vit);
    ckpt_init(&seed);
    int rc = read_list(dir, "real_vit_keys.txt", &vit, in_vit ? skip : NULL, in_vit ? extra : NULL);
    if (rc == 0)
        rc = read_list(dir, "real_seed_keys.txt", &seed, in_vit ? NULL : skip, in_vit ? NULL : extra);
    if (rc == 0)
        rc = seedtok_plan_build(&vit, &seed, p);
    ckpt_free(&vit);
    ckpt_free(&seed);
    return rc;
}

static void expect_refused(const char *dir, const char *skip, const char *extra, bool in_vit, const char *want)
{
    seedtok_plan p;
    const int rc = plan(dir, skip, extra, in_vit, &p);
    CHECK(rc != 0 && strstr(ag_last_error(), want) != NULL, "without '%s' / with '%s': rc %d, '%s' (want '%s')",
          skip ? skip : "-", extra ? extra : "-", rc, ag_last_error(), want);
    if (rc)
        printf("# refused: %s\n", ag_last_error());
    seedtok_plan_free(&p);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s FIXTURE_DIR\n", argv[0]);
        return 2;
    }
    const char *dir = argv[1];
    seedtok_plan p;
    const int rc = plan(dir, NULL, NULL, false, &p);
    CHECK(rc == 0, "the real key lists are refused: %s", ag_last_error());
    if (rc == 0) {
        printf("# real sizes: %lldx%lld / patch %lld, ViT %lld x %lld blocks (%lld in the file), %lld heads, MLP "
               "%lld; Q-Former %lld x %lld layers, %lld heads, FFN %lld, %lld cross; %lld queries; codebook %lld x "
               "%lld; %zu GGUF tensors\n",
               (long long)p.image_size, (long long)p.image_size, (long long)p.patch_size, (long long)p.vit_width,
               (long long)p.vit_depth, (long long)p.vit_blocks_in_file, (long long)p.vit_heads, (long long)p.vit_mlp,
               (long long)p.qf_hidden, (long long)p.qf_layers, (long long)p.qf_heads, (long long)p.qf_ffn,
               (long long)p.n_cross, (long long)p.n_query, (long long)p.codebook_size, (long long)p.code_dim, p.n);
        CHECK(p.image_size == 224 && p.patch_size == 14 && p.n_tokens == 257 && p.vit_width == 1408 &&
                  p.vit_heads == 16 && p.vit_depth == 39 && p.vit_blocks_in_file == 40 && p.vit_mlp == 6144,
              "ViT sizes");
        CHECK(p.qf_hidden == 768 && p.qf_heads == 12 && p.qf_layers == 12 && p.qf_ffn == 3072 && p.n_query == 32 &&
                  p.codebook_size == 8192 && p.code_dim == 32,
              "Q-Former / codebook sizes");
        bool even = p.n_cross == 6;
        for (int l = 0; l < 12; l++)
            even = even && p.cross[l] == (l % 2 == 0);
        CHECK(even, "cross-attention on layers 0, 2, .., 10 only");
        /* ViT: 4 + 39 x 12 (the q/v biases fold into one); SEED: ln_vision 2, query tokens 1,
         * embedding LN 2, 12 x (self 10 + FFN 6), 6 x cross 10, task 4, codebook 1 */
        CHECK(p.n == 4 + 39 * 12 + 2 + 1 + 2 + 12 * 16 + 6 * 10 + 4 + 1, "%zu GGUF tensors planned", p.n);
        size_t n_half = 0;
        for (size_t i = 0; i < p.n; i++)
            n_half += p.e[i].matrix;
        CHECK(n_half == 1 + 39 * 4 + 12 * 6 + 6 * 4 + 2, "%zu matrices", n_half);
    }
    seedtok_plan_free(&p);
    expect_refused(dir, "blocks.38.mlp.fc2.bias", NULL, true, "eva_vit_g.pth lacks tensor 'blocks.38.mlp.fc2.bias'");
    expect_refused(dir, "Qformer.bert.encoder.layer.10.crossattention.output.LayerNorm.bias", NULL, false,
                   "seed_quantizer.pt lacks tensor 'Qformer.bert.encoder.layer.10.crossattention.output.LayerNorm.bias'");
    expect_refused(dir, "Qformer.bert.encoder.layer.11.output_query.dense.weight", NULL, false,
                   "lacks tensor 'Qformer.bert.encoder.layer.11.output_query.dense.weight'");
    expect_refused(dir, NULL, "visual_encoder.blocks.0.norm1.weight", false,
                   "unexpected tensor 'visual_encoder.blocks.0.norm1.weight'");
    expect_refused(dir, NULL, "blocks.38.attn.relative_position_index", true,
                   "unexpected tensor 'blocks.38.attn.relative_position_index'");
    expect_refused(dir, NULL, "norm.weight", true, "unexpected tensor 'norm.weight'");
    /* the ignored last block is still held to the block's key names */
    expect_refused(dir, NULL, "blocks.39.attn.rel_pos", true, "unexpected tensor 'blocks.39.attn.rel_pos'");
    return t_finish();
}
