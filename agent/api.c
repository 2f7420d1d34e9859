/* SPDX-License-Identifier: Apache-2.0 */
/*
 * api: see api.h.
 *
 * Shapes follow Kafka Connect's REST API (ConnectorInfo, ConnectorStateInfo,
 * TaskInfo, ConnectorOffsets, ErrorMessage): what `curl :8083/connectors/x/status`
 * returns there, it returns here, so scripts and dashboards written for Connect
 * work. A ringtail task is Connect's task 0 of its connector. Extensions are extra
 * keys a Connect client ignores: "warnings" in a task's status (a Kafka outage, a
 * failing checkpoint) while something needs an operator's eye.
 *
 * Connectors are the ones on the command line: the requests that would create,
 * change, pause or delete one answer 501 for now, with Connect's error shape.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "agent/api.h"
#include "agent/kfk.h"
#include "agent/rest.h"
#include "agent/task.h"
#include "config/props.h"
#include "offsets/off.h"

#define CT_JSON    "application/json"
#define CT_METRICS "text/plain; version=0.0.4; charset=utf-8"

/* ---- responses ---- */

static void reply_json(struct rest_request *req, int status, json_t *body)
{
        req->status = status;
        req->content_type = CT_JSON;
        req->resp = body ? json_dumps(body, JSON_COMPACT) : NULL;
        json_decref(body);
        if (!req->resp) {
                req->status = 500;
                req->resp = strdup("{\"error_code\":500,\"message\":\"out of memory\"}");
        }
}

static void reply_error(struct rest_request *req, int status, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

static void reply_error(struct rest_request *req, int status, const char *fmt, ...)
{
        char msg[512];
        va_list ap;
        va_start(ap, fmt);
        (void)vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        /* It may quote a path: bytes JSON strings cannot hold as they are become '?'
         * (a message is for people; jansson refuses invalid UTF-8). */
        for (unsigned char *c = (unsigned char *)msg; *c; c++)
                if (*c < 0x20 || *c >= 0x7f)
                        *c = '?';
        reply_json(req, status, json_pack("{s:i,s:s}", "error_code", status, "message", msg));
}

/* ---- pieces ---- */

static const char *state_name(enum task_state s)
{
        switch (s) {
        case TASK_RUNNING:
                return "RUNNING";
        case TASK_FAILED:
                return "FAILED";
        case TASK_STOPPING:
                return "STOPPED";
        }
        return "UNASSIGNED";
}

static void iso8601(uint64_t ms, char *buf, size_t len)
{
        time_t s = (time_t)(ms / 1000);
        struct tm tm;
        gmtime_r(&s, &tm);
        size_t n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
        snprintf(buf + n, len - n, ".%03uZ", (unsigned)(ms % 1000));
}

static json_t *config_json(const struct api_connector *c)
{
        json_t *o = json_object();
        for (size_t i = 0; o && i < props_count(c->props); i++) {
                const struct props_entry *e = props_at(c->props, i);
                (void)json_object_set_new(o, e->key, json_string(e->value));
        }
        return o;
}

static json_t *warnings_json(const struct api_worker *w, const struct task_status *s)
{
        json_t *a = json_array();
        char when[40], msg[1024];
        if (s->kafka_error) {
                iso8601(s->kafka_error_since, when, sizeof(when));
                snprintf(msg, sizeof(msg),
                         "Kafka: %s (since %s, nothing acknowledged since; records wait%s)",
                         s->kafka_error, when,
                         s->reading_paused ? ", reading is paused: buffer.memory is full"
                                           : ", reading pauses when buffer.memory is full");
                (void)json_array_append_new(a, json_string(msg));
        } else if (s->reading_paused) {
                (void)json_array_append_new(
                        a, json_string("reading is paused: buffer.memory is full of records "
                                       "Kafka has not acknowledged yet, or of the read "
                                       "buffers they keep"));
        }
        if (w->checkpoint_err) {
                iso8601(w->checkpoint_err_since, when, sizeof(when));
                snprintf(msg, sizeof(msg),
                         "checkpoint: cannot write '%s': %s (since %s; the offsets on disk "
                         "are not advancing, a restart would send lines again)",
                         off_store_path(w->store), strerror(-w->checkpoint_err), when);
                (void)json_array_append_new(a, json_string(msg));
        }
        return a;
}

static json_t *task_status_json(const struct api_worker *w, const struct api_connector *c)
{
        struct task_status s;
        task_get_status(c->task, &s);
        json_t *o = json_pack("{s:i,s:s,s:s}", "id", 0, "state", state_name(s.state), "worker_id",
                              w->worker_id);
        if (!o)
                return NULL;
        if (s.failure)
                (void)json_object_set_new(o, "trace", json_string(s.failure));
        json_t *warn = warnings_json(w, &s);
        if (warn && json_array_size(warn))
                (void)json_object_set_new(o, "warnings", warn);
        else
                json_decref(warn);
        return o;
}

static json_t *status_json(const struct api_worker *w, const struct api_connector *c)
{
        return json_pack("{s:s,s:{s:s,s:s},s:[o],s:s}", "name", c->name, "connector", "state",
                         "RUNNING", "worker_id", w->worker_id, "tasks", task_status_json(w, c),
                         "type", "source");
}

static json_t *info_json(const struct api_connector *c)
{
        return json_pack("{s:s,s:o,s:[{s:s,s:i}],s:s}", "name", c->name, "config", config_json(c),
                         "tasks", "connector", c->name, "task", 0, "type", "source");
}

static json_t *offsets_json(const struct api_worker *w, const struct api_connector *c)
{
        json_t *a = json_array();
        for (size_t i = 0; a && i < off_count(w->store); i++) {
                const char *source;
                struct off_rec rec;
                if (off_at(w->store, i, &source, &rec) < 0 || strcmp(source, c->name) != 0)
                        continue;
                (void)json_array_append_new(
                        a, json_pack("{s:{s:s,s:I,s:I},s:{s:I}}", "partition", "path", rec.path,
                                     "dev", (json_int_t)rec.dev, "ino", (json_int_t)rec.ino,
                                     "offset", "offset", (json_int_t)rec.offset));
        }
        return json_pack("{s:o}", "offsets", a);
}

/* ---- /metrics (Prometheus text format 0.0.4) ---- */

struct buf {
        char *p;
        size_t len, cap;
        bool oom;
};

static void bprintf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void bprintf(struct buf *b, const char *fmt, ...)
{
        if (b->oom)
                return;
        for (;;) {
                va_list ap;
                va_start(ap, fmt);
                int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
                va_end(ap);
                if (n < 0) {
                        b->oom = true;
                        return;
                }
                if ((size_t)n < b->cap - b->len) {
                        b->len += (size_t)n;
                        return;
                }
                size_t cap = (b->cap ? b->cap * 2 : 8192) + (size_t)n;
                char *np = realloc(b->p, cap);
                if (!np) {
                        b->oom = true;
                        return;
                }
                b->p = np;
                b->cap = cap;
        }
}

/* A label value: backslash, double quote and line feed escaped. */
static void label(char *out, size_t len, const char *v)
{
        size_t o = 0;
        for (; *v && o + 3 < len; v++) {
                if (*v == '\\' || *v == '"') {
                        out[o++] = '\\';
                        out[o++] = *v;
                } else if (*v == '\n') {
                        out[o++] = '\\';
                        out[o++] = 'n';
                } else {
                        out[o++] = *v;
                }
        }
        out[o] = '\0';
}

enum mtype { COUNTER, GAUGE };

/* One metric family with one value per connector. */
struct family {
        const char *name, *help;
        enum mtype type;
        const char *extra; /* extra label, "name=\"value\"" or NULL */
        uint64_t (*get)(const struct task_status *s);
};

#define GETTER(field)                                                                              \
        static uint64_t get_##field(const struct task_status *s)                                   \
        {                                                                                          \
                return s->field;                                                                   \
        }
GETTER(lines_sent)
GETTER(lines_acked)
GETTER(bytes_sent)
GETTER(records_in_flight)
GETTER(read_buffer_bytes)
GETTER(read_buffer_limit)
GETTER(split)
GETTER(truncated)
GETTER(skipped)
GETTER(empty_skipped)
GETTER(files_opened)
GETTER(files_rotated)
GETTER(files_truncated)
GETTER(copies_found)
GETTER(files_finished)
GETTER(files_tracked)
GETTER(files_open)
GETTER(transactions_committed)
GETTER(transactions_aborted)
GETTER(producer_rebuilds)
GETTER(records_resent)

static uint64_t get_paused(const struct task_status *s)
{
        return s->reading_paused;
}

static uint64_t get_kafka_error(const struct task_status *s)
{
        return s->kafka_error != NULL;
}

static uint64_t get_failed(const struct task_status *s)
{
        return s->state == TASK_FAILED;
}

static const struct family families[] = {
        {"ringtail_records_sent_total", "Records handed to the producer.", COUNTER, NULL,
         get_lines_sent},
        {"ringtail_records_acked_total", "Records Kafka acknowledged.", COUNTER, NULL,
         get_lines_acked},
        {"ringtail_record_bytes_sent_total", "Value bytes of the records handed to the producer.",
         COUNTER, NULL, get_bytes_sent},
        {"ringtail_records_in_flight", "Records handed to the producer and not yet reported.",
         GAUGE, NULL, get_records_in_flight},
        {"ringtail_read_buffer_bytes",
         "Read buffers kept alive by records in flight (lines are sent without a copy).", GAUGE,
         NULL, get_read_buffer_bytes},
        {"ringtail_read_buffer_limit_bytes",
         "ringtail_read_buffer_bytes at which reading waits for acknowledgements.", GAUGE, NULL,
         get_read_buffer_limit},
        {"ringtail_long_lines_total", "Lines longer than max.line.bytes, by long.line.policy.",
         COUNTER, "action=\"split\"", get_split},
        {"ringtail_long_lines_total", NULL, COUNTER, "action=\"truncate\"", get_truncated},
        {"ringtail_long_lines_total", NULL, COUNTER, "action=\"skip\"", get_skipped},
        {"ringtail_empty_lines_skipped_total", "Empty lines dropped (empty.lines=skip).", COUNTER,
         NULL, get_empty_skipped},
        {"ringtail_files_opened_total", "Files opened for reading.", COUNTER, NULL,
         get_files_opened},
        {"ringtail_files_rotated_total", "Files renamed away (rotated) while followed.", COUNTER,
         NULL, get_files_rotated},
        {"ringtail_files_truncated_total",
         "Files read from 0 again: truncated, rewritten, or a saved offset not trusted.", COUNTER,
         NULL, get_files_truncated},
        {"ringtail_file_copies_found_total", "copytruncate copies recognised by their fingerprint.",
         COUNTER, NULL, get_copies_found},
        {"ringtail_files_finished_total", "Rotated or deleted files read to their end.", COUNTER,
         NULL, get_files_finished},
        {"ringtail_files_tracked", "Files followed now.", GAUGE, NULL, get_files_tracked},
        {"ringtail_files_open", "File descriptors held now (max.open.files).", GAUGE, NULL,
         get_files_open},
        {"ringtail_reading_paused", "1 while reading waits for room in buffer.memory.", GAUGE, NULL,
         get_paused},
        {"ringtail_kafka_error",
         "1 while Kafka reports a connection problem and has acknowledged nothing since.", GAUGE,
         NULL, get_kafka_error},
        {"ringtail_task_failed", "1 once the task has failed (see the status endpoint).", GAUGE,
         NULL, get_failed},
        {"ringtail_transactions_committed_total", "Exactly-once: transactions committed.", COUNTER,
         NULL, get_transactions_committed},
        {"ringtail_transactions_aborted_total", "Exactly-once: transactions aborted.", COUNTER,
         NULL, get_transactions_aborted},
        {"ringtail_producer_rebuilds_total",
         "New producers made after a fatal producer error (at-least-once).", COUNTER, NULL,
         get_producer_rebuilds},
        {"ringtail_records_resent_total",
         "Records the failed producers had not delivered, taken over by the new ones.", COUNTER,
         NULL, get_records_resent},
};

static void metrics(const struct api_worker *w, struct rest_request *req)
{
        struct buf b = {0};
        struct task_status *st = calloc((size_t)w->n_conns + 1, sizeof(*st));
        if (!st) {
                reply_error(req, 500, "out of memory");
                return;
        }
        for (int i = 0; i < w->n_conns; i++)
                task_get_status(w->conns[i].task, &st[i]);

        char v[64], lib[64];
        label(v, sizeof(v), RINGTAIL_VERSION);
        label(lib, sizeof(lib), kfk_version());
        bprintf(&b,
                "# HELP ringtail_info ringtail's version.\n# TYPE ringtail_info gauge\n"
                "ringtail_info{version=\"%s\",librdkafka=\"%s\"} 1\n",
                v, lib);
        for (size_t f = 0; f < sizeof(families) / sizeof(families[0]); f++) {
                const struct family *fam = &families[f];
                if (fam->help)
                        bprintf(&b, "# HELP %s %s\n# TYPE %s %s\n", fam->name, fam->help, fam->name,
                                fam->type == COUNTER ? "counter" : "gauge");
                for (int i = 0; i < w->n_conns; i++) {
                        char name[600];
                        label(name, sizeof(name), w->conns[i].name);
                        bprintf(&b, "%s{connector=\"%s\"%s%s} %" PRIu64 "\n", fam->name, name,
                                fam->extra ? "," : "", fam->extra ? fam->extra : "",
                                fam->get(&st[i]));
                }
        }
        bprintf(&b,
                "# HELP ringtail_checkpoint_writes_total Checkpoint flushes that succeeded.\n"
                "# TYPE ringtail_checkpoint_writes_total counter\n"
                "ringtail_checkpoint_writes_total %" PRIu64 "\n"
                "# HELP ringtail_checkpoint_failures_total Checkpoint flushes that failed.\n"
                "# TYPE ringtail_checkpoint_failures_total counter\n"
                "ringtail_checkpoint_failures_total %" PRIu64 "\n"
                "# HELP ringtail_checkpoint_error 1 while the last checkpoint flush failed.\n"
                "# TYPE ringtail_checkpoint_error gauge\n"
                "ringtail_checkpoint_error %d\n"
                "# HELP ringtail_checkpoint_last_success_timestamp_seconds When the checkpoint "
                "was last flushed (0: not yet).\n"
                "# TYPE ringtail_checkpoint_last_success_timestamp_seconds gauge\n"
                "ringtail_checkpoint_last_success_timestamp_seconds %" PRIu64 ".%03u\n",
                w->checkpoint_writes, w->checkpoint_failures, w->checkpoint_err != 0,
                w->checkpoint_ok_at / 1000, (unsigned)(w->checkpoint_ok_at % 1000));
        free(st);
        if (b.oom) {
                free(b.p);
                reply_error(req, 500, "out of memory");
                return;
        }
        req->status = 200;
        req->content_type = CT_METRICS;
        req->resp = b.p;
}

/* ---- routing ---- */

static bool has_word(const char *list, const char *word)
{
        size_t n = strlen(word);
        for (const char *p = list; (p = strstr(p, word)); p += n)
                if ((p == list || p[-1] == ',') && (p[n] == ',' || p[n] == '\0'))
                        return true;
        return false;
}

static void connectors(const struct api_worker *w, struct rest_request *req)
{
        bool st = has_word(req->expand, "status"), info = has_word(req->expand, "info");
        if (!st && !info) {
                json_t *a = json_array();
                for (int i = 0; a && i < w->n_conns; i++)
                        (void)json_array_append_new(a, json_string(w->conns[i].name));
                reply_json(req, 200, a);
                return;
        }
        json_t *o = json_object();
        for (int i = 0; o && i < w->n_conns; i++) {
                json_t *e = json_object();
                if (info)
                        (void)json_object_set_new(e, "info", info_json(&w->conns[i]));
                if (st)
                        (void)json_object_set_new(e, "status", status_json(w, &w->conns[i]));
                (void)json_object_set_new(o, w->conns[i].name, e);
        }
        reply_json(req, 200, o);
}

static void plugins(struct rest_request *req)
{
        reply_json(req, 200,
                   json_pack("[{s:s,s:s,s:s},{s:s,s:s,s:s}]", "class",
                             "org.apache.kafka.connect.file.FileStreamSourceConnector", "type",
                             "source", "version", RINGTAIL_VERSION, "class", "TailSource", "type",
                             "source", "version", RINGTAIL_VERSION));
}

static const struct api_connector *find(const struct api_worker *w, const char *name, size_t len)
{
        for (int i = 0; i < w->n_conns; i++)
                if (strlen(w->conns[i].name) == len && memcmp(w->conns[i].name, name, len) == 0)
                        return &w->conns[i];
        return NULL;
}

static void not_supported(struct rest_request *req)
{
        reply_error(req, 501,
                    "%s %s is not supported by ringtail standalone yet: its connectors are the "
                    "files on its command line (edit them and restart)",
                    req->method, req->path);
}

/* /connectors/{name}[/rest]: rest is "" or starts with '/'. */
static void connector(const struct api_worker *w, struct rest_request *req, const char *name,
                      size_t nlen, const char *rest)
{
        bool get = strcmp(req->method, "GET") == 0;
        const struct api_connector *c = find(w, name, nlen);
        if (!c) {
                if (!get && strcmp(req->method, "PUT") == 0 && strcmp(rest, "/config") == 0) {
                        not_supported(req);
                        return;
                }
                reply_error(req, 404, "Connector %.*s not found", (int)nlen, name);
                return;
        }
        if (strcmp(rest, "") == 0 || strcmp(rest, "/") == 0) {
                if (get)
                        reply_json(req, 200, info_json(c));
                else
                        not_supported(req); /* DELETE */
        } else if (strcmp(rest, "/config") == 0) {
                if (get)
                        reply_json(req, 200, config_json(c));
                else
                        not_supported(req);
        } else if (strcmp(rest, "/status") == 0 && get) {
                reply_json(req, 200, status_json(w, c));
        } else if (strcmp(rest, "/tasks") == 0 && get) {
                reply_json(req, 200,
                           json_pack("[{s:{s:s,s:i},s:o}]", "id", "connector", c->name, "task", 0,
                                     "config", config_json(c)));
        } else if (strncmp(rest, "/tasks/", 7) == 0) {
                const char *id = rest + 7;
                const char *slash = strchr(id, '/');
                size_t idlen = slash ? (size_t)(slash - id) : strlen(id);
                const char *sub = slash ? slash : "";
                if (!(idlen == 1 && id[0] == '0')) {
                        reply_error(req, 404, "Task %.*s-%.*s not found", (int)nlen, name,
                                    (int)idlen, id);
                } else if (strcmp(sub, "/status") == 0 && get) {
                        reply_json(req, 200, task_status_json(w, c));
                } else if (strcmp(sub, "/restart") == 0 && !get) {
                        not_supported(req);
                } else {
                        reply_error(req, 404, "HTTP 404 Not Found");
                }
        } else if (strcmp(rest, "/topics") == 0 && get) {
                json_t *o = json_object();
                (void)json_object_set_new(o, c->name, json_pack("{s:[s]}", "topics", c->topic));
                reply_json(req, 200, o);
        } else if (strcmp(rest, "/offsets") == 0) {
                if (get)
                        reply_json(req, 200, offsets_json(w, c));
                else
                        not_supported(req); /* PATCH/DELETE: `ringtail offsets` for now */
        } else if (!get && (strcmp(rest, "/restart") == 0 || strcmp(rest, "/pause") == 0 ||
                            strcmp(rest, "/resume") == 0 || strcmp(rest, "/stop") == 0 ||
                            strcmp(rest, "/topics/reset") == 0)) {
                not_supported(req);
        } else {
                reply_error(req, get ? 404 : 405,
                            get ? "HTTP 404 Not Found" : "HTTP 405 Method Not Allowed");
        }
}

void api_handle(const struct api_worker *w, struct rest_request *req)
{
        const char *p = req->path;
        bool get = strcmp(req->method, "GET") == 0;

        if (strcmp(p, "/") == 0 && get) {
                reply_json(req, 200,
                           json_pack("{s:s,s:s,s:n}", "version", RINGTAIL_VERSION, "commit",
                                     "unknown", "kafka_cluster_id"));
        } else if (strcmp(p, "/health") == 0 && get) {
                reply_json(req, 200,
                           json_pack("{s:s,s:s}", "status", "healthy", "message",
                                     "Worker has completed startup and is ready to handle "
                                     "requests."));
        } else if (strcmp(p, "/metrics") == 0 && get) {
                metrics(w, req);
        } else if (strcmp(p, "/connectors") == 0 || strcmp(p, "/connectors/") == 0) {
                if (get)
                        connectors(w, req);
                else
                        not_supported(req); /* POST: create */
        } else if (strncmp(p, "/connectors/", 12) == 0) {
                const char *name = p + 12;
                const char *slash = strchr(name, '/');
                size_t nlen = slash ? (size_t)(slash - name) : strlen(name);
                connector(w, req, name, nlen, slash ? slash : "");
        } else if (strcmp(p, "/connector-plugins") == 0 && get) {
                plugins(req);
        } else if (strncmp(p, "/connector-plugins/", 19) == 0 && !get) {
                not_supported(req); /* PUT .../config/validate */
        } else {
                reply_error(req, 404, "HTTP 404 Not Found");
        }
}
