/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fuzz target for config/props: parses arbitrary bytes.
 *
 * On success: every key and value is valid UTF-8 without NUL bytes, props_get() of
 * each key returns that very entry's value (so keys are unique), lines are plausible,
 * and writing the set back out with escapes and parsing that gives the same entries in
 * the same order. On failure: the error is -EINVAL or -ENOMEM, and -EINVAL carries a
 * 1-based line and column and a message. Any broken invariant aborts.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config/props.h"

#define CHECK(cond)                                                                                \
        do {                                                                                       \
                if (!(cond))                                                                       \
                        abort();                                                                   \
        } while (0)

/* Independent of props.c on purpose: a plain decoder with range checks. */
static int utf8_valid(const char *str)
{
        const unsigned char *s = (const unsigned char *)str;

        while (*s) {
                uint32_t u, min;
                int n;

                if (*s < 0x80) {
                        s++;
                        continue;
                }
                if ((*s & 0xe0) == 0xc0)
                        n = 1;
                else if ((*s & 0xf0) == 0xe0)
                        n = 2;
                else if ((*s & 0xf8) == 0xf0)
                        n = 3;
                else
                        return 0;
                u = *s & (0x3f >> n);
                min = n == 1 ? 0x80 : n == 2 ? 0x800 : 0x10000;
                for (s++; n > 0; n--, s++) {
                        if ((*s & 0xc0) != 0x80)
                                return 0;
                        u = u << 6 | (*s & 0x3f);
                }
                if (u < min || u > 0x10ffff || (u >= 0xd800 && u <= 0xdfff))
                        return 0;
        }
        return 1;
}

/* Appends s escaped so that props_parse() reads it back unchanged. */
static char *put_escaped(char *out, const char *s, int is_key)
{
        static const char letters[] = "\tt\nn\rr\ff";

        for (const char *c = s; *c; c++) {
                const char *l = strchr(letters, *c);

                if (l && (l - letters) % 2 == 0) {
                        *out++ = '\\';
                        *out++ = l[1];
                } else if (*c == '\\' || (is_key && strchr("=: #!", *c)) ||
                           (!is_key && c == s && *c == ' ')) {
                        *out++ = '\\';
                        *out++ = *c;
                } else {
                        *out++ = *c;
                }
        }
        return out;
}

static void check_round_trip(const struct props *p)
{
        size_t n = props_count(p), size = 2;
        struct props *q = NULL;
        char *buf, *end;

        for (size_t i = 0; i < n; i++)
                size += 2 * (strlen(props_at(p, i)->key) + strlen(props_at(p, i)->value)) + 2;
        buf = malloc(size);
        if (!buf)
                return;
        /* The leading line end keeps a key starting with U+FEFF from reading as a BOM. */
        end = buf;
        *end++ = '\n';
        for (size_t i = 0; i < n; i++) {
                end = put_escaped(end, props_at(p, i)->key, 1);
                *end++ = '=';
                end = put_escaped(end, props_at(p, i)->value, 0);
                *end++ = '\n';
        }
        if (props_parse(buf, (size_t)(end - buf), &q, NULL) == 0) {
                CHECK(props_count(q) == n);
                for (size_t i = 0; i < n; i++) {
                        CHECK(strcmp(props_at(q, i)->key, props_at(p, i)->key) == 0);
                        CHECK(strcmp(props_at(q, i)->value, props_at(p, i)->value) == 0);
                        CHECK(props_at(q, i)->line == i + 2);
                        CHECK(props_at(q, i)->prev_line == 0);
                }
                props_free(q);
        }
        free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct props_error err = {0};
        struct props *p = NULL;
        size_t lines = 1, n;
        int r;

        for (size_t i = 0; i < size; i++)
                lines += data[i] == '\n' || data[i] == '\r';

        r = props_parse((const char *)data, size, &p, &err);
        if (r < 0) {
                CHECK(r == -EINVAL || r == -ENOMEM);
                CHECK(!p);
                if (r == -EINVAL) {
                        CHECK(err.line >= 1 && err.line <= lines);
                        CHECK(err.column >= 1 && err.column <= size);
                        CHECK(err.msg[0] != '\0' && memchr(err.msg, '\0', sizeof(err.msg)));
                }
                return 0;
        }

        n = props_count(p);
        CHECK(n <= size);
        CHECK(props_at(p, n) == NULL);
        for (size_t i = 0; i < n; i++) {
                const struct props_entry *e = props_at(p, i);

                CHECK(e && e->key && e->value);
                CHECK(utf8_valid(e->key) && utf8_valid(e->value));
                CHECK(props_get(p, e->key) == e->value);
                CHECK(e->line >= 1 && e->line <= lines);
                CHECK(e->prev_line < e->line);
        }
        check_round_trip(p);
        props_free(p);
        return 0;
}
