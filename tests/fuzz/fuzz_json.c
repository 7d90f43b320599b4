/* The converters' strict JSON reader (tools/convert/json.c): config.json, tokenizer files,
 * safetensors headers. Parse, walk the tree (every typed getter on every object member). */
#include "fuzz_util.h"

#include "anygpt/error.h"
#include "json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static volatile size_t sink;

static void walk(const json_value *v, int depth)
{
    if (depth > 200) {
        fprintf(stderr, "fuzz_json: tree deeper than the parser's limit\n");
        abort();
    }
    switch (v->kind) {
    case JSON_STRING:
        if (v->str[v->len] != 0)
            abort();
        sink += v->len;
        break;
    case JSON_ARRAY:
    case JSON_OBJECT:
        for (size_t k = 0; k < v->n; k++) {
            if (v->kind == JSON_OBJECT) {
                const char *key = v->keys[k];
                int64_t i;
                double d;
                bool b;
                if (!json_get(v, key))
                    abort();
                sink += json_get_int(v, key, &i) + json_get_num(v, key, &d) + json_get_bool(v, key, &b) +
                        (json_get_str(v, key) != NULL);
            }
            walk(v->items[k], depth + 1);
        }
        break;
    default:
        break;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ag_clear_error();
    json_value *v = json_parse((const char *)data, size, "fuzz.json");
    if (!v) {
        fz_expect_error("json_parse");
        return 0;
    }
    walk(v, 0);
    json_free(v);
    return 0;
}
