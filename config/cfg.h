/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cfg: the keys a worker and a connector understand, their types, defaults and
 * allowed values, and validation of a parsed .properties file against them.
 *
 * Keys are Kafka Connect's wherever Connect has one. Values are trimmed like
 * Connect's ConfigDef (Java's String.trim(): bytes <= 0x20 at both ends). Checks:
 *   - a bad value is an error naming the key, the value and what is allowed;
 *   - a missing required key is an error;
 *   - an unknown key is a warning naming it;
 *   - a key Connect has but ringtail ignores is a notice saying so;
 *   - a key set twice is a warning naming both lines.
 * Prefixed keys are checked by their owners: "producer." and "producer.override."
 * go to librdkafka unchanged (it rejects what it does not know), "key.converter." and
 * "value.converter." are converter settings checked here.
 *
 * Threading: a struct cfg is immutable after cfg_*_new() and may be read anywhere.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct props;
struct cfg;

enum cfg_kind {
        CFG_WORKER_STANDALONE,
        CFG_CONNECTOR,
};

enum cfg_severity {
        CFG_ERROR,
        CFG_WARNING,
        CFG_NOTICE,
};

/* Receives every problem found, in file order. msg starts with "<origin>:<line>: "
 * when the problem has a line. */
typedef void (*cfg_report_t)(void *userdata, enum cfg_severity sev, const char *msg);

enum cfg_type {
        CFG_STRING,
        CFG_INT,  /* 32-bit */
        CFG_LONG, /* 64-bit */
        CFG_BOOL,
        CFG_LIST, /* comma-separated, items trimmed */
        CFG_CLASS,
        CFG_PASSWORD,
};

enum {
        CFG_F_IGNORED = 1u << 0, /* Connect's key, accepted with a notice, no effect */
        CFG_F_SECRET = 1u << 1,  /* never echo the value */
};

struct cfg_def {
        const char *name;
        enum cfg_type type;
        const char *dflt;           /* NULL: required */
        int64_t min, max;           /* CFG_INT/CFG_LONG bounds */
        const char *const *choices; /* NULL-terminated allowed values, case-insensitive */
        /* Further checks; returns 0 or -EINVAL with why filled ("expected ..."). */
        int (*check)(const char *value, char *why, size_t why_len);
        unsigned flags;
        const char *doc;
};

/* Validates p as a standalone worker config, or as a connector config (its
 * connector.class picks the key set). origin names the file in messages. Returns 0
 * and *ret_cfg (which keeps a reference to p: p must outlive it), or -EINVAL after
 * reporting every error, or -ENOMEM. */
int cfg_new(enum cfg_kind kind, const struct props *p, const char *origin, cfg_report_t report,
            void *userdata, struct cfg **ret_cfg);

/* Typed, trimmed values of defined keys (the default when unset). Asking for a key
 * the config's definitions do not have is a programming error (abort). */
const char *cfg_str(const struct cfg *c, const char *key);
int64_t cfg_int(const struct cfg *c, const char *key);
bool cfg_bool(const struct cfg *c, const char *key);

/* The raw properties given to cfg_new(). */
const struct props *cfg_props(const struct cfg *c);

/* Connector classes ringtail runs. */
enum cfg_connector {
        CFG_CONN_FILE_SOURCE,
        CFG_CONN_TAIL_SOURCE,
};

/* Parses a `listeners` value. Returns 1 and fills host/port for one http listener,
 * 0 for an empty value (no REST API), -EINVAL with why filled otherwise (https,
 * several listeners, a bad port, ...). host is "" for every interface. */
int cfg_parse_listener(const char *value, char *host, size_t host_len, unsigned *ret_port,
                       char *why, size_t why_len);

/* The class of a connector config. */
enum cfg_connector cfg_connector_class(const struct cfg *c);

/* The definitions of a kind of config, for `ringtail validate --describe`:
 * NULL-terminated by a def with name NULL. For connectors, one table per class. */
const struct cfg_def *cfg_defs_worker(void);
const struct cfg_def *cfg_defs_connector_common(void);
const struct cfg_def *cfg_defs_connector(enum cfg_connector cls);

/* Trims like Java's String.trim(): copies s without leading and trailing bytes
 * <= 0x20 into buf (size len). Returns buf, or NULL if it does not fit. */
char *cfg_trim(const char *s, char *buf, size_t len);

/* NULL is a no-op. Does not free the props. */
void cfg_free(struct cfg *c);
