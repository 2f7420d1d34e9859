/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ringtail's command line: parses the global options and the command, and hands
 * over to the worker. Exit status: 0 ok, 1 runtime failure, 2 usage or
 * configuration error.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <malloc.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/kfk.h"
#include "agent/log.h"
#include "agent/worker.h"
#include "offsets/off.h"

static const char usage[] =
        "Usage: ringtail [OPTIONS] COMMAND [ARGS...]\n"
        "\n"
        "Ships log files into Apache Kafka with Kafka Connect's configuration files.\n"
        "\n"
        "Commands:\n"
        "  standalone WORKER.properties CONNECTOR.properties...\n"
        "        Run the connectors, as connect-standalone.sh does: FileStreamSource\n"
        "        (connector.class=FileStreamSource, one file) or TailSource (globs, rotation,\n"
        "        multiline). bootstrap.servers=embedded starts an in-process mock Kafka\n"
        "        cluster and prints its address on stderr. exactly.once.source.support=enabled\n"
        "        in the worker file turns on Kafka transactions. The REST API (Connect's\n"
        "        read endpoints, /metrics, /health) listens on `listeners` (default\n"
        "        http://127.0.0.1:8083; empty: off).\n"
        "  validate WORKER.properties [CONNECTOR.properties...]\n"
        "        Check the files and print every problem; exit 0 if they are valid.\n"
        "  validate --describe\n"
        "        Print every key with its type, default and meaning.\n"
        "  offsets show FILE\n"
        "        Print the checkpoints in FILE (offset.storage.file.filename), one JSON\n"
        "        object per file read.\n"
        "\n"
        "Options:\n"
        "  -l, --log-level LEVEL  error, warn, notice, info (default) or debug\n"
        "  -h, --help             show this help and exit\n"
        "  -V, --version          show the version and exit\n"
        "\n"
        "Exit status: 0 ok, 1 runtime failure, 2 usage or configuration error.\n"
        "SIGTERM or SIGINT: stop reading, wait up to task.shutdown.graceful.timeout.ms for\n"
        "Kafka's acknowledgements, write the final checkpoint, exit.\n";

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int usage_error(const char *fmt, ...)
{
        va_list ap;
        fprintf(stderr, "ringtail: ");
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fprintf(stderr, "\nTry 'ringtail --help'.\n");
        return WORKER_EXIT_USAGE;
}

/* Prints a JSON string (the path may hold any byte but NUL). */
static void print_json_string(const char *s)
{
        putchar('"');
        for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
                if (*p == '"' || *p == '\\')
                        printf("\\%c", *p);
                else if (*p < 0x20)
                        printf("\\u%04X", *p);
                else
                        putchar(*p);
        }
        putchar('"');
}

static int offsets_show(const char *path)
{
        struct off_store *s;
        struct off_error oe = {0};
        int r = off_store_open(path, &s, &oe);
        if (r < 0) {
                if (r == -EBADMSG || r == -ENOTSUP)
                        fprintf(stderr, "ringtail: '%s': %s (at byte %" PRIu64 ")\n", path, oe.msg,
                                oe.pos);
                else
                        fprintf(stderr, "ringtail: '%s': %s\n", path, strerror(-r));
                return WORKER_EXIT_RUNTIME;
        }
        for (size_t i = 0; i < off_count(s); i++) {
                const char *source;
                struct off_rec rec;
                if (off_at(s, i, &source, &rec) < 0)
                        continue;
                printf("{\"connector\":");
                print_json_string(source);
                printf(",\"path\":");
                print_json_string(rec.path);
                printf(",\"offset\":%" PRIu64 ",\"dev\":%" PRIu64 ",\"ino\":%" PRIu64
                       ",\"fingerprint_bytes\":%" PRIu32 ",\"fingerprint\":\"%016" PRIx64 "\"}\n",
                       rec.offset, rec.dev, rec.ino, rec.fp_len, rec.fp);
        }
        off_store_free(s);
        return WORKER_EXIT_OK;
}

/* librdkafka allocates 1-3 MB per batch on its broker threads (zstd's context and
 * output, the request buffer). glibc serves those with mmap() or trims them off an
 * arena's top when freed, so every batch faulted its pages in again: ~110,000 minor
 * faults per GiB shipped, ~4 % of ringtail's CPU (1 GiB java corpus, 2 producers, 3
 * runs each: 5.60 -> 5.37 CPU-s/GiB, 10,000 faults, peak RSS +1 MiB). Fixed
 * thresholds keep them on the heap. The mmap threshold is glibc's own largest (the
 * one its dynamic threshold stops at on 64-bit): librdkafka makes a new zstd context
 * per batch, 1.3 MiB at level 1 but 5.7 MiB at level 5 and 16.7 at level 9, and with
 * 4 MiB those were mapped and faulted in for every batch (200 MB access corpus, 3
 * runs: level 5 10.44 -> 8.81 CPU-s/GiB, level 9 21.6 -> 15.8, 260,000-870,000 ->
 * 14,000-19,000 minor faults, peak RSS +2-3 MiB; level 1 unchanged). Left alone when
 * the operator tunes malloc with GLIBC_TUNABLES. */
static void malloc_tune(void)
{
        const char *t = getenv("GLIBC_TUNABLES");
        if (t && strstr(t, "glibc.malloc."))
                return;
        mallopt(M_MMAP_THRESHOLD, 32 << 20);
        mallopt(M_TRIM_THRESHOLD, 32 << 20);
}

int main(int argc, char **argv)
{
        static const struct option opts[] = {
                {"help", no_argument, NULL, 'h'},
                {"version", no_argument, NULL, 'V'},
                {"log-level", required_argument, NULL, 'l'},
                {"describe", no_argument, NULL, 'D'},
                {0},
        };
        bool describe = false;
        int c;

        malloc_tune();

        /* Options may come before or after the command (GNU getopt permutes). */
        while ((c = getopt_long(argc, argv, "hVl:", opts, NULL)) != -1) {
                switch (c) {
                case 'h':
                        fputs(usage, stdout);
                        return WORKER_EXIT_OK;
                case 'V':
                        printf("ringtail %s (librdkafka %s)\n", RINGTAIL_VERSION, kfk_version());
                        return WORKER_EXIT_OK;
                case 'l':
                        if (log_level_from_string(optarg, &log_max_level) < 0)
                                return usage_error("--log-level '%s': expected error, warn, "
                                                   "notice, info or debug",
                                                   optarg);
                        break;
                case 'D':
                        describe = true;
                        break;
                default:
                        return usage_error("bad option");
                }
        }
        if (optind >= argc)
                return usage_error("a command is required");

        const char *cmd = argv[optind];
        char **args = argv + optind + 1;
        int nargs = argc - optind - 1;

        if (strcmp(cmd, "standalone") == 0) {
                if (nargs < 2)
                        return usage_error("standalone needs WORKER.properties and at least one "
                                           "CONNECTOR.properties");
                return worker_standalone(args[0], args + 1, nargs - 1);
        }
        if (strcmp(cmd, "validate") == 0) {
                if (describe) {
                        worker_describe();
                        return WORKER_EXIT_OK;
                }
                if (nargs < 1)
                        return usage_error("validate needs WORKER.properties");
                return worker_validate(args, nargs, true);
        }
        if (strcmp(cmd, "offsets") == 0) {
                if (nargs != 2 || strcmp(args[0], "show") != 0)
                        return usage_error("usage: ringtail offsets show FILE");
                return offsets_show(args[1]);
        }
        return usage_error("unknown command '%s'", cmd);
}
