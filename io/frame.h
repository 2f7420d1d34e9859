/* SPDX-License-Identifier: Apache-2.0 */
/*
 * frame: line framing over one reusable read buffer per file.
 *
 * The tailer asks frame_space() for room, reads file bytes into it, reports them
 * with frame_filled(), then takes complete lines with frame_next() until it returns
 * false. Lines end at '\n'; one '\r' before it is removed. A partial last line stays
 * buffered (and is moved to the front of the buffer by the next frame_space()) until
 * its newline arrives, or until the caller gives up waiting and frame_flush()es it.
 *
 * Each line carries `end`, the file offset just past its terminator: once every
 * line up to and including it is acknowledged, the checkpoint may move to `end`.
 *
 * Lines longer than max_line bytes follow the policy:
 *   split     pieces of max_line bytes (FRAME_F_SPLIT on all but the last), which
 *             concatenate to the line; each piece's end is where the next begins;
 *   truncate  the first max_line bytes, returned when the newline is reached, with
 *             FRAME_F_TRUNCATED and end past the newline; the rest is never held;
 *   skip      a zero-length line with FRAME_F_SKIPPED and end past the newline,
 *             so the caller can count it and move the checkpoint past it.
 * Memory: one buffer of max_line + read_size + 1 bytes. A caller may keep returned
 * lines beyond the next frame_space() by holding a reference to their buffer (struct
 * rbuf): frame_space() then moves to a new buffer rather than write over them, and
 * the old one goes when the last reference does.
 *
 * Not thread-safe; a frame belongs to the tailer of one file.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum frame_long_policy {
        FRAME_LONG_SPLIT,
        FRAME_LONG_TRUNCATE,
        FRAME_LONG_SKIP,
};

enum {
        FRAME_F_SPLIT = 1u << 0,     /* a piece of a longer line; more pieces follow */
        FRAME_F_TRUNCATED = 1u << 1, /* the line was cut to max_line bytes */
        FRAME_F_SKIPPED = 1u << 2,   /* an over-long line dropped by policy; len is 0 */
        FRAME_F_PARTIAL = 1u << 3,   /* returned by frame_flush(): no newline yet */
};

struct frame;

struct rbuf;
struct rbuf_acct;

struct frame_line {
        const char *data; /* borrowed; valid until the next frame_space()/reset/free,
                           * or for as long as a reference to buf is held */
        struct rbuf *buf; /* the buffer data lies in (rbuf_get() to keep it) */
        size_t len;       /* without the terminator */
        uint64_t end;     /* file offset just past the line (and its terminator) */
        unsigned flags;   /* FRAME_F_* */
};

struct frame_stats {
        uint64_t lines;     /* lines and pieces returned */
        uint64_t split;     /* over-long lines split */
        uint64_t truncated; /* over-long lines truncated */
        uint64_t skipped;   /* over-long lines skipped */
};

/* read_size: the most one read adds; max_line >= 1. offset: file offset of the first
 * byte that will be read. acct: where buffers the frame retires are counted (see
 * io/rbuf.h; may be NULL). Returns 0, -EINVAL or -ENOMEM. */
int frame_new(size_t read_size, size_t max_line, enum frame_long_policy policy, uint64_t offset,
              struct rbuf_acct *acct, struct frame **ret_frame);

/* Drops everything buffered; the next read goes to offset (truncation, restart). */
void frame_reset(struct frame *f, uint64_t offset);

/* Room for the next read: *ret_buf, *ret_len (at most read_size; 0 only when a new
 * buffer was needed and could not be allocated). Call only after frame_next()
 * returned false. Moves the held partial line to the buffer's front (to a new buffer
 * if the old one is held); invalidates line pointers returned before, except those
 * whose buffer is held. */
void frame_space(struct frame *f, char **ret_buf, size_t *ret_len);

/* n bytes (n <= the length frame_space() gave) were read into the space. */
void frame_filled(struct frame *f, size_t n);

/* Next complete line (or piece), or false when more bytes are needed. */
bool frame_next(struct frame *f, struct frame_line *ret_line);

/* Returns the held partial line as a line (FRAME_F_PARTIAL), or false if none.
 * After a flush the bytes that follow start a new line. */
bool frame_flush(struct frame *f, struct frame_line *ret_line);

/* The bytes of the file just before offset end (at most max of them) if they are
 * still in the buffer (*ret_ptr, *ret_len), borrowed like a line's data. False if end
 * is not in the buffer. */
bool frame_bytes_before(const struct frame *f, uint64_t end, size_t max, const char **ret_ptr,
                        size_t *ret_len);

/* File offset where the next read must start. */
uint64_t frame_read_offset(const struct frame *f);

/* Bytes read but not yet returned in a line (the partial line). */
size_t frame_held(const struct frame *f);

const struct frame_stats *frame_stats(const struct frame *f);

/* NULL is a no-op. */
void frame_free(struct frame *f);
