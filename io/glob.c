/* SPDX-License-Identifier: Apache-2.0 */
/*
 * glob: see glob.h.
 *
 * DESIGN. A pattern compiles to at most 64 segments, each a literal (compared with
 * strcmp on its unescaped text), a glob (fnmatch) or `**`. Matching is a simulation of
 * the pattern's nondeterministic automaton over path segments: position i means "segments
 * [0, i) of the pattern have been matched", a set of positions is a uint64_t (positions
 * 0..n-1; reaching n, the end, is reported apart as `accept`). One path segment moves
 * position i to i + 1 if segment i matches it, and keeps i where segment i is `**`; after
 * each step the set is closed under "a `**` at i may match zero directories", i.e. i in
 * the set adds i + 1. The last segment is never `**`, so the closure never reaches n.
 * This is the (pattern segment, path segment) dynamic programme, one column at a time.
 *
 * The same sets answer globset_dir(): after a directory's segments, position n - 1 in
 * the set means one more segment (an entry of the directory) can complete the pattern,
 * any other position means a deeper one can. Along an accepting run positions never
 * decrease and position n - 1 cannot be kept, so every proper ancestor of a matching
 * path has some position below n - 1 (GLOB_DIR_DESCEND) and its parent has n - 1
 * (GLOB_DIR_FILES): the fuzz target checks this.
 *
 * globset_walk() carries the sets of every pattern down the tree (one array of words per
 * depth, allocated once), so an entry costs one step per live pattern position and
 * nothing when it cannot match: the common case in a directory of 10,000 files is
 * readdir plus a few fnmatch calls, with stat only for entries that match (file_cb wants
 * st) or whose type d_type does not tell (DT_UNKNOWN) or that are symlinks. Paths are
 * built in one PATH_MAX buffer, subdirectories opened with openat() relative to their
 * parent (O_NOFOLLOW unless the entry is a symlink we chose to follow, so a directory
 * swapped for a link between readdir and open is not entered through `**`).
 *
 * Revisits: a table keyed by (st_dev, st_ino) holds, per directory, the include
 * positions already explored there. A directory is read with the positions it did not
 * have yet, and skipped if none; a set of positions only grows, so link loops end, and
 * a root lying under another root (same positions, since positions depend only on the
 * path's segments) is read once. Exclude sets are carried but do not count for revisits:
 * they only veto files.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/glob.h"

enum seg_kind {
        SEG_LITERAL,
        SEG_GLOB,
        SEG_STARSTAR,
};

struct seg {
        enum seg_kind kind;
        const char *text; /* literal: the name, unescaped; glob: the fnmatch pattern */
};

struct pat {
        char *buf;         /* copy of the pattern the texts point into */
        size_t n;          /* 1..GLOB_MAX_SEGMENTS */
        uint64_t starstar; /* bit i set: segs[i] is `**` */
        struct seg segs[GLOB_MAX_SEGMENTS];
};

struct globset {
        struct pat *pats; /* n_inc includes, then n_exc excludes */
        size_t n_inc, n_exc;
        char **roots;
        size_t n_roots;
};

/* A path split into normalized segments, each NUL-terminated in buf. A path shorter than
 * PATH_MAX has at most PATH_MAX / 2 segments ("/x" each). */
struct npath {
        size_t n;
        uint16_t off[PATH_MAX / 2];
        char buf[PATH_MAX];
};

static int glob_fail(char *err, size_t errlen, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

/* Writes the message for -EINVAL into err. */
static int glob_fail(char *err, size_t errlen, const char *fmt, ...)
{
        if (err && errlen > 0) {
                va_list ap;
                va_start(ap, fmt);
                (void)vsnprintf(err, errlen, fmt, ap);
                va_end(ap);
        }
        return -EINVAL;
}

bool glob_has_magic(const char *s)
{
        for (; *s; s++) {
                if (*s == '\\') {
                        if (!s[1])
                                break;
                        s++;
                } else if (*s == '*' || *s == '?' || *s == '[') {
                        return true;
                }
        }
        return false;
}

int glob_escape(const char *path, char *buf, size_t len)
{
        size_t o = 0;

        if (len == 0)
                return -ENOBUFS;
        if (len > (size_t)INT_MAX + 1)
                len = (size_t)INT_MAX + 1; /* the length must fit the int returned */
        for (const char *s = path; *s; s++) {
                size_t esc = *s == '*' || *s == '?' || *s == '[' || *s == '\\';
                if (o + esc + 1 >= len)
                        return -ENOBUFS;
                if (esc)
                        buf[o++] = '\\';
                buf[o++] = *s;
        }
        buf[o] = '\0';
        return (int)o;
}

static void unescape(char *s)
{
        char *w = s;

        for (; *s; s++) {
                if (*s == '\\' && s[1])
                        s++;
                *w++ = *s;
        }
        *w = '\0';
}

/* True if s ends with a '\' that escapes nothing. */
static bool ends_escaping(const char *s, size_t len)
{
        size_t k = 0;

        while (k < len && s[len - 1 - k] == '\\')
                k++;
        return k % 2 == 1;
}

/* Compiles src into p (p->buf owned by p even on failure; the caller frees it). */
static int pat_compile(struct pat *p, const char *src, const char *what, char *err, size_t errlen)
{
        struct seg *stack;
        size_t len, depth = 0;
        char *s;
        int r = 0;

        if (!src)
                return glob_fail(err, errlen, "%s missing (NULL)", what);
        len = strlen(src);
        if (src[0] != '/')
                return glob_fail(err, errlen, "%s '%s': not an absolute path", what, src);
        if (len > GLOB_PATTERN_MAX)
                return glob_fail(err, errlen, "%s '%.64s...': longer than %d bytes", what, src,
                                 GLOB_PATTERN_MAX);
        if (src[len - 1] == '/')
                return glob_fail(err, errlen,
                                 "%s '%s': ends with '/', a pattern names files, not directories",
                                 what, src);
        p->buf = malloc(len + 1);
        /* Raw segments go on a stack that '..' pops; only what remains must fit in 64. */
        stack = malloc((len / 2 + 1) * sizeof(*stack));
        if (!p->buf || !stack) {
                r = -ENOMEM;
                goto out;
        }
        memcpy(p->buf, src, len + 1);
        s = p->buf;
        while (*s) {
                char *start, *next;
                bool last;

                while (*s == '/')
                        s++;
                start = s;
                while (*s && *s != '/')
                        s++;
                last = !*s;
                next = last ? s : s + 1;
                *s = '\0';
                s = next;

                if (ends_escaping(start, strlen(start))) {
                        r = glob_fail(err, errlen, "%s '%s': '\\' ends segment '%s'", what, src,
                                      start);
                        goto out;
                }
                if (strcmp(start, "**") == 0) {
                        stack[depth++] = (struct seg){SEG_STARSTAR, start};
                        continue;
                }
                if (glob_has_magic(start)) {
                        stack[depth++] = (struct seg){SEG_GLOB, start};
                        continue;
                }
                unescape(start);
                bool dot = strcmp(start, ".") == 0, dotdot = strcmp(start, "..") == 0;
                if ((dot || dotdot) && last) {
                        r = glob_fail(err, errlen,
                                      "%s '%s': ends with '%s', a pattern names files, not "
                                      "directories",
                                      what, src, start);
                        goto out;
                }
                if (dot)
                        continue;
                if (dotdot) {
                        if (depth > 0)
                                depth--;
                        continue;
                }
                stack[depth++] = (struct seg){SEG_LITERAL, start};
        }
        /* The last raw segment is never '.' or '..', so it was pushed: depth >= 1. */
        if (depth > GLOB_MAX_SEGMENTS) {
                r = glob_fail(err, errlen, "%s '%s': more than %d segments", what, src,
                              GLOB_MAX_SEGMENTS);
                goto out;
        }
        if (stack[depth - 1].kind == SEG_STARSTAR) {
                r = glob_fail(err, errlen,
                              "%s '%s': '**' as the last segment would match directories; "
                              "write '**/*' for every file below",
                              what, src);
                goto out;
        }
        p->n = depth;
        p->starstar = 0;
        for (size_t i = 0; i < depth; i++) {
                p->segs[i] = stack[i];
                if (stack[i].kind == SEG_STARSTAR)
                        p->starstar |= UINT64_C(1) << i;
        }
out:
        free(stack);
        return r;
}

static uint64_t bit(size_t i)
{
        return UINT64_C(1) << i;
}

static unsigned lowest(uint64_t set)
{
        return (unsigned)__builtin_ctzll(set);
}

static bool seg_match(const struct seg *s, const char *name)
{
        if (s->kind == SEG_LITERAL)
                return strcmp(s->text, name) == 0;
        return fnmatch(s->text, name, 0) == 0;
}

/* Adds i + 1 for every `**` at a position i of the set, transitively. */
static uint64_t pat_close(const struct pat *p, uint64_t set)
{
        uint64_t todo = set & p->starstar;

        while (todo) {
                unsigned i = lowest(todo);
                uint64_t b = bit(i + 1); /* i + 1 < n: `**` is never last */

                todo &= todo - 1;
                if (!(set & b)) {
                        set |= b;
                        todo |= b & p->starstar;
                }
        }
        return set;
}

static uint64_t pat_start(const struct pat *p)
{
        return pat_close(p, 1);
}

/* The positions that one more path segment, name, leads to from set. Sets *accept (never
 * clears it) if the pattern's last segment matches name from position n - 1. With
 * starstar false a `**` cannot take name (a symlink the walk does not follow by `**`). */
static uint64_t pat_step(const struct pat *p, uint64_t set, const char *name, bool starstar,
                         bool *accept)
{
        uint64_t next = 0;

        while (set) {
                unsigned i = lowest(set);
                const struct seg *s = &p->segs[i];

                set &= set - 1;
                if (s->kind == SEG_STARSTAR) {
                        if (starstar)
                                next |= bit(i);
                } else if (seg_match(s, name)) {
                        if (i + 1 == p->n)
                                *accept = true;
                        else
                                next |= bit(i + 1);
                }
        }
        return pat_close(p, next);
}

/* Positions after all segments of np. */
static uint64_t pat_run(const struct pat *p, const struct npath *np)
{
        uint64_t set = pat_start(p);

        for (size_t i = 0; i < np->n && set; i++) {
                bool accept = false;
                set = pat_step(p, set, np->buf + np->off[i], true, &accept);
        }
        return set;
}

static bool pat_matches(const struct pat *p, const struct npath *np)
{
        uint64_t set = pat_start(p);

        for (size_t i = 0; i < np->n; i++) {
                bool accept = false;
                set = pat_step(p, set, np->buf + np->off[i], true, &accept);
                if (i + 1 == np->n)
                        return accept;
                if (!set)
                        return false;
        }
        return false;
}

/* Splits and normalizes an absolute path; false if relative or PATH_MAX bytes or more. */
static bool npath_parse(struct npath *np, const char *path)
{
        size_t len = strnlen(path, PATH_MAX), used = 0;
        const char *s = path;

        np->n = 0;
        if (path[0] != '/' || len >= PATH_MAX)
                return false;
        for (;;) {
                const char *e;
                size_t sl;

                while (*s == '/')
                        s++;
                if (!*s)
                        break;
                for (e = s; *e && *e != '/'; e++)
                        ;
                sl = (size_t)(e - s);
                if (sl == 2 && s[0] == '.' && s[1] == '.') {
                        if (np->n > 0)
                                used = np->off[--np->n];
                } else if (!(sl == 1 && s[0] == '.')) {
                        np->off[np->n++] = (uint16_t)used;
                        memcpy(np->buf + used, s, sl);
                        used += sl;
                        np->buf[used++] = '\0';
                }
                s = e;
        }
        return true;
}

bool globset_match(const struct globset *g, const char *path)
{
        struct npath np;
        bool wanted = false;

        if (!npath_parse(&np, path) || np.n == 0)
                return false;
        for (size_t i = 0; i < g->n_inc && !wanted; i++)
                wanted = pat_matches(&g->pats[i], &np);
        for (size_t i = 0; i < g->n_exc && wanted; i++)
                wanted = !pat_matches(&g->pats[g->n_inc + i], &np);
        return wanted;
}

unsigned globset_dir(const struct globset *g, const char *dir)
{
        struct npath np;
        unsigned flags = 0;

        if (!npath_parse(&np, dir))
                return 0;
        for (size_t i = 0; i < g->n_inc; i++) {
                const struct pat *p = &g->pats[i];
                uint64_t set = pat_run(p, &np), last = bit(p->n - 1);

                if (set & last)
                        flags |= GLOB_DIR_FILES;
                if (set & ~last)
                        flags |= GLOB_DIR_DESCEND;
        }
        return flags;
}

size_t globset_roots(const struct globset *g, const char *const **ret_roots)
{
        *ret_roots = (const char *const *)g->roots;
        return g->n_roots;
}

static int globset_build_roots(struct globset *g)
{
        g->roots = calloc(g->n_inc, sizeof(*g->roots));
        if (!g->roots)
                return -ENOMEM;
        for (size_t i = 0; i < g->n_inc; i++) {
                const struct pat *p = &g->pats[i];
                size_t k = 0, need = 2, o = 0;
                char *root;
                bool dup = false;

                while (k + 1 < p->n && p->segs[k].kind == SEG_LITERAL)
                        need += strlen(p->segs[k++].text) + 1;
                root = malloc(need);
                if (!root)
                        return -ENOMEM;
                root[o++] = '/';
                for (size_t j = 0; j < k; j++) {
                        size_t l = strlen(p->segs[j].text);
                        if (j > 0)
                                root[o++] = '/';
                        memcpy(root + o, p->segs[j].text, l);
                        o += l;
                }
                root[o] = '\0';
                for (size_t j = 0; j < g->n_roots && !dup; j++)
                        dup = strcmp(g->roots[j], root) == 0;
                if (dup)
                        free(root);
                else
                        g->roots[g->n_roots++] = root;
        }
        return 0;
}

void globset_free(struct globset *g)
{
        if (!g)
                return;
        if (g->pats)
                for (size_t i = 0; i < g->n_inc + g->n_exc; i++)
                        free(g->pats[i].buf);
        free(g->pats);
        for (size_t i = 0; i < g->n_roots; i++)
                free(g->roots[i]);
        free(g->roots);
        free(g);
}

int globset_new(const char *const *include, size_t n_inc, const char *const *exclude, size_t n_exc,
                char *err, size_t errlen, struct globset **ret)
{
        struct globset *g;
        int r;

        if (!include || n_inc == 0)
                return glob_fail(err, errlen, "no include pattern");
        if (!exclude && n_exc > 0)
                return glob_fail(err, errlen, "exclude patterns missing (NULL)");
        if (n_inc > SIZE_MAX / 2 / sizeof(struct pat) || n_exc > SIZE_MAX / 2 / sizeof(struct pat))
                return glob_fail(err, errlen, "too many patterns");
        g = calloc(1, sizeof(*g));
        if (!g)
                goto fail_nomem;
        g->pats = calloc(n_inc + n_exc, sizeof(*g->pats));
        if (!g->pats)
                goto fail_nomem;
        g->n_inc = n_inc;
        g->n_exc = n_exc;
        for (size_t i = 0; i < n_inc + n_exc; i++) {
                bool inc = i < n_inc;
                r = pat_compile(&g->pats[i], inc ? include[i] : exclude[i - n_inc],
                                inc ? "pattern" : "exclude pattern", err, errlen);
                if (r == -ENOMEM)
                        goto fail_nomem;
                if (r < 0)
                        goto fail;
        }
        if (globset_build_roots(g) < 0)
                goto fail_nomem;
        *ret = g;
        return 0;

fail_nomem:
        r = -ENOMEM;
        if (err && errlen > 0)
                (void)snprintf(err, errlen, "out of memory");
fail:
        globset_free(g);
        return r;
}

/*
 * The walk.
 */

#define WALK_LEVELS (GLOB_WALK_DEPTH + 2) /* roots at 0; entries of the deepest dir at +1 */

struct visit {
        dev_t dev;
        ino_t ino;
        size_t explored; /* index of n_inc words in walker.explored; SIZE_MAX: free slot */
};

struct walker {
        const struct globset *g;
        globset_dir_cb dir_cb;
        globset_file_cb file_cb;
        void *ud;
        struct globset_walk_stats *stats;
        size_t n_pats;        /* words per level: includes then excludes */
        uint64_t *levels;     /* WALK_LEVELS x n_pats */
        struct visit *visits; /* open addressing, capacity a power of two */
        size_t visits_cap, visits_used;
        uint64_t *explored; /* n_inc words per visited directory */
        size_t explored_len, explored_cap;
        size_t len; /* of path */
        char path[PATH_MAX];
};

static size_t visit_hash(dev_t dev, ino_t ino)
{
        uint64_t h = ((uint64_t)ino ^ ((uint64_t)dev << 32 | (uint64_t)dev >> 32)) *
                     UINT64_C(0x9e3779b97f4a7c15);
        return (size_t)(h ^ h >> 29);
}

static int walk_visits_grow(struct walker *w)
{
        size_t cap = w->visits_cap ? w->visits_cap * 2 : 64;
        struct visit *v = malloc(cap * sizeof(*v));

        if (!v)
                return -ENOMEM;
        for (size_t i = 0; i < cap; i++)
                v[i].explored = SIZE_MAX;
        for (size_t i = 0; i < w->visits_cap; i++) {
                const struct visit *o = &w->visits[i];
                size_t h;
                if (o->explored == SIZE_MAX)
                        continue;
                for (h = visit_hash(o->dev, o->ino) & (cap - 1); v[h].explored != SIZE_MAX;
                     h = (h + 1) & (cap - 1))
                        ;
                v[h] = *o;
        }
        free(w->visits);
        w->visits = v;
        w->visits_cap = cap;
        return 0;
}

/* The explored words of directory (dev, ino), zeroed and *ret_new set if first seen. The
 * index stays valid, the pointer w->explored + index until the next call. */
static int walk_visit(struct walker *w, dev_t dev, ino_t ino, size_t *ret_idx, bool *ret_new)
{
        size_t n = w->g->n_inc, h;

        if (w->visits_used * 2 >= w->visits_cap && walk_visits_grow(w) < 0)
                return -ENOMEM;
        for (h = visit_hash(dev, ino) & (w->visits_cap - 1); w->visits[h].explored != SIZE_MAX;
             h = (h + 1) & (w->visits_cap - 1)) {
                if (w->visits[h].dev == dev && w->visits[h].ino == ino) {
                        *ret_idx = w->visits[h].explored;
                        *ret_new = false;
                        return 0;
                }
        }
        if (w->explored_cap - w->explored_len < n) {
                size_t cap = w->explored_cap ? w->explored_cap * 2 : 64 * n;
                uint64_t *e = realloc(w->explored, cap * sizeof(*e));
                if (!e)
                        return -ENOMEM;
                w->explored = e;
                w->explored_cap = cap;
        }
        memset(w->explored + w->explored_len, 0, n * sizeof(*w->explored));
        w->visits[h] = (struct visit){dev, ino, w->explored_len};
        w->visits_used++;
        w->explored_len += n;
        *ret_idx = w->visits[h].explored;
        *ret_new = true;
        return 0;
}

/* A stat of an entry failed: vanished entries and dangling or looping links are not
 * errors, just not there. */
static int walk_stat_failed(struct walker *w)
{
        if (errno != ENOENT && errno != ENOTDIR && errno != ELOOP)
                w->stats->errors++;
        return 0;
}

static int walk_read(struct walker *w, DIR *d, unsigned depth, uint64_t *cur);

/* Reads directory fd (path in w->path, positions cur) unless nothing new is to be found
 * there. Takes fd. */
static int walk_enter(struct walker *w, int fd, unsigned depth, uint64_t *cur)
{
        struct stat st;
        uint64_t *ex;
        size_t idx;
        bool fresh, any = false;
        DIR *d;
        int r;

        if (fstat(fd, &st) < 0) {
                w->stats->errors++;
                close(fd);
                return 0;
        }
        r = walk_visit(w, st.st_dev, st.st_ino, &idx, &fresh);
        if (r < 0) {
                close(fd);
                return r;
        }
        ex = w->explored + idx;
        for (size_t i = 0; i < w->g->n_inc; i++) {
                cur[i] &= ~ex[i];
                ex[i] |= cur[i];
                any |= cur[i] != 0;
        }
        if (!any) {
                w->stats->revisited++;
                close(fd);
                return 0;
        }
        if (w->dir_cb) {
                r = w->dir_cb(w->ud, w->path);
                if (r) {
                        close(fd);
                        return r;
                }
        }
        d = fdopendir(fd);
        if (!d) {
                w->stats->errors++;
                close(fd);
                return 0;
        }
        w->stats->dirs++;
        r = walk_read(w, d, depth, cur);
        closedir(d);
        return r;
}

static bool walk_excluded(const struct walker *w, const uint64_t *cur, const char *name)
{
        const struct globset *g = w->g;
        bool accept = false;

        for (size_t i = g->n_inc; i < g->n_inc + g->n_exc && !accept; i++)
                (void)pat_step(&g->pats[i], cur[i], name, true, &accept);
        return accept;
}

/* Enters subdirectory name of dfd; next holds the include positions a full step gave. */
static int walk_descend(struct walker *w, int dfd, const char *name, unsigned depth,
                        const uint64_t *cur, uint64_t *next, bool is_link)
{
        const struct globset *g = w->g;
        int fd;

        if (is_link) {
                /* Only a literal or single-segment glob may take a link's name. */
                bool live = false;
                for (size_t i = 0; i < g->n_inc; i++) {
                        bool accept = false;
                        next[i] = pat_step(&g->pats[i], cur[i], name, false, &accept);
                        live |= next[i] != 0;
                }
                if (!live)
                        return 0;
        }
        if (depth >= GLOB_WALK_DEPTH) {
                w->stats->too_deep++;
                return 0;
        }
        for (size_t i = g->n_inc; i < g->n_inc + g->n_exc; i++) {
                bool accept = false;
                next[i] = pat_step(&g->pats[i], cur[i], name, true, &accept);
        }
        fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | (is_link ? 0 : O_NOFOLLOW));
        if (fd < 0)
                return walk_stat_failed(w);
        return walk_enter(w, fd, depth + 1, next);
}

/* One entry that matches (accept) or may lead to a match (live); its path is in w->path. */
static int walk_entry(struct walker *w, int dfd, const struct dirent *de, unsigned depth,
                      const uint64_t *cur, uint64_t *next, bool accept, bool live)
{
        const char *name = de->d_name;
        bool have_st = false, is_dir = false, is_link = false;
        struct stat st;

        /* d_type saves a stat per entry; file systems that do not fill it say DT_UNKNOWN. */
        switch (de->d_type) {
        case DT_DIR:
                is_dir = true;
                break;
        case DT_LNK:
                is_link = true;
                break;
        case DT_UNKNOWN:
                if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                        return walk_stat_failed(w);
                is_link = S_ISLNK(st.st_mode);
                is_dir = S_ISDIR(st.st_mode);
                have_st = !is_link;
                break;
        default:
                break;
        }
        if (is_link) {
                if (fstatat(dfd, name, &st, 0) < 0)
                        return walk_stat_failed(w);
                have_st = true;
                is_dir = S_ISDIR(st.st_mode);
        }
        if (accept && !walk_excluded(w, cur, name)) {
                if (!have_st && fstatat(dfd, name, &st, 0) < 0)
                        return walk_stat_failed(w);
                w->stats->files++;
                if (w->file_cb) {
                        int r = w->file_cb(w->ud, w->path, &st);
                        if (r)
                                return r;
                }
        }
        if (!live || !is_dir)
                return 0;
        return walk_descend(w, dfd, name, depth, cur, next, is_link);
}

static int walk_read(struct walker *w, DIR *d, unsigned depth, uint64_t *cur)
{
        const struct globset *g = w->g;
        uint64_t *next = cur + w->n_pats;
        size_t base = w->len, sep = base > 1; /* no '/' after the root "/" */
        int dfd = dirfd(d);

        for (;;) {
                struct dirent *de;
                const char *name;
                bool accept = false, live = false;
                size_t nl;
                int r;

                errno = 0;
                de = readdir(d);
                if (!de) {
                        if (errno)
                                w->stats->errors++;
                        return 0;
                }
                name = de->d_name;
                if (name[0] == '.' && (!name[1] || (name[1] == '.' && !name[2])))
                        continue;
                w->stats->entries++;
                for (size_t i = 0; i < g->n_inc; i++) {
                        next[i] = cur[i] ? pat_step(&g->pats[i], cur[i], name, true, &accept) : 0;
                        live |= next[i] != 0;
                }
                if (!accept && !live)
                        continue;
                nl = strlen(name);
                if (base + sep + nl >= sizeof(w->path)) {
                        w->stats->errors++;
                        continue;
                }
                if (sep)
                        w->path[base] = '/';
                memcpy(w->path + base + sep, name, nl + 1);
                w->len = base + sep + nl;
                r = walk_entry(w, dfd, de, depth, cur, next, accept, live);
                w->len = base;
                w->path[base] = '\0';
                if (r)
                        return r;
        }
}

/* The positions of every pattern at directory path (a root). */
static void walk_root_positions(const struct globset *g, const char *path, uint64_t *set)
{
        struct npath np;

        (void)npath_parse(&np, path); /* roots are normalized and short enough */
        for (size_t i = 0; i < g->n_inc + g->n_exc; i++)
                set[i] = pat_run(&g->pats[i], &np);
}

/* A root is missing: reports its deepest existing ancestor, if not reported yet. */
static int walk_ancestor(struct walker *w, const char *root)
{
        struct stat st;
        size_t idx;
        bool fresh;
        int fd, r;

        (void)snprintf(w->path, sizeof(w->path), "%s", root);
        for (;;) {
                char *slash = strrchr(w->path, '/');

                if (slash == w->path) {
                        if (!w->path[1])
                                return 0;
                        slash++;
                }
                *slash = '\0';
                fd = open(w->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (fd >= 0)
                        break;
                if (errno != ENOENT && errno != ENOTDIR) {
                        w->stats->errors++;
                        return 0;
                }
        }
        r = fstat(fd, &st) < 0 ? -errno : 0;
        close(fd);
        if (r < 0) {
                w->stats->errors++;
                return 0;
        }
        r = walk_visit(w, st.st_dev, st.st_ino, &idx, &fresh);
        if (r < 0 || !fresh || !w->dir_cb)
                return r;
        return w->dir_cb(w->ud, w->path);
}

int globset_walk(const struct globset *g, globset_dir_cb dir_cb, globset_file_cb file_cb, void *ud,
                 struct globset_walk_stats *stats)
{
        struct globset_walk_stats unused;
        struct walker *w;
        bool *missing = NULL;
        int r = -ENOMEM;

        if (!stats)
                stats = &unused;
        memset(stats, 0, sizeof(*stats));
        w = calloc(1, sizeof(*w));
        if (!w)
                return -ENOMEM;
        w->g = g;
        w->dir_cb = dir_cb;
        w->file_cb = file_cb;
        w->ud = ud;
        w->stats = stats;
        w->n_pats = g->n_inc + g->n_exc;
        w->levels = calloc(WALK_LEVELS * w->n_pats, sizeof(*w->levels));
        missing = calloc(g->n_roots, sizeof(*missing));
        if (!w->levels || !missing)
                goto out;

        r = 0;
        for (size_t i = 0; i < g->n_roots && r == 0; i++) {
                const char *root = g->roots[i];
                int fd;

                w->len = strlen(root);
                memcpy(w->path, root, w->len + 1);
                walk_root_positions(g, root, w->levels);
                fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (fd < 0) {
                        if (errno == ENOENT || errno == ENOTDIR)
                                missing[i] = true;
                        else
                                stats->errors++;
                        continue;
                }
                r = walk_enter(w, fd, 0, w->levels);
        }
        for (size_t i = 0; i < g->n_roots && r == 0; i++)
                if (missing[i])
                        r = walk_ancestor(w, g->roots[i]);
out:
        free(missing);
        free(w->levels);
        free(w->visits);
        free(w->explored);
        free(w);
        return r;
}
