/* SPDX-License-Identifier: Apache-2.0 */
/*
 * task: see task.h.
 *
 * DESIGN. A task follows one path. The file at the path is `cur`; when the path
 * comes to name another file (rename rotation) or the file is deleted, cur moves to
 * the draining list: it is read to its end, and for ROTATE_WAIT_MS more in case the
 * writer has not reopened yet, then its held partial line is sent and it is
 * finished. A struct tfile lives until every record read from it is acknowledged.
 *
 * Acknowledgement tracking is agent/ack's: every record carries its batch (one per
 * read, at most batch.size lines) as opaque, and a file's checkpoint moves only over
 * batches whose records, and every record before them, Kafka acknowledged. A failed
 * delivery fails the task and its checkpoint never passes the line. A batch is
 * sealed after each read, while its last line is still in the read buffer, because
 * the checkpoint records a hash of the bytes before its offset.
 *
 * Backpressure: when librdkafka's queue is full, the tail pauses holding the line;
 * the next delivery reports resume it. The file is the buffer.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <poll.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <time.h>
#include <unistd.h>

#include "agent/ack.h"
#include "agent/conv.h"
#include "agent/clock.h"
#include "agent/kfk.h"
#include "agent/log.h"
#include "agent/task.h"
#include "config/cfg.h"
#include "config/props.h"
#include "io/io.h"
#include "io/tail.h"
#include "io/watch.h"
#include "offsets/off.h"

#define READ_SIZE         (256u * 1024u)
#define MAX_LINE          (1000u * 1000u - 64u * 1024u) /* below message.max.bytes */
#define FINGERPRINT_BYTES 1024u
#define ROTATE_WAIT_MS    5000u

struct tfile {
        struct tfile *next;
        struct task *task;
        struct tail *tail;
        uint64_t dev, ino;
        struct ack *ack;
        bool acked_dirty; /* the acknowledged position may have moved since the last checkpoint */
        uint32_t batch_lines; /* records in the open batch */
        bool finished;        /* read to the end; freed once everything is acknowledged */
        uint64_t drain_until;
};

struct task {
        const struct task_env *env;
        char *name, *file, *dir, *base, *topic;
        uint32_t batch_size;
        enum task_state state;
        struct kfk *kfk;
        struct io_op kfk_op;
        struct conv *vconv;
        struct watch_sub *sub;
        struct tfile *cur;
        struct tfile *others; /* draining and finished files */
        bool queue_full;
        bool closing; /* task_close() ran: no callback may touch files or Kafka */
        bool waiting_logged;
        int open_error_logged;
        uint64_t lines_sent, lines_acked;
};

static void task_fail(struct task *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void task_fail(struct task *t, const char *fmt, ...)
{
        char msg[1024];
        va_list ap;
        va_start(ap, fmt);
        (void)vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        if (t->state == TASK_FAILED)
                return;
        t->state = TASK_FAILED;
        log_error("task '%s': failed: %s; the task stops and its checkpoint stays before the "
                  "first record not acknowledged",
                  t->name, msg);
}

/* Seals the open batch; must run while its last line is in the read buffer. */
static void tfile_seal(struct tfile *f)
{
        struct tail_ckpt pos = {0};
        f->batch_lines = 0;
        if (!ack_end(f->ack, &pos.offset)) {
                (void)ack_seal(f->ack, NULL);
                return;
        }
        int r = tail_ckpt_fill(f->tail, &pos);
        if (r < 0) {
                /* The checkpoint keeps the offset; without a fingerprint it is checked
                 * only against the file's length on restart. */
                log_warn("task '%s': cannot fingerprint '%s': %s", f->task->name,
                         tail_path(f->tail), strerror(-r));
                pos.fp_len = 0;
                pos.tail_len = 0;
        }
        if (ack_seal(f->ack, &pos))
                f->acked_dirty = true;
}

/* ---- tail callbacks ---- */

static int task_line(void *userdata, const struct frame_line *line)
{
        struct tfile *f = userdata;
        struct task *t = f->task;

        if (t->state != TASK_RUNNING)
                return -EAGAIN;
        if (line->flags & FRAME_F_SKIPPED) {
                ack_skip(f->ack, line->end);
                return 0;
        }
        struct ack_batch *b = ack_open(f->ack);
        if (!b) {
                task_fail(t, "out of memory");
                return -EAGAIN;
        }
        const void *v;
        size_t vlen;
        if (conv_string(t->vconv, line->data, line->len, &v, &vlen) < 0) {
                task_fail(t, "out of memory converting a line");
                tfile_seal(f);
                return -EAGAIN;
        }
        int r = kfk_produce(t->kfk, NULL, 0, v, vlen, b);
        if (r < 0) {
                tfile_seal(f);
                if (r == -ENOBUFS) {
                        t->queue_full = true;
                } else if (r == -EMSGSIZE) {
                        task_fail(t,
                                  "the line ending at offset %" PRIu64 " of '%s' is %zu bytes "
                                  "after conversion, more than the producer's message.max.bytes "
                                  "(set producer.message.max.bytes, and the topic's "
                                  "max.message.bytes, higher)",
                                  line->end, tail_path(f->tail), vlen);
                } else {
                        task_fail(t, "producing to topic '%s': %s", t->topic,
                                  kfk_last_error(t->kfk));
                }
                return -EAGAIN;
        }
        ack_record(f->ack, line->end);
        t->lines_sent++;
        if (++f->batch_lines >= t->batch_size)
                tfile_seal(f);
        return 0;
}

static void task_read_done(void *userdata)
{
        tfile_seal(userdata);
}

static void task_truncated(void *userdata, uint64_t old_offset)
{
        struct tfile *f = userdata;
        tfile_seal(f);
        log_warn("task '%s': '%s' was truncated (it was read up to offset %" PRIu64
                 "): reading it again from the start",
                 f->task->name, tail_path(f->tail), old_offset);
}

static void task_read_error(void *userdata, int err)
{
        struct tfile *f = userdata;
        task_fail(f->task, "reading '%s': %s", tail_path(f->tail), strerror(-err));
}

static const struct tail_ops task_tail_ops = {
        .line = task_line,
        .read_done = task_read_done,
        .truncated = task_truncated,
        .error = task_read_error,
};

/* ---- Kafka callbacks ---- */

static void task_dr(void *userdata, void *msg_opaque, int err, const char *errstr)
{
        struct task *t = userdata;
        struct ack_batch *b = msg_opaque;
        struct tfile *f = ack_userdata(ack_of(b));

        if (ack_done(b, err == 0))
                f->acked_dirty = true;
        if (err) {
                if (!kfk_err_is_purge(err))
                        task_fail(t, "Kafka did not acknowledge a record of '%s' (topic '%s'): %s",
                                  tail_path(f->tail), t->topic, errstr);
                return;
        }
        t->lines_acked++;
}

static void task_kafka_error(void *userdata, bool fatal, const char *errstr)
{
        struct task *t = userdata;
        if (fatal)
                task_fail(t, "fatal producer error: %s", errstr);
        else
                log_warn("task '%s': kafka: %s (records wait, reading pauses when the queue is "
                         "full)",
                         t->name, errstr);
}

static void task_resume_all(struct task *t)
{
        if (t->cur)
                tail_resume(t->cur->tail);
        for (struct tfile *f = t->others; f; f = f->next)
                if (!f->finished)
                        tail_resume(f->tail);
}

static void task_kfk_ready(struct io_op *op, int res)
{
        struct task *t = (struct task *)((char *)op - offsetof(struct task, kfk_op));
        if (t->closing)
                return;
        if (res < 0) {
                task_fail(t, "waiting for Kafka's delivery reports: %s", strerror(-res));
                return;
        }
        kfk_serve(t->kfk);
        if (t->queue_full && t->state == TASK_RUNNING) {
                t->queue_full = false;
                task_resume_all(t);
        }
        op->cb = task_kfk_ready;
        if (io_poll(t->env->loop, op, kfk_event_fd(t->kfk), POLLIN) < 0)
                task_fail(t, "cannot wait for Kafka's delivery reports");
}

/* ---- files ---- */

static void tfile_free(struct tfile *f)
{
        if (!f)
                return;
        tail_free(f->tail);
        ack_free(f->ack);
        free(f);
}

static void task_watch_cb(void *userdata, const char *name, uint32_t mask);

static void task_subscribe(struct task *t)
{
        if (t->sub)
                return;
        /* Failure is fine: the periodic scan looks at the path too. */
        (void)watch_add(t->env->watch, t->dir, t->base, task_watch_cb, t, &t->sub);
}

static bool task_tracks(const struct task *t, uint64_t dev, uint64_t ino)
{
        if (t->cur && t->cur->dev == dev && t->cur->ino == ino)
                return true;
        for (const struct tfile *f = t->others; f; f = f->next)
                if (f->dev == dev && f->ino == ino)
                        return true;
        return false;
}

/* Opens path and starts reading it where its checkpoint says (if the checkpoint
 * still matches the file), or from the start. Returns 0 and *ret_f, -EEXIST (a file
 * the task already reads), -EINVAL (not a regular file), -errno. */
static int tfile_open(struct task *t, const char *path, struct tfile **ret_f)
{
        int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (fd < 0)
                return -errno;
        /* O_NONBLOCK kept a FIFO from blocking the open; io_uring must be allowed to
         * wait for the disk on a regular file. */
        (void)fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);

        struct tfile *f = calloc(1, sizeof(*f));
        if (!f) {
                close(fd);
                return -ENOMEM;
        }
        f->task = t;
        struct tail_opts to = {
                .read_size = READ_SIZE,
                .max_line = MAX_LINE,
                .long_policy = FRAME_LONG_SPLIT,
                .fingerprint_bytes = FINGERPRINT_BYTES,
        };
        int r = tail_new(t->env->loop, fd, path, &to, &task_tail_ops, f, &f->tail);
        if (r < 0) {
                close(fd);
                free(f);
                return r;
        }
        tail_identity(f->tail, &f->dev, &f->ino);
        if (task_tracks(t, f->dev, f->ino)) {
                tfile_free(f);
                return -EEXIST;
        }

        struct off_rec rec;
        struct tail_ckpt start = {0};
        if (off_get(t->env->store, t->name, f->dev, f->ino, &rec) == 0) {
                struct tail_ckpt ck = {
                        .offset = rec.offset,
                        .fp = rec.fp,
                        .fp_len = rec.fp_len,
                        .tail_len = rec.tail_len,
                        .tail_hash = rec.tail_hash,
                };
                if (tail_ckpt_matches(f->tail, &ck)) {
                        start = ck;
                        log_info("task '%s': reading '%s' (inode %" PRIu64 ") from offset %" PRIu64
                                 " (checkpoint)",
                                 t->name, path, f->ino, start.offset);
                } else {
                        log_warn("task '%s': the checkpoint of '%s' (offset %" PRIu64
                                 ") does not match the file, which was replaced or rewritten: "
                                 "reading it from the start",
                                 t->name, path, rec.offset);
                }
        } else {
                log_info("task '%s': reading '%s' (inode %" PRIu64
                         ") from the start (no checkpoint)",
                         t->name, path, f->ino);
        }
        r = ack_new(&start, f, &f->ack);
        if (r < 0 || (r = tail_start(f->tail, start.offset)) < 0) {
                tfile_free(f);
                return r;
        }
        *ret_f = f;
        return 0;
}

/* Opens the file at the path, or notes that it is not there yet. */
static void task_open(struct task *t)
{
        struct tfile *f = NULL;
        int r = tfile_open(t, t->file, &f);
        if (r == 0) {
                t->cur = f;
                t->waiting_logged = false;
                t->open_error_logged = 0;
        } else if (r == -ENOENT) {
                if (!t->waiting_logged)
                        log_info("task '%s': waiting for '%s' to appear", t->name, t->file);
                t->waiting_logged = true;
        } else if (r == -ENOMEM) {
                task_fail(t, "out of memory");
        } else if (r != -EEXIST && t->open_error_logged != -r) {
                log_warn("task '%s': cannot read '%s': %s; trying again", t->name, t->file,
                         r == -EINVAL ? "not a regular file" : strerror(-r));
                t->open_error_logged = -r;
        }
}

/* The file at the path was renamed to name in the same directory: if it is one the
 * task never opened (it came and went between two looks at the path), read it as a
 * rotated file. */
static void task_adopt(struct task *t, const char *name, uint64_t now_ms)
{
        char path[4096];
        if (snprintf(path, sizeof(path), "%s/%s", t->dir, name) >= (int)sizeof(path))
                return;
        struct tfile *f = NULL;
        int r = tfile_open(t, path, &f);
        if (r < 0) {
                if (r != -EEXIST)
                        log_warn("task '%s': '%s' was renamed to '%s' before it was read, "
                                 "which cannot be opened: %s",
                                 t->name, t->file, path, strerror(-r));
                return;
        }
        log_info("task '%s': '%s' was renamed to '%s' before it was read: reading it", t->name,
                 t->file, path);
        f->drain_until = now_ms + ROTATE_WAIT_MS;
        f->next = t->others;
        t->others = f;
}

/* Looks at the path: rotation, deletion, a file to open. */
static void task_check_path(struct task *t, uint64_t now_ms)
{
        task_subscribe(t);
        if (t->cur) {
                enum tail_change ch = tail_check(t->cur->tail);
                log_debug("task '%s': '%s' (inode %" PRIu64 ") checked: %d", t->name, t->file,
                          t->cur->ino, (int)ch);
                if (ch == TAIL_MOVED || ch == TAIL_DELETED) {
                        struct tfile *f = t->cur;
                        log_info("task '%s': '%s' was %s: reading the old file (inode %" PRIu64
                                 ") to its end",
                                 t->name, t->file, ch == TAIL_MOVED ? "rotated" : "deleted",
                                 f->ino);
                        f->drain_until = now_ms + ROTATE_WAIT_MS;
                        f->next = t->others;
                        t->others = f;
                        t->cur = NULL;
                }
        }
        if (!t->cur && t->state == TASK_RUNNING)
                task_open(t);
}

static void task_watch_cb(void *userdata, const char *name, uint32_t mask)
{
        struct task *t = userdata;
        if (!name && (mask & (IN_IGNORED | IN_DELETE_SELF | IN_MOVE_SELF))) {
                /* The directory went away: subscribe again when it is back. */
                watch_remove(t->env->watch, t->sub);
                t->sub = NULL;
        }
        if (name && (mask & IN_MODIFY) && t->cur) {
                tail_wake(t->cur->tail);
                return;
        }
        uint64_t now = clock_ms();
        task_check_path(t, now);
        if (name && (mask & IN_MOVED_TO) && strcmp(name, t->base) != 0 && t->state == TASK_RUNNING)
                task_adopt(t, name, now);
}

/* ---- task ---- */

static int conv_from(const struct cfg *worker, const struct cfg *conn, const char *which,
                     struct conv **ret)
{
        /* As Connect: a connector that names its converter also gives its settings. */
        const struct cfg *c = *cfg_str(conn, which) ? conn : worker;
        char key[64];
        snprintf(key, sizeof(key), "%s.schemas.enable", which);
        enum conv_kind kind;
        if (conv_kind_from_class(cfg_str(c, which), &kind) < 0)
                return -EINVAL;
        return conv_new(kind, cfg_bool(c, key), ret);
}

int task_new(const struct task_env *env, const struct cfg *conn, char *errbuf, size_t errlen,
             struct task **ret_task)
{
        struct task *t = calloc(1, sizeof(*t));
        if (!t)
                return -ENOMEM;
        t->env = env;
        t->state = TASK_RUNNING;
        t->name = strdup(cfg_str(conn, "name"));
        t->file = strdup(cfg_str(conn, "file"));
        t->topic = strdup(cfg_str(conn, "topic"));
        char *d = strdup(cfg_str(conn, "file")), *b = strdup(cfg_str(conn, "file"));
        if (d && b) {
                t->dir = strdup(dirname(d));
                t->base = strdup(basename(b));
        }
        free(d);
        free(b);
        int r = -ENOMEM;
        if (!t->name || !t->file || !t->topic || !t->dir || !t->base)
                goto fail;
        t->batch_size = (uint32_t)cfg_int(conn, "batch.size");

        r = conv_from(env->worker, conn, "value.converter", &t->vconv);
        if (r < 0) {
                snprintf(errbuf, errlen, "value.converter: %s", strerror(-r));
                goto fail;
        }

        char client_id[512];
        const char *prefix = cfg_str(env->worker, "client.id");
        snprintf(client_id, sizeof(client_id), "%s%s%s", *prefix ? prefix : "ringtail", "-",
                 t->name);
        struct kfk_conf kc = {
                .bootstrap = env->bootstrap,
                .client_id = client_id,
                .topic = t->topic,
                .worker = cfg_props(env->worker),
                .connector = cfg_props(conn),
                .dr = task_dr,
                .error = task_kafka_error,
                .userdata = t,
        };
        r = kfk_producer_new(&kc, errbuf, errlen, &t->kfk);
        if (r < 0)
                goto fail;
        t->kfk_op.cb = task_kfk_ready;
        r = io_poll(env->loop, &t->kfk_op, kfk_event_fd(t->kfk), POLLIN);
        if (r < 0) {
                snprintf(errbuf, errlen, "cannot wait for delivery reports: %s", strerror(-r));
                goto fail;
        }
        *ret_task = t;
        return 0;
fail:
        task_free(t);
        return r;
}

void task_start(struct task *t, uint64_t now_ms)
{
        log_info("task '%s': FileStreamSource '%s' -> topic '%s'", t->name, t->file, t->topic);
        task_check_path(t, now_ms);
}

void task_scan(struct task *t, uint64_t now_ms)
{
        if (t->state == TASK_RUNNING)
                task_check_path(t, now_ms);
        for (struct tfile *f = t->others; f; f = f->next) {
                if (f->finished)
                        continue;
                (void)tail_check(f->tail); /* wakes it if the writer still appends */
                if (t->state != TASK_RUNNING || tail_get_state(f->tail) != TAIL_IDLE ||
                    now_ms < f->drain_until)
                        continue;
                /* The writer has moved on: its last line will get no newline. */
                if (tail_flush(f->tail) == -EAGAIN)
                        continue;
                f->finished = true;
                log_info("task '%s': finished the rotated file (inode %" PRIu64
                         ") at offset %" PRIu64,
                         t->name, f->ino, tail_read_offset(f->tail));
        }
}

/* Writes f's acknowledged offset to the store if it moved. Returns 1, 0 or -errno. */
static int tfile_record(struct task *t, struct tfile *f)
{
        if (!f->acked_dirty)
                return 0;
        const struct tail_ckpt *pos = ack_position(f->ack);
        struct off_rec rec = {
                .dev = f->dev,
                .ino = f->ino,
                .fp = pos->fp,
                .fp_len = pos->fp_len,
                .tail_len = pos->tail_len,
                .tail_hash = pos->tail_hash,
                .offset = pos->offset,
                .path = tail_path(f->tail),
        };
        int r = off_set(t->env->store, t->name, &rec);
        if (r < 0)
                return r;
        f->acked_dirty = false;
        return 1;
}

int task_checkpoint(struct task *t)
{
        int changed = 0, r;

        if (t->cur) {
                r = tfile_record(t, t->cur);
                if (r < 0)
                        return r;
                changed += r;
        }
        for (struct tfile **fp = &t->others; *fp;) {
                struct tfile *f = *fp;
                if (f->finished && ack_is_idle(f->ack)) {
                        /* Done with it: the path now belongs to another file. */
                        (void)off_del(t->env->store, t->name, f->dev, f->ino);
                        *fp = f->next;
                        tfile_free(f);
                        changed++;
                        continue;
                }
                r = tfile_record(t, f);
                if (r < 0)
                        return r;
                changed += r;
                fp = &f->next;
        }
        return changed;
}

void task_stop(struct task *t)
{
        if (t->state == TASK_RUNNING)
                t->state = TASK_STOPPING;
        if (t->cur)
                tfile_seal(t->cur);
        for (struct tfile *f = t->others; f; f = f->next)
                tfile_seal(f);
}

size_t task_drain(struct task *t, int timeout_ms)
{
        if (kfk_in_flight(t->kfk) > 0)
                (void)kfk_flush(t->kfk, timeout_ms);
        size_t left = kfk_in_flight(t->kfk);
        /* What is left will not be acknowledged now: its reports come as errors and
         * the checkpoints stay before it. */
        if (left)
                kfk_purge(t->kfk);
        log_info("task '%s': %" PRIu64 " lines sent, %" PRIu64 " acknowledged%s", t->name,
                 t->lines_sent, t->lines_acked,
                 left ? "; the rest is read and sent again after a restart" : "");
        return left;
}

void task_close(struct task *t)
{
        t->closing = true;
        if (t->kfk)
                (void)io_cancel(t->env->loop, &t->kfk_op);
        if (t->sub) {
                watch_remove(t->env->watch, t->sub);
                t->sub = NULL;
        }
        tfile_free(t->cur);
        t->cur = NULL;
        while (t->others) {
                struct tfile *f = t->others;
                t->others = f->next;
                tfile_free(f);
        }
}

enum task_state task_get_state(const struct task *t)
{
        return t->state;
}

const char *task_name(const struct task *t)
{
        return t->name;
}

void task_free(struct task *t)
{
        if (!t)
                return;
        if (!t->closing)
                task_close(t);
        kfk_free(t->kfk);
        conv_free(t->vconv);
        free(t->name);
        free(t->file);
        free(t->dir);
        free(t->base);
        free(t->topic);
        free(t);
}
