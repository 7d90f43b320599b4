/* anygpt: the limits on everything sized from untrusted bytes, in one place.
 *
 * Model files, checkpoints, tokenizer files and media come from strangers. Every count, length or
 * size read from such bytes is checked before it sizes an allocation; what exceeds a limit here is
 * refused with an error naming the file, the quantity and the limit (or, where a header says so,
 * truncated as documented), never an out-of-memory kill. Besides these, every offset and size is
 * checked against the bytes actually present, so an allocation a file can cause stays within a
 * small multiple of its own size. The values leave ample room for the real models (the largest
 * figure of a real file is given with each) and stop inputs a few bytes long from asking for
 * gigabytes. tests/fuzz exercises each reader with libFuzzer under a 1 GiB single-allocation and
 * 2 GiB resident limit. */
#ifndef ANYGPT_LIMITS_H
#define ANYGPT_LIMITS_H

/* ---- GGUF (core/gguf) ----
 * Keys: 1..65535 bytes (the format's own limit); tensor names: 1..AG_MAX_NAME - 1 bytes and
 * 1..AG_MAX_DIMS dims (anygpt/tensor.h); tensor data must lie inside the file. */
#define AG_MAX_GGUF_KVS 65536           /* key-value pairs (llama.cpp files: ~40) */
#define AG_MAX_GGUF_TENSORS 65536       /* tensors (7B LLaMA: 291; seed-unclip: ~1300) */
#define AG_MAX_GGUF_ARRAY (1 << 24)     /* elements of one array value (vocabularies: 32000..256000) */
#define AG_MAX_GGUF_STRING (1 << 24)    /* bytes of one string value or string-array element */

/* ---- models (core/models) ---- */
#define AG_MAX_CONTEXT (1 << 20)        /* LLM context (KV cache) length in tokens (LLaMA-2: 4096) */
/* KV cache of one model; context-length 0 means the file's context_length, which must then fit
 * (LLaMA-2-7B at 4096 tokens, F16: 2 GiB). */
#define AG_MAX_KV_CACHE_BYTES ((size_t)16 << 30)
/* Intermediates of one graph pass (core/alloc.c): the work an input's length asks for (a long
 * utterance through a codec encoder, a long prefill) is refused beyond this instead of being
 * allocated (seed-unclip's UNet and VAE at their real size, weights included: 3.7 GB peak RSS). */
#define AG_MAX_GRAPH_BYTES ((size_t)8 << 30)
/* Hyper-parameter sizes (widths, vocabularies, sample rates) read by the loaders are at most this
 * (structural counts -- layers, heads, kernel sizes -- have smaller bounds in each loader) and must
 * match the shapes of the tensors the file holds, so compute buffers follow the weights. */
#define AG_MAX_MODEL_DIM (1 << 20)

/* ---- torch.save checkpoints (tools/convert/zip.c, torchzip.c) ---- */
#define AG_MAX_PICKLE_BYTES ((size_t)256 << 20) /* data.pkl (a 7B state dict: ~30 KiB) */
/* objects one data.pkl builds (~100 bytes each; a 7B state dict builds ~5000) */
#define AG_MAX_PICKLE_VALUES (1 << 20)
#define AG_MAX_PICKLE_DEPTH 16          /* nesting of dicts holding tensors */
/* Tensors in one checkpoint, also counting dicts reached twice through the pickle memo */
#define AG_MAX_CKPT_TENSORS (1 << 20)
/* A checkpoint tensor addresses at most as many elements as its storage holds (no expanded,
 * stride-0 views): reading it out never allocates more than the file's own bytes. */

/* ---- JSON, tokenizer and config files (tools/convert: json.c, spm_model.c, safetensors.c) ---- */
#define AG_MAX_AUX_FILE_BYTES ((size_t)256 << 20) /* one config/tokenizer file read whole (tokenizer.json: ~20 MiB) */
/* values in one JSON text (~100 bytes each; a 256k-vocab tokenizer.json: ~600k) */
#define AG_MAX_JSON_VALUES (1 << 21)
#define AG_MAX_JSON_DEPTH 64            /* nesting of arrays/objects */
#define AG_MAX_SAFETENSORS_HEADER 100000000 /* header bytes (the format's own limit) */
#define AG_MAX_SPM_PIECES (1 << 20)     /* SentencePiece pieces (largest published: 256000) */

/* ---- media ---- */
/* WAV (core/audio/wav.c): mono samples decoded from one file (2.3 h at 16 kHz, 46 min at
 * 48 kHz; 512 MiB of floats); callers with a smaller need pass their own bound. */
#define AG_MAX_WAV_SAMPLES ((int64_t)1 << 27)
/* Images (core/image): the side of a source or target frame, and the intermediate the separable
 * resize needs (target width x source rows read); seedtokenize resizes to 224 x 224, which needs
 * at most 224 x 32768 there. */
#define AG_IMAGE_MAX_SIDE 32768
#define AG_IMAGE_MAX_WORK_PIXELS ((int64_t)1 << 26)

/* ---- element inputs (gst/) ----
 * speechtokenize: max-utterance-s cuts an utterance (0: at AG_CODEC_MAX_SECONDS), whose encode
 * is then bounded by AG_MAX_GRAPH_BYTES; soundstorm: prompt + target
 * at most AG_SOUNDSTORM_MAX_FRAMES (anygpt/soundstorm.h), a voice-prompt file half of that;
 * encodecdecode: one token item decodes to at most AG_CODEC_MAX_SECONDS of audio; seedtokenize:
 * frames up to AG_IMAGE_MAX_SIDE a side, refused at caps time; anygptllm: a prompt that does not
 * fit the context is refused (the request, not the element), a text message is at most
 * AG_MAX_MESSAGE_BYTES. */
#define AG_CODEC_MAX_SECONDS 3600
#define AG_MAX_MESSAGE_BYTES (1 << 20)

#endif
