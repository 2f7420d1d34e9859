/* SPDX-License-Identifier: Apache-2.0 */
/*
 * glob: file discovery patterns of the TailSource connector (`files=` includes,
 * `exclude=` excludes). A globset answers three questions: is this path wanted
 * (globset_match), which directories must be watched because a wanted file can appear in
 * them or below them (globset_dir), and which files exist now (globset_walk, at start and
 * at each rescan).
 *
 * Pattern syntax. A pattern is an absolute path (the config layer resolves relative
 * ones against the working directory first) of at most GLOB_PATTERN_MAX bytes:
 *
 *   - '/' separates segments, always (even after '\', and inside what looks like a
 *     `[...]` class: file names cannot hold a '/'); repeated '/' collapse;
 *   - '.' segments are dropped and '..' removes the segment before it, whatever that is
 *     (`/a/STAR/../x` is `/a/x`), lexically and never above '/', as realpath would
 *     without looking at the filesystem; at most GLOB_MAX_SEGMENTS segments remain;
 *   - within a segment, fnmatch(3) without flags: `*` any run of characters, `?` one
 *     character (a byte in the C locale), `[abc]` `[a-z]` `[!a]` `[^a]` `[[:digit:]]` classes, `\`
 * makes the next character literal; `*` and `?` also match a leading '.', as Go's filepath.Glob
 *     (Filebeat) does; `a**b` is just `a*b`;
 *   - a segment that is exactly `**` matches zero or more whole directories:
 *     `/a/STARSTAR/x.log` matches /a/x.log, /a/b/x.log and /a/b/c/x.log;
 *   - a pattern names files: a trailing '/', a last segment of '.' or '..', and a last
 *     segment of `**` (it would match directories; write `STARSTAR/STAR`) are errors, as
 *     are a '\' ending a segment and a relative pattern.
 * (STAR and STARSTAR stand for `*` and `**`, which cannot be written in a C comment.)
 *
 * Paths given to globset_match() and globset_dir() are normalized the same way ('//',
 * '.', '..'; a trailing '/' is ignored) and compared byte by byte with the patterns;
 * relative paths and paths of PATH_MAX bytes or more match nothing.
 *
 * Matching runs each pattern as a nondeterministic automaton over path segments: the
 * state is the set of pattern positions the path so far can have reached (a 64-bit
 * mask), advanced one path segment at a time. That is O(path segments x pattern
 * segments) fnmatch calls whatever the number of `**`.
 *
 * A globset is immutable once built: any thread may use it concurrently; globset_walk
 * keeps its state on the heap of the call.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#define GLOB_PATTERN_MAX  4096 /* bytes of one pattern, without the NUL */
#define GLOB_MAX_SEGMENTS 64   /* segments of one pattern, after normalization */
#define GLOB_WALK_DEPTH   32   /* directory levels globset_walk enters below a root */

struct globset;

/* include: n_inc >= 1 patterns; exclude: n_exc patterns (0 allowed, exclude may then be
 * NULL). The strings are copied. Returns 0 and *ret; -EINVAL with a message naming the
 * offending pattern in err (always NUL-terminated when errlen > 0; err may be NULL);
 * -ENOMEM. */
int globset_new(const char *const *include, size_t n_inc, const char *const *exclude, size_t n_exc,
                char *err, size_t errlen, struct globset **ret);

/* NULL is a no-op. */
void globset_free(struct globset *g);

/* True if the path, normalized, matches an include pattern and no exclude pattern. */
bool globset_match(const struct globset *g, const char *path);

enum {
        GLOB_DIR_FILES = 1u << 0,   /* an entry directly in the directory can match */
        GLOB_DIR_DESCEND = 1u << 1, /* an entry below a subdirectory can match */
};

/* What the directory dir (absolute, normalized as above) is to the include patterns:
 * GLOB_DIR_* flags, 0 if nothing in or below it can match. Exclude patterns are not
 * considered (they remove files, never directories). The directory of a path that
 * globset_match()es has GLOB_DIR_FILES, every directory above that one GLOB_DIR_DESCEND. */
unsigned globset_dir(const struct globset *g, const char *dir);

/* The static roots: for each include pattern the directory made of its leading
 * segments without magic (unescaped), the last segment excluded: "/srv" for
 * /srv/STAR/logs/STARSTAR/STAR.log, "/var/log" for /var/log/syslog, "/" when the first
 * segment has magic. In include order, without duplicates; a root below another root is
 * still listed. *ret_roots is borrowed from g and lives as long as g. Returns the count. */
size_t globset_roots(const struct globset *g, const char *const **ret_roots);

/* dir: a directory being entered. Non-zero stops the walk. */
typedef int (*globset_dir_cb)(void *ud, const char *dir);
/* path: an entry that globset_match()es; st: stat() of it, symlinks followed. Non-zero
 * stops the walk. */
typedef int (*globset_file_cb)(void *ud, const char *path, const struct stat *st);

struct globset_walk_stats {
        uint64_t dirs;      /* directories read */
        uint64_t entries;   /* directory entries looked at */
        uint64_t files;     /* calls of file_cb */
        uint64_t errors;    /* directories or entries skipped on an error (EACCES, ...) */
        uint64_t too_deep;  /* subdirectories not entered: GLOB_WALK_DEPTH reached */
        uint64_t revisited; /* directories reached again and skipped (loops, overlaps) */
};

/*
 * Lists what exists now, from each root in globset_roots() order:
 *
 *   - dir_cb(ud, dir) for each directory entered: the roots, and below them every
 *     directory with globset_dir() != 0 (those to watch). For a root that does not exist
 *     (or is not a directory), dir_cb gets its deepest existing ancestor instead, so that
 *     watching it shows the root being created (once, and not if the walk entered it);
 *   - file_cb(ud, path, &st) for every entry that globset_match()es, st from stat():
 *     symlinks are followed (Kubernetes' /var/log/containers/STAR.log are symlinks), and
 *     non-regular targets (directories, FIFOs, sockets, devices) are reported too, st
 *     says what they are. Dangling symlinks and entries that vanish are not reported.
 *
 * Subdirectories are entered only where a pattern can still match below them, at most
 * GLOB_WALK_DEPTH levels below a root. A symlink to a directory is followed where a
 * literal or single-segment glob segment matches its name, never by `**` (so a link
 * cannot make `**` loop or escape the tree). Each directory (st_dev, st_ino) is read once
 * per pattern position: a directory reached again (a link loop, a root below another
 * root) is skipped unless the new route brings pattern positions not explored there yet
 * (a link from another pattern's tree), and then is read for those only, with dir_cb
 * called again under the new name. Paths are built from the root and the names read:
 * a file reached by several routes can be reported under each name.
 *
 * Missing roots and vanished entries are not errors. Directories and entries that cannot
 * be read (EACCES, ENAMETOOLONG, ...) are skipped and counted in stats->errors.
 * Callbacks may be NULL. stats (may be NULL) is filled whatever the result.
 *
 * Callbacks run on the calling thread, inside the walk; they must not free g.
 * Returns 0, the first non-zero callback result (the walk stops there), or -ENOMEM.
 * Cost: one readdir pass per directory, one fstatat per matched entry and per symlink
 * or DT_UNKNOWN entry that could lead on; no allocation per entry.
 */
int globset_walk(const struct globset *g, globset_dir_cb dir_cb, globset_file_cb file_cb, void *ud,
                 struct globset_walk_stats *stats);

/* True if s contains a `*`, `?` or `[` not escaped by '\'. */
bool glob_has_magic(const char *s);

/* Writes path with a '\' before each `*`, `?`, `[` and '\' into buf (len bytes with the
 * NUL), so that the result, as a pattern, matches that path only (the FileStreamSource
 * connector's `file=` is such a literal path). Returns the length written without the
 * NUL, or -ENOBUFS (buf then holds nothing useful). */
int glob_escape(const char *path, char *buf, size_t len);
