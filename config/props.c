/* SPDX-License-Identifier: Apache-2.0 */
/*
 * props: java.util.Properties.load(Reader) for UTF-8 text (the syntax is in props.h).
 *
 * DESIGN
 *
 * props_parse() makes two passes over the buffer.
 *
 *   1. check_text() rejects invalid UTF-8 (Unicode's Table 3-7: no overlongs, no
 *      surrogates, nothing above U+10FFFF) and NUL bytes anywhere, comments included.
 *      After it, the parser can treat bytes >= 0x80 as opaque: every byte it looks at
 *      ('=', ':', whitespace, '\', '#', '!', line ends) is ASCII, and ASCII never occurs
 *      inside a multi-byte sequence. Decoded \u escapes are the only other source of
 *      non-ASCII, and they are range-checked where they are decoded.
 *   2. parse_lines() skips blank lines and comments and hands each logical line to
 *      parse_line(). A struct reader yields the bytes of one logical line with its
 *      continuations removed. Like Java's LineReader, it tracks the parity of the
 *      current run of raw backslashes: a backslash is a continuation iff it is the odd
 *      one of its run and a line end (or the end of input) follows it. parse_line()
 *      splits key and value and decodes escapes left to right on top of the reader;
 *      because "\uXXXX" pulls its digits through the reader too, an escape broken by a
 *      continuation decodes as it does in Java, where lines are joined first.
 *
 * A decoded escape is never longer than its source text (\uXXXX: 6 bytes in, at most 3
 * out; a surrogate pair: 12 in, 4 out), so one scratch buffer of the input's size
 * holds any line's key and value.
 *
 * Positions: lines are natural lines counted from 1 (\r\n counts once); columns are
 * 1-based byte offsets in the line. A UTF-8 byte order mark at the very start is
 * skipped and is not counted in line 1's columns. Escape errors point at the backslash
 * that starts the escape, encoding errors at the first byte of the bad sequence.
 *
 * A comment starts only where a logical line does: "a=b\" followed by "#c" gives "b#c".
 * A line holding nothing but a continuation backslash continues nothing and is a blank
 * line, so a comment may follow it (as in JDK 17; older JDKs read "#c" as a key there).
 *
 * Where this differs from Java (all on input Java accepts):
 *   - the errors listed in props.h, where Java would store a lone surrogate or a NUL;
 *   - such a lone backslash is blank at the end of the input too, where Java stores
 *     "" = "" if nothing or one line end follows it.
 *
 * Storage: struct item holds the public entry and its key and value in one allocation
 * ("key\0value\0"); items[] keeps them in order of first appearance. slots[] is an
 * open-addressing table (linear probing, load factor <= 1/2) of indices into items[];
 * keys are never removed, so it needs no tombstones. Setting a key again swaps in a
 * new item at the same index, which is why props.h says an entry is valid until its
 * key is set again.
 *
 * Each public function is defined before any other one calls it: the unit test compiles
 * this file a second time with the public names changed (to inject allocation
 * failures), and that copy sees no prototypes from props.h.
 */
#include "config/props.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PROPS_MAX_FILE (16u << 20)

struct item {
        struct props_entry e; /* e.key == kv, e.value == kv + klen + 1 */
        uint64_t hash;
        size_t klen;
        char kv[];
};

struct props {
        struct item **items;
        size_t count, cap;
        size_t *slots; /* index + 1 into items, 0 for a free slot */
        size_t nslots; /* a power of two */
};

/* The bytes of one logical line; see DESIGN. */
struct reader {
        const char *buf;
        size_t len, pos;
        unsigned line, col;   /* position of buf[pos] */
        unsigned cline, ccol; /* position of the byte rd_next() returned last */
        bool odd;             /* that byte ends an odd run of raw backslashes */
        bool end;             /* the logical line has ended */
};

static int fail_at(int r, struct props_error *err, unsigned line, unsigned col, const char *fmt,
                   ...) __attribute__((format(printf, 5, 6)));

/* Fills *err (if any) and returns r. */
static int fail_at(int r, struct props_error *err, unsigned line, unsigned col, const char *fmt,
                   ...)
{
        va_list ap;

        if (!err)
                return r;
        err->line = line;
        err->column = col;
        va_start(ap, fmt);
        (void)vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
        va_end(ap);
        return r;
}

static bool is_ws(int c)
{
        return c == ' ' || c == '\t' || c == '\f';
}

static bool is_eol(int c)
{
        return c == '\n' || c == '\r';
}

static int rd_peek(const struct reader *r)
{
        return r->pos < r->len ? (unsigned char)r->buf[r->pos] : -1;
}

/* Steps over one byte, or over a whole "\r\n". Positions saturate instead of wrapping
 * on absurd inputs (more than 4 GiB on one line). */
static void rd_advance(struct reader *r)
{
        char c = r->buf[r->pos++];

        if (c == '\r' && r->pos < r->len && r->buf[r->pos] == '\n')
                r->pos++;
        if (c == '\r' || c == '\n') {
                r->line += r->line < UINT_MAX;
                r->col = 1;
        } else {
                r->col += r->col < UINT_MAX;
        }
}

static void rd_skip_ws(struct reader *r)
{
        while (is_ws(rd_peek(r)))
                rd_advance(r);
}

/* Next byte of the logical line, or -1 once it has ended (its line end is consumed). */
static int rd_next(struct reader *r)
{
        while (!r->end) {
                int c = rd_peek(r), next;

                if (c < 0 || is_eol(c)) {
                        if (c >= 0)
                                rd_advance(r);
                        break;
                }
                r->cline = r->line;
                r->ccol = r->col;
                rd_advance(r);
                r->odd = c == '\\' && !r->odd;
                next = rd_peek(r);
                if (!r->odd || (next >= 0 && !is_eol(next)))
                        return c;
                /* A continuation: drop the backslash, the line end and the indentation. */
                r->odd = false;
                if (next < 0)
                        break;
                rd_advance(r);
                rd_skip_ws(r);
        }
        r->end = true;
        return -1;
}

static int hex_value(int c)
{
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

/* Reads the four hex digits after "\u"; false if they are not there. */
static bool read_u16(struct reader *r, unsigned *ret_u)
{
        unsigned u = 0;

        for (int i = 0; i < 4; i++) {
                int d = hex_value(rd_next(r));

                if (d < 0)
                        return false;
                u = u << 4 | (unsigned)d;
        }
        *ret_u = u;
        return true;
}

/* Length of the valid UTF-8 sequence at s[0..n), 0 if there is none (Table 3-7). */
static size_t utf8_len(const unsigned char *s, size_t n)
{
        unsigned char lo = 0x80, hi = 0xbf;
        size_t len;

        if (s[0] < 0x80)
                return 1;
        if (s[0] >= 0xc2 && s[0] <= 0xdf)
                len = 2;
        else if (s[0] >= 0xe0 && s[0] <= 0xef)
                len = 3;
        else if (s[0] >= 0xf0 && s[0] <= 0xf4)
                len = 4;
        else
                return 0;
        if (s[0] == 0xe0)
                lo = 0xa0; /* overlong */
        else if (s[0] == 0xed)
                hi = 0x9f; /* U+D800..U+DFFF */
        else if (s[0] == 0xf0)
                lo = 0x90; /* overlong */
        else if (s[0] == 0xf4)
                hi = 0x8f; /* above U+10FFFF */
        if (n < len || s[1] < lo || s[1] > hi)
                return 0;
        for (size_t i = 2; i < len; i++)
                if (s[i] < 0x80 || s[i] > 0xbf)
                        return 0;
        return len;
}

static size_t utf8_put(char *out, unsigned u)
{
        if (u < 0x80) {
                out[0] = (char)u;
                return 1;
        }
        if (u < 0x800) {
                out[0] = (char)(0xc0 | u >> 6);
                out[1] = (char)(0x80 | (u & 0x3f));
                return 2;
        }
        if (u < 0x10000) {
                out[0] = (char)(0xe0 | u >> 12);
                out[1] = (char)(0x80 | (u >> 6 & 0x3f));
                out[2] = (char)(0x80 | (u & 0x3f));
                return 3;
        }
        out[0] = (char)(0xf0 | u >> 18);
        out[1] = (char)(0x80 | (u >> 12 & 0x3f));
        out[2] = (char)(0x80 | (u >> 6 & 0x3f));
        out[3] = (char)(0x80 | (u & 0x3f));
        return 4;
}

static int check_text(const char *buf, size_t len, struct props_error *err)
{
        struct reader r = {.buf = buf, .len = len, .line = 1, .col = 1};
        int c;

        while ((c = rd_peek(&r)) >= 0) {
                size_t n = utf8_len((const unsigned char *)buf + r.pos, len - r.pos);

                if (c == 0)
                        return fail_at(-EINVAL, err, r.line, r.col,
                                       "NUL byte (a C string cannot hold it)");
                if (n == 0)
                        return fail_at(-EINVAL, err, r.line, r.col,
                                       "invalid UTF-8 sequence starting with byte 0x%02X",
                                       (unsigned)c);
                while (n--)
                        rd_advance(&r);
        }
        return 0;
}

/* Decodes the escape whose backslash rd_next() just returned, appending to out[*n]. */
static int unescape(struct reader *r, char *out, size_t *n, struct props_error *err)
{
        unsigned line = r->cline, col = r->ccol, u, lo;
        int c = rd_next(r);

        switch (c) {
        case -1:
                return 0; /* cannot happen: a backslash before a line end continues it */
        case 't':
                out[(*n)++] = '\t';
                return 0;
        case 'n':
                out[(*n)++] = '\n';
                return 0;
        case 'r':
                out[(*n)++] = '\r';
                return 0;
        case 'f':
                out[(*n)++] = '\f';
                return 0;
        case 'u':
                break;
        default:
                out[(*n)++] = (char)c;
                return 0;
        }

        if (!read_u16(r, &u))
                return fail_at(-EINVAL, err, line, col,
                               "malformed \\uXXXX escape (needs exactly 4 hex digits)");
        if (u == 0)
                return fail_at(-EINVAL, err, line, col,
                               "\\u0000 is not allowed (a C string cannot hold NUL)");
        if (u >= 0xdc00 && u <= 0xdfff)
                return fail_at(-EINVAL, err, line, col,
                               "unpaired UTF-16 surrogate \\u%04X (a low half needs a high half "
                               "before it)",
                               u);
        if (u >= 0xd800 && u <= 0xdbff) {
                /* The low half must be the very next escape. */
                bool esc = rd_next(r) == '\\';
                unsigned lo_line = r->cline, lo_col = r->ccol;

                lo = 0;
                if (esc && rd_next(r) == 'u' && !read_u16(r, &lo))
                        return fail_at(-EINVAL, err, lo_line, lo_col,
                                       "malformed \\uXXXX escape (needs exactly 4 hex digits)");
                if (lo < 0xdc00 || lo > 0xdfff)
                        return fail_at(-EINVAL, err, line, col,
                                       "unpaired UTF-16 surrogate \\u%04X (a high half needs "
                                       "\\uDC00-\\uDFFF after it)",
                                       u);
                u = 0x10000 + ((u - 0xd800) << 10) + (lo - 0xdc00);
        }
        *n += utf8_put(out + *n, u);
        return 0;
}

static uint64_t hash_key(const char *key, size_t len)
{
        uint64_t h = 0xcbf29ce484222325u; /* FNV-1a */

        for (size_t i = 0; i < len; i++)
                h = (h ^ (unsigned char)key[i]) * 0x100000001b3u;
        return h;
}

/* The slot holding key, or the free slot where it would go. */
static size_t *find_slot(const struct props *p, const char *key, size_t klen, uint64_t h)
{
        size_t mask = p->nslots - 1;

        for (size_t i = h & mask;; i = (i + 1) & mask) {
                size_t *s = &p->slots[i];
                const struct item *it;

                if (!*s)
                        return s;
                it = p->items[*s - 1];
                if (it->hash == h && it->klen == klen && memcmp(it->kv, key, klen) == 0)
                        return s;
        }
}

/* Makes room for one more item, so that inserting it cannot fail. */
static int props_reserve(struct props *p)
{
        if (p->count == p->cap) {
                size_t cap = p->cap ? 2 * p->cap : 8;
                struct item **items = realloc(p->items, cap * sizeof(*items));

                if (!items)
                        return -ENOMEM;
                p->items = items;
                p->cap = cap;
        }
        if (2 * (p->count + 1) > p->nslots) {
                size_t n = 2 * p->nslots, *slots = calloc(n, sizeof(*slots));

                if (!slots)
                        return -ENOMEM;
                for (size_t i = 0; i < p->count; i++) {
                        size_t j = p->items[i]->hash & (n - 1);

                        while (slots[j])
                                j = (j + 1) & (n - 1);
                        slots[j] = i + 1;
                }
                free(p->slots);
                p->slots = slots;
                p->nslots = n;
        }
        return 0;
}

static int props_put(struct props *p, const char *key, size_t klen, const char *value, size_t vlen,
                     unsigned line)
{
        uint64_t h = hash_key(key, klen);
        struct item *it, *old;
        size_t *slot;
        int r;

        r = props_reserve(p);
        if (r < 0)
                return r;
        it = malloc(sizeof(*it) + klen + vlen + 2);
        if (!it)
                return -ENOMEM;
        memcpy(it->kv, key, klen);
        it->kv[klen] = '\0';
        memcpy(it->kv + klen + 1, value, vlen);
        it->kv[klen + 1 + vlen] = '\0';
        it->e.key = it->kv;
        it->e.value = it->kv + klen + 1;
        it->e.line = line;
        it->e.prev_line = 0;
        it->hash = h;
        it->klen = klen;

        slot = find_slot(p, key, klen, h);
        if (*slot) {
                old = p->items[*slot - 1];
                it->e.prev_line = old->e.line;
                p->items[*slot - 1] = it;
                free(old);
        } else {
                p->items[p->count++] = it;
                *slot = p->count;
        }
        return 0;
}

/* One logical line that is not blank and not a comment. */
static int parse_line(struct props *p, struct reader *r, char *scratch, unsigned line,
                      struct props_error *err)
{
        size_t klen = 0, vlen = 0;
        char *value;
        bool sep;
        int c, ret;

        for (c = rd_next(r); c >= 0 && c != '=' && c != ':' && !is_ws(c); c = rd_next(r)) {
                if (c != '\\')
                        scratch[klen++] = (char)c;
                else if ((ret = unescape(r, scratch, &klen, err)) < 0)
                        return ret;
        }
        sep = c == '=' || c == ':';
        for (c = rd_next(r); c >= 0; c = rd_next(r)) {
                if (!sep && (c == '=' || c == ':'))
                        sep = true;
                else if (!is_ws(c))
                        break;
        }
        value = scratch + klen;
        for (; c >= 0; c = rd_next(r)) {
                if (c != '\\')
                        value[vlen++] = (char)c;
                else if ((ret = unescape(r, value, &vlen, err)) < 0)
                        return ret;
        }
        return props_put(p, scratch, klen, value, vlen, line);
}

static int parse_lines(struct props *p, const char *buf, size_t len, char *scratch,
                       struct props_error *err)
{
        struct reader r = {.buf = buf, .len = len, .line = 1, .col = 1};
        int c, ret;

        for (;;) {
                while ((c = rd_peek(&r)) >= 0 && (is_ws(c) || is_eol(c)))
                        rd_advance(&r);
                if (c < 0)
                        return 0;
                if (c == '#' || c == '!') {
                        while ((c = rd_peek(&r)) >= 0 && !is_eol(c))
                                rd_advance(&r);
                        continue;
                }
                if (c == '\\' && (r.pos + 1 == len || is_eol(buf[r.pos + 1]))) {
                        rd_advance(&r); /* a lone continuation: see DESIGN */
                        continue;
                }
                r.odd = false;
                r.end = false;
                ret = parse_line(p, &r, scratch, r.line, err);
                if (ret < 0)
                        return ret;
        }
}

void props_free(struct props *p)
{
        if (!p)
                return;
        for (size_t i = 0; i < p->count; i++)
                free(p->items[i]);
        free(p->items);
        free(p->slots);
        free(p);
}

int props_new(struct props **ret_props)
{
        struct props *p = calloc(1, sizeof(*p));

        if (!p)
                return -ENOMEM;
        p->nslots = 16;
        p->slots = calloc(p->nslots, sizeof(*p->slots));
        if (!p->slots)
                goto fail;
        *ret_props = p;
        return 0;
fail:
        props_free(p);
        return -ENOMEM;
}

int props_set(struct props *p, const char *key, const char *value)
{
        return props_put(p, key, strlen(key), value, strlen(value), 0);
}

const char *props_get(const struct props *p, const char *key)
{
        size_t klen = strlen(key);
        const size_t *slot = find_slot(p, key, klen, hash_key(key, klen));

        return *slot ? p->items[*slot - 1]->e.value : NULL;
}

size_t props_count(const struct props *p)
{
        return p->count;
}

const struct props_entry *props_at(const struct props *p, size_t i)
{
        return i < p->count ? &p->items[i]->e : NULL;
}

int props_parse(const char *buf, size_t len, struct props **ret_props,
                struct props_error *reterr_err)
{
        struct props *p = NULL;
        char *scratch = NULL;
        int r;

        if (len >= 3 && memcmp(buf, "\xef\xbb\xbf", 3) == 0) {
                buf += 3;
                len -= 3;
        }
        r = check_text(buf, len, reterr_err);
        if (r < 0)
                return r;
        r = props_new(&p);
        if (r < 0)
                goto out;
        scratch = malloc(len + 1);
        if (!scratch) {
                r = -ENOMEM;
                goto out;
        }
        r = parse_lines(p, buf, len, scratch, reterr_err);
        if (r < 0)
                goto out;
        *ret_props = p;
        p = NULL;
out:
        if (r == -ENOMEM)
                (void)fail_at(r, reterr_err, 0, 0, "out of memory");
        free(scratch);
        props_free(p);
        return r;
}

int props_load_file(const char *path, struct props **ret_props, struct props_error *reterr_err)
{
        struct stat st;
        char *buf = NULL;
        size_t len = 0, cap;
        int fd, r;

        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
                r = -errno;
                return fail_at(r, reterr_err, 0, 0, "cannot open: %s", strerror(-r));
        }
        if (fstat(fd, &st) < 0) {
                r = -errno;
                (void)fail_at(r, reterr_err, 0, 0, "cannot stat: %s", strerror(-r));
                goto out_close;
        }
        if (st.st_size > (off_t)PROPS_MAX_FILE)
                goto out_too_big;
        /* st_size is only a hint: the file may change, and /proc files say 0. */
        cap = (size_t)st.st_size + 1;
        if (cap < 4096)
                cap = 4096;
        buf = malloc(cap);
        if (!buf)
                goto out_nomem;
        for (;;) {
                ssize_t n;

                if (len == cap) {
                        char *nbuf;

                        if (len > PROPS_MAX_FILE)
                                goto out_too_big;
                        cap = cap > PROPS_MAX_FILE / 2 ? PROPS_MAX_FILE + 1 : 2 * cap;
                        nbuf = realloc(buf, cap);
                        if (!nbuf)
                                goto out_nomem;
                        buf = nbuf;
                }
                n = read(fd, buf + len, cap - len);
                if (n == 0)
                        break;
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        r = -errno;
                        (void)fail_at(r, reterr_err, 0, 0, "cannot read: %s", strerror(-r));
                        goto out_free;
                }
                len += (size_t)n;
        }
        r = props_parse(buf, len, ret_props, reterr_err);
        goto out_free;

out_too_big:
        r = fail_at(-EFBIG, reterr_err, 0, 0, "file is larger than 16 MiB");
        goto out_free;
out_nomem:
        r = fail_at(-ENOMEM, reterr_err, 0, 0, "out of memory");
out_free:
        free(buf);
out_close:
        (void)close(fd);
        return r;
}
