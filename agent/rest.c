/* SPDX-License-Identifier: Apache-2.0 */
/*
 * rest: see rest.h.
 *
 * A call is one request on its way to the loop: the connection's thread fills it,
 * queues it under the lock, writes the eventfd and waits on the condition variable
 * until the loop has answered (or REST_CALL_TIMEOUT_MS passed: it then answers 503
 * and leaves the call to the loop, which frees it after handling it).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "agent/log.h"
#include "agent/rest.h"
#include "io/io.h"

#define REST_MAX_CONNECTIONS 64
#define REST_IDLE_TIMEOUT_S  30

struct rest_call {
        struct rest_request req;
        char *body; /* owned; req.body points here or at "" */
        bool done;
        bool abandoned; /* the client's thread gave up waiting: the loop frees it */
        struct rest_call *next;
};

/* What the connection's thread gathers across libmicrohttpd's calls. */
struct rest_conn {
        char *body;
        size_t len, cap;
        bool too_large;
};

struct rest {
        struct io_loop *loop;
        struct io_op op;
        int efd;
        int listen_fd;
        struct MHD_Daemon *mhd;
        rest_handler_t handler;
        void *userdata;
        char address[300];

        pthread_mutex_t lock;
        pthread_cond_t cond; /* a call was answered */
        struct rest_call *head, **tail;
        bool stopping;
};

/* ---- listening ---- */

/* Binds the socket ourselves (libmicrohttpd only says "failed" when it cannot), so a
 * port in use is reported as such. */
static int rest_bind(const char *host, unsigned port, int *ret_fd, char *address, size_t addrlen,
                     char *errbuf, size_t errlen)
{
        struct addrinfo hints = {.ai_family = AF_UNSPEC,
                                 .ai_socktype = SOCK_STREAM,
                                 .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
        struct addrinfo *ai = NULL;
        char portstr[8];
        snprintf(portstr, sizeof(portstr), "%u", port);
        int r = getaddrinfo(*host ? host : NULL, portstr, &hints, &ai);
        if (r != 0) {
                snprintf(errbuf, errlen, "cannot resolve '%s': %s", host, gai_strerror(r));
                return -EINVAL;
        }
        int err = -EADDRNOTAVAIL;
        for (struct addrinfo *a = ai; a; a = a->ai_next) {
                int fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
                if (fd < 0) {
                        err = -errno;
                        continue;
                }
                int one = 1;
                (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
                if (bind(fd, a->ai_addr, a->ai_addrlen) < 0 || listen(fd, 64) < 0) {
                        err = -errno;
                        close(fd);
                        continue;
                }
                struct sockaddr_storage ss;
                socklen_t sl = sizeof(ss);
                char hbuf[256] = "?";
                unsigned bound = port;
                if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0) {
                        if (ss.ss_family == AF_INET6) {
                                struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
                                (void)inet_ntop(AF_INET6, &s6->sin6_addr, hbuf, sizeof(hbuf));
                                bound = ntohs(s6->sin6_port);
                        } else {
                                struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
                                (void)inet_ntop(AF_INET, &s4->sin_addr, hbuf, sizeof(hbuf));
                                bound = ntohs(s4->sin_port);
                        }
                }
                snprintf(address, addrlen, strchr(hbuf, ':') ? "[%s]:%u" : "%s:%u", hbuf, bound);
                freeaddrinfo(ai);
                *ret_fd = fd;
                return 0;
        }
        freeaddrinfo(ai);
        snprintf(errbuf, errlen, "cannot listen on %s%s%s:%u: %s", strchr(host, ':') ? "[" : "",
                 *host ? host : "*", strchr(host, ':') ? "]" : "", port, strerror(-err));
        return err;
}

/* ---- the connection threads ---- */

static enum MHD_Result rest_reply(struct MHD_Connection *c, int status, char *body,
                                  const char *ctype)
{
        struct MHD_Response *resp =
                MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE);
        if (!resp) {
                free(body);
                return MHD_NO;
        }
        (void)MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                                      ctype ? ctype : "application/json");
        enum MHD_Result ret = MHD_queue_response(c, (unsigned)status, resp);
        MHD_destroy_response(resp);
        return ret;
}

/* An error in Kafka Connect's shape. */
static enum MHD_Result rest_error(struct MHD_Connection *c, int status, const char *msg)
{
        char *body;
        /* msg is ours and holds no characters that need escaping. */
        if (asprintf(&body, "{\"error_code\":%d,\"message\":\"%s\"}", status, msg) < 0)
                return MHD_NO;
        return rest_reply(c, status, body, NULL);
}

struct expand_acc {
        char buf[256];
};

static enum MHD_Result rest_collect_expand(void *cls, enum MHD_ValueKind kind, const char *key,
                                           const char *value)
{
        struct expand_acc *e = cls;
        (void)kind;
        if (strcmp(key, "expand") == 0 && value) {
                size_t n = strlen(e->buf);
                snprintf(e->buf + n, sizeof(e->buf) - n, "%s%s", n ? "," : "", value);
        }
        return MHD_YES;
}

static int64_t mono_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Queues the call for the loop and waits for its answer. Returns false if the loop
 * did not answer in time or the server is stopping (the call is then the loop's to
 * free, or already freed). */
static bool rest_call_loop(struct rest *r, struct rest_call *call)
{
        pthread_mutex_lock(&r->lock);
        if (r->stopping) {
                pthread_mutex_unlock(&r->lock);
                return false;
        }
        *r->tail = call;
        r->tail = &call->next;
        uint64_t one = 1;
        ssize_t w = write(r->efd, &one, sizeof(one));
        (void)w; /* EAGAIN: the counter is already non-zero, the loop will look */

        int64_t deadline = mono_ms() + REST_CALL_TIMEOUT_MS;
        while (!call->done && !r->stopping) {
                int64_t left = deadline - mono_ms();
                if (left <= 0)
                        break;
                struct timespec ts;
                clock_gettime(CLOCK_MONOTONIC, &ts);
                ts.tv_sec += left / 1000;
                ts.tv_nsec += (left % 1000) * 1000000;
                if (ts.tv_nsec >= 1000000000) {
                        ts.tv_sec++;
                        ts.tv_nsec -= 1000000000;
                }
                (void)pthread_cond_timedwait(&r->cond, &r->lock, &ts);
        }
        bool done = call->done;
        if (!done)
                call->abandoned = true;
        pthread_mutex_unlock(&r->lock);
        return done;
}

static void rest_call_free(struct rest_call *call)
{
        free((char *)call->req.method);
        free((char *)call->req.path);
        free((char *)call->req.expand);
        free(call->body);
        free(call->req.resp);
        free(call);
}

static enum MHD_Result rest_access(void *cls, struct MHD_Connection *c, const char *url,
                                   const char *method, const char *version, const char *upload_data,
                                   size_t *upload_data_size, void **con_cls)
{
        struct rest *r = cls;
        struct rest_conn *rc = *con_cls;
        (void)version;

        if (!rc) {
                rc = calloc(1, sizeof(*rc));
                if (!rc)
                        return MHD_NO;
                *con_cls = rc;
                return MHD_YES;
        }
        if (*upload_data_size) {
                size_t n = *upload_data_size;
                *upload_data_size = 0;
                if (rc->too_large || rc->len + n > REST_BODY_MAX) {
                        rc->too_large = true;
                        return MHD_YES;
                }
                if (rc->len + n + 1 > rc->cap) {
                        size_t cap = rc->cap ? rc->cap : 4096;
                        while (cap < rc->len + n + 1)
                                cap *= 2;
                        char *nb = realloc(rc->body, cap);
                        if (!nb)
                                return MHD_NO;
                        rc->body = nb;
                        rc->cap = cap;
                }
                memcpy(rc->body + rc->len, upload_data, n);
                rc->len += n;
                rc->body[rc->len] = '\0';
                return MHD_YES;
        }
        if (rc->too_large)
                return rest_error(c, 413, "request body too large");

        struct expand_acc ex = {{0}};
        (void)MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, rest_collect_expand, &ex);
        struct rest_call *call = calloc(1, sizeof(*call));
        char *path = strdup(url);
        char *meth = strdup(method);
        char *expand = strdup(ex.buf);
        if (!call || !path || !meth || !expand) {
                free(call);
                free(path);
                free(meth);
                free(expand);
                return rest_error(c, 500, "out of memory");
        }
        call->req = (struct rest_request){
                .method = meth,
                .path = path,
                .expand = expand,
                .body = rc->body ? rc->body : "",
                .body_len = rc->len,
        };
        call->body = rc->body; /* the call owns it now */
        rc->body = NULL;
        if (!rest_call_loop(r, call))
                return rest_error(c, 503,
                                  "the worker did not answer in time (it may be "
                                  "stopping or busy); try again");
        /* Answered: the call is ours again. */
        char *resp = call->req.resp;
        int status = call->req.status ? call->req.status : 500;
        const char *ctype = call->req.content_type;
        call->req.resp = NULL; /* handed to libmicrohttpd below */
        rest_call_free(call);
        if (!resp)
                return rest_error(c, status, "no response");
        return rest_reply(c, status, resp, ctype);
}

static void rest_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                           enum MHD_RequestTerminationCode toe)
{
        (void)cls;
        (void)c;
        (void)toe;
        struct rest_conn *rc = *con_cls;
        if (rc) {
                free(rc->body);
                free(rc);
                *con_cls = NULL;
        }
}

static void rest_mhd_log(void *cls, const char *fmt, va_list ap)
        __attribute__((format(printf, 2, 0)));

static void rest_mhd_log(void *cls, const char *fmt, va_list ap)
{
        (void)cls;
        char msg[512];
        (void)vsnprintf(msg, sizeof(msg), fmt, ap);
        size_t n = strlen(msg);
        while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
                msg[--n] = '\0';
        log_notice("rest: %s", msg);
}

/* ---- the loop side ---- */

static void rest_on_wake(struct io_op *op, int res)
{
        struct rest *r = (struct rest *)((char *)op - offsetof(struct rest, op));
        if (res < 0)
                return; /* cancelled by rest_stop() */
        uint64_t n;
        ssize_t rd = read(r->efd, &n, sizeof(n));
        (void)rd;

        pthread_mutex_lock(&r->lock);
        struct rest_call *list = r->head;
        r->head = NULL;
        r->tail = &r->head;
        pthread_mutex_unlock(&r->lock);

        for (struct rest_call *call = list, *next; call; call = next) {
                next = call->next;
                r->handler(r->userdata, &call->req);
                pthread_mutex_lock(&r->lock);
                call->done = true;
                bool abandoned = call->abandoned;
                pthread_mutex_unlock(&r->lock);
                if (abandoned)
                        rest_call_free(call);
        }
        pthread_mutex_lock(&r->lock);
        pthread_cond_broadcast(&r->cond);
        pthread_mutex_unlock(&r->lock);

        op->cb = rest_on_wake;
        if (io_poll(r->loop, op, r->efd, POLLIN) < 0)
                log_error("rest: cannot wait for requests: the REST API stops answering");
}

int rest_new(struct io_loop *loop, const char *host, unsigned port, rest_handler_t handler,
             void *userdata, char *errbuf, size_t errlen, struct rest **ret_rest)
{
        struct rest *r = calloc(1, sizeof(*r));
        if (!r)
                return -ENOMEM;
        r->loop = loop;
        r->handler = handler;
        r->userdata = userdata;
        r->tail = &r->head;
        r->listen_fd = -1;
        pthread_mutex_init(&r->lock, NULL);
        pthread_condattr_t ca;
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&r->cond, &ca);
        pthread_condattr_destroy(&ca);

        r->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (r->efd < 0) {
                int e = -errno;
                snprintf(errbuf, errlen, "eventfd: %s", strerror(-e));
                rest_free(r);
                return e;
        }
        int e = rest_bind(host, port, &r->listen_fd, r->address, sizeof(r->address), errbuf,
                          errlen);
        if (e < 0) {
                rest_free(r);
                return e;
        }
        r->mhd = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
                                          MHD_USE_POLL | MHD_USE_ERROR_LOG,
                                  0, NULL, NULL, rest_access, r, MHD_OPTION_EXTERNAL_LOGGER,
                                  rest_mhd_log, r, MHD_OPTION_LISTEN_SOCKET, r->listen_fd,
                                  MHD_OPTION_CONNECTION_LIMIT, (unsigned)REST_MAX_CONNECTIONS,
                                  MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)REST_IDLE_TIMEOUT_S,
                                  MHD_OPTION_NOTIFY_COMPLETED, rest_completed, r, MHD_OPTION_END);
        if (!r->mhd) {
                snprintf(errbuf, errlen, "libmicrohttpd could not start on %s", r->address);
                rest_free(r);
                return -EIO;
        }
        r->op.cb = rest_on_wake;
        e = io_poll(loop, &r->op, r->efd, POLLIN);
        if (e < 0) {
                snprintf(errbuf, errlen, "cannot wait for requests: %s", strerror(-e));
                rest_free(r);
                return e;
        }
        *ret_rest = r;
        return 0;
}

const char *rest_address(const struct rest *r)
{
        return r->address;
}

void rest_stop(struct rest *r)
{
        if (!r || r->stopping)
                return;
        pthread_mutex_lock(&r->lock);
        r->stopping = true;
        /* Queued calls are not handled: their threads get 503 and free nothing, so
         * they are freed here once answered as abandoned. */
        for (struct rest_call *call = r->head, *next; call; call = next) {
                next = call->next;
                call->abandoned = true;
        }
        struct rest_call *list = r->head;
        r->head = NULL;
        r->tail = &r->head;
        pthread_cond_broadcast(&r->cond);
        pthread_mutex_unlock(&r->lock);
        /* The waiting threads see done == false: they answer 503 and return without
         * touching their call, which is freed here. */
        if (r->mhd) {
                MHD_stop_daemon(r->mhd); /* joins the connection threads */
                r->mhd = NULL;
        }
        for (struct rest_call *call = list, *next; call; call = next) {
                next = call->next;
                rest_call_free(call);
        }
        if (r->op.loop)
                (void)io_cancel(r->loop, &r->op);
}

void rest_free(struct rest *r)
{
        if (!r)
                return;
        rest_stop(r);
        if (r->listen_fd >= 0)
                close(r->listen_fd);
        if (r->efd >= 0)
                close(r->efd);
        pthread_cond_destroy(&r->cond);
        pthread_mutex_destroy(&r->lock);
        free(r);
}
