/* SPDX-License-Identifier: Apache-2.0 */
/*
 * frame: see frame.h.
 *
 * DESIGN. One buffer of max_line + read_size + 1 bytes:
 *
 *     0        start        scan              fill              cap
 *     | returned | held line  | no '\n' before | free for reads |
 *
 * [start, fill) are bytes read but not returned yet; no '\n' lies in [start, scan),
 * so a long partial line is searched once, not once per read (memchr over whole
 * chunks: the hot path). next_off is the file offset of buf[fill], so the offset of
 * any buffer index j >= start is next_off - (fill - j).
 *
 * Invariant between calls, once frame_next() has returned false: fill - start <=
 * max_line (a longer held line has been split, or is being discarded), hence after
 * frame_space() moves the held bytes to the front at least read_size bytes are free.
 *
 * While discarding the rest of an over-long line (truncate and skip policies) the
 * kept prefix stays in [start, start + keep) and newly read bytes that hold no '\n'
 * are dropped by moving fill back to start + keep. From then on only indexes from
 * valid_from on map to file offsets as above (frame_bytes_before() needs this).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "io/frame.h"
#include "io/rbuf.h"

struct frame {
        struct rbuf *rb;        /* the buffer; others may hold it (see frame_space()) */
        struct rbuf_acct *acct; /* where its buffers count once retired */
        char *buf;              /* rbuf_data(rb) */
        bool fresh;             /* frame_reset(): the next read starts at buf[0] */
        size_t cap, read_size, max_line;
        size_t start, scan, fill;
        size_t valid_from; /* lowest index whose file offset is next_off - (fill - j) */
        uint64_t next_off;
        enum frame_long_policy policy;
        bool splitting;  /* pieces of an over-long line have been returned */
        bool discarding; /* inside an over-long line, waiting for its newline */
        size_t keep;     /* while discarding: bytes kept at start (truncate policy) */
        struct frame_stats stats;
};

int frame_new(size_t read_size, size_t max_line, enum frame_long_policy policy, uint64_t offset,
              struct rbuf_acct *acct, struct frame **ret_frame)
{
        if (read_size == 0 || max_line == 0 || max_line > SIZE_MAX / 2 || read_size > SIZE_MAX / 4)
                return -EINVAL;
        struct frame *f = calloc(1, sizeof(*f));
        if (!f)
                return -ENOMEM;
        f->cap = max_line + read_size + 1;
        f->acct = acct;
        f->rb = rbuf_new(f->cap, acct);
        if (!f->rb) {
                free(f);
                return -ENOMEM;
        }
        f->buf = rbuf_data(f->rb);
        f->read_size = read_size;
        f->max_line = max_line;
        f->policy = policy;
        f->next_off = offset;
        *ret_frame = f;
        return 0;
}

void frame_free(struct frame *f)
{
        if (!f)
                return;
        rbuf_retire(f->rb);
        free(f);
}

void frame_reset(struct frame *f, uint64_t offset)
{
        f->start = f->scan = f->fill = f->valid_from = 0;
        f->next_off = offset;
        f->splitting = false;
        f->discarding = false;
        f->keep = 0;
        f->fresh = true;
}

void frame_space(struct frame *f, char **ret_buf, size_t *ret_len)
{
        bool compact = f->cap - f->fill < f->read_size && f->start > 0;
        bool moved = false;
        if ((compact || f->fresh) && rbuf_shared(f->rb)) {
                /* Returned lines still borrowed from this buffer must stay as they
                 * are: the held bytes go to the front of a new one instead. */
                struct rbuf *nb = rbuf_new(f->cap, f->acct);
                if (!nb) {
                        *ret_buf = f->buf + f->fill;
                        *ret_len = 0; /* out of memory: the tailer fails the file */
                        return;
                }
                memcpy(rbuf_data(nb), f->buf + f->start, f->fill - f->start);
                rbuf_retire(f->rb);
                f->rb = nb;
                f->buf = rbuf_data(nb);
                moved = true;
        } else if (compact) {
                memmove(f->buf, f->buf + f->start, f->fill - f->start);
                moved = true;
        }
        f->fresh = false;
        if (moved) {
                size_t held = f->fill - f->start;
                f->scan -= f->start;
                f->valid_from = f->valid_from > f->start ? f->valid_from - f->start : 0;
                f->fill = held;
                f->start = 0;
        }
        size_t room = f->cap - f->fill;
        *ret_buf = f->buf + f->fill;
        *ret_len = room < f->read_size ? room : f->read_size;
}

void frame_filled(struct frame *f, size_t n)
{
        f->fill += n;
        f->next_off += n;
}

static uint64_t frame_offset_of(const struct frame *f, size_t idx)
{
        return f->next_off - (uint64_t)(f->fill - idx);
}

static void frame_emit(struct frame *f, size_t len, size_t consumed, unsigned flags,
                       struct frame_line *ret_line)
{
        ret_line->data = f->buf + f->start;
        ret_line->buf = f->rb;
        ret_line->len = len;
        ret_line->end = frame_offset_of(f, f->start + consumed);
        ret_line->flags = flags;
        f->start += consumed;
        if (f->scan < f->start)
                f->scan = f->start;
        f->stats.lines++;
}

/* Called while discarding: looks for the newline that ends the over-long line. */
static bool frame_next_discarding(struct frame *f, struct frame_line *ret_line)
{
        size_t from = f->start + f->keep;
        char *nl = memchr(f->buf + from, '\n', f->fill - from);
        if (!nl) {
                /* Nothing here ends the line: drop what was read after the kept part. */
                f->fill = from;
                f->scan = from;
                f->valid_from = from;
                return false;
        }
        size_t after_nl = (size_t)(nl - f->buf) + 1;
        uint64_t end = frame_offset_of(f, after_nl);
        unsigned flags = f->policy == FRAME_LONG_SKIP ? FRAME_F_SKIPPED : FRAME_F_TRUNCATED;
        ret_line->data = f->buf + f->start;
        ret_line->buf = f->rb;
        ret_line->len = f->keep;
        ret_line->end = end;
        ret_line->flags = flags;
        f->stats.lines++;
        /* The kept prefix stays valid until the next frame_space(), which may move it. */
        f->start = after_nl;
        f->scan = after_nl;
        f->discarding = false;
        f->keep = 0;
        return true;
}

/* The held line at start is longer than max_line and its newline (if any) lies
 * after the first max_line bytes. */
static bool frame_next_long(struct frame *f, struct frame_line *ret_line)
{
        if (f->policy == FRAME_LONG_SPLIT) {
                if (!f->splitting) {
                        f->stats.split++;
                        f->splitting = true;
                }
                frame_emit(f, f->max_line, f->max_line, FRAME_F_SPLIT, ret_line);
                return true;
        }
        if (f->policy == FRAME_LONG_TRUNCATE) {
                f->stats.truncated++;
                f->keep = f->max_line;
        } else {
                f->stats.skipped++;
                f->keep = 0;
        }
        f->discarding = true;
        /* Move scan past the kept prefix; the newline search restarts after it. */
        return frame_next_discarding(f, ret_line);
}

bool frame_next(struct frame *f, struct frame_line *ret_line)
{
        if (f->discarding)
                return frame_next_discarding(f, ret_line);
        if (f->start == f->fill)
                return false;

        char *nl = memchr(f->buf + f->scan, '\n', f->fill - f->scan);
        size_t held = f->fill - f->start;
        if (nl) {
                size_t len = (size_t)(nl - (f->buf + f->start));
                size_t consumed = len + 1;
                if (len > 0 && f->buf[f->start + len - 1] == '\r')
                        len--;
                if (len <= f->max_line) {
                        f->splitting = false;
                        frame_emit(f, len, consumed, 0, ret_line);
                        return true;
                }
                return frame_next_long(f, ret_line);
        }
        f->scan = f->fill;
        if (held > f->max_line)
                return frame_next_long(f, ret_line);
        return false;
}

bool frame_flush(struct frame *f, struct frame_line *ret_line)
{
        if (f->discarding) {
                /* The over-long line ends here without a newline. */
                unsigned flags = f->policy == FRAME_LONG_SKIP ? FRAME_F_SKIPPED : FRAME_F_TRUNCATED;
                ret_line->data = f->buf + f->start;
                ret_line->buf = f->rb;
                ret_line->len = f->keep;
                ret_line->end = frame_offset_of(f, f->fill);
                ret_line->flags = flags | FRAME_F_PARTIAL;
                f->stats.lines++;
                f->start = f->scan = f->fill;
                f->discarding = false;
                f->keep = 0;
                return true;
        }
        if (f->start == f->fill)
                return false;
        f->splitting = false;
        frame_emit(f, f->fill - f->start, f->fill - f->start, FRAME_F_PARTIAL, ret_line);
        return true;
}

bool frame_bytes_before(const struct frame *f, uint64_t end, size_t max, const char **ret_ptr,
                        size_t *ret_len)
{
        uint64_t first = frame_offset_of(f, f->valid_from);
        if (end < first || end > f->next_off)
                return false;
        size_t idx = f->valid_from + (size_t)(end - first);
        size_t from = idx - f->valid_from > max ? idx - max : f->valid_from;
        *ret_ptr = f->buf + from;
        *ret_len = idx - from;
        return true;
}

uint64_t frame_read_offset(const struct frame *f)
{
        return f->next_off;
}

size_t frame_held(const struct frame *f)
{
        return f->fill - f->start;
}

const struct frame_stats *frame_stats(const struct frame *f)
{
        return &f->stats;
}
