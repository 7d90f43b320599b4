/* Small strict JSON parser (RFC 8259) for config and tokenizer files: a value tree with
 * owned strings. Hostile input gives NULL and ag_last_error() naming the file and byte offset. */
#ifndef AG_CONVERT_JSON_H
#define AG_CONVERT_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum { JSON_NULL, JSON_BOOL, JSON_NUMBER, JSON_STRING, JSON_ARRAY, JSON_OBJECT } json_kind;

typedef struct json_value json_value;
struct json_value {
    json_kind kind;
    bool b;
    double num;
    bool is_int;     /* number written without fraction/exponent and fits int64 */
    int64_t i;
    char *str;       /* JSON_STRING: UTF-8, NUL-terminated (may contain NUL: see len) */
    size_t len;
    size_t n;        /* array / object members */
    json_value **items;
    char **keys;     /* JSON_OBJECT only, parallel to items */
};

/* Parse text (not NUL-terminated) of size n; label names the source in errors. */
json_value *json_parse(const char *text, size_t n, const char *label);
/* Read and parse a file. */
json_value *json_parse_file(const char *path);
void json_free(json_value *v);

/* Object member lookup (first match), NULL when absent or v is not an object. */
const json_value *json_get(const json_value *v, const char *key);
/* Typed lookups: return false when absent or of another type. */
bool json_get_int(const json_value *v, const char *key, int64_t *out);
bool json_get_num(const json_value *v, const char *key, double *out);
bool json_get_bool(const json_value *v, const char *key, bool *out);
const char *json_get_str(const json_value *v, const char *key);

/* Read a whole file into a malloc'd buffer (NUL-appended); NULL with error set. */
char *read_whole_file(const char *path, size_t *size);

#endif
