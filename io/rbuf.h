/* SPDX-License-Identifier: Apache-2.0 */
/*
 * rbuf: a reference-counted read buffer.
 *
 * A file's frame reads into one; records handed to librdkafka may point straight into
 * it instead of being copied (the producer's copy of every line, and the work and
 * cache misses of an allocation twice its size, were ~8 % of ringtail's CPU). Whoever
 * keeps such a record alive holds a reference (the record's acknowledgement batch,
 * see ack_hold()), and the frame never writes over bytes of a buffer someone else
 * holds: it moves on to a new buffer instead (see frame_space()). A buffer is freed
 * by the last rbuf_put().
 *
 * Not thread-safe: buffers are taken and released on the event loop's thread (the
 * delivery reports run there too).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

struct rbuf;

/* Where retired buffers are counted besides the process's total (a task: see
 * rbuf_retire()). It must outlive every buffer counted in it. */
struct rbuf_acct {
        size_t retired; /* bytes of its buffers retired and still held */
};

/* A buffer of cap bytes, with one reference (the caller's), counted in acct (NULL:
 * only in the process's total) once retired. NULL: out of memory. */
struct rbuf *rbuf_new(size_t cap, struct rbuf_acct *acct);
char *rbuf_data(struct rbuf *b);
void rbuf_get(struct rbuf *b);
/* NULL is a no-op. */
void rbuf_put(struct rbuf *b);
/* True if a reference besides the caller's exists. */
bool rbuf_shared(const struct rbuf *b);
/* Bytes of buffers kept alive only by references other than their frame's (retired
 * by frame_space()), in the whole process: what borrowing costs in memory beyond the
 * frames themselves. Each buffer's rbuf_acct counts its own share. */
size_t rbuf_retired_bytes(void);
/* Called by the owner when it lets go of a shared buffer it will not write again. */
void rbuf_retire(struct rbuf *b);

/* Freed buffers are kept for reuse, up to RBUF_SPARES_MAX (none under the sanitizers,
 * where a buffer is unmapped at once so that a late access faults). A buffer mapped
 * anew is faulted in anew, page by page: keeping 4 instead of 32 cost 1-2 % of
 * ringtail's CPU at full speed (1 GiB access corpus: 28,000-38,000 page faults per run
 * instead of 12,000). Spares are buffers that were in use at the same time, so the
 * buffers' memory never passes what it was at its peak; rbuf_trim_idle() hands all but
 * RBUF_SPARES_IDLE back once reading has paused. */
#if defined(__SANITIZE_ADDRESS__)
#define RBUF_SPARES_MAX 0u
#else
#define RBUF_SPARES_MAX 32u
#endif
#define RBUF_SPARES_IDLE (RBUF_SPARES_MAX < 4u ? RBUF_SPARES_MAX : 4u)

/* Unmaps the spares beyond RBUF_SPARES_IDLE (the least recently freed first) if no
 * buffer was taken since the previous call; the worker calls it every few seconds. */
void rbuf_trim_idle(void);
/* Spares kept now. */
unsigned rbuf_spare_count(void);
