/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kfk: ringtail's Kafka producer and the embedded mock cluster. The only code that
 * includes rdkafka.h; librdkafka's errors are converted here.
 *
 * A producer is librdkafka's idempotent producer (enable.idempotence=true,
 * acks=all) with compression.type=zstd, no message timeout (an outage is waited
 * out; the file is the buffer) and a queue bound (the connector's buffer.memory,
 * shared by the producers), then the worker's
 * producer.* keys and the connector's producer.override.* keys, given to librdkafka
 * unchanged except for the Java producer names it lacks (buffer.memory,
 * max.request.size, delivery.timeout.ms), which are translated.
 *
 * A fatal error of an idempotent (not transactional) producer is recovered here: a
 * new producer takes over the records the failed one did not deliver (kfk_rebuild()
 * in kfk.c); meanwhile kfk_produce() answers -ENOBUFS, and the error callback gets
 * a non-fatal report. Only repeated failures (KFK_MAX_REBUILDS in a row with no
 * acknowledgement between them) are fatal for the caller.
 *
 * Delivery reports and errors are served on the caller's thread: librdkafka writes
 * to kfk_event_fd() when its queue goes from empty to non-empty; the loop polls that
 * descriptor and calls kfk_serve(), which runs the callbacks. Every message gets
 * exactly one delivery report, in produce order per partition.
 *
 * Threading: one thread (the event loop's) calls everything but kfk_mock_*.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct props;
struct kfk;
struct kfk_mock;

/* err is 0 for an acknowledged message, otherwise a librdkafka error code (never
 * retried by the caller: librdkafka has given up) with its text in errstr. */
typedef void (*kfk_dr_cb_t)(void *userdata, void *msg_opaque, int err, const char *errstr);

/* A problem of the connection (all brokers down, authentication, ...): once per
 * change, not per message. fatal: the producer cannot go on. */
typedef void (*kfk_error_cb_t)(void *userdata, bool fatal, const char *errstr);

struct kfk_conf {
        const char *bootstrap; /* host:port,... */
        const char *client_id;
        const char *topic;
        const struct props *worker;    /* its producer.* keys are applied */
        const struct props *connector; /* its producer.override.* keys are applied */
        kfk_dr_cb_t dr;
        kfk_error_cb_t error;
        void *userdata;
        int64_t buffer_memory;        /* > 0: bytes librdkafka may queue (before producer.* keys) */
        const char *transactional_id; /* exactly-once: a transactional producer */
        const char *offsets_topic;    /* exactly-once: where kfk_produce_offset() writes */
        unsigned producers;           /* > 1: that many producers, see below */
        bool keyed;                   /* records carry keys: one producer */
        uint32_t sticky_records;      /* several producers: records per partition in a row */
};

/* Returns 0, -EINVAL for a configuration librdkafka rejects (errbuf names the key,
 * the value and the reason), -ENOMEM. */
int kfk_producer_new(const struct kfk_conf *conf, char *errbuf, size_t errlen,
                     struct kfk **ret_kfk);

/* How many librdkafka producers it runs: conf->producers, or 1 for a transactional
 * or keyed one. Several producers spread compression (the dominant cost, done by a
 * producer's broker threads) over cores. Each owns a fixed set of partitions
 * (partition % producers), so order within a partition and idempotence hold; records
 * go to one partition for sticky_records records (default 10000), 1 MB or
 * sticky.partitioning.linger.ms (librdkafka's: 2 x linger.ms unless set), whichever
 * comes first, then to the next, round robin, so consecutive batches
 * belong to different producers. */
unsigned kfk_producers(const struct kfk *k);

/* Bytes of records librdkafka's queues may hold, all producers together
 * (queue.buffering.max.kbytes of each). */
uint64_t kfk_queue_max_bytes(const struct kfk *k);

/* Descriptor to poll for POLLIN; then call kfk_serve(). */
int kfk_event_fd(const struct kfk *k);

/* Runs the delivery report and error callbacks that are due. */
void kfk_serve(struct kfk *k);

/* Takes one message (copied) for the topic, partitioned by librdkafka (null key:
 * sticky random partition) or, with several producers, by kfk. msg_opaque comes back
 * in the delivery report. Messages without headers are gathered and handed to
 * librdkafka together: by kfk_flush_pending() (call it when a read's records are
 * taken), when enough are gathered, or by kfk_serve(); they count as in flight.
 * Returns 0, -ENOBUFS (local queue full: try again after delivery reports),
 * -EMSGSIZE (larger than message.max.bytes), -ENOTRECOVERABLE (fatal producer
 * error), -EIO (other; errbuf filled by kfk_last_error()). */
int kfk_produce(struct kfk *k, const void *key, size_t key_len, const void *value, size_t value_len,
                void *msg_opaque);

/* kfk_produce() of a value without key that is not copied: it must stay as it is
 * until its delivery report has been served (or its purge reported). Saves
 * librdkafka a copy and an allocation twice the size per record. */
int kfk_produce_borrowed(struct kfk *k, const void *value, size_t value_len, void *msg_opaque);

/* Hands the gathered messages to librdkafka. Returns 0, -ENOBUFS (some wait for
 * room in its queue; kfk_serve() hands them over later), -ENOTRECOVERABLE, -EIO. */
int kfk_flush_pending(struct kfk *k);

struct kfk_header {
        const char *name; /* NUL-terminated */
        const void *value;
        size_t value_len;
};

/* kfk_produce() with record headers (copied). Same returns, and -ENOMEM. */
int kfk_produce_hdrs(struct kfk *k, const void *key, size_t key_len, const void *value,
                     size_t value_len, const struct kfk_header *hdrs, size_t n_hdrs,
                     void *msg_opaque);

/* Exactly-once (KIP-618 style): a record of the offsets topic (value NULL: a
 * tombstone), in the same transaction as the data. Same returns as kfk_produce(). */
int kfk_produce_offset(struct kfk *k, const void *key, size_t key_len, const void *value,
                       size_t value_len);

/* Transactions of a producer made with a transactional_id. Blocking (up to
 * timeout_ms). Each returns 0, -ECANCELED (the transaction could not commit and was
 * aborted: its records are not visible to read_committed consumers), -EPERM (fatal:
 * fenced by another producer with the same transactional.id, or otherwise unusable),
 * or -EIO/-EAGAIN; errbuf says why. init also fences older producers of the id and
 * aborts the transaction they left open. */
int kfk_txn_init(struct kfk *k, int timeout_ms, char *errbuf, size_t errlen);
int kfk_txn_begin(struct kfk *k, char *errbuf, size_t errlen);
int kfk_txn_commit(struct kfk *k, int timeout_ms, char *errbuf, size_t errlen);
int kfk_txn_abort(struct kfk *k, int timeout_ms, char *errbuf, size_t errlen);

struct kfk_offsets_conf {
        const char *bootstrap;
        const char *client_id;
        const struct props *worker; /* consumer.* keys */
        const char *topic;
        int partitions;
        int replication_factor; /* -1: the broker's default */
};

typedef void (*kfk_record_cb_t)(void *userdata, const void *key, size_t key_len, const void *value,
                                size_t value_len);

/* Creates the offsets topic (compacted) if missing, then reads every committed record
 * of it (read_committed, from the start of each partition to its last stable offset)
 * and calls cb for each, in order within a partition. Blocking. Returns 0, -EINVAL,
 * -EIO, -ETIMEDOUT (errbuf says why). */
int kfk_offsets_read(const struct kfk_offsets_conf *c, kfk_record_cb_t cb, void *userdata,
                     char *errbuf, size_t errlen);

/* Text of the last kfk_produce() failure. */
const char *kfk_last_error(const struct kfk *k);

/* Messages produced and not yet reported. */
size_t kfk_in_flight(const struct kfk *k);

/* Waits up to timeout_ms for every message to be reported (callbacks run). Returns
 * 0 or -ETIMEDOUT. */
int kfk_flush(struct kfk *k, int timeout_ms);

/* Fails every message still queued or in flight (their reports come with an error
 * for which kfk_err_is_purge() is true) and runs the callbacks. */
void kfk_purge(struct kfk *k);

bool kfk_err_is_purge(int err);

/* Recovery from fatal errors (idempotent producers; see kfk.c's kfk_rebuild()). */
struct kfk_stats {
        uint64_t rebuilds;         /* new producers made after a fatal error */
        uint64_t resent;           /* records they took over */
        uint64_t possibly_written; /* of those, records the failed producer may have written */
};

void kfk_stats(const struct kfk *k, struct kfk_stats *ret_stats);

/* NULL is a no-op. Messages still queued are dropped without reports. */
void kfk_free(struct kfk *k);

/* librdkafka's mock cluster with `brokers` brokers on 127.0.0.1 ephemeral ports, in
 * this process (bootstrap.servers=embedded). Returns 0 or -errno. */
int kfk_mock_new(int brokers, struct kfk_mock **ret_mock);
const char *kfk_mock_bootstraps(const struct kfk_mock *m);
void kfk_mock_free(struct kfk_mock *m);

/* librdkafka's version string. */
const char *kfk_version(void);
