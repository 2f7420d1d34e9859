/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Test support: a reference check that a byte string is well-formed UTF-8, written
 * from the code point ranges (no overlongs, no surrogates, at most U+10FFFF) rather
 * than from a table of second bytes, so it does not share a mistake with the code
 * under test. Used by the converter's unit test and fuzz target.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

static inline bool utf8_valid(const unsigned char *s, size_t n)
{
        size_t i = 0;

        while (i < n) {
                uint32_t cp, min;
                size_t k;

                if (s[i] < 0x80) {
                        i++;
                        continue;
                }
                if ((s[i] & 0xE0) == 0xC0) {
                        k = 1, cp = s[i] & 0x1F, min = 0x80;
                } else if ((s[i] & 0xF0) == 0xE0) {
                        k = 2, cp = s[i] & 0x0F, min = 0x800;
                } else if ((s[i] & 0xF8) == 0xF0) {
                        k = 3, cp = s[i] & 0x07, min = 0x10000;
                } else {
                        return false;
                }
                if (n - i <= k)
                        return false;
                for (size_t j = 1; j <= k; j++) {
                        if ((s[i + j] & 0xC0) != 0x80)
                                return false;
                        cp = cp << 6 | (s[i + j] & 0x3F);
                }
                if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
                        return false;
                i += k + 1;
        }
        return true;
}
