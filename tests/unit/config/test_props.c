/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for config/props: each syntax rule of props.h with the exact bytes it
 * must produce, each error with its line and column, the props_new/set/get API, the
 * quickstart fixtures in tests/data/props/, file errors and allocation failures.
 *
 * For the allocation failures, props.c is compiled a second time into this file, its
 * functions renamed nomem_props_*() and its malloc, calloc and realloc routed through
 * alloc_ok(), which fails the nth call. All other tests use rt_config's props.o. In the
 * asan build, LeakSanitizer reports anything a failure path leaks.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "config/props.h"

/* A copy of text[0..len) in a block of exactly len bytes, so that ASan sees any read
 * past the end (a string literal would have its NUL there). */
static char *exact_copy(const char *text, size_t len)
{
        char *buf = malloc(len ? len : 1);

        assert_non_null(buf);
        memcpy(buf, text, len);
        return buf;
}

/* Parses text and checks its entries, in order, against kv = key, value, ..., NULL. */
static void check_kv(const char *text, size_t len, const char *const *kv)
{
        struct props_error err = {0};
        struct props *p = NULL;
        char *buf = exact_copy(text, len);
        size_t n;
        int r;

        r = props_parse(buf, len, &p, &err);
        free(buf);
        if (r != 0)
                fail_msg("props_parse: %d at %u:%u: %s", r, err.line, err.column, err.msg);
        for (n = 0; kv[2 * n]; n++) {
                const struct props_entry *e = props_at(p, n);

                assert_non_null(e);
                assert_string_equal(e->key, kv[2 * n]);
                assert_string_equal(e->value, kv[2 * n + 1]);
                assert_ptr_equal(props_get(p, kv[2 * n]), e->value);
        }
        assert_int_equal(props_count(p), n);
        assert_null(props_at(p, n));
        props_free(p);
}

#define CHECK(text, ...) check_kv(text, sizeof(text) - 1, (const char *const[]){__VA_ARGS__, NULL})

/* Parses text, expects -EINVAL at line:col, and again with reterr_err NULL. */
static void check_err(const char *text, size_t len, unsigned line, unsigned col, const char *msg)
{
        struct props_error err = {0};
        struct props *p = NULL;
        char *buf = exact_copy(text, len);

        assert_int_equal(props_parse(buf, len, &p, &err), -EINVAL);
        assert_null(p);
        if (err.line != line || err.column != col)
                fail_msg("expected error at %u:%u, got %u:%u: %s", line, col, err.line, err.column,
                         err.msg);
        assert_non_null(strstr(err.msg, msg));
        assert_int_equal(props_parse(buf, len, &p, NULL), -EINVAL);
        assert_null(p);
        free(buf);
}

#define CHECK_ERR(text, line, col, msg) check_err(text, sizeof(text) - 1, line, col, msg)

static struct props *parse_str(const char *text)
{
        struct props *p = NULL;

        assert_int_equal(props_parse(text, strlen(text), &p, NULL), 0);
        return p;
}

static void test_separators(void **state)
{
        (void)state;
        CHECK("a=b", "a", "b");
        CHECK("a:b", "a", "b");
        CHECK("a b", "a", "b");
        CHECK("a\tb", "a", "b");
        CHECK("a\fb", "a", "b");
        CHECK("a = b", "a", "b");
        CHECK("a  =  b", "a", "b");
        CHECK("a\t:\tb", "a", "b");
        CHECK("a :b", "a", "b");
        CHECK("a  b", "a", "b");
        /* At most one separator is eaten; the rest belongs to the value. */
        CHECK("a==b", "a", "=b");
        CHECK("a=:b", "a", ":b");
        CHECK("a = = b", "a", "= b");
        CHECK("a : : b", "a", ": b");
        CHECK("a b=c", "a", "b=c");
        CHECK("a b c", "a", "b c");
        CHECK("url=http://h:80/p?q=1", "url", "http://h:80/p?q=1");
        CHECK("=v", "", "v");
        CHECK(":v", "", "v");
        CHECK("  a=b", "a", "b");
        CHECK("\t\fa=b", "a", "b");
}

static void test_empty_values(void **state)
{
        (void)state;
        CHECK("key", "key", "");
        CHECK("key\n", "key", "");
        CHECK("key   ", "key", "");
        CHECK("key=", "key", "");
        CHECK("key:", "key", "");
        CHECK("key =  ", "key", "");
        CHECK("key\nother", "key", "", "other", "");
        CHECK("=", "", "");
}

static void test_comments(void **state)
{
        (void)state;
        CHECK("# a comment\n! another\n   # indented\n\t! tab\n\f# ff\na=b", "a", "b");
        CHECK("#a=b\n!c=d", NULL);
        CHECK("a=b#c", "a", "b#c");
        CHECK("a=b !c", "a", "b !c");
        CHECK("a#b=c", "a#b", "c");
        CHECK("#", NULL);
        CHECK("#\n!\r#\r\n", NULL);
        CHECK("# unterminated comment", NULL);
}

static void test_blank_lines(void **state)
{
        (void)state;
        CHECK("", NULL);
        CHECK("\n\n\n", NULL);
        CHECK("   \n\t\n\f\n \t \f ", NULL);
        CHECK("\n\na=1\n\n   \nb=2\n\n", "a", "1", "b", "2");
}

static void test_continuation(void **state)
{
        (void)state;
        CHECK("a=b\\\n   c", "a", "bc");
        CHECK("a=b\\\n\t\f c\\\n  d", "a", "bcd");
        /* An even run of backslashes is literal, an odd one continues. */
        CHECK("a=b\\\\\nc=d", "a", "b\\", "c", "d");
        CHECK("a=b\\\\\\\n  c", "a", "b\\c");
        CHECK("a=b\\\\\\\\\nc", "a", "b\\\\", "c", "");
        /* A key, a separator, or the whitespace around it may be continued too. */
        CHECK("ke\\\n   y=v", "key", "v");
        CHECK("key\\\n  =v", "key", "v");
        CHECK("key=\\\n   v", "key", "v");
        CHECK("key \\\n   v", "key", "v");
        /* A comment line never continues, and a continued line is never a comment. */
        CHECK("# note \\\na=b", "a", "b");
        CHECK("! note \\\na=b", "a", "b");
        CHECK("a=b\\\n#c", "a", "b#c");
        /* A continuation onto a blank line ends the logical line there. */
        CHECK("a=b\\\n   \nc=d", "a", "b", "c", "d");
        CHECK("a=b\\\n\nc=d", "a", "b", "c", "d");
        /* Trailing whitespace after the backslash means it is not a continuation. */
        CHECK("a=b\\ \nc=d", "a", "b ", "c", "d");
        CHECK("a=\\\n\\\n\\\n  x", "a", "x");
        /* A line holding only a continuation continues nothing: it is blank. */
        CHECK("\\\n#c=d\nk=v", "k", "v");
        CHECK("  \\\n  \\\r\n! c\\\n\\\r\rk", "k", "");
        CHECK("\\\n  k=v", "k", "v");
}

static void test_line_ends(void **state)
{
        (void)state;
        CHECK("a=1\r\nb=2\r\n", "a", "1", "b", "2");
        CHECK("a=1\rb=2\r", "a", "1", "b", "2");
        CHECK("a=1\n\rb=2", "a", "1", "b", "2");
        CHECK("a=b\\\r\n   c\r\nd=e", "a", "bc", "d", "e");
        CHECK("a=b\\\r   c\rd=e", "a", "bc", "d", "e");
        /* After a continued \r, a \n is part of that line end, not a blank line. */
        CHECK("a=b\\\r\nc", "a", "bc");
        CHECK("a=b\\\r\rc", "a", "b", "c", "");
        CHECK("a=b\\\n\rc", "a", "b", "c", "");
        CHECK("# c\r!c\r\na\r", "a", "");
}

static void test_end_of_input(void **state)
{
        (void)state;
        CHECK("a=1\nb=2", "a", "1", "b", "2");
        CHECK("a=b\\", "a", "b");
        CHECK("a=b\\\n", "a", "b");
        CHECK("a=b\\\r\n", "a", "b");
        CHECK("a=b\\\\", "a", "b\\");
        CHECK("a=b\\\n   ", "a", "b");
        CHECK("a\\", "a", "");
        /* Nothing left once the continuation is removed: no entry (Java stores ""). */
        CHECK("\\", NULL);
        CHECK("x=1\n  \\\n", "x", "1");
}

static void test_escapes(void **state)
{
        (void)state;
        CHECK("a=\\t\\n\\r\\f", "a", "\t\n\r\f");
        CHECK("a=\\\\", "a", "\\");
        CHECK("a=\\q\\b\\\"\\'\\x", "a", "qb\"'x");
        CHECK("a=c:\\\\dir\\\\file", "a", "c:\\dir\\file");
        CHECK("k\\=1\\:2\\ 3\\#4\\!5=v", "k=1:2 3#4!5", "v");
        CHECK("\\#k=v", "#k", "v");
        CHECK("\\!k=v", "!k", "v");
        CHECK("\\ k=v", " k", "v");
        CHECK("k\\\\=v", "k\\", "v");
        CHECK("k\\t\\n=v", "k\t\n", "v");
        CHECK("a=x\\=y\\:z", "a", "x=y:z");
        CHECK("\\\xc3\xa9=\\\xc3\xa9", "\xc3\xa9", "\xc3\xa9");
}

static void test_unicode_escapes(void **state)
{
        (void)state;
        CHECK("a=\\u0041", "a", "A");
        CHECK("a=\\u00e9", "a", "\xc3\xa9");
        CHECK("a=\\u00E9\\u00c9", "a", "\xc3\xa9\xc3\x89");
        CHECK("a=\\u007f\\u0080\\u07FF\\u0800", "a", "\x7f\xc2\x80\xdf\xbf\xe0\xa0\x80");
        CHECK("a=\\u20ac\\uFFFF", "a", "\xe2\x82\xac\xef\xbf\xbf");
        CHECK("a=\\uD83D\\uDE00", "a", "\xf0\x9f\x98\x80");
        CHECK("a=\\ud800\\udc00\\udbff\\udfff", "a", "\xf0\x90\x80\x80\xf4\x8f\xbf\xbf");
        CHECK("\\u006b\\u0065y=v", "key", "v");
        CHECK("\\u003d\\u003a\\u0020=v", "=: ", "v");
        CHECK("a=\\u0041BC", "a", "ABC");
        /* Lines are joined before escapes are decoded, as in Java. */
        CHECK("a=\\u00\\\n    e9", "a", "\xc3\xa9");
        CHECK("a=\\uD83D\\\n  \\uDE00", "a", "\xf0\x9f\x98\x80");
        CHECK("a=\\\n  \\u0041", "a", "A");
        /* "\\u" is an escaped backslash followed by a u. */
        CHECK("a=\\\\u0041", "a", "\\u0041");
}

static void test_value_whitespace(void **state)
{
        (void)state;
        CHECK("a=b  \t\f", "a", "b  \t\f");
        CHECK("a=b c  \nd=e ", "a", "b c  ", "d", "e ");
        CHECK("a=\\ \\ x", "a", "  x");
        CHECK("a=  \\ x", "a", " x");
        CHECK("a=\\tx", "a", "\tx");
        CHECK("a=b \\\n  c ", "a", "b c ");
}

static void test_raw_utf8(void **state)
{
        (void)state;
        CHECK("\xd0\xba\xd0\xbb\xd1\x8e\xd1\x87=\xd0\xb7\xd0\xbd\xd0\xb0\xd1\x87",
              "\xd0\xba\xd0\xbb\xd1\x8e\xd1\x87", "\xd0\xb7\xd0\xbd\xd0\xb0\xd1\x87");
        CHECK("e=\xf0\x9f\x98\x80 \xe2\x82\xac", "e", "\xf0\x9f\x98\x80 \xe2\x82\xac");
        CHECK("max=\xf4\x8f\xbf\xbf", "max", "\xf4\x8f\xbf\xbf");
        /* A BOM is skipped at the very start only. */
        CHECK("\xef\xbb\xbf"
              "a=b",
              "a", "b");
        CHECK("\xef\xbb\xbf", NULL);
        CHECK("\xef\xbb\xbf# c\n", NULL);
        CHECK("a=\xef\xbb\xbf", "a", "\xef\xbb\xbf");
}

static void test_duplicates(void **state)
{
        struct props *p;
        const struct props_entry *e;

        (void)state;
        CHECK("a=1\nb=2\na=3", "a", "3", "b", "2");
        p = parse_str("a=1\nb=2\n\na=3\nc=4\na=5\n");
        assert_int_equal(props_count(p), 3);
        e = props_at(p, 0);
        assert_string_equal(e->key, "a");
        assert_string_equal(e->value, "5");
        assert_int_equal(e->line, 6);
        assert_int_equal(e->prev_line, 4);
        e = props_at(p, 1);
        assert_string_equal(e->key, "b");
        assert_int_equal(e->line, 2);
        assert_int_equal(e->prev_line, 0);
        assert_string_equal(props_at(p, 2)->key, "c");
        props_free(p);
        /* Keys compare after unescaping. */
        CHECK("k\\u0065y=1\nkey=2", "key", "2");
}

static void test_line_numbers(void **state)
{
        static const char *const texts[] = {
                "a=1\nb=2\n\nc=\\\n3\nd=4",
                "a=1\r\nb=2\r\n\r\nc=\\\r\n3\r\nd=4\r\n",
                "a=1\rb=2\r\rc=\\\r3\rd=4",
        };
        static const unsigned lines[] = {1, 2, 4, 6};

        (void)state;
        for (size_t t = 0; t < sizeof(texts) / sizeof(texts[0]); t++) {
                struct props *p = parse_str(texts[t]);

                assert_int_equal(props_count(p), 4);
                for (size_t i = 0; i < 4; i++)
                        assert_int_equal(props_at(p, i)->line, lines[i]);
                assert_string_equal(props_get(p, "c"), "3");
                props_free(p);
        }
}

static void test_bad_unicode_escapes(void **state)
{
        (void)state;
        CHECK_ERR("a=\\u12G4", 1, 3, "malformed");
        CHECK_ERR("a=\\u12", 1, 3, "malformed");
        CHECK_ERR("a=\\u12\nb=c", 1, 3, "malformed");
        CHECK_ERR("a=b\n  k=\\u", 2, 5, "malformed");
        CHECK_ERR("a=\\u 123", 1, 3, "malformed");
        CHECK_ERR("a=\\u+123", 1, 3, "malformed");
        CHECK_ERR("\\uxyz1=v", 1, 1, "malformed");
        CHECK_ERR("a=\\u0000", 1, 3, "\\u0000");
        CHECK_ERR("\\u0000=v", 1, 1, "\\u0000");
        CHECK_ERR("a=\\uD83D", 1, 3, "surrogate \\uD83D");
        CHECK_ERR("a=\\uD83Dx", 1, 3, "surrogate \\uD83D");
        CHECK_ERR("a=\\uD83D\\u0041", 1, 3, "surrogate \\uD83D");
        CHECK_ERR("a=\\uD83D\\uD83D", 1, 3, "surrogate \\uD83D");
        CHECK_ERR("a=\\uD83D\\\\uDE00", 1, 3, "surrogate \\uD83D");
        CHECK_ERR("a=\\uD83D\\tDE00", 1, 3, "surrogate \\uD83D");
        CHECK_ERR("a=\\uDE00", 1, 3, "surrogate \\uDE00");
        CHECK_ERR("a=x\\udfff\\ud83d", 1, 4, "surrogate \\uDFFF");
        CHECK_ERR("a=\\uD83D\\uDE0", 1, 9, "malformed");
        CHECK_ERR("a=\\uD83D\\\n  \\uZ", 2, 3, "malformed");
        CHECK_ERR("a=\\u00\\\n  G0", 1, 3, "malformed");
        /* Columns count bytes: the e-acute is two. */
        CHECK_ERR("\xc3\xa9=\\u12", 1, 4, "malformed");
        /* The BOM is not counted. */
        CHECK_ERR("\xef\xbb\xbf"
                  "a=\\uZZZZ",
                  1, 3, "malformed");
}

static void test_bad_utf8(void **state)
{
        (void)state;
        CHECK_ERR("a=\xc3\x28", 1, 3, "0xC3");
        CHECK_ERR("a=\xc3", 1, 3, "0xC3");
        CHECK_ERR("a=\xe2\x82", 1, 3, "0xE2");
        CHECK_ERR("a=\xe2\x82\x28", 1, 3, "0xE2");
        CHECK_ERR("a=\xf0\x9f\x98\x28", 1, 3, "0xF0");
        CHECK_ERR("a=\x80", 1, 3, "0x80");
        CHECK_ERR("a=\xbf", 1, 3, "0xBF");
        CHECK_ERR("a=\xc0\x80", 1, 3, "0xC0");         /* overlong NUL */
        CHECK_ERR("a=\xc1\xbf", 1, 3, "0xC1");         /* overlong */
        CHECK_ERR("a=\xe0\x80\xaf", 1, 3, "0xE0");     /* overlong '/' */
        CHECK_ERR("a=\xf0\x8f\xbf\xbf", 1, 3, "0xF0"); /* overlong U+FFFF */
        CHECK_ERR("a=\xed\xa0\x80", 1, 3, "0xED");     /* U+D800 */
        CHECK_ERR("a=\xed\xbf\xbf", 1, 3, "0xED");     /* U+DFFF */
        CHECK_ERR("a=\xf4\x90\x80\x80", 1, 3, "0xF4"); /* U+110000 */
        CHECK_ERR("a=\xf5\x80\x80\x80", 1, 3, "0xF5");
        CHECK_ERR("a=\xff", 1, 3, "0xFF");
        CHECK_ERR("a=\xe2\x82\xac\xe2\x28\xac", 1, 6, "0xE2");
        CHECK_ERR("a=b\0c", 1, 4, "NUL");
        CHECK_ERR("\0", 1, 1, "NUL");
        /* Comments are checked too; lines count \n, \r and \r\n once each. */
        CHECK_ERR("# caf\xc3\n", 1, 6, "0xC3");
        CHECK_ERR("x=1\r\ny=2\rz=\xff", 3, 3, "0xFF");
        CHECK_ERR("x=1\n\r\n\ry=\\\n\xff", 5, 1, "0xFF");
        CHECK_ERR("\xef\xbb\xbf\xef\xbb", 1, 1, "0xEF");
}

static void test_api(void **state)
{
        const struct props_entry *e;
        struct props *p = NULL;
        const char *old;

        (void)state;
        assert_int_equal(props_new(&p), 0);
        assert_int_equal(props_count(p), 0);
        assert_null(props_at(p, 0));
        assert_null(props_get(p, "a"));

        assert_int_equal(props_set(p, "a", "1"), 0);
        assert_int_equal(props_set(p, "b", "2"), 0);
        assert_int_equal(props_set(p, "", ""), 0);
        assert_int_equal(props_count(p), 3);
        assert_string_equal(props_get(p, "a"), "1");
        assert_string_equal(props_get(p, "b"), "2");
        assert_string_equal(props_get(p, ""), "");
        assert_null(props_get(p, "c"));
        assert_null(props_get(p, "a "));

        old = props_get(p, "b");
        assert_int_equal(props_set(p, "b", old), 0); /* value may alias the old one */
        assert_int_equal(props_set(p, "a", "one = \\u0031"), 0);
        assert_int_equal(props_count(p), 3);
        e = props_at(p, 0);
        assert_string_equal(e->key, "a");
        assert_string_equal(e->value, "one = \\u0031"); /* stored as given */
        assert_int_equal(e->line, 0);
        assert_int_equal(e->prev_line, 0);
        assert_string_equal(props_at(p, 1)->value, "2");
        assert_string_equal(props_at(p, 2)->key, "");
        assert_null(props_at(p, 3));
        assert_null(props_at(p, SIZE_MAX));
        props_free(p);
        props_free(NULL);

        /* props_set on a parsed set keeps the old line as prev_line. */
        p = parse_str("\nx=1\n");
        assert_int_equal(props_set(p, "x", "2"), 0);
        assert_int_equal(props_at(p, 0)->prev_line, 2);
        assert_int_equal(props_at(p, 0)->line, 0);
        props_free(p);
}

static void test_many_keys(void **state)
{
        enum { N = 20000 };
        char *text = malloc((size_t)N * 32), *s = text, key[32], val[32];
        struct props *p;

        (void)state;
        assert_non_null(text);
        for (int i = 0; i < N; i++)
                s += sprintf(s, "key.%d = value %d\n", i, i * 7);
        assert_int_equal(props_parse(text, (size_t)(s - text), &p, NULL), 0);
        assert_int_equal(props_count(p), N);
        for (int i = 0; i < N; i++) {
                const struct props_entry *e = props_at(p, (size_t)i);

                (void)snprintf(key, sizeof(key), "key.%d", i);
                (void)snprintf(val, sizeof(val), "value %d", i * 7);
                assert_string_equal(e->key, key);
                assert_string_equal(props_get(p, key), val);
                assert_int_equal(e->line, i + 1);
        }
        assert_null(props_get(p, "key.20000"));
        props_free(p);
        free(text);
}

static char *data_path(const char *name)
{
        const char *dir = getenv("RINGTAIL_TEST_DATA");
        static char path[PATH_MAX];

        if (!dir)
                fail_msg("RINGTAIL_TEST_DATA is not set (ctest sets it to tests/data)");
        (void)snprintf(path, sizeof(path), "%s/props/%s", dir, name);
        return path;
}

static void check_file(const char *name, const char *const *kv)
{
        struct props_error err = {0};
        struct props *p = NULL;
        size_t n;
        int r;

        r = props_load_file(data_path(name), &p, &err);
        if (r != 0)
                fail_msg("%s: %d at %u:%u: %s", name, r, err.line, err.column, err.msg);
        for (n = 0; kv[2 * n]; n++) {
                assert_string_equal(props_at(p, n)->key, kv[2 * n]);
                assert_string_equal(props_at(p, n)->value, kv[2 * n + 1]);
                assert_int_equal(props_at(p, n)->prev_line, 0);
        }
        assert_int_equal(props_count(p), n);
        assert_null(props_get(p, "plugin.path"));
        assert_null(props_get(p, "#plugin.path"));
        props_free(p);
}

#define JSON_CONVERTER "org.apache.kafka.connect.json.JsonConverter"

static void test_quickstart_files(void **state)
{
        (void)state;
        check_file("worker-quickstart.properties",
                   (const char *const[]){"bootstrap.servers", "localhost:9092", "key.converter",
                                         JSON_CONVERTER, "value.converter", JSON_CONVERTER,
                                         "key.converter.schemas.enable", "true",
                                         "value.converter.schemas.enable", "true",
                                         "offset.storage.file.filename", "/tmp/connect.offsets",
                                         "offset.flush.interval.ms", "10000", NULL});
        check_file("worker-quickstart-legacy.properties",
                   (const char *const[]){"bootstrap.servers",
                                         "localhost:9092",
                                         "key.converter",
                                         JSON_CONVERTER,
                                         "value.converter",
                                         JSON_CONVERTER,
                                         "key.converter.schemas.enable",
                                         "true",
                                         "value.converter.schemas.enable",
                                         "true",
                                         "internal.key.converter",
                                         JSON_CONVERTER,
                                         "internal.value.converter",
                                         JSON_CONVERTER,
                                         "internal.key.converter.schemas.enable",
                                         "false",
                                         "internal.value.converter.schemas.enable",
                                         "false",
                                         "offset.storage.file.filename",
                                         "/tmp/connect.offsets",
                                         "offset.flush.interval.ms",
                                         "10000",
                                         NULL});
        check_file("file-source-quickstart.properties",
                   (const char *const[]){"name", "local-file-source", "connector.class",
                                         "FileStreamSource", "tasks.max", "1", "file", "test.txt",
                                         "topic", "connect-test", NULL});
}

/* A temporary file holding len bytes of text, or of zeros (sparse) if text is NULL. */
static void make_temp(char *path, const char *text, off_t len)
{
        int fd;

        strcpy(path, "/tmp/test_props.XXXXXX");
        fd = mkstemp(path);
        assert_true(fd >= 0);
        if (text)
                assert_int_equal(write(fd, text, (size_t)len), len);
        else
                assert_int_equal(ftruncate(fd, len), 0);
        assert_int_equal(close(fd), 0);
}

static void test_load_file_errors(void **state)
{
        struct props_error err = {0};
        struct props *p = NULL;
        char path[32];

        (void)state;
        assert_int_equal(props_load_file("/nonexistent/x.properties", &p, &err), -ENOENT);
        assert_null(p);
        assert_int_equal(err.line, 0);
        assert_int_equal(err.column, 0);
        assert_non_null(strstr(err.msg, strerror(ENOENT)));
        assert_int_equal(props_load_file("/nonexistent/x.properties", &p, NULL), -ENOENT);

        assert_int_equal(props_load_file("/", &p, &err), -EISDIR);
        assert_non_null(strstr(err.msg, strerror(EISDIR)));
        assert_int_equal(err.line, 0);

        make_temp(path, NULL, (off_t)(16 << 20) + 1);
        assert_int_equal(props_load_file(path, &p, &err), -EFBIG);
        assert_null(p);
        assert_int_equal(err.line, 0);
        assert_non_null(strstr(err.msg, "16 MiB"));
        assert_int_equal(unlink(path), 0);

        /* Exactly 16 MiB is read; its zeros then fail as text. */
        make_temp(path, NULL, (off_t)16 << 20);
        assert_int_equal(props_load_file(path, &p, &err), -EINVAL);
        assert_int_equal(err.line, 1);
        assert_int_equal(err.column, 1);
        assert_int_equal(unlink(path), 0);

        make_temp(path, "a=1\r\nb=\\u12", 11);
        assert_int_equal(props_load_file(path, &p, &err), -EINVAL);
        assert_null(p);
        assert_int_equal(err.line, 2);
        assert_int_equal(err.column, 3);
        assert_int_equal(unlink(path), 0);

        make_temp(path, "", 0);
        assert_int_equal(props_load_file(path, &p, &err), 0);
        assert_int_equal(props_count(p), 0);
        props_free(p);
        assert_int_equal(unlink(path), 0);
}

/* Loads total bytes of chunk, repeated, from a pipe: st_size says 0 and reads are short. */
static int load_pipe(const char *chunk, size_t total, struct props **ret_props,
                     struct props_error *err)
{
        size_t clen = strlen(chunk);
        char path[64];
        int fds[2], r, status;
        pid_t pid;

        assert_int_equal(pipe(fds), 0);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                /* Writes of at most PIPE_BUF bytes are never split. */
                for (size_t done = 0; done < total; done += clen) {
                        size_t n = total - done < clen ? total - done : clen;

                        if (write(fds[1], chunk, n) != (ssize_t)n)
                                _exit(1);
                }
                _exit(0);
        }
        assert_int_equal(close(fds[1]), 0);
        (void)snprintf(path, sizeof(path), "/proc/self/fd/%d", fds[0]);
        r = props_load_file(path, ret_props, err);
        assert_int_equal(close(fds[0]), 0);
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        return r;
}

static void test_load_pipe(void **state)
{
        struct props_error err = {0};
        struct props *p = NULL;

        (void)state;
        assert_int_equal(load_pipe("a=1\nb=2\n", 100000, &p, &err), 0);
        assert_int_equal(props_count(p), 2);
        assert_int_equal(props_at(p, 0)->line, 24999);
        assert_int_equal(props_at(p, 1)->line, 25000);
        props_free(p);

        p = NULL;
        assert_int_equal(load_pipe("0123456789abcdef", (16 << 20) + 1, &p, &err), -EFBIG);
        assert_null(p);
        assert_non_null(strstr(err.msg, "16 MiB"));
}

/* The copy of props.c whose allocations fail on demand (see the top of the file). */
static long alloc_budget = -1; /* allocations that succeed before one fails; -1: all */

static bool alloc_ok(void)
{
        if (alloc_budget < 0)
                return true;
        if (alloc_budget == 0)
                return false;
        alloc_budget--;
        return true;
}

static void *test_malloc_n(size_t n)
{
        return alloc_ok() ? malloc(n) : NULL;
}

static void *test_calloc_n(size_t n, size_t size)
{
        return alloc_ok() ? calloc(n, size) : NULL;
}

static void *test_realloc_n(void *p, size_t n)
{
        return alloc_ok() ? realloc(p, n) : NULL;
}

#define props_parse     nomem_props_parse
#define props_load_file nomem_props_load_file
#define props_new       nomem_props_new
#define props_set       nomem_props_set
#define props_get       nomem_props_get
#define props_count     nomem_props_count
#define props_at        nomem_props_at
#define props_free      nomem_props_free
#define malloc(n)       test_malloc_n(n)
#define calloc(n, s)    test_calloc_n(n, s)
#define realloc(p, n)   test_realloc_n(p, n)
#include "config/props.c"
#undef props_parse
#undef props_load_file
#undef props_new
#undef props_set
#undef props_get
#undef props_count
#undef props_at
#undef props_free
#undef malloc
#undef calloc
#undef realloc

/* Fails each allocation of fn in turn: every failure must be -ENOMEM, leave the
 * out-param alone and leak nothing; once nothing fails, fn succeeds. */
static void check_alloc_failures(int (*fn)(struct props **ret_props, struct props_error *err))
{
        for (long n = 0;; n++) {
                struct props_error err = {0};
                struct props *p = NULL;
                int r;

                alloc_budget = n;
                r = fn(&p, &err);
                alloc_budget = -1;
                if (r == 0) {
                        assert_true(n > 1);
                        nomem_props_free(p);
                        return;
                }
                assert_int_equal(r, -ENOMEM);
                assert_null(p);
                assert_string_equal(err.msg, "out of memory");
        }
}

static int parse_big(struct props **ret_props, struct props_error *err)
{
        static const char text[] = "a=1\nb=\\u00e9\nc\\\n =3\na=4\nd e\nf:g\nh=\\uD83D\\uDE00\n"
                                   "i=1\nj=2\nk=3\nl=4\nm=5\nn=6\no=7\np=8\nq=9\nr=10\n"
                                   "s=11\nt=12\nu=13\nb=14\n";

        return nomem_props_parse(text, sizeof(text) - 1, ret_props, err);
}

static int load_fixture(struct props **ret_props, struct props_error *err)
{
        return nomem_props_load_file(data_path("worker-quickstart.properties"), ret_props, err);
}

static int set_many(struct props **ret_props, struct props_error *err)
{
        struct props *p = NULL;
        char key[16];
        int r;

        (void)err;
        r = nomem_props_new(&p);
        for (int i = 0; r == 0 && i < 40; i++) {
                (void)snprintf(key, sizeof(key), "k%d", i % 30);
                r = nomem_props_set(p, key, "v");
        }
        if (r < 0) {
                nomem_props_free(p);
                (void)snprintf(err->msg, sizeof(err->msg), "out of memory");
                return r;
        }
        *ret_props = p;
        return 0;
}

static void test_alloc_failures(void **state)
{
        (void)state;
        check_alloc_failures(parse_big);
        check_alloc_failures(load_fixture);
        check_alloc_failures(set_many);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_separators),       cmocka_unit_test(test_empty_values),
                cmocka_unit_test(test_comments),         cmocka_unit_test(test_blank_lines),
                cmocka_unit_test(test_continuation),     cmocka_unit_test(test_line_ends),
                cmocka_unit_test(test_end_of_input),     cmocka_unit_test(test_escapes),
                cmocka_unit_test(test_unicode_escapes),  cmocka_unit_test(test_value_whitespace),
                cmocka_unit_test(test_raw_utf8),         cmocka_unit_test(test_duplicates),
                cmocka_unit_test(test_line_numbers),     cmocka_unit_test(test_bad_unicode_escapes),
                cmocka_unit_test(test_bad_utf8),         cmocka_unit_test(test_api),
                cmocka_unit_test(test_many_keys),        cmocka_unit_test(test_quickstart_files),
                cmocka_unit_test(test_load_file_errors), cmocka_unit_test(test_load_pipe),
                cmocka_unit_test(test_alloc_failures),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
