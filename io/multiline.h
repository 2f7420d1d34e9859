/* SPDX-License-Identifier: Apache-2.0 */
/*
 * multiline: joins the lines of one file into records (TailSource's
 * multiline.start.pattern, multiline.max.lines, multiline.max.bytes, multiline.timeout.ms).
 *
 * How start patterns work. Every line is either a start line, which the pattern
 * matches, or a continuation line, which it does not. A start line begins a new record;
 * a continuation line is appended to the pending record, joined with a single '\n'.
 * Nothing else is looked at: there is no notion of an "end line". So with `^[^\s]` a
 * Python traceback
 *
 *     Traceback (most recent call last):
 *       File "app.py", line 3, in <module>
 *         main()
 *     ValueError: x
 *
 * becomes two records: the first three lines, then "ValueError: x", which matches
 * `^[^\s]` like any other unindented line. To keep such a last line in the record, use
 * a pattern only the real first lines match, typically the logger's timestamp prefix
 * (`^\d{4}-\d{2}-\d{2} `): then "ValueError: x", like a Java "Caused by: ..." line, is
 * a continuation. A continuation line with nothing pending (a file that starts in the
 * middle of a trace) starts a record by itself. Empty lines are continuations unless
 * the pattern matches the empty string.
 *
 * Limits. A record holding max_lines lines is complete: the next line starts a new
 * record even if it is a continuation (counted in split_lines). A continuation line
 * that would make the joined record longer than max_bytes starts a new record instead
 * (counted in split_bytes); a line longer than max_bytes that arrives with nothing
 * pending is still taken whole, as one record (the line framer upstream already caps
 * single lines). Nothing is ever dropped or cut. multiline.timeout.ms is the caller's:
 * it emits the pending record once ml_deadline() has passed without a next line.
 *
 * The caller offers lines in file order with ml_offer(). ML_TAKEN: the line is now
 * part of the pending record. ML_EMIT_FIRST: the pending record is complete and the line
 * was NOT taken; the caller emits ml_pending(), calls ml_clear() and offers the same
 * line again (which is then always taken: it starts the new record). A caller that
 * cannot emit yet (Kafka queue full) just stops offering and retries later: the pending
 * record stays intact, and every ml_offer() before ml_clear() keeps answering
 * ML_EMIT_FIRST without matching or counting anything again.
 *
 * Offsets. Each line comes with its file offsets: start, of its first byte, and end,
 * just past its terminator. A record carries the start of its first line and the end of
 * its last: once Kafka acknowledges it, the checkpoint may move to end. For lines that
 * follow each other in the file, each record starts where the previous one ended.
 *
 * Matching. The pattern is PCRE2 compiled with PCRE2_UTF | PCRE2_MATCH_INVALID_UTF:
 * the pattern must be valid UTF-8, subjects need not be (an invalid sequence matches no
 * character, it is never an error). \d, \s and \w are ASCII-only (no PCRE2_UCP). A
 * line is matched (pcre2_match over its bytes; NUL bytes are ordinary characters) only
 * when something is pending, at most once per ml_offer() call, and not at all once
 * ML_EMIT_FIRST has been returned. The JIT is used when it is available. Each match is
 * bounded (ml_opts.match_limit steps, ML_DEPTH_LIMIT backtracking depth,
 * ML_HEAP_LIMIT_KIB of heap), so a catastrophic pattern such as `^(a+)+$` cannot hang
 * the agent: a match that fails with an error counts in match_errors and the line is
 * treated as a continuation.
 *
 * Memory: one buffer for the pending record, grown by doubling up to the larger of
 * max_bytes and the longest line taken, and reused: once it has grown, nothing is
 * allocated per line. PCRE2 keeps its match data and JIT stack between matches.
 *
 * Not thread-safe; an ml belongs to the task reading one file.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Default ml_opts.match_limit: a line that exhausts it costs about 2 ms with the JIT,
 * 12 ms without (x86-64, ^(a+)+$). */
#define ML_MATCH_LIMIT_DEFAULT 1000000u
/* Backtracking depth and heap (KiB) one match may use in the interpreter; the JIT
 * ignores them and runs on a stack of at most 1 MiB instead. */
#define ML_DEPTH_LIMIT    100000u
#define ML_HEAP_LIMIT_KIB 8192u

struct ml;

struct ml_opts {
        const char *start_pattern; /* PCRE2 regex a record's first line matches; not empty */
        uint32_t max_lines;        /* >= 1: most lines in a record */
        size_t max_bytes;          /* >= 1: most bytes in a joined record of several lines */
        uint32_t match_limit;      /* pcre2_set_match_limit(); 0: ML_MATCH_LIMIT_DEFAULT */
};

struct ml_record {
        const char *data; /* the lines joined with '\n', no terminator; borrowed, see ml_pending */
        size_t len;
        uint64_t start; /* file offset of the first line's first byte */
        uint64_t end;   /* file offset just past the last line's terminator */
        uint32_t lines; /* >= 1 */
};

struct ml_stats {
        uint64_t records;      /* records cleared with ml_clear() */
        uint64_t lines;        /* lines taken */
        uint64_t split_lines;  /* continuation lines that started a record: max_lines reached */
        uint64_t split_bytes;  /* continuation lines that started a record: max_bytes reached */
        uint64_t match_errors; /* matches that failed (a limit hit); lines taken as continuations */
};

/* ml_offer() results. */
enum {
        ML_TAKEN = 0,      /* the line is now part of the pending record */
        ML_EMIT_FIRST = 1, /* emit and ml_clear() the pending record, then offer the line again */
};

/* Checks that pattern compiles as ml_new() compiles it. Returns 0, -EINVAL (empty or
 * invalid: err, if errlen > 0, gets PCRE2's message and the offset in the pattern,
 * e.g. "missing closing parenthesis at offset 4") or -ENOMEM. err is written only on
 * failure. */
int ml_check_pattern(const char *pattern, char *err, size_t errlen);

/* Compiles o->start_pattern and allocates the state; o is not kept. Returns 0 and
 * *ret_ml, -EINVAL (a bad option or pattern, described in err as for
 * ml_check_pattern()) or -ENOMEM. */
int ml_new(const struct ml_opts *o, char *err, size_t errlen, struct ml **ret_ml);

/* Offers the next line of the file: len bytes at data (without the terminator; may hold
 * any bytes; data may be NULL if len is 0), borrowed for the call only; start and end
 * are its file offsets, now_ms the current time (for ml_deadline()). Returns ML_TAKEN,
 * ML_EMIT_FIRST (the line was not taken; see above) or -ENOMEM (the line was not taken,
 * the pending record is unchanged; offering it again is allowed). */
int ml_offer(struct ml *m, const char *data, size_t len, uint64_t start, uint64_t end,
             uint64_t now_ms);

/* True and *ret_record if a record is pending (whether or not it is complete yet).
 * ret_record->data is borrowed: valid until the next ml_offer(), ml_clear() or ml_free(). */
bool ml_pending(const struct ml *m, struct ml_record *ret_record);

/* Drops the pending record once the caller has emitted it, and counts it in
 * stats.records. No-op if nothing is pending. */
void ml_clear(struct ml *m);

/* When the pending record should be emitted even if no next line arrives: the now_ms
 * of the last line taken plus timeout_ms (saturating at UINT64_MAX), or UINT64_MAX if
 * nothing is pending. */
uint64_t ml_deadline(const struct ml *m, uint64_t timeout_ms);

/* Counters since ml_new(); valid until ml_free(). */
const struct ml_stats *ml_stats(const struct ml *m);

/* NULL is a no-op. */
void ml_free(struct ml *m);
