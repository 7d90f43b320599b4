/* anygpt core: reading a RIFF/WAVE file into float samples (voice prompts, demo inputs, tools).
 *
 * Accepted: PCM 8/16/24/32-bit integer and IEEE float 32/64 (format tag 1, 3, or
 * WAVE_FORMAT_EXTENSIBLE with those sub-formats), any channel count (mixed down to mono by
 * averaging). Every chunk size is checked against the file; anything else is an error naming
 * the file and the problem. No resampling: the caller checks the rate. */
#ifndef ANYGPT_WAV_H
#define ANYGPT_WAV_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ag_wav {
    int32_t sample_rate;
    int32_t channels; /* of the file; samples are mono */
    int64_t n;        /* mono samples */
    float *samples;   /* malloc'd, in [-1, 1] for integer formats */
} ag_wav;

/* 0 on success; -1 with ag_last_error(). Free with ag_wav_clear. A data chunk whose size field
 * runs past the end of the file (or is 0 / 0xFFFFFFFF, as streaming writers leave it) is read up
 * to the end of the file. At most AG_MAX_WAV_SAMPLES (anygpt/limits.h) mono samples: a longer
 * file is refused before any sample is decoded. The file is mapped, not copied. */
int ag_wav_read(const char *path, ag_wav *out);
/* The same from memory (size bytes). */
int ag_wav_parse(const void *data, size_t size, const char *label, ag_wav *out);
/* The same with the caller's own bound on the mono samples (e.g. a voice prompt's length). */
int ag_wav_read_max(const char *path, int64_t max_samples, ag_wav *out);
int ag_wav_parse_max(const void *data, size_t size, const char *label, int64_t max_samples, ag_wav *out);
void ag_wav_clear(ag_wav *w);

/* Write mono float samples as 32-bit float WAV (tmp file + rename). 0 / -1 with error. */
int ag_wav_write_f32(const char *path, const float *samples, int64_t n, int32_t sample_rate);

#ifdef __cplusplus
}
#endif
#endif
