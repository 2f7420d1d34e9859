/* SPDX-License-Identifier: Apache-2.0 */
/*
 * conv: Kafka Connect converters for string records (see conv.h for the formats).
 *
 * DESIGN
 *
 * StringConverter and ByteArrayConverter are zero copy: the output is the input.
 *
 * JsonConverter writes into one output buffer owned by the struct conv, grown
 * geometrically and never shrunk, so once it has reached the size of the longest line
 * a call allocates nothing. The input is scanned in runs: bytes that go out unchanged
 * (printable ASCII other than " and \, and well-formed 2- and 3-byte UTF-8) are skipped
 * eight at a time while no byte of a word needs attention (conv_word_plain()), then
 * byte by byte with a 256-entry class table, and copied with one memcpy() per run. An
 * escape, a 4-byte sequence or an ill-formed sequence ends a run.
 *
 * Buffer invariant: while converting, cap >= pos + (len - run) + suffix, where pos is
 * what has been written and run the start of the pending run. A run copies byte for
 * byte, so only what ends a run has to check for room (1 byte in, 2 or 6 out; 4 in, 12
 * out; 1 to 3 in, 3 out), and the scan itself never does. The worst case is 6 bytes out
 * per byte in (\u00XX); sizes are checked against PTRDIFF_MAX before any addition can
 * wrap.
 *
 * The bytes are what Connect's JsonConverter writes for the line (checked byte for byte
 * against connect-json 3.7 and 4.0, Jackson 2.16, JDK 17 and 25, on every 1- and 2-byte
 * input and millions of others). Connect gets the line as a Java String decoded with
 * REPLACE, and Jackson's UTF8JsonGenerator writes that String back:
 *   - " and \ escaped, \b \t \n \f \r, other chars below 0x20 as \u00XX (uppercase
 *     hex); DEL, '/' and the rest of the BMP (U+2028, U+2029, U+FFFF included) as UTF-8;
 *   - a char outside the BMP is a surrogate pair in Java, and Jackson escapes each half
 *     (JsonWriteFeature.COMBINE_UNICODE_SURROGATES_IN_UTF8 is off by default): U+1F600,
 *     F0 9F 98 80, becomes \uD83D\uDE00;
 *   - ill-formed UTF-8 becomes U+FFFD, EF BF BD, once for each maximal subpart (Unicode
 *     3.9, "U+FFFD substitution of maximal subparts"), with one exception in Java's
 *     decoder: for lead byte ED it accepts any second byte 80-BF and rejects an encoded
 *     surrogate (ED A0-BF 80-BF) only once decoded, as a whole. So ED A0 80 is one
 *     U+FFFD (maximal subparts would give three), and ED A0 followed by a
 *     non-continuation byte one U+FFFD for both bytes. conv_utf8_seq() is the one place
 *     that knows this.
 */
#include "agent/conv.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* First size of a JSON converter's buffer; it grows from there. */
#define CONV_INITIAL_CAP 256
/* Largest buffer, so that pointer differences within it are defined. */
#define CONV_MAX_CAP ((size_t)PTRDIFF_MAX)

/* conv_esc[] value besides the escape letters: a byte of a multi-byte sequence. */
#define CONV_HI 1

/* n copies of v, for the ranges of conv_esc[]. */
#define CONV_X2(v)   v, v
#define CONV_X4(v)   CONV_X2(v), CONV_X2(v)
#define CONV_X8(v)   CONV_X4(v), CONV_X4(v)
#define CONV_X16(v)  CONV_X8(v), CONV_X8(v)
#define CONV_X32(v)  CONV_X16(v), CONV_X16(v)
#define CONV_X64(v)  CONV_X32(v), CONV_X32(v)
#define CONV_X128(v) CONV_X64(v), CONV_X64(v)

struct conv {
        enum conv_kind kind;
        bool schemas_enable;
        char *buf;
        size_t cap;
};

struct conv_class {
        enum conv_kind kind;
        const char *names[3]; /* fully qualified (canonical), simple, without "Converter" */
};

static const struct conv_class conv_classes[] = {
        {CONV_STRING,
         {"org.apache.kafka.connect.storage.StringConverter", "StringConverter", "String"}},
        {CONV_BYTEARRAY,
         {"org.apache.kafka.connect.converters.ByteArrayConverter", "ByteArrayConverter",
          "ByteArray"}},
        {CONV_JSON, {"org.apache.kafka.connect.json.JsonConverter", "JsonConverter", "Json"}},
};

static const char conv_schema_prefix[] =
        "{\"schema\":{\"type\":\"string\",\"optional\":false},\"payload\":\"";
static const char conv_schema_suffix[] = "\"}";

static const char conv_hex[] = "0123456789ABCDEF";

/*
 * What a byte becomes in a JSON string: 0 itself, 'u' \u00XX, CONV_HI part of a UTF-8
 * sequence to check, anything else a backslash and that character.
 */
static const unsigned char conv_esc[256] = {
        [0x00] = CONV_X8('u'),  [0x08] = 'b', [0x09] = 't',  [0x0A] = 'n',
        [0x0B] = 'u',           [0x0C] = 'f', [0x0D] = 'r',  [0x0E] = CONV_X2('u'),
        [0x10] = CONV_X16('u'), ['"'] = '"',  ['\\'] = '\\', [0x80] = CONV_X128(CONV_HI),
};

int conv_kind_from_class(const char *class_name, enum conv_kind *ret_kind)
{
        if (!class_name)
                return -ENOENT;
        for (size_t i = 0; i < sizeof(conv_classes) / sizeof(conv_classes[0]); i++) {
                for (size_t j = 0; j < 3; j++) {
                        if (strcmp(class_name, conv_classes[i].names[j]) == 0) {
                                *ret_kind = conv_classes[i].kind;
                                return 0;
                        }
                }
        }
        return -ENOENT;
}

/* NULL for a value outside enum conv_kind. */
const char *conv_kind_class(enum conv_kind kind)
{
        for (size_t i = 0; i < sizeof(conv_classes) / sizeof(conv_classes[0]); i++) {
                if (conv_classes[i].kind == kind)
                        return conv_classes[i].names[0];
        }
        return NULL;
}

/* Grows the buffer to at least need bytes (need <= CONV_MAX_CAP), keeping its bytes. */
static int conv_grow(struct conv *c, size_t need)
{
        size_t cap = c->cap ? c->cap : CONV_INITIAL_CAP;
        char *buf;

        while (cap < need) {
                if (cap > CONV_MAX_CAP / 2) {
                        cap = need;
                        break;
                }
                cap *= 2;
        }
        buf = realloc(c->buf, cap);
        if (!buf)
                return -ENOMEM;
        c->buf = buf;
        c->cap = cap;
        return 0;
}

/* Makes room for add bytes at pos, then rest more, keeping buf[0..pos). */
static int conv_reserve(struct conv *c, size_t pos, size_t add, size_t rest)
{
        if (pos > CONV_MAX_CAP || add > CONV_MAX_CAP - pos || rest > CONV_MAX_CAP - pos - add)
                return -ENOMEM;
        if (pos + add + rest <= c->cap)
                return 0;
        return conv_grow(c, pos + add + rest);
}

int conv_new(enum conv_kind kind, bool schemas_enable, struct conv **ret_conv)
{
        struct conv *c;

        if (!conv_kind_class(kind))
                return -EINVAL;
        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->kind = kind;
        c->schemas_enable = schemas_enable;
        if (kind == CONV_JSON && conv_grow(c, CONV_INITIAL_CAP) < 0) {
                conv_free(c);
                return -ENOMEM;
        }
        *ret_conv = c;
        return 0;
}

void conv_free(struct conv *c)
{
        if (!c)
                return;
        free(c->buf);
        free(c);
}

/*
 * True if none of the 8 bytes of x needs attention: all are below 0x80, none is below
 * 0x20, '"' or '\'. Each test is the exact "has a zero byte" / "has a byte less than n"
 * word trick (valid for n <= 0x80 once the high bits are known clear), so the answer
 * does not depend on byte order.
 */
static inline bool conv_word_plain(uint64_t x)
{
        const uint64_t ones = 0x0101010101010101ULL;
        const uint64_t highs = 0x8080808080808080ULL;
        uint64_t quote = x ^ (ones * '"');
        uint64_t bslash = x ^ (ones * '\\');

        if (x & highs)
                return false;
        return (((x - ones * 0x20) | (quote - ones) | (bslash - ones)) & highs) == 0;
}

/*
 * Looks at the UTF-8 sequence starting at s[0] (a byte >= 0x80), n >= 1 bytes available.
 * Returns its length (2 to 4) if well formed, else minus the number of bytes one U+FFFD
 * replaces (1 to 3), as Java's decoder does (see DESIGN).
 */
static int conv_utf8_seq(const unsigned char *s, size_t n)
{
        unsigned char lead = s[0], lo = 0x80, hi = 0xBF;
        int seq_len;

        if (lead < 0xC2)
                return -1; /* continuation byte, or C0/C1 (always overlong) */
        if (lead < 0xE0) {
                seq_len = 2;
        } else if (lead < 0xF0) {
                seq_len = 3;
                if (lead == 0xE0)
                        lo = 0xA0; /* E0 80-9F is overlong */
        } else if (lead < 0xF5) {
                seq_len = 4;
                if (lead == 0xF0)
                        lo = 0x90; /* F0 80-8F is overlong */
                else if (lead == 0xF4)
                        hi = 0x8F; /* F4 90-BF is above U+10FFFF */
        } else {
                return -1;
        }
        if (n < 2 || s[1] < lo || s[1] > hi)
                return -1;
        for (int k = 2; k < seq_len; k++) {
                if ((size_t)k >= n || (s[k] & 0xC0) != 0x80)
                        return -k;
        }
        /* Java rejects an encoded surrogate after decoding it, as one malformed input;
         * the maximal-subpart rule would have stopped at ED A0-BF. */
        if (lead == 0xED && s[1] >= 0xA0)
                return -3;
        return seq_len;
}

/* Writes \uXXXX (uppercase hex) at p. */
static void conv_put_u(char *p, unsigned int unit)
{
        p[0] = '\\';
        p[1] = 'u';
        p[2] = conv_hex[(unit >> 12) & 0xF];
        p[3] = conv_hex[(unit >> 8) & 0xF];
        p[4] = conv_hex[(unit >> 4) & 0xF];
        p[5] = conv_hex[unit & 0xF];
}

/* Writes the well-formed 4-byte sequence s as Jackson does: its UTF-16 surrogate pair,
 * each half escaped, 12 bytes at p. */
static void conv_put_surrogates(char *p, const unsigned char *s)
{
        unsigned int cp = (unsigned int)(s[0] & 0x07) << 18 | (unsigned int)(s[1] & 0x3F) << 12 |
                          (unsigned int)(s[2] & 0x3F) << 6 | (s[3] & 0x3F);

        cp -= 0x10000;
        conv_put_u(p, 0xD800 + (cp >> 10));
        conv_put_u(p + 6, 0xDC00 + (cp & 0x3FF));
}

/* Converts in[0..len) into c->buf; *ret_len is the output length. */
static int conv_json(struct conv *c, const unsigned char *in, size_t len, size_t *ret_len)
{
        const char *prefix = c->schemas_enable ? conv_schema_prefix : "\"";
        size_t prefix_len = c->schemas_enable ? sizeof(conv_schema_prefix) - 1 : 1;
        const char *suffix = c->schemas_enable ? conv_schema_suffix : "\"";
        size_t suffix_len = c->schemas_enable ? sizeof(conv_schema_suffix) - 1 : 1;
        size_t pos, run = 0, i = 0;
        int r;

        r = conv_reserve(c, prefix_len, len, suffix_len);
        if (r < 0)
                return r;
        memcpy(c->buf, prefix, prefix_len);
        pos = prefix_len;

        while (i < len) {
                unsigned char e;
                size_t used, out;
                int seq = 0;

                while (len - i >= 8) {
                        uint64_t word;

                        memcpy(&word, in + i, sizeof(word));
                        if (!conv_word_plain(word))
                                break;
                        i += 8;
                }
                while (i < len && conv_esc[in[i]] == 0)
                        i++;
                if (i == len)
                        break;

                e = conv_esc[in[i]];
                if (e == CONV_HI) {
                        seq = conv_utf8_seq(in + i, len - i);
                        if (seq == 2 || seq == 3) {
                                i += (size_t)seq; /* well formed BMP: part of the run */
                                continue;
                        }
                        used = seq == 4 ? 4 : (size_t)-seq;
                        out = seq == 4 ? 12 : 3;
                } else {
                        used = 1;
                        out = e == 'u' ? 6 : 2;
                }

                memcpy(c->buf + pos, in + run, i - run);
                pos += i - run;
                r = conv_reserve(c, pos, out, len - i - used + suffix_len);
                if (r < 0)
                        return r;
                if (seq == 4) {
                        conv_put_surrogates(c->buf + pos, in + i);
                } else if (e == CONV_HI) {
                        memcpy(c->buf + pos, "\xEF\xBF\xBD", 3);
                } else if (e == 'u') {
                        conv_put_u(c->buf + pos, in[i]);
                } else {
                        c->buf[pos] = '\\';
                        c->buf[pos + 1] = (char)e;
                }
                pos += out;
                i += used;
                run = i;
        }

        memcpy(c->buf + pos, in + run, len - run);
        pos += len - run;
        memcpy(c->buf + pos, suffix, suffix_len);
        *ret_len = pos + suffix_len;
        return 0;
}

int conv_string(struct conv *c, const char *in, size_t len, const void **ret_out, size_t *ret_len)
{
        size_t out_len;
        int r;

        if (!in) {
                *ret_out = NULL;
                *ret_len = 0;
                return 0;
        }
        if (c->kind != CONV_JSON) {
                *ret_out = in;
                *ret_len = len;
                return 0;
        }
        r = conv_json(c, (const unsigned char *)in, len, &out_len);
        if (r < 0)
                return r;
        *ret_out = c->buf;
        *ret_len = out_len;
        return 0;
}
