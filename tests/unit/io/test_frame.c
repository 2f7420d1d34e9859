/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests of io/frame: line framing over the reusable read buffer. Each test
 * feeds bytes the way the tailer does (frame_space, copy, frame_filled) in chunks of
 * chosen sizes and compares the lines, flags and end offsets with what the bytes
 * must give.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "io/frame.h"
#include "io/rbuf.h"

struct got {
        char data[64][256];
        size_t len[64];
        uint64_t end[64];
        unsigned flags[64];
        size_t n;
};

static void take_lines(struct frame *f, struct got *g)
{
        struct frame_line l;
        while (frame_next(f, &l)) {
                assert_true(g->n < 64);
                assert_true(l.len < sizeof(g->data[0]));
                memcpy(g->data[g->n], l.data, l.len);
                g->data[g->n][l.len] = '\0';
                g->len[g->n] = l.len;
                g->end[g->n] = l.end;
                g->flags[g->n] = l.flags;
                g->n++;
        }
}

/* Feeds input in chunks of at most chunk bytes, taking lines after each read. */
static void feed(struct frame *f, const char *input, size_t len, size_t chunk, struct got *g)
{
        size_t done = 0;
        while (done < len) {
                char *buf;
                size_t room;
                frame_space(f, &buf, &room);
                size_t n = len - done;
                if (n > room)
                        n = room;
                if (n > chunk)
                        n = chunk;
                memcpy(buf, input + done, n);
                frame_filled(f, n);
                done += n;
                take_lines(f, g);
        }
}

static struct frame *new_frame(size_t read_size, size_t max_line, enum frame_long_policy p)
{
        struct frame *f;
        assert_int_equal(frame_new(read_size, max_line, p, 0, NULL, &f), 0);
        return f;
}

static void test_lines_crlf_empty(void **state)
{
        (void)state;
        const char in[] = "one\ntwo\r\n\n\r\nlast\rx\n";
        struct frame *f = new_frame(64, 100, FRAME_LONG_SPLIT);
        struct got g = {0};
        feed(f, in, sizeof(in) - 1, 64, &g);
        assert_int_equal(g.n, 5);
        assert_string_equal(g.data[0], "one");
        assert_int_equal(g.end[0], 4);
        assert_string_equal(g.data[1], "two");
        assert_int_equal(g.end[1], 9);
        assert_int_equal(g.len[2], 0); /* empty line kept */
        assert_int_equal(g.end[2], 10);
        assert_int_equal(g.len[3], 0); /* "\r\n": empty line, CR removed */
        assert_int_equal(g.end[3], 12);
        assert_string_equal(g.data[4], "last\rx"); /* a CR inside a line stays */
        assert_int_equal(g.end[4], 19);
        for (size_t i = 0; i < g.n; i++)
                assert_int_equal(g.flags[i], 0);
        assert_int_equal(frame_held(f), 0);
        assert_int_equal(frame_read_offset(f), 19);
        frame_free(f);
}

static void test_only_one_cr_removed(void **state)
{
        (void)state;
        const char in[] = "a\r\r\n";
        struct frame *f = new_frame(64, 100, FRAME_LONG_SPLIT);
        struct got g = {0};
        feed(f, in, sizeof(in) - 1, 64, &g);
        assert_int_equal(g.n, 1);
        assert_int_equal(g.len[0], 2);
        assert_memory_equal(g.data[0], "a\r", 2);
        frame_free(f);
}

static void test_partial_line_held(void **state)
{
        (void)state;
        struct frame *f = new_frame(64, 100, FRAME_LONG_SPLIT);
        struct got g = {0};
        feed(f, "done\npart", 9, 64, &g);
        assert_int_equal(g.n, 1);
        assert_int_equal(frame_held(f), 4);
        feed(f, "ial", 3, 64, &g);
        assert_int_equal(g.n, 1); /* still no newline */
        feed(f, "\nnext\n", 6, 64, &g);
        assert_int_equal(g.n, 3);
        assert_string_equal(g.data[1], "partial");
        assert_int_equal(g.end[1], 13);
        assert_string_equal(g.data[2], "next");
        assert_int_equal(g.end[2], 18);
        frame_free(f);
}

/* Every split point of the input, and 1-byte reads: the same lines. */
static void test_split_across_reads(void **state)
{
        (void)state;
        const char in[] = "alpha\r\nbeta\n\ngamma delta\r\nz\n";
        size_t len = sizeof(in) - 1;
        for (size_t chunk = 1; chunk <= len; chunk++) {
                struct frame *f = new_frame(8, 100, FRAME_LONG_SPLIT);
                struct got g = {0};
                feed(f, in, len, chunk, &g);
                assert_int_equal(g.n, 5);
                assert_string_equal(g.data[0], "alpha");
                assert_string_equal(g.data[1], "beta");
                assert_int_equal(g.len[2], 0);
                assert_string_equal(g.data[3], "gamma delta");
                assert_string_equal(g.data[4], "z");
                assert_int_equal(g.end[4], len);
                frame_free(f);
        }
}

static void test_flush_partial(void **state)
{
        (void)state;
        struct frame *f = new_frame(64, 100, FRAME_LONG_SPLIT);
        struct got g = {0};
        struct frame_line l;
        feed(f, "a\ntail", 6, 64, &g);
        assert_true(frame_flush(f, &l));
        assert_int_equal(l.len, 4);
        assert_memory_equal(l.data, "tail", 4);
        assert_int_equal(l.end, 6);
        assert_int_equal(l.flags, FRAME_F_PARTIAL);
        assert_false(frame_flush(f, &l));
        feed(f, "more\n", 5, 64, &g);
        assert_string_equal(g.data[1], "more");
        assert_int_equal(g.end[1], 11);
        frame_free(f);
}

static void test_long_split(void **state)
{
        (void)state;
        /* max_line 4: "abcdefghij" -> "abcd" "efgh" "ij" */
        const char in[] = "abcdefghij\nxy\nabcd\nabcde\r\n";
        for (size_t chunk = 1; chunk <= sizeof(in) - 1; chunk++) {
                struct frame *f = new_frame(3, 4, FRAME_LONG_SPLIT);
                struct got g = {0};
                feed(f, in, sizeof(in) - 1, chunk, &g);
                assert_int_equal(g.n, 7);
                assert_string_equal(g.data[0], "abcd");
                assert_int_equal(g.flags[0], FRAME_F_SPLIT);
                assert_int_equal(g.end[0], 4);
                assert_string_equal(g.data[1], "efgh");
                assert_int_equal(g.flags[1], FRAME_F_SPLIT);
                assert_string_equal(g.data[2], "ij");
                assert_int_equal(g.flags[2], 0);
                assert_int_equal(g.end[2], 11);
                assert_string_equal(g.data[3], "xy");
                assert_string_equal(g.data[4], "abcd"); /* exactly max_line: not long */
                assert_int_equal(g.flags[4], 0);
                assert_string_equal(g.data[5], "abcd");
                assert_int_equal(g.flags[5], FRAME_F_SPLIT);
                assert_string_equal(g.data[6], "e");
                assert_int_equal(g.end[6], sizeof(in) - 1);
                assert_int_equal(frame_stats(f)->split, 2);
                frame_free(f);
        }
}

static void test_long_truncate(void **state)
{
        (void)state;
        const char in[] = "abcdefghij\nxy\n";
        for (size_t chunk = 1; chunk <= sizeof(in) - 1; chunk++) {
                struct frame *f = new_frame(3, 4, FRAME_LONG_TRUNCATE);
                struct got g = {0};
                feed(f, in, sizeof(in) - 1, chunk, &g);
                assert_int_equal(g.n, 2);
                assert_string_equal(g.data[0], "abcd");
                assert_int_equal(g.flags[0], FRAME_F_TRUNCATED);
                assert_int_equal(g.end[0], 11); /* past the newline: the rest is never sent */
                assert_string_equal(g.data[1], "xy");
                assert_int_equal(g.end[1], 14);
                assert_int_equal(frame_stats(f)->truncated, 1);
                frame_free(f);
        }
}

static void test_long_skip(void **state)
{
        (void)state;
        const char in[] = "ok\nabcdefghij\nxy\n";
        for (size_t chunk = 1; chunk <= sizeof(in) - 1; chunk++) {
                struct frame *f = new_frame(3, 4, FRAME_LONG_SKIP);
                struct got g = {0};
                feed(f, in, sizeof(in) - 1, chunk, &g);
                assert_int_equal(g.n, 3);
                assert_string_equal(g.data[0], "ok");
                assert_int_equal(g.len[1], 0);
                assert_int_equal(g.flags[1], FRAME_F_SKIPPED);
                assert_int_equal(g.end[1], 14);
                assert_string_equal(g.data[2], "xy");
                assert_int_equal(frame_stats(f)->skipped, 1);
                frame_free(f);
        }
}

static void test_reset_and_offsets(void **state)
{
        (void)state;
        struct frame *f;
        assert_int_equal(frame_new(16, 100, FRAME_LONG_SPLIT, 1000, NULL, &f), 0);
        struct got g = {0};
        feed(f, "x\nhel", 5, 16, &g);
        assert_int_equal(g.end[0], 1002);
        assert_int_equal(frame_read_offset(f), 1005);
        frame_reset(f, 0);
        assert_int_equal(frame_held(f), 0);
        feed(f, "new\n", 4, 16, &g);
        assert_string_equal(g.data[1], "new");
        assert_int_equal(g.end[1], 4);
        frame_free(f);
}

static void test_bytes_before(void **state)
{
        (void)state;
        struct frame *f = new_frame(64, 100, FRAME_LONG_SPLIT);
        struct got g = {0};
        feed(f, "0123\n5678\n", 10, 64, &g);
        const char *p;
        size_t n;
        assert_true(frame_bytes_before(f, 10, 4, &p, &n));
        assert_int_equal(n, 4);
        assert_memory_equal(p, "678\n", 4);
        assert_true(frame_bytes_before(f, 5, 100, &p, &n));
        assert_int_equal(n, 5);
        assert_memory_equal(p, "0123\n", 5);
        assert_false(frame_bytes_before(f, 11, 4, &p, &n));
        frame_free(f);
}

/* Lines kept by a reference to their buffer survive the frame's reuse of its space
 * (compaction, reset): it moves to a new buffer, and the old one goes with the last
 * reference. Unreferenced, the frame keeps compacting in place. */
static void test_borrowed_lines_survive(void **state)
{
        (void)state;
        struct frame *f;
        struct rbuf_acct acct = {0};
        assert_int_equal(frame_new(8, 8, FRAME_LONG_SPLIT, 0, &acct, &f), 0); /* 17-byte buffer */
        char *buf;
        size_t room;
        frame_space(f, &buf, &room);
        assert_int_equal(room, 8);
        memcpy(buf, "ab\ncd\nef", 8);
        frame_filled(f, 8);
        struct frame_line a, b;
        assert_true(frame_next(f, &a));
        assert_true(frame_next(f, &b));
        assert_memory_equal(a.data, "ab", 2);
        struct rbuf *held = a.buf;
        assert_ptr_equal(b.buf, held);
        rbuf_get(held);
        const char *kept = b.data; /* "cd" */

        /* Fill until the next frame_space() must compact: it cannot, in place. */
        frame_space(f, &buf, &room);
        memcpy(buf, "gh\nijklm", 8);
        frame_filled(f, 8);
        struct frame_line l;
        assert_true(frame_next(f, &l));
        assert_int_equal(l.len, 4);
        assert_memory_equal(l.data, "efgh", 4);
        assert_false(frame_next(f, &l));
        frame_space(f, &buf, &room); /* 17 - 16 < 8 and start > 0: compaction */
        assert_int_equal(rbuf_retired_bytes(), 17);
        assert_int_equal(acct.retired, 17); /* the frame's account too */
        assert_memory_equal(kept, "cd", 2);
        memcpy(buf, "n\nZZZZZZ", 8);
        frame_filled(f, 8);
        assert_true(frame_next(f, &l));
        assert_int_equal(l.len, 6);
        assert_memory_equal(l.data, "ijklmn", 6);
        assert_ptr_not_equal(l.buf, held);
        assert_memory_equal(kept, "cd", 2); /* untouched */
        rbuf_put(held);
        assert_int_equal(rbuf_retired_bytes(), 0);
        assert_int_equal(acct.retired, 0);

        /* Reset while referenced: the next read goes to a new buffer. */
        struct rbuf *cur = l.buf;
        rbuf_get(cur);
        const char *kept2 = l.data;
        frame_reset(f, 100);
        frame_space(f, &buf, &room);
        memcpy(buf, "xy\n", 3);
        frame_filled(f, 3);
        assert_true(frame_next(f, &l));
        assert_memory_equal(l.data, "xy", 2);
        assert_int_equal(l.end, 103);
        assert_memory_equal(kept2, "ijklmn", 6);
        assert_ptr_not_equal(l.buf, cur);
        rbuf_put(cur);
        assert_int_equal(rbuf_retired_bytes(), 0);

        /* Unreferenced: compaction in place, the same buffer. */
        struct rbuf *same = l.buf;
        for (int i = 0; i < 10; i++) {
                frame_space(f, &buf, &room);
                memcpy(buf, "0123456\n", 8);
                frame_filled(f, 8);
                assert_true(frame_next(f, &l));
                assert_ptr_equal(l.buf, same);
        }
        frame_free(f);
        assert_int_equal(rbuf_retired_bytes(), 0);
        assert_int_equal(acct.retired, 0);
}

/* frame_free() with a line still referenced: the buffer stays until released. */
static void test_borrowed_after_free(void **state)
{
        (void)state;
        struct frame *f;
        assert_int_equal(frame_new(64, 64, FRAME_LONG_SPLIT, 0, NULL, &f), 0);
        char *buf;
        size_t room;
        frame_space(f, &buf, &room);
        memcpy(buf, "hello\n", 6);
        frame_filled(f, 6);
        struct frame_line l;
        assert_true(frame_next(f, &l));
        rbuf_get(l.buf);
        frame_free(f);
        assert_int_equal(rbuf_retired_bytes(), 129);
        assert_memory_equal(l.data, "hello", 5); /* ASan: no use after free */
        rbuf_put(l.buf);
        assert_int_equal(rbuf_retired_bytes(), 0);
}

/* Freed buffers are kept for reuse up to RBUF_SPARES_MAX (none under ASan), and all
 * but RBUF_SPARES_IDLE are unmapped by the second rbuf_trim_idle() with no buffer
 * taken in between. */
static void test_spares_kept_then_trimmed(void **state)
{
        (void)state;
        rbuf_trim_idle();
        rbuf_trim_idle();
        unsigned c0 = rbuf_spare_count();
        assert_true(c0 <= RBUF_SPARES_IDLE);

        enum { N = RBUF_SPARES_MAX + 8 };
        const size_t cap = 12345; /* no other test frees a buffer of this size */
        struct rbuf *b[N];
        for (int i = 0; i < N; i++) {
                b[i] = rbuf_new(cap, NULL);
                assert_non_null(b[i]);
                rbuf_data(b[i])[cap - 1] = (char)i;
        }
        assert_int_equal(rbuf_spare_count(), c0);
        for (int i = 0; i < N; i++)
                rbuf_put(b[i]);
        const unsigned max = RBUF_SPARES_MAX, idle = RBUF_SPARES_IDLE; /* 0: ASan */
        unsigned kept = c0 + N < max ? c0 + N : max;
        assert_int_equal(rbuf_spare_count(), kept);

        rbuf_trim_idle(); /* buffers were taken since the last call: all kept */
        assert_int_equal(rbuf_spare_count(), kept);
        rbuf_trim_idle();
        assert_int_equal(rbuf_spare_count(), idle < kept ? idle : kept);

        /* Kept first is what was freed last while there was room (the buffers freed
         * after that were unmapped at once), and it is handed out again. */
        unsigned before = rbuf_spare_count();
        struct rbuf *again = rbuf_new(cap, NULL);
        assert_non_null(again);
        if (before > 0) {
                assert_ptr_equal(again, b[kept - c0 - 1]);
                assert_int_equal(rbuf_spare_count(), before - 1);
        }
        assert_false(rbuf_shared(again));
        rbuf_put(again);
}

static void test_bad_args(void **state)
{
        (void)state;
        struct frame *f = NULL;
        assert_int_equal(frame_new(0, 10, FRAME_LONG_SPLIT, 0, NULL, &f), -EINVAL);
        assert_int_equal(frame_new(10, 0, FRAME_LONG_SPLIT, 0, NULL, &f), -EINVAL);
        assert_null(f);
        frame_free(NULL);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_lines_crlf_empty),
                cmocka_unit_test(test_only_one_cr_removed),
                cmocka_unit_test(test_partial_line_held),
                cmocka_unit_test(test_split_across_reads),
                cmocka_unit_test(test_flush_partial),
                cmocka_unit_test(test_long_split),
                cmocka_unit_test(test_long_truncate),
                cmocka_unit_test(test_long_skip),
                cmocka_unit_test(test_reset_and_offsets),
                cmocka_unit_test(test_bytes_before),
                cmocka_unit_test(test_borrowed_lines_survive),
                cmocka_unit_test(test_borrowed_after_free),
                cmocka_unit_test(test_spares_kept_then_trimmed),
                cmocka_unit_test(test_bad_args),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
