/* SPDX-License-Identifier: Apache-2.0 */
/*
 * watch: see watch.h.
 *
 * Directories are kept in a list, each with its inotify watch descriptor and its
 * subscribers. A rename is two events with one cookie; the cookies of IN_MOVED_FROM
 * events that a named subscriber got are remembered (a small ring, as the pair is
 * adjacent in the queue unless it overflowed) so the IN_MOVED_TO goes to it too. Callbacks may
 * unsubscribe (themselves or others) while events are dispatched, so a removed subscriber is only
 * marked dead and unlinked after the dispatch, and a directory's inotify watch is removed only once
 * it has no live subscriber.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

#include "io/watch.h"

#define WATCH_MASK                                                                                 \
        (IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE | IN_CREATE | IN_DELETE | IN_MOVED_FROM |          \
         IN_MOVED_TO | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR)

struct watch_sub {
        struct watch_sub *next;
        struct watch_dir *dir;
        char *name; /* NULL: every entry */
        watch_cb_t cb;
        void *userdata;
        bool dead;
};

struct watch_dir {
        struct watch_dir *next;
        int wd; /* -1 once the kernel dropped the watch */
        char *path;
        struct watch_sub *subs;
};

#define MOVES 16

struct watch_move {
        uint32_t cookie;
        struct watch_sub *sub;
};

struct watch {
        int fd;
        struct watch_move moves[MOVES]; /* recent renames away from subscribed names */
        unsigned next_move;
        struct watch_dir *dirs;
        bool dispatching;
        bool garbage; /* dead subscribers wait for the end of a dispatch */
};

int watch_new(struct watch **ret_watch)
{
        struct watch *w = calloc(1, sizeof(*w));
        if (!w)
                return -ENOMEM;
        w->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
        if (w->fd < 0) {
                int r = -errno;
                free(w);
                return r;
        }
        *ret_watch = w;
        return 0;
}

int watch_fd(const struct watch *w)
{
        return w->fd;
}

int watch_add(struct watch *w, const char *dir, const char *name, watch_cb_t cb, void *userdata,
              struct watch_sub **ret_sub)
{
        /* inotify returns the same wd for a directory already watched by this fd. */
        int wd = inotify_add_watch(w->fd, dir, WATCH_MASK);
        if (wd < 0)
                return -errno;

        struct watch_dir *d;
        for (d = w->dirs; d; d = d->next)
                if (d->wd == wd)
                        break;
        if (!d) {
                d = calloc(1, sizeof(*d));
                if (!d)
                        goto fail_rm;
                d->path = strdup(dir);
                if (!d->path) {
                        free(d);
                        goto fail_rm;
                }
                d->wd = wd;
                d->next = w->dirs;
                w->dirs = d;
        }

        struct watch_sub *s = calloc(1, sizeof(*s));
        if (!s)
                goto fail;
        if (name) {
                s->name = strdup(name);
                if (!s->name) {
                        free(s);
                        goto fail;
                }
        }
        s->dir = d;
        s->cb = cb;
        s->userdata = userdata;
        s->next = d->subs;
        d->subs = s;
        *ret_sub = s;
        return 0;

fail:
        if (d->subs)
                return -ENOMEM;
        /* The directory was new: forget it again. */
        w->dirs = d->next;
        free(d->path);
        free(d);
fail_rm:
        (void)inotify_rm_watch(w->fd, wd);
        return -ENOMEM;
}

/* Unlinks dead subscribers and directories without live subscribers. */
static void watch_collect(struct watch *w)
{
        struct watch_dir **dp = &w->dirs;
        while (*dp) {
                struct watch_dir *d = *dp;
                struct watch_sub **sp = &d->subs;
                while (*sp) {
                        struct watch_sub *s = *sp;
                        if (s->dead) {
                                for (unsigned i = 0; i < MOVES; i++)
                                        if (w->moves[i].sub == s)
                                                w->moves[i].sub = NULL;
                                *sp = s->next;
                                free(s->name);
                                free(s);
                        } else {
                                sp = &s->next;
                        }
                }
                if (!d->subs) {
                        if (d->wd >= 0)
                                (void)inotify_rm_watch(w->fd, d->wd);
                        *dp = d->next;
                        free(d->path);
                        free(d);
                } else {
                        dp = &d->next;
                }
        }
        w->garbage = false;
}

void watch_remove(struct watch *w, struct watch_sub *sub)
{
        if (!sub)
                return;
        sub->dead = true;
        w->garbage = true;
        if (!w->dispatching)
                watch_collect(w);
}

static void watch_notify_dir(struct watch *w, struct watch_dir *d, const char *name, uint32_t mask,
                             uint32_t cookie)
{
        for (struct watch_sub *s = d->subs; s; s = s->next) {
                if (s->dead)
                        continue;
                if (name && s->name && strcmp(name, s->name) != 0)
                        continue;
                if ((mask & IN_MOVED_FROM) && s->name && cookie) {
                        w->moves[w->next_move] = (struct watch_move){cookie, s};
                        w->next_move = (w->next_move + 1) % MOVES;
                }
                s->cb(s->userdata, name, mask, cookie);
        }
        if (!(mask & IN_MOVED_TO) || !cookie)
                return;
        for (unsigned i = 0; i < MOVES; i++) {
                struct watch_move *m = &w->moves[i];
                if (m->cookie != cookie || !m->sub)
                        continue;
                struct watch_sub *s = m->sub;
                m->sub = NULL;
                /* Renamed onto its own name: already told above. */
                if (!s->dead && s->dir == d && strcmp(name, s->name) != 0)
                        s->cb(s->userdata, name, mask, cookie);
        }
}

int watch_dispatch(struct watch *w)
{
        char buf[16384] __attribute__((aligned(__alignof__(struct inotify_event))));
        int r = 0;

        w->dispatching = true;
        for (;;) {
                ssize_t n = read(w->fd, buf, sizeof(buf));
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno != EAGAIN)
                                r = -errno;
                        break;
                }
                for (char *p = buf; p < buf + n;) {
                        const struct inotify_event *ev = (const struct inotify_event *)p;
                        p += sizeof(*ev) + ev->len;
                        if (ev->mask & IN_Q_OVERFLOW) {
                                for (struct watch_dir *d = w->dirs; d; d = d->next)
                                        watch_notify_dir(w, d, NULL, IN_Q_OVERFLOW, 0);
                                continue;
                        }
                        struct watch_dir *d;
                        for (d = w->dirs; d; d = d->next)
                                if (d->wd == ev->wd)
                                        break;
                        if (!d)
                                continue;
                        if (ev->mask & (IN_IGNORED | IN_DELETE_SELF | IN_MOVE_SELF)) {
                                if (ev->mask & IN_IGNORED)
                                        d->wd = -1;
                                watch_notify_dir(w, d, NULL, ev->mask, 0);
                                continue;
                        }
                        watch_notify_dir(w, d, ev->len ? ev->name : NULL, ev->mask, ev->cookie);
                }
        }
        w->dispatching = false;
        if (w->garbage)
                watch_collect(w);
        return r;
}

void watch_free(struct watch *w)
{
        if (!w)
                return;
        while (w->dirs) {
                struct watch_dir *d = w->dirs;
                w->dirs = d->next;
                while (d->subs) {
                        struct watch_sub *s = d->subs;
                        d->subs = s->next;
                        free(s->name);
                        free(s);
                }
                free(d->path);
                free(d);
        }
        close(w->fd);
        free(w);
}
