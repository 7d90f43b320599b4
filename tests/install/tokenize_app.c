/* A program outside the project, as an app would write it: built against the installed core
 * only (cc tokenize_app.c $(pkg-config --cflags --libs anygpt)). It opens a GGUF, builds the
 * model's text tokenizer and prints the ids of TEXT on one line, then the ids decoded back.
 * usage: tokenize_app MODEL.gguf TEXT */
#include <anygpt/error.h>
#include <anygpt/gguf.h>
#include <anygpt/text.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s MODEL.gguf TEXT\n", argv[0]);
        return 2;
    }
    ag_gguf *f = ag_gguf_open(argv[1]);
    if (!f) {
        fprintf(stderr, "error: %s\n", ag_last_error());
        return 1;
    }
    ag_text_tokenizer *t = ag_text_tokenizer_from_gguf(f);
    if (!t) {
        fprintf(stderr, "error: %s\n", ag_last_error());
        ag_gguf_close(f);
        return 1;
    }
    int32_t *ids = NULL;
    int64_t n = ag_text_encode_alloc(t, argv[2], strlen(argv[2]), false, &ids);
    int rc = n < 0;
    for (int64_t i = 0; i < n; i++)
        printf("%s%d", i ? " " : "", ids[i]);
    printf("\n");
    if (n >= 0) {
        int64_t len = ag_text_decode(t, ids, (size_t)n, 0, NULL, 0);
        char *text = len >= 0 ? malloc((size_t)len + 1) : NULL;
        if (text && ag_text_decode(t, ids, (size_t)n, 0, text, (size_t)len + 1) == len)
            printf("%s\n", text);
        else
            rc = 1;
        free(text);
    }
    if (rc)
        fprintf(stderr, "error: %s\n", ag_last_error());
    free(ids);
    ag_text_tokenizer_free(t);
    ag_gguf_close(f);
    return rc;
}
