/* SPDX-License-Identifier: Apache-2.0 */
/*
 * off_sys: the private seams of off.c, for its unit tests and fuzz target only; nothing
 * outside offsets/off.c and tests/ includes this header.
 *
 * Every system call and allocation off.c makes goes through a table, as SQLite's
 * os_unix.c routes its syscalls through aSyscall[]: a test swaps an entry for a wrapper
 * that fails the nth call with EIO or ENOSPC, or the nth allocation, and checks that
 * off_commit() leaves the previous file alone and the store dirty.
 *
 * The parser and serializer are exposed on buffers so the fuzzer need not touch the
 * file system, and can skip the checksum to reach the entry parser with mutated input.
 *
 * Threading: the table is global and unlocked. Swap it only while no store is in use
 * by another thread (tests are single-threaded).
 */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "offsets/off.h"

/*
 * Same contracts as the libc functions (-1 and errno on failure). realloc must return
 * memory that free() releases: off.c frees with free().
 */
struct off_sys {
        int (*open)(const char *path, int flags, mode_t mode);
        ssize_t (*read)(int fd, void *buf, size_t len);
        ssize_t (*write)(int fd, const void *buf, size_t len);
        int (*fchmod)(int fd, mode_t mode);
        int (*fsync)(int fd);
        int (*close)(int fd);
        int (*rename)(const char *from, const char *to);
        int (*unlink)(const char *path);
        void *(*realloc)(void *ptr, size_t size);
};

/* Copies *ops into off.c's table; a NULL member keeps the real function. NULL ops
 * restores the real functions for all. */
void off_sys_set(const struct off_sys *ops);

/* Flag for off_store_parse(): accept any trailing checksum (fuzzing only). */
#define OFF_PARSE_NO_CHECKSUM 1u

/* An empty, clean store that will commit to path (copied). Returns 0, -EINVAL (path
 * NULL or ""), -ENOMEM. */
int off_store_new(const char *path, struct off_store **ret_store);

/* What off_store_open() does once the file is read: validates the len bytes at buf (a
 * whole store file) and builds a clean store that will commit to path. buf is only read
 * and may be freed on return. Returns 0, -EBADMSG, -ENOTSUP, -EINVAL, -ENOMEM; on
 * failure *reterr_err (if not NULL) says where and what. */
int off_store_parse(const char *path, const void *buf, size_t len, unsigned flags,
                    struct off_store **ret_store, struct off_error *reterr_err);

/* The bytes off_commit() would write. On success *ret_buf (free() it) holds *ret_len
 * bytes. Returns 0, -EFBIG (larger than a store file may be), -ENOMEM. */
int off_store_serialize(const struct off_store *s, uint8_t **ret_buf, size_t *ret_len);
