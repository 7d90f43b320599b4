/* torch.save zips (tools/convert/zip.c + torchzip.c): the zip central directory and the
 * restricted unpickler. Whatever loads must address only bytes inside the file. */
#include "fuzz_ckpt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fz_write_tmp("pt", data, size);
    ckpt c;
    ckpt_init(&c);
    ag_clear_error();
    if (torchzip_load(&c, path) != 0)
        fz_expect_error("torchzip_load");
    else
        fz_ckpt_walk(&c);
    ckpt_free(&c);
    return 0;
}
