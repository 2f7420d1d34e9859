/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tail: one open log file being read: its identity, its read position, its framer,
 * and the reads in flight on the event loop.
 *
 * Lifecycle (one struct tail per open file, i.e. per inode):
 *
 *     tail_new() --> [NEW] --tail_start(off)--> [READING] <--------------+
 *                                                 |  read completes       |
 *                                                 v                      |
 *                               lines handed to ops->line() one by one   |
 *                                |                    |                  |
 *                   -EAGAIN (no room downstream)   all taken: read_done  |
 *                                v                    |                  |
 *                            [PAUSED] --tail_resume()-+-- more to read --+
 *                                                     |
 *                                                     v at end of file
 *                                                  [IDLE] --tail_wake()--> [READING]
 *
 * A read error moves the tail to FAILED and calls ops->error(); tail_free() during
 * a read is deferred until the kernel has finished with the buffer.
 *
 * Truncation: when a read reaches the end of the file and the file is now shorter
 * than the read position, or when an idle file grows but no longer starts with the
 * bytes it was fingerprinted by (truncated and written past the old position in
 * between), the tail starts again at 0 and calls ops->truncated() before any line
 * of the new content (from within tail_wake()/tail_check() in the second case).
 *
 * Identity: device + inode, and an xxh3 fingerprint of the first fingerprint_bytes
 * bytes (fewer while the file is shorter). A checkpoint is trusted only if the
 * fingerprint it recorded and the hash of the bytes just before its offset still
 * match the file (tail_ckpt_matches()).
 *
 * Threading: the event loop's thread only; callbacks run there.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "io/frame.h"

struct io_loop;
struct tail;

/* How many bytes before a checkpointed offset are hashed. */
#define TAIL_HASH_BYTES 256

struct tail_opts {
        size_t read_size; /* bytes per read */
        size_t max_line;  /* longest line before long_policy applies */
        enum frame_long_policy long_policy;
        uint32_t fingerprint_bytes;
        struct rbuf_acct *acct; /* counts read buffers retired while lines hold them */
};

/* What a checkpoint records about a file (see offsets/off.h). */
struct tail_ckpt {
        uint64_t offset;
        uint64_t fp;
        uint32_t fp_len;
        uint32_t tail_len;
        uint64_t tail_hash;
};

struct tail_ops {
        /* A line, in file order. Return 0 if taken, -EAGAIN to keep it and pause
         * until tail_resume() (it is offered again first). line->data is valid until
         * read_done() or the pause ends. */
        int (*line)(void *userdata, const struct frame_line *line);
        /* Every line of one read has been taken. */
        void (*read_done)(void *userdata);
        /* The file was truncated (found shorter than the read position at its end, or
         * no longer starting with the bytes it was fingerprinted by when it grew);
         * reading restarts at 0. consumed: the end of the last line taken before. */
        void (*truncated)(void *userdata, uint64_t consumed);
        /* A read failed with err (-errno); the tail is FAILED. */
        void (*error)(void *userdata, int err);
};

/* Takes ownership of fd (an open regular file) on success. path is copied and only
 * used in messages and tail_check(). Returns 0, -EINVAL (not a regular file),
 * -errno, -ENOMEM. */
int tail_new(struct io_loop *loop, int fd, const char *path, const struct tail_opts *opts,
             const struct tail_ops *ops, void *userdata, struct tail **ret_tail);

void tail_identity(const struct tail *t, uint64_t *ret_dev, uint64_t *ret_ino);
const char *tail_path(const struct tail *t);

/* True if ck describes this file: the fingerprint over ck->fp_len bytes and the
 * hash of the ck->tail_len bytes before ck->offset match what is on disk now. */
bool tail_ckpt_matches(struct tail *t, const struct tail_ckpt *ck);

/* Starts reading at offset (the first call only). Returns 0 or -errno. */
int tail_start(struct tail *t, uint64_t offset);

/* The file may have grown: reads if idle, or reads again after the current read. */
void tail_wake(struct tail *t);

/* Ends a pause (ops->line returned -EAGAIN). */
void tail_resume(struct tail *t);

/* Offers the held partial last line as a line (FRAME_F_PARTIAL); for a file that
 * will not grow any more. Returns 0 (taken, or none held) or -EAGAIN (refused: the
 * tail is PAUSED holding it). */
int tail_flush(struct tail *t);

/* Fills the identity fields of ck (fp, fp_len: the fingerprint over as many of the
 * first fingerprint_bytes bytes as the file has) for the checkpoint at ck->offset,
 * and the hash of the TAIL_HASH_BYTES bytes before it (fewer near the start), taken
 * from the read buffer when they are still there, else read from the file; tail_len
 * is 0 if they cannot be read. Returns 0 or -errno. */
int tail_ckpt_fill(struct tail *t, struct tail_ckpt *ck);

enum tail_state {
        TAIL_NEW,
        TAIL_READING,
        TAIL_PAUSED,
        TAIL_IDLE,
        TAIL_FAILED,
};
enum tail_state tail_get_state(const struct tail *t);

/* Next offset to read. */
uint64_t tail_read_offset(const struct tail *t);

/* Just past the last line ops->line() took (the start offset before any): where
 * reading must resume if this file is closed and opened again. */
uint64_t tail_consumed_offset(const struct tail *t);

/* Bytes of a partial last line held (waiting for its newline). */
size_t tail_held(const struct tail *t);

enum tail_change {
        TAIL_UNCHANGED,
        TAIL_GREW,    /* there is more to read (the tail was woken) */
        TAIL_MOVED,   /* path now names another file, or nothing */
        TAIL_DELETED, /* the file has no name left */
};

/* Looks at the file and its path (for rescans and directory events). A file that
 * grew is read (even when TAIL_MOVED or TAIL_DELETED is returned). */
enum tail_change tail_check(struct tail *t);

/* NULL is a no-op. Closes the file, now or when the read in flight completes; no
 * callback runs after this. */
void tail_free(struct tail *t);
