/* SPDX-License-Identifier: Apache-2.0 */
/*
 * rest: the HTTP server of the REST API (libmicrohttpd), and the hand-over of its
 * requests to the event loop.
 *
 * libmicrohttpd runs a thread per connection. A request is not answered there: it is
 * queued, the loop is woken through an eventfd, and the loop thread runs the
 * handler (which may read any worker and task state, because only that thread
 * touches them) and hands the response back. So the REST threads never see the
 * tailer's state, and the loop never blocks on a client (DESIGN.md "Process model").
 * A request the loop does not answer within REST_CALL_TIMEOUT_MS gets 503.
 *
 * Threading: rest_new(), rest_stop(), rest_free() and the handler run on the loop
 * thread.
 */
#pragma once

#include <stddef.h>

struct io_loop;
struct rest;

#define REST_BODY_MAX        (1u << 20) /* larger request bodies get 413 */
#define REST_CALL_TIMEOUT_MS 10000

/* One request, as the handler sees it. */
struct rest_request {
        const char *method; /* "GET", "POST", ... */
        const char *path;   /* decoded, without the query string */
        const char *expand; /* the `expand` query values joined by ',' ("" if none) */
        const char *body;   /* NUL-terminated; "" if none */
        size_t body_len;

        /* Filled by the handler. body is malloc'ed (freed by rest) or NULL. */
        int status;
        char *resp;
        const char *content_type; /* static; NULL means application/json */
};

typedef void (*rest_handler_t)(void *userdata, struct rest_request *req);

/* Binds host:port (port 0: any free port), starts the server and registers its
 * wake-up on the loop. Returns 0, -EADDRINUSE, -EINVAL (errbuf says why), -errno. */
int rest_new(struct io_loop *loop, const char *host, unsigned port, rest_handler_t handler,
             void *userdata, char *errbuf, size_t errlen, struct rest **ret_rest);

/* "host:port" actually bound (the port chosen when 0 was asked). */
const char *rest_address(const struct rest *r);

/* Answers what is queued, and every request from now on, with 503, stops the server
 * (waits for its threads) and cancels the wake-up on the loop. NULL is a no-op. */
void rest_stop(struct rest *r);

/* Frees it once the loop has run the cancelled wake-up (io_in_flight() == 0). Stops
 * it first if rest_stop() was not called. NULL is a no-op. */
void rest_free(struct rest *r);
