/* SPDX-License-Identifier: Apache-2.0 */
/*
 * off: the local checkpoint store (offset.storage.file.filename).
 *
 * One store per worker holds, for every source (connector name) and every file it
 * reads, the byte offset up to which every line has been acknowledged by Kafka,
 * keyed by file identity (device + inode) rather than by path, plus what is needed
 * to check on restart that the file is still the one the offset belongs to: an xxh3
 * fingerprint of its first bytes and a hash of the bytes just before the offset.
 *
 * Durability: off_commit() writes the whole store to "<path>.tmp", fsyncs it,
 * renames it over <path> and fsyncs the directory, mode 0600. A crash at any point
 * leaves either the old or the new store, never a mix. The file is versioned and
 * checksummed; off_store_open() on a torn, truncated or corrupt file fails with
 * -EBADMSG and a message, and never starts from an empty store silently. A missing
 * file is an empty store. A leftover "<path>.tmp" from a crash is ignored and
 * replaced by the next commit.
 *
 * Threading: a store is used by one thread (the worker's event loop).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define OFF_PATH_MAX   4096 /* longest path stored, bytes without NUL */
#define OFF_SOURCE_MAX 255  /* longest source (connector) name */
#define OFF_TAIL_MAX   4096 /* most bytes hashed before an offset */

struct off_store;

struct off_error {
        uint64_t pos;  /* byte position in the file where the problem was found */
        char msg[200]; /* what is wrong */
};

struct off_rec {
        uint64_t dev, ino;  /* identity: st_dev and st_ino of the file */
        uint64_t fp;        /* xxh3-64 of the first fp_len bytes of the file */
        uint32_t fp_len;    /* 0: not fingerprinted yet */
        uint32_t tail_len;  /* number of bytes hashed just before offset (0..OFF_TAIL_MAX) */
        uint64_t tail_hash; /* xxh3-64 of [offset - tail_len, offset) */
        uint64_t offset;    /* next byte to read; every byte before it is acknowledged */
        const char *path;   /* last path the file was seen at; borrowed, see below */
};

/* Opens (loads) the store at path. A missing file gives an empty store; the file is
 * created by the first off_commit(). Returns 0, -EBADMSG (corrupt: reterr_err says
 * where and what), -ENOTSUP (a newer format version), -EINVAL (empty path, not a
 * regular file), -EFBIG (over 256 MiB), -errno for I/O, -ENOMEM. reterr_err (may be
 * NULL) is filled on every failure. */
int off_store_open(const char *path, struct off_store **ret_store, struct off_error *reterr_err);

/* Looks up (source, dev, ino). Returns 0 and fills *ret_rec (ret_rec->path borrowed
 * from the store until the entry is next set or deleted, or the store freed), -ENOENT,
 * or -EINVAL (source NULL). */
int off_get(const struct off_store *s, const char *source, uint64_t dev, uint64_t ino,
            struct off_rec *ret_rec);

/* Inserts or replaces the entry (source, rec->dev, rec->ino); copies source and
 * rec->path (NULL stores ""). Marks the store dirty. Returns 0, -EINVAL (source or
 * path too long, tail_len > OFF_TAIL_MAX), -ENOMEM (also past the ~5 million entries
 * a 256 MiB file holds). */
int off_set(struct off_store *s, const char *source, const struct off_rec *rec);

/* Removes an entry. Returns 0, -ENOENT or -EINVAL (source NULL). */
int off_del(struct off_store *s, const char *source, uint64_t dev, uint64_t ino);

/* Entries in unspecified but stable order between modifications, i < off_count();
 * -ENOENT past the end. *ret_source and ret_rec->path are borrowed until the next
 * modification. */
size_t off_count(const struct off_store *s);
int off_at(const struct off_store *s, size_t i, const char **ret_source, struct off_rec *ret_rec);

/* True if something changed since the last successful commit (or open). */
bool off_is_dirty(const struct off_store *s);

/* Makes the store durable as described above; a no-op returning 0 when not dirty.
 * Returns 0 once the new store is on disk, or -errno (ENOSPC, EROFS, EIO, -EFBIG
 * past 256 MiB, ...), in which case the in-memory store is still dirty and the next
 * call tries again; the file on disk is the previous store, complete, or, if only the
 * directory fsync failed (after the rename), the new one, complete. */
int off_commit(struct off_store *s);

/* Path the store was opened with; borrowed. */
const char *off_store_path(const struct off_store *s);

/* NULL is a no-op. Does not commit. */
void off_store_free(struct off_store *s);
