/* SPDX-License-Identifier: Apache-2.0 */
/*
 * multiline: see multiline.h.
 *
 * DESIGN. The pending record is buf[0, len): its lines joined with '\n', with the
 * start offset of its first line, the end offset of its last line and the time its last
 * line was taken. Three states, told apart by lines and complete:
 *
 *             any line: taken              start line, or a limit reached
 *     EMPTY ----------------> OPEN -----------------------------------> COMPLETE
 *   lines == 0             lines >= 1     ML_EMIT_FIRST, not taken      complete
 *       ^                   |    ^                                       |    ^
 *       |                   +----+ continuation within the limits:      +----+ any line:
 *       |                   |      taken                                 |  ML_EMIT_FIRST
 *       +--- ml_clear() ----+---------------- ml_clear() ----------------+
 *
 * ml_offer() makes every transition but ml_clear()'s. COMPLETE exists so that a caller
 * that cannot emit yet may offer the same line again and again: the line is matched and
 * the split counted once, when OPEN becomes COMPLETE.
 *
 * Invariants: lines <= max_lines; len <= max_bytes unless lines == 1; cap >= len and
 * cap <= the larger of max_bytes and the longest line taken (ml_grow() caps doubling).
 * The line that would overflow a limit is never partly copied: checks come before any
 * write, so -ENOMEM and ML_EMIT_FIRST leave the record as it was.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "io/multiline.h"

#define ML_COMPILE_OPTIONS (PCRE2_UTF | PCRE2_MATCH_INVALID_UTF)
#define ML_MIN_CAP         256u
/* The JIT stack starts small and grows on demand up to the maximum. */
#define ML_JIT_STACK_START (32u * 1024u)
#define ML_JIT_STACK_MAX   (1024u * 1024u)

struct ml {
        pcre2_code *code;
        pcre2_match_data *md;    /* reused by every match */
        pcre2_match_context *mc; /* the limits and the JIT stack */
        pcre2_jit_stack *jit_stack;
        uint32_t max_lines;
        size_t max_bytes;

        char *buf;
        size_t len, cap;
        uint32_t lines;
        bool complete; /* ML_EMIT_FIRST was returned; only ml_clear() goes on */
        uint64_t start, end, last_ms;

        struct ml_stats stats;
};

static void ml_error(char *err, size_t errlen, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

static void ml_error(char *err, size_t errlen, const char *fmt, ...)
{
        va_list ap;

        if (!err || errlen == 0)
                return;
        va_start(ap, fmt);
        (void)vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
}

static int ml_compile(const char *pattern, char *err, size_t errlen, pcre2_code **ret_code)
{
        PCRE2_UCHAR msg[256];
        PCRE2_SIZE off;
        pcre2_code *code;
        int e;

        if (!pattern || !*pattern) {
                ml_error(err, errlen, "empty pattern");
                return -EINVAL;
        }
        code = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, ML_COMPILE_OPTIONS, &e,
                             &off, NULL);
        if (!code) {
                if (e == PCRE2_ERROR_HEAP_FAILED) {
                        ml_error(err, errlen, "out of memory compiling the pattern");
                        return -ENOMEM;
                }
                /* A message too long for msg comes back truncated, which is fine. */
                if (pcre2_get_error_message(e, msg, sizeof(msg)) == PCRE2_ERROR_BADDATA)
                        (void)snprintf((char *)msg, sizeof(msg), "PCRE2 error %d", e);
                ml_error(err, errlen, "%s at offset %zu", (const char *)msg, (size_t)off);
                return -EINVAL;
        }
        *ret_code = code;
        return 0;
}

int ml_check_pattern(const char *pattern, char *err, size_t errlen)
{
        pcre2_code *code;
        int r = ml_compile(pattern, err, errlen, &code);

        if (r < 0)
                return r;
        pcre2_code_free(code);
        return 0;
}

int ml_new(const struct ml_opts *o, char *err, size_t errlen, struct ml **ret_ml)
{
        struct ml *m;
        int r;

        if (o->max_lines == 0) {
                ml_error(err, errlen, "max_lines must be at least 1");
                return -EINVAL;
        }
        if (o->max_bytes == 0) {
                ml_error(err, errlen, "max_bytes must be at least 1");
                return -EINVAL;
        }
        m = calloc(1, sizeof(*m));
        if (!m)
                goto fail_nomem;
        m->max_lines = o->max_lines;
        m->max_bytes = o->max_bytes;
        r = ml_compile(o->start_pattern, err, errlen, &m->code);
        if (r < 0)
                goto fail;
        /* Without the JIT (not built in, or no executable memory) the interpreter runs;
         * without a JIT stack the JIT uses 32 KiB of the machine stack. */
        if (pcre2_jit_compile(m->code, PCRE2_JIT_COMPLETE) == 0)
                m->jit_stack = pcre2_jit_stack_create(ML_JIT_STACK_START, ML_JIT_STACK_MAX, NULL);
        m->md = pcre2_match_data_create_from_pattern(m->code, NULL);
        m->mc = pcre2_match_context_create(NULL);
        if (!m->md || !m->mc)
                goto fail_nomem;
        (void)pcre2_set_match_limit(m->mc,
                                    o->match_limit ? o->match_limit : ML_MATCH_LIMIT_DEFAULT);
        (void)pcre2_set_depth_limit(m->mc, ML_DEPTH_LIMIT);
        (void)pcre2_set_heap_limit(m->mc, ML_HEAP_LIMIT_KIB);
        if (m->jit_stack)
                pcre2_jit_stack_assign(m->mc, NULL, m->jit_stack);
        *ret_ml = m;
        return 0;

fail_nomem:
        ml_error(err, errlen, "out of memory");
        r = -ENOMEM;
fail:
        ml_free(m);
        return r;
}

void ml_free(struct ml *m)
{
        if (!m)
                return;
        pcre2_match_context_free(m->mc);
        pcre2_match_data_free(m->md);
        pcre2_jit_stack_free(m->jit_stack);
        pcre2_code_free(m->code);
        free(m->buf);
        free(m);
}

/* True if the line matches the start pattern. A failed match (a limit hit) is counted
 * and reads as "no": the line joins the pending record rather than being lost. */
static bool ml_is_start(struct ml *m, const char *data, size_t len)
{
        /* PCRE2 before 10.43 rejects a NULL subject even with length 0. */
        PCRE2_SPTR subject = data ? (PCRE2_SPTR)data : (PCRE2_SPTR) "";
        int rc = pcre2_match(m->code, subject, len, 0, 0, m->md, m->mc);

        if (rc >= 0)
                return true;
        if (rc != PCRE2_ERROR_NOMATCH)
                m->stats.match_errors++;
        return false;
}

/* Room for need bytes. Doubles, but never beyond the larger of max_bytes and need:
 * a record longer than max_bytes is a single line and the next record starts empty. */
static int ml_grow(struct ml *m, size_t need)
{
        size_t limit = need > m->max_bytes ? need : m->max_bytes;
        size_t cap = m->cap ? m->cap : ML_MIN_CAP;
        char *buf;

        while (cap < need && cap <= SIZE_MAX / 2)
                cap *= 2;
        if (cap > limit)
                cap = limit;
        if (cap < need)
                cap = need;
        buf = realloc(m->buf, cap);
        if (!buf)
                return -ENOMEM;
        m->buf = buf;
        m->cap = cap;
        return 0;
}

static int ml_complete(struct ml *m)
{
        m->complete = true;
        return ML_EMIT_FIRST;
}

int ml_offer(struct ml *m, const char *data, size_t len, uint64_t start, uint64_t end,
             uint64_t now_ms)
{
        size_t need = len;

        if (m->complete)
                return ML_EMIT_FIRST;
        if (m->lines > 0) {
                if (ml_is_start(m, data, len))
                        return ml_complete(m);
                if (m->lines >= m->max_lines) {
                        m->stats.split_lines++;
                        return ml_complete(m);
                }
                /* m->len + 1 + len > max_bytes, without overflow (m->len may exceed
                 * max_bytes: a single long line). */
                if (m->len >= m->max_bytes || len > m->max_bytes - m->len - 1) {
                        m->stats.split_bytes++;
                        return ml_complete(m);
                }
                need = m->len + 1 + len;
        }
        if (need > m->cap) {
                int r = ml_grow(m, need);
                if (r < 0)
                        return r;
        }
        if (m->lines > 0)
                m->buf[m->len++] = '\n';
        else
                m->start = start;
        if (len > 0)
                memcpy(m->buf + m->len, data, len);
        m->len += len;
        m->lines++;
        m->end = end;
        m->last_ms = now_ms;
        m->stats.lines++;
        return ML_TAKEN;
}

bool ml_pending(const struct ml *m, struct ml_record *ret_record)
{
        if (m->lines == 0)
                return false;
        /* A record of one empty line may have no buffer yet. */
        ret_record->data = m->buf ? m->buf : "";
        ret_record->len = m->len;
        ret_record->start = m->start;
        ret_record->end = m->end;
        ret_record->lines = m->lines;
        return true;
}

void ml_clear(struct ml *m)
{
        if (m->lines == 0)
                return;
        m->stats.records++;
        m->len = 0;
        m->lines = 0;
        m->complete = false;
}

uint64_t ml_deadline(const struct ml *m, uint64_t timeout_ms)
{
        if (m->lines == 0)
                return UINT64_MAX;
        if (timeout_ms > UINT64_MAX - m->last_ms)
                return UINT64_MAX;
        return m->last_ms + timeout_ms;
}

const struct ml_stats *ml_stats(const struct ml *m)
{
        return &m->stats;
}
