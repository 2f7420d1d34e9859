/* SPDX-License-Identifier: Apache-2.0 */
/*
 * task: see task.h.
 *
 * DESIGN. A task tracks files, not paths. Each tracked file (struct tfile) is known
 * by its identity (device + inode, checked against its fingerprint whenever it is
 * opened) and has a role:
 *
 *   ACTIVE   a path the globs match names it: read as it grows;
 *   ROTATED  renamed to a name outside the globs, or out of sight: read to its end,
 *            then finished once idle for close.inactive.ms;
 *   DELETED  no name left: its open descriptor is drained, then finished;
 *   DONE     finished: freed (and its checkpoint deleted) once Kafka acknowledged
 *            everything read from it.
 *
 * Three hash tables find a file: by identity, by the path it was found at, and by
 * the path its symlink points to (Kubernetes' /var/log/containers/ symlinks). Each
 * watched directory (struct tdir) has one inotify subscription for all its
 * entries; an event about an entry is a hash lookup. Directories are watched when
 * the globs can match in or below them, or when a tracked file (or its symlink's
 * target) lives there.
 *
 * A file may be closed while it is tracked: when idle for close.inactive.ms, or to
 * stay under max.open.files. It keeps its acknowledgement tracker and `resume`, the
 * position just past the last line read and the identity there, and is opened again
 * when it grows; the checkpoint check (fingerprint and the hash of the bytes before
 * the offset) tells a grown file from a replaced one.
 *
 * Rotation: rename moves a file's role from ACTIVE to ROTATED (or keeps it ACTIVE
 * if the new name still matches). Truncation (seen by the tailer) restarts the file
 * at 0; before that, its directory is searched for a copy (copytruncate): a file
 * not tracked yet whose fingerprint and bytes before the read position match the
 * truncated file's last sealed position is read from that position as ROTATED. At
 * start, every checkpoint of the task is matched against its directory by inode
 * (under any name) and, failing that, by fingerprint (a copy), so rotations that
 * happened while the agent was stopped are finished.
 *
 * Acknowledgement tracking is agent/ack's: every record carries its batch (at most
 * batch.size lines of one file) as opaque, and a file's checkpoint moves only over
 * batches whose records, and every record before them, Kafka acknowledged.
 *
 * Backpressure: when librdkafka's queue is full (buffer.memory), the tailer pauses
 * holding the line; the next delivery reports resume it. The file is the buffer.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <jansson.h>
#include <xxhash.h>

#include "agent/ack.h"
#include "agent/clock.h"
#include "agent/conv.h"
#include "agent/kfk.h"
#include "agent/log.h"
#include "agent/task.h"
#include "config/cfg.h"
#include "config/props.h"
#include "io/glob.h"
#include "io/io.h"
#include "io/multiline.h"
#include "io/rbuf.h"
#include "io/tail.h"
#include "io/watch.h"
#include "offsets/off.h"

#define READ_SIZE       (256u * 1024u)
#define DELETED_WAIT_MS 1000u  /* a deleted file read to its end is finished this much later */
#define TAIL_SCAN_BYTES 65536u /* read.from=end looks this far back for the last newline */
#define NEVER           UINT64_MAX
/* Reading waits this long for acknowledgements to free read buffers (see
 * task_borrow_max()), then copies lines. */
#define TASK_BORROW_WAIT_MS 500u

#define container_of(p, type, member) ((type *)((char *)(p)-offsetof(type, member)))

/* ---- a small chained hash table of intrusive nodes ---- */

struct hnode {
        struct hnode *next;
        uint64_t hash;
};

struct htab {
        struct hnode **b;
        size_t nb, n;
};

static int htab_add(struct htab *h, struct hnode *n, uint64_t hash)
{
        if (h->n + 1 > h->nb) {
                size_t nb = h->nb ? h->nb * 2 : 64;
                struct hnode **b = calloc(nb, sizeof(*b));
                if (!b)
                        return -ENOMEM;
                for (size_t i = 0; i < h->nb; i++) {
                        while (h->b[i]) {
                                struct hnode *x = h->b[i];
                                h->b[i] = x->next;
                                x->next = b[x->hash & (nb - 1)];
                                b[x->hash & (nb - 1)] = x;
                        }
                }
                free(h->b);
                h->b = b;
                h->nb = nb;
        }
        n->hash = hash;
        n->next = h->b[hash & (h->nb - 1)];
        h->b[hash & (h->nb - 1)] = n;
        h->n++;
        return 0;
}

static void htab_del(struct htab *h, struct hnode *n)
{
        if (!h->nb)
                return;
        /* Unlinking a node that is not in the table is a no-op. */
        for (struct hnode **p = &h->b[n->hash & (h->nb - 1)]; *p; p = &(*p)->next) {
                if (*p == n) {
                        *p = n->next;
                        h->n--;
                        return;
                }
        }
}

static struct hnode *htab_first(const struct htab *h, uint64_t hash)
{
        struct hnode *n = h->nb ? h->b[hash & (h->nb - 1)] : NULL;
        while (n && n->hash != hash)
                n = n->next;
        return n;
}

static struct hnode *htab_next(struct hnode *n)
{
        uint64_t hash = n->hash;
        for (n = n->next; n && n->hash != hash;)
                n = n->next;
        return n;
}

static uint64_t hash_id(uint64_t dev, uint64_t ino)
{
        uint64_t k[2] = {dev, ino};
        return XXH3_64bits(k, sizeof(k));
}

static uint64_t hash_str(const char *s)
{
        return XXH3_64bits(s, strlen(s));
}

/* ---- state ---- */

enum role {
        ROLE_ACTIVE,
        ROLE_ROTATED,
        ROLE_DELETED,
        ROLE_DONE,
};

struct tdir {
        struct tdir *next;
        struct task *task;
        char *path;
        struct watch_sub *sub;
        unsigned refs;         /* tracked files living here (their path or symlink target) */
        bool globbed;          /* the globs can match in or below it (seen by the last walk) */
        char *moved_from;      /* a wanted name renamed away (the path it was wanted by) */
        uint32_t moved_cookie; /* inotify's cookie of that rename */
};

struct tfile {
        struct task *task;
        struct tfile *prev, *next;         /* every tracked file */
        struct tfile *lru_prev, *lru_next; /* open files, least recently active first */
        struct hnode n_id, n_path, n_target;
        bool in_path, in_target;
        char *path;   /* where it is (or was last seen); may be a symlink */
        char *origin; /* the wanted path it was found at: its headers, key and checkpoint */
        char *target; /* the file a symlink path resolved to, else NULL */
        struct tdir *dir, *tdir;
        uint64_t dev, ino;
        enum role role;
        struct tail *tail;       /* NULL while closed */
        struct tail_ckpt resume; /* closed: where to read on from, and the identity there */
        uint64_t closed_size;    /* closed: how far it had been read (a partial line too) */
        bool verify;             /* resume comes from a checkpoint: check it on open */
        bool waiting_fd;         /* wants to be opened, max.open.files reached */
        bool at_end;             /* no checkpoint, read.from=end: start at the last line end */
        bool pinned;             /* inside one of its tail's callbacks: not to be closed */
        struct ack *ack;
        bool acked_dirty; /* the acknowledged position may have moved since the last checkpoint */
        uint32_t batch_lines;
        struct ml *ml;
        bool in_split;       /* the last line taken was a piece of a longer line */
        uint64_t next_start; /* file offset of the next line's first byte */
        uint64_t active_ms;  /* last time it grew or was read */
        uint64_t seen_gen;   /* walk generation that last saw it at its path */
        /* exactly-once */
        struct tail_ckpt committed; /* position of the last committed transaction */
        struct tail_ckpt txn_pos;   /* position written into the open transaction */
        bool txn_dirty;             /* records of it in the open transaction */
        bool txn_tombstone;         /* its tombstone is in the open transaction */
        bool tombstoned;            /* its tombstone is committed */
};

struct task_stats {
        uint64_t lines_sent, lines_acked, bytes_sent;
        uint64_t txn_committed, txn_aborted;
        uint64_t split, truncated, skipped, empty_skipped;
        uint64_t files_opened, files_rotated, files_truncated, copies_found, files_finished;
};

struct task {
        const struct task_env *env;
        char *name, *topic;
        char *file;       /* FileStreamSource: the absolute path of `file` */
        bool tail_source; /* else FileStreamSource */
        enum task_state state;

        /* settings */
        uint32_t batch_size;
        struct tail_opts topts;
        bool read_from_end, skip_empty, headers, key_path, key_host;
        uint64_t partial_flush_ms, close_inactive_ms, scan_ms, ml_timeout_ms;
        uint32_t max_open;
        struct ml_opts mlo;
        char *ml_pattern;
        char host[256];

        /* exactly-once */
        bool eos, in_txn;
        char *txn_id;
        uint64_t txn_interval_ms; /* 0: a transaction per read (transaction.boundary=poll) */
        uint64_t txn_due;

        struct globset *globs;
        struct kfk *kfk;
        struct io_op kfk_op;
        struct conv *vconv;

        struct tdir *dirs;
        struct tfile *files; /* every tracked file */
        struct tfile *lru_head, *lru_tail;
        struct htab by_id, by_path, by_target, links;
        uint32_t n_open, n_waiting;
        uint64_t gen; /* walk generation */

        uint64_t next_due, next_scan;
        bool starting; /* the first walk: read.from applies */
        bool queue_full;
        /* Read buffers the task's records in flight keep alive (io/rbuf.h), and the
         * most they may take before reading waits (see task_borrow_max()). */
        struct rbuf_acct borrowed;
        size_t borrow_max;
        uint64_t borrow_wait_since; /* clock_ms() the bound was first met, 0: below it */
        bool fatal;   /* the producer failed for good: nothing in flight will be delivered */
        bool closing; /* task_close() ran: no callback may touch files or Kafka */
        struct task_stats st;
        char failure[1024];    /* TASK_FAILED: why */
        char kafka_error[512]; /* a connection problem, until Kafka acknowledges again */
        uint64_t kafka_error_since, kafka_error_mono; /* wall clock ms, clock_ms() */
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
        snprintf(t->failure, sizeof(t->failure), "%s", msg);
        log_error("task '%s': failed: %s; the task stops and its checkpoint stays before the "
                  "first record not acknowledged",
                  t->name, msg);
}

/* Deadlines that need no precision (closing idle files, finishing rotated ones) are
 * rounded up to a whole second, so that thousands of files idle since different
 * moments are served by one tick a second, not one tick each. */
static uint64_t coarse(uint64_t when)
{
        return (when / 1000 + 1) * 1000;
}

static void task_due(struct task *t, uint64_t when)
{
        if (when < t->next_due)
                t->next_due = when;
}

/* ---- directories ---- */

static void tdir_event(void *userdata, const char *name, uint32_t mask, uint32_t cookie);

static struct tdir *tdir_get(struct task *t, const char *path)
{
        for (struct tdir *d = t->dirs; d; d = d->next)
                if (strcmp(d->path, path) == 0)
                        return d;
        struct tdir *d = calloc(1, sizeof(*d));
        if (!d || !(d->path = strdup(path))) {
                free(d);
                return NULL;
        }
        d->task = t;
        d->next = t->dirs;
        t->dirs = d;
        return d;
}

/* Watches d (again) if it is not watched; failure is fine: the rescan looks too. */
static void tdir_watch(struct tdir *d)
{
        if (!d->sub)
                (void)watch_add(d->task->env->watch, d->path, NULL, tdir_event, d, &d->sub);
}

/* A directory no file needs any more stays watched until the next rescan drops
 * it: events in flight may still name it, and a rotation usually brings the next
 * file to the same directory at once. */
static void tdir_unref(struct tdir *d)
{
        if (d && d->refs > 0)
                d->refs--;
}

/* The directory part of path, as a tdir with a reference taken. */
static struct tdir *tdir_of(struct task *t, const char *path)
{
        char dir[PATH_MAX];
        const char *slash = strrchr(path, '/');
        size_t n = slash ? (size_t)(slash - path) : 0;
        if (n == 0)
                n = 1; /* "/x" lives in "/" */
        if (n >= sizeof(dir))
                return NULL;
        memcpy(dir, slash ? path : "/", n);
        dir[n] = '\0';
        struct tdir *d = tdir_get(t, dir);
        if (d) {
                d->refs++;
                tdir_watch(d);
        }
        return d;
}

/* ---- tracked files: tables ---- */

static struct tfile *find_id(struct task *t, uint64_t dev, uint64_t ino)
{
        for (struct hnode *n = htab_first(&t->by_id, hash_id(dev, ino)); n; n = htab_next(n)) {
                struct tfile *f = container_of(n, struct tfile, n_id);
                if (f->dev == dev && f->ino == ino)
                        return f;
        }
        return NULL;
}

static struct tfile *find_path(struct task *t, const char *path)
{
        for (struct hnode *n = htab_first(&t->by_path, hash_str(path)); n; n = htab_next(n)) {
                struct tfile *f = container_of(n, struct tfile, n_path);
                if (strcmp(f->path, path) == 0)
                        return f;
        }
        return NULL;
}

static struct tfile *find_target(struct task *t, const char *path)
{
        for (struct hnode *n = htab_first(&t->by_target, hash_str(path)); n; n = htab_next(n)) {
                struct tfile *f = container_of(n, struct tfile, n_target);
                if (strcmp(f->target, path) == 0)
                        return f;
        }
        return NULL;
}

/* Symlink targets: a file a symlink the globs match points at (by path) stays wanted
 * after the file it named rotated away, so that events about it (possibly read late,
 * after the next file took its name) still lead back to the link. Only grows: a stale
 * entry costs one look at a link that names something else. */
struct link_target {
        struct hnode n;
        char *target, *link;
};

static const char *link_of(struct task *t, const char *target)
{
        for (struct hnode *n = htab_first(&t->links, hash_str(target)); n; n = htab_next(n)) {
                struct link_target *l = container_of(n, struct link_target, n);
                if (strcmp(l->target, target) == 0)
                        return l->link;
        }
        return NULL;
}

static void link_add(struct task *t, const char *target, const char *link)
{
        if (link_of(t, target))
                return;
        struct link_target *l = calloc(1, sizeof(*l));
        if (l && (l->target = strdup(target)) && (l->link = strdup(link)) &&
            htab_add(&t->links, &l->n, hash_str(target)) == 0)
                return;
        if (l) {
                free(l->target);
                free(l->link);
        }
        free(l);
}

static void links_free(struct task *t)
{
        for (size_t i = 0; i < t->links.nb; i++) {
                while (t->links.b[i]) {
                        struct link_target *l = container_of(t->links.b[i], struct link_target, n);
                        t->links.b[i] = l->n.next;
                        free(l->target);
                        free(l->link);
                        free(l);
                }
        }
        free(t->links.b);
}

static void lru_unlink(struct task *t, struct tfile *f)
{
        if (f->lru_prev)
                f->lru_prev->lru_next = f->lru_next;
        else if (t->lru_head == f)
                t->lru_head = f->lru_next;
        if (f->lru_next)
                f->lru_next->lru_prev = f->lru_prev;
        else if (t->lru_tail == f)
                t->lru_tail = f->lru_prev;
        f->lru_prev = f->lru_next = NULL;
}

/* f was active just now: to the back of the eviction order. */
static void lru_touch(struct task *t, struct tfile *f)
{
        if (!f->tail || t->lru_tail == f)
                return;
        lru_unlink(t, f);
        f->lru_prev = t->lru_tail;
        if (t->lru_tail)
                t->lru_tail->lru_next = f;
        else
                t->lru_head = f;
        t->lru_tail = f;
}

/* Drops f's path (and symlink target) from the tables: the path names another
 * file now, or nothing. f->path stays as the last name seen, for messages. */
static void tfile_unlink_path(struct task *t, struct tfile *f)
{
        if (f->in_path) {
                htab_del(&t->by_path, &f->n_path);
                f->in_path = false;
        }
        if (f->in_target) {
                htab_del(&t->by_target, &f->n_target);
                f->in_target = false;
        }
        free(f->target);
        f->target = NULL;
        tdir_unref(f->tdir);
        f->tdir = NULL;
}

/* Sets f's path (found by a glob or a rename), resolving a symlink and watching the
 * directories involved. Returns 0 or -ENOMEM. */
static int tfile_set_path(struct task *t, struct tfile *f, const char *path)
{
        char *p = strdup(path);
        if (!p)
                return -ENOMEM;
        tfile_unlink_path(t, f);
        free(f->path);
        f->path = p;
        tdir_unref(f->dir);
        f->dir = tdir_of(t, p);
        if (htab_add(&t->by_path, &f->n_path, hash_str(p)) < 0)
                return -ENOMEM;
        f->in_path = true;
        struct stat lst;
        if (lstat(p, &lst) == 0 && S_ISLNK(lst.st_mode)) {
                char *target = realpath(p, NULL);
                if (target && strcmp(target, p) != 0) {
                        f->target = target;
                        link_add(t, target, p);
                        if (htab_add(&t->by_target, &f->n_target, hash_str(target)) < 0)
                                return -ENOMEM;
                        f->in_target = true;
                        f->tdir = tdir_of(t, target);
                } else {
                        free(target);
                }
        }
        return 0;
}

/* ---- records ---- */

/* Seals the open batch of f (the position and identity at its end are recorded). */
static void tfile_seal(struct tfile *f)
{
        struct tail_ckpt pos = {0};
        f->batch_lines = 0;
        if (!ack_end(f->ack, &pos.offset)) {
                (void)ack_seal(f->ack, NULL);
                return;
        }
        if (f->tail) {
                int r = tail_ckpt_fill(f->tail, &pos);
                if (r < 0) {
                        /* The checkpoint keeps the offset; without a fingerprint it is
                         * checked only against the file's length on restart. */
                        log_warn("task '%s': cannot fingerprint '%s': %s", f->task->name, f->path,
                                 strerror(-r));
                        pos.fp_len = 0;
                        pos.tail_len = 0;
                }
        } else {
                pos.fp = f->resume.fp;
                pos.fp_len = f->resume.fp_len;
        }
        if (ack_seal(f->ack, &pos))
                f->acked_dirty = true;
}

/* Opens a transaction (exactly-once). Returns 0 or -1 (the task failed). */
static int task_txn_begin(struct task *t)
{
        char err[512];
        int r = kfk_txn_begin(t->kfk, err, sizeof(err));
        if (r < 0) {
                task_fail(t, "cannot begin a transaction (transactional.id '%s'): %s", t->txn_id,
                          err);
                return -1;
        }
        t->in_txn = true;
        t->txn_due = clock_ms() + t->txn_interval_ms;
        return 0;
}

/* Reading pauses until Kafka's next callbacks (task_kfk_serve()), or at the latest at
 * due: records in flight must be acknowledged first (a full queue, or read buffers at
 * their bound). */
static void task_wait_for_room(struct task *t, uint64_t due)
{
        t->queue_full = true;
        task_due(t, due);
}

/* Produces one record of f covering [start, end); buf is the read buffer data lies
 * in, or NULL (a joined multiline record). Returns 0, or -EAGAIN when it could not be
 * produced (queue full: retried after delivery reports; or failed). */
static int tfile_produce(struct tfile *f, const char *data, size_t len, uint64_t start,
                         uint64_t end, struct rbuf *buf)
{
        struct task *t = f->task;
        const void *v;
        size_t vlen;
        if (conv_string(t->vconv, data, len, &v, &vlen) < 0) {
                task_fail(t, "out of memory converting a line");
                tfile_seal(f);
                return -EAGAIN;
        }
        /* A value that is the line itself, unkeyed and without headers, goes to
         * librdkafka uncopied: its batch keeps the read buffer (see io/rbuf.h). */
        bool borrow = buf && !t->key_path && !t->key_host && !t->headers &&
                      (const char *)v >= data && (const char *)v + vlen <= data + len;
        if (borrow && t->borrowed.retired >= t->borrow_max) {
                /* Waits as for a full queue: acknowledgements free buffers. Unless
                 * they do not come (a partition's leader down while the others take
                 * records): then lines are copied until enough buffers are free. */
                uint64_t now = clock_ms();
                if (!t->borrow_wait_since)
                        t->borrow_wait_since = now;
                if (now - t->borrow_wait_since < TASK_BORROW_WAIT_MS) {
                        tfile_seal(f);
                        task_wait_for_room(t, t->borrow_wait_since + TASK_BORROW_WAIT_MS);
                        return -EAGAIN;
                }
                borrow = false;
        } else if (borrow) {
                t->borrow_wait_since = 0;
        }
        struct rbuf *held = ack_held(f->ack);
        if (borrow && held && held != buf)
                tfile_seal(f); /* a batch holds one buffer */
        struct ack_batch *b = ack_open(f->ack);
        if (!b) {
                task_fail(t, "out of memory");
                return -EAGAIN;
        }
        const char *key = NULL;
        size_t klen = 0;
        if (t->key_path) {
                key = f->origin;
                klen = strlen(key);
        } else if (t->key_host) {
                key = t->host;
                klen = strlen(key);
        }
        struct kfk_header h[3];
        size_t nh = 0;
        char off[24];
        if (t->headers) {
                int n = snprintf(off, sizeof(off), "%" PRIu64, start);
                h[0] = (struct kfk_header){"file.path", f->origin, strlen(f->origin)};
                h[1] = (struct kfk_header){"file.offset", off, (size_t)n};
                h[2] = (struct kfk_header){"host.name", t->host, strlen(t->host)};
                nh = 3;
        }
        if (t->eos && !t->in_txn && task_txn_begin(t) < 0) {
                tfile_seal(f);
                return -EAGAIN;
        }
        int r;
        if (borrow) {
                ack_hold(f->ack, buf);
                r = kfk_produce_borrowed(t->kfk, v, vlen, b);
        } else {
                r = kfk_produce_hdrs(t->kfk, key, klen, v, vlen, h, nh, b);
        }
        if (r < 0) {
                tfile_seal(f);
                if (r == -ENOBUFS) {
                        task_wait_for_room(t, clock_ms() + 1000);
                } else if (r == -EMSGSIZE) {
                        task_fail(t,
                                  "the record ending at offset %" PRIu64 " of '%s' is %zu bytes "
                                  "after conversion, more than the producer's message.max.bytes "
                                  "(lower max.line.bytes, or set producer.message.max.bytes and "
                                  "the topic's max.message.bytes higher)",
                                  end, f->path, vlen);
                } else {
                        t->fatal = t->fatal || r == -ENOTRECOVERABLE;
                        task_fail(t, "producing to topic '%s': %s", t->topic,
                                  r == -ENOMEM ? "out of memory" : kfk_last_error(t->kfk));
                }
                return -EAGAIN;
        }
        ack_record(f->ack, end);
        f->txn_dirty = true;
        t->st.lines_sent++;
        t->st.bytes_sent += vlen;
        if (++f->batch_lines >= t->batch_size)
                tfile_seal(f);
        return 0;
}

/* Sends f's pending multiline record, if any. Returns 0 or -EAGAIN. */
static int tfile_emit_ml(struct tfile *f)
{
        struct ml_record rec;
        if (!f->ml || !ml_pending(f->ml, &rec))
                return 0;
        if (tfile_produce(f, rec.data, rec.len, rec.start, rec.end, NULL) < 0)
                return -EAGAIN;
        ml_clear(f->ml);
        return 0;
}

static bool tfile_ml_pending(const struct tfile *f)
{
        struct ml_record rec;
        return f->ml && ml_pending(f->ml, &rec);
}

/* ---- tail callbacks ---- */

static int task_line(void *userdata, const struct frame_line *line)
{
        struct tfile *f = userdata;
        struct task *t = f->task;

        if (t->state != TASK_RUNNING)
                return -EAGAIN;
        uint64_t start = f->next_start;
        bool piece = f->in_split || (line->flags & FRAME_F_SPLIT);

        if ((line->flags & FRAME_F_SKIPPED) ||
            (t->skip_empty && line->len == 0 && !(line->flags & FRAME_F_PARTIAL))) {
                /* While a multiline record is pending, the next record's end covers
                 * this line; moving the open batch past it now would pass the
                 * pending lines too. */
                if (!tfile_ml_pending(f))
                        ack_skip(f->ack, line->end);
                if (line->flags & FRAME_F_SKIPPED)
                        t->st.skipped++;
                else
                        t->st.empty_skipped++;
                f->next_start = line->end;
                return 0;
        }
        if (f->ml && !piece) {
                uint64_t now = clock_ms();
                for (;;) {
                        int r = ml_offer(f->ml, line->data, line->len, start, line->end, now);
                        if (r == ML_TAKEN) {
                                f->next_start = line->end;
                                task_due(t, now + t->ml_timeout_ms);
                                return 0;
                        }
                        if (r < 0) {
                                task_fail(t, "out of memory joining lines");
                                return -EAGAIN;
                        }
                        if (tfile_emit_ml(f) < 0)
                                return -EAGAIN;
                }
        }
        if (piece && tfile_emit_ml(f) < 0)
                return -EAGAIN;
        if (tfile_produce(f, line->data, line->len, start, line->end, line->buf) < 0)
                return -EAGAIN;
        if ((line->flags & FRAME_F_SPLIT) && !f->in_split)
                t->st.split++;
        if (line->flags & FRAME_F_TRUNCATED)
                t->st.truncated++;
        f->in_split = (line->flags & FRAME_F_SPLIT) != 0;
        f->next_start = line->end;
        return 0;
}

void task_flush(struct task *t)
{
        if (t->closing || !t->kfk)
                return;
        int r = kfk_flush_pending(t->kfk);
        if (r == -ENOTRECOVERABLE || r == -EIO) {
                t->fatal = t->fatal || r == -ENOTRECOVERABLE;
                task_fail(t, "producing to topic '%s': %s", t->topic, kfk_last_error(t->kfk));
        }
}

static void task_read_done(void *userdata)
{
        struct tfile *f = userdata;
        struct task *t = f->task;
        task_flush(t); /* the read's records go to librdkafka together */
        tfile_seal(f);
        f->active_ms = clock_ms();
        lru_touch(t, f);
        if (t->n_waiting)
                task_due(t, f->active_ms); /* a file waits for a descriptor */
        if (t->in_txn)
                task_due(t, t->txn_interval_ms ? t->txn_due : f->active_ms);
        if (t->partial_flush_ms && tail_held(f->tail))
                task_due(t, f->active_ms + t->partial_flush_ms);
        task_due(t, coarse(f->active_ms + t->close_inactive_ms));
}

static int tfile_start_copy(struct task *t, const char *path, const struct tail_ckpt *at,
                            const char *of);

/* Looks in f's directory for a copy of f (copytruncate) that holds what was read of
 * f up to `at` and maybe more: a file not tracked yet whose first bytes and bytes
 * before at->offset hash to what f's hashed to. Returns true if one was found. */
static bool task_find_copy(struct task *t, const char *dirpath, const char *of,
                           const struct tail_ckpt *at)
{
        if (at->offset == 0 || at->fp_len == 0)
                return false;
        DIR *dir = opendir(dirpath);
        if (!dir)
                return false;
        bool found = false;
        struct dirent *de;
        char path[PATH_MAX];
        while (!found && (de = readdir(dir))) {
                if (de->d_type != DT_REG && de->d_type != DT_UNKNOWN)
                        continue;
                if (snprintf(path, sizeof(path), "%s/%s", dirpath, de->d_name) >= (int)sizeof(path))
                        continue;
                struct stat st;
                if (stat(path, &st) < 0 || !S_ISREG(st.st_mode) ||
                    (uint64_t)st.st_size < at->offset ||
                    find_id(t, (uint64_t)st.st_dev, (uint64_t)st.st_ino))
                        continue;
                found = tfile_start_copy(t, path, at, of) == 0;
        }
        closedir(dir);
        return found;
}

static void task_truncated(void *userdata, uint64_t consumed)
{
        struct tfile *f = userdata;
        struct task *t = f->task;
        tfile_seal(f);
        struct tail_ckpt at = *ack_last_sealed(f->ack);
        f->pinned = true;
        t->st.files_truncated++;
        char dir[PATH_MAX];
        snprintf(dir, sizeof(dir), "%s", f->dir ? f->dir->path : "/");
        bool copy = t->state == TASK_RUNNING && task_find_copy(t, dir, f->path, &at);
        if (copy) {
                /* The pending lines are in the copy, read from `at` on. */
                if (f->ml)
                        ml_clear(f->ml);
        } else if (tfile_emit_ml(f) < 0 && f->ml) {
                ml_clear(f->ml);
        }
        log_warn("task '%s': '%s' was truncated (it was read up to offset %" PRIu64
                 "): reading it again from the start%s",
                 t->name, f->path, consumed,
                 copy ? "; its copy holds the rest of what it had" : "");
        f->next_start = 0;
        f->in_split = false;
        f->pinned = false;
}

static void task_read_error(void *userdata, int err)
{
        struct tfile *f = userdata;
        task_fail(f->task, "reading '%s': %s", f->path, strerror(-err));
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
        if (!b) {
                /* A record of the offsets topic (exactly-once): the commit reports. */
                if (err && !kfk_err_is_purge(err))
                        task_fail(t, "Kafka did not acknowledge an offsets record: %s", errstr);
                return;
        }
        struct tfile *f = ack_userdata(ack_of(b));

        if (ack_done(b, err == 0))
                f->acked_dirty = true;
        if (err) {
                if (!kfk_err_is_purge(err))
                        task_fail(t, "Kafka did not acknowledge a record of '%s' (topic '%s'): %s",
                                  f->path, t->topic, errstr);
                return;
        }
        t->st.lines_acked++;
        if (t->kafka_error[0]) {
                log_notice("task '%s': Kafka acknowledges records again, %.1f s after '%s'",
                           t->name, (double)(clock_ms() - t->kafka_error_mono) / 1000.0,
                           t->kafka_error);
                t->kafka_error[0] = '\0';
        }
}

static void task_kafka_error(void *userdata, bool fatal, const char *errstr)
{
        struct task *t = userdata;
        if (fatal) {
                t->fatal = true;
                task_fail(t, "fatal producer error: %s", errstr);
                return;
        }
        log_warn("task '%s': kafka: %s (records wait, reading pauses when the queue is full)",
                 t->name, errstr);
        if (!t->kafka_error[0]) {
                struct timespec ts;
                clock_gettime(CLOCK_REALTIME, &ts);
                t->kafka_error_since = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
                t->kafka_error_mono = clock_ms();
        }
        snprintf(t->kafka_error, sizeof(t->kafka_error), "%s", errstr);
}

/* Runs Kafka's callbacks; reading goes on if it waited for room. */
static void task_kfk_serve(struct task *t)
{
        kfk_serve(t->kfk);
        if (t->queue_full && t->state == TASK_RUNNING) {
                t->queue_full = false;
                for (struct tfile *f = t->files; f; f = f->next)
                        if (f->tail)
                                tail_resume(f->tail);
        }
}

static void task_kfk_ready(struct io_op *op, int res)
{
        struct task *t = container_of(op, struct task, kfk_op);
        if (t->closing)
                return;
        if (res < 0) {
                task_fail(t, "waiting for Kafka's delivery reports: %s", strerror(-res));
                return;
        }
        task_kfk_serve(t);
        op->cb = task_kfk_ready;
        if (io_poll(t->env->loop, op, kfk_event_fd(t->kfk), POLLIN) < 0)
                task_fail(t, "cannot wait for Kafka's delivery reports");
}

/* ---- opening and closing ---- */

/* Closes f's descriptor, keeping what is needed to go on where it stopped. Only for
 * an idle tail (every line read was taken) with no multiline record pending. */
static void tfile_close(struct task *t, struct tfile *f)
{
        if (!f->tail)
                return;
        tfile_seal(f);
        struct tail_ckpt at = {.offset = tail_consumed_offset(f->tail)};
        if (tail_ckpt_fill(f->tail, &at) < 0)
                at.fp_len = at.tail_len = 0;
        f->resume = at;
        f->closed_size = tail_read_offset(f->tail);
        f->verify = true;
        f->next_start = at.offset;
        f->in_split = false;
        tail_free(f->tail);
        f->tail = NULL;
        lru_unlink(t, f);
        t->n_open--;
}

static bool tfile_evictable(const struct tfile *f)
{
        /* Only a file that can be opened again by its path: a rotated or deleted
         * one is kept open until it is finished. */
        return f->tail && f->role == ROLE_ACTIVE && !f->pinned &&
               tail_get_state(f->tail) == TAIL_IDLE && !tfile_ml_pending(f);
}

/* Makes room for one more open file. Returns false if every open file is busy. A
 * rotated file is opened even then (the cap is exceeded for a while): it may be
 * deleted at any moment, and only an open descriptor keeps its data readable. */
static bool task_make_room(struct task *t)
{
        while (t->n_open >= t->max_open) {
                struct tfile *victim = NULL;
                for (struct tfile *f = t->lru_head; f; f = f->lru_next) {
                        if (tfile_evictable(f)) {
                                victim = f;
                                break;
                        }
                }
                if (!victim)
                        return false;
                tfile_close(t, victim);
        }
        return true;
}

/* Offset just past the last newline of the file open at fd (size: its length). */
static uint64_t last_line_end(int fd, uint64_t size)
{
        char buf[TAIL_SCAN_BYTES];
        uint64_t from = size > sizeof(buf) ? size - sizeof(buf) : 0;
        ssize_t n = pread(fd, buf, (size_t)(size - from), (off_t)from);
        if (n <= 0)
                return size;
        char *nl = memrchr(buf, '\n', (size_t)n);
        return nl ? from + (uint64_t)(nl - buf) + 1 : size;
}

/* Opens f at its path and starts reading at f->resume (after checking it still
 * matches when it came from a checkpoint or an earlier close). Returns 0, -EAGAIN
 * (max.open.files: f waits), -ESTALE (the path names another file now), -errno. */
static int tfile_open(struct task *t, struct tfile *f)
{
        if (f->tail)
                return 0;
        if (!task_make_room(t) && f->role == ROLE_ACTIVE) {
                if (!f->waiting_fd) {
                        f->waiting_fd = true;
                        t->n_waiting++;
                }
                task_due(t, clock_ms()); /* the next tick opens it if a file went idle */
                return -EAGAIN;
        }
        if (f->waiting_fd) {
                f->waiting_fd = false;
                t->n_waiting--;
        }
        int fd = open(f->path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (fd < 0)
                return -errno;
        /* O_NONBLOCK kept a FIFO from blocking the open; io_uring must be allowed to
         * wait for the disk on a regular file. */
        (void)fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
        struct tail *tl;
        int r = tail_new(t->env->loop, fd, f->path, &t->topts, &task_tail_ops, f, &tl);
        if (r < 0) {
                close(fd);
                return r;
        }
        uint64_t dev, ino;
        tail_identity(tl, &dev, &ino);
        if (dev != f->dev || ino != f->ino) {
                tail_free(tl);
                return -ESTALE;
        }
        struct tail_ckpt start = f->resume;
        if (f->at_end) {
                struct stat st;
                start = (struct tail_ckpt){0};
                if (fstat(fd, &st) == 0)
                        start.offset = last_line_end(fd, (uint64_t)st.st_size);
        } else if (f->verify && !tail_ckpt_matches(tl, &start)) {
                log_warn("task '%s': '%s' (inode %" PRIu64 ") no longer holds what was read of it "
                         "up to offset %" PRIu64 " (truncated or rewritten): reading it from the "
                         "start",
                         t->name, f->path, f->ino, start.offset);
                start = (struct tail_ckpt){0};
                t->st.files_truncated++;
        }
        f->verify = false;
        f->at_end = false;
        r = tail_start(tl, start.offset);
        if (r < 0) {
                tail_free(tl);
                return r;
        }
        f->tail = tl;
        f->next_start = start.offset;
        f->in_split = false;
        f->active_ms = clock_ms();
        t->n_open++;
        lru_touch(t, f);
        return 0;
}

static void tfile_free(struct task *t, struct tfile *f)
{
        if (f->tail) {
                tail_free(f->tail);
                f->tail = NULL;
                lru_unlink(t, f);
                t->n_open--;
        }
        if (f->waiting_fd)
                t->n_waiting--;
        tfile_unlink_path(t, f);
        htab_del(&t->by_id, &f->n_id);
        tdir_unref(f->dir);
        if (f->prev)
                f->prev->next = f->next;
        else
                t->files = f->next;
        if (f->next)
                f->next->prev = f->prev;
        ack_free(f->ack);
        ml_free(f->ml);
        free(f->path);
        free(f->origin);
        free(f);
}

/* Starts tracking the file at path (identity st) with role; reading starts at
 * *resume (verified on open when verify), or at the end when at_end. */
static struct tfile *tfile_new(struct task *t, const char *path, const char *origin,
                               const struct stat *st, enum role role,
                               const struct tail_ckpt *resume, bool verify, bool at_end)
{
        struct tfile *f = calloc(1, sizeof(*f));
        if (!f) {
                task_fail(t, "out of memory");
                return NULL;
        }
        f->task = t;
        f->dev = (uint64_t)st->st_dev;
        f->ino = (uint64_t)st->st_ino;
        f->role = role;
        f->resume = *resume;
        f->committed = *resume;
        f->verify = verify;
        f->next = t->files;
        if (t->files)
                t->files->prev = f;
        t->files = f;
        char err[256];
        if (!(f->origin = strdup(origin ? origin : path)) ||
            htab_add(&t->by_id, &f->n_id, hash_id(f->dev, f->ino)) < 0 ||
            tfile_set_path(t, f, path) < 0 || ack_new(resume, f, &f->ack) < 0 ||
            (t->ml_pattern && ml_new(&t->mlo, err, sizeof(err), &f->ml) < 0)) {
                tfile_free(t, f);
                task_fail(t, "out of memory");
                return NULL;
        }
        f->seen_gen = t->gen;
        f->at_end = at_end;
        t->st.files_opened++;
        int r = tfile_open(t, f);
        if (r < 0 && r != -EAGAIN) {
                log_warn("task '%s': cannot read '%s': %s", t->name, path, strerror(-r));
                tfile_free(t, f);
                return NULL;
        }
        if (at_end && f->tail)
                log_info("task '%s': reading '%s' (inode %" PRIu64 ") from its end (offset %" PRIu64
                         ", read.from=end)",
                         t->name, path, f->ino, f->next_start);
        else if (f->tail && f->next_start == 0)
                log_info("task '%s': reading '%s' (inode %" PRIu64 ") from the start", t->name,
                         path, f->ino);
        else if (f->tail)
                log_info("task '%s': reading '%s' (inode %" PRIu64 ") from offset %" PRIu64
                         " (checkpoint)",
                         t->name, path, f->ino, f->next_start);
        return f;
}

/* True if the regular file at path holds what ck says (tail_ckpt_matches()). */
static bool ckpt_holds(struct task *t, const char *path, const struct tail_ckpt *ck)
{
        int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (fd < 0)
                return false;
        struct tail *tl;
        if (tail_new(t->env->loop, fd, path, &t->topts, &task_tail_ops, NULL, &tl) < 0) {
                close(fd);
                return false;
        }
        bool ok = tail_ckpt_matches(tl, ck);
        tail_free(tl);
        return ok;
}

/* The copy of a truncated file (or of a checkpointed one): read from `at`. */
static int tfile_start_copy(struct task *t, const char *path, const struct tail_ckpt *at,
                            const char *of)
{
        if (!ckpt_holds(t, path, at))
                return -ESTALE;
        struct stat st;
        if (stat(path, &st) < 0)
                return -errno;
        log_info("task '%s': '%s' is a copy of '%s' as it was read up to offset %" PRIu64
                 ": reading the rest of it",
                 t->name, path, of, at->offset);
        t->st.copies_found++;
        struct tfile *f = tfile_new(t, path, of, &st, ROLE_ROTATED, at, false, false);
        if (!f)
                return -ENOMEM;
        f->active_ms = clock_ms();
        task_due(t, f->active_ms + t->close_inactive_ms);
        return 0;
}

/* f's path no longer names it: rotated (or moved out of sight) or deleted. */
static void tfile_lost_path(struct task *t, struct tfile *f, uint64_t now)
{
        tfile_unlink_path(t, f);
        if (f->role == ROLE_DONE || f->role == ROLE_DELETED)
                return;
        enum role was = f->role;
        if (f->tail && tail_check(f->tail) == TAIL_DELETED)
                f->role = ROLE_DELETED;
        else
                f->role = ROLE_ROTATED;
        if (was == ROLE_ACTIVE)
                t->st.files_rotated++;
        if (was == f->role)
                return;
        f->active_ms = now;
        log_info("task '%s': '%s' was %s (inode %" PRIu64 "): reading it to its end", t->name,
                 f->path, f->role == ROLE_DELETED ? "deleted" : "rotated", f->ino);
        task_due(t, now + (f->role == ROLE_DELETED ? DELETED_WAIT_MS : t->close_inactive_ms));
}

/* f may have grown: read on (opening it again if it was closed). */
static void tfile_grew(struct task *t, struct tfile *f, uint64_t now)
{
        if (t->state != TASK_RUNNING || f->role == ROLE_DONE)
                return;
        f->active_ms = now;
        if (f->tail) {
                tail_wake(f->tail);
                return;
        }
        int r = tfile_open(t, f);
        if (r == -ESTALE || r == -ENOENT)
                tfile_lost_path(t, f, now);
}

/* ---- discovery ---- */

/* Starts tracking a file not tracked yet: from its checkpoint if it has one (a file
 * a restart left behind), else from the start, or from its end if from_end. */
static struct tfile *task_track(struct task *t, const char *path, const char *origin,
                                const struct stat *st, enum role role, bool from_end)
{
        struct off_rec rec;
        struct tail_ckpt start = {0};
        bool verify = false;
        if (off_get(t->env->store, t->name, (uint64_t)st->st_dev, (uint64_t)st->st_ino, &rec) ==
            0) {
                start = (struct tail_ckpt){rec.offset, rec.fp, rec.fp_len, rec.tail_len,
                                           rec.tail_hash};
                verify = true;
        }
        return tfile_new(t, path, origin, st, role, &start, verify, from_end && !verify);
}

/* Looks at path (a glob matched it, or an event named it). */
static void task_look(struct task *t, const char *path, const struct stat *stp, uint64_t now)
{
        struct stat st;
        struct tfile *old = find_path(t, path);
        if (!stp) {
                if (stat(path, &st) < 0) {
                        if (old)
                                tfile_lost_path(t, old, now);
                        return;
                }
                stp = &st;
        }
        struct tfile *f = find_id(t, (uint64_t)stp->st_dev, (uint64_t)stp->st_ino);
        if (old && old != f)
                tfile_lost_path(t, old, now); /* the path names another file now */
        bool match = globset_match(t->globs, path);
        if (f) {
                if (f != old || !f->in_path)
                        (void)tfile_set_path(t, f, path); /* renamed: where it went */
                if (match && f->role != ROLE_ACTIVE) {
                        log_info("task '%s': '%s' (inode %" PRIu64 ") matches again: following "
                                 "it",
                                 t->name, path, f->ino);
                        f->role = ROLE_ACTIVE;
                } else if (!match && f->role == ROLE_ACTIVE) {
                        tfile_lost_path(t, f, now);
                        (void)tfile_set_path(t, f, path);
                }
                f->seen_gen = t->gen;
                uint64_t known = f->tail ? tail_read_offset(f->tail) : f->closed_size;
                if ((uint64_t)stp->st_size != known || (!f->tail && f->waiting_fd))
                        tfile_grew(t, f, now);
                return;
        }
        if (!match || t->state != TASK_RUNNING)
                return;
        if (!S_ISREG(stp->st_mode)) {
                log_warn("task '%s': '%s' matches the files pattern but is not a regular file: "
                         "skipped",
                         t->name, path);
                return;
        }
        (void)task_track(t, path, NULL, stp, ROLE_ACTIVE, t->starting && t->read_from_end);
}

static int walk_dir(void *ud, const char *dir)
{
        struct task *t = ud;
        struct tdir *d = tdir_get(t, dir);
        if (d) {
                d->globbed = true;
                tdir_watch(d);
        }
        return 0;
}

static int walk_file(void *ud, const char *path, const struct stat *st)
{
        struct task *t = ud;
        task_look(t, path, st, clock_ms());
        return t->state == TASK_FAILED ? -1 : 0;
}

/* Walks the globs: new files, and files gone from their path. */
static void task_rescan(struct task *t, uint64_t now)
{
        t->gen++;
        for (struct tdir *d = t->dirs; d; d = d->next)
                d->globbed = false;
        (void)globset_walk(t->globs, walk_dir, walk_file, t, NULL);
        for (struct tfile *f = t->files, *next; f; f = next) {
                next = f->next;
                if (f->role == ROLE_ACTIVE && f->seen_gen != t->gen)
                        task_look(t, f->path, NULL, now);
                else if (f->role != ROLE_ACTIVE && f->role != ROLE_DONE && f->tail)
                        (void)tail_check(f->tail); /* wakes it if the writer still appends */
        }
        /* Directories no file or glob needs any more. */
        for (struct tdir **p = &t->dirs; *p;) {
                struct tdir *d = *p;
                if (d->refs == 0 && !d->globbed) {
                        *p = d->next;
                        watch_remove(t->env->watch, d->sub);
                        free(d->moved_from);
                        free(d->path);
                        free(d);
                        continue;
                }
                p = &d->next;
        }
        t->next_scan = now + t->scan_ms;
        task_due(t, t->next_scan);
}

/* Remembers that a wanted name (wanted as `by`: itself, or the symlink pointing at
 * it) was renamed away by the rename `cookie`; its IN_MOVED_TO tells where it went. */
static void tdir_moved_from(struct tdir *d, const char *by, uint32_t cookie)
{
        free(d->moved_from);
        d->moved_from = cookie ? strdup(by) : NULL;
        d->moved_cookie = cookie;
}

static void tdir_event(void *userdata, const char *name, uint32_t mask, uint32_t cookie)
{
        struct tdir *d = userdata;
        struct task *t = d->task;
        uint64_t now = clock_ms();

        if (t->closing)
                return;
        if (!name) {
                /* Events were lost (overflow) or the directory went away: look again. */
                if (mask & (IN_IGNORED | IN_DELETE_SELF | IN_MOVE_SELF)) {
                        watch_remove(t->env->watch, d->sub);
                        d->sub = NULL;
                }
                t->next_scan = now;
                task_due(t, now);
                return;
        }
        char path[PATH_MAX];
        if (snprintf(path, sizeof(path), "%s%s%s", d->path, strcmp(d->path, "/") ? "/" : "",
                     name) >= (int)sizeof(path))
                return;
        if (mask & IN_ISDIR) {
                if ((mask & (IN_CREATE | IN_MOVED_TO)) && globset_dir(t->globs, path)) {
                        t->next_scan = now; /* a directory the globs reach into */
                        task_due(t, now);
                }
                return;
        }
        /* A wanted name renamed away before it was looked at: where the rename with
         * the same cookie put it is a rotated file to read. */
        if ((mask & IN_MOVED_TO) && d->moved_from && cookie == d->moved_cookie) {
                struct stat st;
                char from[PATH_MAX];
                snprintf(from, sizeof(from), "%s", d->moved_from);
                tdir_moved_from(d, NULL, 0);
                task_look(t, path, NULL, now);
                if (stat(path, &st) == 0 && S_ISREG(st.st_mode) &&
                    !find_id(t, (uint64_t)st.st_dev, (uint64_t)st.st_ino) &&
                    t->state == TASK_RUNNING) {
                        log_info("task '%s': '%s' was renamed to '%s' before it was read: "
                                 "reading it",
                                 t->name, from, path);
                        if (task_track(t, path, from, &st, ROLE_ROTATED, false))
                                task_due(t, now + t->close_inactive_ms);
                }
                return;
        }
        struct tfile *f = find_path(t, path);
        struct tfile *tf = f ? NULL : find_target(t, path);
        const char *link = tf ? tf->path : f ? NULL : link_of(t, path);
        if (mask & IN_MODIFY) {
                if (f || tf)
                        tfile_grew(t, f ? f : tf, now);
                else if (link || globset_match(t->globs, path))
                        task_look(t, link ? link : path, NULL, now);
                return;
        }
        if (link) {
                /* A symlink's target was renamed, removed or replaced: look at what
                 * the link names now. */
                char lp[PATH_MAX];
                snprintf(lp, sizeof(lp), "%s", link);
                task_look(t, lp, NULL, now);
                if (mask & IN_MOVED_FROM)
                        tdir_moved_from(d, lp, cookie);
                return;
        }
        if (mask & (IN_MOVED_FROM | IN_DELETE)) {
                /* Events are read late: the path may already name the next file, which
                 * is then f, and the file renamed away one never looked at. */
                struct stat st;
                bool still = f && stat(path, &st) == 0 && (uint64_t)st.st_dev == f->dev &&
                             (uint64_t)st.st_ino == f->ino;
                if (f && !still)
                        tfile_lost_path(t, f, now);
                /* Whatever file it was: if where the rename put it (its IN_MOVED_TO) holds a file
                 * not tracked, that file had a wanted name and is read. */
                if ((mask & IN_MOVED_FROM) && globset_match(t->globs, path))
                        tdir_moved_from(d, path, cookie);
                return;
        }
        if (mask & (IN_CREATE | IN_MOVED_TO | IN_ATTRIB | IN_CLOSE_WRITE))
                task_look(t, path, NULL, now);
}

/* ---- exactly-once: transactions and the offsets topic ---- */

/* The offsets topic's key of a file: ["<connector>",{"path":..,"dev":..,"ino":..}], as
 * Kafka Connect writes ["<connector>",{<source partition>}]. Returns a malloc'd string. */
static char *eos_key(const struct task *t, const struct tfile *f)
{
        json_t *k = json_pack("[s,{s:s,s:I,s:I}]", t->name, "path", f->origin, "dev",
                              (json_int_t)f->dev, "ino", (json_int_t)f->ino);
        char *s = k ? json_dumps(k, JSON_COMPACT) : NULL;
        json_decref(k);
        return s;
}

static char *eos_value(const struct tail_ckpt *pos)
{
        char fp[17], th[17];
        snprintf(fp, sizeof(fp), "%016" PRIx64, pos->fp);
        snprintf(th, sizeof(th), "%016" PRIx64, pos->tail_hash);
        json_t *v = json_pack("{s:I,s:I,s:s,s:I,s:s}", "offset", (json_int_t)pos->offset, "fp_len",
                              (json_int_t)pos->fp_len, "fp", fp, "tail_len",
                              (json_int_t)pos->tail_len, "tail_hash", th);
        char *s = v ? json_dumps(v, JSON_COMPACT) : NULL;
        json_decref(v);
        return s;
}

/* Writes one offsets record into the open transaction, waiting for room in the
 * producer's queue. Returns 0 or -errno. */
static int eos_put(struct task *t, const char *key, const char *value)
{
        for (int tries = 0;; tries++) {
                int r = kfk_produce_offset(t->kfk, key, strlen(key), value,
                                           value ? strlen(value) : 0);
                if (r != -ENOBUFS || tries >= 600)
                        return r;
                (void)kfk_flush(t->kfk, 100);
        }
}

/* Commits the open transaction with the position of every file it carried records
 * of (and the tombstones of finished files). A transaction that cannot commit fails
 * the task: what it carried is aborted, and a restart resumes from the last
 * committed transaction. */
static void task_txn_commit(struct task *t)
{
        char err[512];
        bool tombstones = false;
        for (struct tfile *f = t->files; f; f = f->next)
                tombstones = tombstones || (f->role == ROLE_DONE && !f->tombstoned &&
                                            ack_is_idle(f->ack) && !f->txn_dirty);
        if (!t->in_txn && (!tombstones || task_txn_begin(t) < 0))
                return;
        int r = 0;
        for (struct tfile *f = t->files; f && r == 0; f = f->next) {
                tfile_seal(f);
                bool tomb = f->role == ROLE_DONE && !f->tombstoned && !f->txn_dirty &&
                            ack_is_idle(f->ack);
                if (!f->txn_dirty && !tomb)
                        continue;
                f->txn_pos = *ack_last_sealed(f->ack);
                char *key = eos_key(t, f), *value = tomb ? NULL : eos_value(&f->txn_pos);
                r = key && (tomb || value) ? eos_put(t, key, value) : -ENOMEM;
                f->txn_tombstone = tomb;
                free(key);
                free(value);
        }
        if (r < 0) {
                task_fail(t, "cannot write offsets to offset.storage.topic: %s",
                          r == -ENOMEM ? "out of memory" : kfk_last_error(t->kfk));
                (void)kfk_txn_abort(t->kfk, 30000, err, sizeof(err));
                t->in_txn = false;
                return;
        }
        r = kfk_txn_commit(t->kfk, 60000, err, sizeof(err));
        t->in_txn = false;
        if (r < 0)
                t->st.txn_aborted++;
        else
                t->st.txn_committed++;
        if (r < 0) {
                task_fail(t,
                          "%s (transactional.id '%s'): %s; a restart resumes from the last "
                          "committed transaction",
                          r == -EPERM ? "the producer was fenced or failed fatally"
                                      : "a transaction could not commit and was aborted",
                          t->txn_id, err);
                return;
        }
        for (struct tfile *f = t->files; f; f = f->next) {
                if (f->txn_tombstone) {
                        f->tombstoned = true;
                        f->txn_tombstone = false;
                } else if (f->txn_dirty) {
                        f->committed = f->txn_pos;
                        f->acked_dirty = true;
                        f->txn_dirty = false;
                }
        }
}

struct eos_restore {
        struct task *t;
        size_t n;
};

static bool hex64(const char *s, uint64_t *ret)
{
        char *end;
        if (!s || strlen(s) != 16)
                return false;
        *ret = strtoull(s, &end, 16);
        return *end == '\0';
}

/* One record of the offsets topic: this connector's ones replace the local store's. */
static void eos_record(void *userdata, const void *key, size_t key_len, const void *value,
                       size_t value_len)
{
        struct eos_restore *er = userdata;
        struct task *t = er->t;
        json_error_t je;
        json_t *k = key ? json_loadb(key, key_len, 0, &je) : NULL;
        const char *name = NULL, *path = NULL;
        json_int_t dev = 0, ino = 0;
        if (!k ||
            json_unpack(k, "[s,{s:s,s:I,s:I}]", &name, "path", &path, "dev", &dev, "ino", &ino) <
                    0 ||
            strcmp(name, t->name) != 0) {
                json_decref(k); /* another connector's, or not ringtail's */
                return;
        }
        if (!value || value_len == 0) {
                (void)off_del(t->env->store, t->name, (uint64_t)dev, (uint64_t)ino);
                json_decref(k);
                return;
        }
        json_t *v = json_loadb(value, value_len, 0, &je);
        json_int_t off = 0, fp_len = 0, tail_len = 0;
        const char *fp = NULL, *th = NULL;
        struct off_rec rec = {.dev = (uint64_t)dev, .ino = (uint64_t)ino, .path = path};
        if (v &&
            json_unpack(v, "{s:I,s:I,s:s,s:I,s:s}", "offset", &off, "fp_len", &fp_len, "fp", &fp,
                        "tail_len", &tail_len, "tail_hash", &th) == 0 &&
            hex64(fp, &rec.fp) && hex64(th, &rec.tail_hash) && off >= 0 && fp_len >= 0 &&
            tail_len >= 0 && tail_len <= OFF_TAIL_MAX) {
                rec.offset = (uint64_t)off;
                rec.fp_len = (uint32_t)fp_len;
                rec.tail_len = (uint32_t)tail_len;
                if (off_set(t->env->store, t->name, &rec) == 0)
                        er->n++;
        } else {
                log_warn("task '%s': offset.storage.topic holds a record for '%s' that is not "
                         "ringtail's: ignored",
                         t->name, path);
        }
        json_decref(v);
        json_decref(k);
}

/* Fences older instances, aborts what they left open, and makes the local store a
 * copy of what the offsets topic says for this connector. Returns 0 or -1 (failed). */
static int task_eos_start(struct task *t)
{
        char err[512];
        int r = kfk_txn_init(t->kfk, 60000, err, sizeof(err));
        if (r < 0) {
                task_fail(t, "cannot initialise transactions (transactional.id '%s'): %s",
                          t->txn_id, err);
                return -1;
        }
        /* The topic is the truth; the local file is a cache of it. */
        struct off_store *s = t->env->store;
        for (size_t i = off_count(s); i-- > 0;) {
                const char *src;
                struct off_rec rec;
                if (off_at(s, i, &src, &rec) == 0 && strcmp(src, t->name) == 0)
                        (void)off_del(s, t->name, rec.dev, rec.ino);
        }
        const struct cfg *w = t->env->worker;
        char client_id[512];
        snprintf(client_id, sizeof(client_id), "%s-offsets", t->txn_id);
        struct kfk_offsets_conf oc = {
                .bootstrap = t->env->bootstrap,
                .client_id = client_id,
                .worker = cfg_props(w),
                .topic = cfg_str(w, "offset.storage.topic"),
                .partitions = (int)cfg_int(w, "offset.storage.partitions"),
                .replication_factor = (int)cfg_int(w, "offset.storage.replication.factor"),
        };
        struct eos_restore er = {.t = t};
        err[0] = '\0';
        r = kfk_offsets_read(&oc, eos_record, &er, err, sizeof(err));
        if (r < 0) {
                task_fail(t, "%s", err);
                return -1;
        }
        log_info("task '%s': exactly-once (transactional.id '%s'): %zu file offsets from "
                 "offset.storage.topic '%s'",
                 t->name, t->txn_id, er.n, oc.topic);
        return 0;
}

/* ---- start: finishing what the checkpoints left ---- */

/* The directory entry of path's directory with inode ino, as a path. */
static bool find_inode(const char *dirpath, uint64_t dev, uint64_t ino, char *out, size_t len)
{
        DIR *dir = opendir(dirpath);
        if (!dir)
                return false;
        bool found = false;
        struct dirent *de;
        while (!found && (de = readdir(dir))) {
                if ((uint64_t)de->d_ino != ino)
                        continue;
                struct stat st;
                if (snprintf(out, len, "%s/%s", dirpath, de->d_name) < (int)len &&
                    stat(out, &st) == 0 && (uint64_t)st.st_dev == dev &&
                    (uint64_t)st.st_ino == ino && S_ISREG(st.st_mode))
                        found = true;
        }
        closedir(dir);
        return found;
}

/* One checkpoint of this task: find its file (at its path, under another name in
 * its directory, or as a copy) and go on reading it. */
static void task_adopt(struct task *t, const struct off_rec *rec)
{
        struct tail_ckpt ck = {rec->offset, rec->fp, rec->fp_len, rec->tail_len, rec->tail_hash};
        char path[PATH_MAX], dir[PATH_MAX];
        struct stat st;
        snprintf(dir, sizeof(dir), "%s", rec->path);
        char *slash = strrchr(dir, '/');
        if (slash)
                *(slash == dir ? slash + 1 : slash) = '\0';

        bool here = stat(rec->path, &st) == 0 && (uint64_t)st.st_dev == rec->dev &&
                    (uint64_t)st.st_ino == rec->ino;
        if (here)
                snprintf(path, sizeof(path), "%s", rec->path);
        else if (find_inode(dir, rec->dev, rec->ino, path, sizeof(path)))
                here = stat(path, &st) == 0;
        if (here && ckpt_holds(t, path, &ck)) {
                bool match = globset_match(t->globs, path);
                if (strcmp(path, rec->path) != 0)
                        log_info("task '%s': '%s' (inode %" PRIu64 ") is now '%s': finishing it",
                                 t->name, rec->path, rec->ino, path);
                struct tfile *f = tfile_new(t, path, match ? path : rec->path, &st,
                                            match ? ROLE_ACTIVE : ROLE_ROTATED, &ck, false, false);
                if (f && !match)
                        task_due(t, clock_ms() + t->close_inactive_ms);
                return;
        }
        char inode_path[PATH_MAX];
        snprintf(inode_path, sizeof(inode_path), "%s", here ? path : "");
        struct stat ist = st;
        /* Not the file it was: a copy of it (copytruncate while stopped)? */
        bool copy = task_find_copy(t, dir, rec->path, &ck);
        if (here) {
                /* Same inode, other content: truncated (or replaced, inode reused). */
                log_warn("task '%s': '%s' (inode %" PRIu64 ") no longer holds what was read of it "
                         "up to offset %" PRIu64 ": reading it from the start",
                         t->name, inode_path, rec->ino, rec->offset);
                t->st.files_truncated++;
                struct tail_ckpt zero = {0};
                bool match = globset_match(t->globs, inode_path);
                if (match)
                        (void)tfile_new(t, inode_path, NULL, &ist, ROLE_ACTIVE, &zero, false,
                                        false);
                else
                        (void)off_del(t->env->store, t->name, rec->dev, rec->ino);
                return;
        }
        if (!copy)
                log_warn("task '%s': '%s' (inode %" PRIu64 ") is gone: lines after offset %" PRIu64
                         " that were not read before it went, if any, are lost",
                         t->name, rec->path, rec->ino, rec->offset);
        (void)off_del(t->env->store, t->name, rec->dev, rec->ino);
}

void task_start(struct task *t, uint64_t now_ms)
{
        log_info("task '%s': %s -> topic '%s'", t->name,
                 t->tail_source ? "TailSource" : "FileStreamSource", t->topic);
        if (t->eos && task_eos_start(t) < 0)
                return;
        /* The store changes as files are adopted: collect this task's entries first. */
        struct off_store *s = t->env->store;
        size_t n = off_count(s), k = 0;
        struct off_rec *recs = calloc(n ? n : 1, sizeof(*recs));
        char **paths = calloc(n ? n : 1, sizeof(*paths));
        if (!recs || !paths) {
                free(recs);
                free(paths);
                task_fail(t, "out of memory");
                return;
        }
        for (size_t i = 0; i < n; i++) {
                const char *src;
                if (off_at(s, i, &src, &recs[k]) == 0 && strcmp(src, t->name) == 0) {
                        paths[k] = strdup(recs[k].path ? recs[k].path : "");
                        recs[k].path = paths[k];
                        if (paths[k])
                                k++;
                }
        }
        t->starting = true;
        for (size_t i = 0; i < k && t->state == TASK_RUNNING; i++)
                if (!find_id(t, recs[i].dev, recs[i].ino))
                        task_adopt(t, &recs[i]);
        for (size_t i = 0; i < k; i++)
                free(paths[i]);
        free(paths);
        free(recs);
        task_rescan(t, now_ms);
        t->starting = false;
        if (!t->files && t->tail_source)
                log_info("task '%s': no file matches yet: waiting for one to appear", t->name);
        else if (!t->files)
                log_info("task '%s': waiting for '%s' to appear", t->name, t->file);
}

/* ---- periodic work ---- */

/* A rotated or deleted file read to its end: finished once quiet long enough. */
static void tfile_maybe_finish(struct task *t, struct tfile *f, uint64_t now)
{
        uint64_t wait = f->role == ROLE_DELETED ? DELETED_WAIT_MS : t->close_inactive_ms;
        if (f->tail && tail_get_state(f->tail) != TAIL_IDLE)
                return;
        if (now < f->active_ms + wait) {
                task_due(t, coarse(f->active_ms + wait));
                return;
        }
        /* The writer has moved on: its last line will get no newline. */
        if (f->tail && tail_flush(f->tail) == -EAGAIN)
                return;
        if (tfile_emit_ml(f) < 0)
                return;
        if (f->tail)
                tfile_close(t, f);
        f->role = ROLE_DONE;
        /* Its identity and path may be taken by a new file from now on. */
        tfile_unlink_path(t, f);
        htab_del(&t->by_id, &f->n_id);
        t->st.files_finished++;
        log_info("task '%s': finished '%s' (inode %" PRIu64 ") at offset %" PRIu64, t->name,
                 f->path, f->ino, f->next_start);
}

uint64_t task_tick(struct task *t, uint64_t now)
{
        t->next_due = NEVER;
        if (t->state != TASK_RUNNING)
                return NEVER;
        if (t->eos && (t->txn_interval_ms == 0 || now >= t->txn_due))
                task_txn_commit(t);
        if (t->eos && t->in_txn)
                task_due(t, t->txn_due);
        if (now >= t->next_scan)
                task_rescan(t, now);
        task_due(t, t->next_scan);
        if (t->queue_full) {
                /* Reading waits for Kafka: look once a second even if no wake-up came
                 * (a wake-up lost would otherwise stop the task for good). */
                task_kfk_serve(t);
                if (t->queue_full)
                        task_due(t, now + 1000);
        }
        for (struct tfile *f = t->files, *next; f && t->state == TASK_RUNNING; f = next) {
                next = f->next;
                if (f->role == ROLE_DONE)
                        continue;
                if (f->waiting_fd) {
                        (void)tfile_open(t, f);
                        continue;
                }
                if (f->ml) {
                        uint64_t due = ml_deadline(f->ml, t->ml_timeout_ms);
                        if (now >= due && tfile_emit_ml(f) == 0)
                                tfile_seal(f);
                        else if (due != NEVER)
                                task_due(t, now >= due ? now + 100 : due);
                }
                if (f->role != ROLE_ACTIVE) {
                        tfile_maybe_finish(t, f, now);
                        continue;
                }
                if (!f->tail)
                        continue;
                if (tail_get_state(f->tail) != TAIL_IDLE)
                        continue;
                if (t->partial_flush_ms && tail_held(f->tail) > 0) {
                        if (now >= f->active_ms + t->partial_flush_ms)
                                (void)tail_flush(f->tail);
                        else
                                task_due(t, f->active_ms + t->partial_flush_ms);
                }
                if (tfile_ml_pending(f))
                        continue;
                if (now >= f->active_ms + t->close_inactive_ms)
                        tfile_close(t, f);
                else
                        task_due(t, coarse(f->active_ms + t->close_inactive_ms));
        }
        if (t->n_waiting)
                task_due(t, now + 100);
        /* Deadlines of thousands of files are spread over time: one tick per 50 ms at
         * most serves them all (each tick visits every file). */
        if (t->next_due < now + 50)
                t->next_due = now + 50;
        return t->next_due;
}

uint64_t task_next_due(const struct task *t)
{
        return t->next_due;
}

/* ---- checkpoints ---- */

/* Writes f's acknowledged offset to the store if it moved. Returns 1, 0 or -errno. */
static int tfile_record(struct task *t, struct tfile *f)
{
        if (!f->acked_dirty || (f->role == ROLE_DONE && find_id(t, f->dev, f->ino)))
                return 0;
        const struct tail_ckpt *pos = t->eos ? &f->committed : ack_position(f->ack);
        struct off_rec rec = {
                .dev = f->dev,
                .ino = f->ino,
                .fp = pos->fp,
                .fp_len = pos->fp_len,
                .tail_len = pos->tail_len,
                .tail_hash = pos->tail_hash,
                .offset = pos->offset,
                .path = f->origin,
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
        for (struct tfile *f = t->files, *next; f; f = next) {
                next = f->next;
                if (f->role == ROLE_DONE && ack_is_idle(f->ack) && (!t->eos || f->tombstoned)) {
                        /* Done with it: everything read from it is acknowledged. */
                        if (!find_id(t, f->dev, f->ino))
                                (void)off_del(t->env->store, t->name, f->dev, f->ino);
                        tfile_free(t, f);
                        changed++;
                        continue;
                }
                r = tfile_record(t, f);
                if (r < 0)
                        return r;
                changed += r;
        }
        return changed;
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

/* Splits a comma-separated list into absolute glob patterns (relative ones are
 * taken from the working directory, as Connect takes `file`). */
static int split_globs(const char *list, bool literal, char ***ret, size_t *ret_n)
{
        char cwd[PATH_MAX];
        if (!getcwd(cwd, sizeof(cwd)))
                return -errno;
        char *copy = strdup(list);
        if (!copy)
                return -ENOMEM;
        size_t n = 0, cap = 4;
        char **v = calloc(cap, sizeof(*v));
        int r = v ? 0 : -ENOMEM;
        char *save = NULL;
        for (char *tok = literal ? copy : strtok_r(copy, ",", &save); tok && r == 0;
             tok = literal ? NULL : strtok_r(NULL, ",", &save)) {
                while (*tok == ' ' || *tok == '\t')
                        tok++;
                size_t len = strlen(tok);
                while (len > 0 && (tok[len - 1] == ' ' || tok[len - 1] == '\t'))
                        tok[--len] = '\0';
                if (!len)
                        continue;
                char abs[PATH_MAX * 2], pat[PATH_MAX * 2];
                snprintf(abs, sizeof(abs), "%s%s%s", tok[0] == '/' ? "" : cwd,
                         tok[0] == '/' ? "" : "/", tok);
                if (literal && glob_escape(abs, pat, sizeof(pat)) < 0) {
                        r = -ENAMETOOLONG;
                        break;
                }
                if (n + 1 >= cap) {
                        char **nv = realloc(v, (cap *= 2) * sizeof(*v));
                        if (!nv) {
                                r = -ENOMEM;
                                break;
                        }
                        v = nv;
                }
                if (!(v[n++] = strdup(literal ? pat : abs)))
                        r = -ENOMEM;
        }
        free(copy);
        if (r < 0) {
                for (size_t i = 0; v && i < n; i++)
                        free(v[i]);
                free(v);
                return r;
        }
        *ret = v;
        *ret_n = n;
        return 0;
}

static void free_globs(char **v, size_t n)
{
        for (size_t i = 0; v && i < n; i++)
                free(v[i]);
        free(v);
}

static int task_globs(struct task *t, const struct cfg *conn, char *errbuf, size_t errlen)
{
        char **inc = NULL, **exc = NULL;
        size_t ninc = 0, nexc = 0;
        int r;
        if (t->tail_source) {
                r = split_globs(cfg_str(conn, "files"), false, &inc, &ninc);
                if (r == 0)
                        r = split_globs(cfg_str(conn, "exclude"), false, &exc, &nexc);
        } else {
                r = split_globs(cfg_str(conn, "file"), true, &inc, &ninc);
                if (r == 0 && ninc == 1) {
                        char cwd[PATH_MAX];
                        const char *file = cfg_str(conn, "file");
                        if (file[0] != '/' && getcwd(cwd, sizeof(cwd)))
                                r = asprintf(&t->file, "%s/%s", cwd, file) < 0 ? -ENOMEM : 0;
                        else if (!(t->file = strdup(file)))
                                r = -ENOMEM;
                }
        }
        if (r < 0) {
                snprintf(errbuf, errlen, "%s: %s", t->tail_source ? "files" : "file", strerror(-r));
        } else if (ninc == 0) {
                snprintf(errbuf, errlen, "files: no pattern given");
                r = -EINVAL;
        } else {
                char err[512];
                r = globset_new((const char *const *)inc, ninc, (const char *const *)exc, nexc, err,
                                sizeof(err), &t->globs);
                if (r < 0)
                        snprintf(errbuf, errlen, "%s: %s", t->tail_source ? "files" : "file", err);
        }
        free_globs(inc, ninc);
        free_globs(exc, nexc);
        return r;
}

/* The most a task's retired read buffers may take (io/rbuf.h: a buffer is kept while
 * any of its records is in flight) before reading waits for acknowledgements, as it
 * does for room in librdkafka's queue: half as much again as the queue holds, at
 * least 4 buffers. The partitions' batches are acknowledged each in their own time,
 * so the buffers span more than the queue: with 2 producers, 6 partitions and a
 * 12 MiB queue, 7-16 MiB at full speed and 20.5 MiB in the first second; behind a
 * slow or absent leader, as much as the queue holds of its partition times the
 * partition count. Lines used to be copied only beyond 64 MiB of buffers. With the
 * bound at 18 MiB (1 GiB corpora, real broker, 5 runs each, interleaved) peak RSS was
 * 53.4 instead of 56.5 MiB (access) and 49.9 instead of 55.1 (json), at the same
 * speed (322.7 vs 315.3 MB/s, 388.0 vs 383.6); at 12-14 MiB reading waited (4-8 % of
 * the CPUs idle instead of 2-3) and was 5-7 % slower. */
static size_t task_borrow_max(uint64_t queue_bytes, size_t max_line)
{
        uint64_t b = queue_bytes + queue_bytes / 2;
        uint64_t floor = 4 * ((uint64_t)max_line + READ_SIZE + 1);
        if (b < floor)
                b = floor;
        return b > SIZE_MAX ? SIZE_MAX : (size_t)b;
}

static void task_settings(struct task *t, const struct cfg *conn)
{
        t->batch_size = (uint32_t)cfg_int(conn, "batch.size");
        t->topts = (struct tail_opts){
                .read_size = READ_SIZE,
                .max_line = 1000u * 1000u - 64u * 1024u, /* below message.max.bytes */
                .long_policy = FRAME_LONG_SPLIT,
                .fingerprint_bytes = 1024,
                .acct = &t->borrowed,
        };
        t->close_inactive_ms = 5000; /* FileStreamSource: one file, finished rotations */
        t->scan_ms = 1000;
        t->max_open = 16;
        if (!t->tail_source)
                return;
        const char *pol = cfg_str(conn, "long.line.policy");
        t->topts.max_line = (size_t)cfg_int(conn, "max.line.bytes");
        t->topts.long_policy = strcmp(pol, "truncate") == 0 ? FRAME_LONG_TRUNCATE
                               : strcmp(pol, "skip") == 0   ? FRAME_LONG_SKIP
                                                            : FRAME_LONG_SPLIT;
        t->topts.fingerprint_bytes = (uint32_t)cfg_int(conn, "fingerprint.bytes");
        t->read_from_end = strcmp(cfg_str(conn, "read.from"), "end") == 0;
        t->skip_empty = strcmp(cfg_str(conn, "empty.lines"), "skip") == 0;
        t->partial_flush_ms = (uint64_t)cfg_int(conn, "partial.line.flush.ms");
        t->close_inactive_ms = (uint64_t)cfg_int(conn, "close.inactive.ms");
        t->scan_ms = (uint64_t)cfg_int(conn, "scan.interval.ms");
        t->max_open = (uint32_t)cfg_int(conn, "max.open.files");
        t->headers = cfg_bool(conn, "headers.source");
        t->key_path = strcmp(cfg_str(conn, "key.mode"), "path") == 0;
        t->key_host = strcmp(cfg_str(conn, "key.mode"), "host") == 0;
        t->ml_timeout_ms = (uint64_t)cfg_int(conn, "multiline.timeout.ms");
        t->mlo.max_lines = (uint32_t)cfg_int(conn, "multiline.max.lines");
        t->mlo.max_bytes = (size_t)cfg_int(conn, "multiline.max.bytes");
}

/* `producers`, 0 meaning one per online CPU, at most 4. */
static unsigned task_producers(const struct cfg *conn)
{
        int64_t n = cfg_int(conn, "producers");
        if (n > 0)
                return (unsigned)n;
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        return cpus < 1 ? 1 : cpus > 4 ? 4 : (unsigned)cpus;
}

int task_new(const struct task_env *env, const struct cfg *conn, char *errbuf, size_t errlen,
             struct task **ret_task)
{
        struct task *t = calloc(1, sizeof(*t));
        if (!t)
                return -ENOMEM;
        t->env = env;
        t->state = TASK_RUNNING;
        t->next_due = NEVER;
        t->tail_source = cfg_connector_class(conn) == CFG_CONN_TAIL_SOURCE;
        t->name = strdup(cfg_str(conn, "name"));
        t->topic = strdup(cfg_str(conn, "topic"));
        int r = -ENOMEM;
        if (!t->name || !t->topic)
                goto fail;
        task_settings(t, conn);
        if (gethostname(t->host, sizeof(t->host)) < 0)
                snprintf(t->host, sizeof(t->host), "localhost");
        t->host[sizeof(t->host) - 1] = '\0';
        if (t->tail_source && *cfg_str(conn, "multiline.start.pattern")) {
                t->ml_pattern = strdup(cfg_str(conn, "multiline.start.pattern"));
                if (!t->ml_pattern)
                        goto fail;
                t->mlo.start_pattern = t->ml_pattern;
                struct ml *probe;
                r = ml_new(&t->mlo, errbuf, errlen, &probe);
                if (r < 0)
                        goto fail;
                ml_free(probe);
        }
        r = task_globs(t, conn, errbuf, errlen);
        if (r < 0)
                goto fail;

        r = conv_from(env->worker, conn, "value.converter", &t->vconv);
        if (r < 0) {
                snprintf(errbuf, errlen, "value.converter: %s", strerror(-r));
                goto fail;
        }

        char client_id[512];
        const char *prefix = cfg_str(env->worker, "client.id");
        snprintf(client_id, sizeof(client_id), "%s%s%s", *prefix ? prefix : "ringtail", "-",
                 t->name);
        t->eos = strcasecmp(cfg_str(env->worker, "exactly.once.source.support"), "enabled") == 0;
        if (t->eos) {
                const char *over = props_get(cfg_props(conn), "producer.override.transactional.id");
                const char *group = cfg_str(env->worker, "group.id");
                r = over ? ((t->txn_id = strdup(over)) ? 0 : -1)
                         : asprintf(&t->txn_id, "%s-%s-0", *group ? group : "ringtail", t->name);
                if (r < 0 || !t->txn_id) {
                        r = -ENOMEM;
                        goto fail;
                }
                int64_t iv = cfg_int(conn, "transaction.boundary.interval.ms");
                t->txn_interval_ms =
                        strcmp(cfg_str(conn, "transaction.boundary"), "interval") != 0 ? 0
                        : iv > 0 ? (uint64_t)iv
                                 : (uint64_t)cfg_int(env->worker, "offset.flush.interval.ms");
        }
        struct kfk_conf kc = {
                .bootstrap = env->bootstrap,
                .client_id = client_id,
                .topic = t->topic,
                .worker = cfg_props(env->worker),
                .connector = cfg_props(conn),
                .dr = task_dr,
                .error = task_kafka_error,
                .userdata = t,
                .buffer_memory = t->tail_source ? cfg_int(conn, "buffer.memory") : 0,
                .transactional_id = t->eos ? t->txn_id : NULL,
                .offsets_topic = t->eos ? cfg_str(env->worker, "offset.storage.topic") : NULL,
                .producers = task_producers(conn),
                .keyed = t->key_path || t->key_host,
        };
        r = kfk_producer_new(&kc, errbuf, errlen, &t->kfk);
        if (r < 0)
                goto fail;
        t->borrow_max = task_borrow_max(kfk_queue_max_bytes(t->kfk), t->topts.max_line);
        if (kfk_producers(t->kfk) > 1)
                log_info("task '%s': %u producers, each owning the partitions p of '%s' with "
                         "p mod %u equal to its index",
                         t->name, kfk_producers(t->kfk), t->topic, kfk_producers(t->kfk));
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

void task_stop(struct task *t)
{
        if (t->state == TASK_RUNNING)
                t->state = TASK_STOPPING;
        for (struct tfile *f = t->files; f; f = f->next)
                tfile_seal(f);
        if (t->eos && t->in_txn)
                task_txn_commit(t); /* what was read is committed; nothing is read after */
}

size_t task_drain(struct task *t, int timeout_ms)
{
        if (kfk_in_flight(t->kfk) > 0 && !t->fatal)
                (void)kfk_flush(t->kfk, timeout_ms);
        size_t left = kfk_in_flight(t->kfk);
        /* What is left will not be acknowledged now: its reports come as errors and
         * the checkpoints stay before it. */
        if (left)
                kfk_purge(t->kfk);
        const struct task_stats *s = &t->st;
        log_info("task '%s': %" PRIu64 " lines sent, %" PRIu64 " acknowledged%s", t->name,
                 s->lines_sent, s->lines_acked,
                 left ? "; the rest is read and sent again after a restart" : "");
        log_info("task '%s': files: %" PRIu64 " opened, %" PRIu64 " rotated, %" PRIu64
                 " truncated, %" PRIu64 " copies found, %" PRIu64 " finished; long lines: %" PRIu64
                 " split, %" PRIu64 " truncated, %" PRIu64
                 " skipped; empty lines skipped: %" PRIu64,
                 t->name, s->files_opened, s->files_rotated, s->files_truncated, s->copies_found,
                 s->files_finished, s->split, s->truncated, s->skipped, s->empty_skipped);
        return left;
}

void task_close(struct task *t)
{
        t->closing = true;
        if (t->kfk) {
                (void)io_cancel(t->env->loop, &t->kfk_op);
                /* Before the files: records librdkafka still has may point into
                 * their read buffers (io/rbuf.h), which their batches keep. */
                kfk_free(t->kfk);
                t->kfk = NULL;
        }
        while (t->files)
                tfile_free(t, t->files);
        while (t->dirs) {
                struct tdir *d = t->dirs;
                t->dirs = d->next;
                watch_remove(t->env->watch, d->sub);
                free(d->moved_from);
                free(d->path);
                free(d);
        }
}

enum task_state task_get_state(const struct task *t)
{
        return t->state;
}

void task_get_status(const struct task *t, struct task_status *s)
{
        const struct task_stats *st = &t->st;
        *s = (struct task_status){
                .state = t->state,
                .failure = t->state == TASK_FAILED ? t->failure : NULL,
                .kafka_error = t->kafka_error[0] ? t->kafka_error : NULL,
                .kafka_error_since = t->kafka_error_since,
                .reading_paused = t->queue_full,
                .read_buffer_bytes = t->borrowed.retired,
                .read_buffer_limit = t->borrow_max,
                .lines_sent = st->lines_sent,
                .lines_acked = st->lines_acked,
                .bytes_sent = st->bytes_sent,
                .split = st->split,
                .truncated = st->truncated,
                .skipped = st->skipped,
                .empty_skipped = st->empty_skipped,
                .files_opened = st->files_opened,
                .files_rotated = st->files_rotated,
                .files_truncated = st->files_truncated,
                .copies_found = st->copies_found,
                .files_finished = st->files_finished,
                .records_in_flight = t->kfk ? kfk_in_flight(t->kfk) : 0,
                .files_open = t->n_open,
                .transactions_committed = st->txn_committed,
                .transactions_aborted = st->txn_aborted,
        };
        for (const struct tfile *f = t->files; f; f = f->next)
                s->files_tracked += f->role != ROLE_DONE;
        if (t->kfk) {
                struct kfk_stats ks;
                kfk_stats(t->kfk, &ks);
                s->producer_rebuilds = ks.rebuilds;
                s->records_resent = ks.resent;
        }
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
        globset_free(t->globs);
        free(t->by_id.b);
        free(t->by_path.b);
        free(t->by_target.b);
        links_free(t);
        free(t->ml_pattern);
        free(t->txn_id);
        free(t->file);
        free(t->name);
        free(t->topic);
        free(t);
}
