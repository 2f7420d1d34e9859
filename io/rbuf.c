/* SPDX-License-Identifier: Apache-2.0 */
/*
 * rbuf: see rbuf.h. Hand-written: a counter and a flexible array, nothing a library
 * would add to.
 */
#include <stdint.h>
#include <stdlib.h>

#include "io/rbuf.h"

struct rbuf {
        uint32_t refs;
        bool retired; /* its owner let go: counted in retired_bytes */
        size_t cap;
        char data[];
};

static size_t retired_bytes;

struct rbuf *rbuf_new(size_t cap)
{
        if (cap > SIZE_MAX - sizeof(struct rbuf))
                return NULL;
        struct rbuf *b = malloc(sizeof(*b) + cap);
        if (!b)
                return NULL;
        b->refs = 1;
        b->retired = false;
        b->cap = cap;
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
        if (b->retired)
                retired_bytes -= b->cap;
        free(b);
}

bool rbuf_shared(const struct rbuf *b)
{
        return b->refs > 1;
}

size_t rbuf_retired_bytes(void)
{
        return retired_bytes;
}

void rbuf_retire(struct rbuf *b)
{
        if (!b->retired) {
                b->retired = true;
                retired_bytes += b->cap;
        }
        rbuf_put(b);
}
