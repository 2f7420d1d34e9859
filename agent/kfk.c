/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kfk: see kfk.h.
 *
 * Defaults first, user keys after, so a user key always wins; the one exception is
 * the delivery report callback, which ringtail needs. Java producer names that
 * librdkafka does not know are translated before they reach rd_kafka_conf_set(), so
 * a Connect worker file's producer.* section works unchanged.
 */
#include <errno.h>
#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "agent/kfk.h"
#include "agent/log.h"
#include "config/props.h"

/* A record a fatally failed producer did not write, kept for the next producer. */
struct kfk_retry {
        struct kfk_retry *next;
        void *opaque;
        int32_t partition; /* RD_KAFKA_PARTITION_UA if none was assigned yet */
        void *key, *value;
        size_t key_len, value_len;
        rd_kafka_headers_t *hdrs;
};

struct kfk_retry_list {
        struct kfk_retry *head, **tail;
        size_t n;
};

struct kfk;

/* One librdkafka producer. A kfk has one, or several that each own a fixed set of
 * partitions (see kfk_producer_new()). */
struct kfk_shard {
        struct kfk *k;
        unsigned idx;
        rd_kafka_t *rk;
        rd_kafka_topic_t *rkt;
        rd_kafka_topic_t *offsets_rkt; /* exactly-once: the offsets topic */
        rd_kafka_queue_t *mainq;

        /* Recovery from a fatal error of an idempotent (not transactional) producer:
         * see kfk_rebuild(). Records sent and failed come before records never sent
         * (purged from the queue) within a partition, so they are kept apart. */
        bool rebuild; /* fatal: waiting for every report, then a new producer */
        struct kfk_retry_list sent_failed, never_sent;
        unsigned rebuilds_since_ack;

        /* What librdkafka's queue holds of ours, counted as librdkafka counts it
         * (messages, payload bytes), against its bounds: a batch is handed over with
         * rd_kafka_produce_batch() only if all of it fits (see kfk_pending_flush()). */
        uint64_t q_msgs, q_bytes;
        uint64_t q_max_msgs, q_max_bytes;
        uint64_t max_msg; /* message.max.bytes: checked when a record is taken */
};

/* Records taken by kfk_produce() and not yet handed to librdkafka: one partition of
 * one shard, copied into an arena, handed over together at the end of a read (or
 * when full, or when the partition changes) with rd_kafka_produce_batch(), which
 * takes librdkafka's partition lock and clocks once per batch instead of per record:
 * those were half of the reading thread's time (perf, 2 producers, access corpus). */
/* Several producers: records go to one partition until one of these is reached,
 * then to the next (librdkafka's own batches: batch.size 1,000,000 bytes,
 * batch.num.messages 10,000), or until sticky_ms have passed (below). */
#define KFK_STICKY_BYTES 1000000

#define KFK_PENDING_MAX   1024
#define KFK_PENDING_ARENA (1u << 20)

struct kfk_pending {
        struct kfk_shard *sh;
        int32_t partition;
        bool borrowed; /* the payloads are the caller's (kfk_produce_borrowed()) */
        unsigned n;
        size_t used;
        rd_kafka_message_t msgs[KFK_PENDING_MAX];
        char *arena;
};

struct kfk {
        struct kfk_conf conf; /* kept to build the next producer after a fatal error */
        struct kfk_shard *shards;
        unsigned n_shards;
        int efd; /* every shard's main queue rings it */
        kfk_dr_cb_t dr;
        kfk_error_cb_t error;
        void *userdata;
        char last_error[256];
        char last_conn_error[512]; /* to report a connection problem once */
        bool purging;              /* kfk_purge(): failures go to the caller */
        uint64_t rebuilds, resent, possibly_written;

        /* Several shards: ringtail picks partitions itself, sticky for sticky_records
         * records, round robin; shard = partition % n_shards. Until the partition
         * count is known (shard 0's partitioner learns it from librdkafka), records
         * go to partition 0, which shard 0 owns. */
        int32_t partition_cnt; /* atomic: written by shard 0's partitioner */
        int32_t sticky;        /* the partition records go to now */
        uint32_t sticky_left;  /* records before the next partition */
        uint32_t sticky_records;
        uint64_t sticky_bytes_left;
        uint64_t sticky_since; /* kfk_now_ms() when the partition was chosen */
        /* How long a slow source stays on a partition: librdkafka's
         * sticky.partitioning.linger.ms, which is 2 x linger.ms unless set. Shorter
         * than linger.ms, a partition's batch would wait out its linger after its
         * records stopped coming: with 10 ms and linger.ms=20 the median append->ack
         * latency at 50k lines/s was 16 ms, librdkafka's own partitioner's 12. */
        uint64_t sticky_ms;

        struct kfk_pending pend;
};

static int kfk_pending_flush(struct kfk *k);
static uint64_t kfk_now_ms(void);

/* Fatal errors recovered by a new producer with no record acknowledged in between;
 * one more is fatal for the caller (the broker refuses every new producer). */
#define KFK_MAX_REBUILDS 3

struct kfk_mock {
        rd_kafka_t *rk;
        rd_kafka_mock_cluster_t *mc;
        char *bootstraps;
};

static const struct {
        const char *key, *value;
} producer_defaults[] = {
        {"enable.idempotence", "true"},
        {"acks", "all"},
        {"compression.type", "zstd"},
        /* Never give up on a message: an outage is waited out, reading pauses. */
        {"message.timeout.ms", "0"},
        /* librdkafka's default queue is 1 GiB; the file is the buffer. */
        {"queue.buffering.max.kbytes", "16384"},
        /* And 100,000 messages: with short lines the count binds first. 25,000 per
         * producer keeps the pipe full here (10,000 starved it: 217 vs 280 MB/s) and
         * the messages librdkafka walks after each acknowledgement still in cache:
         * 7-8 % less CPU and peak RSS 45 instead of 64.5 MiB (2 producers, 1 GiB
         * java corpus, real broker, 3 runs; README, producer defaults). */
        {"queue.buffering.max.messages", "25000"},
        /* librdkafka backs off up to 10 s between reconnects: a broker back after an
         * outage would wait that long for ringtail. One attempt a second is cheap. */
        {"reconnect.backoff.max.ms", "1000"},
};

/* Keeps a copy of m for the next producer. Returns 0 or -ENOMEM. */
static int kfk_retain(struct kfk_shard *sh, const rd_kafka_message_t *m)
{
        struct kfk *k = sh->k;
        struct kfk_retry *r = calloc(1, sizeof(*r));
        if (!r)
                return -ENOMEM;
        r->opaque = m->_private;
        r->partition = m->partition;
        r->key_len = m->key_len;
        r->value_len = m->len;
        r->key = m->key_len ? malloc(m->key_len) : NULL;
        r->value = m->len ? malloc(m->len) : NULL;
        rd_kafka_headers_t *h = NULL;
        if (rd_kafka_message_headers(m, &h) == RD_KAFKA_RESP_ERR_NO_ERROR && h)
                r->hdrs = rd_kafka_headers_copy(h);
        if ((m->key_len && !r->key) || (m->len && !r->value) || (h && !r->hdrs)) {
                free(r->key);
                free(r->value);
                if (r->hdrs)
                        rd_kafka_headers_destroy(r->hdrs);
                free(r);
                return -ENOMEM;
        }
        if (m->key_len)
                memcpy(r->key, m->key, m->key_len);
        if (m->len)
                memcpy(r->value, m->payload, m->len);
        struct kfk_retry_list *l =
                m->err == RD_KAFKA_RESP_ERR__PURGE_QUEUE ? &sh->never_sent : &sh->sent_failed;
        if (!l->tail)
                l->tail = &l->head;
        *l->tail = r;
        l->tail = &r->next;
        l->n++;
        if (rd_kafka_message_status(m) == RD_KAFKA_MSG_STATUS_POSSIBLY_PERSISTED)
                k->possibly_written++;
        return 0;
}

static void kfk_retry_free(struct kfk_retry *r)
{
        free(r->key);
        free(r->value);
        if (r->hdrs)
                rd_kafka_headers_destroy(r->hdrs);
        free(r);
}

/* A record of `bytes` (value + key) librdkafka took: counted as its queue counts. */
static void kfk_taken(struct kfk_shard *sh, size_t bytes)
{
        sh->q_msgs++;
        sh->q_bytes += bytes;
}

/* 0 if the shard's producer takes records now, -ENOBUFS while a new one is being
 * made, -ENOTRECOVERABLE if none could be made. */
static int kfk_shard_usable(const struct kfk_shard *sh)
{
        if (!sh->rk)
                return -ENOTRECOVERABLE;
        return sh->rebuild ? -ENOBUFS : 0;
}

static void kfk_retry_list_free(struct kfk_retry_list *l)
{
        while (l->head) {
                struct kfk_retry *r = l->head;
                l->head = r->next;
                kfk_retry_free(r);
        }
        l->tail = &l->head;
        l->n = 0;
}

static void kfk_dr_msg_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
        struct kfk_shard *sh = opaque;
        struct kfk *k = sh->k;
        if (m->_private) {
                sh->q_msgs--;
                sh->q_bytes -= m->len + m->key_len;
        }
        /* A data record the producer failed for good because it failed as a whole:
         * kept for the next producer, reported when that one delivers it. */
        if (m->err && m->_private && !k->conf.transactional_id && !k->purging &&
            rd_kafka_fatal_error(rk, NULL, 0) != RD_KAFKA_RESP_ERR_NO_ERROR) {
                sh->rebuild = true;
                if (kfk_retain(sh, m) == 0)
                        return;
        }
        if (!m->err)
                sh->rebuilds_since_ack = 0;
        k->dr(k->userdata, m->_private, m->err, m->err ? rd_kafka_err2str(m->err) : NULL);
}

static void kfk_error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
        struct kfk_shard *sh = opaque;
        struct kfk *k = sh->k;
        char fatal_str[512];
        bool fatal = err == RD_KAFKA_RESP_ERR__FATAL;

        if (fatal) {
                (void)rd_kafka_fatal_error(rk, fatal_str, sizeof(fatal_str));
                reason = fatal_str;
                if (!k->conf.transactional_id && sh->rebuilds_since_ack < KFK_MAX_REBUILDS) {
                        /* Recoverable by a new producer: see kfk_rebuild(). */
                        sh->rebuild = true;
                        char msg[700];
                        snprintf(msg, sizeof(msg),
                                 "the producer failed (%s): a new one takes over the records it "
                                 "did not deliver",
                                 reason);
                        k->error(k->userdata, false, msg);
                        return;
                }
        }
        /* librdkafka repeats connection errors for every retry (and every shard has
         * the same ones): report changes. */
        if (!fatal && strcmp(k->last_conn_error, reason) == 0)
                return;
        snprintf(k->last_conn_error, sizeof(k->last_conn_error), "%s", reason);
        k->error(k->userdata, fatal, reason);
}

/* Shard 0's partitioner while ringtail does not know the partition count: it learns
 * it here, and sends to partition 0 (shard 0's). Runs on librdkafka's threads too. */
static int32_t kfk_shard0_partitioner(const rd_kafka_topic_t *rkt, const void *key, size_t keylen,
                                      int32_t partition_cnt, void *rkt_opaque, void *msg_opaque)
{
        struct kfk *k = rkt_opaque;
        (void)rkt;
        (void)key;
        (void)keylen;
        (void)msg_opaque;
        __atomic_store_n(&k->partition_cnt, partition_cnt, __ATOMIC_RELEASE);
        return 0;
}

static void kfk_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
        (void)rk;
        if (level < 0)
                level = 0;
        if (level > LOG_LVL_DEBUG)
                level = LOG_LVL_DEBUG;
        /* librdkafka's own levels are syslog levels; its warnings duplicate what
         * error_cb reports, so they are notices here. */
        enum log_level l = level <= LOG_LVL_WARN ? LOG_LVL_NOTICE : (enum log_level)level;
        log_at(l, "kafka: %s: %s", fac, buf);
}

/* Java producer keys librdkafka lacks, translated. *ret_value is value, or buf for
 * buffer.memory (bytes in Java, KiB in librdkafka). */
static int kfk_translate(const char *key, const char *value, const char **ret_key,
                         const char **ret_value, char *buf, size_t buflen)
{
        *ret_key = key;
        *ret_value = value;
        if (strcmp(key, "buffer.memory") == 0) {
                char *end;
                errno = 0;
                unsigned long long bytes = strtoull(value, &end, 10);
                if (errno || *end || bytes < 1024)
                        return -EINVAL;
                *ret_key = "queue.buffering.max.kbytes";
                snprintf(buf, buflen, "%llu", bytes / 1024);
                *ret_value = buf;
        } else if (strcmp(key, "max.request.size") == 0) {
                *ret_key = "message.max.bytes";
        } else if (strcmp(key, "delivery.timeout.ms") == 0) {
                *ret_key = "message.timeout.ms";
        }
        return 0;
}

static int kfk_conf_apply(rd_kafka_conf_t *rc, const struct props *p, const char *prefix,
                          char *errbuf, size_t errlen)
{
        size_t plen = strlen(prefix);
        for (size_t i = 0; p && i < props_count(p); i++) {
                const struct props_entry *e = props_at(p, i);
                if (strncmp(e->key, prefix, plen) != 0)
                        continue;
                /* Trimmed as Java's producer config trims; values may be long (PEM). */
                const char *v = e->value;
                while (*v && (unsigned char)*v <= ' ')
                        v++;
                size_t n = strlen(v);
                while (n > 0 && (unsigned char)v[n - 1] <= ' ')
                        n--;
                char *value = strndup(v, n);
                if (!value) {
                        snprintf(errbuf, errlen, "out of memory");
                        return -ENOMEM;
                }
                const char *rkey, *rvalue;
                char num[32], why[512];
                int r = 0;
                if (kfk_translate(e->key + plen, value, &rkey, &rvalue, num, sizeof(num)) < 0) {
                        snprintf(errbuf, errlen, "%s='%s' is not valid: expected bytes >= 1024",
                                 e->key, value);
                        r = -EINVAL;
                } else if (rd_kafka_conf_set(rc, rkey, rvalue, why, sizeof(why)) !=
                           RD_KAFKA_CONF_OK) {
                        snprintf(errbuf, errlen, "%s='%s' is not valid: librdkafka: %s", e->key,
                                 value, why);
                        r = -EINVAL;
                }
                free(value);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* A numeric setting of a producer as librdkafka resolved it. */
static uint64_t kfk_conf_u64(rd_kafka_t *rk, const char *name, uint64_t dflt)
{
        char buf[64];
        size_t len = sizeof(buf);
        if (rd_kafka_conf_get(rd_kafka_conf(rk), name, buf, &len) != RD_KAFKA_CONF_OK)
                return dflt;
        char *end;
        unsigned long long v = strtoull(buf, &end, 10);
        return *end ? dflt : (uint64_t)v;
}

/* Creates a shard's librdkafka producer from k->conf. Returns 0, -EINVAL (errbuf
 * says why), -ENOMEM. On failure what was made is left for kfk_shard_close(). */
static int kfk_shard_open(struct kfk_shard *sh, char *errbuf, size_t errlen)
{
        struct kfk *k = sh->k;
        const struct kfk_conf *conf = &k->conf;
        char why[512];
        int r;

        rd_kafka_conf_t *rc = rd_kafka_conf_new();
        if (!rc)
                return -ENOMEM;
        for (size_t i = 0; i < sizeof(producer_defaults) / sizeof(producer_defaults[0]); i++) {
                if (rd_kafka_conf_set(rc, producer_defaults[i].key, producer_defaults[i].value, why,
                                      sizeof(why)) != RD_KAFKA_CONF_OK) {
                        snprintf(errbuf, errlen, "librdkafka refused default %s=%s: %s",
                                 producer_defaults[i].key, producer_defaults[i].value, why);
                        r = -EINVAL;
                        goto fail_conf;
                }
        }
        if (rd_kafka_conf_set(rc, "bootstrap.servers", conf->bootstrap, why, sizeof(why)) !=
                    RD_KAFKA_CONF_OK ||
            rd_kafka_conf_set(rc, "client.id", conf->client_id, why, sizeof(why)) !=
                    RD_KAFKA_CONF_OK) {
                snprintf(errbuf, errlen, "bootstrap.servers/client.id: %s", why);
                r = -EINVAL;
                goto fail_conf;
        }
        if (conf->buffer_memory > 0) {
                /* The shards share the bound. */
                char kb[32];
                long long per = conf->buffer_memory / (long long)k->n_shards;
                snprintf(kb, sizeof(kb), "%lld", (per + 1023) / 1024);
                if (rd_kafka_conf_set(rc, "queue.buffering.max.kbytes", kb, why, sizeof(why)) !=
                    RD_KAFKA_CONF_OK) {
                        snprintf(errbuf, errlen, "buffer.memory=%lld: %s",
                                 (long long)conf->buffer_memory, why);
                        r = -EINVAL;
                        goto fail_conf;
                }
        }
        if (conf->transactional_id &&
            rd_kafka_conf_set(rc, "transactional.id", conf->transactional_id, why, sizeof(why)) !=
                    RD_KAFKA_CONF_OK) {
                snprintf(errbuf, errlen, "transactional.id=%s: %s", conf->transactional_id, why);
                r = -EINVAL;
                goto fail_conf;
        }
        r = kfk_conf_apply(rc, conf->worker, "producer.", errbuf, errlen);
        if (r < 0)
                goto fail_conf;
        r = kfk_conf_apply(rc, conf->connector, "producer.override.", errbuf, errlen);
        if (r < 0)
                goto fail_conf;
        /* zstd at level 1 unless the user chose a level: measured against level 3
         * (librdkafka's default for zstd) on the bench corpora, real broker, two
         * producers: 6-19 % less CPU per GiB, 5-13 % more bytes on the broker
         * (README, "Producer defaults"). */
        char codec[32], level[16];
        size_t clen = sizeof(codec), llen = sizeof(level);
        if (rd_kafka_conf_get(rc, "compression.codec", codec, &clen) == RD_KAFKA_CONF_OK &&
            strcmp(codec, "zstd") == 0 &&
            rd_kafka_conf_get(rc, "compression.level", level, &llen) == RD_KAFKA_CONF_OK &&
            strcmp(level, "-1") == 0)
                (void)rd_kafka_conf_set(rc, "compression.level", "1", why, sizeof(why));
        /* Shard 0 learns the partition count from its partitioner callback, which
         * librdkafka's sticky partitioner would bypass for records with no key. */
        if (k->n_shards > 1 && sh->idx == 0 &&
            rd_kafka_conf_set(rc, "sticky.partitioning.linger.ms", "0", why, sizeof(why)) !=
                    RD_KAFKA_CONF_OK) {
                snprintf(errbuf, errlen, "sticky.partitioning.linger.ms: %s", why);
                r = -EINVAL;
                goto fail_conf;
        }
        rd_kafka_conf_set_opaque(rc, sh);
        rd_kafka_conf_set_dr_msg_cb(rc, kfk_dr_msg_cb);
        rd_kafka_conf_set_error_cb(rc, kfk_error_cb);
        rd_kafka_conf_set_log_cb(rc, kfk_log_cb);

        sh->rk = rd_kafka_new(RD_KAFKA_PRODUCER, rc, why, sizeof(why));
        if (!sh->rk) {
                snprintf(errbuf, errlen, "cannot create the producer: %s", why);
                r = -EINVAL;
                goto fail_conf;
        }
        /* rc is owned by sh->rk from here on. */
        sh->q_msgs = sh->q_bytes = 0;
        sh->q_max_msgs = kfk_conf_u64(sh->rk, "queue.buffering.max.messages", 100000);
        sh->q_max_bytes = kfk_conf_u64(sh->rk, "queue.buffering.max.kbytes", 1048576) * 1024;
        sh->max_msg = kfk_conf_u64(sh->rk, "message.max.bytes", 1000000);
        /* A topic handle given a configuration takes it as it is: one made with
         * rd_kafka_topic_conf_new() would drop every topic-level setting made on rc
         * (message.timeout.ms=0, compression.level, the user's producer.* ones), so
         * each handle's configuration starts from the producer's default one. */
        rd_kafka_topic_conf_t *dtc = NULL;
        if (k->n_shards > 1 && sh->idx == 0) {
                dtc = rd_kafka_default_topic_conf_dup(sh->rk);
                if (!dtc)
                        return -ENOMEM;
                rd_kafka_topic_conf_set_partitioner_cb(dtc, kfk_shard0_partitioner);
                rd_kafka_topic_conf_set_opaque(dtc, k);
        }
        sh->rkt = rd_kafka_topic_new(sh->rk, conf->topic, dtc);
        if (!sh->rkt) {
                snprintf(errbuf, errlen, "topic '%s': %s", conf->topic,
                         rd_kafka_err2str(rd_kafka_last_error()));
                return -EINVAL;
        }
        if (conf->offsets_topic) {
                /* Java's partitioner for keyed records, as Connect's offsets writer. */
                rd_kafka_topic_conf_t *tc = rd_kafka_default_topic_conf_dup(sh->rk);
                if (!tc || rd_kafka_topic_conf_set(tc, "partitioner", "murmur2_random", why,
                                                   sizeof(why)) != RD_KAFKA_CONF_OK) {
                        rd_kafka_topic_conf_destroy(tc);
                        snprintf(errbuf, errlen, "offsets topic: %s", why);
                        return -EINVAL;
                }
                sh->offsets_rkt = rd_kafka_topic_new(sh->rk, conf->offsets_topic, tc);
                if (!sh->offsets_rkt) {
                        snprintf(errbuf, errlen, "topic '%s': %s", conf->offsets_topic,
                                 rd_kafka_err2str(rd_kafka_last_error()));
                        return -EINVAL;
                }
        }
        sh->mainq = rd_kafka_queue_get_main(sh->rk);
        /* An eventfd takes 8-byte writes: the payload is the counter increment. */
        static const uint64_t one = 1;
        rd_kafka_queue_io_event_enable(sh->mainq, k->efd, &one, sizeof(one));
        /* librdkafka rings only when the queue goes from empty to non-empty: an
         * event queued before this (a refused connection, with the broker down at
         * start) would leave it non-empty and silent for good. Ring once, so the
         * caller serves (and empties) it. */
        (void)!write(k->efd, &one, sizeof(one));
        return 0;

fail_conf:
        rd_kafka_conf_destroy(rc);
        return r;
}

/* Destroys a shard's producer; messages still queued are dropped unreported. */
static void kfk_shard_close(struct kfk_shard *sh)
{
        if (sh->mainq) {
                rd_kafka_queue_io_event_enable(sh->mainq, -1, NULL, 0);
                rd_kafka_queue_destroy(sh->mainq);
                sh->mainq = NULL;
        }
        if (sh->rkt)
                rd_kafka_topic_destroy(sh->rkt);
        if (sh->offsets_rkt)
                rd_kafka_topic_destroy(sh->offsets_rkt);
        if (sh->rk)
                rd_kafka_destroy(sh->rk);
        sh->rkt = sh->offsets_rkt = NULL;
        sh->rk = NULL;
}

int kfk_producer_new(const struct kfk_conf *conf, char *errbuf, size_t errlen, struct kfk **ret_kfk)
{
        struct kfk *k = calloc(1, sizeof(*k));
        if (!k)
                return -ENOMEM;
        k->conf = *conf;
        k->dr = conf->dr;
        k->error = conf->error;
        k->userdata = conf->userdata;
        /* Transactions and keys need one producer: a transaction is one producer's, and
         * a keyed record's partition is librdkafka's choice. */
        k->n_shards = conf->producers > 1 && !conf->transactional_id && !conf->keyed
                              ? conf->producers
                              : 1;
        k->sticky_records = conf->sticky_records ? conf->sticky_records : 10000;
        k->sticky_left = k->sticky_records;
        k->sticky_bytes_left = KFK_STICKY_BYTES;
        k->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        k->shards = calloc(k->n_shards, sizeof(*k->shards));
        k->pend.arena = malloc(KFK_PENDING_ARENA);
        if (k->efd < 0 || !k->shards || !k->pend.arena) {
                int r = k->efd < 0 ? -errno : -ENOMEM;
                snprintf(errbuf, errlen, "%s", strerror(-r));
                kfk_free(k);
                return r;
        }
        for (unsigned i = 0; i < k->n_shards; i++) {
                struct kfk_shard *sh = &k->shards[i];
                sh->k = k;
                sh->idx = i;
                sh->sent_failed.tail = &sh->sent_failed.head;
                sh->never_sent.tail = &sh->never_sent.head;
                int r = kfk_shard_open(sh, errbuf, errlen);
                if (r < 0) {
                        kfk_free(k);
                        return r;
                }
        }
        /* Shard 0's is set to 0 (kfk_shard_open()); the others' as librdkafka made it. */
        if (k->n_shards > 1)
                k->sticky_ms = kfk_conf_u64(k->shards[1].rk, "sticky.partitioning.linger.ms", 10);
        *ret_kfk = k;
        return 0;
}

unsigned kfk_producers(const struct kfk *k)
{
        return k->n_shards;
}

uint64_t kfk_queue_max_bytes(const struct kfk *k)
{
        uint64_t sum = 0;
        for (unsigned i = 0; i < k->n_shards; i++)
                sum += k->shards[i].q_max_bytes;
        return sum;
}

int kfk_event_fd(const struct kfk *k)
{
        return k->efd;
}

/* Produces a kept record again. Returns 0 or a librdkafka error. */
static rd_kafka_resp_err_t kfk_resend(struct kfk_shard *sh, struct kfk_retry *r)
{
        rd_kafka_resp_err_t err = rd_kafka_producev(
                sh->rk, RD_KAFKA_V_RKT(sh->rkt), RD_KAFKA_V_PARTITION(r->partition),
                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_VALUE(r->value, r->value_len),
                RD_KAFKA_V_KEY(r->key, r->key_len), RD_KAFKA_V_HEADERS(r->hdrs),
                RD_KAFKA_V_OPAQUE(r->opaque), RD_KAFKA_V_END);
        if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
                r->hdrs = NULL; /* librdkafka owns them now */
                kfk_taken(sh, r->value_len + r->key_len);
        }
        return err;
}

/* After a fatal error of an idempotent producer (librdkafka 2.0 gives up on a
 * partition whose sequence it cannot trust, e.g. OUT_OF_ORDER_SEQUENCE_NUMBER on its
 * first batch in flight) and once every record has been reported: a new producer
 * (a new producer id) takes the records the old one did not deliver, each to the
 * partition it was sent to, in their order (within a partition, records that were
 * sent come before records that never left the queue), before any new record. The
 * delivery reports of the kept records are the new producer's, so the caller's
 * acknowledgement tracking sees each record once. Records the old producer may have
 * written before failing (possibly persisted: a request in flight whose answer never
 * came) are counted; for them a duplicate is possible. Only the failed shard is
 * rebuilt; the others own other partitions and go on. */
static void kfk_rebuild(struct kfk_shard *sh)
{
        struct kfk *k = sh->k;
        char errbuf[512];
        sh->rebuilds_since_ack++;
        kfk_shard_close(sh);
        k->last_conn_error[0] = '\0';
        int r = kfk_shard_open(sh, errbuf, sizeof(errbuf));
        if (r < 0) {
                kfk_shard_close(sh);
                k->error(k->userdata, true, errbuf);
                return;
        }
        sh->rebuild = false;
        k->rebuilds++;
        size_t n = sh->sent_failed.n + sh->never_sent.n;
        struct kfk_retry_list *lists[] = {&sh->sent_failed, &sh->never_sent};
        for (size_t i = 0; i < 2; i++) {
                struct kfk_retry_list *l = lists[i];
                while (l->head) {
                        struct kfk_retry *rt = l->head;
                        rd_kafka_resp_err_t err = kfk_resend(sh, rt);
                        if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
                                /* The new queue is as large as the old one, which held
                                 * them: this is not a full queue. */
                                snprintf(errbuf, sizeof(errbuf),
                                         "a new producer could not take a record back: %s",
                                         rd_kafka_err2str(err));
                                k->error(k->userdata, true, errbuf);
                                return;
                        }
                        l->head = rt->next;
                        l->n--;
                        k->resent++;
                        kfk_retry_free(rt);
                }
                l->tail = &l->head;
        }
        log_notice("kafka: a new producer took over after a fatal error: %zu records sent again "
                   "(librdkafka could not tell for %" PRIu64 " records so far whether the failed "
                   "producer had written them)",
                   n, k->possibly_written);
        /* The caller waits for this descriptor to resume reading. */
        static const uint64_t one = 1;
        (void)!write(k->efd, &one, sizeof(one));
}

static void kfk_shard_serve(struct kfk_shard *sh)
{
        if (!sh->rk)
                return;
        rd_kafka_poll(sh->rk, 0);
        if (sh->rebuild && !sh->k->purging) {
                /* Records still queued will never be sent by this producer. */
                (void)rd_kafka_purge(sh->rk,
                                     RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_NON_BLOCKING);
                rd_kafka_poll(sh->rk, 0);
                if (rd_kafka_outq_len(sh->rk) == 0)
                        kfk_rebuild(sh);
        }
}

void kfk_serve(struct kfk *k)
{
        uint64_t n;
        /* Reset the counter first: an event after this read rings again. */
        (void)!read(k->efd, &n, sizeof(n));
        for (unsigned i = 0; i < k->n_shards; i++)
                kfk_shard_serve(&k->shards[i]);
        (void)kfk_pending_flush(k); /* records that waited for room */
}

static int kfk_produce_err(struct kfk *k, struct kfk_shard *sh, rd_kafka_resp_err_t err)
{
        snprintf(k->last_error, sizeof(k->last_error), "%s", rd_kafka_err2str(err));
        if (err == RD_KAFKA_RESP_ERR__FATAL && !k->conf.transactional_id &&
            sh->rebuilds_since_ack < KFK_MAX_REBUILDS) {
                sh->rebuild = true; /* a new producer is coming: wait as for a full queue */
                return -ENOBUFS;
        }
        switch (err) {
        case RD_KAFKA_RESP_ERR__QUEUE_FULL:
                return -ENOBUFS;
        case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
                return -EMSGSIZE;
        case RD_KAFKA_RESP_ERR__FATAL:
                return -ENOTRECOVERABLE;
        default:
                return -EIO;
        }
}

/* The shard and partition of the next record (RD_KAFKA_PARTITION_UA: librdkafka's
 * partitioner decides). A record that cannot be taken (full queue) is asked for
 * again and gets the same answer: the sticky count moves only once it is taken. */
static struct kfk_shard *kfk_route(struct kfk *k, int32_t *ret_partition)
{
        if (k->n_shards == 1) {
                *ret_partition = RD_KAFKA_PARTITION_UA;
                return &k->shards[0];
        }
        int32_t cnt = __atomic_load_n(&k->partition_cnt, __ATOMIC_ACQUIRE);
        if (cnt <= 0) {
                *ret_partition = RD_KAFKA_PARTITION_UA; /* shard 0's partitioner: 0 */
                return &k->shards[0];
        }
        if (k->sticky_left == 0) {
                k->sticky = (k->sticky + 1) % cnt;
                k->sticky_left = k->sticky_records;
                k->sticky_bytes_left = KFK_STICKY_BYTES;
                k->sticky_since = 0; /* set by the next kfk_flush_pending() */
        }
        *ret_partition = k->sticky;
        return &k->shards[(uint32_t)k->sticky % k->n_shards];
}

static void kfk_routed(struct kfk *k, size_t bytes)
{
        if (k->sticky_left)
                k->sticky_left--;
        if (k->sticky_bytes_left > bytes)
                k->sticky_bytes_left -= bytes;
        else
                k->sticky_left = 0;
}

static bool kfk_shard_has_room(const struct kfk_shard *sh, unsigned n, uint64_t bytes)
{
        return sh->q_msgs + n <= sh->q_max_msgs && sh->q_bytes + bytes <= sh->q_max_bytes;
}

/* Several producers: pending records whose producer's queue is full go to the next
 * partition of a producer with room, and the sticky run with them. They have not
 * been handed to librdkafka, and records with no key may go to any partition. The
 * reading thread used to wait for one producer's acknowledgements while the other
 * had nothing left to compress: one core idle 5-8 % of the time (perf sched, 2
 * producers, java corpus, real broker). */
static void kfk_pending_reroute(struct kfk *k, uint64_t bytes)
{
        struct kfk_pending *p = &k->pend;
        int32_t cnt = __atomic_load_n(&k->partition_cnt, __ATOMIC_ACQUIRE);
        if (k->n_shards == 1 || p->partition < 0 || cnt <= 0)
                return;
        for (int32_t i = 1; i < cnt; i++) {
                int32_t q = (p->partition + i) % cnt;
                struct kfk_shard *o = &k->shards[(uint32_t)q % k->n_shards];
                if (o == p->sh || kfk_shard_usable(o) < 0 || !kfk_shard_has_room(o, p->n, bytes))
                        continue;
                if (k->sticky == p->partition)
                        k->sticky = q;
                p->sh = o;
                p->partition = q;
                return;
        }
}

/* Hands the pending records to librdkafka, in order. All at once if its queue has
 * room for all of them by our count (rd_kafka_produce_batch() goes on after a record
 * the queue refuses, so a smaller one after it could overtake it); else one by one
 * until one is refused. Returns 0 when nothing is pending any more, -ENOBUFS if some
 * wait for room (they go first next time), -ENOTRECOVERABLE, -EIO. */
static int kfk_pending_flush(struct kfk *k)
{
        struct kfk_pending *p = &k->pend;
        if (p->n == 0)
                return 0;
        struct kfk_shard *sh = p->sh;
        int usable = kfk_shard_usable(sh);
        if (usable < 0)
                return usable;
        uint64_t bytes = 0;
        for (unsigned i = 0; i < p->n; i++) {
                bytes += p->msgs[i].len + p->msgs[i].key_len;
                p->msgs[i].err = RD_KAFKA_RESP_ERR_NO_ERROR;
        }
        if (!kfk_shard_has_room(sh, p->n, bytes)) {
                kfk_pending_reroute(k, bytes);
                sh = p->sh;
        }
        rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;
        unsigned kept = 0;
        int flags = p->borrowed ? 0 : RD_KAFKA_MSG_F_COPY;
        if (kfk_shard_has_room(sh, p->n, bytes)) {
                int n = rd_kafka_produce_batch(sh->rkt, p->partition, flags, p->msgs, (int)p->n);
                /* Keep what was refused (not expected: the queue had room), in order. */
                bool refused = false;
                for (unsigned i = 0; i < p->n; i++) {
                        rd_kafka_message_t *m = &p->msgs[i];
                        if (m->err) {
                                err = err ? err : m->err;
                                refused = true;
                                p->msgs[kept++] = *m;
                                continue;
                        }
                        if (refused)
                                log_warn("kafka: a record overtook one librdkafka refused (%s): "
                                         "they are out of order in partition %" PRId32,
                                         rd_kafka_err2str(err), p->partition);
                        kfk_taken(sh, m->len + m->key_len);
                }
                (void)n;
        } else {
                unsigned done = 0;
                for (; done < p->n; done++) {
                        rd_kafka_message_t *m = &p->msgs[done];
                        if (rd_kafka_produce(sh->rkt, p->partition, flags, m->payload, m->len,
                                             m->key, m->key_len, m->_private) != 0) {
                                err = rd_kafka_last_error();
                                break;
                        }
                        kfk_taken(sh, m->len + m->key_len);
                }
                kept = p->n - done;
                memmove(p->msgs, p->msgs + done, kept * sizeof(p->msgs[0]));
        }
        p->n = kept;
        if (kept == 0) {
                p->used = 0;
                return 0;
        }
        /* The arena stays as it is: what is kept still points into it. */
        return kfk_produce_err(k, sh, err);
}

int kfk_flush_pending(struct kfk *k)
{
        if (k->n_shards > 1) {
                /* A slow source moves on to the next partition after sticky_ms, as
                 * librdkafka's sticky partitioner does, so every partition (and
                 * producer) gets its share; with 0 (librdkafka: not sticky), after
                 * every read. One clock read per call, not per record. */
                uint64_t now = kfk_now_ms();
                if (k->sticky_since == 0 && k->sticky_ms > 0)
                        k->sticky_since = now;
                else if (now - k->sticky_since >= k->sticky_ms)
                        k->sticky_left = 0;
        }
        return kfk_pending_flush(k);
}

/* Hands what is pending to librdkafka, then routes the next record: the flush may
 * have moved the sticky run to another producer (kfk_pending_reroute()). Returns 0,
 * or kfk_pending_flush()'s or kfk_shard_usable()'s error. */
static int kfk_flush_then_route(struct kfk *k, struct kfk_shard **ret_sh, int32_t *ret_partition)
{
        int r = kfk_pending_flush(k);
        if (r < 0)
                return r;
        *ret_sh = kfk_route(k, ret_partition);
        return kfk_shard_usable(*ret_sh);
}

static int kfk_take(struct kfk *k, const void *key, size_t key_len, const void *value,
                    size_t value_len, void *msg_opaque, bool borrowed)
{
        struct kfk_pending *p = &k->pend;
        int32_t part;
        struct kfk_shard *sh = kfk_route(k, &part);
        int usable = kfk_shard_usable(sh);
        if (usable < 0)
                return usable;
        if (key_len + value_len > sh->max_msg) {
                /* As librdkafka would refuse it, but now, while the caller knows
                 * which record it is. */
                snprintf(k->last_error, sizeof(k->last_error), "%s",
                         rd_kafka_err2str(RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE));
                return -EMSGSIZE;
        }
        if (!borrowed && key_len + value_len > KFK_PENDING_ARENA / 4) {
                /* Large: straight to librdkafka, after what is pending. */
                int r = kfk_flush_then_route(k, &sh, &part);
                if (r < 0)
                        return r;
                if (rd_kafka_produce(sh->rkt, part, RD_KAFKA_MSG_F_COPY, (void *)value, value_len,
                                     (void *)key, key_len, msg_opaque) != 0)
                        return kfk_produce_err(k, sh, rd_kafka_last_error());
                kfk_taken(sh, value_len + key_len);
                kfk_routed(k, key_len + value_len);
                return 0;
        }
        if (p->n && (p->sh != sh || p->partition != part || p->n == KFK_PENDING_MAX ||
                     p->borrowed != borrowed ||
                     (!borrowed && p->used + key_len + value_len > KFK_PENDING_ARENA))) {
                int r = kfk_flush_then_route(k, &sh, &part);
                if (r < 0)
                        return r;
        }
        if (p->n == 0) {
                p->sh = sh;
                p->partition = part;
                p->borrowed = borrowed;
        }
        rd_kafka_message_t *m = &p->msgs[p->n++];
        memset(m, 0, sizeof(*m));
        m->len = value_len;
        m->_private = msg_opaque;
        if (borrowed) {
                m->payload = (void *)value; /* kfk_produce_borrowed(): no key */
        } else {
                m->payload = p->arena + p->used;
                if (value_len)
                        memcpy(m->payload, value, value_len);
                p->used += value_len;
                if (key) {
                        m->key = p->arena + p->used;
                        m->key_len = key_len;
                        memcpy(m->key, key, key_len);
                        p->used += key_len;
                }
        }
        kfk_routed(k, key_len + value_len);
        return 0;
}

int kfk_produce(struct kfk *k, const void *key, size_t key_len, const void *value, size_t value_len,
                void *msg_opaque)
{
        return kfk_take(k, key, key_len, value, value_len, msg_opaque, false);
}

int kfk_produce_borrowed(struct kfk *k, const void *value, size_t value_len, void *msg_opaque)
{
        return kfk_take(k, NULL, 0, value, value_len, msg_opaque, true);
}

int kfk_produce_hdrs(struct kfk *k, const void *key, size_t key_len, const void *value,
                     size_t value_len, const struct kfk_header *hdrs, size_t n_hdrs,
                     void *msg_opaque)
{
        if (n_hdrs == 0)
                return kfk_produce(k, key, key_len, value, value_len, msg_opaque);
        int32_t part;
        struct kfk_shard *sh;
        int r = kfk_flush_then_route(k, &sh, &part);
        if (r < 0)
                return r;
        rd_kafka_headers_t *h = rd_kafka_headers_new(n_hdrs);
        if (!h)
                return -ENOMEM;
        for (size_t i = 0; i < n_hdrs; i++)
                (void)rd_kafka_header_add(h, hdrs[i].name, -1, hdrs[i].value,
                                          (ssize_t)hdrs[i].value_len);
        rd_kafka_resp_err_t err = rd_kafka_producev(
                sh->rk, RD_KAFKA_V_RKT(sh->rkt), RD_KAFKA_V_PARTITION(part),
                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                RD_KAFKA_V_VALUE((void *)value, value_len), RD_KAFKA_V_KEY(key, key_len),
                RD_KAFKA_V_HEADERS(h), RD_KAFKA_V_OPAQUE(msg_opaque), RD_KAFKA_V_END);
        if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
                kfk_taken(sh, value_len + key_len);
                kfk_routed(k, key_len + value_len);
                return 0; /* librdkafka owns the headers now */
        }
        rd_kafka_headers_destroy(h);
        return kfk_produce_err(k, sh, err);
}

int kfk_produce_offset(struct kfk *k, const void *key, size_t key_len, const void *value,
                       size_t value_len)
{
        struct kfk_shard *sh = &k->shards[0];
        if (!sh->offsets_rkt)
                return -EINVAL;
        int r = kfk_pending_flush(k);
        if (r < 0)
                return r;
        if (rd_kafka_produce(sh->offsets_rkt, RD_KAFKA_PARTITION_UA, RD_KAFKA_MSG_F_COPY,
                             (void *)value, value_len, key, key_len, NULL) == 0)
                return 0;
        return kfk_produce_err(k, sh, rd_kafka_last_error());
}

/* Converts a transactional API error: -ECANCELED when the transaction must be (and,
 * here, was) aborted, -EPERM when the producer is fenced or otherwise fatally
 * failed, -EAGAIN when the call may be retried, else -EIO. */
static int kfk_txn_err(struct kfk *k, rd_kafka_error_t *e, int abort_ms, char *errbuf,
                       size_t errlen)
{
        if (!e)
                return 0;
        snprintf(errbuf, errlen, "%s", rd_kafka_error_string(e));
        int r = -EIO;
        if (rd_kafka_error_is_fatal(e)) {
                r = -EPERM;
        } else if (rd_kafka_error_txn_requires_abort(e)) {
                rd_kafka_error_t *a = rd_kafka_abort_transaction(k->shards[0].rk, abort_ms);
                r = a && rd_kafka_error_is_fatal(a) ? -EPERM : -ECANCELED;
                if (a)
                        rd_kafka_error_destroy(a);
        } else if (rd_kafka_error_is_retriable(e)) {
                r = -EAGAIN;
        }
        rd_kafka_error_destroy(e);
        return r;
}

int kfk_txn_init(struct kfk *k, int timeout_ms, char *errbuf, size_t errlen)
{
        return kfk_txn_err(k, rd_kafka_init_transactions(k->shards[0].rk, timeout_ms), timeout_ms,
                           errbuf, errlen);
}

int kfk_txn_begin(struct kfk *k, char *errbuf, size_t errlen)
{
        return kfk_txn_err(k, rd_kafka_begin_transaction(k->shards[0].rk), 0, errbuf, errlen);
}

int kfk_txn_commit(struct kfk *k, int timeout_ms, char *errbuf, size_t errlen)
{
        int r;
        /* Every record of the transaction in librdkafka's hands first. */
        uint64_t deadline = kfk_now_ms() + (uint64_t)timeout_ms;
        while ((r = kfk_pending_flush(k)) == -ENOBUFS && kfk_now_ms() < deadline) {
                rd_kafka_poll(k->shards[0].rk, 10);
        }
        if (r < 0) {
                snprintf(errbuf, errlen, "records could not be handed to the producer: %s",
                         k->last_error);
                return -EIO;
        }
        do {
                r = kfk_txn_err(k, rd_kafka_commit_transaction(k->shards[0].rk, timeout_ms),
                                timeout_ms, errbuf, errlen);
        } while (r == -EAGAIN);
        return r;
}

int kfk_txn_abort(struct kfk *k, int timeout_ms, char *errbuf, size_t errlen)
{
        return kfk_txn_err(k, rd_kafka_abort_transaction(k->shards[0].rk, timeout_ms), timeout_ms,
                           errbuf, errlen);
}

/* Creates the compacted offsets topic if it is missing. */
static int kfk_offsets_topic_ensure(rd_kafka_t *rk, const char *topic, int partitions, int rf,
                                    char *errbuf, size_t errlen)
{
        char why[256];
        rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new(topic, partitions, rf, why, sizeof(why));
        if (!nt) {
                snprintf(errbuf, errlen, "offset.storage.topic '%s': %s", topic, why);
                return -EINVAL;
        }
        (void)rd_kafka_NewTopic_set_config(nt, "cleanup.policy", "compact");
        rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
        rd_kafka_CreateTopics(rk, &nt, 1, NULL, q);
        int r = -ETIMEDOUT;
        rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 30000);
        if (ev) {
                const rd_kafka_CreateTopics_result_t *res = rd_kafka_event_CreateTopics_result(ev);
                size_t n = 0;
                const rd_kafka_topic_result_t **tr =
                        res ? rd_kafka_CreateTopics_result_topics(res, &n) : NULL;
                rd_kafka_resp_err_t err = rd_kafka_event_error(ev);
                if (!err && n == 1)
                        err = rd_kafka_topic_result_error(tr[0]);
                if (err == RD_KAFKA_RESP_ERR_NO_ERROR ||
                    err == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
                        r = 0;
                } else {
                        snprintf(errbuf, errlen, "creating offset.storage.topic '%s': %s", topic,
                                 n == 1 && rd_kafka_topic_result_error_string(tr[0])
                                         ? rd_kafka_topic_result_error_string(tr[0])
                                         : rd_kafka_err2str(err));
                        r = -EIO;
                }
                rd_kafka_event_destroy(ev);
        } else {
                snprintf(errbuf, errlen, "creating offset.storage.topic '%s': timed out", topic);
        }
        rd_kafka_queue_destroy(q);
        rd_kafka_NewTopic_destroy(nt);
        return r;
}

int kfk_offsets_read(const struct kfk_offsets_conf *c, kfk_record_cb_t cb, void *userdata,
                     char *errbuf, size_t errlen)
{
        char why[512];
        rd_kafka_conf_t *rc = rd_kafka_conf_new();
        if (!rc)
                return -ENOMEM;
        if (rd_kafka_conf_set(rc, "bootstrap.servers", c->bootstrap, why, sizeof(why)) ||
            rd_kafka_conf_set(rc, "client.id", c->client_id, why, sizeof(why)) ||
            rd_kafka_conf_set(rc, "isolation.level", "read_committed", why, sizeof(why)) ||
            rd_kafka_conf_set(rc, "enable.partition.eof", "true", why, sizeof(why)) ||
            rd_kafka_conf_set(rc, "enable.auto.commit", "false", why, sizeof(why)) ||
            rd_kafka_conf_set(rc, "group.id", c->client_id, why, sizeof(why)) ||
            kfk_conf_apply(rc, c->worker, "consumer.", errbuf, errlen) < 0) {
                if (!*errbuf)
                        snprintf(errbuf, errlen, "offsets consumer: %s", why);
                rd_kafka_conf_destroy(rc);
                return -EINVAL;
        }
        rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, rc, why, sizeof(why));
        if (!rk) {
                snprintf(errbuf, errlen, "offsets consumer: %s", why);
                rd_kafka_conf_destroy(rc);
                return -EINVAL;
        }
        int r = kfk_offsets_topic_ensure(rk, c->topic, c->partitions, c->replication_factor, errbuf,
                                         errlen);
        rd_kafka_topic_partition_list_t *parts = NULL;
        int nparts = 0;
        for (int tries = 0; r == 0 && nparts == 0; tries++) {
                /* A topic just created takes a moment to show its partitions. */
                const rd_kafka_metadata_t *md = NULL;
                rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, c->topic, NULL);
                rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 0, rkt, &md, 10000);
                if (!err && md->topic_cnt == 1 && !md->topics[0].err)
                        nparts = md->topics[0].partition_cnt;
                if (md)
                        rd_kafka_metadata_destroy(md);
                rd_kafka_topic_destroy(rkt);
                if (nparts == 0 && tries >= 100) {
                        snprintf(errbuf, errlen, "offset.storage.topic '%s' has no partitions",
                                 c->topic);
                        r = -EIO;
                } else if (nparts == 0) {
                        usleep(100 * 1000);
                }
        }
        if (r == 0) {
                parts = rd_kafka_topic_partition_list_new(nparts);
                for (int i = 0; i < nparts; i++)
                        rd_kafka_topic_partition_list_add(parts, c->topic, i)->offset =
                                RD_KAFKA_OFFSET_BEGINNING;
                if (rd_kafka_assign(rk, parts)) {
                        snprintf(errbuf, errlen, "offsets consumer: cannot assign partitions");
                        r = -EIO;
                }
        }
        /* read_committed: a partition's end is its last stable offset, so records of
         * transactions still open (or aborted) are never seen. */
        int eof = 0;
        uint64_t waited = 0;
        while (r == 0 && eof < nparts) {
                rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 200);
                if (!m) {
                        if ((waited += 200) > 60000) {
                                snprintf(errbuf, errlen,
                                         "reading offset.storage.topic '%s': timed out", c->topic);
                                r = -ETIMEDOUT;
                        }
                        continue;
                }
                if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                        eof++;
                } else if (m->err) {
                        snprintf(errbuf, errlen, "reading offset.storage.topic '%s': %s", c->topic,
                                 rd_kafka_message_errstr(m));
                        r = -EIO;
                } else {
                        cb(userdata, m->key, m->key_len, m->payload, m->len);
                }
                rd_kafka_message_destroy(m);
        }
        if (parts)
                rd_kafka_topic_partition_list_destroy(parts);
        (void)rd_kafka_consumer_close(rk);
        rd_kafka_destroy(rk);
        return r;
}

const char *kfk_last_error(const struct kfk *k)
{
        return k->last_error;
}

static size_t kfk_shard_in_flight(const struct kfk_shard *sh)
{
        return (sh->rk ? (size_t)rd_kafka_outq_len(sh->rk) : 0) + sh->sent_failed.n +
               sh->never_sent.n;
}

size_t kfk_in_flight(const struct kfk *k)
{
        size_t n = k->pend.n;
        for (unsigned i = 0; i < k->n_shards; i++)
                n += kfk_shard_in_flight(&k->shards[i]);
        return n;
}

static uint64_t kfk_now_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int kfk_flush(struct kfk *k, int timeout_ms)
{
        uint64_t deadline = kfk_now_ms() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0);
        for (;;) {
                (void)kfk_pending_flush(k);
                for (unsigned i = 0; i < k->n_shards; i++) {
                        struct kfk_shard *sh = &k->shards[i];
                        if (!sh->rk || kfk_shard_in_flight(sh) == 0)
                                continue;
                        uint64_t now = kfk_now_ms();
                        int left = now < deadline ? (int)(deadline - now) : 0;
                        /* A shard being rebuilt needs serving in between. */
                        (void)rd_kafka_flush(sh->rk,
                                             sh->rebuild ? (left < 100 ? left : 100) : left);
                        kfk_shard_serve(sh);
                }
                (void)kfk_pending_flush(k);
                if (kfk_in_flight(k) == 0)
                        return 0;
                bool live = k->pend.n > 0 && k->pend.sh->rk;
                for (unsigned i = 0; i < k->n_shards; i++)
                        live = live || (k->shards[i].rk && kfk_shard_in_flight(&k->shards[i]));
                if (!live || kfk_now_ms() >= deadline)
                        return -ETIMEDOUT;
        }
}

/* Reports a kept record as purged. */
static void kfk_drop_kept(struct kfk *k, struct kfk_retry_list *l)
{
        while (l->head) {
                struct kfk_retry *r = l->head;
                l->head = r->next;
                l->n--;
                k->dr(k->userdata, r->opaque, RD_KAFKA_RESP_ERR__PURGE_QUEUE,
                      rd_kafka_err2str(RD_KAFKA_RESP_ERR__PURGE_QUEUE));
                kfk_retry_free(r);
        }
        l->tail = &l->head;
}

void kfk_purge(struct kfk *k)
{
        k->purging = true;
        for (unsigned i = 0; i < k->pend.n; i++)
                k->dr(k->userdata, k->pend.msgs[i]._private, RD_KAFKA_RESP_ERR__PURGE_QUEUE,
                      rd_kafka_err2str(RD_KAFKA_RESP_ERR__PURGE_QUEUE));
        k->pend.n = 0;
        k->pend.used = 0;
        for (unsigned i = 0; i < k->n_shards; i++) {
                struct kfk_shard *sh = &k->shards[i];
                if (sh->rk)
                        (void)rd_kafka_purge(sh->rk,
                                             RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        }
        for (unsigned i = 0; i < k->n_shards; i++) {
                struct kfk_shard *sh = &k->shards[i];
                if (sh->rk) {
                        /* Purged messages' reports are queued; serve them (bounded). */
                        (void)rd_kafka_flush(sh->rk, 1000);
                        rd_kafka_poll(sh->rk, 0);
                }
                kfk_drop_kept(k, &sh->sent_failed);
                kfk_drop_kept(k, &sh->never_sent);
        }
        k->purging = false;
}

void kfk_stats(const struct kfk *k, struct kfk_stats *ret_stats)
{
        *ret_stats = (struct kfk_stats){
                .rebuilds = k->rebuilds,
                .resent = k->resent,
                .possibly_written = k->possibly_written,
        };
}

bool kfk_err_is_purge(int err)
{
        return err == RD_KAFKA_RESP_ERR__PURGE_QUEUE || err == RD_KAFKA_RESP_ERR__PURGE_INFLIGHT;
}

void kfk_free(struct kfk *k)
{
        if (!k)
                return;
        for (unsigned s = 0; k->shards && s < k->n_shards; s++) {
                struct kfk_shard *sh = &k->shards[s];
                kfk_shard_close(sh);
                kfk_retry_list_free(&sh->sent_failed);
                kfk_retry_list_free(&sh->never_sent);
        }
        free(k->shards);
        free(k->pend.arena);
        if (k->efd >= 0)
                close(k->efd);
        free(k);
}

int kfk_mock_new(int brokers, struct kfk_mock **ret_mock)
{
        char why[512];
        struct kfk_mock *m = calloc(1, sizeof(*m));
        if (!m)
                return -ENOMEM;
        rd_kafka_conf_t *rc = rd_kafka_conf_new();
        if (!rc)
                goto fail;
        rd_kafka_conf_set_log_cb(rc, kfk_log_cb);
        /* This handle only hosts the cluster: its "no bootstrap.servers" warning is
         * noise. */
        (void)rd_kafka_conf_set(rc, "log_level", "3", why, sizeof(why));
        m->rk = rd_kafka_new(RD_KAFKA_PRODUCER, rc, why, sizeof(why));
        if (!m->rk) {
                rd_kafka_conf_destroy(rc);
                goto fail;
        }
        m->mc = rd_kafka_mock_cluster_new(m->rk, brokers);
        if (!m->mc)
                goto fail;
        m->bootstraps = strdup(rd_kafka_mock_cluster_bootstraps(m->mc));
        if (!m->bootstraps)
                goto fail;
        *ret_mock = m;
        return 0;
fail:
        kfk_mock_free(m);
        return -EIO;
}

const char *kfk_mock_bootstraps(const struct kfk_mock *m)
{
        return m->bootstraps;
}

void kfk_mock_free(struct kfk_mock *m)
{
        if (!m)
                return;
        free(m->bootstraps);
        if (m->mc)
                rd_kafka_mock_cluster_destroy(m->mc);
        if (m->rk)
                rd_kafka_destroy(m->rk);
        free(m);
}

const char *kfk_version(void)
{
        return rd_kafka_version_str();
}
