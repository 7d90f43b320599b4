/* anygpt core: SEANet codec (encoder, residual VQ, decoder) as used by SpeechTokenizer (speech,
 * 16 kHz) and, configured by the GGUF metadata, Encodec 32 kHz (music). The model file comes from
 * anygpt-convert (weight norm already folded); hyper-parameters are KVs "<arch>.*".
 * Encoding needs the whole utterance (the encoder LSTM may be bidirectional). Only non-causal,
 * reflect-padded SEANet is built: a file saying "<arch>.causal" true or another "<arch>.pad_mode"
 * is refused. Encodec 32 kHz: sample_rate 32000, hop 640, n_q 4, codebook_size 2048. */
#ifndef ANYGPT_SEANET_H
#define ANYGPT_SEANET_H

#include "anygpt/weights.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ag_seanet ag_seanet;

typedef struct {
    int32_t sample_rate;
    int32_t hop;           /* samples per frame: product of the ratios */
    int32_t n_q;           /* codebooks in the file */
    int32_t codebook_size;
    int32_t dimension;     /* latent (= codebook) dimension */
    bool snake;            /* Snake activations instead of ELU */
} ag_seanet_info;

/* Load a GGUF of architecture "speechtokenizer" or "encodec" onto be. NULL with error set. */
ag_seanet *ag_seanet_load(ag_backend *be, const char *path, ag_progress_fn progress, void *user);
void ag_seanet_free(ag_seanet *m);
const ag_seanet_info *ag_seanet_info_of(const ag_seanet *m);

/* Frames for n samples: ceil(n / hop). */
int64_t ag_seanet_n_frames(const ag_seanet *m, int64_t n_samples);

/* audio [n] mono at sample_rate -> codes [T][n_q] (T = ag_seanet_n_frames), the first n_q
 * (1..info.n_q) RVQ layers. codes must hold T * n_q entries. */
int ag_seanet_encode(ag_seanet *m, const float *audio, int64_t n, int n_q, int32_t *codes);

/* codes [T][n_q] (layers 1..n_q, n_q <= info.n_q; each < codebook_size) -> audio [hop * T]. */
int ag_seanet_decode(ag_seanet *m, const int32_t *codes, int64_t n_frames, int n_q, float *audio);

/* ---- decoding an item chunk by chunk (streamed speech) ----
 * Codes arrive in pieces; every call decodes a window made of up to `left` frames already
 * output (context), the frames held back and the new ones, and outputs the samples of all but
 * the last `right` frames (those wait for their right-hand context; all of them at the item's
 * end). Output samples are the window's exact middle: no seam to fade, and within the decoder's
 * receptive field (its LSTM carries the left context further, fading) of a whole-item decode. */
typedef struct ag_seanet_stream ag_seanet_stream;

/* n_q layers per frame (1..info.n_q), left/right 0..4096 context frames. */
ag_seanet_stream *ag_seanet_stream_new(ag_seanet *m, int n_q, int left, int right);
void ag_seanet_stream_free(ag_seanet_stream *s);
/* codes [n][n_q] of the current item (n >= 0); end: the item ends with them (the next call starts
 * a new one). audio must hold (n + right) * hop samples. Returns the samples written, -1 with
 * the error set. */
int64_t ag_seanet_stream_decode(ag_seanet_stream *s, const int32_t *codes, int64_t n, bool end, float *audio);
/* Forget the current item (a flush). */
void ag_seanet_stream_reset(ag_seanet_stream *s);

#ifdef __cplusplus
}
#endif
#endif
