/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for conv: exact output bytes of each converter.
 *
 * The expected JSON bytes are what Connect's JsonConverter (connect-json 3.7 and 4.0,
 * Jackson 2.16) writes for the same line read as a Java String; the cases below were
 * checked against it. Notable: a character outside the BMP is written as an escaped
 * surrogate pair, and ED A0-BF 80-BF (an encoded surrogate) is one U+FFFD.
 * The random cross-check parses the output with jansson and compares it with the input
 * wherever the input is well-formed UTF-8.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "agent/conv.h"
#include "tests/support/utf8.h"

#define SCHEMA_PREFIX "{\"schema\":{\"type\":\"string\",\"optional\":false},\"payload\":"
#define FFFD          "\xEF\xBF\xBD"

/* Converts in with a fresh JSON converter and checks the output is exactly "escaped"
 * (schemas.enable=false) and the envelope around it (schemas.enable=true). */
static void check_json(const void *in, size_t len, const char *escaped)
{
        for (int schemas = 0; schemas <= 1; schemas++) {
                struct conv *c = NULL;
                const void *out = NULL;
                size_t out_len = 0;
                char *want;
                size_t want_len;

                assert_int_equal(conv_new(CONV_JSON, schemas, &c), 0);
                assert_int_equal(conv_string(c, in, len, &out, &out_len), 0);
                want_len = strlen(escaped) + 2 + (schemas ? strlen(SCHEMA_PREFIX) + 1 : 0);
                want = malloc(want_len + 1);
                assert_non_null(want);
                (void)snprintf(want, want_len + 1, "%s\"%s\"%s", schemas ? SCHEMA_PREFIX : "",
                               escaped, schemas ? "}" : "");
                assert_non_null(out);
                assert_int_equal(out_len, want_len);
                assert_memory_equal(out, want, want_len);
                free(want);
                conv_free(c);
        }
}

static void test_abc(void **state)
{
        struct conv *c;
        const void *out;
        size_t len;
        static const char plain[] = "\"abc\"";
        static const char schema[] =
                "{\"schema\":{\"type\":\"string\",\"optional\":false},\"payload\":\"abc\"}";

        (void)state;
        assert_int_equal(conv_new(CONV_JSON, false, &c), 0);
        assert_int_equal(conv_string(c, "abc", 3, &out, &len), 0);
        assert_int_equal(len, sizeof(plain) - 1);
        assert_memory_equal(out, plain, len);
        conv_free(c);

        assert_int_equal(conv_new(CONV_JSON, true, &c), 0);
        assert_int_equal(conv_string(c, "abc", 3, &out, &len), 0);
        assert_int_equal(len, sizeof(schema) - 1);
        assert_memory_equal(out, schema, len);
        conv_free(c);
}

static void test_escape_table(void **state)
{
        static const char *const ctl[32] = {
                "\\u0000", "\\u0001", "\\u0002", "\\u0003", "\\u0004", "\\u0005", "\\u0006",
                "\\u0007", "\\b",     "\\t",     "\\n",     "\\u000B", "\\f",     "\\r",
                "\\u000E", "\\u000F", "\\u0010", "\\u0011", "\\u0012", "\\u0013", "\\u0014",
                "\\u0015", "\\u0016", "\\u0017", "\\u0018", "\\u0019", "\\u001A", "\\u001B",
                "\\u001C", "\\u001D", "\\u001E", "\\u001F",
        };

        (void)state;
        for (unsigned int b = 0; b < 32; b++) {
                unsigned char in = (unsigned char)b;

                check_json(&in, 1, ctl[b]);
        }
        check_json("\"", 1, "\\\"");
        check_json("\\", 1, "\\\\");
        check_json("/", 1, "/");
        check_json("\x7F", 1, "\x7F");
        for (unsigned int b = 0x20; b < 0x7F; b++) {
                char in[2] = {(char)b, 0};

                if (b != '"' && b != '\\')
                        check_json(in, 1, in);
        }
        check_json("a\"b\\c/d\x7F"
                   "e\x1F",
                   10,
                   "a\\\"b\\\\c/d\x7F"
                   "e\\u001F");
}

static void test_utf8_valid(void **state)
{
        (void)state;
        check_json("\xC3\xA9", 2, "\xC3\xA9");                                 /* U+00E9 */
        check_json("\xC2\x80", 2, "\xC2\x80");                                 /* U+0080 */
        check_json("\xDF\xBF", 2, "\xDF\xBF");                                 /* U+07FF */
        check_json("\xE2\x82\xAC", 3, "\xE2\x82\xAC");                         /* U+20AC */
        check_json("\xE0\xA0\x80", 3, "\xE0\xA0\x80");                         /* U+0800 */
        check_json("\xED\x9F\xBF", 3, "\xED\x9F\xBF");                         /* U+D7FF */
        check_json("\xEE\x80\x80", 3, "\xEE\x80\x80");                         /* U+E000 */
        check_json("\xEF\xBF\xBF", 3, "\xEF\xBF\xBF");                         /* U+FFFF */
        check_json("\xE2\x80\xA8\xE2\x80\xA9", 6, "\xE2\x80\xA8\xE2\x80\xA9"); /* U+2028 U+2029 */
        check_json("\xEF\xBB\xBF", 3, "\xEF\xBB\xBF");                         /* BOM, kept */
        /* Outside the BMP: Jackson escapes each surrogate half. */
        check_json("\xF0\x90\x80\x80", 4, "\\uD800\\uDC00"); /* U+10000 */
        check_json("\xF0\x9F\x98\x80", 4, "\\uD83D\\uDE00"); /* U+1F600 */
        check_json("\xF4\x8F\xBF\xBF", 4, "\\uDBFF\\uDFFF"); /* U+10FFFF */
        check_json("\xF3\xA0\x80\x81", 4, "\\uDB40\\uDC01"); /* U+E0001 */
        check_json("x\xF0\x9F\x98\x80y", 6, "x\\uD83D\\uDE00y");
}

static void test_utf8_invalid(void **state)
{
        (void)state;
        check_json("\x80", 1, FFFD);
        check_json("\xBF", 1, FFFD);
        check_json("\xC3"
                   "A",
                   2, FFFD "A");
        check_json("\xE2\x82"
                   "A",
                   3, FFFD "A");
        check_json("\xE2"
                   "A\x82",
                   3, FFFD "A" FFFD);
        check_json("\xF0\x80\x80\x80", 4, FFFD FFFD FFFD FFFD);
        check_json("\xF0\x8F\xBF\xBF", 4, FFFD FFFD FFFD FFFD);
        check_json("\xF4\x90\x80\x80", 4, FFFD FFFD FFFD FFFD);
        check_json("\xE0\x80\x80", 3, FFFD FFFD FFFD);
        check_json("\xE0\x9F\xBF", 3, FFFD FFFD FFFD);
        check_json("\xC0\x80", 2, FFFD FFFD);
        check_json("\xC1\xBF", 2, FFFD FFFD);
        for (unsigned int b = 0xF5; b <= 0xFF; b++) {
                unsigned char in = (unsigned char)b;

                check_json(&in, 1, FFFD);
        }
        check_json("\xF8\x88\x80\x80\x80", 5, FFFD FFFD FFFD FFFD FFFD);
        /* Truncated at the end: one U+FFFD for the whole maximal subpart. */
        check_json("\xC3", 1, FFFD);
        check_json("\xE2\x82", 2, FFFD);
        check_json("\xF0\x9F\x98", 3, FFFD);
        check_json("\xF0\x9F", 2, FFFD);
        check_json("\xF4\x8F\xBF", 3, FFFD);
        check_json("\xF0\x9F\x98"
                   "A",
                   4, FFFD "A");
        check_json("\xE0\x80", 2, FFFD FFFD);
        check_json("\xF4\x90", 2, FFFD FFFD);
        /* Encoded surrogates: Java's decoder takes ED A0-BF 80-BF as one malformed
         * input (strict maximal subparts would give three U+FFFD). */
        check_json("\xED\xA0\x80", 3, FFFD);
        check_json("\xED\xBF\xBF", 3, FFFD);
        check_json("\xED\xA0\x80\xED\xB0\x80", 6, FFFD FFFD); /* a CESU-8 pair */
        check_json("\xED\xA0"
                   "A",
                   3, FFFD "A");
        check_json("\xED\xA0", 2, FFFD);
        check_json("\xED\xC0", 2, FFFD FFFD);
        check_json("\xED"
                   "A",
                   2, FFFD "A");
}

static void test_mixed(void **state)
{
        static const char line[] = "2024-01-01T00:00:00Z GET /a?b=\"c\"\t\x01 caf\xC3\xA9 "
                                   "\xF0\x9F\x98\x80 \xFF\\end\r";
        static const char want[] = "2024-01-01T00:00:00Z GET /a?b=\\\"c\\\"\\t\\u0001 caf\xC3\xA9 "
                                   "\\uD83D\\uDE00 " FFFD "\\\\end\\r";

        (void)state;
        check_json(line, sizeof(line) - 1, want);
        check_json("{\"k\":[1,2]}", 11, "{\\\"k\\\":[1,2]}");
        check_json("a\0b", 3, "a\\u0000b");
}

/* One special byte at every position of lines of every length up to 40: the word-wise
 * scan must stop at it whichever lane it is in, and lanes around it must be copied. */
static void test_every_lane(void **state)
{
        static const struct {
                const char *in;
                const char *out;
        } specials[] = {
                {"\"", "\\\""},
                {"\\", "\\\\"},
                {"\x01", "\\u0001"},
                {"\x1F", "\\u001F"},
                {"\x80", FFFD},
                {"\xFF", FFFD},
                {"\xC3\xA9", "\xC3\xA9"},
                {" ", " "},
                {"!", "!"},
                {"#", "#"},
                {"[", "["},
                {"]", "]"},
                {"~", "~"},
                {"\x7F", "\x7F"},
                {"\xF0\x9F\x98\x80", "\\uD83D\\uDE00"},
        };
        char in[64], want[128];

        (void)state;
        for (size_t s = 0; s < sizeof(specials) / sizeof(specials[0]); s++) {
                size_t sl = strlen(specials[s].in), ol = strlen(specials[s].out);

                for (size_t len = 0; len <= 40; len++) {
                        for (size_t p = 0; p <= len; p++) {
                                memset(in, 'a', p);
                                memcpy(in + p, specials[s].in, sl);
                                memset(in + p + sl, 'z', len - p);
                                memset(want, 'a', p);
                                memcpy(want + p, specials[s].out, ol);
                                memset(want + p + ol, 'z', len - p);
                                want[p + ol + len - p] = 0;
                                check_json(in, len + sl, want);
                        }
                }
        }
}

static void test_empty(void **state)
{
        static const char empty[] = "";
        struct conv *c;
        const void *out;
        size_t len;

        (void)state;
        check_json(empty, 0, "");
        for (int k = CONV_STRING; k <= CONV_BYTEARRAY; k++) {
                assert_int_equal(conv_new((enum conv_kind)k, false, &c), 0);
                out = NULL;
                len = 99;
                assert_int_equal(conv_string(c, empty, 0, &out, &len), 0);
                assert_ptr_equal(out, empty);
                assert_int_equal(len, 0);
                conv_free(c);
        }
}

static void test_null(void **state)
{
        (void)state;
        for (int k = CONV_STRING; k <= CONV_JSON; k++) {
                for (int schemas = 0; schemas <= 1; schemas++) {
                        struct conv *c;
                        const void *out = "sentinel";
                        size_t len = 99;

                        assert_int_equal(conv_new((enum conv_kind)k, schemas, &c), 0);
                        assert_int_equal(conv_string(c, NULL, 0, &out, &len), 0);
                        assert_null(out);
                        assert_int_equal(len, 0);
                        out = "sentinel";
                        len = 99;
                        assert_int_equal(conv_string(c, NULL, 5, &out, &len), 0);
                        assert_null(out);
                        assert_int_equal(len, 0);
                        conv_free(c);
                }
        }
}

static void test_zero_copy(void **state)
{
        static const char lines[][8] = {"abc", "a\"\\\x01", "\xFF\xED\xA0\x80"};

        (void)state;
        for (int k = CONV_STRING; k <= CONV_BYTEARRAY; k++) {
                for (int schemas = 0; schemas <= 1; schemas++) {
                        struct conv *c;

                        assert_int_equal(conv_new((enum conv_kind)k, schemas, &c), 0);
                        for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
                                const void *out = NULL;
                                size_t len = 0;

                                assert_int_equal(
                                        conv_string(c, lines[i], strlen(lines[i]), &out, &len), 0);
                                assert_ptr_equal(out, lines[i]);
                                assert_int_equal(len, strlen(lines[i]));
                        }
                        conv_free(c);
                }
        }
}

/* 1 MiB lines: the buffer grows (to 6 MiB for all-\u00XX), then is reused. */
static void test_big_line(void **state)
{
        const size_t n = 1 << 20;
        unsigned char *in = malloc(n);
        char *want = malloc(6 * n + 2);
        struct conv *c;
        const void *out, *first;
        size_t len;

        (void)state;
        assert_non_null(in);
        assert_non_null(want);
        assert_int_equal(conv_new(CONV_JSON, false, &c), 0);

        for (size_t i = 0; i < n; i++)
                in[i] = (unsigned char)('a' + i % 26);
        assert_int_equal(conv_string(c, (const char *)in, n, &out, &len), 0);
        assert_int_equal(len, n + 2);
        assert_memory_equal(out, "\"", 1);
        assert_memory_equal((const char *)out + 1, in, n);
        assert_memory_equal((const char *)out + n + 1, "\"", 1);

        memset(in, 0x01, n);
        want[0] = '"';
        for (size_t i = 0; i < n; i++)
                memcpy(want + 1 + 6 * i, "\\u0001", 6);
        want[6 * n + 1] = '"';
        assert_int_equal(conv_string(c, (const char *)in, n, &out, &len), 0);
        assert_int_equal(len, 6 * n + 2);
        assert_memory_equal(out, want, len);
        first = out;

        /* Mixed: ASCII runs, escapes, replacements and 4-byte sequences. */
        for (size_t i = 0; i < n; i++) {
                static const unsigned char pattern[] = "ab\"c\x80\xF0\x9F\x98\x80\n\xC3\xA9xyz";

                in[i] = pattern[i % (sizeof(pattern) - 1)];
        }
        assert_int_equal(conv_string(c, (const char *)in, n, &out, &len), 0);
        assert_ptr_equal(out, first);
        {
                json_error_t err;
                json_t *j = json_loadb(out, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);

                assert_non_null(j);
                assert_true(json_is_string(j));
                json_decref(j);
        }

        /* Shorter lines reuse the grown buffer. */
        assert_int_equal(conv_string(c, "abc", 3, &out, &len), 0);
        assert_ptr_equal(out, first);
        assert_int_equal(len, 5);
        assert_memory_equal(out, "\"abc\"", 5);

        conv_free(c);
        free(want);
        free(in);
}

static void test_too_long(void **state)
{
        static const size_t lens[] = {SIZE_MAX, SIZE_MAX - 1, SIZE_MAX - 60, (size_t)PTRDIFF_MAX,
                                      (size_t)PTRDIFF_MAX - 1};

        (void)state;
        for (int schemas = 0; schemas <= 1; schemas++) {
                struct conv *c;

                assert_int_equal(conv_new(CONV_JSON, schemas, &c), 0);
                for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
                        const void *out = "sentinel";
                        size_t len = 99;

                        /* The input is never read: the size is refused first. */
                        assert_int_equal(conv_string(c, "x", lens[i], &out, &len), -ENOMEM);
                        assert_string_equal(out, "sentinel");
                        assert_int_equal(len, 99);
                }
                /* Still usable afterwards. */
                {
                        const void *out;
                        size_t len;

                        assert_int_equal(conv_string(c, "ok", 2, &out, &len), 0);
                        assert_int_equal(len, schemas ? strlen(SCHEMA_PREFIX) + 5 : 4);
                        assert_memory_equal((const char *)out + len - (schemas ? 5 : 4), "\"ok\"",
                                            4);
                }
                conv_free(c);
        }
}

static void test_class_names(void **state)
{
        static const struct {
                const char *name;
                enum conv_kind kind;
        } good[] = {
                {"org.apache.kafka.connect.storage.StringConverter", CONV_STRING},
                {"StringConverter", CONV_STRING},
                {"String", CONV_STRING},
                {"org.apache.kafka.connect.converters.ByteArrayConverter", CONV_BYTEARRAY},
                {"ByteArrayConverter", CONV_BYTEARRAY},
                {"ByteArray", CONV_BYTEARRAY},
                {"org.apache.kafka.connect.json.JsonConverter", CONV_JSON},
                {"JsonConverter", CONV_JSON},
                {"Json", CONV_JSON},
        };
        static const char *const bad[] = {
                "",
                "string",
                "stringconverter",
                "JSON",
                "json",
                "Bytearray",
                "Converter",
                "JsonConverter ",
                " JsonConverter",
                "org.apache.kafka.connect.json.StringConverter",
                "org.apache.kafka.connect.storage.JsonConverter",
                "org.apache.kafka.connect.storage.StringConverte",
                "org.apache.kafka.connect.converters.ByteArrayConverterX",
                "io.confluent.connect.avro.AvroConverter",
                "org.apache.kafka.connect.converters.IntegerConverter",
                "Integer",
        };

        (void)state;
        for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
                enum conv_kind kind = (enum conv_kind) - 1;

                assert_int_equal(conv_kind_from_class(good[i].name, &kind), 0);
                assert_int_equal(kind, good[i].kind);
        }
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                enum conv_kind kind = (enum conv_kind)42;

                assert_int_equal(conv_kind_from_class(bad[i], &kind), -ENOENT);
                assert_int_equal(kind, 42);
        }
        {
                enum conv_kind kind = (enum conv_kind)42;

                assert_int_equal(conv_kind_from_class(NULL, &kind), -ENOENT);
                assert_int_equal(kind, 42);
        }
}

static void test_class_round_trip(void **state)
{
        (void)state;
        assert_string_equal(conv_kind_class(CONV_STRING),
                            "org.apache.kafka.connect.storage.StringConverter");
        assert_string_equal(conv_kind_class(CONV_BYTEARRAY),
                            "org.apache.kafka.connect.converters.ByteArrayConverter");
        assert_string_equal(conv_kind_class(CONV_JSON),
                            "org.apache.kafka.connect.json.JsonConverter");
        for (int k = CONV_STRING; k <= CONV_JSON; k++) {
                enum conv_kind kind;

                assert_int_equal(conv_kind_from_class(conv_kind_class((enum conv_kind)k), &kind),
                                 0);
                assert_int_equal(kind, k);
        }
        assert_null(conv_kind_class((enum conv_kind)99));
}

static void test_new_free(void **state)
{
        struct conv *c = (struct conv *)&c;

        (void)state;
        assert_int_equal(conv_new((enum conv_kind)99, false, &c), -EINVAL);
        assert_ptr_equal(c, (struct conv *)&c);
        conv_free(NULL);
}

static uint64_t rng_next(uint64_t *x)
{
        *x ^= *x << 13;
        *x ^= *x >> 7;
        *x ^= *x << 17;
        return *x;
}

/* A few hundred pseudo-random lines (fixed seed) of ASCII, control bytes, valid
 * multi-byte characters and stray bytes: the output must be one JSON string (or the
 * schema envelope holding it), and the input itself when it was well-formed UTF-8. */
static void test_random_jansson(void **state)
{
        static const unsigned char odd[] = {0x00, 0x08, 0x0A, 0x1F, '"',  '\\', '/',  0x7F, 0x80,
                                            0xBF, 0xC0, 0xC2, 0xE0, 0xED, 0xF0, 0xF4, 0xF5, 0xFF};
        static const char *const chars[] = {"\xC3\xA9",     "\xE2\x82\xAC",     "\xE2\x80\xA8",
                                            "\xEF\xBF\xBF", "\xF0\x9F\x98\x80", "\xF4\x8F\xBF\xBF"};
        uint64_t seed = 0x9E3779B97F4A7C15ULL;
        struct conv *c0, *c1;
        unsigned char in[512];
        int valid_seen = 0;

        (void)state;
        assert_int_equal(conv_new(CONV_JSON, false, &c0), 0);
        assert_int_equal(conv_new(CONV_JSON, true, &c1), 0);
        for (int iter = 0; iter < 500; iter++) {
                size_t n = 0, target = rng_next(&seed) % 300;
                /* Every other line draws only ASCII and whole characters. */
                bool clean = iter % 2 == 0;
                const void *out0, *out1;
                size_t len0, len1;
                json_error_t err;
                json_t *j0, *j1, *schema, *payload;

                while (n < target) {
                        uint64_t r = rng_next(&seed);
                        unsigned int pick = (unsigned int)(r % 100);

                        if (pick < 60) {
                                in[n++] = (unsigned char)(0x20 + (r >> 8) % 95);
                        } else if (pick < 80) {
                                const char *ch = chars[(r >> 8) % 6];

                                memcpy(in + n, ch, strlen(ch));
                                n += strlen(ch);
                        } else if (pick < 90 || clean) {
                                in[n++] = (unsigned char)((r >> 8) % 0x20);
                        } else if (pick < 95) {
                                in[n++] = odd[(r >> 8) % sizeof(odd)];
                        } else {
                                in[n++] = (unsigned char)(r >> 8);
                        }
                }

                assert_int_equal(conv_string(c0, (const char *)in, n, &out0, &len0), 0);
                j0 = json_loadb(out0, len0, JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);
                assert_non_null(j0);
                assert_true(json_is_string(j0));
                if (utf8_valid(in, n)) {
                        valid_seen++;
                        assert_int_equal(json_string_length(j0), n);
                        assert_memory_equal(json_string_value(j0), in, n);
                }

                assert_int_equal(conv_string(c1, (const char *)in, n, &out1, &len1), 0);
                j1 = json_loadb(out1, len1, JSON_ALLOW_NUL, &err);
                assert_non_null(j1);
                assert_true(json_is_object(j1));
                assert_int_equal(json_object_size(j1), 2);
                schema = json_object_get(j1, "schema");
                payload = json_object_get(j1, "payload");
                assert_non_null(schema);
                assert_non_null(payload);
                assert_int_equal(json_object_size(schema), 2);
                assert_string_equal(json_string_value(json_object_get(schema, "type")), "string");
                assert_true(json_is_false(json_object_get(schema, "optional")));
                assert_true(json_equal(payload, j0));
                json_decref(j1);
                json_decref(j0);
        }
        assert_true(valid_seen >= 250);
        conv_free(c1);
        conv_free(c0);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_abc),
                cmocka_unit_test(test_escape_table),
                cmocka_unit_test(test_utf8_valid),
                cmocka_unit_test(test_utf8_invalid),
                cmocka_unit_test(test_mixed),
                cmocka_unit_test(test_every_lane),
                cmocka_unit_test(test_empty),
                cmocka_unit_test(test_null),
                cmocka_unit_test(test_zero_copy),
                cmocka_unit_test(test_big_line),
                cmocka_unit_test(test_too_long),
                cmocka_unit_test(test_class_names),
                cmocka_unit_test(test_class_round_trip),
                cmocka_unit_test(test_new_free),
                cmocka_unit_test(test_random_jansson),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
