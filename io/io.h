/* SPDX-License-Identifier: Apache-2.0 */
/*
 * io: the event loop's I/O backend. One loop per worker thread; it reads files and
 * waits for readiness of descriptors (inotify, signalfd, librdkafka's queue eventfd)
 * and hands every completion to a callback on the loop's thread.
 *
 * Backends sit behind an ops table (as redis ae.c picks ae_epoll.c or ae_select.c):
 *   uring  io_uring: reads and polls are queued as SQEs and submitted together
 *          once per loop turn, completions are reaped in bulk;
 *   poll   poll(2) + pread(2), for kernels or sandboxes (container seccomp
 *          profiles) without io_uring; reads complete synchronously.
 * IO_BACKEND_AUTO tries io_uring and falls back to poll if the kernel refuses it.
 *
 * Ownership: a struct io_op is embedded in the caller's object and must stay alive
 * and untouched until its callback has run; so must a read's buffer, which belongs
 * to the kernel until then (ASan cannot see the kernel write it). One operation per
 * io_op at a time. Timers are not here: io_run() takes the time to wait, and the
 * caller computes it from its own deadlines.
 *
 * Threading: every function must be called on the loop's thread.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

enum io_backend {
        IO_BACKEND_AUTO,
        IO_BACKEND_URING,
        IO_BACKEND_POLL,
};

struct io_loop;
struct io_op;

/* res: bytes read (0 at end of file), revents for a poll, or -errno. */
typedef void (*io_cb_t)(struct io_op *op, int res);

struct io_op {
        io_cb_t cb;           /* set by the caller before submitting */
        io_cb_t user_cb;      /* backend use */
        struct io_loop *loop; /* backend use */
        struct io_op *next;   /* backend use */
        int fd;               /* backend use */
        short events;         /* backend use */
        int res;              /* backend use */
};

/* Returns 0, -ENOSYS/-EPERM (uring asked for but unavailable), -ENOMEM, -errno. */
int io_loop_new(enum io_backend backend, struct io_loop **ret_loop);

/* "io_uring" or "poll". */
const char *io_loop_backend(const struct io_loop *l);

/* Queues a read of up to len bytes at file offset off into buf. */
int io_read(struct io_loop *l, struct io_op *op, int fd, void *buf, size_t len, uint64_t off);

/* Queues a one-shot wait until fd is ready for events (POLLIN, ...). */
int io_poll(struct io_loop *l, struct io_op *op, int fd, short events);

/* Submits what is queued, waits up to timeout_ms (-1: no limit, 0: do not wait) for
 * at least one completion, runs the callbacks of all completions available.
 * Returns the number of callbacks run (0 on timeout or signal) or -errno. */
int io_run(struct io_loop *l, int timeout_ms);

/* Asks for a queued poll to end: its callback then runs (once, as always) with
 * -ECANCELED, or with its result if it was already complete. A read cannot be
 * cancelled; it completes. Returns 0 or -errno. */
int io_cancel(struct io_loop *l, struct io_op *op);

/* Operations queued or running whose callback has not run yet. A loop is freed only
 * at 0: until its callback runs, an operation's memory and buffer are in use. */
unsigned io_in_flight(const struct io_loop *l);

/* NULL is a no-op. Call it at io_in_flight() == 0 (cancel, then run the loop). */
void io_loop_free(struct io_loop *l);
