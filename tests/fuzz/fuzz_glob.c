/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fuzz target for io/glob: the input is a pattern, a '\n', then a path (a '/' is put in
 * front of either when missing). Patterns globset_new() rejects must come with -EINVAL
 * and a message. For the others:
 *
 *   - globset_match() agrees with a memoized recursive matcher written here, which
 *     compares every segment with fnmatch(3) (glob.c compares literals with strcmp);
 *   - the path and its normalization (done here, independently of glob.c) match alike
 *     (unless the path is PATH_MAX bytes or longer: then it matches nothing);
 *   - a matching path has GLOB_DIR_FILES on its directory and GLOB_DIR_DESCEND on every
 *     proper ancestor of that directory, and lies below the pattern's root;
 *   - a pattern excluding itself matches nothing;
 *   - glob_escape() of the normalized path, as a pattern, matches that path (when it is
 *     a file path within the limits) and has no magic left.
 *
 * Any broken invariant aborts. Never touches the file system (no globset_walk).
 */
#include <errno.h>
#include <fnmatch.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "io/glob.h"

#define CHECK(cond)                                                                                \
        do {                                                                                       \
                if (!(cond))                                                                       \
                        abort();                                                                   \
        } while (0)

/* "/" + the bytes up to the first NUL (no '/' added if there is one already). */
static char *absolute(const uint8_t *data, size_t size)
{
        size_t len = strnlen((const char *)data, size), lead = len == 0 || data[0] != '/';
        char *s = malloc(lead + len + 1);

        if (!s)
                return NULL;
        s[0] = '/';
        memcpy(s + lead, data, len);
        s[lead + len] = '\0';
        return s;
}

/* Lexical normalization, written apart from glob.c: "/" for the root; *ret_segs segments. */
static char *normalize(const char *path, size_t *ret_segs)
{
        size_t len = strlen(path), o = 0, n = 0;
        size_t *starts = malloc((len / 2 + 1) * sizeof(*starts));
        char *out = malloc(len + 2);

        if (!starts || !out) {
                free(starts);
                free(out);
                return NULL;
        }
        for (const char *s = path; *s;) {
                const char *e = strchr(s, '/');
                size_t l;

                if (!e)
                        e = s + strlen(s);
                l = (size_t)(e - s);
                if (l == 2 && s[0] == '.' && s[1] == '.') {
                        if (n > 0)
                                o = starts[--n];
                } else if (l > 0 && !(l == 1 && s[0] == '.')) {
                        starts[n++] = o;
                        out[o++] = '/';
                        memcpy(out + o, s, l);
                        o += l;
                }
                s = *e ? e + 1 : e;
        }
        if (o == 0)
                out[o++] = '/';
        out[o] = '\0';
        free(starts);
        *ret_segs = n;
        return out;
}

/* Splits s (modified) at '/' into at most max non-empty pieces; returns the count. */
static size_t split(char *s, char **pieces, size_t max)
{
        size_t n = 0;

        for (char *tok = strtok(s, "/"); tok && n < max; tok = strtok(NULL, "/"))
                pieces[n++] = tok;
        return n;
}

/* '.' or '..' once unescaped, and not a glob: 1 or 2; 0 otherwise. */
static int dots(const char *seg)
{
        int n = 0;

        if (glob_has_magic(seg))
                return 0;
        for (; *seg; seg++, n++) {
                if (*seg == '\\' && seg[1])
                        seg++;
                if (*seg != '.' || n == 2)
                        return 0;
        }
        return n;
}

#define ORACLE_MAX 128

/* The reference: memoized recursion over (pattern segment, path segment), every segment
 * (literal or not) compared by fnmatch. -1 if the pattern has too many pieces. */
static int oracle(const char *pattern, const char *norm)
{
        char *pat = strdup(pattern), *path = strdup(norm);
        char *raw[ORACLE_MAX + 1], *segs[ORACLE_MAX], *names[ORACLE_MAX + 1];
        size_t nraw, np = 0, nn;
        /* memo[i][j]: 0 unknown, 1 no, 2 yes: pattern from i matches names from j. */
        static unsigned char memo[ORACLE_MAX + 1][ORACLE_MAX + 1];
        int r = -1;

        if (!pat || !path)
                goto out;
        nraw = split(pat, raw, ORACLE_MAX + 1);
        nn = split(path, names, ORACLE_MAX + 1);
        if (nraw > ORACLE_MAX || nn > ORACLE_MAX)
                goto out;
        for (size_t i = 0; i < nraw; i++) {
                int d = dots(raw[i]);
                if (d == 2 && np > 0)
                        np--;
                else if (d == 0)
                        segs[np++] = raw[i];
        }
        memset(memo, 0, sizeof(memo));
        for (size_t i = np + 1; i-- > 0;) {
                for (size_t j = nn + 1; j-- > 0;) {
                        bool m;
                        if (i == np)
                                m = j == nn;
                        else if (strcmp(segs[i], "**") == 0)
                                m = memo[i + 1][j] == 2 || (j < nn && memo[i][j + 1] == 2);
                        else
                                m = j < nn && fnmatch(segs[i], names[j], 0) == 0 &&
                                    memo[i + 1][j + 1] == 2;
                        memo[i][j] = m ? 2 : 1;
                }
        }
        r = memo[0][0] == 2;
out:
        free(pat);
        free(path);
        return r;
}

static void check_dirs(const struct globset *g, const char *norm)
{
        char *dir = strdup(norm);
        char *slash;

        if (!dir)
                return;
        slash = strrchr(dir, '/');
        slash[slash == dir] = '\0';
        CHECK(globset_dir(g, dir) & GLOB_DIR_FILES);
        while (strcmp(dir, "/") != 0) {
                slash = strrchr(dir, '/');
                slash[slash == dir] = '\0';
                CHECK(globset_dir(g, dir) & GLOB_DIR_DESCEND);
        }
        free(dir);
}

static void check_root(const struct globset *g, const char *norm)
{
        const char *const *roots;
        size_t l;

        CHECK(globset_roots(g, &roots) == 1);
        l = strlen(roots[0]);
        CHECK(roots[0][0] == '/');
        CHECK(l == 1 || (strncmp(norm, roots[0], l) == 0 && norm[l] == '/'));
}

static void check_escape(const char *norm, size_t segs)
{
        size_t len = strlen(norm), cap = 2 * len + 1;
        char *esc = malloc(cap);
        struct globset *e = NULL;
        int n, r;

        if (!esc)
                return;
        n = glob_escape(norm, esc, cap);
        CHECK(n >= (int)len && (size_t)n < cap && esc[n] == '\0');
        CHECK(!glob_has_magic(esc));
        CHECK(glob_escape(norm, esc, (size_t)n) == -ENOBUFS);
        n = glob_escape(norm, esc, (size_t)n + 1);
        r = globset_new((const char *const *)&esc, 1, NULL, 0, NULL, 0, &e);
        if (segs >= 1 && segs <= GLOB_MAX_SEGMENTS && len < PATH_MAX && n <= GLOB_PATTERN_MAX) {
                CHECK(r == 0);
                CHECK(globset_match(e, norm));
                globset_free(e);
        } else if (r == 0) {
                globset_free(e);
        }
        free(esc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        const uint8_t *nl = memchr(data, '\n', size);
        size_t plen = nl ? (size_t)(nl - data) : size;
        char *pattern = absolute(data, plen);
        char *path = nl ? absolute(nl + 1, size - plen - 1) : absolute(data, 0);
        struct globset *g = NULL, *self = NULL;
        char err[128] = "";
        char *norm = NULL;
        size_t segs = 0;
        bool match;
        int r;

        if (!pattern || !path)
                goto out;
        r = globset_new((const char *const *)&pattern, 1, NULL, 0, err, sizeof(err), &g);
        if (r < 0) {
                CHECK(r == -EINVAL || r == -ENOMEM);
                CHECK(err[0] != '\0');
                CHECK(!g);
                goto out;
        }
        norm = normalize(path, &segs);
        if (!norm)
                goto out;
        match = globset_match(g, norm);
        /* Paths of PATH_MAX bytes or more match nothing, even if '..' would shorten them. */
        CHECK(globset_match(g, path) == (match && strlen(path) < PATH_MAX));
        r = oracle(pattern, norm);
        CHECK(r < 0 || strlen(norm) >= PATH_MAX || r == match);
        if (match) {
                check_dirs(g, norm);
                check_root(g, norm);
        }
        if (globset_new((const char *const *)&pattern, 1, (const char *const *)&pattern, 1, NULL, 0,
                        &self) == 0) {
                CHECK(!globset_match(self, norm));
                globset_free(self);
        }
        check_escape(norm, segs);
out:
        globset_free(g);
        free(norm);
        free(path);
        free(pattern);
        return 0;
}
