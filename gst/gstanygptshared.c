#include "gstanygptshared.h"

#include <unistd.h>

#include "anygpt/error.h"

#define GST_CAT_DEFAULT anygpt_core_debug

/* ---- the process-wide backend registry ---- */

typedef struct
{
  gchar *core_id;
  ag_device_kind kind;          /* CPU or VULKAN: auto is resolved before the lookup */
  gint index;                   /* vulkan: the index asked for (-1: the backend's own pick) */
  ag_backend *be;
  gint threads;                 /* cpu threads it runs (0 on vulkan) */
  guint users;
} BackendEntry;

static GMutex reg_lock;
static GList *reg_backends;     /* of BackendEntry */

guint
gst_anygpt_shared_n_backends (void)
{
  g_mutex_lock (&reg_lock);
  guint n = g_list_length (reg_backends);
  g_mutex_unlock (&reg_lock);
  return n;
}

static gint
online_cpus (void)
{
  long n = sysconf (_SC_NPROCESSORS_ONLN);
  return n > 0 ? (gint) n : 1;
}

/* auto without an index: the first Vulkan GPU (never a CPU driver), else cpu; asked once */
static gint
first_gpu (void)
{
  static gsize done = 0;
  static gint gpu = -1;
  if (g_once_init_enter (&done)) {
    gpu = ag_vulkan_first_gpu ();
    g_once_init_leave (&done, 1);
  }
  return gpu;
}

static const gchar *
device_name (GstAnygptDevice d)
{
  return d == GST_ANYGPT_DEVICE_CPU ? "cpu" : d == GST_ANYGPT_DEVICE_VULKAN ? "vulkan" : "auto";
}

/* With reg_lock held: the entry for (core, kind, index), opened if new. */
static BackendEntry *
entry_get_locked (const gchar * core_id, ag_device_kind kind, gint index, gint threads)
{
  for (GList * l = reg_backends; l; l = l->next) {
    BackendEntry *e = l->data;
    if (e->kind == kind && e->index == index && g_str_equal (e->core_id, core_id))
      return e;
  }
  ag_backend *be = kind == AG_DEVICE_CPU ? ag_backend_cpu_new (threads) :
      ag_backend_vulkan_new (index);
  if (!be)
    return NULL;
  BackendEntry *e = g_new0 (BackendEntry, 1);
  e->core_id = g_strdup (core_id);
  e->kind = kind;
  e->index = index;
  e->be = be;
  e->threads = kind == AG_DEVICE_CPU ? ag_backend_cpu_n_threads (be) : 0;
  reg_backends = g_list_prepend (reg_backends, e);
  GST_INFO ("core '%s': opened backend %s on %s", core_id, ag_backend_name (be),
      ag_backend_device_name (be));
  return e;
}

static BackendEntry *
backend_acquire (const gchar * core_id, GstAnygptDevice device, gint index, gint threads,
    GError ** error)
{
  BackendEntry *e = NULL;
  g_mutex_lock (&reg_lock);
  ag_clear_error ();
  if (device == GST_ANYGPT_DEVICE_CPU)
    e = entry_get_locked (core_id, AG_DEVICE_CPU, 0, threads);
  else if (device == GST_ANYGPT_DEVICE_VULKAN)
    e = entry_get_locked (core_id, AG_DEVICE_VULKAN, index, threads);
  else if (index >= 0)
    e = entry_get_locked (core_id, AG_DEVICE_VULKAN, index, threads);
  else {
    /* as ag_backend_new (auto): the first GPU, else (none, or it fails to open) cpu */
    gint gpu = first_gpu ();
    if (gpu >= 0)
      e = entry_get_locked (core_id, AG_DEVICE_VULKAN, gpu, threads);
    if (!e)
      e = entry_get_locked (core_id, AG_DEVICE_CPU, 0, threads);
  }
  if (e)
    e->users++;
  else
    g_set_error (error, GST_ANYGPT_ERROR, 0, "cannot open device %s (index %d): %s",
        device_name (device), index, ag_last_error ());
  g_mutex_unlock (&reg_lock);
  return e;
}

static void
backend_release (BackendEntry * e)
{
  g_mutex_lock (&reg_lock);
  gboolean last = --e->users == 0;
  if (last)
    reg_backends = g_list_remove (reg_backends, e);
  g_mutex_unlock (&reg_lock);
  if (!last)
    return;
  GST_INFO ("core '%s': closing backend %s on %s", e->core_id, ag_backend_name (e->be),
      ag_backend_device_name (e->be));
  ag_backend_free (e->be);
  g_free (e->core_id);
  g_free (e);
}

/* ---- the per-element part ---- */

typedef struct
{
  GMutex lock;                  /* properties and context */
  gchar *model_path;
  GstAnygptDevice device;
  gint device_index, threads;
  GstContext *context;          /* "anygpt.core", set by the app, the bin, or chosen at load */
  /* from a successful load to close (streaming-thread side, no lock needed) */
  BackendEntry *entry;
  gchar *loaded_path;
} Slot;

static GQuark
slot_quark (void)
{
  static gsize q = 0;
  if (g_once_init_enter (&q))
    g_once_init_leave (&q, g_quark_from_static_string ("gst-anygpt-shared"));
  return (GQuark) q;
}

static Slot *
slot_of (gpointer element)
{
  Slot *s = g_object_get_qdata (G_OBJECT (element), slot_quark ());
  g_assert (s != NULL);
  return s;
}

/* runs at the element's finalize, after the element freed its model */
static void
slot_free (gpointer data)
{
  Slot *s = data;
  if (s->entry)
    backend_release (s->entry);
  if (s->context)
    gst_context_unref (s->context);
  g_free (s->model_path);
  g_free (s->loaded_path);
  g_mutex_clear (&s->lock);
  g_free (s);
}

void
gst_anygpt_shared_instance_init (GstElement * element)
{
  Slot *s = g_new0 (Slot, 1);
  g_mutex_init (&s->lock);
  s->device = GST_ANYGPT_DEVICE_AUTO;
  s->device_index = -1;
  s->threads = 0;
  g_object_set_qdata_full (G_OBJECT (element), slot_quark (), s, slot_free);
}

static void
shared_set_context (GstElement * element, GstContext * context)
{
  if (g_str_equal (gst_context_get_context_type (context), GST_ANYGPT_CORE_CONTEXT_TYPE)) {
    Slot *s = slot_of (element);
    g_mutex_lock (&s->lock);
    gst_context_replace (&s->context, context);
    g_mutex_unlock (&s->lock);
  }
  GstElementClass *base = g_type_class_peek (GST_TYPE_ELEMENT);
  base->set_context (element, context);
}

void
gst_anygpt_shared_class_init (GstElementClass * klass, const gchar * model_blurb)
{
  GObjectClass *oc = G_OBJECT_CLASS (klass);
  /* the model is loaded on NULL->READY: these take effect at the next load */
  const GParamFlags flags = G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_READY;
  g_object_class_install_property (oc, GST_ANYGPT_SHARED_PROP_MODEL_PATH,
      g_param_spec_string ("model-path", "Model path", model_blurb, NULL, flags));
  g_object_class_install_property (oc, GST_ANYGPT_SHARED_PROP_DEVICE,
      g_param_spec_enum ("device", "Device", "Compute device", GST_TYPE_ANYGPT_DEVICE,
          GST_ANYGPT_DEVICE_AUTO, flags));
  g_object_class_install_property (oc, GST_ANYGPT_SHARED_PROP_DEVICE_INDEX,
      g_param_spec_int ("device-index", "Device index",
          "Vulkan device index (-1: first GPU, else the first device)", -1, 64, -1, flags));
  g_object_class_install_property (oc, GST_ANYGPT_SHARED_PROP_THREADS,
      g_param_spec_int ("threads", "Threads",
          "CPU threads of the shared backend (0: all online processors). The first element "
          "to open the backend sets it (or the anygpt.core context's threads); a later "
          "element asking for another count gets a warning", 0, 1024, 0, flags));
  klass->set_context = GST_DEBUG_FUNCPTR (shared_set_context);
  gst_type_mark_as_plugin_api (GST_TYPE_ANYGPT_DEVICE, 0);
}

gboolean
gst_anygpt_shared_set_property (GObject * object, guint prop_id, const GValue * value)
{
  if (prop_id < GST_ANYGPT_SHARED_PROP_MODEL_PATH || prop_id >= GST_ANYGPT_SHARED_N_PROPS)
    return FALSE;
  Slot *s = slot_of (object);
  g_mutex_lock (&s->lock);
  switch (prop_id) {
    case GST_ANYGPT_SHARED_PROP_MODEL_PATH:
      g_free (s->model_path);
      s->model_path = g_value_dup_string (value);
      break;
    case GST_ANYGPT_SHARED_PROP_DEVICE:
      s->device = g_value_get_enum (value);
      break;
    case GST_ANYGPT_SHARED_PROP_DEVICE_INDEX:
      s->device_index = g_value_get_int (value);
      break;
    default:
      s->threads = g_value_get_int (value);
      break;
  }
  g_mutex_unlock (&s->lock);
  return TRUE;
}

gboolean
gst_anygpt_shared_get_property (GObject * object, guint prop_id, GValue * value)
{
  if (prop_id < GST_ANYGPT_SHARED_PROP_MODEL_PATH || prop_id >= GST_ANYGPT_SHARED_N_PROPS)
    return FALSE;
  Slot *s = slot_of (object);
  g_mutex_lock (&s->lock);
  switch (prop_id) {
    case GST_ANYGPT_SHARED_PROP_MODEL_PATH:
      g_value_set_string (value, s->model_path);
      break;
    case GST_ANYGPT_SHARED_PROP_DEVICE:
      g_value_set_enum (value, s->device);
      break;
    case GST_ANYGPT_SHARED_PROP_DEVICE_INDEX:
      g_value_set_int (value, s->device_index);
      break;
    default:
      g_value_set_int (value, s->threads);
      break;
  }
  g_mutex_unlock (&s->lock);
  return TRUE;
}

static gboolean
has_context (Slot * s)
{
  g_mutex_lock (&s->lock);
  gboolean have = s->context != NULL;
  g_mutex_unlock (&s->lock);
  return have;
}

/* Ask every pad's peer; TRUE when one answered (and the context was set). */
static gboolean
query_peers (GstElement * element)
{
  gboolean found = FALSE;
  GstQuery *q = gst_query_new_context (GST_ANYGPT_CORE_CONTEXT_TYPE);
  GST_OBJECT_LOCK (element);
  GList *pads = g_list_copy (element->pads);
  g_list_foreach (pads, (GFunc) (void (*)(void)) gst_object_ref, NULL);
  GST_OBJECT_UNLOCK (element);
  for (GList * l = pads; l && !found; l = l->next) {
    GstContext *ctx = NULL;
    if (gst_pad_peer_query (l->data, q)) {
      gst_query_parse_context (q, &ctx);
      if (ctx) {
        gst_element_set_context (element, ctx);
        found = TRUE;
      }
    }
  }
  g_list_free_full (pads, gst_object_unref);
  gst_query_unref (q);
  return found;
}

/* The GstContext dance (as the GL and VA elements do): a context set already, a peer's, the
 * app's or bin's answer to NEED_CONTEXT, else the default core, announced with HAVE_CONTEXT. */
static void
negotiate_context (GstElement * element, Slot * s)
{
  if (has_context (s) || query_peers (element))
    return;
  gst_element_post_message (element,
      gst_message_new_need_context (GST_OBJECT (element), GST_ANYGPT_CORE_CONTEXT_TYPE));
  if (has_context (s))
    return;
  GstContext *ctx = gst_context_new (GST_ANYGPT_CORE_CONTEXT_TYPE, TRUE);
  gst_structure_set (gst_context_writable_structure (ctx), "core-id", G_TYPE_STRING,
      GST_ANYGPT_CORE_DEFAULT_ID, NULL);
  gst_element_set_context (element, ctx);
  gst_element_post_message (element, gst_message_new_have_context (GST_OBJECT (element), ctx));
}

gboolean
gst_anygpt_shared_handle_query (GstElement * element, GstQuery * query)
{
  const gchar *type;
  if (GST_QUERY_TYPE (query) != GST_QUERY_CONTEXT || !gst_query_parse_context_type (query, &type)
      || !g_str_equal (type, GST_ANYGPT_CORE_CONTEXT_TYPE))
    return FALSE;
  Slot *s = slot_of (element);
  g_mutex_lock (&s->lock);
  GstContext *ctx = s->context ? gst_context_ref (s->context) : NULL;
  g_mutex_unlock (&s->lock);
  if (!ctx)
    return FALSE;
  gst_query_set_context (query, ctx);
  gst_context_unref (ctx);
  return TRUE;
}

static void
post_core_message (GstElement * element, Slot * s, const gchar * core_id)
{
  BackendEntry *e = s->entry;
  size_t files = 0;
  g_mutex_lock (&reg_lock);
  guint backends = g_list_length (reg_backends), users = e->users;
  g_mutex_unlock (&reg_lock);
  ag_weights_shared_stats (&files, NULL, NULL);
  gint model_users = ag_weights_shared_users (e->be, s->loaded_path);
  GST_INFO_OBJECT (element, "core '%s': %u backend(s), this one (%s) used by %u element(s); "
      "%zu weight file(s) loaded, this one by %d user(s)", core_id, backends,
      ag_backend_device_name (e->be), users, files, model_users);
  gst_element_post_message (element, gst_message_new_element (GST_OBJECT (element),
          gst_structure_new ("anygpt-core", "core-id", G_TYPE_STRING, core_id,
              "device", G_TYPE_STRING, ag_backend_device_name (e->be),
              "backends", G_TYPE_UINT, backends, "backend-users", G_TYPE_UINT, users,
              "threads", G_TYPE_INT, e->threads,
              "weight-files", G_TYPE_UINT, (guint) files,
              "model-users", G_TYPE_UINT, (guint) MAX (model_users, 0), NULL)));
}

gpointer
gst_anygpt_shared_load (GstElement * element, const gchar * what, GstAnygptLoadFunc load,
    gpointer user)
{
  Slot *s = slot_of (element);
  g_return_val_if_fail (s->entry == NULL, NULL);
  negotiate_context (element, s);

  g_mutex_lock (&s->lock);
  gchar *path = g_strdup (s->model_path);
  GstAnygptDevice device = s->device;
  gint index = s->device_index, threads = s->threads, ctx_threads = 0;
  const GstStructure *st = s->context ? gst_context_get_structure (s->context) : NULL;
  const gchar *cid = st ? gst_structure_get_string (st, "core-id") : NULL;
  gchar *core_id = g_strdup (cid ? cid : GST_ANYGPT_CORE_DEFAULT_ID);
  if (st && gst_structure_get_int (st, "threads", &ctx_threads) && ctx_threads > 0)
    threads = ctx_threads;
  g_mutex_unlock (&s->lock);

  gpointer model = NULL;
  GError *err = NULL;
  if (!path || !*path) {
    GST_ELEMENT_ERROR (element, RESOURCE, NOT_FOUND, ("No model file given"),
        ("set model-path to %s", what));
    goto done;
  }
  if (!g_file_test (path, G_FILE_TEST_IS_REGULAR)) {
    GST_ELEMENT_ERROR (element, RESOURCE, NOT_FOUND, ("Model file \"%s\" not found", path),
        ("model-path=%s is not a regular file", path));
    goto done;
  }
  s->entry = backend_acquire (core_id, device, index, threads, &err);
  if (!s->entry) {
    GST_ELEMENT_ERROR (element, RESOURCE, OPEN_READ, ("Cannot open compute device"), ("%s",
            err->message));
    g_clear_error (&err);
    goto done;
  }
  if (s->entry->kind == AG_DEVICE_CPU) {
    gint want = threads > 0 ? threads : online_cpus ();
    if (want != s->entry->threads)
      GST_ELEMENT_WARNING (element, RESOURCE, SETTINGS,
          ("threads=%d ignored: the shared cpu backend runs %d threads", threads,
              s->entry->threads),
          ("the first element to open the backend of core '%s' set its thread count; set "
              "the same threads on every element, or in the anygpt.core context", core_id));
  }
  g_free (s->loaded_path);
  s->loaded_path = g_strdup (path);
  GstAnygptLoadProgress prog = { element, -1 };
  gst_anygpt_post_progress (element, GST_PROGRESS_TYPE_START, "load", path);
  model = load (s->entry->be, path, gst_anygpt_load_progress_cb, &prog, user);
  if (!model) {
    gst_anygpt_shared_load_failed (element, ag_last_error ());
    gst_anygpt_shared_close (element);
    goto done;
  }
  gst_anygpt_post_progress (element, GST_PROGRESS_TYPE_COMPLETE, "load", path);
  post_core_message (element, s, core_id);
done:
  g_free (path);
  g_free (core_id);
  return model;
}

void
gst_anygpt_shared_load_failed (GstElement * element, const gchar * reason)
{
  Slot *s = slot_of (element);
  gst_anygpt_post_progress (element, GST_PROGRESS_TYPE_ERROR, "load", reason);
  GST_ELEMENT_ERROR (element, RESOURCE, OPEN_READ, ("Cannot use model file \"%s\"",
          s->loaded_path), ("%s", reason));
}

ag_backend *
gst_anygpt_shared_backend (GstElement * element)
{
  Slot *s = slot_of (element);
  return s->entry ? s->entry->be : NULL;
}

const gchar *
gst_anygpt_shared_model_path (GstElement * element)
{
  return slot_of (element)->loaded_path;
}

void
gst_anygpt_shared_close (GstElement * element)
{
  Slot *s = slot_of (element);
  if (s->entry) {
    backend_release (s->entry);
    s->entry = NULL;
  }
}
