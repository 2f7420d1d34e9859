/* SPDX-License-Identifier: Apache-2.0 */
/*
 * readfixed: what io_uring registered (fixed) buffers save on buffered reads.
 *
 * Reads FILE from the page cache through io_uring in CHUNK-byte reads, one at a time,
 * like a tailer catching up: alternately with IORING_OP_READ into a plain buffer and
 * with IORING_OP_READ_FIXED into a registered one, ROUNDS times each, and prints the
 * CPU time (user + sys of this process) of every pass and the medians per GiB. The
 * file is read once before, so every pass finds it cached.
 *
 *   readfixed FILE [CHUNK (default 262144, ringtail's read size)] [ROUNDS (default 5)]
 *
 * The README's "Reads" paragraph quotes its figures. A benchmark, not a test: it
 * asserts nothing.
 */
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#define MAX_ROUNDS 99

static double cpu_seconds(void)
{
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
               (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/* One pass over the file; returns the bytes read, or -1 (message printed). */
static long long pass(struct io_uring *ring, int fd, char *buf, size_t chunk, int fixed)
{
        long long off = 0;
        for (;;) {
                struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
                if (fixed)
                        io_uring_prep_read_fixed(sqe, fd, buf, (unsigned)chunk, (__u64)off, 0);
                else
                        io_uring_prep_read(sqe, fd, buf, (unsigned)chunk, (__u64)off);
                int r = io_uring_submit_and_wait(ring, 1);
                if (r < 0) {
                        fprintf(stderr, "readfixed: io_uring_submit_and_wait: %s\n", strerror(-r));
                        return -1;
                }
                struct io_uring_cqe *cqe;
                r = io_uring_wait_cqe(ring, &cqe);
                if (r < 0) {
                        fprintf(stderr, "readfixed: io_uring_wait_cqe: %s\n", strerror(-r));
                        return -1;
                }
                int res = cqe->res;
                io_uring_cqe_seen(ring, cqe);
                if (res < 0) {
                        fprintf(stderr, "readfixed: read at %lld: %s\n", off, strerror(-res));
                        return -1;
                }
                if (res == 0)
                        return off;
                off += res;
        }
}

static int cmp_double(const void *a, const void *b)
{
        double x = *(const double *)a, y = *(const double *)b;
        return (x > y) - (x < y);
}

static char *map_buffer(size_t len)
{
        char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED)
                return NULL;
        memset(p, 0, len); /* faulted in before the clock starts, as ringtail's are */
        return p;
}

int main(int argc, char **argv)
{
        if (argc < 2 || argc > 4) {
                fprintf(stderr, "usage: readfixed FILE [CHUNK] [ROUNDS]\n");
                return 2;
        }
        char *end;
        size_t chunk = 262144;
        int rounds = 5;
        if (argc > 2) {
                errno = 0;
                unsigned long v = strtoul(argv[2], &end, 10);
                if (errno || *end || v < 4096 || v > (1ul << 30)) {
                        fprintf(stderr, "readfixed: CHUNK must be 4096..1073741824 bytes\n");
                        return 2;
                }
                chunk = v;
        }
        if (argc > 3) {
                errno = 0;
                long v = strtol(argv[3], &end, 10);
                if (errno || *end || v < 1 || v > MAX_ROUNDS) {
                        fprintf(stderr, "readfixed: ROUNDS must be 1..%d\n", MAX_ROUNDS);
                        return 2;
                }
                rounds = (int)v;
        }
        int fd = open(argv[1], O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
                fprintf(stderr, "readfixed: %s: %s\n", argv[1], strerror(errno));
                return 1;
        }
        struct io_uring ring;
        int r = io_uring_queue_init(4, &ring, 0);
        if (r < 0) {
                fprintf(stderr, "readfixed: io_uring_queue_init: %s\n", strerror(-r));
                return 1;
        }
        char *plain = map_buffer(chunk), *reg = map_buffer(chunk);
        if (!plain || !reg) {
                fprintf(stderr, "readfixed: cannot map two %zu-byte buffers\n", chunk);
                return 1;
        }
        struct iovec iov = {.iov_base = reg, .iov_len = chunk};
        r = io_uring_register_buffers(&ring, &iov, 1);
        if (r < 0) {
                fprintf(stderr, "readfixed: io_uring_register_buffers: %s%s\n", strerror(-r),
                        r == -ENOMEM ? " (RLIMIT_MEMLOCK too low for the buffer?)" : "");
                return 1;
        }
        long long size = pass(&ring, fd, plain, chunk, 0); /* into the page cache */
        if (size <= 0) {
                if (size == 0)
                        fprintf(stderr, "readfixed: %s is empty\n", argv[1]);
                return 1;
        }
        double t[2][MAX_ROUNDS];
        for (int i = 0; i < rounds; i++) {
                for (int fixed = 0; fixed < 2; fixed++) {
                        double c0 = cpu_seconds();
                        long long n = pass(&ring, fd, fixed ? reg : plain, chunk, fixed);
                        t[fixed][i] = cpu_seconds() - c0;
                        if (n != size) {
                                fprintf(stderr,
                                        "readfixed: read %lld bytes, not %lld: did %s "
                                        "change?\n",
                                        n, size, argv[1]);
                                return 1;
                        }
                        printf("round %d %-10s %.3f CPU-s\n", i + 1, fixed ? "READ_FIXED" : "READ",
                               t[fixed][i]);
                }
        }
        double gib = (double)size / (double)(1u << 30);
        double med[2];
        for (int fixed = 0; fixed < 2; fixed++) {
                qsort(t[fixed], (size_t)rounds, sizeof(double), cmp_double);
                med[fixed] = t[fixed][rounds / 2] / gib;
        }
        printf("%lld bytes in %zu-byte reads, medians of %d: READ %.3f CPU-s/GiB, "
               "READ_FIXED %.3f CPU-s/GiB (%.2fx)\n",
               size, chunk, rounds, med[0], med[1], med[1] / med[0]);
        io_uring_queue_exit(&ring);
        close(fd);
        return 0;
}
