/* anygpt core: a model's weights, from one GGUF file onto one backend.
 *
 * Every GGUF tensor becomes an ag_tensor (named as in the file, flagged PARAM) bound to backend
 * memory: on a host-visible backend (cpu) the tensors point straight into the read-only mapping
 * (no copy); elsewhere one device buffer is allocated and each tensor uploaded once. */
#ifndef ANYGPT_WEIGHTS_H
#define ANYGPT_WEIGHTS_H

#include "anygpt/backend.h"
#include "anygpt/gguf.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ag_weights ag_weights;

/* Called during loading with bytes done / total; return false to cancel (load then fails with
 * "cancelled"). May be NULL. */
typedef bool (*ag_progress_fn)(void *user, uint64_t done, uint64_t total);

/* Open path, check general.architecture == arch (NULL: any), bind every tensor to be.
 * Shared: while a load of the same file (same inode, size and mtime) onto the same backend is
 * alive, the same read-only weights are returned again (progress is called once with
 * total/total) and counted; ag_weights_free drops one user and frees with the last. So model
 * objects of one file (two elements, two pipelines) map and upload it once. Thread-safe. */
ag_weights *ag_weights_load(ag_backend *be, const char *path, const char *arch, ag_progress_fn progress, void *user);
void ag_weights_free(ag_weights *w);
/* Users of w (loads not yet freed). */
int ag_weights_users(const ag_weights *w);
/* Users of the shared weights of path on be (0: not loaded there). */
int ag_weights_shared_users(ag_backend *be, const char *path);
/* Process-wide: distinct weight sets alive (file x backend), their users, device bytes. */
void ag_weights_shared_stats(size_t *n_files, size_t *n_users, size_t *device_bytes);

const ag_gguf *ag_weights_gguf(const ag_weights *w);
const char *ag_weights_path(const ag_weights *w);
/* The tensor called name, or NULL with an error naming the file and the tensor. */
ag_tensor *ag_weights_get(ag_weights *w, const char *name);
/* Same, also checking the shape (ne0..ne[n_dims-1]; trailing dims must be 1). */
ag_tensor *ag_weights_get_shaped(ag_weights *w, const char *name, int n_dims, const int64_t *ne);
/* Optional tensor: NULL without an error when absent. */
ag_tensor *ag_weights_find(ag_weights *w, const char *name);
/* Bytes of weights on the backend (0 for zero-copy cpu mappings). */
size_t ag_weights_device_bytes(const ag_weights *w);
size_t ag_weights_total_bytes(const ag_weights *w);

#ifdef __cplusplus
}
#endif
#endif
