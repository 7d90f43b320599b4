/* anygpt core: energy-based voice activity detector for utterance segmentation.
 *
 * The signal is cut into frames (frame_ms). Each frame's RMS level in dBFS is compared with an
 * adaptive noise floor: the floor drops at once to any quieter frame and otherwise rises slowly
 * (floor_rise_db_s while silent, a tenth of it during speech, so a long utterance is not
 * swallowed). A frame is voiced when it is louder than min_db and, with hysteresis, more than
 * on_db above the floor (off_db once speech has started). Speech starts after min_speech_ms of
 * consecutive voiced frames (the start is the first of them) and ends after silence_ms of
 * consecutive unvoiced frames (the end is just after the last voiced frame).
 * The floor starts at the first frame's level: a stream that opens mid-speech is found at the
 * first pause. Positions are absolute sample indices since ag_vad_new / ag_vad_reset. */
#ifndef ANYGPT_VAD_H
#define ANYGPT_VAD_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    int sample_rate;
    int frame_ms;          /* analysis frame, default 10 */
    int silence_ms;        /* unvoiced time that ends speech, default 600 */
    int min_speech_ms;     /* voiced time that starts speech, default 200 */
    float on_db;           /* above the floor to become voiced, default 12 */
    float off_db;          /* above the floor to stay voiced in speech, default 6 */
    float min_db;          /* absolute gate in dBFS, default -60 */
    float floor_rise_db_s; /* floor creep towards louder levels, default 3 dB/s */
} ag_vad_config;

typedef enum { AG_VAD_START = 1, AG_VAD_END = 2 } ag_vad_event_kind;

typedef struct {
    ag_vad_event_kind kind;
    int64_t pos; /* sample index: first sample of speech (START), one past the last (END) */
} ag_vad_event;

typedef struct ag_vad ag_vad;

/* Defaults above for sample_rate. */
ag_vad_config ag_vad_config_default(int sample_rate);
/* NULL with ag_last_error() set on an invalid config. */
ag_vad *ag_vad_new(const ag_vad_config *cfg);
void ag_vad_free(ag_vad *v);
/* Back to silence, position 0, floor unknown. */
void ag_vad_reset(ag_vad *v);
/* Room needed in the events array for n more samples (one event per frame at most). */
size_t ag_vad_max_events(const ag_vad *v, size_t n);
/* Feed n samples (any split across calls). Writes the events in order and returns how many;
 * -1 with ag_last_error() set when max_events < ag_vad_max_events(v, n) (nothing consumed). */
int ag_vad_process(ag_vad *v, const float *x, size_t n, ag_vad_event *events, size_t max_events);
/* Whether the detector is inside speech now. */
int ag_vad_in_speech(const ag_vad *v);
/* Samples per analysis frame. */
int ag_vad_frame_len(const ag_vad *v);

#ifdef __cplusplus
}
#endif
#endif
