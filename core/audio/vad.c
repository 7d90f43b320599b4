/* Energy VAD: frame RMS vs an adaptive noise floor, with hysteresis (see anygpt/vad.h). */
#include "anygpt/vad.h"

#include "anygpt/error.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>

struct ag_vad {
    ag_vad_config cfg;
    int frame;            /* samples per frame */
    int need_on, need_off; /* frames of voiced / unvoiced runs that switch state */
    float rise;           /* dB per frame */
    double acc;           /* sum of squares of the partial frame */
    int fill;             /* samples in the partial frame */
    int64_t pos;          /* absolute index of the partial frame's first sample */
    bool have_floor, speech;
    float floor_db;
    int run;              /* length of the current run that may switch state */
    int64_t run_start;    /* first sample of the voiced run (silence state) */
    int64_t last_voiced_end;
};

ag_vad_config ag_vad_config_default(int sample_rate)
{
    ag_vad_config c = {sample_rate, 10, 600, 200, 12.0f, 6.0f, -60.0f, 3.0f};
    return c;
}

ag_vad *ag_vad_new(const ag_vad_config *cfg)
{
    if (cfg->sample_rate < 100 || cfg->frame_ms < 1 || cfg->frame_ms > 1000 || cfg->silence_ms < 0 ||
        cfg->min_speech_ms < 0 || !(cfg->off_db >= 0) || !(cfg->on_db >= cfg->off_db) || !(cfg->floor_rise_db_s >= 0) ||
        !isfinite(cfg->min_db)) {
        ag_set_error("vad: invalid config (rate %d, frame %d ms, on %g dB, off %g dB)", cfg->sample_rate,
                     cfg->frame_ms, (double)cfg->on_db, (double)cfg->off_db);
        return NULL;
    }
    ag_vad *v = calloc(1, sizeof *v);
    if (!v) {
        ag_set_error("vad: out of memory");
        return NULL;
    }
    v->cfg = *cfg;
    v->frame = (int)((int64_t)cfg->sample_rate * cfg->frame_ms / 1000);
    if (v->frame < 1)
        v->frame = 1;
    /* round up: a run must last at least the configured time */
    v->need_on = (cfg->min_speech_ms + cfg->frame_ms - 1) / cfg->frame_ms;
    v->need_off = (cfg->silence_ms + cfg->frame_ms - 1) / cfg->frame_ms;
    if (v->need_on < 1)
        v->need_on = 1;
    if (v->need_off < 1)
        v->need_off = 1;
    v->rise = cfg->floor_rise_db_s * (float)cfg->frame_ms / 1000.0f;
    ag_vad_reset(v);
    return v;
}

void ag_vad_free(ag_vad *v)
{
    free(v);
}

void ag_vad_reset(ag_vad *v)
{
    v->acc = 0;
    v->fill = 0;
    v->pos = 0;
    v->have_floor = false;
    v->speech = false;
    v->run = 0;
    v->run_start = 0;
    v->last_voiced_end = 0;
}

int ag_vad_in_speech(const ag_vad *v)
{
    return v->speech;
}

int ag_vad_frame_len(const ag_vad *v)
{
    return v->frame;
}

size_t ag_vad_max_events(const ag_vad *v, size_t n)
{
    return ((size_t)v->fill + n) / (size_t)v->frame;
}

/* One whole frame ending the partial one; returns 1 when it produced *ev. */
static int end_frame(ag_vad *v, ag_vad_event *ev)
{
    float db = 10.0f * log10f((float)(v->acc / v->frame) + 1e-12f);
    int64_t start = v->pos, end = v->pos + v->frame;
    if (!v->have_floor) {
        v->floor_db = db;
        v->have_floor = true;
    }
    float thr = v->floor_db + (v->speech ? v->cfg.off_db : v->cfg.on_db);
    bool voiced = db > v->cfg.min_db && db > thr;
    /* the floor follows quiet frames at once and creeps up otherwise */
    if (db < v->floor_db)
        v->floor_db = db;
    else
        v->floor_db += v->speech ? v->rise * 0.1f : v->rise;
    int got = 0;
    if (!v->speech) {
        if (voiced) {
            if (v->run++ == 0)
                v->run_start = start;
            if (v->run >= v->need_on) {
                v->speech = true;
                v->run = 0;
                v->last_voiced_end = end;
                *ev = (ag_vad_event){AG_VAD_START, v->run_start};
                got = 1;
            }
        } else {
            v->run = 0;
        }
    } else if (voiced) {
        v->run = 0;
        v->last_voiced_end = end;
    } else if (++v->run >= v->need_off) {
        v->speech = false;
        v->run = 0;
        *ev = (ag_vad_event){AG_VAD_END, v->last_voiced_end};
        got = 1;
    }
    v->pos = end;
    v->acc = 0;
    v->fill = 0;
    return got;
}

int ag_vad_process(ag_vad *v, const float *x, size_t n, ag_vad_event *events, size_t max_events)
{
    if (max_events < ag_vad_max_events(v, n)) {
        ag_set_error("vad: room for %zu events, %zu needed", max_events, ag_vad_max_events(v, n));
        return -1;
    }
    int count = 0;
    for (size_t i = 0; i < n; i++) {
        float s = isfinite(x[i]) ? x[i] : 0.0f; /* a NaN must not poison the floor */
        v->acc += (double)s * s;
        if (++v->fill == v->frame)
            count += end_frame(v, &events[count]);
    }
    return count;
}
