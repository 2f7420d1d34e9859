/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fuzz target for io/multiline: a start pattern and lines to join.
 *
 * Input: the first line (up to '\n', at most PATTERN_MAX bytes) is the start pattern;
 * inputs whose pattern does not compile are skipped, after checking that
 * ml_check_pattern() and ml_new() agree and describe the error. The next two bytes give
 * max_lines (1..32) and max_bytes (1..2041); the rest is split on '\n' into lines (the
 * last one may lack its '\n'), offered in order with their offsets, the way the task
 * does: on ML_EMIT_FIRST the record is emitted and cleared and the line offered again.
 * Some lines (chosen by their first byte) play a caller that cannot emit at first and
 * offers the line once more before emitting.
 *
 * Invariants, any broken one aborts: each record starts where the previous one ended
 * (the first at 0) and the last ends at the end of the input; the records joined with
 * '\n' are the lines joined with '\n'; no record has more than max_lines lines, or more
 * than max_bytes bytes unless it is a single line; a re-offered line still gets
 * ML_EMIT_FIRST with the record and the stats unchanged, and a line offered after
 * ml_clear() is taken; every ML_EMIT_FIRST is explained by at most one split counter,
 * and a split counter moves only when its limit was really reached; the stats count
 * the lines and records seen; ml_deadline() follows the last line taken.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "io/multiline.h"

#define CHECK(cond)                                                                                \
        do {                                                                                       \
                if (!(cond))                                                                       \
                        abort();                                                                   \
        } while (0)

#define PATTERN_MAX 200
#define TIMEOUT_MS  100
/* Small, so that catastrophic patterns cost little time per line. */
#define MATCH_LIMIT 10000

struct run {
        struct ml *m;
        uint32_t max_lines;
        size_t max_bytes;
        char *out; /* the records emitted so far, joined with '\n' */
        size_t out_len, out_cap;
        uint64_t prev_end; /* end of the last record emitted */
        uint64_t records;
};

static void emit(struct run *run)
{
        struct ml_record rec;

        CHECK(ml_pending(run->m, &rec));
        CHECK(rec.data);
        CHECK(rec.lines >= 1 && rec.lines <= run->max_lines);
        CHECK(rec.len <= run->max_bytes || rec.lines == 1);
        CHECK(rec.start == run->prev_end);
        CHECK(rec.end >= rec.start && rec.end - rec.start >= rec.len);
        CHECK(run->out_len + (run->records > 0) + rec.len <= run->out_cap);
        if (run->records > 0)
                run->out[run->out_len++] = '\n';
        memcpy(run->out + run->out_len, rec.data, rec.len);
        run->out_len += rec.len;
        run->prev_end = rec.end;
        run->records++;
        ml_clear(run->m);
        CHECK(!ml_pending(run->m, &rec));
        CHECK(ml_deadline(run->m, TIMEOUT_MS) == UINT64_MAX);
        CHECK(ml_stats(run->m)->records == run->records);
}

/* Offers one line; returns false on -ENOMEM. */
static bool offer(struct run *run, const char *line, size_t len, uint64_t start, uint64_t end,
                  uint64_t now)
{
        struct ml_record before, after;
        struct ml_stats s0 = *ml_stats(run->m), s1, s2;
        bool had = ml_pending(run->m, &before);
        int r = ml_offer(run->m, line, len, start, end, now);

        if (r == -ENOMEM)
                return false;
        s1 = *ml_stats(run->m);
        CHECK(s1.match_errors - s0.match_errors <= (had ? 1u : 0u));
        if (r == ML_TAKEN) {
                CHECK(s1.lines == s0.lines + 1);
                CHECK(s1.split_lines == s0.split_lines && s1.split_bytes == s0.split_bytes);
                CHECK(ml_deadline(run->m, TIMEOUT_MS) == now + TIMEOUT_MS);
                return true;
        }
        CHECK(r == ML_EMIT_FIRST);
        CHECK(had);
        CHECK(s1.lines == s0.lines);
        CHECK((s1.split_lines - s0.split_lines) + (s1.split_bytes - s0.split_bytes) <= 1);
        if (s1.split_lines != s0.split_lines)
                CHECK(before.lines == run->max_lines);
        if (s1.split_bytes != s0.split_bytes)
                CHECK(before.lines < run->max_lines &&
                      (before.len >= run->max_bytes || len > run->max_bytes - before.len - 1));

        if (len > 0 && (line[0] & 1)) {
                /* The caller could not emit; it comes back with the same line. */
                CHECK(ml_offer(run->m, line, len, start, end, now + 1) == ML_EMIT_FIRST);
                CHECK(ml_pending(run->m, &after));
                CHECK(after.data == before.data && after.len == before.len);
                CHECK(after.start == before.start && after.end == before.end);
                CHECK(after.lines == before.lines);
                s2 = *ml_stats(run->m);
                CHECK(memcmp(&s1, &s2, sizeof(s1)) == 0);
        }
        emit(run);
        r = ml_offer(run->m, line, len, start, end, now);
        if (r == -ENOMEM)
                return false;
        CHECK(r == ML_TAKEN);
        CHECK(ml_pending(run->m, &after));
        CHECK(after.lines == 1 && after.len == len && after.start == start && after.end == end);
        CHECK(len == 0 || memcmp(after.data, line, len) == 0);
        return true;
}

static void check_bad_pattern(const char *pattern, int r, const char *err)
{
        char err2[256];

        CHECK(r == -EINVAL || r == -ENOMEM);
        CHECK(memchr(err, '\0', 256) && err[0] != '\0');
        CHECK(ml_check_pattern(pattern, err2, sizeof(err2)) == r);
        if (r == -EINVAL)
                CHECK(strcmp(err, err2) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        char pattern[PATTERN_MAX + 1], err[256] = "";
        struct run run = {0};
        struct ml_opts o = {.start_pattern = pattern, .match_limit = MATCH_LIMIT};
        const char *rest;
        size_t plen = 0, rlen, pos = 0;
        uint64_t lines = 0;
        int r;

        while (plen < size && plen < PATTERN_MAX && data[plen] != '\n')
                plen++;
        memcpy(pattern, data, plen);
        pattern[plen] = '\0';
        if (plen < size && data[plen] == '\n')
                plen++;
        if (size - plen < 2)
                return 0;
        run.max_lines = o.max_lines = 1 + data[plen] % 32;
        run.max_bytes = o.max_bytes = 1 + (size_t)data[plen + 1] * 8;
        rest = (const char *)data + plen + 2;
        rlen = size - plen - 2;

        r = ml_new(&o, err, sizeof(err), &run.m);
        if (r < 0) {
                check_bad_pattern(pattern, r, err);
                return 0;
        }
        CHECK(ml_check_pattern(pattern, NULL, 0) == 0);
        run.out_cap = rlen;
        run.out = malloc(rlen ? rlen : 1);
        if (!run.out)
                goto out;

        while (pos < rlen) {
                const char *nl = memchr(rest + pos, '\n', rlen - pos);
                size_t len = nl ? (size_t)(nl - (rest + pos)) : rlen - pos;
                size_t end = nl ? pos + len + 1 : rlen;

                if (!offer(&run, rest + pos, len, pos, end, lines * 10))
                        goto out;
                lines++;
                pos = end;
        }
        if (ml_pending(run.m, &(struct ml_record){0}))
                emit(&run);

        CHECK(run.prev_end == rlen);
        /* The lines joined with '\n': the input less a final terminator. */
        CHECK(run.out_len == (rlen > 0 && rest[rlen - 1] == '\n' ? rlen - 1 : rlen));
        CHECK(memcmp(run.out, rest, run.out_len) == 0);
        CHECK(ml_stats(run.m)->lines == lines);
        CHECK(ml_stats(run.m)->records == run.records);
        CHECK(run.records <= lines);
out:
        free(run.out);
        ml_free(run.m);
        return 0;
}
