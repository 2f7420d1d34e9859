/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_offsets: the checkpoint-file loader of offsets/off.c on arbitrary bytes.
 *
 * Each input is a whole store file, parsed from memory (off_store_parse(), the code
 * off_store_open() runs once the file is read):
 *  1. as is. Success must mean the input is exactly what off_commit() writes for
 *     that store, checked by committing it to a temp file and comparing bytes, then
 *     reloading it with off_store_open() and comparing entries.
 *  2. ignoring the checksum, so mutations reach the entry parser and the hash table
 *     instead of dying on the checksum. Success must re-serialize to the same bytes
 *     (the encoding is canonical), reload with the checksum, and survive rebuilding
 *     through off_set(), lookups and deletes. Then the same parse with the nth
 *     allocation failing must give -ENOMEM and leak nothing (as fluent-bit's
 *     flb_mem.h failures do).
 * Failures must be -EBADMSG or -ENOTSUP with a position inside the input and a
 * message. Any violated check aborts.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "offsets/off.h"
#include "offsets/off_sys.h"

#define CHECK(cond)                                                                                \
        do {                                                                                       \
                if (!(cond)) {                                                                     \
                        fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);   \
                        abort();                                                                   \
                }                                                                                  \
        } while (0)

#define ALLOC_FAULTS_MAX 24

static unsigned alloc_calls, alloc_fail_at;

static void *failing_realloc(void *ptr, size_t size)
{
        if (++alloc_calls == alloc_fail_at)
                return NULL;
        return realloc(ptr, size);
}

static void check_error(int r, const struct off_error *err, size_t size)
{
        CHECK(r == -EBADMSG || r == -ENOTSUP);
        CHECK(err->pos <= size);
        CHECK(memchr(err->msg, '\0', sizeof(err->msg)) != NULL);
        CHECK(err->msg[0] != '\0');
}

static void check_same(const struct off_store *a, const struct off_store *b)
{
        CHECK(off_count(a) == off_count(b));
        for (size_t i = 0; i < off_count(a); i++) {
                struct off_rec ra, rb;
                const char *sa, *sb;

                CHECK(off_at(a, i, &sa, &ra) == 0);
                CHECK(off_at(b, i, &sb, &rb) == 0);
                CHECK(strcmp(sa, sb) == 0 && strcmp(ra.path, rb.path) == 0);
                CHECK(ra.dev == rb.dev && ra.ino == rb.ino && ra.fp == rb.fp &&
                      ra.fp_len == rb.fp_len && ra.tail_len == rb.tail_len &&
                      ra.tail_hash == rb.tail_hash && ra.offset == rb.offset);
        }
}

static char work_dir[] = "/tmp/rt-fuzz-off-XXXXXX";

static void work_dir_remove(void)
{
        (void)rmdir(work_dir);
}

/* A directory for the whole run, made on first use, emptied after each input. */
static const char *work_dir_get(void)
{
        static bool made;

        if (!made) {
                CHECK(mkdtemp(work_dir) != NULL);
                CHECK(atexit(work_dir_remove) == 0);
                made = true;
        }
        return work_dir;
}

/* A valid file: commit it through the real file system and reload it. */
static void check_disk_round_trip(const struct off_store *s, const uint8_t *data, size_t size)
{
        struct off_store *disk, *again;
        struct off_rec rec;
        const char *source;
        char path[64];
        uint8_t *buf;
        ssize_t n;
        int fd;

        snprintf(path, sizeof(path), "%s/offsets.bin", work_dir_get());
        (void)unlink(path);
        CHECK(off_store_open(path, &disk, NULL) == 0);
        for (size_t i = 0; i < off_count(s); i++) {
                CHECK(off_at(s, i, &source, &rec) == 0);
                CHECK(off_set(disk, source, &rec) == 0);
        }
        if (off_count(s) == 0) {
                /* Make the empty store dirty so the commit writes it. */
                rec = (struct off_rec){.path = "/x"};
                CHECK(off_set(disk, "x", &rec) == 0);
                CHECK(off_del(disk, "x", 0, 0) == 0);
        }
        CHECK(off_commit(disk) == 0);
        off_store_free(disk);

        buf = malloc(size + 1);
        CHECK(buf != NULL);
        fd = open(path, O_RDONLY);
        CHECK(fd >= 0);
        n = read(fd, buf, size + 1);
        CHECK(n >= 0 && (size_t)n == size && memcmp(buf, data, size) == 0);
        CHECK(close(fd) == 0);
        free(buf);

        CHECK(off_store_open(path, &again, NULL) == 0);
        check_same(s, again);
        off_store_free(again);
        CHECK(unlink(path) == 0);
}

/* Rebuilds s through off_set(), then deletes every other entry. */
static void check_table(const struct off_store *s, const uint8_t *ser, size_t ser_len)
{
        struct off_store *copy;
        struct off_rec rec, got;
        const char *source;
        uint8_t *buf;
        size_t len;

        CHECK(off_store_new("fuzz", &copy) == 0);
        for (size_t i = 0; i < off_count(s); i++) {
                CHECK(off_at(s, i, &source, &rec) == 0);
                CHECK(off_set(copy, source, &rec) == 0);
        }
        CHECK(off_store_serialize(copy, &buf, &len) == 0);
        CHECK(len == ser_len && memcmp(buf, ser, len) == 0);
        free(buf);

        for (size_t i = 0; i < off_count(s); i += 2) {
                CHECK(off_at(s, i, &source, &rec) == 0);
                CHECK(off_del(copy, source, rec.dev, rec.ino) == 0);
                CHECK(off_del(copy, source, rec.dev, rec.ino) == -ENOENT);
        }
        CHECK(off_count(copy) == off_count(s) / 2);
        for (size_t i = 0; i < off_count(s); i++) {
                CHECK(off_at(s, i, &source, &rec) == 0);
                if (i % 2 == 0) {
                        CHECK(off_get(copy, source, rec.dev, rec.ino, &got) == -ENOENT);
                } else {
                        CHECK(off_get(copy, source, rec.dev, rec.ino, &got) == 0);
                        CHECK(got.offset == rec.offset && strcmp(got.path, rec.path) == 0);
                }
        }
        off_store_free(copy);
}

static void check_alloc_failures(const uint8_t *data, size_t size)
{
        const struct off_sys failing = {.realloc = failing_realloc};
        struct off_store *s;
        int r;

        off_sys_set(&failing);
        for (alloc_fail_at = 1; alloc_fail_at <= ALLOC_FAULTS_MAX; alloc_fail_at++) {
                alloc_calls = 0;
                r = off_store_parse("fuzz", data, size, OFF_PARSE_NO_CHECKSUM, &s, NULL);
                if (alloc_calls < alloc_fail_at) {
                        CHECK(r == 0);
                        off_store_free(s);
                        break;
                }
                CHECK(r == -ENOMEM);
        }
        off_sys_set(NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct off_store *s, *again;
        struct off_error err;
        uint8_t *buf;
        size_t len;
        int r;

        r = off_store_parse("fuzz", data, size, 0, &s, &err);
        if (r == 0) {
                CHECK(off_store_serialize(s, &buf, &len) == 0);
                CHECK(len == size && memcmp(buf, data, size) == 0);
                free(buf);
                check_disk_round_trip(s, data, size);
                off_store_free(s);
        } else {
                check_error(r, &err, size);
        }

        r = off_store_parse("fuzz", data, size, OFF_PARSE_NO_CHECKSUM, &s, &err);
        if (r < 0) {
                check_error(r, &err, size);
                return 0;
        }
        CHECK(!off_is_dirty(s));
        CHECK(off_store_serialize(s, &buf, &len) == 0);
        CHECK(len == size && memcmp(buf, data, size - 8) == 0);
        CHECK(off_store_parse("fuzz", buf, len, 0, &again, &err) == 0);
        check_same(s, again);
        off_store_free(again);
        check_table(s, buf, len);
        free(buf);
        off_store_free(s);
        check_alloc_failures(data, size);
        return 0;
}
