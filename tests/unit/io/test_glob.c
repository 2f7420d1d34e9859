/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests of io/glob: file discovery patterns. A table of (pattern, path, expected)
 * covers the syntax and normalization; then exclusion, the directory flags of every
 * ancestor of matching paths, roots, pattern errors, escaping, a pathological `**`
 * pattern, and globset_walk() over trees built under a fresh mkdtemp() directory
 * ($TMPDIR or /tmp), compared entry by entry with what must be reported.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "io/glob.h"

static struct globset *new_set(const char *const *inc, size_t n_inc, const char *const *exc,
                               size_t n_exc)
{
        struct globset *g = NULL;
        char err[256] = "";
        int r = globset_new(inc, n_inc, exc, n_exc, err, sizeof(err), &g);
        if (r != 0)
                fail_msg("globset_new: %d %s", r, err);
        return g;
}

static struct globset *new_one(const char *pattern)
{
        return new_set(&pattern, 1, NULL, 0);
}

struct match_case {
        const char *pattern;
        const char *path;
        bool match;
};

static void test_match_table(void **state)
{
        (void)state;
        static const struct match_case cases[] = {
                {"/var/log/*.log", "/var/log/a.log", true},
                {"/var/log/*.log", "/var/log/a.txt", false},
                {"/var/log/*.log", "/var/log/sub/a.log", false},
                {"/var/log/*.log", "/var/log/.hidden.log", true}, /* no FNM_PERIOD */
                {"/var/log/*.log", "/var/log/.log", true},
                {"/var/log/*.log", "/var/log", false},
                {"/var/log/*", "/var/log/.x", true},
                {"/d/a?.log", "/d/ab.log", true},
                {"/d/a?.log", "/d/a.log", false},
                {"/d/a?.log", "/d/abc.log", false},
                {"/d/?", "/d/.", false}, /* "." is normalized away: the path is /d */
                {"/d/[ab]x", "/d/ax", true},
                {"/d/[ab]x", "/d/cx", false},
                {"/d/[!ab]x", "/d/cx", true},
                {"/d/[!ab]x", "/d/bx", false},
                {"/d/[^ab]x", "/d/cx", true},
                {"/d/[a-c]x", "/d/bx", true},
                {"/d/[a-c]x", "/d/dx", false},
                {"/d/[[:digit:]]x", "/d/7x", true},
                {"/d/[[:digit:]]x", "/d/ax", false},
                {"/d/a[", "/d/a[", true}, /* an unclosed class is literal, as fnmatch has it */
                {"/d/a\\*b", "/d/a*b", true},
                {"/d/a\\*b", "/d/axb", false},
                {"/d/\\[x\\]", "/d/[x]", true},
                {"/d/\\[x\\]", "/d/x", false},
                {"/d/a\\\\b", "/d/a\\b", true},
                {"/d/\\a", "/d/a", true},
                {"/d/a**b", "/d/axyzb", true}, /* not alone in its segment: just `*` */
                {"/d/a**b", "/d/ax/yb", false},
                {"/a/**/*.log", "/a/x.log", true}, /* zero directories */
                {"/a/**/*.log", "/a/b/x.log", true},
                {"/a/**/*.log", "/a/b/c/d/e/x.log", true},
                {"/a/**/*.log", "/a/.git/x.log", true},
                {"/a/**/*.log", "/b/x.log", false},
                {"/a/**/*.log", "/a/b/x.txt", false},
                {"/a/**/*.log", "/a", false},
                {"/**/x.log", "/x.log", true},
                {"/**/x.log", "/p/q/x.log", true},
                {"/a/**/b/**/c.log", "/a/b/c.log", true},
                {"/a/**/b/**/c.log", "/a/x/b/y/z/c.log", true},
                {"/a/**/b/**/c.log", "/a/b/b/b/c.log", true},
                {"/a/**/b/**/c.log", "/a/x/y/c.log", false},
                {"/a/**/b/**/c.log", "/a/b/c.log/d", false},
                {"/a/**/**/c", "/a/c", true},
                {"/a/**/**/c", "/a/1/2/3/c", true},
                {"/srv/*/logs/**/*.log", "/srv/app/logs/x.log", true},
                {"/srv/*/logs/**/*.log", "/srv/app/logs/2024/01/x.log", true},
                {"/srv/*/logs/**/*.log", "/srv/logs/x.log", false},
                {"/srv/*/logs/**/*.log", "/srv/a/b/logs/x.log", false},
                {"/etc/app.log", "/etc/app.log", true},
                {"/etc/app.log", "/etc/app.lo", false},
                {"/d/*", "/d/*", true},
                {"/d/*", "/d", false},
                {"/d/*", "/", false},
                /* normalization of patterns */
                {"/var//log/./app/../*.log", "/var/log/x.log", true},
                {"/var/log/*/../x.log", "/var/log/x.log", true},
                {"/../../x.log", "/x.log", true},
                {"//a///b.log", "/a/b.log", true},
                /* normalization of paths */
                {"/var/log/*.log", "/var/log/../log/./x.log", true},
                {"/var/log/*.log", "//var///log//x.log", true},
                {"/var/log/*.log", "/var/log/x.log/", true},
                {"/x.log", "/../../x.log", true},
                {"/var/log/*.log", "/var/log/sub/../x.log", true},
                {"/var/log/*.log", "var/log/x.log", false}, /* relative */
                {"/var/log/*.log", "", false},
        };
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                struct globset *g = new_one(cases[i].pattern);
                if (globset_match(g, cases[i].path) != cases[i].match)
                        fail_msg("'%s' vs '%s': expected %d", cases[i].pattern, cases[i].path,
                                 cases[i].match);
                globset_free(g);
        }
}

static void expect_error(const char *pattern, const char *needle)
{
        struct globset *g = (struct globset *)&g; /* must stay untouched */
        char err[256] = "";

        assert_int_equal(globset_new(&pattern, 1, NULL, 0, err, sizeof(err), &g), -EINVAL);
        assert_ptr_equal(g, (struct globset *)&g);
        if (!strstr(err, needle))
                fail_msg("pattern '%s': message '%s' lacks '%s'", pattern, err, needle);
        /* The message names the pattern (or its start, when it is very long). */
        if (strlen(pattern) < 64 && !strstr(err, pattern))
                fail_msg("message '%s' does not name '%s'", err, pattern);
}

static void test_errors(void **state)
{
        (void)state;
        expect_error("var/log/*.log", "not an absolute path");
        expect_error("", "not an absolute path");
        expect_error("./x.log", "not an absolute path");
        expect_error("/var/log/", "ends with '/'");
        expect_error("/", "ends with '/'");
        expect_error("/var/log/.", "ends with '.'");
        expect_error("/var/log/..", "ends with '..'");
        expect_error("/var/log/**", "'**' as the last segment");
        expect_error("/var/**/./**", "'**' as the last segment");
        expect_error("/a/b\\", "'\\' ends segment");
        expect_error("/a/b\\/c", "'\\' ends segment"); /* '/' always separates */
        expect_error("/a/b\\\\\\", "'\\' ends segment");

        /* 64 segments are fine, 65 are not; '..' counts after resolution. */
        char buf[GLOB_PATTERN_MAX + 2];
        size_t o = 0;
        for (int i = 0; i < 64; i++)
                o += (size_t)sprintf(buf + o, "/s");
        struct globset *g = new_one(buf);
        globset_free(g);
        strcpy(buf + o, "/t");
        expect_error(buf, "more than 64 segments");
        strcpy(buf + o, "/t/../u/..");
        expect_error(buf, "ends with '..'");
        strcpy(buf + o, "/t/../u");
        expect_error(buf, "more than 64 segments");
        strcpy(buf + o - 2, "/t/../u"); /* 63 + "u" */
        g = new_one(buf);
        globset_free(g);

        /* GLOB_PATTERN_MAX bytes are fine, one more is not. */
        buf[0] = '/';
        memset(buf + 1, 'a', GLOB_PATTERN_MAX - 1);
        buf[GLOB_PATTERN_MAX - 1] = '*';
        buf[GLOB_PATTERN_MAX] = '\0';
        g = new_one(buf);
        buf[GLOB_PATTERN_MAX - 1] = '\0'; /* a path must be shorter than PATH_MAX */
        assert_true(globset_match(g, buf));
        globset_free(g);
        buf[GLOB_PATTERN_MAX - 1] = 'a';
        buf[GLOB_PATTERN_MAX] = 'a';
        buf[GLOB_PATTERN_MAX + 1] = '\0';
        expect_error(buf, "longer than 4096 bytes");

        /* Which list, which pattern; NULL err is allowed; n_inc 0 is an error. */
        const char *inc[] = {"/ok/*.log", "/also/ok"};
        const char *exc[] = {"/fine/*", "relative/*"};
        char err[256] = "";
        g = NULL;
        assert_int_equal(globset_new(inc, 2, exc, 2, err, sizeof(err), &g), -EINVAL);
        assert_null(g);
        assert_string_equal(err, "exclude pattern 'relative/*': not an absolute path");
        assert_int_equal(globset_new(inc, 2, exc, 2, NULL, 0, &g), -EINVAL);
        assert_int_equal(globset_new(inc, 0, NULL, 0, err, sizeof(err), &g), -EINVAL);
        assert_string_equal(err, "no include pattern");
        const char *with_null[] = {"/ok", NULL};
        assert_int_equal(globset_new(with_null, 2, NULL, 0, err, sizeof(err), &g), -EINVAL);
        assert_null(g);
        char small[8];
        assert_int_equal(globset_new(exc + 1, 1, NULL, 0, small, sizeof(small), &g), -EINVAL);
        assert_string_equal(small, "pattern"); /* truncated, terminated */
        globset_free(NULL);
}

static void test_exclude_wins(void **state)
{
        (void)state;
        const char *inc[] = {"/var/log/**/*.log", "/var/log/old/keep.log"};
        const char *exc[] = {"/var/log/**/debug*.log", "/var/log/old/**/*"};
        struct globset *g = new_set(inc, 2, exc, 2);

        assert_true(globset_match(g, "/var/log/a.log"));
        assert_true(globset_match(g, "/var/log/x/y/a.log"));
        assert_false(globset_match(g, "/var/log/debug1.log"));
        assert_false(globset_match(g, "/var/log/x/debug.log"));
        assert_false(globset_match(g, "/var/log/old/a.log"));
        assert_false(globset_match(g, "/var/log/old/x/a.log"));
        assert_false(globset_match(g, "/var/log/old/keep.log")); /* included twice, excluded */
        assert_false(globset_match(g, "/var/log/a.txt"));
        /* Excludes never remove directories. */
        assert_int_equal(globset_dir(g, "/var/log/old"), GLOB_DIR_FILES | GLOB_DIR_DESCEND);
        globset_free(g);
}

/* Every proper ancestor of path has DESCEND, its parent FILES. */
static void check_ancestors(const struct globset *g, const char *path)
{
        char dir[PATH_MAX];
        size_t len = strlen(path);

        assert_true(globset_match(g, path));
        while (len > 0 && path[len - 1] != '/')
                len--;
        memcpy(dir, path, len);
        dir[len > 1 ? len - 1 : 1] = '\0';
        if (!(globset_dir(g, dir) & GLOB_DIR_FILES))
                fail_msg("'%s': parent '%s' lacks GLOB_DIR_FILES", path, dir);
        while (strcmp(dir, "/") != 0) {
                char *slash = strrchr(dir, '/');
                slash[slash == dir] = '\0';
                if (!(globset_dir(g, dir) & GLOB_DIR_DESCEND))
                        fail_msg("'%s': ancestor '%s' lacks GLOB_DIR_DESCEND", path, dir);
        }
}

static void test_dir_flags(void **state)
{
        (void)state;
        const char *inc[] = {"/srv/*/logs/**/*.log", "/var/log/app/*.log"};
        const char *exc[] = {"/srv/**/*"};
        struct globset *g = new_set(inc, 2, exc, 1);
        const unsigned F = GLOB_DIR_FILES, D = GLOB_DIR_DESCEND;

        assert_int_equal(globset_dir(g, "/"), D);
        assert_int_equal(globset_dir(g, "/srv"), D);
        assert_int_equal(globset_dir(g, "/srv/"), D);
        assert_int_equal(globset_dir(g, "/srv/app"), D);
        assert_int_equal(globset_dir(g, "/srv/app/logs"), F | D);
        assert_int_equal(globset_dir(g, "/srv/app/logs/a/b"), F | D);
        assert_int_equal(globset_dir(g, "/srv/app/other"), 0);
        assert_int_equal(globset_dir(g, "/srv/app/other/logs"), 0);
        assert_int_equal(globset_dir(g, "/var"), D);
        assert_int_equal(globset_dir(g, "/var/log"), D);
        assert_int_equal(globset_dir(g, "/var/log/app"), F);
        assert_int_equal(globset_dir(g, "/var/log/app/sub"), 0);
        assert_int_equal(globset_dir(g, "/var/log/app/sub/.."), F);
        assert_int_equal(globset_dir(g, "/etc"), 0);
        assert_int_equal(globset_dir(g, "srv"), 0);
        globset_free(g);

        static const struct match_case paths[] = {
                {"/a/**/b/**/c.log", "/a/b/c.log", true},
                {"/a/**/b/**/c.log", "/a/x/b/b/y/c.log", true},
                {"/**/x.log", "/x.log", true},
                {"/**/x.log", "/p/q/r/x.log", true},
                {"/srv/*/logs/**/*.log", "/srv/app/logs/2024/x.log", true},
                {"/d/[a-c]?/*/z", "/d/bq/r/z", true},
                {"/x/y/z.log", "/x/y/z.log", true},
        };
        for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
                g = new_one(paths[i].pattern);
                check_ancestors(g, paths[i].path);
                globset_free(g);
        }
}

static void test_roots(void **state)
{
        (void)state;
        const char *inc[] = {
                "/srv/*/logs/**/*.log",
                "/var/log/app/*.log",
                "/*/x.log",
                "/var/log/syslog",
                "/var/log/app/*.txt",
                "/data/a\\*b/*.log",
                "/var//log/./app/../app/c.log",
                "/x.log",
                "/opt/**/a/b.log",
        };
        const char *want[] = {"/srv", "/var/log/app", "/", "/var/log", "/data/a*b", "/opt"};
        struct globset *g = new_set(inc, sizeof(inc) / sizeof(inc[0]), NULL, 0);
        const char *const *roots;
        size_t n = globset_roots(g, &roots);

        assert_int_equal(n, sizeof(want) / sizeof(want[0]));
        for (size_t i = 0; i < n; i++)
                assert_string_equal(roots[i], want[i]);
        globset_free(g);
}

static void test_magic_and_escape(void **state)
{
        (void)state;
        assert_false(glob_has_magic(""));
        assert_false(glob_has_magic("/var/log/app.log"));
        assert_true(glob_has_magic("a*c"));
        assert_true(glob_has_magic("a?"));
        assert_true(glob_has_magic("[x]"));
        assert_false(glob_has_magic("a\\*c"));
        assert_false(glob_has_magic("\\[x]"));
        assert_true(glob_has_magic("\\\\*"));
        assert_false(glob_has_magic("a\\"));
        assert_false(glob_has_magic("a]"));

        char buf[64];
        assert_int_equal(glob_escape("/a*", buf, 5), 4);
        assert_string_equal(buf, "/a\\*");
        assert_int_equal(glob_escape("/a*", buf, 4), -ENOBUFS);
        assert_int_equal(glob_escape("", buf, 1), 0);
        assert_string_equal(buf, "");
        assert_int_equal(glob_escape("", buf, 0), -ENOBUFS);
        assert_int_equal(glob_escape("/x/[a]?\\*", buf, sizeof(buf)), 13);
        assert_string_equal(buf, "/x/\\[a]\\?\\\\\\*");

        /* Round trip: an escaped path matches itself and nothing else. */
        static const char *const paths[] = {
                "/data/a*b/[x]/q?.log", "/d/back\\slash",  "/d/**/x",
                "/d/[!a]/[[:digit:]]",  "/plain/path.log",
        };
        static const char *const others[] = {
                "/data/aXb/[x]/q?.log",
                "/data/a*b/x/q?.log",
                "/data/a*b/[x]/qz.log",
                "/d/backslash",
                "/d/y/x",
                "/d/b/1",
                "/d/a/x",
                "/plain/path.lo",
        };
        for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
                assert_true(glob_escape(paths[i], buf, sizeof(buf)) > 0);
                assert_false(glob_has_magic(buf));
                struct globset *g = new_one(buf);
                assert_true(globset_match(g, paths[i]));
                for (size_t j = 0; j < sizeof(others) / sizeof(others[0]); j++)
                        if (globset_match(g, others[j]))
                                fail_msg("'%s' matches '%s'", buf, others[j]);
                const char *const *roots;
                assert_int_equal(globset_roots(g, &roots), 1);
                char dir[64];
                strcpy(dir, paths[i]);
                *strrchr(dir, '/') = '\0';
                assert_string_equal(roots[0], dir);
                globset_free(g);
        }
}

static double now(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Naive backtracking would try every way to share ~1000 directories among six `**`. */
static void test_pathological(void **state)
{
        (void)state;
        struct globset *g = new_one("/a/**/**/**/**/**/**/b");
        char path[PATH_MAX];
        size_t o = (size_t)sprintf(path, "/a");
        while (o < sizeof(path) - 8)
                o += (size_t)sprintf(path + o, "/x");
        double t0 = now();
        strcpy(path + o, "/c");
        for (int i = 0; i < 10; i++)
                assert_false(globset_match(g, path));
        strcpy(path + o, "/b");
        assert_true(globset_match(g, path));
        path[o] = '\0';
        assert_int_equal(globset_dir(g, path), GLOB_DIR_FILES | GLOB_DIR_DESCEND);
        double dt = now() - t0;
        if (dt > 2.0)
                fail_msg("took %.3f s", dt);
        globset_free(g);
}

/*
 * Walks.
 */

struct tree {
        char root[PATH_MAX]; /* the mkdtemp() directory */
        char esc[2 * PATH_MAX];
};

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
        (void)st;
        (void)flag;
        (void)ftw;
        return remove(path);
}

static int tree_setup(void **state)
{
        struct tree *t = calloc(1, sizeof(*t));
        const char *tmp = getenv("TMPDIR");

        if (!t)
                return -1;
        int n = snprintf(t->root, sizeof(t->root), "%s/test_glob.XXXXXX",
                         tmp && *tmp ? tmp : "/tmp");
        if (n < 0 || (size_t)n >= sizeof(t->root) || !mkdtemp(t->root)) {
                free(t);
                return -1;
        }
        /* The temporary directory may hold glob characters of its own. */
        if (glob_escape(t->root, t->esc, sizeof(t->esc)) < 0) {
                free(t);
                return -1;
        }
        *state = t;
        return 0;
}

static int tree_teardown(void **state)
{
        struct tree *t = *state;
        int r = nftw(t->root, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
        free(t);
        return r;
}

static void tpath(const struct tree *t, char *buf, const char *rel)
{
        int n = snprintf(buf, PATH_MAX, "%s/%s", t->root, rel);
        assert_true(n > 0 && n < PATH_MAX);
}

static void mk_dirs(const struct tree *t, const char *const *rels, size_t n)
{
        char p[PATH_MAX];
        for (size_t i = 0; i < n; i++) {
                tpath(t, p, rels[i]);
                assert_int_equal(mkdir(p, 0755), 0);
        }
}

static void mk_file(const struct tree *t, const char *rel, const char *content)
{
        char p[PATH_MAX];
        tpath(t, p, rel);
        int fd = open(p, O_WRONLY | O_CREAT | O_EXCL, 0644);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, content, strlen(content)), (ssize_t)strlen(content));
        assert_int_equal(close(fd), 0);
}

static void mk_link(const struct tree *t, const char *rel, const char *target)
{
        char p[PATH_MAX];
        tpath(t, p, rel);
        assert_int_equal(symlink(target, p), 0);
}

/* A pattern under the tree: the escaped root, then rel. */
static char *pattern(const struct tree *t, const char *rel)
{
        static char bufs[8][2 * PATH_MAX];
        static int next;
        char *b = bufs[next++ % 8];
        int n = snprintf(b, sizeof(bufs[0]), "%s/%s", t->esc, rel);
        assert_true(n > 0 && (size_t)n < sizeof(bufs[0]));
        return b;
}

#define SEEN_MAX 64

struct seen {
        const struct tree *t;
        const struct globset *g;
        char *dirs[SEEN_MAX];
        size_t n_dirs;
        char *files[SEEN_MAX];
        struct stat st[SEEN_MAX];
        size_t n_files;
        int stop; /* file_cb returns it */
};

/* path relative to the tree root; "." for the root itself. */
static char *rel_dup(const struct tree *t, const char *path)
{
        size_t l = strlen(t->root);
        if (strncmp(path, t->root, l) != 0)
                return strdup(path); /* outside the tree: kept whole, fails the comparison */
        if (path[l] == '\0')
                return strdup(".");
        return strdup(path + l + 1);
}

static int on_dir(void *ud, const char *dir)
{
        struct seen *s = ud;
        assert_true(s->n_dirs < SEEN_MAX);
        assert_int_not_equal(globset_dir(s->g, dir), 0);
        s->dirs[s->n_dirs++] = rel_dup(s->t, dir);
        return 0;
}

static int on_file(void *ud, const char *path, const struct stat *st)
{
        struct seen *s = ud;
        assert_true(s->n_files < SEEN_MAX);
        assert_true(globset_match(s->g, path));
        s->st[s->n_files] = *st;
        s->files[s->n_files++] = rel_dup(s->t, path);
        return s->stop;
}

static void seen_free(struct seen *s)
{
        for (size_t i = 0; i < s->n_dirs; i++)
                free(s->dirs[i]);
        for (size_t i = 0; i < s->n_files; i++)
                free(s->files[i]);
        s->n_dirs = s->n_files = 0;
}

static int cmp_str(const void *a, const void *b)
{
        return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* got, in any order, is exactly want (a NULL-terminated list). */
static void assert_same_set(char **got, size_t n, const char *const *want, const char *what)
{
        const char *g[SEEN_MAX], *w[SEEN_MAX];
        size_t nw = 0;

        for (; want[nw]; nw++)
                w[nw] = want[nw];
        memcpy(g, got, n * sizeof(*g));
        qsort(g, n, sizeof(*g), cmp_str);
        qsort(w, nw, sizeof(*w), cmp_str);
        for (size_t i = 0; i < n || i < nw; i++) {
                if (i >= n || i >= nw || strcmp(g[i], w[i]) != 0) {
                        for (size_t j = 0; j < n; j++)
                                print_message("%s got: %s\n", what, g[j]);
                        fail_msg("%s: got %zu, want %zu; first difference at %zu ('%s' vs '%s')",
                                 what, n, nw, i, i < n ? g[i] : "-", i < nw ? w[i] : "-");
                }
        }
}

static const struct stat *seen_stat(const struct seen *s, const char *rel)
{
        for (size_t i = 0; i < s->n_files; i++)
                if (strcmp(s->files[i], rel) == 0)
                        return &s->st[i];
        fail_msg("'%s' not reported", rel);
        return NULL;
}

static void test_walk_tree(void **state)
{
        const struct tree *t = *state;
        static const char *const dirs[] = {
                "logs", "logs/sub", "logs/sub/deep", "logs/dir.log", "real", "other",
        };
        mk_dirs(t, dirs, sizeof(dirs) / sizeof(dirs[0]));
        mk_file(t, "logs/a.log", "a");
        mk_file(t, "logs/b.txt", "b");
        mk_file(t, "logs/.hidden.log", "h");
        mk_file(t, "logs/sub/c.log", "c");
        mk_file(t, "logs/sub/deep/d.log", "d");
        mk_file(t, "logs/sub/deep/skip-debug.log", "x");
        mk_file(t, "logs/dir.log/e.log", "e");
        mk_file(t, "real/r.log", "target of link.log");
        mk_file(t, "other/x.log", "x");
        mk_link(t, "logs/link.log", "../real/r.log");
        mk_link(t, "logs/dangling.log", "../nowhere/n.log");
        mk_link(t, "logs/loop", ".");            /* a directory loop */
        mk_link(t, "logs/up", "..");             /* and another, through the parent */
        mk_link(t, "logs/self.log", "self.log"); /* ELOOP */
        char p[PATH_MAX];
        tpath(t, p, "logs/fifo.log");
        assert_int_equal(mkfifo(p, 0644), 0);

        const char *inc[] = {pattern(t, "logs/**/*.log")};
        const char *exc[] = {pattern(t, "logs/**/skip-*")};
        struct globset *g = new_set(inc, 1, exc, 1);
        struct seen s = {.t = t, .g = g};
        struct globset_walk_stats st;

        assert_int_equal(globset_walk(g, on_dir, on_file, &s, &st), 0);
        static const char *const want_files[] = {
                "logs/a.log",          "logs/.hidden.log",   "logs/sub/c.log",
                "logs/sub/deep/d.log", "logs/link.log",      "logs/fifo.log",
                "logs/dir.log",        "logs/dir.log/e.log", NULL,
        };
        static const char *const want_dirs[] = {
                "logs", "logs/sub", "logs/sub/deep", "logs/dir.log", NULL,
        };
        assert_same_set(s.files, s.n_files, want_files, "files");
        assert_same_set(s.dirs, s.n_dirs, want_dirs, "dirs");

        /* st is the link target's, and tells what non-regular entries are. */
        struct stat target;
        tpath(t, p, "real/r.log");
        assert_int_equal(stat(p, &target), 0);
        const struct stat *ls = seen_stat(&s, "logs/link.log");
        assert_true(S_ISREG(ls->st_mode));
        assert_int_equal(ls->st_ino, target.st_ino);
        assert_int_equal(ls->st_size, strlen("target of link.log"));
        assert_true(S_ISFIFO(seen_stat(&s, "logs/fifo.log")->st_mode));
        assert_true(S_ISDIR(seen_stat(&s, "logs/dir.log")->st_mode));
        assert_true(S_ISREG(seen_stat(&s, "logs/a.log")->st_mode));
        assert_int_equal(st.files, 8);
        assert_int_equal(st.dirs, 4);
        assert_int_equal(st.errors, 0);
        assert_int_equal(st.too_deep, 0);
        seen_free(&s);

        /* NULL callbacks and stats are allowed. */
        assert_int_equal(globset_walk(g, NULL, NULL, NULL, NULL), 0);
        globset_free(g);

        /* A single-segment glob follows directory links; loops end with the pattern. */
        const char *inc2[] = {pattern(t, "logs/*/*.log")};
        g = new_set(inc2, 1, NULL, 0);
        s = (struct seen){.t = t, .g = g};
        assert_int_equal(globset_walk(g, on_dir, on_file, &s, &st), 0);
        static const char *const want_files2[] = {
                "logs/sub/c.log",     "logs/dir.log/e.log",
                "logs/loop/a.log",    "logs/loop/.hidden.log",
                "logs/loop/link.log", "logs/loop/fifo.log",
                "logs/loop/dir.log",  NULL,
        };
        static const char *const want_dirs2[] = {
                "logs", "logs/sub", "logs/dir.log", "logs/loop", "logs/up", NULL,
        };
        assert_same_set(s.files, s.n_files, want_files2, "files");
        assert_same_set(s.dirs, s.n_dirs, want_dirs2, "dirs");
        seen_free(&s);
        globset_free(g);
}

/* Roots under roots, and a directory reached again with nothing new: read once. */
static void test_walk_overlap(void **state)
{
        const struct tree *t = *state;
        static const char *const dirs[] = {"top", "top/sub"};
        mk_dirs(t, dirs, 2);
        mk_file(t, "top/x.log", "x");
        mk_file(t, "top/sub/y.log", "y");
        mk_link(t, "top/sub/back", "..");

        const char *inc[] = {pattern(t, "top/*.log"), pattern(t, "**/*.log"),
                             pattern(t, "top/sub/*/*.log")};
        struct globset *g = new_set(inc, 3, NULL, 0);
        struct seen s = {.t = t, .g = g};
        struct globset_walk_stats st;

        assert_int_equal(globset_walk(g, on_dir, on_file, &s, &st), 0);
        /* top/sub/back is top again, with a position new there (the last `*.log`). */
        static const char *const want_files[] = {
                "top/x.log",
                "top/sub/y.log",
                "top/sub/back/x.log",
                NULL,
        };
        static const char *const want_dirs[] = {
                "top", "top/sub", ".", "top/sub/back", NULL,
        };
        assert_same_set(s.files, s.n_files, want_files, "files");
        assert_same_set(s.dirs, s.n_dirs, want_dirs, "dirs");
        assert_int_equal(st.revisited, 2); /* "top" and "top/sub" from the root "." */
        seen_free(&s);
        globset_free(g);
}

static void test_walk_missing_root(void **state)
{
        const struct tree *t = *state;
        static const char *const dirs[] = {"a"};
        mk_dirs(t, dirs, 1);
        mk_file(t, "a/file", "not a directory");

        const char *inc[] = {pattern(t, "a/b/c/*.log"), pattern(t, "a/d/*.log"),
                             pattern(t, "a/file/*.log")};
        struct globset *g = new_set(inc, 3, NULL, 0);
        struct seen s = {.t = t, .g = g};
        struct globset_walk_stats st;

        assert_int_equal(globset_walk(g, on_dir, on_file, &s, &st), 0);
        static const char *const want_dirs[] = {"a", NULL};
        static const char *const none[] = {NULL};
        assert_same_set(s.dirs, s.n_dirs, want_dirs, "dirs"); /* once for three roots */
        assert_same_set(s.files, s.n_files, none, "files");
        assert_int_equal(st.errors, 0);
        seen_free(&s);
        globset_free(g);

        /* A missing root whose ancestor is also a root: the root reports it already. */
        const char *inc2[] = {pattern(t, "a/*.txt"), pattern(t, "a/nope/*.log")};
        g = new_set(inc2, 2, NULL, 0);
        s = (struct seen){.t = t, .g = g};
        assert_int_equal(globset_walk(g, on_dir, on_file, &s, NULL), 0);
        assert_same_set(s.dirs, s.n_dirs, want_dirs, "dirs");
        seen_free(&s);
        globset_free(g);
}

static void test_walk_stop(void **state)
{
        const struct tree *t = *state;
        mk_file(t, "1.log", "");
        mk_file(t, "2.log", "");
        mk_file(t, "3.log", "");

        const char *inc[] = {pattern(t, "*.log")};
        struct globset *g = new_set(inc, 1, NULL, 0);
        struct seen s = {.t = t, .g = g, .stop = 7};
        assert_int_equal(globset_walk(g, on_dir, on_file, &s, NULL), 7);
        assert_int_equal(s.n_files, 1);
        seen_free(&s);
        globset_free(g);
}

static void test_walk_depth_cap(void **state)
{
        const struct tree *t = *state;
        char rel[PATH_MAX] = "";
        size_t o = 0;

        mk_file(t, "x.log", "");
        for (int i = 0; i < GLOB_WALK_DEPTH + 5; i++) {
                o += (size_t)sprintf(rel + o, "%sd", o ? "/" : "");
                const char *d = rel;
                mk_dirs(t, &d, 1);
                char f[PATH_MAX];
                assert_true(snprintf(f, sizeof(f), "%s/x.log", rel) < PATH_MAX);
                mk_file(t, f, "");
        }
        const char *inc[] = {pattern(t, "**/x.log")};
        struct globset *g = new_set(inc, 1, NULL, 0);
        struct globset_walk_stats st;
        assert_int_equal(globset_walk(g, NULL, NULL, NULL, &st), 0);
        assert_int_equal(st.files, GLOB_WALK_DEPTH + 1); /* the root and 32 levels below */
        assert_int_equal(st.dirs, GLOB_WALK_DEPTH + 1);
        assert_int_equal(st.too_deep, 1);
        globset_free(g);
}

struct counter {
        unsigned char seen[5000];
        size_t n;
        size_t dirs;
};

static int count_file(void *ud, const char *path, const struct stat *st)
{
        struct counter *c = ud;
        const char *name = strrchr(path, '/') + 1;
        unsigned k;
        assert_true(S_ISREG(st->st_mode));
        assert_int_equal(sscanf(name, "f%u.log", &k), 1);
        assert_true(k < 5000);
        c->seen[k]++;
        c->n++;
        return 0;
}

static int count_dir(void *ud, const char *dir)
{
        (void)dir;
        ((struct counter *)ud)->dirs++;
        return 0;
}

static void test_walk_5000_files(void **state)
{
        const struct tree *t = *state;
        static const char *const dirs[] = {"big"};
        mk_dirs(t, dirs, 1);
        for (unsigned i = 0; i < 5000; i++) {
                char rel[64];
                assert_true(snprintf(rel, sizeof(rel), "big/f%04u.%s", i, i % 2 ? "txt" : "log") <
                            (int)sizeof(rel));
                mk_file(t, rel, "");
        }
        const char *inc[] = {pattern(t, "big/*.log")};
        struct globset *g = new_set(inc, 1, NULL, 0);
        struct counter *c = calloc(1, sizeof(*c));
        struct globset_walk_stats st;
        assert_non_null(c);
        assert_int_equal(globset_walk(g, count_dir, count_file, c, &st), 0);
        assert_int_equal(c->n, 2500);
        assert_int_equal(c->dirs, 1);
        for (unsigned i = 0; i < 5000; i++)
                assert_int_equal(c->seen[i], i % 2 == 0);
        assert_int_equal(st.entries, 5000);
        assert_int_equal(st.files, 2500);
        free(c);
        globset_free(g);
}

/* More directories than the first size of the table of visited ones. */
static void test_walk_many_dirs(void **state)
{
        const struct tree *t = *state;
        for (unsigned i = 0; i < 300; i++) {
                char rel[64];
                const char *d = rel;
                assert_true(snprintf(rel, sizeof(rel), "d%03u", i) < (int)sizeof(rel));
                mk_dirs(t, &d, 1);
                assert_true(snprintf(rel, sizeof(rel), "d%03u/f%03u.log", i, i) < (int)sizeof(rel));
                mk_file(t, rel, "");
        }
        const char *inc[] = {pattern(t, "*/*.log"), pattern(t, "**/*.log")};
        struct globset *g = new_set(inc, 2, NULL, 0);
        struct counter *c = calloc(1, sizeof(*c));
        struct globset_walk_stats st;
        assert_non_null(c);
        assert_int_equal(globset_walk(g, count_dir, count_file, c, &st), 0);
        assert_int_equal(c->n, 300);
        assert_int_equal(c->dirs, 301);
        for (unsigned i = 0; i < 300; i++)
                assert_int_equal(c->seen[i], 1);
        assert_int_equal(st.revisited, 0);
        free(c);
        globset_free(g);
}

static void test_walk_unreadable(void **state)
{
        const struct tree *t = *state;
        if (geteuid() == 0)
                skip(); /* root reads everything */
        static const char *const dirs[] = {"ok", "locked"};
        mk_dirs(t, dirs, 2);
        mk_file(t, "ok/a.log", "");
        mk_file(t, "locked/b.log", "");
        char p[PATH_MAX];
        tpath(t, p, "locked");
        assert_int_equal(chmod(p, 0), 0);

        const char *inc[] = {pattern(t, "*/*.log")};
        struct globset *g = new_set(inc, 1, NULL, 0);
        struct seen s = {.t = t, .g = g};
        struct globset_walk_stats st;
        assert_int_equal(globset_walk(g, on_dir, on_file, &s, &st), 0);
        static const char *const want_files[] = {"ok/a.log", NULL};
        assert_same_set(s.files, s.n_files, want_files, "files");
        assert_int_equal(st.errors, 1);
        seen_free(&s);
        globset_free(g);
        assert_int_equal(chmod(p, 0755), 0);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_match_table),
                cmocka_unit_test(test_errors),
                cmocka_unit_test(test_exclude_wins),
                cmocka_unit_test(test_dir_flags),
                cmocka_unit_test(test_roots),
                cmocka_unit_test(test_magic_and_escape),
                cmocka_unit_test(test_pathological),
                cmocka_unit_test_setup_teardown(test_walk_tree, tree_setup, tree_teardown),
                cmocka_unit_test_setup_teardown(test_walk_overlap, tree_setup, tree_teardown),
                cmocka_unit_test_setup_teardown(test_walk_missing_root, tree_setup, tree_teardown),
                cmocka_unit_test_setup_teardown(test_walk_stop, tree_setup, tree_teardown),
                cmocka_unit_test_setup_teardown(test_walk_depth_cap, tree_setup, tree_teardown),
                cmocka_unit_test_setup_teardown(test_walk_5000_files, tree_setup, tree_teardown),
                cmocka_unit_test_setup_teardown(test_walk_many_dirs, tree_setup, tree_teardown),
                cmocka_unit_test_setup_teardown(test_walk_unreadable, tree_setup, tree_teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
