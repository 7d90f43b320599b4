/* anygptllm: the AnyGPT LLM as an element (see gstanygptllm.c for the documentation).
 * gstanygptllmreply.c runs one request through the core session and pushes the reply. */
#ifndef GST_ANYGPT_LLM_H
#define GST_ANYGPT_LLM_H

#include <gst/gst.h>

#include "gstanygptcore.h"
#include "anygpt/session.h"

G_BEGIN_DECLS

#define GST_TYPE_ANYGPT_LLM (gst_anygpt_llm_get_type ())
G_DECLARE_FINAL_TYPE (GstAnygptLlm, gst_anygpt_llm, GST, ANYGPT_LLM, GstElement)

#define GST_TYPE_ANYGPT_LLM_TASK (gst_anygpt_llm_task_get_type ())
GType gst_anygpt_llm_task_get_type (void);

/* speech-reply: whether a chat reply must end in speech (see gstanygptllm.c) */
typedef enum
{
  GST_ANYGPT_LLM_SPEECH_REPLY_AUTO,
  GST_ANYGPT_LLM_SPEECH_REPLY_ALWAYS,
} GstAnygptLlmSpeechReply;
#define GST_TYPE_ANYGPT_LLM_SPEECH_REPLY (gst_anygpt_llm_speech_reply_get_type ())
GType gst_anygpt_llm_speech_reply_get_type (void);

/* duplex: what a request arriving while the element is busy does (see gstanygptllm.c) */
typedef enum
{
  GST_ANYGPT_LLM_DUPLEX_QUEUE,
  GST_ANYGPT_LLM_DUPLEX_HALF,
  GST_ANYGPT_LLM_DUPLEX_BARGE_IN,
  GST_ANYGPT_LLM_DUPLEX_NEWEST,
  GST_ANYGPT_LLM_DUPLEX_AUTO,
} GstAnygptLlmDuplex;
#define GST_TYPE_ANYGPT_LLM_DUPLEX (gst_anygpt_llm_duplex_get_type ())
GType gst_anygpt_llm_duplex_get_type (void);

/* text-mode: how a reply's text leaves text_src (see gstanygptllm.c) */
typedef enum
{
  GST_ANYGPT_LLM_TEXT_MODE_AUTO,
  GST_ANYGPT_LLM_TEXT_MODE_STREAM,
  GST_ANYGPT_LLM_TEXT_MODE_WHOLE,
} GstAnygptLlmTextMode;
#define GST_TYPE_ANYGPT_LLM_TEXT_MODE (gst_anygpt_llm_text_mode_get_type ())
GType gst_anygpt_llm_text_mode_get_type (void);

/* Requests waiting for the streaming task; at most GST_ANYGPT_LLM_MAX_QUEUED, the chain
 * function blocks (back-pressure) while the queue is full. */
#define GST_ANYGPT_LLM_MAX_QUEUED 8

typedef enum
{
  GST_ANYGPT_LLM_REQ_TEXT,      /* a user message */
  GST_ANYGPT_LLM_REQ_ITEM,      /* a speech / image / music item */
  GST_ANYGPT_LLM_REQ_EOS,       /* all sink pads reached EOS: push EOS downstream */
} GstAnygptLlmRequestKind;

typedef struct
{
  GstAnygptLlmRequestKind kind;
  gchar *text;
  ag_modality modality;
  gint32 *codes;                /* speech: layer 1; image: 32; music: frame-major, 4 per frame */
  gsize n_codes;
  /* the input buffer's time: PTS as running time (NONE: untimed) and its duration */
  GstClockTime pts, duration;
  gint64 arrival_us;            /* monotonic time the request was received */
  gboolean live;                /* from a live upstream (its latency query says so) */
} GstAnygptLlmRequest;

/* A request of kind received now, untimed. */
GstAnygptLlmRequest *gst_anygpt_llm_request_new (GstAnygptLlmRequestKind kind);
void gst_anygpt_llm_request_free (GstAnygptLlmRequest * r);

/* A chat turn kept for the next prompts (owned strings). */
typedef struct
{
  gchar *user;
  gchar *reply;
} GstAnygptLlmTurn;

struct _GstAnygptLlm
{
  GstElement parent;

  GstPad *text_src, *speech_src, *image_src, *music_src;
  guint next_pad_id;            /* object lock */

  /* properties (object lock; model-path, device, backend: gstanygptshared.h) */
  gint context_length;
  ag_task task;
  gchar *prompt, *instruction, *system_prompt;
  guint history;
  gdouble temperature, top_p, repetition_penalty;
  gint top_k, max_new_tokens;
  gint64 seed;
  gboolean constrain_spans;
  GstAnygptLlmSpeechReply speech_reply;
  GstAnygptLlmDuplex duplex;
  GstAnygptLlmTextMode text_mode;
  guint64 caption_duration;     /* ns; 0: until the next request */
  guint speech_chunk;           /* frames per speech_src buffer while generating; 0: whole items */
  guint64 latency;              /* ns added to a live upstream's latency */

  /* READY and above */
  ag_session *session;

  /* request queue and task control (lock) */
  GMutex lock;
  GCond cond;
  GQueue queue;
  gboolean flushing;
  GstFlowReturn srcresult;      /* why the task stopped: what chain functions return */
  guint n_received;             /* requests received since READY (prompt fallback) */
  gboolean prompt_queued;
  gint cancel;                  /* atomic: stop the reply being generated */
  gboolean generating;          /* a reply is being generated */
  gint64 busy_until;            /* monotonic us: the last reply's audio plays until then */
  GstClockTime sink_latency;    /* object lock: the latency the sinks add to the replies'
                                 * timestamps (LATENCY event on a source pad), NONE before one */
  guint n_dropped;              /* requests dropped by duplex=half since READY */
  gint interrupt;               /* atomic: barge-in: stop the reply, flush the source pads */

  /* streaming task only */
  gboolean need_stream_start, need_segment;
  GstFlowReturn gen_flow;       /* first fatal flow of the reply being generated */
  GQueue turns;                 /* GstAnygptLlmTurn, oldest first */
  GString *held;                /* text piece held back to carry the MARKER flag (stream), or
                                 * the whole reply text (whole) */
  gint64 reply_audio_us;        /* audio duration of the reply's speech / music items */
  gboolean reply_live;          /* the request came from a live upstream: see on_item */
  /* timing of the reply being generated (see "Timing" in gstanygptllm.c) */
  gboolean whole_text;          /* this reply's text goes out as one buffer (text-mode) */
  GstClockTime reply_pts;       /* the request's time, NONE when untimed */
  GstClockTime speech_pos, music_pos;   /* PTS of the reply's next speech / music item */
  guint reply_speech_chunk;     /* speech-chunk for this reply */
  gsize speech_sent;            /* frames of the open speech item already pushed (streamed) */
  gint64 first_output_us;       /* monotonic time of the first text piece or item (0: none) */
  GstClockTime first_output_rt; /* running time then (NONE without a clock) */
  /* whole text: a reply waiting for the next request's time to get its duration */
  GstBuffer *pending_text;
  GstClockTime last_text_duration;      /* the last whole reply's duration: fallback at EOS */
  GstClockTime text_pos;        /* end of the time text_src has covered (NONE: nothing yet) */
};

/* Sends ev (consumed) on the four source pads. */
void gst_anygpt_llm_push_src_event (GstAnygptLlm * self, GstEvent * ev);

/* Streaming task side (gstanygptllmreply.c). */
void gst_anygpt_llm_send_sticky_events (GstAnygptLlm * self);
/* GST_FLOW_OK to go on; else the task pauses: EOS (pushed), FLUSHING, or a fatal flow (error
 * posted, EOS pushed). */
GstFlowReturn gst_anygpt_llm_process (GstAnygptLlm * self, GstAnygptLlmRequest * r);
void gst_anygpt_llm_clear_turns (GstAnygptLlm * self);
/* Forgets the timing state of text_src (a held reply, the covered time): on the streaming task
 * when a new segment starts, or when the task is stopped. */
void gst_anygpt_llm_reset_text_timing (GstAnygptLlm * self);

GST_ELEMENT_REGISTER_DECLARE (anygptllm);

G_END_DECLS

#endif
