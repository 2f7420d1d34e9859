/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests of io/tail: the identity rules of the tailer. Each test works on real
 * files in its own mkdtemp() directory ($TMPDIR or /tmp), written through a separate
 * O_APPEND descriptor, and drives a real event loop with io_run() until no read is in
 * flight. The whole set runs on the poll backend, then on io_uring; when the kernel
 * refuses io_uring the binary exits 77 after the poll run (liburing's T_EXIT_SKIP).
 *
 * Callbacks are recorded in order (read_done only counted, since how many there are
 * depends on read sizes) and compared with the exact lines, end offsets and consumed
 * offsets the bytes written must give; fingerprints and tail hashes are compared with
 * XXH3_64bits() of the bytes, computed here.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
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
#include <unistd.h>
#include <xxhash.h>

#include <cmocka.h>

#include "io/io.h"
#include "io/tail.h"

enum ev_kind {
        EV_LINE,
        EV_TRUNC,
        EV_ERROR,
};

struct ev {
        enum ev_kind kind;
        char data[64];
        size_t len;
        uint64_t off; /* EV_LINE: the line's end; EV_TRUNC: the consumed offset */
        unsigned flags;
        bool refused; /* EV_LINE: ops->line() returned -EAGAIN */
        int err;
};

struct fx {
        struct io_loop *loop;
        char dir[PATH_MAX];
        char path[PATH_MAX];
        int wfd; /* O_APPEND writer of path */
        struct tail *t;
        struct tail *t2;
        struct ev ev[256];
        size_t n;
        unsigned dones;     /* read_done() calls */
        const char *refuse; /* a line ops->line() refuses with -EAGAIN ... */
        unsigned refuse_n;  /* ... this many times */
};

static enum io_backend backend; /* of the group being run */

/* ---- callbacks ---- */

static struct ev *ev_add(struct fx *f, enum ev_kind kind)
{
        assert_true(f->n < sizeof(f->ev) / sizeof(f->ev[0]));
        struct ev *e = &f->ev[f->n++];
        memset(e, 0, sizeof(*e));
        e->kind = kind;
        return e;
}

static int on_line(void *userdata, const struct frame_line *line)
{
        struct fx *f = userdata;
        struct ev *e = ev_add(f, EV_LINE);
        assert_true(line->len < sizeof(e->data));
        memcpy(e->data, line->data, line->len);
        e->len = line->len;
        e->off = line->end;
        e->flags = line->flags;
        if (f->refuse_n > 0 && line->len == strlen(f->refuse) &&
            memcmp(line->data, f->refuse, line->len) == 0) {
                f->refuse_n--;
                e->refused = true;
                return -EAGAIN;
        }
        return 0;
}

static void on_read_done(void *userdata)
{
        struct fx *f = userdata;
        f->dones++;
}

static void on_truncated(void *userdata, uint64_t consumed)
{
        ev_add(userdata, EV_TRUNC)->off = consumed;
}

static void on_error(void *userdata, int err)
{
        ev_add(userdata, EV_ERROR)->err = err;
}

static const struct tail_ops ops = {
        .line = on_line,
        .read_done = on_read_done,
        .truncated = on_truncated,
        .error = on_error,
};

/* ---- fixture ---- */

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
        (void)st;
        (void)flag;
        (void)ftw;
        return remove(path);
}

static int fx_setup(void **state)
{
        struct fx *f = calloc(1, sizeof(*f));
        const char *tmp = getenv("TMPDIR");

        if (!f)
                return -1;
        f->wfd = -1;
        int n = snprintf(f->dir, sizeof(f->dir), "%s/test_tail.XXXXXX", tmp && *tmp ? tmp : "/tmp");
        if (n < 0 || (size_t)n >= sizeof(f->dir) || !mkdtemp(f->dir))
                goto out_free;
        n = snprintf(f->path, sizeof(f->path), "%s/app.log", f->dir);
        if (n < 0 || (size_t)n >= sizeof(f->path))
                goto out_rmdir;
        f->wfd = open(f->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (f->wfd < 0)
                goto out_rmdir;
        if (io_loop_new(backend, &f->loop) < 0)
                goto out_rmdir;
        /* AUTO is never asked for: the backend is the one under test. */
        if (strcmp(io_loop_backend(f->loop), backend == IO_BACKEND_POLL ? "poll" : "io_uring")) {
                io_loop_free(f->loop);
                goto out_rmdir;
        }
        *state = f;
        return 0;
out_rmdir:
        if (f->wfd >= 0)
                close(f->wfd);
        (void)nftw(f->dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
out_free:
        free(f);
        return -1;
}

static int fx_teardown(void **state)
{
        struct fx *f = *state;
        int r = 0;

        tail_free(f->t);
        tail_free(f->t2);
        /* A read in flight ends in its callback, which then frees its tail. */
        for (unsigned turn = 0; io_in_flight(f->loop) > 0 && turn < 100; turn++)
                if (io_run(f->loop, 1000) < 0)
                        break;
        if (io_in_flight(f->loop) == 0)
                io_loop_free(f->loop);
        else
                r = -1; /* leaked: the kernel may still write into a buffer */
        close(f->wfd);
        if (nftw(f->dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS) < 0)
                r = -1;
        free(f);
        return r;
}

/* ---- helpers ---- */

/* Runs the loop until no read is in flight: the tail is IDLE, PAUSED or FAILED. */
static void drain(struct fx *f)
{
        unsigned empty = 0;
        for (unsigned turn = 0; io_in_flight(f->loop) > 0; turn++) {
                assert_true(turn < 100000);
                int r = io_run(f->loop, 1000);
                assert_true(r >= 0);
                if (r == 0)
                        assert_true(++empty < 5);
        }
}

static struct tail_opts opts(size_t read_size, uint32_t fingerprint_bytes)
{
        return (struct tail_opts){
                .read_size = read_size,
                .max_line = 60,
                .long_policy = FRAME_LONG_SPLIT,
                .fingerprint_bytes = fingerprint_bytes,
        };
}

static struct tail *open_tail(struct fx *f, const struct tail_opts *o)
{
        struct tail *t = NULL;
        int fd = open(f->path, O_RDONLY | O_CLOEXEC);
        assert_true(fd >= 0);
        assert_int_equal(tail_new(f->loop, fd, f->path, o, &ops, f, &t), 0);
        assert_non_null(t);
        assert_int_equal(tail_get_state(t), TAIL_NEW);
        return t;
}

/* Opens f->t on f->path, starts it at offset and reads until it is idle. */
static void start(struct fx *f, const struct tail_opts *o, uint64_t offset)
{
        f->t = open_tail(f, o);
        assert_int_equal(tail_start(f->t, offset), 0);
        drain(f);
}

static void put_bytes(struct fx *f, const void *p, size_t n)
{
        assert_int_equal(write(f->wfd, p, n), (ssize_t)n);
}

static void put(struct fx *f, const char *s)
{
        put_bytes(f, s, strlen(s));
}

/* Cuts the file to keep bytes, then appends n bytes: the same inode. */
static void rewrite(struct fx *f, off_t keep, const void *p, size_t n)
{
        assert_int_equal(ftruncate(f->wfd, keep), 0);
        put_bytes(f, p, n);
}

/* Writes s at off in place (O_APPEND would ignore the offset). */
static void overwrite(struct fx *f, off_t off, const char *s)
{
        int fd = open(f->path, O_WRONLY | O_CLOEXEC);
        assert_true(fd >= 0);
        assert_int_equal(pwrite(fd, s, strlen(s), off), (ssize_t)strlen(s));
        assert_int_equal(close(fd), 0);
}

static void sibling(const struct fx *f, char *buf, const char *name)
{
        int n = snprintf(buf, PATH_MAX, "%s/%s", f->dir, name);
        assert_true(n > 0 && n < PATH_MAX);
}

/* nlines lines of exactly width bytes: "<tag> <index> <letters>\n". */
static size_t gen_lines(char *buf, const char *tag, size_t nlines, size_t width)
{
        size_t pos = 0;
        for (size_t i = 0; i < nlines; i++) {
                int k = snprintf(buf + pos, width, "%s %04zu ", tag, i);
                assert_true(k > 0 && (size_t)k < width - 1);
                for (size_t j = (size_t)k; j < width - 1; j++)
                        buf[pos + j] = (char)('a' + (i * 7 + j + (size_t)tag[0]) % 26);
                buf[pos + width - 1] = '\n';
                pos += width;
        }
        return pos;
}

static void expect_offer(const struct fx *f, size_t i, const char *text, uint64_t end,
                         unsigned flags, bool refused)
{
        assert_true(i < f->n);
        assert_int_equal(f->ev[i].kind, EV_LINE);
        assert_string_equal(f->ev[i].data, text);
        assert_int_equal(f->ev[i].len, strlen(text));
        assert_int_equal(f->ev[i].off, end);
        assert_int_equal(f->ev[i].flags, flags);
        assert_int_equal(f->ev[i].refused, refused);
}

static void expect_line(const struct fx *f, size_t i, const char *text, uint64_t end)
{
        expect_offer(f, i, text, end, 0, false);
}

static void expect_trunc(const struct fx *f, size_t i, uint64_t consumed)
{
        assert_true(i < f->n);
        assert_int_equal(f->ev[i].kind, EV_TRUNC);
        assert_int_equal(f->ev[i].off, consumed);
}

/* Events first.. are the nlines lines of width bytes in buf, which starts at file
 * offset base. */
static void expect_gen(const struct fx *f, size_t first, const char *buf, size_t nlines,
                       size_t width, uint64_t base)
{
        for (size_t i = 0; i < nlines; i++) {
                const struct ev *e = &f->ev[first + i];
                assert_true(first + i < f->n);
                assert_int_equal(e->kind, EV_LINE);
                assert_int_equal(e->len, width - 1);
                assert_memory_equal(e->data, buf + i * width, width - 1);
                assert_int_equal(e->off, base + (i + 1) * width);
                assert_int_equal(e->flags, 0);
        }
}

static struct tail_ckpt fill(struct tail *t, uint64_t offset)
{
        struct tail_ckpt ck = {.offset = offset};
        assert_int_equal(tail_ckpt_fill(t, &ck), 0);
        assert_int_equal(ck.offset, offset);
        return ck;
}

/* ---- tail_ckpt_fill ---- */

/* The whole file is in the read buffer: the tail hash is taken from it. */
static void test_fill_in_buffer(void **state)
{
        struct fx *f = *state;
        struct tail_opts o = opts(4096, 64);
        char c[600];
        assert_int_equal(gen_lines(c, "old", 20, 30), sizeof(c));
        put_bytes(f, c, sizeof(c));
        start(f, &o, 0);
        assert_int_equal(f->n, 20);
        expect_gen(f, 0, c, 20, 30, 0);
        assert_int_equal(f->dones, 1);
        assert_int_equal(tail_get_state(f->t), TAIL_IDLE);
        assert_int_equal(tail_consumed_offset(f->t), 600);
        assert_int_equal(tail_read_offset(f->t), 600);

        struct tail_ckpt ck = fill(f->t, 600);
        assert_int_equal(ck.fp_len, 64);
        assert_int_equal(ck.fp, XXH3_64bits(c, 64));
        assert_int_equal(ck.tail_len, TAIL_HASH_BYTES);
        assert_int_equal(ck.tail_hash, XXH3_64bits(c + 600 - TAIL_HASH_BYTES, TAIL_HASH_BYTES));

        ck = fill(f->t, 300);
        assert_int_equal(ck.fp_len, 64);
        assert_int_equal(ck.fp, XXH3_64bits(c, 64));
        assert_int_equal(ck.tail_len, TAIL_HASH_BYTES);
        assert_int_equal(ck.tail_hash, XXH3_64bits(c + 300 - TAIL_HASH_BYTES, TAIL_HASH_BYTES));

        ck = fill(f->t, 90); /* fewer than TAIL_HASH_BYTES before it */
        assert_int_equal(ck.tail_len, 90);
        assert_int_equal(ck.tail_hash, XXH3_64bits(c, 90));

        /* Bytes changed on disk after the read: the hash is still of what was read,
         * so it came from the buffer. */
        overwrite(f, 500, "XXXXXXXXXX");
        ck = fill(f->t, 600);
        assert_int_equal(ck.tail_len, TAIL_HASH_BYTES);
        assert_int_equal(ck.tail_hash, XXH3_64bits(c + 600 - TAIL_HASH_BYTES, TAIL_HASH_BYTES));
        assert_int_equal(ck.fp, XXH3_64bits(c, 64));
}

/* A checkpoint far behind the read position: the bytes are read from the file. */
static void test_fill_from_file(void **state)
{
        struct fx *f = *state;
        struct tail_opts o = opts(64, 32); /* buffer: 60 + 64 + 1 bytes */
        char c[2000];
        assert_int_equal(gen_lines(c, "old", 100, 20), sizeof(c));
        put_bytes(f, c, sizeof(c));
        start(f, &o, 0);
        assert_int_equal(f->n, 100);
        expect_gen(f, 0, c, 100, 20, 0);
        assert_int_equal(tail_get_state(f->t), TAIL_IDLE);
        assert_int_equal(tail_consumed_offset(f->t), 2000);

        struct tail_ckpt ck = fill(f->t, 300);
        assert_int_equal(ck.fp_len, 32);
        assert_int_equal(ck.fp, XXH3_64bits(c, 32));
        assert_int_equal(ck.tail_len, TAIL_HASH_BYTES);
        assert_int_equal(ck.tail_hash, XXH3_64bits(c + 300 - TAIL_HASH_BYTES, TAIL_HASH_BYTES));
        uint64_t before = ck.tail_hash;

        /* At the read position, but the buffer holds fewer than TAIL_HASH_BYTES. */
        ck = fill(f->t, 2000);
        assert_int_equal(ck.tail_len, TAIL_HASH_BYTES);
        assert_int_equal(ck.tail_hash, XXH3_64bits(c + 2000 - TAIL_HASH_BYTES, TAIL_HASH_BYTES));

        ck = fill(f->t, 100);
        assert_int_equal(ck.tail_len, 100);
        assert_int_equal(ck.tail_hash, XXH3_64bits(c, 100));

        /* Read from the file: a change on disk is seen. */
        overwrite(f, 250, "XXXXXXXXXX");
        memcpy(c + 250, "XXXXXXXXXX", 10);
        ck = fill(f->t, 300);
        assert_int_equal(ck.tail_len, TAIL_HASH_BYTES);
        assert_int_equal(ck.tail_hash, XXH3_64bits(c + 300 - TAIL_HASH_BYTES, TAIL_HASH_BYTES));
        assert_int_not_equal(ck.tail_hash, before);
        assert_int_equal(ck.fp_len, 32);
        assert_int_equal(ck.fp, XXH3_64bits(c, 32));

        /* Past the end of the file: nothing to hash. */
        ck = fill(f->t, 3000);
        assert_int_equal(ck.tail_len, 0);
        assert_int_equal(ck.tail_hash, 0);
        assert_int_equal(ck.fp_len, 32);
}

/* fp_len follows the file while it is shorter than fingerprint_bytes. */
static void test_fill_short_file(void **state)
{
        struct fx *f = *state;
        struct tail_opts o = opts(4096, 64);
        start(f, &o, 0); /* empty */
        assert_int_equal(f->n, 0);
        assert_int_equal(tail_get_state(f->t), TAIL_IDLE);
        struct tail_ckpt ck = fill(f->t, 0);
        assert_int_equal(ck.fp_len, 0);
        assert_int_equal(ck.tail_len, 0);

        char c[150];
        assert_int_equal(gen_lines(c, "old", 2, 25), 50);
        put_bytes(f, c, 50);
        tail_wake(f->t);
        drain(f);
        assert_int_equal(f->n, 2);
        expect_gen(f, 0, c, 2, 25, 0);
        ck = fill(f->t, 50);
        assert_int_equal(ck.fp_len, 50);
        assert_int_equal(ck.fp, XXH3_64bits(c, 50));
        assert_int_equal(ck.tail_len, 50);
        assert_int_equal(ck.tail_hash, XXH3_64bits(c, 50));

        assert_int_equal(gen_lines(c + 50, "add", 4, 25), 100);
        put_bytes(f, c + 50, 100);
        tail_wake(f->t);
        drain(f);
        assert_int_equal(f->n, 6);
        expect_gen(f, 2, c + 50, 4, 25, 50);
        ck = fill(f->t, 150);
        assert_int_equal(ck.fp_len, 64);
        assert_int_equal(ck.fp, XXH3_64bits(c, 64));
        assert_int_equal(ck.tail_len, 150);
        assert_int_equal(ck.tail_hash, XXH3_64bits(c, 150));
}

/* ---- tail_ckpt_matches ---- */

static void test_matches(void **state)
{
        struct fx *f = *state;
        struct tail_opts o = opts(4096, 64);
        char c[1200], x[1200];
        assert_int_equal(gen_lines(c, "old", 20, 30), 600);
        memcpy(c + 600, c, 600);
        put_bytes(f, c, 600);
        start(f, &o, 0);
        assert_int_equal(f->n, 20);
        const struct tail_ckpt at600 = fill(f->t, 600);
        const struct tail_ckpt at300 = fill(f->t, 300);
        assert_int_equal(at600.tail_len, TAIL_HASH_BYTES);
        assert_int_equal(at300.tail_len, TAIL_HASH_BYTES);

        /* The same file, by the tail that read it and by a new one (a restart). */
        f->t2 = open_tail(f, &o);
        assert_true(tail_ckpt_matches(f->t, &at600));
        assert_true(tail_ckpt_matches(f->t2, &at600));
        assert_true(tail_ckpt_matches(f->t2, &at300));

        /* Grown after the offset. */
        put(f, "appended\n");
        assert_true(tail_ckpt_matches(f->t2, &at600));
        assert_true(tail_ckpt_matches(f->t2, &at300));

        /* Rewritten with other first bytes, same length. */
        memcpy(x, c, 600);
        x[5] = 'X';
        rewrite(f, 0, x, 600);
        assert_false(tail_ckpt_matches(f->t2, &at600));
        assert_false(tail_ckpt_matches(f->t2, &at300));
        struct tail_ckpt no_fp = at600;
        no_fp.fp_len = 0; /* only the fingerprint differs */
        assert_true(tail_ckpt_matches(f->t2, &no_fp));

        /* Truncated and written past the old offset with the same first bytes: only
         * the bytes before the offset differ. Same length, then longer. */
        memcpy(x, c, 1200);
        x[590] = 'X';
        rewrite(f, 0, x, 600);
        assert_false(tail_ckpt_matches(f->t2, &at600));
        assert_true(tail_ckpt_matches(f->t2, &at300));
        rewrite(f, 0, x, 1200);
        assert_false(tail_ckpt_matches(f->t2, &at600));
        assert_true(tail_ckpt_matches(f->t2, &at300));
        struct tail_ckpt no_tail = at600;
        no_tail.tail_len = 0; /* only the tail hash differs */
        assert_true(tail_ckpt_matches(f->t2, &no_tail));

        /* Shorter than the offset. */
        rewrite(f, 0, c, 599);
        assert_false(tail_ckpt_matches(f->t2, &at600));
        assert_true(tail_ckpt_matches(f->t2, &at300));

        /* tail_len 0: the length only (tail_hash is not looked at). */
        struct tail_ckpt len_only = at600;
        len_only.tail_len = 0;
        len_only.tail_hash = at600.tail_hash ^ 1;
        assert_false(tail_ckpt_matches(f->t2, &len_only));
        len_only.offset = 599;
        assert_true(tail_ckpt_matches(f->t2, &len_only));
        rewrite(f, 0, x, 600);
        len_only.offset = 600;
        assert_true(tail_ckpt_matches(f->t2, &len_only));
        len_only.offset = 601;
        assert_false(tail_ckpt_matches(f->t2, &len_only));

        /* fp_len larger than the file. */
        rewrite(f, 0, c, 40);
        struct tail_ckpt big_fp = {.offset = 30, .fp = XXH3_64bits(c, 64), .fp_len = 64};
        assert_false(tail_ckpt_matches(f->t2, &big_fp));
        const struct tail_ckpt fits = {
                .offset = 30,
                .fp = XXH3_64bits(c, 40),
                .fp_len = 40,
                .tail_len = 30,
                .tail_hash = XXH3_64bits(c, 30),
        };
        assert_true(tail_ckpt_matches(f->t2, &fits));
}

/* ---- truncation ---- */

/* Read to the end, holding a partial line; truncated to 0 and written shorter. */
static void truncate_to_zero(struct fx *f, bool fingerprinted)
{
        struct tail_opts o = opts(8, 64); /* several reads */
        put(f, "aa\nbb\npart");
        start(f, &o, 0);
        assert_int_equal(f->n, 2);
        expect_line(f, 0, "aa", 3);
        expect_line(f, 1, "bb", 6);
        assert_int_equal(tail_consumed_offset(f->t), 6);
        assert_int_equal(tail_held(f->t), 4);
        assert_int_equal(tail_read_offset(f->t), 10);
        assert_int_equal(tail_get_state(f->t), TAIL_IDLE);
        if (fingerprinted) {
                struct tail_ckpt ck = fill(f->t, 6);
                assert_int_equal(ck.fp_len, 10);
        }

        rewrite(f, 0, "n1\nn2\n", 6);
        tail_wake(f->t);
        drain(f);
        assert_int_equal(f->n, 5);
        expect_trunc(f, 2, 6);
        expect_line(f, 3, "n1", 3);
        expect_line(f, 4, "n2", 6);
        assert_int_equal(tail_consumed_offset(f->t), 6);
        assert_int_equal(tail_read_offset(f->t), 6);
        assert_int_equal(tail_held(f->t), 0);
        assert_int_equal(tail_get_state(f->t), TAIL_IDLE);
}

static void test_truncate_to_zero(void **state)
{
        truncate_to_zero(*state, false);
}

static void test_truncate_to_zero_fingerprinted(void **state)
{
        truncate_to_zero(*state, true);
}

/* Truncated to a shorter length and appended to: read again from 0. */
static void test_truncate_shorter(void **state)
{
        struct fx *f = *state;
        struct tail_opts o = opts(4096, 64);
        put(f, "l1\nl2\nl3\n");
        start(f, &o, 0);
        assert_int_equal(f->n, 3);
        expect_line(f, 2, "l3", 9);

        rewrite(f, 3, "x\n", 2); /* "l1\nx\n" */
        tail_wake(f->t);
        drain(f);
        assert_int_equal(f->n, 6);
        expect_trunc(f, 3, 9);
        expect_line(f, 4, "l1", 3);
        expect_line(f, 5, "x", 5);
        assert_int_equal(tail_consumed_offset(f->t), 5);
        assert_int_equal(tail_read_offset(f->t), 5);
        assert_int_equal(tail_get_state(f->t), TAIL_IDLE);
}

/* Truncated and written past the read position while idle: only the fingerprint
 * shows it. The new lines are 13 bytes wide, so reading on at the old position (64)
 * would start in the middle of one. by_check: found by tail_check(), not tail_wake(). */
static void rewrite_longer(struct fx *f, bool by_check)
{
        struct tail_opts o = opts(4096, 32);
        char old[64], neu[130];
        assert_int_equal(gen_lines(old, "old", 4, 16), sizeof(old));
        assert_int_equal(gen_lines(neu, "new", 10, 13), sizeof(neu));
        put_bytes(f, old, sizeof(old));
        start(f, &o, 0);
        assert_int_equal(f->n, 4);
        expect_gen(f, 0, old, 4, 16, 0);
        struct tail_ckpt ck = fill(f->t, tail_consumed_offset(f->t)); /* as a seal does */
        assert_int_equal(ck.offset, 64);
        assert_int_equal(ck.fp_len, 32);
        assert_int_equal(ck.fp, XXH3_64bits(old, 32));

        rewrite(f, 0, neu, sizeof(neu));
        if (by_check) {
                assert_int_equal(tail_check(f->t), TAIL_GREW);
        } else {
                tail_wake(f->t);
        }
        /* ops->truncated() ran from within tail_wake()/tail_check(), before any read. */
        assert_int_equal(f->n, 5);
        expect_trunc(f, 4, 64);
        drain(f);
        assert_int_equal(f->n, 15);
        expect_gen(f, 5, neu, 10, 13, 0);
        assert_int_equal(tail_consumed_offset(f->t), 130);
        assert_int_equal(tail_read_offset(f->t), 130);
        assert_int_equal(tail_held(f->t), 0);
        assert_int_equal(tail_get_state(f->t), TAIL_IDLE);

        /* The fingerprint is now the new content's. */
        ck = fill(f->t, 130);
        assert_int_equal(ck.fp_len, 32);
        assert_int_equal(ck.fp, XXH3_64bits(neu, 32));
}

static void test_rewrite_longer_wake(void **state)
{
        rewrite_longer(*state, false);
}

static void test_rewrite_longer_check(void **state)
{
        rewrite_longer(*state, true);
}

/* ---- consumed offset, pause ---- */

static void test_consumed_and_pause(void **state)
{
        struct fx *f = *state;
        struct tail_opts o = opts(4096, 64);
        put(f, "a\nbb\nccc\npart");
        f->refuse = "bb";
        f->refuse_n = 1;
        start(f, &o, 0);
        assert_int_equal(f->n, 2);
        expect_offer(f, 0, "a", 2, 0, false);
        expect_offer(f, 1, "bb", 5, 0, true);
        assert_int_equal(f->dones, 0);
        assert_int_equal(tail_get_state(f->t), TAIL_PAUSED);
        assert_int_equal(tail_consumed_offset(f->t), 2);
        struct tail_ckpt ck = fill(f->t, tail_consumed_offset(f->t));
        assert_int_equal(ck.tail_len, 2);
        assert_int_equal(ck.tail_hash, XXH3_64bits("a\n", 2));

        /* A wake does not end a pause. */
        tail_wake(f->t);
        assert_int_equal(io_in_flight(f->loop), 0);
        assert_int_equal(tail_get_state(f->t), TAIL_PAUSED);
        assert_int_equal(f->n, 2);

        tail_resume(f->t);
        drain(f);
        assert_int_equal(f->n, 4);
        expect_line(f, 2, "bb", 5); /* offered again, first */
        expect_line(f, 3, "ccc", 9);
        assert_int_equal(f->dones, 1);
        assert_int_equal(tail_get_state(f->t), TAIL_IDLE);
        assert_int_equal(tail_consumed_offset(f->t), 9); /* not the held "part" */
        assert_int_equal(tail_held(f->t), 4);
        assert_int_equal(tail_read_offset(f->t), 13);

        /* The partial line, flushed and refused, then taken. */
        f->refuse = "part";
        f->refuse_n = 1;
        assert_int_equal(tail_flush(f->t), -EAGAIN);
        assert_int_equal(tail_get_state(f->t), TAIL_PAUSED);
        assert_int_equal(f->n, 5);
        expect_offer(f, 4, "part", 13, FRAME_F_PARTIAL, true);
        assert_int_equal(tail_consumed_offset(f->t), 9);
        tail_resume(f->t);
        drain(f);
        assert_int_equal(f->n, 6);
        expect_offer(f, 5, "part", 13, FRAME_F_PARTIAL, false);
        assert_int_equal(f->dones, 2);
        assert_int_equal(tail_consumed_offset(f->t), 13);
        assert_int_equal(tail_held(f->t), 0);
        assert_int_equal(tail_get_state(f->t), TAIL_IDLE);

        /* Flushed and taken at once. */
        put(f, "x\nend");
        tail_wake(f->t);
        drain(f);
        assert_int_equal(f->n, 7);
        expect_line(f, 6, "x", 15);
        assert_int_equal(tail_consumed_offset(f->t), 15);
        assert_int_equal(tail_held(f->t), 3);
        assert_int_equal(tail_flush(f->t), 0);
        assert_int_equal(f->n, 8);
        expect_offer(f, 7, "end", 18, FRAME_F_PARTIAL, false);
        assert_int_equal(f->dones, 4);
        assert_int_equal(tail_consumed_offset(f->t), 18);
        assert_int_equal(tail_held(f->t), 0);
        assert_int_equal(tail_flush(f->t), 0); /* none held */
        assert_int_equal(f->n, 8);
}

/* Before any line is taken, the consumed offset is where reading started. */
static void test_consumed_start_offset(void **state)
{
        struct fx *f = *state;
        struct tail_opts o = opts(4096, 64);
        put(f, "a\nbb\nccc\n");
        f->refuse = "bb";
        f->refuse_n = 1;
        f->t = open_tail(f, &o);
        assert_int_equal(tail_start(f->t, 2), 0);
        assert_int_equal(tail_consumed_offset(f->t), 2);
        assert_int_equal(tail_start(f->t, 0), -EALREADY);
        drain(f);
        assert_int_equal(f->n, 1);
        expect_offer(f, 0, "bb", 5, 0, true);
        assert_int_equal(tail_get_state(f->t), TAIL_PAUSED);
        assert_int_equal(tail_consumed_offset(f->t), 2);
        tail_resume(f->t);
        drain(f);
        assert_int_equal(f->n, 3);
        expect_line(f, 1, "bb", 5);
        expect_line(f, 2, "ccc", 9);
        assert_int_equal(tail_consumed_offset(f->t), 9);
}

/* ---- identity ---- */

static void test_identity(void **state)
{
        struct fx *f = *state;
        struct tail_opts o = opts(4096, 64);
        f->t = open_tail(f, &o);
        struct stat st;
        assert_int_equal(fstat(f->wfd, &st), 0);
        uint64_t dev = 0, ino = 0;
        tail_identity(f->t, &dev, &ino);
        assert_int_equal(dev, (uint64_t)st.st_dev);
        assert_int_equal(ino, (uint64_t)st.st_ino);
        assert_string_equal(tail_path(f->t), f->path);
        assert_ptr_not_equal(tail_path(f->t), f->path); /* copied */

        /* Not regular files: refused, and the descriptor stays the caller's. */
        char fifo[PATH_MAX];
        sibling(f, fifo, "fifo");
        assert_int_equal(mkfifo(fifo, 0600), 0);
        int fds[2];
        fds[0] = open(fifo, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
        fds[1] = open(f->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        for (size_t i = 0; i < 2; i++) {
                assert_true(fds[i] >= 0);
                struct tail *t = (struct tail *)&o; /* must stay untouched */
                assert_int_equal(tail_new(f->loop, fds[i], f->path, &o, &ops, f, &t), -EINVAL);
                assert_ptr_equal(t, (struct tail *)&o);
                assert_int_equal(close(fds[i]), 0);
        }
}

/* ---- tail_check ---- */

static void test_check_grew(void **state)
{
        struct fx *f = *state;
        struct tail_opts o = opts(4096, 64);
        put(f, "a\n");
        start(f, &o, 0);
        assert_int_equal(f->n, 1);
        assert_int_equal(tail_check(f->t), TAIL_UNCHANGED);
        assert_int_equal(tail_get_state(f->t), TAIL_IDLE);

        put(f, "b\n");
        assert_int_equal(tail_check(f->t), TAIL_GREW);
        assert_int_equal(tail_get_state(f->t), TAIL_READING); /* woken */
        drain(f);
        assert_int_equal(f->n, 2);
        expect_line(f, 1, "b", 4);
        assert_int_equal(tail_check(f->t), TAIL_UNCHANGED);
}

static void test_check_moved(void **state)
{
        struct fx *f = *state;
        struct tail_opts o = opts(4096, 64);
        char moved[PATH_MAX];
        sibling(f, moved, "app.log.1");
        put(f, "a\n");
        start(f, &o, 0);
        assert_int_equal(f->n, 1);

        assert_int_equal(rename(f->path, moved), 0);
        assert_int_equal(tail_check(f->t), TAIL_MOVED);
        assert_int_equal(tail_get_state(f->t), TAIL_IDLE);

        /* Still written after the rename: read all the same. */
        put(f, "b\n");
        assert_int_equal(tail_check(f->t), TAIL_MOVED);
        drain(f);
        assert_int_equal(f->n, 2);
        expect_line(f, 1, "b", 4);

        /* Another file at the path. */
        int fd = open(f->path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, "other\n", 6), 6);
        assert_int_equal(close(fd), 0);
        assert_int_equal(tail_check(f->t), TAIL_MOVED);
        assert_int_equal(tail_get_state(f->t), TAIL_IDLE);
        assert_int_equal(f->n, 2);

        /* Back at its path. */
        assert_int_equal(rename(moved, f->path), 0);
        assert_int_equal(tail_check(f->t), TAIL_UNCHANGED);
}

static void test_check_deleted(void **state)
{
        struct fx *f = *state;
        struct tail_opts o = opts(4096, 64);
        char other[PATH_MAX];
        sibling(f, other, "hardlink");
        put(f, "a\n");
        start(f, &o, 0);
        assert_int_equal(f->n, 1);

        /* A name is left: moved, not deleted. */
        assert_int_equal(link(f->path, other), 0);
        assert_int_equal(unlink(f->path), 0);
        assert_int_equal(tail_check(f->t), TAIL_MOVED);

        assert_int_equal(unlink(other), 0);
        assert_int_equal(tail_check(f->t), TAIL_DELETED);
        assert_int_equal(tail_get_state(f->t), TAIL_IDLE);

        /* Deleted but still open and written: the data is delivered. */
        put(f, "late\n");
        assert_int_equal(tail_check(f->t), TAIL_DELETED);
        drain(f);
        assert_int_equal(f->n, 2);
        expect_line(f, 1, "late", 7);
        assert_int_equal(tail_consumed_offset(f->t), 7);
        assert_int_equal(tail_get_state(f->t), TAIL_IDLE);
}

/* A tail resumed at the end of a file (no line read, no checkpoint filled yet) still
 * knows the file's first bytes: a truncate-and-rewrite past its offset is found. */
static void test_rewrite_longer_unfingerprinted(void **state)
{
        struct fx *f = *state;
        struct tail_opts o = opts(4096, 32);
        char old[64], neu[130];
        assert_int_equal(gen_lines(old, "old", 4, 16), sizeof(old));
        assert_int_equal(gen_lines(neu, "new", 10, 13), sizeof(neu));
        put_bytes(f, old, sizeof(old));
        start(f, &o, 64);
        assert_int_equal(f->n, 0);
        rewrite(f, 0, neu, sizeof(neu));
        tail_wake(f->t);
        drain(f);
        assert_int_equal(f->n, 11);
        expect_trunc(f, 0, 64);
        expect_gen(f, 1, neu, 10, 13, 0);
}

/* The fingerprint is the one of the bytes read, not of what the file holds when a
 * checkpoint is filled: a rewrite before the fill is still found at the next wake. */
static void test_rewrite_longer_fill_first(void **state)
{
        struct fx *f = *state;
        struct tail_opts o = opts(4096, 32);
        char old[64], neu[130];
        assert_int_equal(gen_lines(old, "old", 4, 16), sizeof(old));
        assert_int_equal(gen_lines(neu, "new", 10, 13), sizeof(neu));
        put_bytes(f, old, sizeof(old));
        start(f, &o, 0);
        assert_int_equal(f->n, 4);
        rewrite(f, 0, neu, sizeof(neu));
        struct tail_ckpt ck = fill(f->t, 64);
        assert_int_equal(ck.tail_hash, XXH3_64bits(old, 64));
        assert_int_equal(ck.fp, XXH3_64bits(old, 32));
        tail_wake(f->t);
        drain(f);
        assert_int_equal(f->n, 15);
        expect_trunc(f, 4, 64);
        expect_gen(f, 5, neu, 10, 13, 0);
}

/* tail_check() during a read: growth after the read's data is read afterwards. */
static void test_check_while_reading(void **state)
{
        struct fx *f = *state;
        struct tail_opts o = opts(4096, 64);
        put(f, "a\n");
        f->t = open_tail(f, &o);
        assert_int_equal(tail_start(f->t, 0), 0);
        put(f, "b\n");
        (void)tail_check(f->t);
        drain(f);
        assert_int_equal(f->n, 2);
        expect_line(f, 1, "b", 4);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, fx_setup, fx_teardown)
        const struct CMUnitTest tests[] = {
                T(test_fill_in_buffer),
                T(test_fill_from_file),
                T(test_fill_short_file),
                T(test_matches),
                T(test_truncate_to_zero),
                T(test_truncate_to_zero_fingerprinted),
                T(test_truncate_shorter),
                T(test_rewrite_longer_wake),
                T(test_rewrite_longer_check),
                T(test_consumed_and_pause),
                T(test_consumed_start_offset),
                T(test_identity),
                T(test_check_grew),
                T(test_check_moved),
                T(test_check_deleted),
                T(test_rewrite_longer_unfingerprinted),
                T(test_rewrite_longer_fill_first),
                T(test_check_while_reading),
        };
#undef T
        backend = IO_BACKEND_POLL;
        int failed = cmocka_run_group_tests_name("tail, poll backend", tests, NULL, NULL);

        struct io_loop *l;
        int r = io_loop_new(IO_BACKEND_URING, &l);
        if (r == -ENOSYS || r == -EPERM) {
                fprintf(stderr, "io_uring unavailable (%s): io_uring backend skipped\n",
                        strerror(-r));
                return failed ? failed : 77;
        }
        if (r < 0) {
                fprintf(stderr, "io_loop_new(IO_BACKEND_URING): %s\n", strerror(-r));
                return failed + 1;
        }
        io_loop_free(l);
        backend = IO_BACKEND_URING;
        failed += cmocka_run_group_tests_name("tail, io_uring backend", tests, NULL, NULL);
        return failed;
}
