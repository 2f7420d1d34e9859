/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fuzz target for the REST API's routing (agent/api.c): the input is
 * "METHOD\nPATH\nEXPAND\nBODY" (missing parts are empty), answered for a worker with
 * two connectors, "c1" and "c 2", whose tasks report a fixed status (this file
 * defines task_get_status(), so task.c is not linked in).
 *
 * Checked for every request:
 *   - a status among those the API uses, and a body;
 *   - a JSON body parses; an error is Connect's {"error_code":N,"message":"..."} with
 *     N the HTTP status;
 *   - /metrics is text with one sample line per connector for each family.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/api.h"
#include "agent/rest.h"
#include "agent/task.h"
#include "config/props.h"
#include "offsets/off.h"

#define CHECK(cond)                                                                                \
        do {                                                                                       \
                if (!(cond)) {                                                                     \
                        fprintf(stderr, "fuzz_api: %s:%d: %s\n", __FILE__, __LINE__, #cond);       \
                        abort();                                                                   \
                }                                                                                  \
        } while (0)

void task_get_status(const struct task *t, struct task_status *s)
{
        *s = (struct task_status){
                .state = t ? TASK_FAILED : TASK_RUNNING,
                .failure = t ? "Kafka did not acknowledge a record: \"quoted\"\n\tnext" : NULL,
                .kafka_error = "127.0.0.1:1/bootstrap: Connect to ipv4#127.0.0.1:1 failed",
                .kafka_error_since = 1790000000123,
                .lines_sent = 3,
                .lines_acked = 2,
        };
}

#define PROPS "name=c1\ntopic=t\nfiles=/x/*.log\n"

static struct off_store *store;
static struct props *props;

static char *part(const uint8_t **p, const uint8_t *end)
{
        const uint8_t *nl = memchr(*p, '\n', (size_t)(end - *p));
        const uint8_t *stop = nl ? nl : end;
        size_t n = (size_t)(stop - *p);
        char *s = malloc(n + 1);
        CHECK(s);
        memcpy(s, *p, n);
        s[n] = '\0';
        *p = nl ? nl + 1 : end;
        return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        if (!store) {
                CHECK(off_store_open("/nonexistent/fuzz_api.offsets", &store, NULL) == 0);
                CHECK(props_parse(PROPS, strlen(PROPS), &props, NULL) == 0);
                struct off_rec rec = {.dev = 1, .ino = 2, .offset = 42, .path = "/x/a.log"};
                CHECK(off_set(store, "c1", &rec) == 0);
        }
        const uint8_t *p = data, *end = data + size;
        char *method = part(&p, end), *path = part(&p, end), *expand = part(&p, end);
        size_t blen = (size_t)(end - p);
        char *body = malloc(blen + 1);
        CHECK(body);
        memcpy(body, p, blen);
        body[blen] = '\0';

        struct api_connector conns[2] = {
                {.name = "c1", .class_name = "TailSource", .topic = "t", .props = props},
                {.name = "c 2",
                 .class_name = "FileStreamSource",
                 .topic = "u",
                 .props = props,
                 .task = (struct task *)conns}, /* non-NULL: the stub reports FAILED */
        };
        struct api_worker w = {.conns = conns,
                               .n_conns = 2,
                               .worker_id = "127.0.0.1:8083",
                               .store = store,
                               .checkpoint_err = -28,
                               .checkpoint_err_since = 1790000000000};
        struct rest_request req = {
                .method = method, .path = path, .expand = expand, .body = body, .body_len = blen};
        api_handle(&w, &req);

        CHECK(req.resp);
        CHECK(req.status == 200 || req.status == 404 || req.status == 405 || req.status == 501 ||
              req.status == 500);
        if (req.content_type && strncmp(req.content_type, "text/plain", 10) == 0) {
                CHECK(req.status == 200);
                CHECK(strstr(req.resp, "ringtail_records_sent_total{connector=\"c1\"} 3\n"));
                CHECK(strstr(req.resp, "ringtail_task_failed{connector=\"c 2\"} 1\n"));
        } else {
                json_error_t err;
                json_t *j = json_loads(req.resp, 0, &err);
                CHECK(j);
                if (req.status != 200) {
                        CHECK(json_is_object(j));
                        CHECK(json_integer_value(json_object_get(j, "error_code")) == req.status);
                        CHECK(json_is_string(json_object_get(j, "message")));
                }
                json_decref(j);
        }
        free(req.resp);
        free(method);
        free(path);
        free(expand);
        free(body);
        return 0;
}
