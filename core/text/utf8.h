/* UTF-8 helpers for the text tokenizer (internal). Decoding follows SentencePiece's rules: a
 * sequence is valid when its lead byte announces its length, every continuation byte is
 * 10xxxxxx, the value is not overlong, not a surrogate and at most U+10FFFF. */
#ifndef AG_TEXT_UTF8_H
#define AG_TEXT_UTF8_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#define AG_UTF8_REPLACEMENT "\xEF\xBF\xBD"

/* Length announced by a lead byte: 1..4, or 0 for a byte that cannot start a sequence. */
int ag_utf8_lead_len(unsigned char b);
/* Decode one character from s (n bytes available). Returns its length and sets *cp, or 0 when
 * the bytes at s do not start a valid character. */
int ag_utf8_decode(const unsigned char *s, size_t n, uint32_t *cp);
/* Whole string valid? */
bool ag_utf8_valid(const char *s, size_t n);
/* True when byte b can follow in a multi-byte sequence. */
static inline bool ag_utf8_is_trail(unsigned char b) { return (b & 0xC0) == 0x80; }

#endif
