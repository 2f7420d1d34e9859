/* SPDX-License-Identifier: Apache-2.0 */
/*
 * task: a source task, TailSource or FileStreamSource (a TailSource of one literal
 * path with Connect's behaviour). It finds the files its globs match, follows them
 * through every kind of rotation by identity (device + inode + fingerprint), frames
 * their lines (and joins multiline records), hands each record to the converter and
 * the producer, and keeps, per file, the offset up to which every line has been
 * acknowledged by Kafka.
 *
 * Threading: the worker's event loop thread only.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cfg;
struct io_loop;
struct off_store;
struct watch;
struct task;

struct task_env {
        struct io_loop *loop;
        struct watch *watch;
        struct off_store *store;
        const struct cfg *worker;
        const char *bootstrap; /* resolved (embedded: the mock cluster's) */
};

enum task_state {
        TASK_RUNNING,
        TASK_FAILED,
        TASK_STOPPING,
};

/* Builds the task of connector config conn (validated). Returns 0, -EINVAL with
 * errbuf filled (bad globs, bad producer settings, ...), -ENOMEM. env and conn must
 * outlive it. */
int task_new(const struct task_env *env, const struct cfg *conn, char *errbuf, size_t errlen,
             struct task **ret_task);

/* Finishes what the checkpoints say was left unfinished (files rotated while the
 * agent was stopped), finds the files and starts reading. */
void task_start(struct task *t, uint64_t now_ms);

/* Runs what is due at now_ms (rescan, multiline and partial-line timeouts, closing
 * idle files, finishing rotated ones). Returns when it is next due. */
uint64_t task_tick(struct task *t, uint64_t now_ms);

/* Hands the records taken since the last call to the producer (kfk gathers them
 * to hand them over together). The worker calls it after every turn of the loop;
 * the task itself at the end of every read. */
void task_flush(struct task *t);

/* When task_tick() is next due (events may bring it forward). */
uint64_t task_next_due(const struct task *t);

/* Records acknowledged offsets in the store (the caller commits it). Returns the
 * number of files whose offset changed, or -errno. */
int task_checkpoint(struct task *t);

/* Stops reading: no more lines go to Kafka. */
void task_stop(struct task *t);

/* Waits up to timeout_ms for Kafka to acknowledge what was sent, then gives up on
 * the rest (it is not checkpointed, so it is read again after a restart). Returns
 * the number of records given up (0: all acknowledged). No delivery report comes
 * after this. */
size_t task_drain(struct task *t, int timeout_ms);

/* Closes the files and cancels the task's wait on the loop; then the caller runs
 * the loop until io_in_flight() is 0 before task_free(). Records still in flight
 * must have been drained. */
void task_close(struct task *t);

enum task_state task_get_state(const struct task *t);

/* What the REST API and /metrics report of a task. Strings are borrowed until the
 * next call into the task. */
struct task_status {
        enum task_state state;
        const char *failure;        /* TASK_FAILED: why */
        const char *kafka_error;    /* Kafka reported a problem and acknowledged nothing since */
        uint64_t kafka_error_since; /* wall clock, ms since the epoch */
        bool reading_paused;        /* the producer's queue is full (buffer.memory) */
        uint64_t lines_sent, lines_acked, bytes_sent;
        uint64_t split, truncated, skipped, empty_skipped;
        uint64_t files_opened, files_rotated, files_truncated, copies_found, files_finished;
        /* files_truncated counts saved offsets not trusted too (the file read from 0) */
        uint64_t records_in_flight;
        /* read buffers records in flight keep alive (io/rbuf.h), and the bound at
         * which reading waits for acknowledgements */
        uint64_t read_buffer_bytes, read_buffer_limit;
        uint32_t files_tracked, files_open;
        uint64_t transactions_committed, transactions_aborted; /* exactly-once */
        uint64_t producer_rebuilds, records_resent;            /* after fatal producer errors */
};

void task_get_status(const struct task *t, struct task_status *ret_status);
const char *task_name(const struct task *t);

/* NULL is a no-op. See task_close(). */
void task_free(struct task *t);
