/* One compute core per process: the model/backend lifecycle every anygpt element shares.
 *
 * Each element embeds this helper (gst_anygpt_shared_instance_init in its instance init,
 * gst_anygpt_shared_class_init in its class init). The helper owns the properties
 * `model-path`, `device`, `device-index` and `threads` (ids 1..4 of every element), the
 * GstContext negotiation, and opening the backend on NULL->READY; the element only says how to
 * load its model.
 *
 * Sharing: backends live in a process-wide registry keyed by (core, device kind, device
 * index); every element that asks for the same device of the same core gets the same
 * ag_backend (one cpu thread pool, one Vulkan device and queue), released when its last user
 * goes to NULL. Weights are shared by the core itself (ag_weights_load: one copy per file and
 * backend). Compute from several elements takes fair turns on the backend (ag_backend_turn_*).
 *
 * The core is named by a GstContext of type "anygpt.core" (GST_ANYGPT_CORE_CONTEXT_TYPE) whose
 * structure holds
 *   core-id (string): elements with the same core-id share backends; default "default";
 *   threads (int, optional): cpu threads of the backend when this core first opens it
 *     (overrides the elements' `threads`).
 * On NULL->READY an element without a context asks its peers (GST_QUERY_CONTEXT), then posts
 * GST_MESSAGE_NEED_CONTEXT (an app may answer with gst_element_set_context); if nobody
 * answers it uses the default core and posts GST_MESSAGE_HAVE_CONTEXT, so its bin passes the
 * same context to the other elements. An app shares one core across pipelines (or keeps
 * pipelines apart, or fixes the thread count) by setting its own context on each pipeline:
 *   GstContext *c = gst_context_new ("anygpt.core", TRUE);
 *   gst_structure_set (gst_context_writable_structure (c), "core-id", G_TYPE_STRING, "app",
 *       "threads", G_TYPE_INT, 4, NULL);
 *   gst_element_set_context (pipeline, c);
 *
 * `threads`: the first element to open a backend sets its thread count (0: all online
 * processors); an element opening the same backend later with another value gets a warning
 * (GST_MESSAGE_WARNING) and the backend as it is.
 *
 * After its model loaded the element posts an element message "anygpt-core":
 *   core-id (string), device (string), backends (uint: backends open in the process),
 *   backend-users (uint: elements on this backend), threads (int, cpu; 0 on vulkan),
 *   weight-files (uint: weight sets loaded in the process), model-users (uint: users of this
 *   element's model file on this backend, the element included).
 * tools/anygpt-run --verbose prints them. */
#ifndef GST_ANYGPT_SHARED_H
#define GST_ANYGPT_SHARED_H

#include <gst/gst.h>

#include "anygpt/weights.h"
#include "gstanygptcore.h"

G_BEGIN_DECLS

#define GST_ANYGPT_CORE_CONTEXT_TYPE "anygpt.core"
#define GST_ANYGPT_CORE_DEFAULT_ID "default"

/* The property ids the helper installs (the element's own start at GST_ANYGPT_SHARED_N_PROPS). */
enum
{
  GST_ANYGPT_SHARED_PROP_MODEL_PATH = 1,
  GST_ANYGPT_SHARED_PROP_DEVICE,
  GST_ANYGPT_SHARED_PROP_DEVICE_INDEX,
  GST_ANYGPT_SHARED_PROP_THREADS,
  GST_ANYGPT_SHARED_N_PROPS
};

/* Install the four properties (model_blurb describes model-path) and the set_context vfunc
 * (the element's parent must be GstElement or not override set_context). */
void gst_anygpt_shared_class_init (GstElementClass * klass, const gchar * model_blurb);
void gst_anygpt_shared_instance_init (GstElement * element);

/* set/get_property for the helper's ids: TRUE when prop_id was one of them. */
gboolean gst_anygpt_shared_set_property (GObject * object, guint prop_id, const GValue * value);
gboolean gst_anygpt_shared_get_property (GObject * object, guint prop_id, GValue * value);

/* Loads the model on backend be: returns it, or NULL with ag_last_error() set. */
typedef gpointer (*GstAnygptLoadFunc) (ag_backend * be, const gchar * path,
    ag_progress_fn progress, void *progress_user, gpointer user);

/* NULL->READY: checks model-path (what: the file it should be, for the message), negotiates
 * the context, opens (or joins) the backend and calls load with progress messages. On failure
 * posts GST_ELEMENT_ERROR naming the path and the reason, releases the backend and returns
 * NULL. On success posts the "anygpt-core" message. */
gpointer gst_anygpt_shared_load (GstElement * element, const gchar * what, GstAnygptLoadFunc load,
    gpointer user);
/* Fail a load after the model loaded (it does not fit the element): posts the error and the
 * progress error for path; the caller frees its model, then calls gst_anygpt_shared_close. */
void gst_anygpt_shared_load_failed (GstElement * element, const gchar * reason);
/* The backend (from a successful load until close). */
ag_backend *gst_anygpt_shared_backend (GstElement * element);
/* The model-path of the last load. */
const gchar *gst_anygpt_shared_model_path (GstElement * element);
/* READY->NULL, after the element freed its model: drops its use of the backend. Also done at
 * finalize. */
void gst_anygpt_shared_close (GstElement * element);

/* For pad query functions: answers GST_QUERY_CONTEXT for "anygpt.core" with the element's
 * context; FALSE for any other query (the caller goes on). */
gboolean gst_anygpt_shared_handle_query (GstElement * element, GstQuery * query);

/* Process-wide counts (for tools and messages). */
guint gst_anygpt_shared_n_backends (void);

G_END_DECLS

#endif
