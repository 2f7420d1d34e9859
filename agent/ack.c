/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ack: see ack.h.
 *
 * Sealed batches wait on a FIFO in file order; the open batch is kept apart until it
 * is sealed, so an empty one (its first record refused by a full queue, say) never
 * reaches the FIFO with an end it does not have. Reports for records of the open
 * batch only count down; the position moves in ack_advance(), over the sealed head
 * batches whose records are all reported and none failed.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "agent/ack.h"
#include "io/rbuf.h"

struct ack_batch {
        struct ack_batch *next;
        struct ack *ack;
        struct tail_ckpt pos; /* pos.offset: end of the batch's last line */
        uint32_t pending;     /* records not yet reported */
        uint32_t records;
        bool covers; /* records or skipped lines: something to seal */
        bool failed;
        struct rbuf *hold; /* records point into it: kept until all are reported */
};

struct ack {
        struct ack_batch *head, *tail; /* sealed, in file order */
        struct ack_batch *open;
        struct ack_batch *spare; /* freed batches, for reuse */
        struct tail_ckpt position;
        size_t in_flight;
        bool failed;
        void *userdata;
};

int ack_new(const struct tail_ckpt *start, void *userdata, struct ack **ret_ack)
{
        struct ack *a = calloc(1, sizeof(*a));
        if (!a)
                return -ENOMEM;
        if (start)
                a->position = *start;
        a->userdata = userdata;
        *ret_ack = a;
        return 0;
}

struct ack_batch *ack_open(struct ack *a)
{
        if (a->open)
                return a->open;
        struct ack_batch *b = a->spare;
        if (b)
                a->spare = b->next;
        else
                b = malloc(sizeof(*b));
        if (!b)
                return NULL;
        memset(b, 0, sizeof(*b));
        b->ack = a;
        a->open = b;
        return b;
}

void ack_record(struct ack *a, uint64_t end)
{
        struct ack_batch *b = a->open;
        b->pending++;
        b->records++;
        b->pos.offset = end;
        b->covers = true;
        a->in_flight++;
}

void ack_hold(struct ack *a, struct rbuf *buf)
{
        struct ack_batch *b = a->open;
        if (b->hold == buf)
                return;
        rbuf_put(b->hold);
        rbuf_get(buf);
        b->hold = buf;
}

struct rbuf *ack_held(const struct ack *a)
{
        return a->open ? a->open->hold : NULL;
}

void ack_skip(struct ack *a, uint64_t end)
{
        struct ack_batch *b = ack_open(a);
        if (!b)
                return; /* the skipped line is covered by the next batch's end */
        b->pos.offset = end;
        b->covers = true;
}

bool ack_end(const struct ack *a, uint64_t *ret_end)
{
        if (!a->open || !a->open->covers)
                return false;
        *ret_end = a->open->pos.offset;
        return true;
}

/* Every record of a sealed batch is reported: librdkafka has let go of them. */
static void ack_release(struct ack_batch *b)
{
        rbuf_put(b->hold);
        b->hold = NULL;
}

static void ack_put(struct ack *a, struct ack_batch *b)
{
        ack_release(b);
        b->next = a->spare;
        a->spare = b;
}

static bool ack_advance(struct ack *a)
{
        bool moved = false;
        struct ack_batch *b;
        while ((b = a->head) && b->pending == 0 && !b->failed) {
                a->position = b->pos;
                moved = true;
                a->head = b->next;
                if (!a->head)
                        a->tail = NULL;
                ack_put(a, b);
        }
        return moved;
}

bool ack_seal(struct ack *a, const struct tail_ckpt *pos)
{
        struct ack_batch *b = a->open;
        if (!b)
                return false;
        a->open = NULL;
        if (!b->covers || !pos) {
                ack_put(a, b);
                return false;
        }
        b->pos = *pos;
        b->next = NULL;
        if (b->pending == 0)
                ack_release(b);
        if (a->tail)
                a->tail->next = b;
        else
                a->head = b;
        a->tail = b;
        return ack_advance(a);
}

bool ack_done(struct ack_batch *b, bool ok)
{
        struct ack *a = b->ack;
        b->pending--;
        a->in_flight--;
        if (b->pending == 0 && b != a->open)
                ack_release(b);
        if (!ok) {
                b->failed = true;
                a->failed = true;
                return false;
        }
        /* Only a sealed batch at the head can move the position. */
        return b == a->head && b->pending == 0 && ack_advance(a);
}

struct ack *ack_of(const struct ack_batch *b)
{
        return b->ack;
}

void *ack_userdata(const struct ack *a)
{
        return a->userdata;
}

const struct tail_ckpt *ack_position(const struct ack *a)
{
        return &a->position;
}

const struct tail_ckpt *ack_last_sealed(const struct ack *a)
{
        return a->tail ? &a->tail->pos : &a->position;
}

size_t ack_in_flight(const struct ack *a)
{
        return a->in_flight;
}

bool ack_failed(const struct ack *a)
{
        return a->failed;
}

bool ack_is_idle(const struct ack *a)
{
        return !a->head && (!a->open || !a->open->covers) && a->in_flight == 0;
}

static void ack_free_list(struct ack_batch *b)
{
        while (b) {
                struct ack_batch *next = b->next;
                ack_release(b);
                free(b);
                b = next;
        }
}

void ack_free(struct ack *a)
{
        if (!a)
                return;
        ack_free_list(a->head);
        ack_free_list(a->spare);
        if (a->open)
                ack_release(a->open);
        free(a->open);
        free(a);
}
