/* anygpt-convert KIND INPUT OUTPUT.gguf [--dtype f32|f16]: published checkpoints -> GGUF.
 * One module per KIND; no Python or PyTorch needed. */
#include "convert.h"
#ifdef AG_HAVE_UNCLIP_PLANS
#include "seed_unclip.h"
#endif

#include "anygpt/error.h"

#include <stdio.h>
#include <string.h>

typedef struct {
    const char *kind;
    int (*fn)(const char *input, const char *output, const convert_opts *o);
    const char *input;
} converter;

static const converter converters[] = {
    {"llm", convert_llm, "HF folder of fnlp/AnyGPT-chat or fnlp/AnyGPT-base (config.json, tokenizer.model, "
                         "added_tokens.json, pytorch_model-*.bin or *.safetensors)"},
    {"speechtokenizer", convert_speechtokenizer, "SpeechTokenizer folder (config.json, ckpt.dev or SpeechTokenizer.pt)"},
    {"soundstorm", convert_soundstorm, "speechtokenizer_soundstorm_mls.pt (AnyGPT) or an original soundstorm-speechtokenizer "
                                       "checkpoint, or a folder holding one"},
    {"encodec", convert_encodec, "facebook/encodec_32khz HF folder (config.json, model.safetensors or "
                                 "pytorch_model.bin) or audiocraft state_dict.bin (folder or file)"},
    {"seed-tokenizer", convert_seed_tokenizer, "folder holding BLIP-2's eva_vit_g.pth and SEED's seed_quantizer.pt "
                                               "(AILab-CVC/seed-tokenizer-2)"},
#ifdef AG_HAVE_UNCLIP_PLANS
    {"seed-unclip", convert_seed_unclip, "folder holding seed_quantizer.pt (or seed-tokenizer-2/) and the diffusers "
                                         "folder stable-diffusion-2-1-unclip/, or that folder itself with "
                                         "seed_quantizer.pt in it"},
#endif
};

static void usage(FILE *f)
{
    fprintf(f, "usage: anygpt-convert KIND INPUT OUTPUT.gguf [--dtype f32|f16] [--quiet]\n\n"
               "Converts a published AnyGPT checkpoint into GGUF.\n\nKIND:\n");
    for (size_t k = 0; k < sizeof converters / sizeof converters[0]; k++)
        fprintf(f, "  %-16s INPUT = %s\n", converters[k].kind, converters[k].input);
    fprintf(f, "\nOptions:\n"
               "  --dtype f32|f16  type of 2-D weight matrices (default f16); 1-D tensors stay f32\n"
               "  --quiet          no per-tensor progress on stderr\n"
               "  -h, --help       this text\n");
}

int main(int argc, char **argv)
{
    const char *pos[3];
    int n_pos = 0;
    convert_opts o = {AG_TYPE_F16, false, 0};
    for (int k = 1; k < argc; k++) {
        if (!strcmp(argv[k], "-h") || !strcmp(argv[k], "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(argv[k], "--quiet")) {
            o.quiet = true;
        } else if (!strcmp(argv[k], "--dtype") || !strncmp(argv[k], "--dtype=", 8)) {
            const char *v = argv[k][7] == '=' ? argv[k] + 8 : (k + 1 < argc ? argv[++k] : NULL);
            if (v && !strcmp(v, "f32"))
                o.wtype = AG_TYPE_F32;
            else if (v && !strcmp(v, "f16"))
                o.wtype = AG_TYPE_F16;
            else {
                fprintf(stderr, "anygpt-convert: --dtype must be f32 or f16\n");
                return 2;
            }
        } else if (argv[k][0] == '-' && argv[k][1]) {
            fprintf(stderr, "anygpt-convert: unknown option '%s'\n", argv[k]);
            usage(stderr);
            return 2;
        } else if (n_pos < 3) {
            pos[n_pos++] = argv[k];
        } else {
            fprintf(stderr, "anygpt-convert: too many arguments\n");
            usage(stderr);
            return 2;
        }
    }
    if (n_pos != 3) {
        usage(stderr);
        return 2;
    }
    for (size_t k = 0; k < sizeof converters / sizeof converters[0]; k++) {
        if (strcmp(converters[k].kind, pos[0]) != 0)
            continue;
        if (converters[k].fn(pos[1], pos[2], &o) != 0) {
            fprintf(stderr, "anygpt-convert: error: %s\n", ag_last_error());
            return 1;
        }
        return 0;
    }
    fprintf(stderr, "anygpt-convert: unknown KIND '%s'\n", pos[0]);
    usage(stderr);
    return 2;
}
