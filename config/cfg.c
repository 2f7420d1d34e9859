/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cfg: see cfg.h.
 *
 * The definitions are static tables, one per kind of config (worker, and each
 * connector class: the keys every connector has plus the class's own). A struct cfg
 * holds the trimmed value of every defined key, defaults filled in, so lookups after
 * validation cannot fail.
 *
 * WHEN ADDING A KEY: add it to the right table with its type, default, bounds or
 * choices and a one-line doc (shown by `ringtail validate --describe`), then list it
 * in README.md's configuration table.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "config/cfg.h"
#include "config/props.h"

#define VALUE_MAX 4096 /* longest value ringtail accepts, after trimming */

struct cfg {
        enum cfg_kind kind;
        const struct props *props;
        const struct cfg_def *defs;
        const struct cfg_def *defs2; /* the class's own keys (connectors) */
        enum cfg_connector cls;
        char **values; /* trimmed value or default per def, defs then defs2 */
        size_t n1, n2;
};

static const char *const bool_choices[] = {"true", "false", NULL};

/* ---- checks ---- */

static int check_topic(const char *v, char *why, size_t why_len)
{
        size_t n = strlen(v);
        if (n == 0 || n > 249 || strcmp(v, ".") == 0 || strcmp(v, "..") == 0)
                goto bad;
        for (size_t i = 0; i < n; i++) {
                char c = v[i];
                if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '.' || c == '_' || c == '-'))
                        goto bad;
        }
        return 0;
bad:
        snprintf(why, why_len,
                 "expected one topic name: 1 to 249 of a-z A-Z 0-9 . _ - (not '.' or '..')");
        return -EINVAL;
}

static int check_nonempty(const char *v, char *why, size_t why_len)
{
        if (*v)
                return 0;
        snprintf(why, why_len, "expected a non-empty value");
        return -EINVAL;
}

static int check_file(const char *v, char *why, size_t why_len)
{
        if (*v)
                return 0;
        snprintf(why, why_len,
                 "expected a file path (Connect reads standard input when 'file' is empty; "
                 "ringtail does not, as it cannot checkpoint it)");
        return -EINVAL;
}

static int check_converter(const char *v, char *why, size_t why_len)
{
        static const char *const known[] = {
                "org.apache.kafka.connect.storage.StringConverter",
                "org.apache.kafka.connect.converters.ByteArrayConverter",
                "org.apache.kafka.connect.json.JsonConverter",
                "StringConverter",
                "String",
                "ByteArrayConverter",
                "ByteArray",
                "JsonConverter",
                "Json",
        };
        if (!*v)
                return 0; /* connector level: inherit the worker's */
        for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
                if (strcmp(v, known[i]) == 0)
                        return 0;
        snprintf(why, why_len,
                 "expected org.apache.kafka.connect.storage.StringConverter, "
                 "org.apache.kafka.connect.converters.ByteArrayConverter or "
                 "org.apache.kafka.connect.json.JsonConverter (or their short names)");
        return -EINVAL;
}

static int check_header_converter(const char *v, char *why, size_t why_len)
{
        if (!*v || strcmp(v, "org.apache.kafka.connect.storage.SimpleHeaderConverter") == 0 ||
            strcmp(v, "SimpleHeaderConverter") == 0)
                return 0;
        snprintf(why, why_len, "expected org.apache.kafka.connect.storage.SimpleHeaderConverter");
        return -EINVAL;
}

static int check_encoding(const char *v, char *why, size_t why_len)
{
        if (!*v || strcasecmp(v, "UTF-8") == 0 || strcasecmp(v, "UTF8") == 0)
                return 0;
        snprintf(why, why_len, "expected UTF-8 (the only encoding ringtail converts to)");
        return -EINVAL;
}

static int check_eos(const char *v, char *why, size_t why_len)
{
        if (strcasecmp(v, "disabled") == 0 || strcasecmp(v, "enabled") == 0)
                return 0;
        snprintf(why, why_len, "expected enabled or disabled");
        return -EINVAL;
}

static int check_boundary(const char *v, char *why, size_t why_len)
{
        if (strcmp(v, "poll") == 0 || strcmp(v, "interval") == 0)
                return 0;
        snprintf(why, why_len,
                 "expected poll or interval (connector-defined boundaries are not supported "
                 "by ringtail's source connectors)");
        return -EINVAL;
}

static int check_unsupported_list(const char *v, char *why, size_t why_len)
{
        if (!*v)
                return 0;
        snprintf(why, why_len, "expected an empty value: not available in this version");
        return -EINVAL;
}

static int check_io_backend(const char *v, char *why, size_t why_len)
{
        if (strcmp(v, "auto") == 0 || strcmp(v, "io_uring") == 0 || strcmp(v, "poll") == 0)
                return 0;
        snprintf(why, why_len, "expected auto, io_uring or poll");
        return -EINVAL;
}

int cfg_parse_listener(const char *value, char *host, size_t host_len, unsigned *ret_port,
                       char *why, size_t why_len)
{
        while (*value == ' ' || *value == '\t')
                value++;
        if (!*value)
                return 0;
        if (strchr(value, ',')) {
                snprintf(why, why_len, "one listener only (ringtail serves one http address)");
                return -EINVAL;
        }
        if (strncasecmp(value, "https://", 8) == 0) {
                snprintf(why, why_len,
                         "https is not supported: use http:// on a loopback "
                         "address and a TLS proxy in front");
                return -EINVAL;
        }
        if (strncasecmp(value, "http://", 7) != 0) {
                snprintf(why, why_len, "expected http://HOST:PORT");
                return -EINVAL;
        }
        const char *h = value + 7, *colon;
        size_t hl;
        if (*h == '[') {
                const char *close = strchr(h, ']');
                if (!close || close[1] != ':') {
                        snprintf(why, why_len, "expected http://[IPv6]:PORT");
                        return -EINVAL;
                }
                h++;
                hl = (size_t)(close - h);
                colon = close + 1;
        } else {
                colon = strrchr(h, ':');
                if (!colon) {
                        snprintf(why, why_len, "no port: expected http://HOST:PORT");
                        return -EINVAL;
                }
                hl = (size_t)(colon - h);
        }
        if (hl >= host_len) {
                snprintf(why, why_len, "host name too long");
                return -EINVAL;
        }
        memcpy(host, h, hl);
        host[hl] = '\0';
        const char *p = colon + 1;
        char *end;
        errno = 0;
        unsigned long port = strtoul(p, &end, 10);
        while (*end == '/')
                end++;
        if (!*p || *p < '0' || *p > '9' || errno || *end || port > 65535) {
                snprintf(why, why_len, "bad port '%s' (0-65535; 0 picks a free one)", p);
                return -EINVAL;
        }
        *ret_port = (unsigned)port;
        return 1;
}

static int check_listeners(const char *v, char *why, size_t why_len)
{
        char host[256];
        unsigned port;
        int r = cfg_parse_listener(v, host, sizeof(host), &port, why, why_len);
        return r < 0 ? r : 0;
}

static int check_choice(const char *v, const char *const *choices, char *why, size_t why_len)
{
        size_t used = 0;
        for (size_t i = 0; choices[i]; i++)
                if (strcmp(v, choices[i]) == 0)
                        return 0;
        used += (size_t)snprintf(why, why_len, "expected ");
        for (size_t i = 0; choices[i] && used < why_len; i++)
                used += (size_t)snprintf(why + used, why_len - used, "%s%s",
                                         i == 0           ? ""
                                         : choices[i + 1] ? ", "
                                                          : " or ",
                                         choices[i]);
        return -EINVAL;
}

#define CHOICE_CHECK(fn, ...)                                                                      \
        static int fn(const char *v, char *why, size_t why_len)                                    \
        {                                                                                          \
                static const char *const c[] = {__VA_ARGS__, NULL};                                \
                return check_choice(v, c, why, why_len);                                           \
        }
CHOICE_CHECK(check_read_from, "beginning", "end")
CHOICE_CHECK(check_long_policy, "split", "truncate", "skip")
CHOICE_CHECK(check_empty_lines, "keep", "skip")
CHOICE_CHECK(check_key_mode, "none", "path", "host")

/* Each comma-separated item must be a non-empty glob; the glob syntax itself is
 * checked when the task compiles the set (io/glob). */
static int check_globs(const char *v, char *why, size_t why_len, bool required)
{
        if (!*v && !required)
                return 0;
        const char *p = v;
        for (;;) {
                const char *comma = strchr(p, ',');
                size_t n = comma ? (size_t)(comma - p) : strlen(p);
                while (n > 0 && (unsigned char)*p <= 0x20) {
                        p++;
                        n--;
                }
                while (n > 0 && (unsigned char)p[n - 1] <= 0x20)
                        n--;
                if (n == 0 || p[n - 1] == '/') {
                        snprintf(why, why_len,
                                 "expected comma-separated file globs (such as "
                                 "/var/log/app/*.log,/srv/*/logs/**/*.log), each naming files");
                        return -EINVAL;
                }
                if (!comma)
                        return 0;
                p = comma + 1;
        }
}

static int check_files(const char *v, char *why, size_t why_len)
{
        return check_globs(v, why, why_len, true);
}

static int check_exclude(const char *v, char *why, size_t why_len)
{
        return check_globs(v, why, why_len, false);
}

/* Compiled here only to reject a bad pattern before anything starts; the task
 * compiles it again (io/multiline). */
static int check_regex(const char *v, char *why, size_t why_len)
{
        if (!*v)
                return 0;
        int code;
        PCRE2_SIZE at;
        pcre2_code *re = pcre2_compile((PCRE2_SPTR)v, PCRE2_ZERO_TERMINATED,
                                       PCRE2_UTF | PCRE2_MATCH_INVALID_UTF, &code, &at, NULL);
        if (re) {
                pcre2_code_free(re);
                return 0;
        }
        PCRE2_UCHAR msg[256];
        if (pcre2_get_error_message(code, msg, sizeof(msg)) < 0)
                snprintf((char *)msg, sizeof(msg), "error %d", code);
        snprintf(why, why_len, "expected a PCRE2 regular expression (at offset %zu: %s)",
                 (size_t)at, (const char *)msg);
        return -EINVAL;
}

/* ---- definitions ---- */

#define STR(n, d, doc)                                                                             \
        {                                                                                          \
                n, CFG_STRING, d, 0, 0, NULL, NULL, 0, doc                                         \
        }
#define STRC(n, d, chk, doc)                                                                       \
        {                                                                                          \
                n, CFG_STRING, d, 0, 0, NULL, chk, 0, doc                                          \
        }
#define LONG(n, d, lo, hi, doc)                                                                    \
        {                                                                                          \
                n, CFG_LONG, d, lo, hi, NULL, NULL, 0, doc                                         \
        }
#define INT(n, d, lo, hi, doc)                                                                     \
        {                                                                                          \
                n, CFG_INT, d, lo, hi, NULL, NULL, 0, doc                                          \
        }
#define BOOL(n, d, doc)                                                                            \
        {                                                                                          \
                n, CFG_BOOL, d, 0, 0, bool_choices, NULL, 0, doc                                   \
        }
#define IGNORED(n, type, doc)                                                                      \
        {                                                                                          \
                n, type, "", 0, 0, NULL, NULL, CFG_F_IGNORED, doc                                  \
        }

/* Converter settings, under key.converter. and value.converter. */
#define CONVERTER_KEYS(p, what, dflt_class)                                                        \
        {p,                                                                                        \
         CFG_CLASS,                                                                                \
         dflt_class,                                                                               \
         0,                                                                                        \
         0,                                                                                        \
         NULL,                                                                                     \
         check_converter,                                                                          \
         0,                                                                                        \
         "converter of record " what ": String, ByteArray or JsonConverter"},                      \
                BOOL(p ".schemas.enable", "true",                                                  \
                     "JsonConverter: wrap values in a schema envelope"),                           \
                STRC(p ".encoding", "UTF-8", check_encoding,                                       \
                     "StringConverter: character encoding"),                                       \
                STRC(p ".converter.encoding", "UTF-8", check_encoding,                             \
                     "StringConverter: character encoding"),                                       \
                IGNORED(p ".schemas.cache.size", CFG_INT,                                          \
                        "JsonConverter: no effect on string values"),                              \
                IGNORED(p ".decimal.format", CFG_STRING,                                           \
                        "JsonConverter: no effect on string values"),                              \
                IGNORED(p ".replace.null.with.default", CFG_BOOL,                                  \
                        "JsonConverter: no effect on string values")

static const struct cfg_def worker_defs[] = {
        STR("bootstrap.servers", "localhost:9092",
            "Kafka brokers, host:port,...; 'embedded' runs librdkafka's mock cluster in-process"),
        CONVERTER_KEYS("key.converter", "keys", NULL),
        CONVERTER_KEYS("value.converter", "values", NULL),
        STRC("offset.storage.file.filename", NULL, check_nonempty,
             "checkpoint file: byte offsets of every file read"),
        LONG("offset.flush.interval.ms", "60000", 1, INT64_MAX,
             "how often acknowledged offsets are written to the checkpoint file"),
        LONG("task.shutdown.graceful.timeout.ms", "5000", 0, INT64_MAX,
             "how long shutdown waits for Kafka to acknowledge records in flight"),
        STR("client.id", "", "client.id prefix of the producers (default ringtail-<connector>)"),
        {"header.converter", CFG_CLASS, "", 0, 0, NULL, check_header_converter, 0,
         "converter of record headers"},
        STRC("exactly.once.source.support", "disabled", check_eos,
             "enabled: exactly-once delivery (KIP-618): transactions carry the records and "
             "their offsets, written to offset.storage.topic"),
        STRC("offset.storage.topic", "connect-offsets", check_topic,
             "exactly-once: the compacted topic of source offsets (created if missing)"),
        INT("offset.storage.partitions", "25", 1, 100000,
            "exactly-once: partitions of offset.storage.topic when ringtail creates it"),
        INT("offset.storage.replication.factor", "-1", -1, 32767,
            "exactly-once: replication factor of offset.storage.topic when ringtail creates it "
            "(-1: the broker's default)"),
        STR("group.id", "",
            "prefix of transactional ids (default ringtail): "
            "<group.id>-<connector>-0"),
        STRC("io.backend", "auto", check_io_backend,
             "ringtail: file reads through io_uring, poll(2)+pread(2), or auto (io_uring if the "
             "kernel allows it)"),
        IGNORED("plugin.path", CFG_LIST,
                "Java plugin directories: ringtail has its connectors built in"),
        STRC("listeners", "http://127.0.0.1:8083", check_listeners,
             "the REST API's address, http://HOST:PORT (one; port 0 picks a free one, logged); "
             "empty: no REST API"),
        IGNORED("rest.host.name", CFG_STRING, "deprecated in Connect: use listeners"),
        IGNORED("rest.port", CFG_INT, "deprecated in Connect: use listeners"),
        IGNORED("rest.advertised.host.name", CFG_STRING,
                "ringtail reports the address it listens on"),
        IGNORED("rest.advertised.port", CFG_INT, "ringtail reports the address it listens on"),
        IGNORED("rest.advertised.listener", CFG_STRING,
                "ringtail reports the address it listens on"),
        IGNORED("admin.listeners", CFG_LIST,
                "Connect's admin endpoints (loggers) are not in "
                "ringtail"),
        IGNORED("offset.flush.timeout.ms", CFG_LONG,
                "ringtail's checkpoint write does not wait for Kafka"),
        IGNORED("internal.key.converter", CFG_CLASS, "removed in Kafka 3.0"),
        IGNORED("internal.value.converter", CFG_CLASS, "removed in Kafka 3.0"),
        IGNORED("internal.key.converter.schemas.enable", CFG_BOOL, "removed in Kafka 3.0"),
        IGNORED("internal.value.converter.schemas.enable", CFG_BOOL, "removed in Kafka 3.0"),
        IGNORED("connector.client.config.override.policy", CFG_STRING,
                "ringtail always allows producer.override.*"),
        IGNORED("metrics.recording.level", CFG_STRING, "Java metrics"),
        IGNORED("metric.reporters", CFG_LIST, "Java metrics"),
        {NULL},
};

static const struct cfg_def connector_defs[] = {
        STRC("name", NULL, check_nonempty, "unique connector name"),
        STRC("connector.class", NULL, check_nonempty, "FileStreamSource"),
        INT("tasks.max", "1", 1, INT32_MAX, "most tasks (FileStreamSource always runs one)"),
        CONVERTER_KEYS("key.converter", "keys (empty: the worker's)", ""),
        CONVERTER_KEYS("value.converter", "values (empty: the worker's)", ""),
        {"header.converter", CFG_CLASS, "", 0, 0, NULL, check_header_converter, 0,
         "converter of record headers"},
        STRC("transforms", "", check_unsupported_list,
             "single message transforms; must be empty in this version"),
        STRC("predicates", "", check_unsupported_list,
             "transform predicates; must be empty in this version"),
        STRC("transaction.boundary", "poll", check_boundary,
             "exactly-once: a transaction per read of a file (poll) or per "
             "transaction.boundary.interval.ms (interval)"),
        LONG("transaction.boundary.interval.ms", "0", 0, INT64_MAX,
             "exactly-once, interval boundary: how long a transaction lasts (0: "
             "offset.flush.interval.ms)"),
        INT("producers", "0", 0, 64,
            "ringtail: librdkafka producers sharing the topic's partitions, to spread "
            "compression over cores (0: one per CPU, at most 4); keyed records and "
            "exactly-once use one"),
        IGNORED("exactly.once.support", CFG_STRING,
                "ringtail's source connectors always support exactly-once"),
        IGNORED("offsets.storage.topic", CFG_STRING,
                "per-connector offsets topics: the worker's offset.storage.topic is used"),
        IGNORED("errors.tolerance", CFG_STRING, "a source line cannot fail conversion"),
        IGNORED("errors.log.enable", CFG_BOOL, "a source line cannot fail conversion"),
        IGNORED("errors.log.include.messages", CFG_BOOL, "a source line cannot fail conversion"),
        IGNORED("errors.retry.timeout", CFG_LONG, "a source line cannot fail conversion"),
        IGNORED("errors.retry.delay.max.ms", CFG_LONG, "a source line cannot fail conversion"),
        IGNORED("config.action.reload", CFG_STRING, "no external config providers"),
        {NULL},
};

/* Line handling shared by the source connectors. */
#define LINE_KEYS(dflt_read_from)                                                                  \
        STRC("read.from", dflt_read_from, check_read_from,                                         \
             "where a file with no checkpoint that exists at start is read from: beginning or "    \
             "end (files that appear later are always read from the beginning)"),                  \
                INT("max.line.bytes", "934464", 1, 256 * 1024 * 1024,                              \
                    "longest line sent as one record (below the producer's message.max.bytes)"),   \
                STRC("long.line.policy", "split", check_long_policy,                               \
                     "longer lines: split (pieces of max.line.bytes), truncate or skip"),          \
                STRC("empty.lines", "keep", check_empty_lines, "empty lines: keep or skip"),       \
                LONG("partial.line.flush.ms", "0", 0, INT64_MAX,                                   \
                     "send a last line with no newline after it waited this long (0: wait "        \
                     "for the newline)"),                                                          \
                INT("fingerprint.bytes", "1024", 16, 65536,                                        \
                    "bytes at the start of a file hashed into its identity"),                      \
                LONG("close.inactive.ms", "60000", 100, INT64_MAX,                                 \
                     "close a file idle this long (reopened when it grows); a rotated file is "    \
                     "finished after this long idle"),                                             \
                LONG("scan.interval.ms", "10000", 100, INT64_MAX,                                  \
                     "rescan of paths and globs, for filesystems where inotify is silent")

static const struct cfg_def file_source_defs[] = {
        STRC("file", NULL, check_file, "the file to read"),
        STRC("topic", NULL, check_topic, "the topic to write to"),
        INT("batch.size", "2000", 1, INT32_MAX,
            "most lines per acknowledgement batch (Connect: records per poll)"),
        {NULL},
};

static const struct cfg_def tail_source_defs[] = {
        STRC("files", NULL, check_files,
             "comma-separated globs of the files to read (* ? [..] in a name, ** any depth)"),
        STRC("exclude", "", check_exclude, "comma-separated globs of files to leave out"),
        STRC("topic", NULL, check_topic, "the topic to write to"),
        INT("batch.size", "2000", 1, INT32_MAX, "most lines per acknowledgement batch"),
        LINE_KEYS("beginning"),
        STRC("multiline.start.pattern", "", check_regex,
             "PCRE2 regex of the lines that start a record; other lines are joined to the "
             "record with \\n (empty: every line is a record)"),
        INT("multiline.max.lines", "500", 1, INT32_MAX,
            "most lines in one record; the next line starts a new one"),
        INT("multiline.max.bytes", "934464", 1, 256 * 1024 * 1024,
            "most bytes in one joined record; the next line starts a new one"),
        LONG("multiline.timeout.ms", "1000", 1, INT64_MAX,
             "send a joined record when no line followed it for this long"),
        INT("max.open.files", "1024", 1, 1024 * 1024,
            "most files open at once; idle ones are closed first"),
        LONG("buffer.memory", "12582912", 1024, INT64_MAX,
             "bytes of records waiting for Kafka; reading pauses at the cap"),
        BOOL("headers.source", "false",
             "add headers file.path, file.offset (of the line) and host.name to each record"),
        STRC("key.mode", "none", check_key_mode, "record key: none, path (of the file) or host"),
        {NULL},
};

static const struct {
        const char *name;
        enum cfg_connector cls;
} connector_classes[] = {
        {"FileStreamSource", CFG_CONN_FILE_SOURCE},
        {"FileStreamSourceConnector", CFG_CONN_FILE_SOURCE},
        {"org.apache.kafka.connect.file.FileStreamSourceConnector", CFG_CONN_FILE_SOURCE},
        {"TailSource", CFG_CONN_TAIL_SOURCE},
};

static const char *const later_classes[] = {
        "FileStreamSink",
        "FileStreamSinkConnector",
        "org.apache.kafka.connect.file.FileStreamSinkConnector",
        "FileSink",
};

enum cfg_connector cfg_connector_class(const struct cfg *c)
{
        return c->cls;
}

const struct cfg_def *cfg_defs_worker(void)
{
        return worker_defs;
}

const struct cfg_def *cfg_defs_connector_common(void)
{
        return connector_defs;
}

const struct cfg_def *cfg_defs_connector(enum cfg_connector cls)
{
        return cls == CFG_CONN_TAIL_SOURCE ? tail_source_defs : file_source_defs;
}

/* ---- validation ---- */

struct check {
        const char *origin;
        cfg_report_t report;
        void *userdata;
        int errors;
};

static void report(struct check *ck, enum cfg_severity sev, unsigned line, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));

static void report(struct check *ck, enum cfg_severity sev, unsigned line, const char *fmt, ...)
{
        char msg[1024];
        int n = line ? snprintf(msg, sizeof(msg), "%s:%u: ", ck->origin, line)
                     : snprintf(msg, sizeof(msg), "%s: ", ck->origin);
        if (n < 0 || (size_t)n >= sizeof(msg))
                n = 0;
        va_list ap;
        va_start(ap, fmt);
        (void)vsnprintf(msg + n, sizeof(msg) - (size_t)n, fmt, ap);
        va_end(ap);
        if (sev == CFG_ERROR)
                ck->errors++;
        if (ck->report)
                ck->report(ck->userdata, sev, msg);
}

char *cfg_trim(const char *s, char *buf, size_t len)
{
        while (*s && (unsigned char)*s <= ' ')
                s++;
        size_t n = strlen(s);
        while (n > 0 && (unsigned char)s[n - 1] <= ' ')
                n--;
        if (n >= len)
                return NULL;
        memcpy(buf, s, n);
        buf[n] = '\0';
        return buf;
}

static int parse_long(const char *v, int64_t *ret)
{
        char *end;
        if (!*v || !((*v >= '0' && *v <= '9') || *v == '-' || *v == '+'))
                return -EINVAL;
        errno = 0;
        long long x = strtoll(v, &end, 10);
        if (errno || *end)
                return -EINVAL;
        *ret = x;
        return 0;
}

/* Checks one value against its definition; returns 0 or -EINVAL with why filled. */
static int check_value(const struct cfg_def *d, const char *v, char *why, size_t why_len)
{
        int64_t x;
        switch (d->type) {
        case CFG_INT:
        case CFG_LONG:
                if (d->flags & CFG_F_IGNORED)
                        return 0;
                if (parse_long(v, &x) < 0 || x < d->min || x > d->max) {
                        snprintf(why, why_len,
                                 "expected a whole number from %" PRId64 " to %" PRId64, d->min,
                                 d->max);
                        return -EINVAL;
                }
                break;
        case CFG_BOOL:
                if (strcasecmp(v, "true") != 0 && strcasecmp(v, "false") != 0 &&
                    !(d->flags & CFG_F_IGNORED)) {
                        snprintf(why, why_len, "expected true or false");
                        return -EINVAL;
                }
                break;
        default:
                break;
        }
        if (d->choices) {
                bool ok = false;
                for (const char *const *c = d->choices; *c; c++)
                        ok = ok || strcasecmp(v, *c) == 0;
                if (!ok) {
                        size_t n = (size_t)snprintf(why, why_len, "expected one of:");
                        for (const char *const *c = d->choices; *c && n < why_len; c++)
                                n += (size_t)snprintf(why + n, why_len - n, " %s", *c);
                        return -EINVAL;
                }
        }
        if (d->check)
                return d->check(v, why, why_len);
        return 0;
}

static const struct cfg_def *find_def(const struct cfg_def *defs, const char *key, size_t *ret_idx)
{
        if (!defs)
                return NULL;
        for (size_t i = 0; defs[i].name; i++) {
                if (strcmp(defs[i].name, key) == 0) {
                        if (ret_idx)
                                *ret_idx = i;
                        return &defs[i];
                }
        }
        return NULL;
}

static bool has_prefix(const char *s, const char *prefix)
{
        return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* Prefixes whose keys belong to librdkafka or to parts not in this version. */
static bool passthrough_key(enum cfg_kind kind, const char *key, struct check *ck, unsigned line)
{
        if (kind == CFG_WORKER_STANDALONE && has_prefix(key, "producer."))
                return true;
        if (kind == CFG_CONNECTOR && has_prefix(key, "producer.override."))
                return true;
        if ((kind == CFG_WORKER_STANDALONE &&
             (has_prefix(key, "consumer.") || has_prefix(key, "admin."))) ||
            (kind == CFG_CONNECTOR &&
             (has_prefix(key, "consumer.override.") || has_prefix(key, "admin.override.")))) {
                report(ck, CFG_NOTICE, line,
                       "'%s' ignored: only the producer is used by source "
                       "connectors",
                       key);
                return true;
        }
        return false;
}

/* The line a key is defined on, for messages; 0 if unset. */
static unsigned key_line(const struct props *p, const char *key)
{
        for (size_t i = 0; i < props_count(p); i++) {
                const struct props_entry *e = props_at(p, i);
                if (strcmp(e->key, key) == 0)
                        return e->line;
        }
        return 0;
}

static int store_values(struct cfg *c, const struct cfg_def *defs, size_t base, size_t n,
                        struct check *ck)
{
        char buf[VALUE_MAX], why[512];
        for (size_t i = 0; i < n; i++) {
                const struct cfg_def *d = &defs[i];
                const char *raw = props_get(c->props, d->name);
                const char *v;
                if (raw) {
                        unsigned line = key_line(c->props, d->name);
                        v = cfg_trim(raw, buf, sizeof(buf));
                        if (!v) {
                                report(ck, CFG_ERROR, line, "%s: value longer than %d bytes",
                                       d->name, VALUE_MAX - 1);
                                continue;
                        }
                        if (d->flags & CFG_F_IGNORED) {
                                report(ck, CFG_NOTICE, line, "'%s' ignored: %s", d->name, d->doc);
                        } else if (check_value(d, v, why, sizeof(why)) < 0) {
                                if (d->flags & CFG_F_SECRET)
                                        report(ck, CFG_ERROR, line, "%s: bad value: %s", d->name,
                                               why);
                                else
                                        report(ck, CFG_ERROR, line, "%s='%s' is not valid: %s",
                                               d->name, v, why);
                        }
                } else if (!d->dflt) {
                        report(ck, CFG_ERROR, 0, "%s is required: %s", d->name, d->doc);
                        continue;
                } else {
                        v = d->dflt;
                }
                c->values[base + i] = strdup(v);
                if (!c->values[base + i])
                        return -ENOMEM;
        }
        return 0;
}

static size_t defs_len(const struct cfg_def *defs)
{
        size_t n = 0;
        while (defs && defs[n].name)
                n++;
        return n;
}

int cfg_new(enum cfg_kind kind, const struct props *p, const char *origin, cfg_report_t report_cb,
            void *userdata, struct cfg **ret_cfg)
{
        struct check ck = {.origin = origin, .report = report_cb, .userdata = userdata};
        struct cfg *c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->kind = kind;
        c->props = p;

        if (kind == CFG_WORKER_STANDALONE) {
                c->defs = worker_defs;
        } else {
                c->defs = connector_defs;
                const char *cls = props_get(p, "connector.class");
                char buf[VALUE_MAX];
                if (cls && cfg_trim(cls, buf, sizeof(buf))) {
                        bool found = false;
                        for (size_t i = 0;
                             i < sizeof(connector_classes) / sizeof(connector_classes[0]); i++) {
                                if (strcmp(buf, connector_classes[i].name) == 0) {
                                        c->defs2 = cfg_defs_connector(connector_classes[i].cls);
                                        c->cls = connector_classes[i].cls;
                                        found = true;
                                }
                        }
                        bool later = false;
                        for (size_t i = 0; i < sizeof(later_classes) / sizeof(later_classes[0]);
                             i++)
                                later = later || strcmp(buf, later_classes[i]) == 0;
                        unsigned line = key_line(p, "connector.class");
                        if (!found && later)
                                report(&ck, CFG_ERROR, line,
                                       "connector.class='%s' is not valid: this connector is not "
                                       "available in this version (FileStreamSource and TailSource "
                                       "are)",
                                       buf);
                        else if (!found && *buf)
                                report(&ck, CFG_ERROR, line,
                                       "connector.class='%s' is not valid: expected "
                                       "FileStreamSource (or "
                                       "org.apache.kafka.connect.file.FileStreamSourceConnector) "
                                       "or TailSource",
                                       buf);
                }
        }
        c->n1 = defs_len(c->defs);
        c->n2 = defs_len(c->defs2);
        c->values = calloc(c->n1 + c->n2, sizeof(*c->values));
        if (!c->values)
                goto nomem;
        if (store_values(c, c->defs, 0, c->n1, &ck) < 0 ||
            store_values(c, c->defs2, c->n1, c->n2, &ck) < 0)
                goto nomem;

        for (size_t i = 0; i < props_count(p); i++) {
                const struct props_entry *e = props_at(p, i);
                if (e->prev_line)
                        report(&ck, CFG_WARNING, e->line,
                               "'%s' is set twice (lines %u and %u): the later value is used",
                               e->key, e->prev_line, e->line);
                if (find_def(c->defs, e->key, NULL) || find_def(c->defs2, e->key, NULL))
                        continue;
                if (passthrough_key(kind, e->key, &ck, e->line))
                        continue;
                report(&ck, CFG_WARNING, e->line, "unknown key '%s' ignored", e->key);
        }

        if (ck.errors) {
                cfg_free(c);
                return -EINVAL;
        }
        *ret_cfg = c;
        return 0;
nomem:
        cfg_free(c);
        return -ENOMEM;
}

static size_t cfg_index(const struct cfg *c, const char *key)
{
        size_t i;
        if (find_def(c->defs, key, &i))
                return i;
        if (find_def(c->defs2, key, &i))
                return c->n1 + i;
        fprintf(stderr, "cfg: BUG: no definition for key '%s'\n", key);
        abort();
}

const char *cfg_str(const struct cfg *c, const char *key)
{
        return c->values[cfg_index(c, key)];
}

int64_t cfg_int(const struct cfg *c, const char *key)
{
        int64_t x = 0;
        (void)parse_long(c->values[cfg_index(c, key)], &x);
        return x;
}

bool cfg_bool(const struct cfg *c, const char *key)
{
        return strcasecmp(c->values[cfg_index(c, key)], "true") == 0;
}

const struct props *cfg_props(const struct cfg *c)
{
        return c->props;
}

void cfg_free(struct cfg *c)
{
        if (!c)
                return;
        if (c->values)
                for (size_t i = 0; i < c->n1 + c->n2; i++)
                        free(c->values[i]);
        free(c->values);
        free(c);
}
