/* SPDX-License-Identifier: Apache-2.0 */
/*
 * watch: inotify on directories. Tailers subscribe to the directory of the file
 * they follow (one inotify watch per directory, shared by its subscribers), so one
 * watch sees the file appear, grow, be renamed, truncated or deleted, even before
 * the file exists. The caller polls watch_fd() and calls watch_dispatch() when it
 * is readable.
 *
 * A subscriber's callback gets the name of the entry an event is about and the
 * inotify mask. A subscriber of one name also gets the IN_MOVED_TO that pairs (by
 * inotify's cookie) with an IN_MOVED_FROM of its name: where the file went, even if
 * it was created and renamed before anyone looked at it. After a queue overflow, or when the
 * directory itself goes away, every subscriber of the affected directories (all of them, for an
 * overflow) is called with name NULL: events may have been lost, look again.
 *
 * Threading: the event loop's thread only.
 */
#pragma once

#include <stdint.h>

struct watch;
struct watch_sub;

/* cookie: inotify's, which pairs an IN_MOVED_FROM with its IN_MOVED_TO (0 otherwise). */
typedef void (*watch_cb_t)(void *userdata, const char *name, uint32_t mask, uint32_t cookie);

/* Returns 0, -errno from inotify_init1, -ENOMEM. */
int watch_new(struct watch **ret_watch);

/* The inotify descriptor (non-blocking, close-on-exec), to poll for POLLIN. */
int watch_fd(const struct watch *w);

/* Subscribes cb to events in directory dir (name NULL: every entry, otherwise only
 * that entry). Returns 0 and *ret_sub, -ENOENT/-ENOTDIR (dir missing), -ENOSPC
 * (inotify watch limit reached), -errno, -ENOMEM. The caller falls back to rescans
 * when this fails. */
int watch_add(struct watch *w, const char *dir, const char *name, watch_cb_t cb, void *userdata,
              struct watch_sub **ret_sub);

/* Unsubscribes; the last subscriber of a directory removes its inotify watch.
 * NULL is a no-op. Safe to call from a callback for any subscription. */
void watch_remove(struct watch *w, struct watch_sub *sub);

/* Reads every queued event and runs the callbacks. Returns 0 or -errno. */
int watch_dispatch(struct watch *w);

/* NULL is a no-op. */
void watch_free(struct watch *w);
