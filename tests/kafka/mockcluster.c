/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mockcluster: librdkafka's mock cluster in a process of its own, driven line by line
 * from standard input, so that an integration test can inject faults while ringtail
 * runs against it.
 *
 *   mockcluster [-b BROKERS] [-p PARTITIONS -t TOPIC]...
 *
 * The cluster is hosted by a producer handle that is never used otherwise (as
 * agent/kfk.c's kfk_mock_new() does); -t creates TOPIC with the partition count of
 * the last -p before it (default 1), replicated on min(BROKERS, 3) brokers. Once the
 * cluster listens, exactly one line `bootstrap=HOST:PORT[,...]` is written to standard
 * output. Then every command line read from standard input gets exactly one answer
 * line, `ok` or `error: WHY`:
 *
 *   down BROKER_ID                    disconnect the broker, refuse connections (-1: all)
 *   up BROKER_ID                      accept connections again (-1: all)
 *   rtt BROKER_ID MS                  delay every response of the broker
 *   errors API_KEY CODE [CODE...]     the next requests of API_KEY fail with these codes,
 *                                     one each, in order (cluster-wide)
 *   broker-errors BROKER_ID API_KEY CODE [CODE...]
 *                                     the same on one broker only (these come first)
 *   pending BROKER_ID API_KEY         answers `ok N`: N of the broker's errors are left
 *                                     (cluster-wide ones cannot be counted)
 *   leader TOPIC PARTITION BROKER_ID  move the partition's leader
 *   quit                              exit 0 (so does the end of standard input)
 *
 * API_KEY is a number or a request name (Produce, Metadata, ...); CODE is a number or
 * an error name as librdkafka's rd_kafka_get_err_descs() spells it without the
 * RD_KAFKA_RESP_ERR_ prefix (NOT_ENOUGH_REPLICAS, _TRANSPORT), or one of the newer
 * protocol names librdkafka 2.0 lacks (NOT_LEADER_OR_FOLLOWER). Answers go to standard
 * output and are flushed at once; librdkafka's own logs go to standard error.
 */
#include <errno.h>
#include <getopt.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MOCK_MAX_WORDS 256 /* in one command line */

static const struct {
        const char *name;
        int16_t key;
} api_keys[] = {
        {"Produce", 0},          {"Fetch", 1},
        {"ListOffsets", 2},      {"Metadata", 3},
        {"OffsetCommit", 8},     {"OffsetFetch", 9},
        {"FindCoordinator", 10}, {"ApiVersions", 18},
        {"InitProducerId", 22},  {"AddPartitionsToTxn", 24},
        {"EndTxn", 26},
};

/* Kafka's current names for codes librdkafka 2.0 still calls by their old ones. */
static const struct {
        const char *name;
        rd_kafka_resp_err_t code;
} err_aliases[] = {
        {"NOT_LEADER_OR_FOLLOWER", RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION},
        {"UNKNOWN_TOPIC_OR_PARTITION", RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART},
};

/* A whole-string base-10 integer in [min, max]. */
static int parse_long(const char *s, long min, long max, long *ret_value)
{
        char *end;
        errno = 0;
        long v = strtol(s, &end, 10);
        if (errno || end == s || *end || v < min || v > max)
                return -EINVAL;
        *ret_value = v;
        return 0;
}

static int parse_api_key(const char *s, int16_t *ret_key)
{
        long v;
        if (parse_long(s, 0, INT16_MAX, &v) == 0) {
                *ret_key = (int16_t)v;
                return 0;
        }
        for (size_t i = 0; i < sizeof(api_keys) / sizeof(api_keys[0]); i++) {
                if (strcasecmp(s, api_keys[i].name) == 0) {
                        *ret_key = api_keys[i].key;
                        return 0;
                }
        }
        return -EINVAL;
}

static int parse_err(const char *s, rd_kafka_resp_err_t *ret_code)
{
        long v;
        if (parse_long(s, INT_MIN, INT_MAX, &v) == 0) {
                *ret_code = (rd_kafka_resp_err_t)v;
                return 0;
        }
        if (strncasecmp(s, "RD_KAFKA_RESP_ERR_", 18) == 0)
                s += 18;
        for (size_t i = 0; i < sizeof(err_aliases) / sizeof(err_aliases[0]); i++) {
                if (strcasecmp(s, err_aliases[i].name) == 0) {
                        *ret_code = err_aliases[i].code;
                        return 0;
                }
        }
        const struct rd_kafka_err_desc *descs;
        size_t n;
        rd_kafka_get_err_descs(&descs, &n);
        for (size_t i = 0; i < n; i++) {
                if (descs[i].name && strcasecmp(s, descs[i].name) == 0) {
                        *ret_code = descs[i].code;
                        return 0;
                }
        }
        return -EINVAL;
}

static int parse_broker(const char *s, int32_t *ret_id)
{
        long v;
        if (parse_long(s, -1, INT32_MAX, &v) < 0)
                return -EINVAL;
        *ret_id = (int32_t)v;
        return 0;
}

/* Parses the codes argv[0..n-1] into codes[]. */
static int parse_errs(int n, char **argv, rd_kafka_resp_err_t *codes, char *why, size_t whylen)
{
        for (int i = 0; i < n; i++) {
                if (parse_err(argv[i], &codes[i]) < 0) {
                        snprintf(why, whylen, "'%s' is not an error code", argv[i]);
                        return -EINVAL;
                }
        }
        return 0;
}

/* Runs one command line (split into argc <= MOCK_MAX_WORDS words). On success answer
 * holds the answer line (`ok` unless the command has something to say); on failure
 * why says what went wrong. Returns 0 or -EINVAL. *ret_quit is set by `quit`. */
static int mock_command(rd_kafka_mock_cluster_t *mc, int argc, char **argv, char *answer,
                        size_t answerlen, char *why, size_t whylen, bool *ret_quit)
{
        rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR, codes[MOCK_MAX_WORDS];
        const char *cmd = argv[0];
        int32_t broker;
        int16_t key;
        long v;

        if (strcmp(cmd, "quit") == 0 && argc == 1) {
                *ret_quit = true;
                return 0;
        } else if ((strcmp(cmd, "down") == 0 || strcmp(cmd, "up") == 0) && argc == 2) {
                if (parse_broker(argv[1], &broker) < 0)
                        goto bad_broker;
                err = cmd[0] == 'd' ? rd_kafka_mock_broker_set_down(mc, broker)
                                    : rd_kafka_mock_broker_set_up(mc, broker);
        } else if (strcmp(cmd, "rtt") == 0 && argc == 3) {
                if (parse_broker(argv[1], &broker) < 0)
                        goto bad_broker;
                if (parse_long(argv[2], 0, INT_MAX, &v) < 0) {
                        snprintf(why, whylen, "'%s' is not a delay in milliseconds", argv[2]);
                        return -EINVAL;
                }
                err = rd_kafka_mock_broker_set_rtt(mc, broker, (int)v);
        } else if (strcmp(cmd, "errors") == 0 && argc >= 3) {
                if (parse_api_key(argv[1], &key) < 0)
                        goto bad_key;
                if (parse_errs(argc - 2, argv + 2, codes, why, whylen) < 0)
                        return -EINVAL;
                rd_kafka_mock_push_request_errors_array(mc, key, (size_t)(argc - 2), codes);
        } else if (strcmp(cmd, "broker-errors") == 0 && argc >= 4) {
                if (parse_broker(argv[1], &broker) < 0)
                        goto bad_broker;
                if (parse_api_key(argv[2], &key) < 0)
                        goto bad_key;
                if (parse_errs(argc - 3, argv + 3, codes, why, whylen) < 0)
                        return -EINVAL;
                /* One push per code: each is appended to the broker's stack, so they
                 * are returned in the order given. */
                for (int i = 0; i < argc - 3 && !err; i++)
                        err = rd_kafka_mock_broker_push_request_error_rtts(mc, broker, key, 1,
                                                                           codes[i], 0);
        } else if (strcmp(cmd, "pending") == 0 && argc == 3) {
                size_t n = 0; /* left as is when the broker has no stack for the key */
                if (parse_broker(argv[1], &broker) < 0)
                        goto bad_broker;
                if (parse_api_key(argv[2], &key) < 0)
                        goto bad_key;
                err = rd_kafka_mock_broker_error_stack_cnt(mc, broker, key, &n);
                if (!err)
                        snprintf(answer, answerlen, "ok %zu", n);
        } else if (strcmp(cmd, "leader") == 0 && argc == 4) {
                if (parse_long(argv[2], 0, INT32_MAX, &v) < 0) {
                        snprintf(why, whylen, "'%s' is not a partition", argv[2]);
                        return -EINVAL;
                }
                if (parse_broker(argv[3], &broker) < 0)
                        goto bad_broker;
                err = rd_kafka_mock_partition_set_leader(mc, argv[1], (int32_t)v, broker);
        } else {
                snprintf(why, whylen,
                         "unknown command or wrong arguments: expected down ID, up ID, rtt ID MS, "
                         "errors API_KEY CODE..., broker-errors ID API_KEY CODE..., "
                         "pending ID API_KEY, leader TOPIC PARTITION ID or quit");
                return -EINVAL;
        }
        if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
                snprintf(why, whylen, "%s: %s", cmd, rd_kafka_err2str(err));
                return -EINVAL;
        }
        return 0;

bad_broker:
        snprintf(why, whylen, "not a broker id (-1 for all)");
        return -EINVAL;
bad_key:
        snprintf(why, whylen, "not an API key (a number or a name such as Produce)");
        return -EINVAL;
}

/* Answers the command lines of stdin until `quit` or the end of input. */
static void mock_serve(rd_kafka_mock_cluster_t *mc)
{
        char line[8192];
        bool quit = false;

        while (!quit && fgets(line, sizeof(line), stdin)) {
                char *argv[MOCK_MAX_WORDS + 1], *save = NULL, why[512], answer[64] = "ok";
                int argc = 0;
                size_t len = strlen(line);
                if (len == sizeof(line) - 1 && line[len - 1] != '\n') {
                        int c;
                        while ((c = getchar()) != EOF && c != '\n')
                                ;
                        printf("error: line too long\n");
                        (void)fflush(stdout);
                        continue;
                }
                for (char *w = strtok_r(line, " \t\r\n", &save); w && argc <= MOCK_MAX_WORDS;
                     w = strtok_r(NULL, " \t\r\n", &save))
                        argv[argc++] = w;
                if (argc > MOCK_MAX_WORDS) {
                        printf("error: more than %d words\n", MOCK_MAX_WORDS);
                        (void)fflush(stdout);
                        continue;
                }
                if (argc == 0)
                        continue;
                int r = mock_command(mc, argc, argv, answer, sizeof(answer), why, sizeof(why),
                                     &quit);
                if (r < 0)
                        printf("error: %s\n", why);
                else
                        printf("%s\n", answer);
                (void)fflush(stdout);
        }
}

int main(int argc, char **argv)
{
        const char *usage = "usage: mockcluster [-b BROKERS] [-p PARTITIONS -t TOPIC]...\n";
        const char **topics = calloc((size_t)argc, sizeof(*topics));
        long *partitions = calloc((size_t)argc, sizeof(*partitions));
        long brokers = 3, parts = 1;
        int n_topics = 0, opt, status = 2;
        rd_kafka_conf_t *rc;
        rd_kafka_t *rk;
        rd_kafka_mock_cluster_t *mc;
        char why[512];

        if (!topics || !partitions) {
                fprintf(stderr, "mockcluster: out of memory\n");
                goto out_free;
        }
        while ((opt = getopt(argc, argv, "b:p:t:")) != -1) {
                switch (opt) {
                case 'b':
                        if (parse_long(optarg, 1, 64, &brokers) < 0) {
                                fprintf(stderr, "mockcluster: -b %s: expected 1..64\n", optarg);
                                goto out_free;
                        }
                        break;
                case 'p':
                        if (parse_long(optarg, 1, 100000, &parts) < 0) {
                                fprintf(stderr, "mockcluster: -p %s: expected 1..100000\n", optarg);
                                goto out_free;
                        }
                        break;
                case 't':
                        topics[n_topics] = optarg;
                        partitions[n_topics++] = parts;
                        break;
                default:
                        fputs(usage, stderr);
                        goto out_free;
                }
        }
        if (optind != argc) {
                fputs(usage, stderr);
                goto out_free;
        }

        status = 1;
        rc = rd_kafka_conf_new();
        if (!rc) {
                fprintf(stderr, "mockcluster: out of memory\n");
                goto out_free;
        }
        /* The hosting handle has no bootstrap.servers: its warning about that is noise. */
        (void)rd_kafka_conf_set(rc, "log_level", "3", why, sizeof(why));
        rk = rd_kafka_new(RD_KAFKA_PRODUCER, rc, why, sizeof(why));
        if (!rk) {
                fprintf(stderr, "mockcluster: cannot create the hosting handle: %s\n", why);
                rd_kafka_conf_destroy(rc);
                goto out_free;
        }
        mc = rd_kafka_mock_cluster_new(rk, (int)brokers);
        if (!mc) {
                fprintf(stderr, "mockcluster: cannot create a cluster of %ld brokers\n", brokers);
                goto out_rk;
        }
        for (int i = 0; i < n_topics; i++) {
                int rf = brokers < 3 ? (int)brokers : 3;
                rd_kafka_resp_err_t err =
                        rd_kafka_mock_topic_create(mc, topics[i], (int)partitions[i], rf);
                if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
                        fprintf(stderr, "mockcluster: topic '%s': %s\n", topics[i],
                                rd_kafka_err2str(err));
                        goto out_mc;
                }
        }
        printf("bootstrap=%s\n", rd_kafka_mock_cluster_bootstraps(mc));
        if (fflush(stdout) != 0) {
                fprintf(stderr, "mockcluster: cannot write to standard output\n");
                goto out_mc;
        }
        mock_serve(mc);
        status = 0;

out_mc:
        rd_kafka_mock_cluster_destroy(mc);
out_rk:
        rd_kafka_destroy(rk);
out_free:
        free(partitions);
        free(topics);
        return status;
}
