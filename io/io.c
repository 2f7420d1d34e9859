/* SPDX-License-Identifier: Apache-2.0 */
/*
 * io: see io.h. The two backends implement struct io_ops; io_loop_new() picks one.
 *
 * uring: SQEs are prepared when the caller queues work and submitted by io_run()
 * together with the wait (io_uring_submit_and_wait_timeout), so a loop turn costs
 * one io_uring_enter whatever it queued. Completions are copied out of the CQ ring
 * first and their callbacks run after the ring is advanced, so a callback may queue
 * new work (even on the same io_op) without touching the CQEs being iterated.
 *
 * poll: reads are done at once with pread(2) and their completions put on a ready
 * list; polls are kept on a wait list and handed to poll(2) in io_run().
 */
#include <errno.h>
#include <liburing.h>
#include <poll.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/io.h"

#define URING_ENTRIES 256
#define REAP_BATCH    64

struct io_ops {
        const char *name;
        int (*read)(struct io_loop *l, struct io_op *op, int fd, void *buf, size_t len,
                    uint64_t off);
        int (*poll)(struct io_loop *l, struct io_op *op, int fd, short events);
        int (*run)(struct io_loop *l, int timeout_ms);
        int (*cancel)(struct io_loop *l, struct io_op *op);
        void (*free)(struct io_loop *l);
};

struct io_loop {
        const struct io_ops *ops;
        unsigned in_flight; /* operations whose callback has not run */
        struct io_uring ring;
        /* poll backend */
        struct io_op *ready, **ready_tail; /* completed, callbacks not run yet */
        struct io_op *waiting;             /* polls not yet ready */
        struct pollfd *pfds;
        struct io_op **pops;
        size_t npfds_cap;
};

/* ---- io_uring ---- */

static struct io_uring_sqe *uring_sqe(struct io_loop *l)
{
        struct io_uring_sqe *sqe = io_uring_get_sqe(&l->ring);
        if (!sqe) {
                /* SQ ring full: hand what is queued to the kernel and retry once. */
                if (io_uring_submit(&l->ring) < 0)
                        return NULL;
                sqe = io_uring_get_sqe(&l->ring);
        }
        return sqe;
}

static int uring_read(struct io_loop *l, struct io_op *op, int fd, void *buf, size_t len,
                      uint64_t off)
{
        struct io_uring_sqe *sqe = uring_sqe(l);
        if (!sqe)
                return -EBUSY;
        if (len > UINT32_MAX)
                len = UINT32_MAX;
        io_uring_prep_read(sqe, fd, buf, (unsigned)len, off);
        io_uring_sqe_set_data(sqe, op);
        return 0;
}

static int uring_poll(struct io_loop *l, struct io_op *op, int fd, short events)
{
        struct io_uring_sqe *sqe = uring_sqe(l);
        if (!sqe)
                return -EBUSY;
        io_uring_prep_poll_add(sqe, fd, (unsigned)events);
        io_uring_sqe_set_data(sqe, op);
        return 0;
}

static int uring_cancel(struct io_loop *l, struct io_op *op)
{
        struct io_uring_sqe *sqe = uring_sqe(l);
        if (!sqe)
                return -EBUSY;
        io_uring_prep_cancel(sqe, op, 0);
        /* The cancel request's own completion carries no io_op. */
        io_uring_sqe_set_data(sqe, NULL);
        return 0;
}

static int uring_run(struct io_loop *l, int timeout_ms)
{
        struct io_uring_cqe *cqe;
        int r;

        if (timeout_ms < 0) {
                r = io_uring_submit_and_wait(&l->ring, 1);
        } else {
                struct __kernel_timespec ts = {
                        .tv_sec = timeout_ms / 1000,
                        .tv_nsec = (long long)(timeout_ms % 1000) * 1000000LL,
                };
                r = io_uring_submit_and_wait_timeout(&l->ring, &cqe, timeout_ms ? 1 : 0, &ts, NULL);
        }
        if (r < 0 && r != -ETIME && r != -EINTR && r != -EAGAIN)
                return r;

        int total = 0;
        for (;;) {
                struct io_op *done[REAP_BATCH];
                unsigned head, n = 0, seen = 0;
                io_uring_for_each_cqe(&l->ring, head, cqe)
                {
                        struct io_op *op = io_uring_cqe_get_data(cqe);
                        seen++;
                        if (op) {
                                op->res = cqe->res;
                                done[n++] = op;
                        }
                        if (seen == REAP_BATCH)
                                break;
                }
                io_uring_cq_advance(&l->ring, seen);
                for (unsigned i = 0; i < n; i++)
                        done[i]->cb(done[i], done[i]->res);
                total += (int)n;
                if (seen < REAP_BATCH)
                        break;
        }
        return total;
}

static void uring_free(struct io_loop *l)
{
        io_uring_queue_exit(&l->ring);
}

static const struct io_ops uring_ops = {
        .name = "io_uring",
        .read = uring_read,
        .poll = uring_poll,
        .run = uring_run,
        .cancel = uring_cancel,
        .free = uring_free,
};

/* ---- poll(2) + pread(2) ---- */

static void poll_ready(struct io_loop *l, struct io_op *op, int res)
{
        op->res = res;
        op->next = NULL;
        *l->ready_tail = op;
        l->ready_tail = &op->next;
}

static int poll_read(struct io_loop *l, struct io_op *op, int fd, void *buf, size_t len,
                     uint64_t off)
{
        ssize_t n;
        do {
                n = pread(fd, buf, len, (off_t)off);
        } while (n < 0 && errno == EINTR);
        poll_ready(l, op, n < 0 ? -errno : (int)(n > INT32_MAX ? INT32_MAX : n));
        return 0;
}

static int poll_poll(struct io_loop *l, struct io_op *op, int fd, short events)
{
        op->fd = fd;
        op->events = events;
        op->next = l->waiting;
        l->waiting = op;
        return 0;
}

static int poll_run(struct io_loop *l, int timeout_ms)
{
        size_t n = 0;
        for (struct io_op *op = l->waiting; op; op = op->next)
                n++;
        if (n > l->npfds_cap) {
                struct pollfd *p = realloc(l->pfds, n * sizeof(*p));
                if (!p)
                        return -ENOMEM;
                l->pfds = p;
                struct io_op **o = realloc(l->pops, n * sizeof(*o));
                if (!o)
                        return -ENOMEM;
                l->pops = o;
                l->npfds_cap = n;
        }
        size_t i = 0;
        for (struct io_op *op = l->waiting; op; op = op->next, i++) {
                l->pfds[i] = (struct pollfd){.fd = op->fd, .events = op->events};
                l->pops[i] = op;
        }

        int r = poll(l->pfds, n, l->ready ? 0 : timeout_ms);
        if (r < 0 && errno != EINTR)
                return -errno;
        if (r > 0) {
                l->waiting = NULL;
                for (i = n; i-- > 0;) {
                        struct io_op *op = l->pops[i];
                        if (l->pfds[i].revents) {
                                poll_ready(l, op, l->pfds[i].revents);
                        } else {
                                op->next = l->waiting;
                                l->waiting = op;
                        }
                }
        }

        /* Run only what is ready now; callbacks queue new work for the next turn. */
        struct io_op *op = l->ready;
        l->ready = NULL;
        l->ready_tail = &l->ready;
        int total = 0;
        while (op) {
                struct io_op *next = op->next;
                op->cb(op, op->res);
                op = next;
                total++;
        }
        return total;
}

static int poll_cancel(struct io_loop *l, struct io_op *op)
{
        for (struct io_op **pp = &l->waiting; *pp; pp = &(*pp)->next) {
                if (*pp == op) {
                        *pp = op->next;
                        poll_ready(l, op, -ECANCELED);
                        return 0;
                }
        }
        return 0;
}

static void poll_free(struct io_loop *l)
{
        free(l->pfds);
        free(l->pops);
}

static const struct io_ops poll_ops = {
        .name = "poll",
        .read = poll_read,
        .poll = poll_poll,
        .run = poll_run,
        .cancel = poll_cancel,
        .free = poll_free,
};

int io_loop_new(enum io_backend backend, struct io_loop **ret_loop)
{
        struct io_loop *l = calloc(1, sizeof(*l));
        if (!l)
                return -ENOMEM;
        l->ready_tail = &l->ready;

        if (backend != IO_BACKEND_POLL) {
                int r = io_uring_queue_init(URING_ENTRIES, &l->ring, 0);
                if (r == 0) {
                        l->ops = &uring_ops;
                } else if (backend == IO_BACKEND_URING) {
                        free(l);
                        return r;
                }
        }
        if (!l->ops)
                l->ops = &poll_ops;
        *ret_loop = l;
        return 0;
}

const char *io_loop_backend(const struct io_loop *l)
{
        return l->ops->name;
}

/* Every completion goes through io_done() before the caller's callback. */
static void io_done(struct io_op *op, int res)
{
        op->loop->in_flight--;
        op->cb = op->user_cb;
        op->cb(op, res);
}

static void io_track(struct io_loop *l, struct io_op *op)
{
        op->loop = l;
        op->user_cb = op->cb;
        op->cb = io_done;
}

int io_read(struct io_loop *l, struct io_op *op, int fd, void *buf, size_t len, uint64_t off)
{
        io_track(l, op);
        int r = l->ops->read(l, op, fd, buf, len, off);
        if (r < 0) {
                op->cb = op->user_cb;
                return r;
        }
        l->in_flight++;
        return 0;
}

unsigned io_in_flight(const struct io_loop *l)
{
        return l->in_flight;
}

int io_cancel(struct io_loop *l, struct io_op *op)
{
        return l->ops->cancel(l, op);
}

int io_poll(struct io_loop *l, struct io_op *op, int fd, short events)
{
        io_track(l, op);
        int r = l->ops->poll(l, op, fd, events);
        if (r < 0) {
                op->cb = op->user_cb;
                return r;
        }
        l->in_flight++;
        return 0;
}

int io_run(struct io_loop *l, int timeout_ms)
{
        return l->ops->run(l, timeout_ms);
}

void io_loop_free(struct io_loop *l)
{
        if (!l)
                return;
        l->ops->free(l);
        free(l);
}
