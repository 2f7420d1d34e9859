/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fuzz target for conv: arbitrary bytes as a line, converted by each converter.
 *
 * Checked for JsonConverter:
 *   - the output is well-formed UTF-8 and parses with jansson to a string (inside the
 *     {"schema":...,"payload":...} envelope when schemas.enable=true), and the envelope
 *     holds exactly the schemas.enable=false bytes;
 *   - when the input is well-formed UTF-8, the parsed string is the input, byte for byte;
 *   - the output equals ref_json(), a plain byte-at-a-time model written after Java's
 *     own UTF-8 decoder (String(byte[], UTF_8) in JDK 17) and Jackson's
 *     UTF8JsonGenerator, so the word-wise scan and the maximal-subpart table in conv.c
 *     are checked against an independent formulation.
 * String and ByteArray must hand back the input itself.
 */
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/conv.h"
#include "tests/support/utf8.h"

#define CHECK(cond)                                                                                \
        do {                                                                                       \
                if (!(cond)) {                                                                     \
                        fprintf(stderr, "fuzz_conv: %s:%d: %s\n", __FILE__, __LINE__, #cond);      \
                        abort();                                                                   \
                }                                                                                  \
        } while (0)

#define SCHEMA_PREFIX "{\"schema\":{\"type\":\"string\",\"optional\":false},\"payload\":"

struct ref {
        char *buf;
        size_t len;
};

static void ref_put(struct ref *r, const char *s, size_t n)
{
        memcpy(r->buf + r->len, s, n);
        r->len += n;
}

/* One UTF-16 code unit written as Jackson does. */
static void ref_unit(struct ref *r, unsigned int u)
{
        char tmp[8];

        switch (u) {
        case '"':
                ref_put(r, "\\\"", 2);
                return;
        case '\\':
                ref_put(r, "\\\\", 2);
                return;
        case '\b':
                ref_put(r, "\\b", 2);
                return;
        case '\t':
                ref_put(r, "\\t", 2);
                return;
        case '\n':
                ref_put(r, "\\n", 2);
                return;
        case '\f':
                ref_put(r, "\\f", 2);
                return;
        case '\r':
                ref_put(r, "\\r", 2);
                return;
        }
        if (u < 0x20 || (u >= 0xD800 && u <= 0xDFFF)) {
                (void)snprintf(tmp, sizeof(tmp), "\\u%04X", u);
                ref_put(r, tmp, 6);
        } else if (u < 0x80) {
                tmp[0] = (char)u;
                ref_put(r, tmp, 1);
        } else if (u < 0x800) {
                tmp[0] = (char)(0xC0 | u >> 6);
                tmp[1] = (char)(0x80 | (u & 0x3F));
                ref_put(r, tmp, 2);
        } else {
                tmp[0] = (char)(0xE0 | u >> 12);
                tmp[1] = (char)(0x80 | ((u >> 6) & 0x3F));
                tmp[2] = (char)(0x80 | (u & 0x3F));
                ref_put(r, tmp, 3);
        }
}

static bool cont(int b)
{
        return (b & 0xC0) == 0x80;
}

/* The JSON string (with quotes) Connect writes for s[0..n), into r (room for 6n + 2). */
static void ref_json(const uint8_t *s, size_t n, struct ref *r)
{
        size_t sp = 0;

        ref_put(r, "\"", 1);
        while (sp < n) {
                int b1 = s[sp++];

                if (b1 < 0x80) {
                        ref_unit(r, (unsigned int)b1);
                } else if (b1 >= 0xC2 && b1 <= 0xDF) {
                        if (sp < n && cont(s[sp])) {
                                ref_unit(r, (unsigned int)((b1 & 0x1F) << 6 | (s[sp] & 0x3F)));
                                sp++;
                        } else {
                                ref_unit(r, 0xFFFD);
                        }
                } else if (b1 >= 0xE0 && b1 <= 0xEF) {
                        if (sp + 1 < n) {
                                int b2 = s[sp], b3 = s[sp + 1];

                                if ((b1 == 0xE0 && (b2 & 0xE0) == 0x80) || !cont(b2) || !cont(b3)) {
                                        /* malformedN(3): 1 byte if b2 cannot follow. */
                                        ref_unit(r, 0xFFFD);
                                        if (!((b1 == 0xE0 && (b2 & 0xE0) == 0x80) || !cont(b2)))
                                                sp++;
                                } else {
                                        unsigned int c =
                                                (unsigned int)((b1 & 0x0F) << 12 |
                                                               (b2 & 0x3F) << 6 | (b3 & 0x3F));

                                        ref_unit(r, c >= 0xD800 && c <= 0xDFFF ? 0xFFFD : c);
                                        sp += 2;
                                }
                                continue;
                        }
                        ref_unit(r, 0xFFFD);
                        if (sp < n && ((b1 == 0xE0 && (s[sp] & 0xE0) == 0x80) || !cont(s[sp])))
                                continue;
                        break;
                } else if (b1 >= 0xF0 && b1 <= 0xF7) {
                        if (sp + 2 < n) {
                                int b2 = s[sp], b3 = s[sp + 1], b4 = s[sp + 2];
                                unsigned int uc =
                                        (unsigned int)((b1 & 0x07) << 18 | (b2 & 0x3F) << 12 |
                                                       (b3 & 0x3F) << 6 | (b4 & 0x3F));

                                if (!cont(b2) || !cont(b3) || !cont(b4) || uc < 0x10000 ||
                                    uc > 0x10FFFF) {
                                        /* malformedN(4) */
                                        ref_unit(r, 0xFFFD);
                                        if (b1 > 0xF4 || (b1 == 0xF0 && (b2 < 0x90 || b2 > 0xBF)) ||
                                            (b1 == 0xF4 && (b2 & 0xF0) != 0x80) || !cont(b2))
                                                continue;
                                        sp++;
                                        if (!cont(b3))
                                                continue;
                                        sp++;
                                } else {
                                        uc -= 0x10000;
                                        ref_unit(r, 0xD800 + (uc >> 10));
                                        ref_unit(r, 0xDC00 + (uc & 0x3FF));
                                        sp += 3;
                                }
                                continue;
                        }
                        ref_unit(r, 0xFFFD);
                        if (b1 > 0xF4)
                                continue;
                        if (sp < n) {
                                int b2 = s[sp];

                                if ((b1 == 0xF0 && (b2 < 0x90 || b2 > 0xBF)) ||
                                    (b1 == 0xF4 && (b2 & 0xF0) != 0x80) || !cont(b2))
                                        continue;
                        }
                        sp++;
                        if (sp < n && !cont(s[sp]))
                                continue;
                        break;
                } else {
                        ref_unit(r, 0xFFFD);
                }
        }
        ref_put(r, "\"", 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        /* Kept across inputs, as the agent keeps them across lines. */
        static struct conv *json[2], *raw[2];
        const void *out[2];
        size_t len[2];
        const char *in = (const char *)data;
        bool valid = utf8_valid(data, size);
        struct ref ref = {0};
        json_error_t err;
        json_t *j;

        if (!json[0]) {
                CHECK(conv_new(CONV_JSON, false, &json[0]) == 0);
                CHECK(conv_new(CONV_JSON, true, &json[1]) == 0);
                CHECK(conv_new(CONV_STRING, false, &raw[0]) == 0);
                CHECK(conv_new(CONV_BYTEARRAY, false, &raw[1]) == 0);
        }
        if (size > 1 << 20)
                return 0;

        for (int k = 0; k < 2; k++) {
                const void *o = NULL;
                size_t l = 0;

                CHECK(conv_string(raw[k], in, size, &o, &l) == 0);
                CHECK(o == (const void *)in && l == size);
        }

        for (int s = 0; s < 2; s++) {
                CHECK(conv_string(json[s], in, size, &out[s], &len[s]) == 0);
                CHECK(out[s] != NULL);
                CHECK(utf8_valid(out[s], len[s]));
        }
        /* The schemas.enable=false bytes must survive the next call on the other
         * converter: each converter has its own buffer. */
        CHECK(len[1] == strlen(SCHEMA_PREFIX) + len[0] + 1);
        CHECK(memcmp(out[1], SCHEMA_PREFIX, strlen(SCHEMA_PREFIX)) == 0);
        CHECK(memcmp((const char *)out[1] + strlen(SCHEMA_PREFIX), out[0], len[0]) == 0);
        CHECK(((const char *)out[1])[len[1] - 1] == '}');

        ref.buf = malloc(6 * size + 2);
        CHECK(ref.buf != NULL);
        ref_json(data, size, &ref);
        CHECK(ref.len == len[0] && memcmp(ref.buf, out[0], len[0]) == 0);
        free(ref.buf);

        j = json_loadb(out[0], len[0], JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);
        CHECK(j != NULL);
        CHECK(json_is_string(j));
        if (valid)
                CHECK(json_string_length(j) == size &&
                      memcmp(json_string_value(j), data, size) == 0);
        json_decref(j);

        j = json_loadb(out[1], len[1], JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);
        CHECK(j != NULL);
        CHECK(json_is_object(j) && json_object_size(j) == 2);
        CHECK(json_is_string(json_object_get(j, "payload")));
        CHECK(json_is_object(json_object_get(j, "schema")));
        json_decref(j);
        return 0;
}
