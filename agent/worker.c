/* SPDX-License-Identifier: Apache-2.0 */
/*
 * worker: see worker.h.
 *
 * One thread runs the loop: io_run() waits for file reads, inotify, signals and
 * Kafka's delivery-report eventfds, up to the nearest deadline (checkpoint flush,
 * path rescan). Shutdown order matters:
 *   1. tasks stop reading;
 *   2. tasks drain: Kafka gets task.shutdown.graceful.timeout.ms to acknowledge
 *      what is in flight; the rest is given up and not checkpointed;
 *   3. the final checkpoint is written (its failure is exit status 1);
 *   4. tasks close their files and cancel their waits, the loop runs until nothing
 *      is in flight (the kernel may still be writing into read buffers), then
 *      everything is freed.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "agent/api.h"
#include "agent/clock.h"
#include "agent/kfk.h"
#include "agent/log.h"
#include "agent/rest.h"
#include "agent/task.h"
#include "agent/worker.h"
#include "config/cfg.h"
#include "config/props.h"
#include "io/io.h"
#include "io/rbuf.h"
#include "io/watch.h"
#include "offsets/off.h"

#define CLOSE_WAIT_MS 5000

struct conn {
        char *path;
        struct props *props;
        struct cfg *cfg;
};

struct worker {
        struct props *wprops;
        struct cfg *wcfg;
        struct conn *conns;
        int n_conns;

        struct io_loop *loop;
        struct watch *watch;
        struct io_op watch_op;
        int sigfd;
        struct io_op sig_op;
        struct off_store *store;
        struct kfk_mock *mock;
        char *bootstrap;
        struct task_env env;
        struct task **tasks;
        int n_tasks;
        struct rest *rest;
        struct api_connector *api_conns;
        struct api_worker api;
        char worker_id[300];

        bool stop;
        bool closing;
        int checkpoint_err; /* last checkpoint error, to log changes only */
};

/* ---- configuration ---- */

struct report_ctx {
        bool to_stdout;
        int errors;
};

static void report_cb(void *userdata, enum cfg_severity sev, const char *msg)
{
        struct report_ctx *rc = userdata;
        static const char *const names[] = {
                [CFG_ERROR] = "error", [CFG_WARNING] = "warning", [CFG_NOTICE] = "notice"};
        if (sev == CFG_ERROR)
                rc->errors++;
        if (rc->to_stdout) {
                printf("%s: %s\n", names[sev], msg);
                return;
        }
        switch (sev) {
        case CFG_ERROR:
                log_error("config: %s", msg);
                break;
        case CFG_WARNING:
                log_warn("config: %s", msg);
                break;
        case CFG_NOTICE:
                log_notice("config: %s", msg);
                break;
        }
}

static int load(const char *path, enum cfg_kind kind, struct report_ctx *rc,
                struct props **ret_props, struct cfg **ret_cfg)
{
        struct props_error pe = {0};
        struct props *p;
        int r = props_load_file(path, &p, &pe);
        if (r < 0) {
                char msg[512];
                if (pe.line)
                        snprintf(msg, sizeof(msg), "%s:%u:%u: %s", path, pe.line, pe.column,
                                 pe.msg);
                else
                        snprintf(msg, sizeof(msg), "%s: %s", path,
                                 pe.msg[0] ? pe.msg : strerror(-r));
                report_cb(rc, CFG_ERROR, msg);
                return r;
        }
        struct cfg *c;
        r = cfg_new(kind, p, path, report_cb, rc, &c);
        if (r < 0) {
                props_free(p);
                return r;
        }
        *ret_props = p;
        *ret_cfg = c;
        return 0;
}

static int worker_load(struct worker *w, const char *worker_path, char *const *paths, int n,
                       struct report_ctx *rc)
{
        int bad = 0;
        if (load(worker_path, CFG_WORKER_STANDALONE, rc, &w->wprops, &w->wcfg) < 0)
                bad++;
        w->conns = calloc((size_t)n, sizeof(*w->conns));
        if (!w->conns)
                return -ENOMEM;
        w->n_conns = n;
        for (int i = 0; i < n; i++) {
                w->conns[i].path = paths[i];
                if (load(paths[i], CFG_CONNECTOR, rc, &w->conns[i].props, &w->conns[i].cfg) < 0) {
                        bad++;
                        continue;
                }
                for (int j = 0; j < i; j++) {
                        if (w->conns[j].cfg && strcmp(cfg_str(w->conns[j].cfg, "name"),
                                                      cfg_str(w->conns[i].cfg, "name")) == 0) {
                                char msg[1024];
                                snprintf(msg, sizeof(msg),
                                         "%s: name='%s' is not valid: '%s' already uses it "
                                         "(connector names must be unique)",
                                         paths[i], cfg_str(w->conns[i].cfg, "name"), paths[j]);
                                report_cb(rc, CFG_ERROR, msg);
                                bad++;
                        }
                }
        }
        return bad ? -EINVAL : 0;
}

/* ---- loop callbacks ---- */

static void worker_on_signal(struct io_op *op, int res)
{
        struct worker *w = (struct worker *)((char *)op - offsetof(struct worker, sig_op));
        if (w->closing || res < 0)
                return;
        struct signalfd_siginfo si;
        while (read(w->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
                if (si.ssi_signo == SIGHUP) {
                        log_notice("worker: SIGHUP ignored (configuration reload is not "
                                   "supported; restart to apply changes)");
                        continue;
                }
                if (!w->stop)
                        log_info("worker: %s received: stopping", strsignal((int)si.ssi_signo));
                w->stop = true;
        }
        op->cb = worker_on_signal;
        (void)io_poll(w->loop, op, w->sigfd, POLLIN);
}

static void worker_on_inotify(struct io_op *op, int res)
{
        struct worker *w = (struct worker *)((char *)op - offsetof(struct worker, watch_op));
        if (w->closing || res < 0)
                return;
        int r = watch_dispatch(w->watch);
        if (r < 0)
                log_warn("worker: reading inotify events: %s (the periodic scan goes on)",
                         strerror(-r));
        op->cb = worker_on_inotify;
        (void)io_poll(w->loop, op, watch_fd(w->watch), POLLIN);
}

/* ---- checkpoints ---- */

static uint64_t wall_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int worker_checkpoint(struct worker *w)
{
        for (int i = 0; i < w->n_tasks; i++) {
                int r = task_checkpoint(w->tasks[i]);
                if (r < 0) {
                        log_error("checkpoint: cannot record offsets of '%s': %s",
                                  task_name(w->tasks[i]), strerror(-r));
                        return r;
                }
        }
        int r = off_commit(w->store);
        if (r < 0) {
                w->api.checkpoint_failures++;
                if (!w->api.checkpoint_err)
                        w->api.checkpoint_err_since = wall_ms();
        } else {
                w->api.checkpoint_writes++;
                w->api.checkpoint_ok_at = wall_ms();
        }
        w->api.checkpoint_err = r;
        if (r < 0) {
                if (r != w->checkpoint_err)
                        log_error("checkpoint: cannot write '%s': %s; offsets on disk are not "
                                  "advancing (a restart would send lines again); retrying",
                                  off_store_path(w->store), strerror(-r));
        } else if (w->checkpoint_err) {
                log_notice("checkpoint: '%s' written again", off_store_path(w->store));
        }
        w->checkpoint_err = r;
        return r;
}

/* ---- REST API ---- */

static void worker_on_request(void *userdata, struct rest_request *req)
{
        struct worker *w = userdata;
        api_handle(&w->api, req);
}

/* Starts the REST API on `listeners`, unless it is empty. */
static int worker_rest(struct worker *w)
{
        char host[256], why[256], errbuf[512];
        unsigned port;
        const char *listeners = cfg_str(w->wcfg, "listeners");
        int r = cfg_parse_listener(listeners, host, sizeof(host), &port, why, sizeof(why));
        if (r <= 0) {
                if (r == 0)
                        log_info("worker: REST API off (listeners is empty)");
                return r;
        }
        w->api_conns = calloc((size_t)w->n_tasks, sizeof(*w->api_conns));
        if (!w->api_conns)
                return -ENOMEM;
        for (int i = 0; i < w->n_tasks; i++)
                w->api_conns[i] = (struct api_connector){
                        .name = cfg_str(w->conns[i].cfg, "name"),
                        .class_name = cfg_str(w->conns[i].cfg, "connector.class"),
                        .topic = cfg_str(w->conns[i].cfg, "topic"),
                        .props = w->conns[i].props,
                        .task = w->tasks[i],
                };
        r = rest_new(w->loop, host, port, worker_on_request, w, errbuf, sizeof(errbuf), &w->rest);
        if (r < 0) {
                log_error("worker: REST API: %s (listeners=%s; choose another port, or an empty "
                          "value to run without the API)",
                          errbuf, listeners);
                return r == -EINVAL ? -EIO : r;
        }
        snprintf(w->worker_id, sizeof(w->worker_id), "%s", rest_address(w->rest));
        w->api.worker_id = w->worker_id;
        w->api.conns = w->api_conns;
        w->api.n_conns = w->n_tasks;
        w->api.store = w->store;
        log_info("worker: REST API on http://%s", w->worker_id);
        return 0;
}

/* ---- run ---- */

static int worker_setup(struct worker *w)
{
        char errbuf[1024];
        int r;

        sigset_t mask;
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGHUP);
        if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
                return -errno;
        (void)signal(SIGPIPE, SIG_IGN);
        w->sigfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
        if (w->sigfd < 0) {
                r = -errno;
                log_error("worker: signalfd: %s", strerror(-r));
                return r;
        }

        const char *backend = cfg_str(w->wcfg, "io.backend");
        enum io_backend b = strcmp(backend, "io_uring") == 0 ? IO_BACKEND_URING
                            : strcmp(backend, "poll") == 0   ? IO_BACKEND_POLL
                                                             : IO_BACKEND_AUTO;
        r = io_loop_new(b, &w->loop);
        if (r < 0) {
                log_error("worker: io.backend=%s: io_uring is not available here: %s", backend,
                          strerror(-r));
                return r;
        }
        log_info("worker: file reads through %s", io_loop_backend(w->loop));

        r = watch_new(&w->watch);
        if (r < 0) {
                log_error("worker: inotify: %s", strerror(-r));
                return r;
        }

        const char *path = cfg_str(w->wcfg, "offset.storage.file.filename");
        struct off_error oe = {0};
        r = off_store_open(path, &w->store, &oe);
        if (r < 0) {
                if (r == -EBADMSG || r == -ENOTSUP)
                        log_error("checkpoint: '%s' is damaged or unreadable (%s, at byte %" PRIu64
                                  "); ringtail does not start over silently. Inspect it with "
                                  "'ringtail offsets show %s'; to read every file again from "
                                  "its start, move it away",
                                  path, oe.msg, oe.pos, path);
                else
                        log_error("checkpoint: cannot open '%s': %s", path, strerror(-r));
                return r;
        }

        const char *bootstrap = cfg_str(w->wcfg, "bootstrap.servers");
        if (strcmp(bootstrap, "embedded") == 0) {
                r = kfk_mock_new(1, &w->mock);
                if (r < 0) {
                        log_error("worker: cannot start the embedded Kafka cluster");
                        return r;
                }
                bootstrap = kfk_mock_bootstraps(w->mock);
                /* A fixed format on its own line, for scripts and other clients. */
                dprintf(STDERR_FILENO, "embedded bootstrap.servers=%s\n", bootstrap);
        }
        w->bootstrap = strdup(bootstrap);
        if (!w->bootstrap)
                return -ENOMEM;

        w->env = (struct task_env){
                .loop = w->loop,
                .watch = w->watch,
                .store = w->store,
                .worker = w->wcfg,
                .bootstrap = w->bootstrap,
        };
        w->tasks = calloc((size_t)w->n_conns, sizeof(*w->tasks));
        if (!w->tasks)
                return -ENOMEM;
        for (int i = 0; i < w->n_conns; i++) {
                r = task_new(&w->env, w->conns[i].cfg, errbuf, sizeof(errbuf), &w->tasks[i]);
                if (r < 0) {
                        log_error("config: %s: %s", w->conns[i].path, errbuf);
                        return r;
                }
                w->n_tasks++;
        }

        w->sig_op.cb = worker_on_signal;
        w->watch_op.cb = worker_on_inotify;
        r = io_poll(w->loop, &w->sig_op, w->sigfd, POLLIN);
        if (r == 0)
                r = io_poll(w->loop, &w->watch_op, watch_fd(w->watch), POLLIN);
        if (r == 0)
                r = worker_rest(w);
        return r;
}

/* How often spare read buffers are handed back once reading has paused (see
 * rbuf_trim_idle()): a burst's buffers are back within two of these. */
#define SPARES_TRIM_MS 5000

static int worker_loop(struct worker *w)
{
        const uint64_t flush_ms = (uint64_t)cfg_int(w->wcfg, "offset.flush.interval.ms");
        uint64_t now = clock_ms();
        uint64_t next_flush = now + flush_ms;
        uint64_t next_trim = now + SPARES_TRIM_MS;

        for (int i = 0; i < w->n_tasks; i++)
                task_start(w->tasks[i], now);

        while (!w->stop) {
                uint64_t next = next_flush;
                if (rbuf_spare_count() > RBUF_SPARES_IDLE && next_trim < next)
                        next = next_trim; /* an idle worker wakes for this only then */
                for (int i = 0; i < w->n_tasks; i++) {
                        uint64_t due = task_next_due(w->tasks[i]);
                        if (due < next)
                                next = due;
                }
                int timeout =
                        next > now ? (next - now > INT32_MAX ? INT32_MAX : (int)(next - now)) : 0;
                int r = io_run(w->loop, timeout);
                if (r < 0) {
                        log_error("worker: event loop: %s", strerror(-r));
                        return WORKER_EXIT_RUNTIME;
                }
                now = clock_ms();
                int failed = 0;
                for (int i = 0; i < w->n_tasks; i++) {
                        if (now >= task_next_due(w->tasks[i]))
                                (void)task_tick(w->tasks[i], now);
                        task_flush(w->tasks[i]);
                        failed += task_get_state(w->tasks[i]) == TASK_FAILED;
                }
                if (failed == w->n_tasks) {
                        log_error("worker: every task has failed: stopping");
                        w->stop = true;
                }
                if (now >= next_flush) {
                        (void)worker_checkpoint(w);
                        next_flush = now + flush_ms;
                }
                if (now >= next_trim) {
                        rbuf_trim_idle();
                        next_trim = now + SPARES_TRIM_MS;
                }
        }
        return WORKER_EXIT_OK;
}

static int worker_shutdown(struct worker *w, int status)
{
        int grace = (int)cfg_int(w->wcfg, "task.shutdown.graceful.timeout.ms");
        bool failed = false;

        /* The loop is about to block in drains: requests would time out. */
        rest_stop(w->rest);

        for (int i = 0; i < w->n_tasks; i++) {
                failed = failed || task_get_state(w->tasks[i]) == TASK_FAILED;
                task_stop(w->tasks[i]);
        }
        uint64_t deadline = clock_ms() + (uint64_t)grace;
        for (int i = 0; i < w->n_tasks; i++) {
                uint64_t now = clock_ms();
                (void)task_drain(w->tasks[i], now < deadline ? (int)(deadline - now) : 0);
        }
        int r = w->store ? worker_checkpoint(w) : 0;
        if (r < 0) {
                log_error("checkpoint: the final offsets could not be written to '%s' (%s); it "
                          "still holds the last offsets written, intact: lines acknowledged "
                          "since then are sent again after a restart",
                          off_store_path(w->store), strerror(-r));
                status = WORKER_EXIT_RUNTIME;
        } else if (w->store)
                log_info("checkpoint: final offsets written to '%s'", off_store_path(w->store));
        if (failed)
                status = WORKER_EXIT_RUNTIME;
        return status;
}

static void worker_free(struct worker *w)
{
        w->closing = true;
        for (int i = 0; i < w->n_tasks; i++)
                task_close(w->tasks[i]);
        rest_stop(w->rest);
        if (w->loop) {
                if (w->sigfd >= 0)
                        (void)io_cancel(w->loop, &w->sig_op);
                if (w->watch)
                        (void)io_cancel(w->loop, &w->watch_op);
                uint64_t deadline = clock_ms() + CLOSE_WAIT_MS;
                while (io_in_flight(w->loop) > 0 && clock_ms() < deadline)
                        (void)io_run(w->loop, 100);
        }
        for (int i = 0; i < w->n_tasks; i++)
                task_free(w->tasks[i]);
        free(w->tasks);
        if (!w->loop || io_in_flight(w->loop) == 0)
                rest_free(w->rest); /* else leaked: its wake-up is still the loop's */
        free(w->api_conns);
        kfk_mock_free(w->mock);
        free(w->bootstrap);
        off_store_free(w->store);
        watch_free(w->watch);
        if (w->loop && io_in_flight(w->loop) == 0)
                io_loop_free(w->loop);
        if (w->sigfd >= 0)
                close(w->sigfd);
        for (int i = 0; i < w->n_conns; i++) {
                cfg_free(w->conns[i].cfg);
                props_free(w->conns[i].props);
        }
        free(w->conns);
        cfg_free(w->wcfg);
        props_free(w->wprops);
}

int worker_standalone(const char *worker_path, char *const *connector_paths, int n_connectors)
{
        struct worker w = {.sigfd = -1};
        struct report_ctx rc = {0};
        int status;

        int r = worker_load(&w, worker_path, connector_paths, n_connectors, &rc);
        if (r < 0) {
                if (r == -ENOMEM)
                        log_error("worker: out of memory");
                else
                        log_error("config: %d error%s: nothing started", rc.errors,
                                  rc.errors == 1 ? "" : "s");
                worker_free(&w);
                return r == -ENOMEM ? WORKER_EXIT_RUNTIME : WORKER_EXIT_USAGE;
        }
        log_info("ringtail %s (librdkafka %s) standalone: %d connector%s", RINGTAIL_VERSION,
                 kfk_version(), n_connectors, n_connectors == 1 ? "" : "s");

        r = worker_setup(&w);
        if (r < 0) {
                status = r == -EINVAL ? WORKER_EXIT_USAGE : WORKER_EXIT_RUNTIME;
                worker_free(&w);
                return status;
        }
        status = worker_loop(&w);
        status = worker_shutdown(&w, status);
        worker_free(&w);
        log_info("worker: stopped");
        return status;
}

int worker_validate(char *const *paths, int n, bool worker_first)
{
        struct report_ctx rc = {.to_stdout = true};
        int bad = 0;
        for (int i = 0; i < n; i++) {
                struct props *p = NULL;
                struct cfg *c = NULL;
                enum cfg_kind kind = worker_first && i == 0 ? CFG_WORKER_STANDALONE : CFG_CONNECTOR;
                if (load(paths[i], kind, &rc, &p, &c) < 0)
                        bad++;
                else
                        printf("%s: ok (%s)\n", paths[i],
                               kind == CFG_WORKER_STANDALONE ? "worker" : "connector");
                cfg_free(c);
                props_free(p);
        }
        return bad ? WORKER_EXIT_USAGE : WORKER_EXIT_OK;
}

static void describe_table(const char *title, const struct cfg_def *defs)
{
        static const char *const types[] = {
                [CFG_STRING] = "string",     [CFG_INT] = "int",   [CFG_LONG] = "long",
                [CFG_BOOL] = "boolean",      [CFG_LIST] = "list", [CFG_CLASS] = "class",
                [CFG_PASSWORD] = "password",
        };
        printf("# %s\n", title);
        for (const struct cfg_def *d = defs; d->name; d++)
                printf("%-44s %-8s %-22s %s%s\n", d->name, types[d->type],
                       d->dflt ? (*d->dflt ? d->dflt : "\"\"") : "(required)",
                       d->flags & CFG_F_IGNORED ? "ignored: " : "", d->doc);
        printf("\n");
}

void worker_describe(void)
{
        describe_table("worker (standalone)", cfg_defs_worker());
        describe_table("connector (every class)", cfg_defs_connector_common());
        describe_table("connector: FileStreamSource", cfg_defs_connector(CFG_CONN_FILE_SOURCE));
        describe_table("connector: TailSource", cfg_defs_connector(CFG_CONN_TAIL_SOURCE));
}
