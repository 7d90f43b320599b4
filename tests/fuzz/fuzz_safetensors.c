/* safetensors (tools/convert/safetensors.c): JSON header, offsets, dtypes, shapes. */
#include "fuzz_ckpt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fz_write_tmp("st", data, size);
    ckpt c;
    ckpt_init(&c);
    ag_clear_error();
    if (safetensors_load(&c, path) != 0)
        fz_expect_error("safetensors_load");
    else
        fz_ckpt_walk(&c);
    ckpt_free(&c);
    return 0;
}
