/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests of io/multiline: joining lines into records with a start pattern. Each
 * test feeds a file's text line by line the way the task does (offers each line with its
 * offsets; on ML_EMIT_FIRST takes the pending record, clears it and offers the line
 * again; takes what is pending at the end) and compares the records' bytes, offsets
 * and line counts, and the stats, with what the text must give.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "io/multiline.h"

#define MAX_RECS 32

struct recs {
        char *data[MAX_RECS];
        size_t len[MAX_RECS];
        uint64_t start[MAX_RECS], end[MAX_RECS];
        uint32_t lines[MAX_RECS];
        size_t n;
};

static struct ml *new_ml(const char *pattern, uint32_t max_lines, size_t max_bytes)
{
        struct ml_opts o = {
                .start_pattern = pattern, .max_lines = max_lines, .max_bytes = max_bytes};
        char err[128];
        struct ml *m = NULL;
        assert_int_equal(ml_new(&o, err, sizeof(err), &m), 0);
        assert_non_null(m);
        return m;
}

/* Takes the pending record (there must be one) and clears it, like the task emitting it. */
static void take(struct ml *m, struct recs *r)
{
        struct ml_record rec;
        assert_true(ml_pending(m, &rec));
        assert_true(r->n < MAX_RECS);
        assert_non_null(rec.data);
        r->data[r->n] = malloc(rec.len + 1);
        assert_non_null(r->data[r->n]);
        memcpy(r->data[r->n], rec.data, rec.len);
        r->data[r->n][rec.len] = '\0';
        r->len[r->n] = rec.len;
        r->start[r->n] = rec.start;
        r->end[r->n] = rec.end;
        r->lines[r->n] = rec.lines;
        r->n++;
        ml_clear(m);
}

static void offer(struct ml *m, const char *line, size_t len, uint64_t start, uint64_t end,
                  struct recs *r)
{
        int rc = ml_offer(m, line, len, start, end, 0);
        if (rc == ML_EMIT_FIRST) {
                take(m, r);
                rc = ml_offer(m, line, len, start, end, 0);
        }
        assert_int_equal(rc, ML_TAKEN);
}

/* Offers every '\n'-terminated line of text[0, len), whose first byte is at file offset
 * base, then takes what is pending. */
static void feed(struct ml *m, const char *text, size_t len, uint64_t base, struct recs *r)
{
        size_t pos = 0;
        while (pos < len) {
                const char *nl = memchr(text + pos, '\n', len - pos);
                assert_non_null(nl);
                size_t n = (size_t)(nl - (text + pos));
                offer(m, text + pos, n, base + pos, base + pos + n + 1, r);
                pos += n + 1;
        }
        if (ml_pending(m, &(struct ml_record){0}))
                take(m, r);
}

static void feed_str(struct ml *m, const char *text, struct recs *r)
{
        feed(m, text, strlen(text), 0, r);
}

static void check_rec(const struct recs *r, size_t i, const char *data, uint64_t start,
                      uint64_t end, uint32_t lines)
{
        assert_true(i < r->n);
        assert_int_equal(r->len[i], strlen(data));
        assert_memory_equal(r->data[i], data, r->len[i]);
        assert_int_equal(r->start[i], start);
        assert_int_equal(r->end[i], end);
        assert_int_equal(r->lines[i], lines);
}

static void recs_free(struct recs *r)
{
        for (size_t i = 0; i < r->n; i++)
                free(r->data[i]);
        r->n = 0;
}

static void append_line(char *buf, size_t cap, size_t *len, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));

static void append_line(char *buf, size_t cap, size_t *len, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(buf + *len, cap - *len, fmt, ap);
        va_end(ap);
        assert_true(n >= 0 && (size_t)n + 1 < cap - *len);
        *len += (size_t)n;
        buf[(*len)++] = '\n';
}

/* A Java stack trace with a cause: one record up to the next timestamped line. */
static void test_java_trace(void **state)
{
        (void)state;
        size_t cap = 64 * 1024, len = 0;
        char *text = malloc(cap);
        assert_non_null(text);
        append_line(text, cap, &len, "2024-05-01 12:00:00.123 ERROR [main] c.e.App - failed");
        append_line(text, cap, &len, "java.lang.IllegalStateException: boom");
        for (int i = 0; i < 200; i++)
                append_line(text, cap, &len, "\tat com.example.Service%d.handle(Service.java:%d)",
                            i, 100 + i);
        append_line(text, cap, &len, "Caused by: java.io.IOException: connection reset");
        for (int i = 0; i < 20; i++)
                append_line(text, cap, &len, "\tat java.base/sun.nio.ch.Net.read%d(Native Method)",
                            i);
        append_line(text, cap, &len, "\t... 180 more");
        size_t second = len;
        append_line(text, cap, &len, "2024-05-01 12:00:01.000 INFO  [main] c.e.App - recovered");

        struct ml *m = new_ml("^\\d{4}-\\d{2}-\\d{2} ", 1000, 1 << 20);
        struct recs r = {0};
        feed(m, text, len, 5000, &r);
        assert_int_equal(r.n, 2);
        assert_int_equal(r.len[0], second - 1);
        assert_memory_equal(r.data[0], text, second - 1); /* the file's bytes, less the last \n */
        assert_int_equal(r.start[0], 5000);
        assert_int_equal(r.end[0], 5000 + second);
        assert_int_equal(r.lines[0], 1 + 1 + 200 + 1 + 20 + 1);
        assert_int_equal(r.len[1], len - second - 1);
        assert_memory_equal(r.data[1], text + second, len - second - 1);
        assert_int_equal(r.start[1], 5000 + second);
        assert_int_equal(r.end[1], 5000 + len);
        assert_int_equal(r.lines[1], 1);

        const struct ml_stats *s = ml_stats(m);
        assert_int_equal(s->records, 2);
        assert_int_equal(s->lines, 225);
        assert_int_equal(s->split_lines, 0);
        assert_int_equal(s->split_bytes, 0);
        assert_int_equal(s->match_errors, 0);
        recs_free(&r);
        ml_free(m);
        free(text);
}

/* With ^[^\s] the exception line of a Python traceback starts a record of its own. */
static void test_python_traceback(void **state)
{
        (void)state;
        const char text[] = "Traceback (most recent call last):\n"     /* 0..35 */
                            "  File \"app.py\", line 3, in <module>\n" /* 35..72 */
                            "    main()\n"                             /* 72..83 */
                            "ValueError: x\n"                          /* 83..97 */
                            "done\n";                                  /* 97..102 */
        struct ml *m = new_ml("^[^\\s]", 100, 4096);
        struct recs r = {0};
        feed_str(m, text, &r);
        assert_int_equal(r.n, 3);
        check_rec(&r, 0,
                  "Traceback (most recent call last):\n"
                  "  File \"app.py\", line 3, in <module>\n"
                  "    main()",
                  0, 83, 3);
        check_rec(&r, 1, "ValueError: x", 83, 97, 1);
        check_rec(&r, 2, "done", 97, 102, 1);
        assert_int_equal(ml_stats(m)->records, 3);
        recs_free(&r);
        ml_free(m);
}

static void test_max_lines(void **state)
{
        (void)state;
        struct ml *m = new_ml("^S", 3, 4096);
        struct recs r = {0};
        /* c3 and c6 find a full record: split. S3 finds one too, but starts one anyway. */
        feed_str(m, "S1\nc1\nc2\nc3\nc4\nc5\nc6\nS2\nx\ny\nS3\n", &r);
        assert_int_equal(r.n, 5);
        check_rec(&r, 0, "S1\nc1\nc2", 0, 9, 3);
        check_rec(&r, 1, "c3\nc4\nc5", 9, 18, 3);
        check_rec(&r, 2, "c6", 18, 21, 1);
        check_rec(&r, 3, "S2\nx\ny", 21, 28, 3);
        check_rec(&r, 4, "S3", 28, 31, 1);
        const struct ml_stats *s = ml_stats(m);
        assert_int_equal(s->split_lines, 2);
        assert_int_equal(s->split_bytes, 0);
        assert_int_equal(s->lines, 11);
        assert_int_equal(s->records, 5);
        recs_free(&r);
        ml_free(m);

        m = new_ml("^S", 1, 4096);
        feed_str(m, "S\na\nb\n", &r);
        assert_int_equal(r.n, 3);
        check_rec(&r, 0, "S", 0, 2, 1);
        check_rec(&r, 1, "a", 2, 4, 1);
        check_rec(&r, 2, "b", 4, 6, 1);
        assert_int_equal(ml_stats(m)->split_lines, 2);
        recs_free(&r);
        ml_free(m);
}

static void test_max_bytes(void **state)
{
        (void)state;
        struct ml *m = new_ml("^S", 100, 10);
        struct recs r = {0};
        /* "S1234\nabcd" is exactly 10 bytes: taken; "x" would make 12. */
        feed_str(m, "S1234\nabcd\nx\nyyyyyyyy\nzz\n", &r);
        assert_int_equal(r.n, 3);
        check_rec(&r, 0, "S1234\nabcd", 0, 11, 2);
        check_rec(&r, 1, "x\nyyyyyyyy", 11, 22, 2);
        check_rec(&r, 2, "zz", 22, 25, 1);
        const struct ml_stats *s = ml_stats(m);
        assert_int_equal(s->split_bytes, 2);
        assert_int_equal(s->split_lines, 0);
        assert_int_equal(s->lines, 5);
        assert_int_equal(s->records, 3);
        recs_free(&r);
        ml_free(m);

        /* One byte over: "S12345\nabcd" would be 11 bytes. */
        m = new_ml("^S", 100, 10);
        feed_str(m, "S12345\nabcd\n", &r);
        assert_int_equal(r.n, 2);
        check_rec(&r, 0, "S12345", 0, 7, 1);
        check_rec(&r, 1, "abcd", 7, 12, 1);
        assert_int_equal(ml_stats(m)->split_bytes, 1);
        recs_free(&r);
        ml_free(m);
}

/* A line longer than max_bytes is taken whole when nothing is pending, and then
 * nothing can join it. */
static void test_huge_line_taken_whole(void **state)
{
        (void)state;
        char big[300];
        memset(big, 'x', sizeof(big));
        big[0] = 'S';
        struct ml *m = new_ml("^S", 100, 8);
        struct ml_record rec;

        assert_int_equal(ml_offer(m, big, sizeof(big), 0, 301, 0), ML_TAKEN);
        assert_true(ml_pending(m, &rec));
        assert_int_equal(rec.len, sizeof(big));
        assert_memory_equal(rec.data, big, sizeof(big));
        assert_int_equal(ml_offer(m, "c", 1, 301, 303, 0), ML_EMIT_FIRST);
        assert_int_equal(ml_stats(m)->split_bytes, 1);
        ml_clear(m);
        /* A continuation longer than max_bytes on an empty record: taken whole too. */
        assert_int_equal(ml_offer(m, big + 1, sizeof(big) - 1, 301, 601, 0), ML_TAKEN);
        assert_true(ml_pending(m, &rec));
        assert_int_equal(rec.len, sizeof(big) - 1);
        assert_memory_equal(rec.data, big + 1, sizeof(big) - 1);
        assert_int_equal(rec.start, 301);
        assert_int_equal(rec.end, 601);
        /* A start line finds it: not a split. */
        assert_int_equal(ml_offer(m, "S", 1, 601, 603, 0), ML_EMIT_FIRST);
        assert_int_equal(ml_stats(m)->split_bytes, 1);
        ml_clear(m);
        assert_int_equal(ml_offer(m, "S", 1, 601, 603, 0), ML_TAKEN);
        assert_int_equal(ml_stats(m)->lines, 3);
        ml_free(m);
}

/* The file starts in the middle of a trace: those lines form a record of their own. */
static void test_continuation_first(void **state)
{
        (void)state;
        struct ml *m = new_ml("^\\d{4}-", 100, 4096);
        struct recs r = {0};
        const char text[] = "\tat a.B.c(B.java:1)\n\tat a.B.d(B.java:2)\n2024-01-01 start\n";
        feed(m, text, sizeof(text) - 1, 1000, &r);
        assert_int_equal(r.n, 2);
        check_rec(&r, 0, "\tat a.B.c(B.java:1)\n\tat a.B.d(B.java:2)", 1000, 1040, 2);
        check_rec(&r, 1, "2024-01-01 start", 1040, 1057, 1);
        recs_free(&r);
        ml_free(m);
}

static void assert_same_record(const struct ml_record *a, const struct ml_record *b)
{
        assert_ptr_equal(a->data, b->data);
        assert_int_equal(a->len, b->len);
        assert_int_equal(a->start, b->start);
        assert_int_equal(a->end, b->end);
        assert_int_equal(a->lines, b->lines);
}

/* The caller cannot emit (queue full): the same line is offered again and again. */
static void test_caller_cannot_emit(void **state)
{
        (void)state;
        struct ml *m = new_ml("^S", 3, 4096);
        struct ml_record before, now;

        assert_int_equal(ml_offer(m, "S1", 2, 0, 3, 10), ML_TAKEN);
        assert_int_equal(ml_offer(m, "c", 1, 3, 5, 20), ML_TAKEN);
        assert_int_equal(ml_offer(m, "S2", 2, 5, 8, 30), ML_EMIT_FIRST);
        assert_true(ml_pending(m, &before));
        assert_int_equal(before.len, 4);
        assert_memory_equal(before.data, "S1\nc", 4);
        for (int i = 0; i < 3; i++) {
                assert_int_equal(ml_offer(m, "S2", 2, 5, 8, 40 + (uint64_t)i), ML_EMIT_FIRST);
                assert_true(ml_pending(m, &now));
                assert_same_record(&before, &now);
                assert_memory_equal(now.data, "S1\nc", 4);
        }
        /* Even a continuation cannot join a complete record. */
        assert_int_equal(ml_offer(m, "c", 1, 5, 7, 50), ML_EMIT_FIRST);
        assert_int_equal(ml_deadline(m, 100), 120);
        assert_int_equal(ml_stats(m)->lines, 2);
        assert_int_equal(ml_stats(m)->records, 0);
        ml_clear(m);
        assert_int_equal(ml_stats(m)->records, 1);
        assert_int_equal(ml_offer(m, "S2", 2, 5, 8, 60), ML_TAKEN);
        assert_true(ml_pending(m, &now));
        assert_int_equal(now.len, 2);
        assert_memory_equal(now.data, "S2", 2);
        assert_int_equal(now.start, 5);
        assert_int_equal(now.end, 8);
        assert_int_equal(now.lines, 1);

        /* A split is counted once, however often the line comes back. */
        assert_int_equal(ml_offer(m, "a", 1, 8, 10, 70), ML_TAKEN);
        assert_int_equal(ml_offer(m, "b", 1, 10, 12, 70), ML_TAKEN);
        for (int i = 0; i < 3; i++)
                assert_int_equal(ml_offer(m, "c", 1, 12, 14, 80), ML_EMIT_FIRST);
        assert_int_equal(ml_stats(m)->split_lines, 1);
        ml_clear(m);
        ml_clear(m); /* nothing pending: no-op */
        assert_int_equal(ml_stats(m)->records, 2);
        assert_false(ml_pending(m, &now));
        ml_free(m);
}

static void test_deadline(void **state)
{
        (void)state;
        struct ml *m = new_ml("^S", 10, 4096);
        assert_int_equal(ml_deadline(m, 500), UINT64_MAX);
        assert_int_equal(ml_offer(m, "S", 1, 0, 2, 1000), ML_TAKEN);
        assert_int_equal(ml_deadline(m, 500), 1500);
        assert_int_equal(ml_offer(m, "c", 1, 2, 4, 1200), ML_TAKEN);
        assert_int_equal(ml_deadline(m, 500), 1700);
        assert_int_equal(ml_deadline(m, 0), 1200);
        assert_int_equal(ml_deadline(m, UINT64_MAX), UINT64_MAX);
        assert_int_equal(ml_deadline(m, UINT64_MAX - 1200), UINT64_MAX);
        assert_int_equal(ml_deadline(m, UINT64_MAX - 1201), UINT64_MAX - 1);
        /* A line not taken does not move the deadline. */
        assert_int_equal(ml_offer(m, "S", 1, 4, 6, 9000), ML_EMIT_FIRST);
        assert_int_equal(ml_deadline(m, 500), 1700);
        ml_clear(m);
        assert_int_equal(ml_deadline(m, 500), UINT64_MAX);
        assert_int_equal(ml_offer(m, "S", 1, 4, 6, 9000), ML_TAKEN);
        assert_int_equal(ml_deadline(m, 500), 9500);
        ml_free(m);
}

static void test_bad_pattern_and_opts(void **state)
{
        (void)state;
        char err[128];
        struct ml *m = NULL;
        struct ml_opts o = {.start_pattern = "ab(c", .max_lines = 10, .max_bytes = 100};

        assert_int_equal(ml_check_pattern("ab(c", err, sizeof(err)), -EINVAL);
        assert_string_equal(err, "missing closing parenthesis at offset 4");
        assert_int_equal(ml_new(&o, err, sizeof(err), &m), -EINVAL);
        assert_string_equal(err, "missing closing parenthesis at offset 4");
        assert_null(m);

        assert_int_equal(ml_check_pattern("x{2,1}", err, sizeof(err)), -EINVAL);
        assert_non_null(strstr(err, " at offset 5"));
        /* The pattern itself must be valid UTF-8. */
        assert_int_equal(ml_check_pattern("a\xff", err, sizeof(err)), -EINVAL);
        assert_non_null(strstr(err, "UTF-8 error"));
        assert_non_null(strstr(err, " at offset 1"));

        assert_int_equal(ml_check_pattern("", err, sizeof(err)), -EINVAL);
        assert_string_equal(err, "empty pattern");
        assert_int_equal(ml_check_pattern(NULL, err, sizeof(err)), -EINVAL);
        o.start_pattern = "";
        assert_int_equal(ml_new(&o, err, sizeof(err), &m), -EINVAL);
        assert_string_equal(err, "empty pattern");

        /* err is optional and truncated to errlen. */
        assert_int_equal(ml_check_pattern("(", NULL, 0), -EINVAL);
        assert_int_equal(ml_check_pattern("(", err, 8), -EINVAL);
        assert_int_equal(strlen(err), 7);

        o.start_pattern = "^S";
        o.max_lines = 0;
        assert_int_equal(ml_new(&o, err, sizeof(err), &m), -EINVAL);
        assert_non_null(strstr(err, "max_lines"));
        o.max_lines = 1;
        o.max_bytes = 0;
        assert_int_equal(ml_new(&o, err, sizeof(err), &m), -EINVAL);
        assert_non_null(strstr(err, "max_bytes"));
        assert_null(m);

        /* Success leaves err alone. */
        memset(err, 'X', sizeof(err));
        assert_int_equal(ml_check_pattern("^\\d{4}-\\d{2}-\\d{2} ", err, sizeof(err)), 0);
        assert_int_equal(ml_check_pattern("^é", err, sizeof(err)), 0);
        o.max_bytes = 1;
        assert_int_equal(ml_new(&o, err, sizeof(err), &m), 0);
        assert_int_equal(err[0], 'X');
        assert_non_null(m);
        ml_free(m);
        ml_free(NULL);
}

/* Binary junk and NUL bytes in lines: no match error, every byte kept. */
static void test_invalid_utf8_subject(void **state)
{
        (void)state;
        struct ml *m = new_ml("^[^\\s]", 100, 4096);
        struct recs r = {0};
        /* "\xff..." starts with no character at all, so [^\s] does not match it. */
        const char text[] = "ok \xc3\x28 \xed\xa0\x80\n\xff\xfe junk\n\t\x80\x00\x01\nnext\n";
        feed(m, text, sizeof(text) - 1, 0, &r);
        assert_int_equal(r.n, 2);
        assert_int_equal(r.len[0], 22);
        assert_memory_equal(r.data[0], "ok \xc3\x28 \xed\xa0\x80\n\xff\xfe junk\n\t\x80\x00\x01",
                            22);
        assert_int_equal(r.start[0], 0);
        assert_int_equal(r.end[0], 23);
        assert_int_equal(r.lines[0], 3);
        check_rec(&r, 1, "next", 23, 28, 1);
        assert_int_equal(ml_stats(m)->match_errors, 0);
        recs_free(&r);
        ml_free(m);

        /* A UTF-8 pattern character against valid and invalid subjects. */
        m = new_ml("^é", 100, 4096);
        feed_str(m, "é1\n\xc3\n\xa9\né2\n", &r);
        assert_int_equal(r.n, 2);
        check_rec(&r, 0, "é1\n\xc3\n\xa9", 0, 8, 3);
        check_rec(&r, 1, "é2", 8, 12, 1);
        assert_int_equal(ml_stats(m)->match_errors, 0);
        recs_free(&r);
        ml_free(m);
}

/* ^(a+)+$ against "aaa...ab" backtracks exponentially: the match limit stops it, the
 * error is counted and the line joins the record. */
static void test_catastrophic_pattern(void **state)
{
        (void)state;
        char evil[64];
        memset(evil, 'a', 60);
        evil[60] = 'b';
        struct ml *m = new_ml("^(a+)+$", 100, 4096);
        struct ml_record rec;

        assert_int_equal(ml_offer(m, "aa", 2, 0, 3, 0), ML_TAKEN);
        assert_int_equal(ml_offer(m, evil, 61, 3, 65, 0), ML_TAKEN);
        assert_int_equal(ml_stats(m)->match_errors, 1);
        assert_int_equal(ml_offer(m, "b", 1, 65, 67, 0), ML_TAKEN); /* a plain no-match */
        assert_int_equal(ml_stats(m)->match_errors, 1);
        assert_int_equal(ml_offer(m, "aaa", 3, 67, 71, 0), ML_EMIT_FIRST);
        assert_true(ml_pending(m, &rec));
        assert_int_equal(rec.len, 2 + 1 + 61 + 1 + 1);
        assert_memory_equal(rec.data, "aa\n", 3);
        assert_memory_equal(rec.data + 3, evil, 61);
        assert_memory_equal(rec.data + 64, "\nb", 2);
        assert_int_equal(rec.start, 0);
        assert_int_equal(rec.end, 67);
        assert_int_equal(rec.lines, 3);
        ml_free(m);

        /* A smaller match limit gives up sooner, on a shorter line. */
        struct ml_opts o = {.start_pattern = "^(a+)+$",
                            .max_lines = 100,
                            .max_bytes = 4096,
                            .match_limit = 1000};
        assert_int_equal(ml_new(&o, NULL, 0, &m), 0);
        assert_int_equal(ml_offer(m, "x", 1, 0, 2, 0), ML_TAKEN);
        assert_int_equal(ml_offer(m, evil + 40, 21, 2, 24, 0), ML_TAKEN);
        assert_int_equal(ml_stats(m)->match_errors, 1);
        ml_free(m);
}

static void test_empty_lines(void **state)
{
        (void)state;
        struct ml *m = new_ml("^S", 100, 4096);
        struct recs r = {0};
        feed_str(m, "S1\n\n\nx\n\nS2\n\n", &r);
        assert_int_equal(r.n, 2);
        check_rec(&r, 0, "S1\n\n\nx\n", 0, 8, 5);
        check_rec(&r, 1, "S2\n", 8, 12, 2);
        recs_free(&r);
        ml_free(m);

        /* A record of one empty line, offered as NULL: data is still a valid pointer. */
        m = new_ml("^S", 100, 4096);
        struct ml_record rec;
        assert_int_equal(ml_offer(m, NULL, 0, 0, 1, 0), ML_TAKEN);
        assert_true(ml_pending(m, &rec));
        assert_non_null(rec.data);
        assert_int_equal(rec.len, 0);
        assert_int_equal(rec.lines, 1);
        assert_int_equal(ml_offer(m, NULL, 0, 1, 2, 0), ML_TAKEN);
        assert_true(ml_pending(m, &rec));
        assert_int_equal(rec.len, 1);
        assert_memory_equal(rec.data, "\n", 1);
        ml_free(m);

        /* A pattern that matches the empty line makes it a start line. */
        m = new_ml("^$|^S", 100, 4096);
        feed_str(m, "S\nc\n\nd\n", &r);
        assert_int_equal(r.n, 2);
        check_rec(&r, 0, "S\nc", 0, 4, 2);
        check_rec(&r, 1, "\nd", 4, 7, 2);
        recs_free(&r);
        ml_free(m);
}

/* The record buffer is reused from one record to the next. */
static void test_buffer_reused(void **state)
{
        (void)state;
        char line[100];
        memset(line, 'c', sizeof(line));
        struct ml *m = new_ml("^S", 1000, 1 << 20);
        struct ml_record rec;
        const char *first = NULL;

        for (int round = 0; round < 3; round++) {
                assert_int_equal(ml_offer(m, "S", 1, 0, 2, 0), ML_TAKEN);
                for (int i = 0; i < 50; i++)
                        assert_int_equal(ml_offer(m, line, sizeof(line), 0, 0, 0), ML_TAKEN);
                assert_true(ml_pending(m, &rec));
                assert_int_equal(rec.len, 1 + 50 * 101);
                if (round == 0)
                        first = rec.data;
                else
                        assert_ptr_equal(rec.data, first);
                ml_clear(m);
        }
        ml_free(m);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_java_trace),
                cmocka_unit_test(test_python_traceback),
                cmocka_unit_test(test_max_lines),
                cmocka_unit_test(test_max_bytes),
                cmocka_unit_test(test_huge_line_taken_whole),
                cmocka_unit_test(test_continuation_first),
                cmocka_unit_test(test_caller_cannot_emit),
                cmocka_unit_test(test_deadline),
                cmocka_unit_test(test_bad_pattern_and_opts),
                cmocka_unit_test(test_invalid_utf8_subject),
                cmocka_unit_test(test_catastrophic_pattern),
                cmocka_unit_test(test_empty_lines),
                cmocka_unit_test(test_buffer_reused),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
