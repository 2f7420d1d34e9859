/* SPDX-License-Identifier: Apache-2.0 */
/*
 * api: the REST API's routes (Kafka Connect's, plus /metrics and /health), answered
 * from the worker's and the tasks' state. rest.c carries the requests here.
 *
 * Threading: the worker's event loop thread only (rest hands requests over).
 */
#pragma once

#include <stdint.h>

struct off_store;
struct props;
struct rest_request;
struct task;

struct api_connector {
        const char *name;
        const char *class_name; /* connector.class as configured */
        const char *topic;
        const struct props *props; /* the connector's file: GET .../config */
        struct task *task;
};

/* The worker, as the API shows it. */
struct api_worker {
        const struct api_connector *conns;
        int n_conns;
        const char *worker_id; /* host:port of the REST API */
        const struct off_store *store;
        int checkpoint_err;            /* 0, or -errno of the last failed checkpoint write */
        uint64_t checkpoint_err_since; /* wall clock ms */
        uint64_t checkpoint_ok_at;     /* wall clock ms of the last good write, 0: none */
        uint64_t checkpoint_writes, checkpoint_failures;
};

/* Answers req (status, body, content type). */
void api_handle(const struct api_worker *w, struct rest_request *req);
