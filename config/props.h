/* SPDX-License-Identifier: Apache-2.0 */
/*
 * props: a parser for Java .properties files with java.util.Properties.load()
 * semantics, so that Kafka Connect's worker and connector files load unchanged.
 *
 * Syntax handled (java.util.Properties#load(Reader)):
 *   - natural lines end at \n, \r or \r\n; a logical line continues onto the next
 *     natural line when it ends in an odd number of backslashes; leading whitespace
 *     (space, \t, \f) of a continuation line is dropped;
 *   - a line whose first non-whitespace character is '#' or '!' is a comment (a
 *     comment never continues); blank lines are skipped;
 *   - the key runs from the first non-whitespace character to the first unescaped
 *     '=', ':' or whitespace; then whitespace, at most one '=' or ':', whitespace;
 *     the rest of the logical line is the value, trailing whitespace included;
 *   - escapes in keys and values: \t \n \r \f, \uXXXX (UTF-16 code unit; a
 *     surrogate pair becomes one UTF-8 sequence), and \c for any other c is c;
 *   - a later duplicate key replaces the earlier value (the entry keeps the position
 *     of its first appearance; prev_line tells the caller to warn).
 * The file is UTF-8 (DESIGN.md: Java reads Latin-1; \uXXXX gives the same result
 * either way). Invalid UTF-8, a malformed \u escape, an unpaired surrogate, a
 * \u0000 or a raw NUL byte (neither fits a C string) is an error with line and
 * column: a \u error points at its backslash, a UTF-8 error at the first byte of
 * the bad sequence. Where this differs from Java (checked against JDK 17's
 * Properties.load on the unit tests and 180,000 random inputs): a leading UTF-8 BOM
 * is skipped (Java keeps U+FEFF in the first key), a lone backslash at the end of
 * the file defines nothing (Java defines ""=""), and the errors above (Java stores
 * unpaired surrogates and NULs). Values are not trimmed here; cfg trims as Kafka's
 * ConfigDef does.
 *
 * Not thread-safe; a struct props is owned by one thread at a time.
 */
#pragma once

#include <stddef.h>

struct props;

struct props_error {
        unsigned line;   /* 1-based natural line of the offending byte, 0 if none */
        unsigned column; /* 1-based byte column, 0 if none */
        char msg[160];   /* what is wrong, without the position */
};

/* A view of one entry; pointers are borrowed from the struct props and valid
 * until it is freed or the key is set again. */
struct props_entry {
        const char *key;
        const char *value;
        unsigned line;      /* natural line where the (last) definition starts */
        unsigned prev_line; /* line of the replaced earlier definition, 0 if none */
};

/* Parses buf[0..len) (need not be NUL-terminated). Returns 0 and *ret_props, -EINVAL
 * or -ENOMEM; *reterr_err (may be NULL) is filled on every failure (line 0 when the
 * failure has no position). */
int props_parse(const char *buf, size_t len, struct props **ret_props,
                struct props_error *reterr_err);

/* Reads and parses a file. Returns 0, -errno for I/O errors (reterr_err->msg has
 * strerror text, line 0), -EFBIG above 16 MiB, or props_parse()'s errors. */
int props_load_file(const char *path, struct props **ret_props, struct props_error *reterr_err);

/* An empty set, for configs built in code (CLI flags, REST bodies). */
int props_new(struct props **ret_props);

/* Copies key and value (both non-NULL) in; a new key goes last with line 0, an
 * existing one is replaced (its old line becomes prev_line). Returns 0 or -ENOMEM
 * (even when replacing). */
int props_set(struct props *p, const char *key, const char *value);

/* Value of key, or NULL. */
const char *props_get(const struct props *p, const char *key);

/* Entries in order of first appearance; props_at() is NULL for i >= props_count(). */
size_t props_count(const struct props *p);
const struct props_entry *props_at(const struct props *p, size_t i);

/* NULL is a no-op. */
void props_free(struct props *p);
