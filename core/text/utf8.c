/* UTF-8 helpers for the text tokenizer. */
#include "utf8.h"

int ag_utf8_lead_len(unsigned char b)
{
    if (b < 0x80)
        return 1;
    if (b >= 0xC0 && b <= 0xDF)
        return 2;
    if (b >= 0xE0 && b <= 0xEF)
        return 3;
    if (b >= 0xF0 && b <= 0xF7)
        return 4;
    return 0;
}

static bool valid_cp(uint32_t c) { return c < 0xD800 || (c >= 0xE000 && c <= 0x10FFFF); }

int ag_utf8_decode(const unsigned char *s, size_t n, uint32_t *cp)
{
    if (n == 0)
        return 0;
    int len = ag_utf8_lead_len(s[0]);
    if (len == 0 || (size_t)len > n)
        return 0;
    if (len == 1) {
        *cp = s[0];
        return 1;
    }
    uint32_t c = s[0] & (0x7F >> len);
    for (int i = 1; i < len; i++) {
        if (!ag_utf8_is_trail(s[i]))
            return 0;
        c = (c << 6) | (s[i] & 0x3F);
    }
    static const uint32_t min_cp[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (c < min_cp[len] || !valid_cp(c))
        return 0;
    *cp = c;
    return len;
}

bool ag_utf8_valid(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        uint32_t cp;
        int l = ag_utf8_decode(p + i, n - i, &cp);
        if (l == 0)
            return false;
        i += (size_t)l;
    }
    return true;
}
