/* Shared by the model-loader fuzz targets: the input is a GGUF header (fz_write_gguf_padded
 * supplies zero weights), the loader runs on one cpu backend (one thread, made once), a refusal
 * must carry a message, and a tiny forward runs only when the declared weights are small. */
#ifndef AG_FUZZ_MODEL_H
#define AG_FUZZ_MODEL_H

#include "fuzz_util.h"

#include "anygpt/backend.h"
#include "anygpt/error.h"

#include <stdlib.h>

/* Weights above this are not materialised (the header is loaded as it is, and refused). */
#define FZ_MODEL_MAX_FILE ((size_t)64 << 20)
/* Forward passes only below this much declared weight data (zeros: fast, but not free). */
#define FZ_MODEL_FORWARD_BYTES ((uint64_t)8 << 20)

static inline ag_backend *fz_cpu(void)
{
    static ag_backend *be;
    if (!be && !(be = ag_backend_cpu_new(1)))
        abort();
    return be;
}

/* Writes the padded model file; *small: a forward pass is affordable. */
static inline const char *fz_model_file(const uint8_t *data, size_t size, bool *small)
{
    bool padded;
    const char *path = fz_write_gguf_padded("model", data, size, FZ_MODEL_MAX_FILE, &padded);
    *small = fz_gguf_declared_bytes(data, size) <= FZ_MODEL_FORWARD_BYTES;
    ag_clear_error();
    return path;
}

#endif
