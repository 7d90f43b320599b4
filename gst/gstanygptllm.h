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
} GstAnygptLlmDuplex;
#define GST_TYPE_ANYGPT_LLM_DUPLEX (gst_anygpt_llm_duplex_get_type ())
GType gst_anygpt_llm_duplex_get_type (void);

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
} GstAnygptLlmRequest;

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

  /* properties (object lock) */
  gchar *model_path;
  GstAnygptDevice device;
  gint device_index;
  gint threads;
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

  /* READY and above */
  ag_backend *backend;
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
  guint n_dropped;              /* requests dropped by duplex=half since READY */
  gint interrupt;               /* atomic: barge-in: stop the reply, flush the source pads */

  /* streaming task only */
  gboolean need_stream_start, need_segment;
  GstFlowReturn gen_flow;       /* first fatal flow of the reply being generated */
  GQueue turns;                 /* GstAnygptLlmTurn, oldest first */
  GString *held;                /* text piece held back to carry the MARKER flag */
  gint64 reply_audio_us;        /* audio duration of the reply's speech / music items */
};

/* Sends ev (consumed) on the four source pads. */
void gst_anygpt_llm_push_src_event (GstAnygptLlm * self, GstEvent * ev);

/* Streaming task side (gstanygptllmreply.c). */
void gst_anygpt_llm_send_sticky_events (GstAnygptLlm * self);
/* GST_FLOW_OK to go on; else the task pauses: EOS (pushed), FLUSHING, or a fatal flow (error
 * posted, EOS pushed). */
GstFlowReturn gst_anygpt_llm_process (GstAnygptLlm * self, GstAnygptLlmRequest * r);
void gst_anygpt_llm_clear_turns (GstAnygptLlm * self);

GST_ELEMENT_REGISTER_DECLARE (anygptllm);

G_END_DECLS

#endif
