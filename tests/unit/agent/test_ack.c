/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests of agent/ack: how far a file's checkpoint may go. The model: the
 * position is the end of the longest run of sealed batches, from the start, whose
 * records were all acknowledged; a failed record stops it for good.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "agent/ack.h"
#include "io/rbuf.h"

static struct tail_ckpt at(uint64_t off)
{
        return (struct tail_ckpt){.offset = off, .fp = off * 31, .fp_len = 7};
}

static void seal(struct ack *a)
{
        uint64_t end;
        assert_true(ack_end(a, &end));
        struct tail_ckpt p = at(end);
        (void)ack_seal(a, &p);
}

static void test_in_order(void **state)
{
        (void)state;
        struct tail_ckpt start = at(100);
        struct ack *a;
        assert_int_equal(ack_new(&start, &start, &a), 0);
        assert_ptr_equal(ack_userdata(a), &start);
        struct ack_batch *b = ack_open(a);
        ack_record(a, 110);
        ack_record(a, 120);
        seal(a);
        assert_int_equal(ack_position(a)->offset, 100);
        assert_int_equal(ack_in_flight(a), 2);
        assert_false(ack_done(b, true));
        assert_true(ack_done(b, true));
        assert_int_equal(ack_position(a)->offset, 120);
        assert_int_equal(ack_position(a)->fp, 120 * 31); /* the identity sealed with it */
        assert_true(ack_is_idle(a));
        ack_free(a);
}

static void test_later_batch_first(void **state)
{
        (void)state;
        struct ack *a;
        assert_int_equal(ack_new(NULL, NULL, &a), 0);
        struct ack_batch *b1 = ack_open(a);
        ack_record(a, 10);
        seal(a);
        struct ack_batch *b2 = ack_open(a);
        ack_record(a, 20);
        seal(a);
        assert_ptr_equal(ack_of(b2), a);
        assert_false(ack_done(b2, true)); /* acknowledged, but b1 is not: no move */
        assert_int_equal(ack_position(a)->offset, 0);
        assert_true(ack_done(b1, true));
        assert_int_equal(ack_position(a)->offset, 20);
        ack_free(a);
}

static void test_reported_before_sealed(void **state)
{
        (void)state;
        struct ack *a;
        assert_int_equal(ack_new(NULL, NULL, &a), 0);
        struct ack_batch *b = ack_open(a);
        ack_record(a, 10);
        assert_false(ack_done(b, true)); /* open batch: its end may still grow */
        assert_int_equal(ack_position(a)->offset, 0);
        ack_record(a, 20);
        assert_false(ack_done(b, true));
        uint64_t end;
        assert_true(ack_end(a, &end));
        assert_int_equal(end, 20);
        struct tail_ckpt p = at(end);
        assert_true(ack_seal(a, &p));
        assert_int_equal(ack_position(a)->offset, 20);
        ack_free(a);
}

/* The first record of a batch refused (queue full): sealing must not move the
 * position anywhere, least of all back to 0. */
static void test_empty_batch_dropped(void **state)
{
        (void)state;
        struct tail_ckpt start = at(500);
        struct ack *a;
        assert_int_equal(ack_new(&start, NULL, &a), 0);
        assert_non_null(ack_open(a));
        uint64_t end;
        assert_false(ack_end(a, &end));
        assert_false(ack_seal(a, NULL));
        assert_int_equal(ack_position(a)->offset, 500);
        assert_true(ack_is_idle(a));
        struct ack_batch *b = ack_open(a);
        ack_record(a, 600);
        seal(a);
        assert_true(ack_done(b, true));
        assert_int_equal(ack_position(a)->offset, 600);
        ack_free(a);
}

static void test_skip_only_batch(void **state)
{
        (void)state;
        struct ack *a;
        assert_int_equal(ack_new(NULL, NULL, &a), 0);
        struct ack_batch *b = ack_open(a);
        ack_record(a, 10);
        seal(a);
        ack_skip(a, 5000); /* an over-long line dropped by policy */
        seal(a);
        assert_int_equal(ack_position(a)->offset, 0);
        assert_true(ack_done(b, true));
        assert_int_equal(ack_position(a)->offset, 5000);
        ack_free(a);
}

static void test_failure_pins_position(void **state)
{
        (void)state;
        struct ack *a;
        assert_int_equal(ack_new(NULL, NULL, &a), 0);
        struct ack_batch *b1 = ack_open(a);
        ack_record(a, 10);
        seal(a);
        struct ack_batch *b2 = ack_open(a);
        ack_record(a, 20);
        ack_record(a, 30);
        seal(a);
        struct ack_batch *b3 = ack_open(a);
        ack_record(a, 40);
        seal(a);
        assert_true(ack_done(b1, true));
        assert_false(ack_done(b2, false));
        assert_true(ack_failed(a));
        assert_false(ack_done(b2, true));
        assert_false(ack_done(b3, true));
        assert_int_equal(ack_position(a)->offset, 10);
        assert_false(ack_is_idle(a));
        ack_free(a);
}

/* A batch whose records point into a read buffer keeps it until every record is
 * reported and the batch is sealed, whatever the outcome, or dropped, or freed. */
static void test_hold_released_when_reported(void **state)
{
        (void)state;
        struct ack *a;
        assert_int_equal(ack_new(NULL, NULL, &a), 0);
        struct rbuf *r = rbuf_new(16, NULL);
        assert_non_null(r);

        struct ack_batch *b = ack_open(a);
        ack_hold(a, r);
        ack_hold(a, r); /* the same buffer again: one reference */
        assert_ptr_equal(ack_held(a), r);
        ack_record(a, 10);
        ack_record(a, 20);
        assert_false(ack_done(b, true)); /* reported while open: still held */
        assert_true(rbuf_shared(r));
        seal(a);
        assert_null(ack_held(a));
        assert_true(rbuf_shared(r)); /* one record in flight */
        assert_true(ack_done(b, true));
        assert_false(rbuf_shared(r));

        b = ack_open(a); /* every record reported before the seal */
        ack_hold(a, r);
        ack_record(a, 30);
        assert_false(ack_done(b, true));
        assert_true(rbuf_shared(r));
        seal(a);
        assert_false(rbuf_shared(r));
        assert_int_equal(ack_position(a)->offset, 30);

        b = ack_open(a); /* a failed record lets go too */
        ack_hold(a, r);
        ack_record(a, 40);
        seal(a);
        assert_false(ack_done(b, false));
        assert_false(rbuf_shared(r));

        (void)ack_open(a); /* an empty batch is dropped */
        ack_hold(a, r);
        assert_true(rbuf_shared(r));
        assert_false(ack_seal(a, NULL));
        assert_false(rbuf_shared(r));

        (void)ack_open(a); /* freed with a record unreported (purged) */
        ack_hold(a, r);
        ack_record(a, 50);
        seal(a);
        (void)ack_open(a);
        ack_hold(a, r);
        assert_true(rbuf_shared(r));
        ack_free(a);
        assert_false(rbuf_shared(r));
        rbuf_put(r);
}

/* Random batch sizes, seals interleaved with reports in random order, against the
 * model, for many seeds. */
static void test_random_orders(void **state)
{
        (void)state;
        enum { BATCHES = 60, MAXREC = 8 };
        for (unsigned seed = 1; seed <= 300; seed++) {
                srand(seed);
                struct ack *a;
                assert_int_equal(ack_new(NULL, NULL, &a), 0);
                struct ack_batch *owner[BATCHES * MAXREC];
                int batch_of[BATCHES * MAXREC];
                uint64_t ends[BATCHES];
                int left[BATCHES];
                bool sealed[BATCHES] = {false};
                int nrec = 0, nb = 0;
                uint64_t off = 0;
                int order[BATCHES * MAXREC];
                int delivered = 0;

                /* Produce and seal everything, delivering a random pending report now
                 * and then; then deliver the rest in random order. */
                int pending[BATCHES * MAXREC], npending = 0;
                for (nb = 0; nb < BATCHES; nb++) {
                        int k = 1 + rand() % MAXREC;
                        left[nb] = k;
                        for (int i = 0; i < k; i++) {
                                struct ack_batch *b = ack_open(a);
                                off += 1 + (uint64_t)(rand() % 100);
                                ack_record(a, off);
                                owner[nrec] = b;
                                batch_of[nrec] = nb;
                                pending[npending++] = nrec++;
                        }
                        ends[nb] = off;
                        while (npending > 0 && rand() % 3 == 0) {
                                int j = rand() % npending;
                                order[delivered++] = pending[j];
                                pending[j] = pending[--npending];
                                int r = order[delivered - 1];
                                (void)ack_done(owner[r], true);
                                left[batch_of[r]]--;
                        }
                        seal(a);
                        sealed[nb] = true;
                        /* Model check after every seal. */
                        uint64_t expect = 0;
                        for (int i = 0; i <= nb && sealed[i] && left[i] == 0; i++)
                                expect = ends[i];
                        assert_int_equal(ack_position(a)->offset, expect);
                }
                while (npending > 0) {
                        int j = rand() % npending;
                        int r = pending[j];
                        pending[j] = pending[--npending];
                        uint64_t before = ack_position(a)->offset;
                        bool moved = ack_done(owner[r], true);
                        left[batch_of[r]]--;
                        uint64_t expect = 0;
                        for (int i = 0; i < BATCHES && left[i] == 0; i++)
                                expect = ends[i];
                        assert_int_equal(ack_position(a)->offset, expect);
                        assert_true(moved == (expect != before));
                        assert_true(ack_position(a)->offset >= before);
                }
                assert_int_equal(ack_position(a)->offset, off);
                assert_true(ack_is_idle(a));
                ack_free(a);
        }
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_in_order),
                cmocka_unit_test(test_later_batch_first),
                cmocka_unit_test(test_reported_before_sealed),
                cmocka_unit_test(test_empty_batch_dropped),
                cmocka_unit_test(test_skip_only_batch),
                cmocka_unit_test(test_failure_pins_position),
                cmocka_unit_test(test_random_orders),
                cmocka_unit_test(test_hold_released_when_reported),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
