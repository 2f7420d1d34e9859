/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ack: per-file acknowledgement tracking, which decides how far a file's checkpoint
 * may go.
 *
 * Records are produced in file order and grouped into batches (a read's lines, at
 * most batch.size of them). The open batch collects records; sealing it fixes its
 * end and the file identity there (struct tail_ckpt) and queues it. Delivery reports
 * come back in any order across partitions; the position moves to the end of a
 * batch only when it and every batch before it are fully acknowledged: the end of
 * the longest run of acknowledged lines with no gap before it. A failed record stops
 * the position before its batch for good. Work is per batch, not per record.
 *
 *     ack_open() -> produce(opaque = batch) -> ack_record(end)   (per record)
 *     ack_skip(end)                              (a line that needs no record)
 *     ack_end() -> fill identity -> ack_seal()   (per read; an empty batch is dropped)
 *     ack_done(batch, ok)                        (per delivery report)
 *
 * Threading: one thread (the event loop's).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "io/tail.h"

struct ack;
struct ack_batch;

/* start: the position to begin from (the checkpoint the file was resumed at). */
int ack_new(const struct tail_ckpt *start, void *userdata, struct ack **ret_ack);

/* The open batch, created if needed: the opaque for the next record. NULL: -ENOMEM. */
struct ack_batch *ack_open(struct ack *a);

/* A record ending at file offset end was produced into the open batch. */
void ack_record(struct ack *a, uint64_t end);

/* The open batch's records point into buf: it holds a reference until every record
 * of the batch is reported (or the batch is dropped or freed). One buffer per batch:
 * an open batch that holds another one must be sealed first. */
struct rbuf;
void ack_hold(struct ack *a, struct rbuf *buf);
/* The open batch's buffer, or NULL. */
struct rbuf *ack_held(const struct ack *a);
/* A line ending at end needs no record (skipped by policy): the open batch covers it. */
void ack_skip(struct ack *a, uint64_t end);

/* True and *ret_end if the open batch has something to seal. */
bool ack_end(const struct ack *a, uint64_t *ret_end);

/* Seals the open batch with pos (pos->offset is its end, as ack_end() said; pos may
 * be NULL for an empty one, which is dropped). Returns true if the position moved. */
bool ack_seal(struct ack *a, const struct tail_ckpt *pos);

/* A delivery report for a record of batch b. Returns true if the position moved. */
bool ack_done(struct ack_batch *b, bool ok);

/* The tracker a batch belongs to, and that tracker's userdata. */
struct ack *ack_of(const struct ack_batch *b);
void *ack_userdata(const struct ack *a);

/* Everything before position->offset is acknowledged. */
const struct tail_ckpt *ack_position(const struct ack *a);

/* The end of the last sealed batch (the position if none is queued): where the
 * file has been read and sent up to, with its identity there. */
const struct tail_ckpt *ack_last_sealed(const struct ack *a);

/* Records produced and not yet reported. */
size_t ack_in_flight(const struct ack *a);

/* A record failed: the position will not move again. */
bool ack_failed(const struct ack *a);

/* True when nothing is open, queued or in flight. */
bool ack_is_idle(const struct ack *a);

/* NULL is a no-op. Records still in flight must have been reported (or purged). */
void ack_free(struct ack *a);
