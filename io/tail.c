/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tail: see tail.h for the state diagram. The functions making each transition:
 *   NEW -> READING            tail_start()
 *   READING -> READING        tail_read_cb() after a full read, or a wake during it
 *   READING -> PAUSED         tail_deliver() when ops->line() says -EAGAIN
 *   PAUSED -> READING/IDLE    tail_resume()
 *   READING -> IDLE           tail_read_cb() after a short read (end of file)
 *   IDLE -> READING           tail_wake()
 *   any -> FAILED             tail_fail()
 *
 * Why a short read ends the reading: every append after the data the kernel gave us
 * raises a new inotify IN_MODIFY (or is found by the rescan), which wakes the tail;
 * an append before it is in the data. So no read is needed just to see 0 bytes.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "io/io.h"
#include "io/tail.h"

struct tail {
        struct io_op op; /* first: the read completion finds the tail from it */
        struct io_loop *loop;
        int fd;
        char *path;
        uint64_t dev, ino;
        struct frame *frame;
        struct tail_opts opts;
        const struct tail_ops *ops;
        void *userdata;

        enum tail_state state;
        bool in_flight;    /* a read is queued or running */
        bool wake_pending; /* woken while reading: read again afterwards */
        bool freeing;      /* tail_free() called during a read */
        bool holding;      /* `held` is a line ops->line() refused */
        struct frame_line held;
        size_t want; /* length asked of the read in flight */

        uint64_t fp;
        uint32_t fp_len;
        uint64_t consumed; /* just past the last line ops->line() took */
};

static void tail_read(struct tail *t);

/* fstat() of the open file, if it still describes that file. Some FUSE filesystems
 * (bindfs, sshfs-like ones) answer fstat() on a descriptor with whatever file now
 * has the name it was opened by, while read() still returns the opened file's bytes:
 * that size says nothing about this file. Returns 0, -ESTALE, or -errno. */
static int tail_fstat(const struct tail *t, struct stat *st)
{
        if (fstat(t->fd, st) < 0)
                return -errno;
        if ((uint64_t)st->st_dev != t->dev || (uint64_t)st->st_ino != t->ino)
                return -ESTALE;
        return 0;
}

int tail_new(struct io_loop *loop, int fd, const char *path, const struct tail_opts *opts,
             const struct tail_ops *ops, void *userdata, struct tail **ret_tail)
{
        struct stat st;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode))
                return -EINVAL;

        struct tail *t = calloc(1, sizeof(*t));
        if (!t)
                return -ENOMEM;
        t->path = strdup(path);
        if (!t->path)
                goto fail;
        int r = frame_new(opts->read_size, opts->max_line, opts->long_policy, 0, opts->acct,
                          &t->frame);
        if (r < 0)
                goto fail;
        t->loop = loop;
        t->fd = fd;
        t->dev = (uint64_t)st.st_dev;
        t->ino = (uint64_t)st.st_ino;
        t->opts = *opts;
        t->ops = ops;
        t->userdata = userdata;
        t->state = TAIL_NEW;
        *ret_tail = t;
        return 0;
fail:
        free(t->path);
        free(t);
        return -ENOMEM;
}

void tail_identity(const struct tail *t, uint64_t *ret_dev, uint64_t *ret_ino)
{
        *ret_dev = t->dev;
        *ret_ino = t->ino;
}

const char *tail_path(const struct tail *t)
{
        return t->path;
}

enum tail_state tail_get_state(const struct tail *t)
{
        return t->state;
}

uint64_t tail_read_offset(const struct tail *t)
{
        return frame_read_offset(t->frame);
}

uint64_t tail_consumed_offset(const struct tail *t)
{
        return t->consumed;
}

size_t tail_held(const struct tail *t)
{
        return frame_held(t->frame);
}

/* Reads exactly len bytes at off (short only at end of file). Returns bytes or -errno. */
static ssize_t tail_pread_full(int fd, void *buf, size_t len, uint64_t off)
{
        size_t done = 0;
        while (done < len) {
                ssize_t n = pread(fd, (char *)buf + done, len - done, (off_t)(off + done));
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (n == 0)
                        break;
                done += (size_t)n;
        }
        return (ssize_t)done;
}

/* xxh3 of the len bytes at off, or -errno; -ENODATA if the file is shorter. */
static int tail_hash_range(struct tail *t, uint64_t off, uint32_t len, uint64_t *ret_hash)
{
        char stackbuf[4096];
        char *buf = len <= sizeof(stackbuf) ? stackbuf : malloc(len);
        if (!buf)
                return -ENOMEM;
        ssize_t n = tail_pread_full(t->fd, buf, len, off);
        int r = 0;
        if (n < 0)
                r = (int)n;
        else if ((size_t)n < len)
                r = -ENODATA;
        else
                *ret_hash = XXH3_64bits(buf, len);
        if (buf != stackbuf)
                free(buf);
        return r;
}

bool tail_ckpt_matches(struct tail *t, const struct tail_ckpt *ck)
{
        uint64_t h;
        if (ck->fp_len > 0 && (tail_hash_range(t, 0, ck->fp_len, &h) < 0 || h != ck->fp))
                return false;
        if (ck->tail_len > ck->offset)
                return false;
        if (ck->tail_len > 0 &&
            (tail_hash_range(t, ck->offset - ck->tail_len, ck->tail_len, &h) < 0 ||
             h != ck->tail_hash))
                return false;
        /* Without a tail hash, the file must at least still reach the offset. */
        struct stat st;
        int r = tail_fstat(t, &st);
        if (r == -ESTALE)
                return ck->tail_len > 0; /* the hash above is all there is to go by */
        if (r < 0 || (uint64_t)st.st_size < ck->offset)
                return false;
        return true;
}

/* The fingerprint is taken from the bytes the tail read, as they come (so a file
 * rewritten after it was read cannot lend its new first bytes to the old content's
 * checkpoint). When the first bytes are not in the buffer (a start past them), they
 * are read from the file, and a longer fingerprint is taken only if the file still
 * starts with the bytes of the shorter one. */
static void tail_fingerprint(struct tail *t)
{
        uint64_t want = frame_read_offset(t->frame);
        if (want > t->opts.fingerprint_bytes)
                want = t->opts.fingerprint_bytes;
        if (want <= t->fp_len)
                return;
        const char *p;
        size_t n;
        if (frame_bytes_before(t->frame, want, (size_t)want, &p, &n) && n == want) {
                if (t->fp_len == 0 || XXH3_64bits(p, t->fp_len) == t->fp) {
                        t->fp = XXH3_64bits(p, (size_t)want);
                        t->fp_len = (uint32_t)want;
                }
                return;
        }
        char buf[65536];
        if (want > sizeof(buf))
                return;
        ssize_t got = tail_pread_full(t->fd, buf, (size_t)want, 0);
        if (got != (ssize_t)want || (t->fp_len && XXH3_64bits(buf, t->fp_len) != t->fp))
                return;
        t->fp = XXH3_64bits(buf, (size_t)want);
        t->fp_len = (uint32_t)want;
}

int tail_ckpt_fill(struct tail *t, struct tail_ckpt *ck)
{
        ck->fp = t->fp;
        ck->fp_len = t->fp_len;

        const char *p;
        size_t n;
        if (frame_bytes_before(t->frame, ck->offset, TAIL_HASH_BYTES, &p, &n) &&
            (n == TAIL_HASH_BYTES || n == ck->offset)) {
                ck->tail_hash = XXH3_64bits(p, n);
                ck->tail_len = (uint32_t)n;
                return 0;
        }
        /* Not (all) in the buffer any more: read them again (page cache). */
        uint32_t len = ck->offset < TAIL_HASH_BYTES ? (uint32_t)ck->offset : TAIL_HASH_BYTES;
        ck->tail_hash = 0;
        ck->tail_len = 0;
        if (len > 0 && tail_hash_range(t, ck->offset - len, len, &ck->tail_hash) == 0)
                ck->tail_len = len;
        return 0;
}

static void tail_fail(struct tail *t, int err)
{
        t->state = TAIL_FAILED;
        t->ops->error(t->userdata, err);
}

/* Offers one line; a refused line is held and the tail pauses. Returns false then. */
static bool tail_offer(struct tail *t, const struct frame_line *line)
{
        if (t->ops->line(t->userdata, line) != -EAGAIN) {
                t->consumed = line->end;
                return true;
        }
        t->held = *line;
        t->holding = true;
        t->state = TAIL_PAUSED;
        return false;
}

/* Hands buffered lines to ops->line(). Returns false if it paused. */
static bool tail_deliver(struct tail *t)
{
        if (t->holding) {
                t->holding = false;
                if (!tail_offer(t, &t->held))
                        return false;
        }
        struct frame_line line;
        while (frame_next(t->frame, &line))
                if (!tail_offer(t, &line))
                        return false;
        t->ops->read_done(t->userdata);
        return true;
}

/* The file was truncated (and maybe written again): start again at 0. */
static void tail_restart(struct tail *t)
{
        uint64_t consumed = t->consumed;
        frame_reset(t->frame, 0);
        t->holding = false;
        t->fp_len = 0;
        t->consumed = 0;
        t->ops->truncated(t->userdata, consumed);
}

/* At end of file: a file now shorter than our position was truncated. */
static bool tail_check_truncated(struct tail *t)
{
        struct stat st;
        uint64_t pos = frame_read_offset(t->frame);
        if (tail_fstat(t, &st) < 0 || (uint64_t)st.st_size >= pos)
                return false;
        tail_restart(t);
        return true;
}

/* Before reading on from an idle position: a file truncated and written past our
 * position again since the last read (copytruncate under a busy writer) no longer
 * starts with the bytes it was fingerprinted by. One small pread per wake. */
static void tail_check_rewritten(struct tail *t)
{
        uint64_t h;
        if (t->fp_len == 0)
                return;
        int r = tail_hash_range(t, 0, t->fp_len, &h);
        if ((r == 0 && h == t->fp) || (r < 0 && r != -ENODATA))
                return;
        tail_restart(t);
}

static void tail_read_cb(struct io_op *op, int res)
{
        struct tail *t = (struct tail *)op;

        t->in_flight = false;
        if (t->freeing) {
                tail_free(t);
                return;
        }
        if (res == -EINTR || res == -EAGAIN) {
                tail_read(t);
                return;
        }
        if (res < 0) {
                tail_fail(t, res);
                return;
        }
        if (res > 0) {
                frame_filled(t->frame, (size_t)res);
                if (t->fp_len < t->opts.fingerprint_bytes)
                        tail_fingerprint(t);
                if (!tail_deliver(t))
                        return;
        }
        if ((size_t)res == t->want || t->wake_pending) {
                tail_read(t);
                return;
        }
        if (tail_check_truncated(t)) {
                tail_read(t);
                return;
        }
        t->state = TAIL_IDLE;
}

static void tail_read(struct tail *t)
{
        char *buf;
        size_t len;

        frame_space(t->frame, &buf, &len);
        if (len == 0) {
                /* Only when a new buffer was needed and none could be had. */
                tail_fail(t, -ENOMEM);
                return;
        }
        t->op.cb = tail_read_cb;
        t->want = len;
        t->wake_pending = false;
        int r = io_read(t->loop, &t->op, t->fd, buf, len, frame_read_offset(t->frame));
        if (r < 0) {
                tail_fail(t, r);
                return;
        }
        t->in_flight = true;
        t->state = TAIL_READING;
}

int tail_start(struct tail *t, uint64_t offset)
{
        if (t->state != TAIL_NEW)
                return -EALREADY;
        frame_reset(t->frame, offset);
        t->consumed = offset;
        if (offset > 0)
                tail_fingerprint(t); /* of the content the offset belongs to */
        tail_read(t);
        return t->state == TAIL_FAILED ? -EIO : 0;
}

void tail_wake(struct tail *t)
{
        switch (t->state) {
        case TAIL_IDLE:
                tail_check_rewritten(t);
                tail_read(t);
                break;
        case TAIL_READING:
                t->wake_pending = true;
                break;
        default:
                break;
        }
}

void tail_resume(struct tail *t)
{
        if (t->state != TAIL_PAUSED)
                return;
        t->state = TAIL_READING;
        if (!tail_deliver(t))
                return;
        /* Paused mid-buffer: there may be more in the file; reading finds out. */
        tail_read(t);
}

int tail_flush(struct tail *t)
{
        if (t->state == TAIL_PAUSED || t->in_flight)
                return 0;
        struct frame_line line;
        if (!frame_flush(t->frame, &line))
                return 0;
        if (!tail_offer(t, &line))
                return -EAGAIN;
        t->ops->read_done(t->userdata);
        return 0;
}

enum tail_change tail_check(struct tail *t)
{
        struct stat st, pst;
        bool grew = false;

        /* Growth is a matter of the open file, whatever its path names now: a renamed
         * or deleted file still being written must still be read. */
        int r = tail_fstat(t, &st);
        if (r == -ESTALE && t->state == TAIL_IDLE) {
                /* No size to go by: a read tells (0 bytes at the end: idle again). */
                tail_read(t);
        } else if (r == 0) {
                if (t->state == TAIL_READING && t->in_flight &&
                    (uint64_t)st.st_size != frame_read_offset(t->frame))
                        t->wake_pending = true; /* the read may have missed the growth */
                if (t->state == TAIL_IDLE && (uint64_t)st.st_size != frame_read_offset(t->frame)) {
                        /* Grown, or shrunk (the read at the end detects truncation). */
                        tail_check_rewritten(t);
                        tail_read(t);
                        grew = true;
                }
                if (st.st_nlink == 0)
                        return TAIL_DELETED;
        }
        if (stat(t->path, &pst) < 0 || (uint64_t)pst.st_dev != t->dev ||
            (uint64_t)pst.st_ino != t->ino)
                return TAIL_MOVED;
        return grew ? TAIL_GREW : TAIL_UNCHANGED;
}

void tail_free(struct tail *t)
{
        if (!t)
                return;
        if (t->in_flight) {
                /* The kernel still owns the buffer: finish in tail_read_cb(). */
                t->freeing = true;
                return;
        }
        frame_free(t->frame);
        close(t->fd);
        free(t->path);
        free(t);
}
