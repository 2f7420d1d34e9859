/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests of offsets/off.c: the in-memory store, the file format (golden bytes,
 * every truncation, every bit flip, crafted bad files with valid checksums) and the
 * commit protocol under injected failures.
 *
 * Faults come from a test backend plugged in with off_sys_set() (off_sys.h): every
 * call is counted per operation, and the nth call of one operation fails with a
 * chosen errno (SQLite's aSyscall[] approach). Each test runs in its own mkdtemp()
 * directory under /tmp, removed by the teardown.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <xxhash.h>

#include "offsets/off.h"
#include "offsets/off_sys.h"

/* Layout of version 1, as documented at the top of off.c. */
#define HEAD_LEN  16
#define SUM_LEN   8
#define ENT_FIXED 48
#define FILE_MAX  (256u << 20)

struct tdir {
        char dir[64];
        char path[128];
        char tmp[160];
};

/* ---- fault-injecting backend ---- */

enum op {
        OP_OPEN,
        OP_READ,
        OP_WRITE,
        OP_FCHMOD,
        OP_FSYNC,
        OP_CLOSE,
        OP_RENAME,
        OP_UNLINK,
        OP_ALLOC,
        OP_N
};

static unsigned calls[OP_N];
static struct {
        enum op op;
        unsigned nth; /* 0: no fault */
        int err;
} fault;
static size_t write_chunk; /* 0: whole writes; else at most this much, EINTR in between */
static off_t grow_to;      /* if not 0, the first read extends grow_path to this size */
static const char *grow_path;

static bool fault_hit(enum op op)
{
        calls[op]++;
        return fault.nth && fault.op == op && calls[op] == fault.nth;
}

static int t_open(const char *path, int flags, mode_t mode)
{
        if (fault_hit(OP_OPEN)) {
                errno = fault.err;
                return -1;
        }
        return open(path, flags, mode);
}

static ssize_t t_read(int fd, void *buf, size_t len)
{
        if (fault_hit(OP_READ)) {
                errno = fault.err;
                return -1;
        }
        if (grow_to && calls[OP_READ] == 1)
                assert_int_equal(truncate(grow_path, grow_to), 0);
        return read(fd, buf, len);
}

static ssize_t t_write(int fd, const void *buf, size_t len)
{
        if (fault_hit(OP_WRITE)) {
                /* errno 0: a write that makes no progress. */
                if (!fault.err)
                        return 0;
                errno = fault.err;
                return -1;
        }
        if (write_chunk) {
                /* Every other call is interrupted before writing anything. */
                if (calls[OP_WRITE] % 2 == 0) {
                        errno = EINTR;
                        return -1;
                }
                if (len > write_chunk)
                        len = write_chunk;
        }
        return write(fd, buf, len);
}

static int t_fchmod(int fd, mode_t mode)
{
        if (fault_hit(OP_FCHMOD)) {
                errno = fault.err;
                return -1;
        }
        return fchmod(fd, mode);
}

static int t_fsync(int fd)
{
        if (fault_hit(OP_FSYNC)) {
                errno = fault.err;
                return -1;
        }
        return fsync(fd);
}

static int t_close(int fd)
{
        /* Like Linux: the descriptor is gone even when close() reports an error. */
        int r = close(fd);

        if (fault_hit(OP_CLOSE)) {
                errno = fault.err;
                return -1;
        }
        return r;
}

static int t_rename(const char *from, const char *to)
{
        if (fault_hit(OP_RENAME)) {
                errno = fault.err;
                return -1;
        }
        return rename(from, to);
}

static int t_unlink(const char *path)
{
        if (fault_hit(OP_UNLINK)) {
                errno = fault.err;
                return -1;
        }
        return unlink(path);
}

static void *t_realloc(void *ptr, size_t size)
{
        if (fault_hit(OP_ALLOC))
                return NULL;
        return realloc(ptr, size);
}

static const struct off_sys test_sys = {
        .open = t_open,
        .read = t_read,
        .write = t_write,
        .fchmod = t_fchmod,
        .fsync = t_fsync,
        .close = t_close,
        .rename = t_rename,
        .unlink = t_unlink,
        .realloc = t_realloc,
};

/* Resets the counters and arms a fault on the nth call of op (nth 0: none). */
static void fault_set(enum op op, unsigned nth, int err)
{
        memset(calls, 0, sizeof(calls));
        fault.op = op;
        fault.nth = nth;
        fault.err = err;
}

static void fault_clear(void)
{
        fault_set(OP_OPEN, 0, 0);
        write_chunk = 0;
        grow_to = 0;
}

/* ---- helpers ---- */

static void several_init(void);

static int setup(void **state)
{
        struct tdir *t = calloc(1, sizeof(*t));

        if (!t)
                return -1;
        strcpy(t->dir, "/tmp/rt-off-XXXXXX");
        if (!mkdtemp(t->dir)) {
                free(t);
                return -1;
        }
        snprintf(t->path, sizeof(t->path), "%s/offsets.bin", t->dir);
        snprintf(t->tmp, sizeof(t->tmp), "%s.tmp", t->path);
        fault_clear();
        off_sys_set(&test_sys);
        several_init();
        *state = t;
        return 0;
}

static int teardown(void **state)
{
        struct tdir *t = *state;
        struct dirent *de;
        char p[512];
        DIR *d;

        off_sys_set(NULL);
        fault_clear();
        d = opendir(t->dir);
        if (d) {
                while ((de = readdir(d))) {
                        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
                                continue;
                        snprintf(p, sizeof(p), "%s/%s", t->dir, de->d_name);
                        if (unlink(p) < 0)
                                (void)rmdir(p);
                }
                closedir(d);
        }
        (void)rmdir(t->dir);
        free(t);
        return 0;
}

static uint8_t *file_read(const char *path, size_t *ret_len)
{
        struct stat st;
        uint8_t *buf;
        FILE *f;

        assert_int_equal(stat(path, &st), 0);
        buf = malloc((size_t)st.st_size + 1);
        assert_non_null(buf);
        f = fopen(path, "rb");
        assert_non_null(f);
        assert_int_equal(fread(buf, 1, (size_t)st.st_size, f), (size_t)st.st_size);
        fclose(f);
        *ret_len = (size_t)st.st_size;
        return buf;
}

static void file_write(const char *path, const void *buf, size_t len)
{
        int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0600);

        assert_true(fd >= 0);
        assert_int_equal(write(fd, buf, len), (ssize_t)len);
        assert_int_equal(close(fd), 0);
}

static bool file_exists(const char *path)
{
        struct stat st;

        return stat(path, &st) == 0;
}

static void put_le(uint8_t *p, uint64_t v, int n)
{
        for (int i = 0; i < n; i++)
                p[i] = (uint8_t)(v >> (8 * i));
}

/* Rewrites the trailing checksum of a crafted file so only the crafted damage shows. */
static void fix_sum(uint8_t *buf, size_t len)
{
        put_le(buf + len - SUM_LEN, XXH3_64bits(buf, len - SUM_LEN), 8);
}

static struct off_rec mkrec(uint64_t i, const char *path)
{
        struct off_rec r = {
                .dev = 0x100 + (i % 3),
                .ino = 1000003 * i + 7,
                .fp = 0x0123456789abcdefULL ^ i,
                .fp_len = (uint32_t)(1024 + i),
                .tail_len = (uint32_t)(i % 4097),
                .tail_hash = 0xfedcba9876543210ULL - i,
                .offset = (1ULL << 40) + i,
                .path = path,
        };
        return r;
}

static void assert_rec_equal(const struct off_rec *a, const struct off_rec *b)
{
        assert_int_equal(a->dev, b->dev);
        assert_int_equal(a->ino, b->ino);
        assert_int_equal(a->fp, b->fp);
        assert_int_equal(a->fp_len, b->fp_len);
        assert_int_equal(a->tail_len, b->tail_len);
        assert_int_equal(a->tail_hash, b->tail_hash);
        assert_int_equal(a->offset, b->offset);
        assert_string_equal(a->path ? a->path : "", b->path ? b->path : "");
}

static char long_path[OFF_PATH_MAX + 2];
static char long_source[OFF_SOURCE_MAX + 2];

static void init_long_strings(void)
{
        memset(long_path, 'p', OFF_PATH_MAX);
        long_path[0] = '/';
        long_path[OFF_PATH_MAX] = '\0';
        memset(long_source, 's', OFF_SOURCE_MAX);
        long_source[OFF_SOURCE_MAX] = '\0';
}

/* Entries of the "several" store: sources, records; two share dev/ino. */
#define N_SEVERAL 6
static const char *several_src[N_SEVERAL];
static struct off_rec several_rec[N_SEVERAL];

static void several_init(void)
{
        init_long_strings();
        several_src[0] = "app-logs";
        several_rec[0] = mkrec(1, "/var/log/app/a.log");
        several_src[1] = "audit";
        several_rec[1] = mkrec(1, "/var/log/app/a.log"); /* same dev/ino, other source */
        several_src[2] = "app-logs";
        several_rec[2] = mkrec(2, long_path);
        several_src[3] = long_source;
        several_rec[3] = mkrec(3, "/x");
        several_src[4] = "";
        several_rec[4] = mkrec(4, "");
        several_src[5] = "audit";
        several_rec[5] = mkrec(5, NULL); /* stored as "" */
        several_rec[5].tail_len = 4096;
        several_rec[5].offset = UINT64_MAX;
}

static struct off_store *several_store(const char *path)
{
        struct off_store *s;

        several_init();
        assert_int_equal(off_store_new(path, &s), 0);
        for (int i = 0; i < N_SEVERAL; i++)
                assert_int_equal(off_set(s, several_src[i], &several_rec[i]), 0);
        assert_int_equal(off_count(s), N_SEVERAL);
        return s;
}

static void assert_several(const struct off_store *s)
{
        struct off_rec got;

        assert_int_equal(off_count(s), N_SEVERAL);
        for (int i = 0; i < N_SEVERAL; i++) {
                assert_int_equal(
                        off_get(s, several_src[i], several_rec[i].dev, several_rec[i].ino, &got),
                        0);
                assert_rec_equal(&got, &several_rec[i]);
        }
}

/* A committed "several" store; returns its bytes. */
static uint8_t *several_file(const struct tdir *t, size_t *ret_len)
{
        struct off_store *s = several_store(t->path);

        assert_int_equal(off_commit(s), 0);
        off_store_free(s);
        return file_read(t->path, ret_len);
}

static int open_err(const struct tdir *t, struct off_error *err)
{
        struct off_store *s = (struct off_store *)0x1;
        int r;

        memset(err, 0, sizeof(*err));
        r = off_store_open(t->path, &s, err);
        if (r == 0)
                off_store_free(s);
        else
                assert_ptr_equal(s, (struct off_store *)0x1);
        return r;
}

static int open_bytes(const struct tdir *t, const void *buf, size_t len, struct off_error *err)
{
        file_write(t->path, buf, len);
        return open_err(t, err);
}

/* ---- in-memory behaviour ---- */

static void test_missing_file_is_empty(void **state)
{
        struct tdir *t = *state;
        struct off_store *s;

        assert_int_equal(off_store_open(t->path, &s, NULL), 0);
        assert_int_equal(off_count(s), 0);
        assert_false(off_is_dirty(s));
        assert_string_equal(off_store_path(s), t->path);
        assert_int_equal(off_at(s, 0, NULL, NULL), -ENOENT);
        assert_int_equal(off_commit(s), 0);
        assert_false(file_exists(t->path));
        off_store_free(s);
}

static void test_get_enoent(void **state)
{
        struct tdir *t = *state;
        struct off_store *s = several_store(t->path);
        struct off_rec got = {.offset = 42};

        assert_int_equal(off_get(s, "nope", several_rec[0].dev, several_rec[0].ino, &got), -ENOENT);
        assert_int_equal(off_get(s, "app-logs", several_rec[0].dev + 1, several_rec[0].ino, &got),
                         -ENOENT);
        assert_int_equal(off_get(s, "app-logs", several_rec[0].dev, several_rec[0].ino + 1, &got),
                         -ENOENT);
        /* A prefix or extension of a stored source is another key. */
        assert_int_equal(off_get(s, "app-log", several_rec[0].dev, several_rec[0].ino, &got),
                         -ENOENT);
        assert_int_equal(off_get(s, "app-logs2", several_rec[0].dev, several_rec[0].ino, &got),
                         -ENOENT);
        assert_int_equal(off_get(s, long_path, 1, 2, &got), -ENOENT);
        assert_int_equal(off_get(s, NULL, 1, 2, &got), -EINVAL);
        /* ret_ written only on success. */
        assert_int_equal(got.offset, 42);
        off_store_free(s);
}

static void test_del(void **state)
{
        struct tdir *t = *state;
        struct off_store *s = several_store(t->path);
        struct off_rec got;

        assert_int_equal(off_commit(s), 0);
        assert_int_equal(off_del(s, "audit", several_rec[1].dev, several_rec[1].ino), 0);
        assert_true(off_is_dirty(s));
        assert_int_equal(off_count(s), N_SEVERAL - 1);
        assert_int_equal(off_get(s, "audit", several_rec[1].dev, several_rec[1].ino, &got),
                         -ENOENT);
        /* The other source with the same dev/ino is still there. */
        assert_int_equal(off_get(s, "app-logs", several_rec[0].dev, several_rec[0].ino, &got), 0);
        assert_rec_equal(&got, &several_rec[0]);
        assert_int_equal(off_del(s, "audit", several_rec[1].dev, several_rec[1].ino), -ENOENT);
        assert_int_equal(off_del(s, long_path, 1, 1), -ENOENT);
        assert_int_equal(off_del(s, NULL, 1, 1), -EINVAL);

        for (int i = 0; i < N_SEVERAL; i++) {
                if (i == 1)
                        continue;
                assert_int_equal(
                        off_get(s, several_src[i], several_rec[i].dev, several_rec[i].ino, &got),
                        0);
                assert_rec_equal(&got, &several_rec[i]);
                assert_int_equal(off_del(s, several_src[i], several_rec[i].dev, several_rec[i].ino),
                                 0);
        }
        assert_int_equal(off_count(s), 0);

        /* Deleting down to empty and committing writes an empty store, not nothing. */
        assert_int_equal(off_commit(s), 0);
        off_store_free(s);
        assert_int_equal(off_store_open(t->path, &s, NULL), 0);
        assert_int_equal(off_count(s), 0);
        off_store_free(s);
}

static void test_set_replace(void **state)
{
        struct tdir *t = *state;
        struct off_store *s = several_store(t->path);
        struct off_rec r = several_rec[2], got;

        r.offset = 7;
        r.fp = 8;
        r.fp_len = 9;
        r.tail_len = 10;
        r.tail_hash = 11;
        r.path = "/var/log/app/rotated.log.1";
        assert_int_equal(off_set(s, "app-logs", &r), 0);
        assert_int_equal(off_count(s), N_SEVERAL);
        assert_int_equal(off_get(s, "app-logs", r.dev, r.ino, &got), 0);
        assert_rec_equal(&got, &r);

        /* Setting with the store's own borrowed path, changing only the offset. */
        got.offset = 12;
        assert_int_equal(off_set(s, "app-logs", &got), 0);
        assert_int_equal(off_get(s, "app-logs", r.dev, r.ino, &got), 0);
        assert_int_equal(got.offset, 12);
        assert_string_equal(got.path, "/var/log/app/rotated.log.1");

        /* A path borrowed from another entry. */
        assert_int_equal(off_get(s, "app-logs", several_rec[0].dev, several_rec[0].ino, &got), 0);
        r.path = got.path;
        assert_int_equal(off_set(s, "app-logs", &r), 0);
        assert_int_equal(off_get(s, "app-logs", r.dev, r.ino, &got), 0);
        assert_string_equal(got.path, "/var/log/app/a.log");

        /* NULL path stores "". */
        r.path = NULL;
        assert_int_equal(off_set(s, "app-logs", &r), 0);
        assert_int_equal(off_get(s, "app-logs", r.dev, r.ino, &got), 0);
        assert_string_equal(got.path, "");
        assert_int_equal(off_count(s), N_SEVERAL);
        off_store_free(s);
}

static void test_set_einval(void **state)
{
        struct tdir *t = *state;
        struct off_store *s;
        struct off_rec r = mkrec(1, "/a");
        char too_long_path[OFF_PATH_MAX + 2];
        char too_long_source[OFF_SOURCE_MAX + 2];

        memset(too_long_path, 'p', OFF_PATH_MAX + 1);
        too_long_path[OFF_PATH_MAX + 1] = '\0';
        memset(too_long_source, 's', OFF_SOURCE_MAX + 1);
        too_long_source[OFF_SOURCE_MAX + 1] = '\0';

        assert_int_equal(off_store_open(t->path, &s, NULL), 0);
        assert_int_equal(off_set(s, too_long_source, &r), -EINVAL);
        r.path = too_long_path;
        assert_int_equal(off_set(s, "src", &r), -EINVAL);
        r.path = "/a";
        r.tail_len = 4097;
        assert_int_equal(off_set(s, "src", &r), -EINVAL);
        assert_int_equal(off_set(s, NULL, &r), -EINVAL);
        assert_int_equal(off_set(s, "src", NULL), -EINVAL);
        assert_int_equal(off_count(s), 0);
        assert_false(off_is_dirty(s));

        /* Exactly at the limits is fine. */
        r.tail_len = 4096;
        too_long_path[OFF_PATH_MAX] = '\0';
        too_long_source[OFF_SOURCE_MAX] = '\0';
        r.path = too_long_path;
        assert_int_equal(off_set(s, too_long_source, &r), 0);

        /* A failed replace leaves the entry as it was. */
        r.path = "/b";
        r.tail_len = 5000;
        assert_int_equal(off_set(s, too_long_source, &r), -EINVAL);
        assert_int_equal(off_get(s, too_long_source, r.dev, r.ino, &r), 0);
        assert_int_equal(r.tail_len, 4096);
        assert_string_equal(r.path, too_long_path);
        off_store_free(s);
}

static void test_dirty(void **state)
{
        struct tdir *t = *state;
        struct off_store *s;
        struct off_rec r = mkrec(1, "/a");

        assert_int_equal(off_store_open(t->path, &s, NULL), 0);
        assert_false(off_is_dirty(s));
        assert_int_equal(off_set(s, "src", &r), 0);
        assert_true(off_is_dirty(s));
        assert_int_equal(off_commit(s), 0);
        assert_false(off_is_dirty(s));
        assert_int_equal(off_del(s, "src", 1, 1), -ENOENT);
        assert_false(off_is_dirty(s));
        assert_int_equal(off_del(s, "src", r.dev, r.ino), 0);
        assert_true(off_is_dirty(s));
        assert_int_equal(off_commit(s), 0);
        assert_false(off_is_dirty(s));
        off_store_free(s);

        /* A freshly loaded store is clean. */
        s = several_store(t->path);
        assert_int_equal(off_commit(s), 0);
        off_store_free(s);
        assert_int_equal(off_store_open(t->path, &s, NULL), 0);
        assert_false(off_is_dirty(s));
        off_store_free(s);
}

static void test_commit_clean_writes_nothing(void **state)
{
        struct tdir *t = *state;
        struct off_store *s = several_store(t->path);
        struct stat st1, st2;

        assert_int_equal(off_commit(s), 0);
        assert_int_equal(stat(t->path, &st1), 0);
        fault_set(OP_OPEN, 0, 0);
        assert_int_equal(off_commit(s), 0);
        for (int op = 0; op < OP_N; op++)
                assert_int_equal(calls[op], 0);
        assert_int_equal(stat(t->path, &st2), 0);
        assert_int_equal(st1.st_ino, st2.st_ino);
        assert_int_equal(st1.st_mtim.tv_nsec, st2.st_mtim.tv_nsec);
        off_store_free(s);

        /* Nor does a just-opened one. */
        assert_int_equal(off_store_open(t->path, &s, NULL), 0);
        fault_set(OP_OPEN, 0, 0);
        assert_int_equal(off_commit(s), 0);
        assert_int_equal(calls[OP_OPEN] + calls[OP_WRITE] + calls[OP_RENAME], 0);
        off_store_free(s);
}

/* Thousands of entries: lookups, deletes that move entries around, iteration. */
static void test_many(void **state)
{
        struct tdir *t = *state;
        enum { N = 20000 };
        static char paths[N][32];
        static bool seen[N];
        struct off_store *s;
        struct off_rec r, got;
        const char *src;
        char source[16];

        assert_int_equal(off_store_open(t->path, &s, NULL), 0);
        for (uint64_t i = 0; i < N; i++) {
                snprintf(paths[i], sizeof(paths[i]), "/var/log/f%llu.log", (unsigned long long)i);
                snprintf(source, sizeof(source), "src%llu", (unsigned long long)(i % 5));
                r = mkrec(i, paths[i]);
                assert_int_equal(off_set(s, source, &r), 0);
        }
        assert_int_equal(off_count(s), N);
        for (uint64_t i = 0; i < N; i += 3) {
                snprintf(source, sizeof(source), "src%llu", (unsigned long long)(i % 5));
                r = mkrec(i, NULL);
                assert_int_equal(off_del(s, source, r.dev, r.ino), 0);
        }
        assert_int_equal(off_count(s), N - (N + 2) / 3);
        for (uint64_t i = 0; i < N; i++) {
                snprintf(source, sizeof(source), "src%llu", (unsigned long long)(i % 5));
                r = mkrec(i, paths[i]);
                if (i % 3 == 0) {
                        assert_int_equal(off_get(s, source, r.dev, r.ino, &got), -ENOENT);
                } else {
                        assert_int_equal(off_get(s, source, r.dev, r.ino, &got), 0);
                        assert_rec_equal(&got, &r);
                }
        }

        /* off_at visits each live entry once. */
        memset(seen, 0, sizeof(seen));
        for (size_t i = 0; i < off_count(s); i++) {
                unsigned long long k;

                assert_int_equal(off_at(s, i, &src, &got), 0);
                assert_int_equal(sscanf(got.path, "/var/log/f%llu.log", &k), 1);
                assert_true(k < N && k % 3 != 0 && !seen[k]);
                seen[k] = true;
                snprintf(source, sizeof(source), "src%llu", k % 5);
                assert_string_equal(src, source);
        }
        assert_int_equal(off_at(s, off_count(s), &src, &got), -ENOENT);

        assert_int_equal(off_commit(s), 0);
        off_store_free(s);
        assert_int_equal(off_store_open(t->path, &s, NULL), 0);
        assert_int_equal(off_count(s), N - (N + 2) / 3);
        for (uint64_t i = 1; i < N; i += 3) {
                snprintf(source, sizeof(source), "src%llu", (unsigned long long)(i % 5));
                r = mkrec(i, paths[i]);
                assert_int_equal(off_get(s, source, r.dev, r.ino, &got), 0);
                assert_rec_equal(&got, &r);
        }
        off_store_free(s);
}

/* ---- file format ---- */

static void test_round_trip(void **state)
{
        struct tdir *t = *state;
        struct off_store *s = several_store(t->path);
        uint8_t *buf, *again;
        size_t len, again_len;

        assert_true(off_is_dirty(s));
        assert_int_equal(off_commit(s), 0);
        assert_false(off_is_dirty(s));
        assert_false(file_exists(t->tmp));
        off_store_free(s);

        assert_int_equal(off_store_open(t->path, &s, NULL), 0);
        assert_false(off_is_dirty(s));
        assert_several(s);

        /* The encoding is canonical: re-serializing gives the same bytes. */
        buf = file_read(t->path, &len);
        assert_int_equal(off_store_serialize(s, &again, &again_len), 0);
        assert_int_equal(again_len, len);
        assert_memory_equal(again, buf, len);
        free(again);
        free(buf);
        off_store_free(s);
}

/* Pins format version 1: if this fails, read the checklist at the top of off.c. */
static void test_format_golden(void **state)
{
        struct tdir *t = *state;
        static const uint8_t want[] = {
                'R',  'T',  'O',  'F',  'F',  'S',  'E',  'T',  /* magic */
                1,    0,    0,    0,                            /* version */
                1,    0,    0,    0,                            /* count */
                2,    0,    's',  'q',                          /* source */
                0x01, 0x02, 0,    0,    0,    0,    0,    0,    /* dev */
                0x03, 0,    0,    0,    0,    0,    0,    0x80, /* ino */
                0x04, 0,    0,    0,    0,    0,    0,    0,    /* fp */
                0x05, 0x01, 0,    0,                            /* fp_len */
                0x00, 0x10, 0,    0,                            /* tail_len */
                0x06, 0,    0,    0,    0,    0,    0,    0,    /* tail_hash */
                0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01, 0x00, /* offset */
                3,    0,    '/',  'p',  'q',                    /* path */
                0,    0,    0,    0,    0,    0,    0,    0,    /* checksum, below */
        };
        uint8_t golden[sizeof(want)];
        struct off_rec r = {
                .dev = 0x0201,
                .ino = 0x8000000000000003ULL,
                .fp = 4,
                .fp_len = 0x105,
                .tail_len = 4096,
                .tail_hash = 6,
                .offset = 0x0001020304050607ULL,
                .path = "/pq",
        };
        struct off_store *s;
        uint8_t *buf;
        size_t len;

        memcpy(golden, want, sizeof(want));
        fix_sum(golden, sizeof(golden));
        assert_int_equal(off_store_open(t->path, &s, NULL), 0);
        assert_int_equal(off_set(s, "sq", &r), 0);
        assert_int_equal(off_commit(s), 0);
        off_store_free(s);
        buf = file_read(t->path, &len);
        assert_int_equal(len, sizeof(golden));
        assert_memory_equal(buf, golden, len);
        free(buf);

        /* The empty store. */
        assert_int_equal(off_store_new(t->path, &s), 0);
        assert_int_equal(off_store_serialize(s, &buf, &len), 0);
        assert_int_equal(len, HEAD_LEN + SUM_LEN);
        assert_memory_equal(buf, want, HEAD_LEN - 4);
        assert_int_equal(buf[12] | buf[13] | buf[14] | buf[15], 0);
        assert_int_equal(XXH3_64bits(buf, HEAD_LEN),
                         buf[16] | (uint64_t)buf[17] << 8 | (uint64_t)buf[18] << 16 |
                                 (uint64_t)buf[19] << 24 | (uint64_t)buf[20] << 32 |
                                 (uint64_t)buf[21] << 40 | (uint64_t)buf[22] << 48 |
                                 (uint64_t)buf[23] << 56);
        free(buf);
        off_store_free(s);
}

static void test_empty_file_is_torn(void **state)
{
        struct tdir *t = *state;
        struct off_error err;

        assert_int_equal(open_bytes(t, NULL, 0, &err), -EBADMSG);
        assert_int_equal(err.pos, 0);
        assert_non_null(strstr(err.msg, "empty file"));
}

static void test_torn_write(void **state)
{
        struct tdir *t = *state;
        struct off_error err;
        size_t len, path_pos;
        uint8_t *buf;

        buf = several_file(t, &len);
        assert_true(len > OFF_PATH_MAX + OFF_SOURCE_MAX);
        for (size_t cut = 0; cut < len; cut++) {
                assert_int_equal(open_bytes(t, buf, cut, &err), -EBADMSG);
                assert_true(err.pos <= cut);
                assert_true(err.msg[0] != '\0');
        }
        /* Cut in the middle of the long path of entry 2, which starts at path_pos. */
        path_pos = HEAD_LEN;
        for (int i = 0; i < 2; i++)
                path_pos +=
                        2 + strlen(several_src[i]) + ENT_FIXED + 2 + strlen(several_rec[i].path);
        path_pos += 2 + strlen(several_src[2]) + ENT_FIXED + 2;
        assert_int_equal(open_bytes(t, buf, path_pos + 100 + SUM_LEN, &err), -EBADMSG);
        assert_string_equal(err.msg, "truncated in entry 2 (path)");
        assert_int_equal(err.pos, path_pos);
        /* Cut early, the entry count says the file is too short. */
        assert_int_equal(open_bytes(t, buf, 100, &err), -EBADMSG);
        assert_int_equal(err.pos, 12);
        assert_int_equal(open_bytes(t, buf, len, &err), 0);
        free(buf);
}

static void test_bit_flips(void **state)
{
        struct tdir *t = *state;
        struct off_store *s;
        struct off_error err;
        struct off_rec r = mkrec(9, "/var/log/syslog");
        uint8_t *buf;
        size_t len;

        /* Small enough to flip every bit of it through the file system. */
        assert_int_equal(off_store_open(t->path, &s, NULL), 0);
        assert_int_equal(off_set(s, "sys", &r), 0);
        r = mkrec(10, "/var/log/kern.log");
        assert_int_equal(off_set(s, "kern", &r), 0);
        assert_int_equal(off_commit(s), 0);
        off_store_free(s);
        buf = file_read(t->path, &len);
        for (size_t i = 0; i < len; i++) {
                for (int bit = 0; bit < 8; bit++) {
                        buf[i] ^= (uint8_t)(1u << bit);
                        assert_int_equal(open_bytes(t, buf, len, &err), -EBADMSG);
                        assert_true(err.pos <= len);
                        buf[i] ^= (uint8_t)(1u << bit);
                }
        }
        /* A damaged body byte that keeps the structure is caught by the checksum. */
        buf[HEAD_LEN + 2 + 3 + 40] ^= 0x40; /* offset of entry 0 */
        assert_int_equal(open_bytes(t, buf, len, &err), -EBADMSG);
        assert_int_equal(err.pos, len - SUM_LEN);
        assert_true(strncmp(err.msg, "checksum mismatch", 17) == 0);
        free(buf);
}

static void test_bad_magic(void **state)
{
        struct tdir *t = *state;
        struct off_error err;
        uint8_t *buf;
        size_t len;

        assert_int_equal(open_bytes(t, "offset=12\n", 10, &err), -EBADMSG);
        assert_string_equal(err.msg, "bad magic: not a ringtail checkpoint file");
        assert_int_equal(err.pos, 0);
        /* A prefix of the magic is a truncated store, not a foreign file. */
        assert_int_equal(open_bytes(t, "RTOFF", 5, &err), -EBADMSG);
        assert_int_equal(err.pos, 5);
        assert_non_null(strstr(err.msg, "truncated"));

        buf = several_file(t, &len);
        buf[3] = 'x';
        fix_sum(buf, len);
        assert_int_equal(open_bytes(t, buf, len, &err), -EBADMSG);
        assert_int_equal(err.pos, 3);
        assert_string_equal(err.msg, "bad magic: not a ringtail checkpoint file");
        free(buf);
}

static void test_versions(void **state)
{
        struct tdir *t = *state;
        struct off_error err;
        uint8_t *buf;
        size_t len;

        buf = several_file(t, &len);

        /* A newer, intact file: refused as such, whatever its body looks like. */
        put_le(buf + 8, 2, 4);
        buf[HEAD_LEN] = 0xff;
        fix_sum(buf, len);
        assert_int_equal(open_bytes(t, buf, len, &err), -ENOTSUP);
        assert_non_null(strstr(err.msg, "written by a newer ringtail"));
        assert_int_equal(err.pos, 8);
        put_le(buf + 8, 0xffffffff, 4);
        fix_sum(buf, len);
        assert_int_equal(open_bytes(t, buf, len, &err), -ENOTSUP);

        /* A newer version with a bad checksum is damage. */
        buf[len - 1] ^= 1;
        assert_int_equal(open_bytes(t, buf, len, &err), -EBADMSG);
        assert_true(strncmp(err.msg, "checksum mismatch", 17) == 0);

        put_le(buf + 8, 0, 4);
        fix_sum(buf, len);
        assert_int_equal(open_bytes(t, buf, len, &err), -EBADMSG);
        assert_string_equal(err.msg, "bad format version 0");
        free(buf);
}

/* Crafted files with valid checksums: only the structural checks can catch them. */
static void test_crafted(void **state)
{
        struct tdir *t = *state;
        struct off_store *s;
        struct off_error err;
        struct off_rec r = mkrec(1, "/a/b");
        uint8_t *orig, *buf, *big;
        size_t len;
        /* Entry 0 is "ab" dev ino..., "/a/b"; entry 1 is "ab" with another ino. */
        const size_t e0 = HEAD_LEN, e1 = HEAD_LEN + 2 + 2 + ENT_FIXED + 2 + 4;

        assert_int_equal(off_store_open(t->path, &s, NULL), 0);
        assert_int_equal(off_set(s, "ab", &r), 0);
        r = mkrec(2, "/a/c");
        r.dev = mkrec(1, NULL).dev;
        assert_int_equal(off_set(s, "ab", &r), 0);
        assert_int_equal(off_commit(s), 0);
        off_store_free(s);
        orig = file_read(t->path, &len);
        assert_int_equal(len, e1 + (e1 - e0) + SUM_LEN);
        buf = malloc(len);
        assert_non_null(buf);
        memcpy(buf, orig, len);

        /* Duplicate key. */
        memcpy(buf + e1 + 4 + 8, buf + e0 + 4 + 8, 8);
        fix_sum(buf, len);
        assert_int_equal(open_bytes(t, buf, len, &err), -EBADMSG);
        assert_int_equal(err.pos, e1);
        assert_non_null(strstr(err.msg, "entry 1 repeats entry 0"));

        /* NUL in the source name, NUL in the path. */
        memcpy(buf, orig, len);
        buf[e0 + 3] = '\0';
        fix_sum(buf, len);
        assert_int_equal(open_bytes(t, buf, len, &err), -EBADMSG);
        assert_int_equal(err.pos, e0 + 3);
        assert_string_equal(err.msg, "entry 0: NUL byte in source name");
        memcpy(buf, orig, len);
        buf[e1 + 4 + ENT_FIXED + 2 + 1] = '\0';
        fix_sum(buf, len);
        assert_int_equal(open_bytes(t, buf, len, &err), -EBADMSG);
        assert_int_equal(err.pos, e1 + 4 + ENT_FIXED + 2 + 1);
        assert_string_equal(err.msg, "entry 1: NUL byte in path");

        /* Over-long lengths, tail_len over 4096. */
        memcpy(buf, orig, len);
        put_le(buf + e0, OFF_SOURCE_MAX + 1, 2);
        fix_sum(buf, len);
        assert_int_equal(open_bytes(t, buf, len, &err), -EBADMSG);
        assert_int_equal(err.pos, e0);
        memcpy(buf, orig, len);
        put_le(buf + e0 + 4 + ENT_FIXED, OFF_PATH_MAX + 1, 2);
        fix_sum(buf, len);
        assert_int_equal(open_bytes(t, buf, len, &err), -EBADMSG);
        assert_int_equal(err.pos, e0 + 4 + ENT_FIXED);
        memcpy(buf, orig, len);
        put_le(buf + e0 + 4 + 28, 4097, 4);
        fix_sum(buf, len);
        assert_int_equal(open_bytes(t, buf, len, &err), -EBADMSG);
        assert_int_equal(err.pos, e0 + 4 + 28);

        /* Counts: absurd (rejected before allocating), too small, too large. */
        memcpy(buf, orig, len);
        put_le(buf + 12, 0xffffffff, 4);
        fix_sum(buf, len);
        assert_int_equal(open_bytes(t, buf, len, &err), -EBADMSG);
        assert_int_equal(err.pos, 12);
        put_le(buf + 12, 1, 4);
        fix_sum(buf, len);
        assert_int_equal(open_bytes(t, buf, len, &err), -EBADMSG);
        assert_int_equal(err.pos, e1);
        assert_non_null(strstr(err.msg, "trailing garbage"));
        put_le(buf + 12, 3, 4);
        fix_sum(buf, len);
        assert_int_equal(open_bytes(t, buf, len, &err), -EBADMSG);
        assert_int_equal(err.pos, 12);
        assert_string_equal(err.msg,
                            "entry count 3 cannot fit in 140 bytes (truncated or corrupt)");

        /* Trailing garbage after a valid file, with or without a fixed-up checksum. */
        big = malloc(len + 16);
        assert_non_null(big);
        memcpy(big, orig, len);
        memset(big + len, 0, 16);
        assert_int_equal(open_bytes(t, big, len + 1, &err), -EBADMSG);
        assert_int_equal(open_bytes(t, big, len + 16, &err), -EBADMSG);
        fix_sum(big, len + 16);
        assert_int_equal(open_bytes(t, big, len + 16, &err), -EBADMSG);
        assert_int_equal(err.pos, len - SUM_LEN);
        assert_non_null(strstr(err.msg, "16 bytes of trailing garbage"));
        free(big);
        free(buf);
        free(orig);
}

static void test_too_large(void **state)
{
        struct tdir *t = *state;
        struct off_error err;
        int fd;

        fd = open(t->path, O_CREAT | O_WRONLY, 0600);
        assert_true(fd >= 0);
        assert_int_equal(ftruncate(fd, (off_t)FILE_MAX + 1), 0);
        assert_int_equal(close(fd), 0);
        fault_set(OP_READ, 0, 0);
        assert_int_equal(open_err(t, &err), -EBADMSG);
        assert_int_equal(calls[OP_READ], 0);
        assert_non_null(strstr(err.msg, "larger than"));
}

/* The file grows between fstat() and the end of reading: refused. */
static void test_file_grows(void **state)
{
        struct tdir *t = *state;
        struct off_error err;
        uint8_t *buf;
        size_t len;

        buf = several_file(t, &len);
        fault_set(OP_READ, 0, 0);
        grow_path = t->path;
        grow_to = (off_t)len + 1;
        assert_int_equal(open_err(t, &err), -EBADMSG);
        assert_int_equal(err.pos, len);
        assert_string_equal(err.msg, "the file grew while being read: another process writes it");
        fault_clear();
        free(buf);
}

static void test_not_regular(void **state)
{
        struct tdir *t = *state;
        struct off_error err;

        assert_int_equal(mkdir(t->path, 0700), 0);
        assert_int_equal(open_err(t, &err), -EINVAL);
        assert_string_equal(err.msg, "not a regular file");
        assert_int_equal(rmdir(t->path), 0);
        /* Without a writer, opening a FIFO would block forever. */
        assert_int_equal(mkfifo(t->path, 0600), 0);
        assert_int_equal(open_err(t, &err), -EINVAL);
}

static void test_bad_args(void **state)
{
        struct tdir *t = *state;
        struct off_store *s = (struct off_store *)0x1;
        struct off_error err;

        assert_int_equal(off_store_open("", &s, &err), -EINVAL);
        assert_int_equal(off_store_open(NULL, &s, NULL), -EINVAL);
        assert_int_equal(off_store_open(t->path, NULL, NULL), -EINVAL);
        assert_int_equal(off_store_new("", &s), -EINVAL);
        assert_int_equal(off_store_new(NULL, &s), -EINVAL);
        assert_int_equal(off_store_parse(t->path, NULL, 1, 0, &s, &err), -EINVAL);
        assert_ptr_equal(s, (struct off_store *)0x1);
        off_store_free(NULL);
}

static void test_leftover_tmp_ignored(void **state)
{
        struct tdir *t = *state;
        struct off_store *s;
        uint8_t *buf;
        size_t len;

        buf = several_file(t, &len);
        file_write(t->tmp, "garbage from a crash", 20);
        assert_int_equal(off_store_open(t->path, &s, NULL), 0);
        assert_several(s);
        off_store_free(s);

        /* Also when the store itself is missing. */
        assert_int_equal(unlink(t->path), 0);
        assert_int_equal(off_store_open(t->path, &s, NULL), 0);
        assert_int_equal(off_count(s), 0);
        off_store_free(s);

        /* The next commit replaces it. */
        s = several_store(t->path);
        assert_int_equal(off_commit(s), 0);
        assert_false(file_exists(t->tmp));
        off_store_free(s);
        free(buf);
        buf = file_read(t->path, &len);
        assert_int_equal(off_store_open(t->path, &s, NULL), 0);
        assert_several(s);
        off_store_free(s);
        free(buf);
}

static void test_mode_0600(void **state)
{
        struct tdir *t = *state;
        struct off_store *s;
        struct stat st;
        mode_t old = umask(0);

        file_write(t->path, "old", 3);
        assert_int_equal(chmod(t->path, 0644), 0);
        file_write(t->tmp, "older", 5);
        assert_int_equal(chmod(t->tmp, 0666), 0);
        s = several_store(t->path);
        assert_int_equal(off_commit(s), 0);
        assert_int_equal(stat(t->path, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0600);
        off_store_free(s);

        /* And with nothing there before. */
        assert_int_equal(unlink(t->path), 0);
        s = several_store(t->path);
        assert_int_equal(off_commit(s), 0);
        assert_int_equal(stat(t->path, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0600);
        off_store_free(s);
        umask(old);
}

static void test_relative_path(void **state)
{
        struct tdir *t = *state;
        struct off_store *s;
        char cwd[4096];

        assert_non_null(getcwd(cwd, sizeof(cwd)));
        assert_int_equal(chdir(t->dir), 0);
        assert_int_equal(off_store_open("offsets.bin", &s, NULL), 0);
        assert_int_equal(off_set(s, "a", &several_rec[0]), 0);
        fault_set(OP_FSYNC, 0, 0);
        assert_int_equal(off_commit(s), 0);
        assert_int_equal(calls[OP_FSYNC], 2); /* the file, then "." */
        off_store_free(s);
        assert_int_equal(chdir(cwd), 0);
        assert_true(file_exists(t->path));
}

/* ---- commit under injected failures ---- */

static void test_read_io_error(void **state)
{
        struct tdir *t = *state;
        struct off_error err;
        uint8_t *buf;
        size_t len;

        buf = several_file(t, &len);
        fault_set(OP_READ, 1, EIO);
        assert_int_equal(open_err(t, &err), -EIO);
        fault_set(OP_READ, 1, EINTR); /* retried */
        assert_int_equal(open_err(t, &err), 0);
        fault_set(OP_OPEN, 1, EACCES);
        assert_int_equal(open_err(t, &err), -EACCES);
        fault_clear();
        free(buf);
}

/*
 * Commits a changed store with the nth call of op failing with err. Before the
 * rename the previous file must be untouched; after it (directory open or fsync)
 * the new store is in place but not known durable. Either way: -err, no temp file,
 * still dirty, and the next commit succeeds.
 */
static void commit_fault(const struct tdir *t, enum op op, unsigned nth, int err, bool renamed)
{
        struct off_store *s = several_store(t->path);
        struct off_rec r = mkrec(77, "/var/log/new.log");
        uint8_t *old, *want, *now;
        size_t old_len, want_len, now_len;

        assert_int_equal(off_commit(s), 0);
        old = file_read(t->path, &old_len);
        assert_int_equal(off_set(s, "new", &r), 0);
        assert_int_equal(off_store_serialize(s, &want, &want_len), 0);

        fault_set(op, nth, err);
        if (op == OP_WRITE)
                write_chunk = 100; /* so the fault hits with part of the file written */
        assert_int_equal(off_commit(s), -err);
        assert_true(calls[op] >= nth);
        fault_clear();

        now = file_read(t->path, &now_len);
        if (renamed) {
                assert_int_equal(now_len, want_len);
                assert_memory_equal(now, want, want_len);
        } else {
                assert_int_equal(now_len, old_len);
                assert_memory_equal(now, old, old_len);
        }
        free(now);
        assert_false(file_exists(t->tmp));
        assert_true(off_is_dirty(s));

        assert_int_equal(off_commit(s), 0);
        assert_false(off_is_dirty(s));
        assert_false(file_exists(t->tmp));
        now = file_read(t->path, &now_len);
        assert_int_equal(now_len, want_len);
        assert_memory_equal(now, want, want_len);
        free(now);
        free(want);
        free(old);
        off_store_free(s);
}

static void test_fault_open_tmp(void **state)
{
        commit_fault(*state, OP_OPEN, 1, EROFS, false);
}

static void test_fault_fchmod(void **state)
{
        commit_fault(*state, OP_FCHMOD, 1, EPERM, false);
}

static void test_fault_write_first(void **state)
{
        commit_fault(*state, OP_WRITE, 1, ENOSPC, false);
}

static void test_fault_write_later(void **state)
{
        commit_fault(*state, OP_WRITE, 5, ENOSPC, false);
}

static void test_fault_fsync(void **state)
{
        commit_fault(*state, OP_FSYNC, 1, EIO, false);
}

static void test_fault_close(void **state)
{
        commit_fault(*state, OP_CLOSE, 1, EIO, false);
}

static void test_fault_rename(void **state)
{
        commit_fault(*state, OP_RENAME, 1, EIO, false);
}

static void test_fault_open_dir(void **state)
{
        commit_fault(*state, OP_OPEN, 2, EACCES, true);
}

static void test_fault_fsync_dir(void **state)
{
        commit_fault(*state, OP_FSYNC, 2, EIO, true);
}

static void test_write_no_progress(void **state)
{
        struct tdir *t = *state;
        struct off_store *s = several_store(t->path);

        fault_set(OP_WRITE, 1, 0);
        assert_int_equal(off_commit(s), -EIO);
        fault_clear();
        assert_false(file_exists(t->tmp));
        assert_false(file_exists(t->path));
        assert_true(off_is_dirty(s));
        off_store_free(s);
}

static void test_short_writes(void **state)
{
        struct tdir *t = *state;
        struct off_store *s = several_store(t->path);
        uint8_t *want, *now;
        size_t want_len, now_len;

        assert_int_equal(off_store_serialize(s, &want, &want_len), 0);
        fault_set(OP_WRITE, 0, 0);
        write_chunk = 7;
        assert_int_equal(off_commit(s), 0);
        assert_true(calls[OP_WRITE] >= 2 * (want_len / 7));
        fault_clear();
        now = file_read(t->path, &now_len);
        assert_int_equal(now_len, want_len);
        assert_memory_equal(now, want, want_len);
        free(now);
        free(want);
        off_store_free(s);
}

/* Every allocation failing in turn: -ENOMEM, nothing leaked (ASan), store unchanged. */
static void test_enomem(void **state)
{
        struct tdir *t = *state;
        struct off_store *s = several_store(t->path), *s2;
        struct off_rec r, got;
        char source[16];
        unsigned n;
        int ret;

        assert_int_equal(off_commit(s), 0);
        for (n = 1;; n++) {
                s2 = (struct off_store *)0x1;
                fault_set(OP_ALLOC, n, 0);
                ret = off_store_open(t->path, &s2, NULL);
                if (calls[OP_ALLOC] < n)
                        break;
                assert_int_equal(ret, -ENOMEM);
                assert_ptr_equal(s2, (struct off_store *)0x1);
        }
        fault_clear();
        assert_int_equal(ret, 0);
        assert_true(n > 3);
        assert_several(s2);
        off_store_free(s2);

        /* A missing file, and a file growing while read. */
        for (int grow = 0; grow < 2; grow++) {
                for (n = 1;; n++) {
                        s2 = (struct off_store *)0x1;
                        fault_set(OP_ALLOC, n, 0);
                        grow_path = t->path;
                        grow_to = grow ? 1 << 20 : 0;
                        ret = off_store_open(grow ? t->path : t->tmp, &s2, NULL);
                        if (calls[OP_ALLOC] < n)
                                break;
                        assert_int_equal(ret, -ENOMEM);
                        assert_ptr_equal(s2, (struct off_store *)0x1);
                }
                fault_clear();
                assert_int_equal(ret, grow ? -EBADMSG : 0);
                if (!grow)
                        off_store_free(s2);
        }

        /* off_set of new entries across table growth, and of a new path. */
        for (int i = 0; i < 40; i++) {
                snprintf(source, sizeof(source), "grow%d", i);
                r = mkrec((uint64_t)i, "/var/log/grow.log");
                for (n = 1;; n++) {
                        size_t count = off_count(s);

                        fault_set(OP_ALLOC, n, 0);
                        ret = off_set(s, source, &r);
                        if (calls[OP_ALLOC] < n)
                                break;
                        assert_int_equal(ret, -ENOMEM);
                        assert_int_equal(off_count(s), count);
                        fault_clear();
                        assert_int_equal(off_get(s, source, r.dev, r.ino, &got), -ENOENT);
                }
                fault_clear();
                assert_int_equal(ret, 0);
        }
        assert_int_equal(off_commit(s), 0);
        r.path = "/var/log/other.log";
        fault_set(OP_ALLOC, 1, 0);
        assert_int_equal(off_set(s, source, &r), -ENOMEM);
        fault_clear();
        assert_false(off_is_dirty(s));
        assert_int_equal(off_get(s, source, r.dev, r.ino, &got), 0);
        assert_string_equal(got.path, "/var/log/grow.log");

        /* Commit: the serialization buffer. */
        assert_int_equal(off_set(s, source, &r), 0);
        fault_set(OP_ALLOC, 1, 0);
        assert_int_equal(off_commit(s), -ENOMEM);
        fault_clear();
        assert_true(off_is_dirty(s));
        assert_false(file_exists(t->tmp));
        assert_int_equal(off_commit(s), 0);
        off_store_free(s);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_missing_file_is_empty, setup, teardown),
                cmocka_unit_test_setup_teardown(test_get_enoent, setup, teardown),
                cmocka_unit_test_setup_teardown(test_del, setup, teardown),
                cmocka_unit_test_setup_teardown(test_set_replace, setup, teardown),
                cmocka_unit_test_setup_teardown(test_set_einval, setup, teardown),
                cmocka_unit_test_setup_teardown(test_dirty, setup, teardown),
                cmocka_unit_test_setup_teardown(test_commit_clean_writes_nothing, setup, teardown),
                cmocka_unit_test_setup_teardown(test_many, setup, teardown),
                cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
                cmocka_unit_test_setup_teardown(test_format_golden, setup, teardown),
                cmocka_unit_test_setup_teardown(test_empty_file_is_torn, setup, teardown),
                cmocka_unit_test_setup_teardown(test_torn_write, setup, teardown),
                cmocka_unit_test_setup_teardown(test_bit_flips, setup, teardown),
                cmocka_unit_test_setup_teardown(test_bad_magic, setup, teardown),
                cmocka_unit_test_setup_teardown(test_versions, setup, teardown),
                cmocka_unit_test_setup_teardown(test_crafted, setup, teardown),
                cmocka_unit_test_setup_teardown(test_too_large, setup, teardown),
                cmocka_unit_test_setup_teardown(test_file_grows, setup, teardown),
                cmocka_unit_test_setup_teardown(test_not_regular, setup, teardown),
                cmocka_unit_test_setup_teardown(test_bad_args, setup, teardown),
                cmocka_unit_test_setup_teardown(test_leftover_tmp_ignored, setup, teardown),
                cmocka_unit_test_setup_teardown(test_mode_0600, setup, teardown),
                cmocka_unit_test_setup_teardown(test_relative_path, setup, teardown),
                cmocka_unit_test_setup_teardown(test_read_io_error, setup, teardown),
                cmocka_unit_test_setup_teardown(test_fault_open_tmp, setup, teardown),
                cmocka_unit_test_setup_teardown(test_fault_fchmod, setup, teardown),
                cmocka_unit_test_setup_teardown(test_fault_write_first, setup, teardown),
                cmocka_unit_test_setup_teardown(test_fault_write_later, setup, teardown),
                cmocka_unit_test_setup_teardown(test_fault_fsync, setup, teardown),
                cmocka_unit_test_setup_teardown(test_fault_close, setup, teardown),
                cmocka_unit_test_setup_teardown(test_fault_rename, setup, teardown),
                cmocka_unit_test_setup_teardown(test_fault_open_dir, setup, teardown),
                cmocka_unit_test_setup_teardown(test_fault_fsync_dir, setup, teardown),
                cmocka_unit_test_setup_teardown(test_write_no_progress, setup, teardown),
                cmocka_unit_test_setup_teardown(test_short_writes, setup, teardown),
                cmocka_unit_test_setup_teardown(test_enomem, setup, teardown),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
