/* SPDX-License-Identifier: Apache-2.0 */
/*
 * rbuf: see rbuf.h. Hand-written: a counter, a flexible array and a list of spares,
 * nothing a library would add to.
 *
 * Buffers are mapped on their own rather than taken from malloc(): at full speed one
 * is retired every MiB read, and in the heap the freed 1.14 MiB chunks are carved up
 * by librdkafka's small allocations, so the next buffer grows the heap (1 GiB json
 * corpus, 3 runs: peak RSS 58-59 MiB mapped, 60-62 from the heap, same CPU). Freed
 * buffers are kept for reuse (see RBUF_SPARES_MAX), so they are not faulted in again.
 */
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "io/rbuf.h"

struct rbuf {
        uint32_t refs;
        bool retired; /* its owner let go: counted in retired_bytes and acct */
        struct rbuf_acct *acct;
        size_t cap;
        size_t map_len;
        struct rbuf *next_spare;
        char data[];
};

static size_t retired_bytes;
static struct rbuf *spares; /* the most recently freed first */
static unsigned n_spares;
static bool taken_since_trim;
/* Not compared as macros: 0 under the sanitizers would make "n < 0" warnings. */
static const unsigned spares_max = RBUF_SPARES_MAX, spares_idle = RBUF_SPARES_IDLE;

struct rbuf *rbuf_new(size_t cap, struct rbuf_acct *acct)
{
        if (cap > SIZE_MAX / 2)
                return NULL;
        taken_since_trim = true;
        struct rbuf **pp = &spares;
        for (; *pp; pp = &(*pp)->next_spare) {
                if ((*pp)->cap == cap) {
                        struct rbuf *b = *pp;
                        *pp = b->next_spare;
                        n_spares--;
                        b->refs = 1;
                        b->retired = false;
                        b->acct = acct;
                        return b;
                }
        }
        size_t len = sizeof(struct rbuf) + cap;
        void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED)
                return NULL;
        struct rbuf *b = p;
        b->refs = 1;
        b->retired = false;
        b->acct = acct;
        b->cap = cap;
        b->map_len = len;
        b->next_spare = NULL;
        return b;
}

char *rbuf_data(struct rbuf *b)
{
        return b->data;
}

void rbuf_get(struct rbuf *b)
{
        b->refs++;
}

void rbuf_put(struct rbuf *b)
{
        if (!b || --b->refs > 0)
                return;
        if (b->retired) {
                retired_bytes -= b->cap;
                if (b->acct)
                        b->acct->retired -= b->cap;
        }
        if (n_spares < spares_max) {
                b->next_spare = spares;
                spares = b;
                n_spares++;
                return;
        }
        munmap(b, b->map_len);
}

bool rbuf_shared(const struct rbuf *b)
{
        return b->refs > 1;
}

size_t rbuf_retired_bytes(void)
{
        return retired_bytes;
}

void rbuf_trim_idle(void)
{
        if (taken_since_trim) {
                taken_since_trim = false;
                return;
        }
        if (n_spares <= spares_idle)
                return;
        struct rbuf **pp = &spares;
        for (unsigned i = 0; i < spares_idle; i++)
                pp = &(*pp)->next_spare;
        struct rbuf *b = *pp;
        *pp = NULL;
        n_spares = spares_idle;
        while (b) {
                struct rbuf *next = b->next_spare;
                munmap(b, b->map_len);
                b = next;
        }
}

unsigned rbuf_spare_count(void)
{
        return n_spares;
}

void rbuf_retire(struct rbuf *b)
{
        if (!b->retired) {
                b->retired = true;
                retired_bytes += b->cap;
                if (b->acct)
                        b->acct->retired += b->cap;
        }
        rbuf_put(b);
}
