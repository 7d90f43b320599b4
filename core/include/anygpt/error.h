/* anygpt core: error reporting. Functions return NULL / -1 and leave a readable message here
 * (per thread), e.g. "model.gguf: tensor 'tok_embd' data runs past the end of the file". */
#ifndef ANYGPT_ERROR_H
#define ANYGPT_ERROR_H

#ifdef __cplusplus
extern "C" {
#endif

const char *ag_last_error(void);
#if defined(__GNUC__)
__attribute__((format(printf, 1, 2)))
#endif
void ag_set_error(const char *fmt, ...);
void ag_clear_error(void);

#ifdef __cplusplus
}
#endif
#endif
