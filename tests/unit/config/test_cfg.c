/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for config/cfg: the `listeners` parser (cfg_parse_listener) and the
 * worker key that uses it (default, empty value, bad values named in the error).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config/cfg.h"
#include "config/props.h"

static int parse(const char *v, char *host, unsigned *port, char *why)
{
        *port = 99999;
        host[0] = '\0';
        why[0] = '\0';
        return cfg_parse_listener(v, host, 256, port, why, 256);
}

static void test_listener_good(void **state)
{
        (void)state;
        char host[256], why[256];
        unsigned port;
        static const struct {
                const char *in, *host;
                unsigned port;
        } good[] = {
                {"http://127.0.0.1:8083", "127.0.0.1", 8083},
                {"HTTP://localhost:1", "localhost", 1},
                {"http://:8083", "", 8083},
                {"http://0.0.0.0:0", "0.0.0.0", 0},
                {"http://[::1]:65535", "::1", 65535},
                {"http://[::]:8083/", "::", 8083},
                {"  http://127.0.0.1:8083", "127.0.0.1", 8083},
        };
        for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
                assert_int_equal(parse(good[i].in, host, &port, why), 1);
                assert_string_equal(host, good[i].host);
                assert_int_equal(port, good[i].port);
        }
        assert_int_equal(parse("", host, &port, why), 0);
        assert_int_equal(parse(" \t", host, &port, why), 0);
}

static void test_listener_bad(void **state)
{
        (void)state;
        char host[256], why[256];
        unsigned port;
        static const struct {
                const char *in, *why;
        } bad[] = {
                {"https://127.0.0.1:8443", "https is not supported"},
                {"http://a:1,http://b:2", "one listener only"},
                {"127.0.0.1:8083", "expected http://HOST:PORT"},
                {"http://127.0.0.1", "no port"},
                {"http://127.0.0.1:", "bad port ''"},
                {"http://127.0.0.1:65536", "bad port '65536'"},
                {"http://127.0.0.1:-1", "bad port '-1'"},
                {"http://127.0.0.1:+1", "bad port '+1'"},
                {"http://127.0.0.1:80x", "bad port '80x'"},
                {"http://127.0.0.1:99999999999999999999", "bad port"},
                {"http://[::1:8083", "expected http://[IPv6]:PORT"},
                {"http://[::1]8083", "expected http://[IPv6]:PORT"},
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                assert_int_equal(parse(bad[i].in, host, &port, why), -EINVAL);
                if (!strstr(why, bad[i].why))
                        fail_msg("'%s': '%s' does not say '%s'", bad[i].in, why, bad[i].why);
        }
        char longhost[400] = "http://";
        memset(longhost + 7, 'h', 300);
        strcpy(longhost + 307, ":1");
        assert_int_equal(parse(longhost, host, &port, why), -EINVAL);
        assert_non_null(strstr(why, "too long"));
}

#define W                                                                                          \
        "offset.storage.file.filename=/"                                                           \
        "x\nkey.converter=StringConverter\nvalue.converter=StringConverter\n"

struct reports {
        int errors;
        char last[512];
};

static void report(void *userdata, enum cfg_severity sev, const char *msg)
{
        struct reports *r = userdata;
        if (sev == CFG_ERROR) {
                r->errors++;
                snprintf(r->last, sizeof(r->last), "%s", msg);
        }
}

static int worker_with(const char *text, struct reports *r, struct cfg **ret)
{
        struct props *p;
        assert_int_equal(props_parse(text, strlen(text), &p, NULL), 0);
        memset(r, 0, sizeof(*r));
        int rc = cfg_new(CFG_WORKER_STANDALONE, p, "w.properties", report, r, ret);
        if (rc < 0)
                props_free(p);
        return rc;
}

static void test_listeners_key(void **state)
{
        (void)state;
        struct reports r;
        struct cfg *c;
        assert_int_equal(worker_with(W, &r, &c), 0);
        assert_string_equal(cfg_str(c, "listeners"), "http://127.0.0.1:8083");
        props_free((struct props *)cfg_props(c));
        cfg_free(c);

        assert_int_equal(worker_with(W "listeners=\n", &r, &c), 0);
        assert_string_equal(cfg_str(c, "listeners"), "");
        props_free((struct props *)cfg_props(c));
        cfg_free(c);

        assert_int_equal(worker_with(W "listeners=https://h:1\n", &r, &c), -EINVAL);
        assert_int_equal(r.errors, 1);
        assert_non_null(strstr(r.last, "listeners='https://h:1' is not valid"));
        assert_non_null(strstr(r.last, "https is not supported"));
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_listener_good),
                cmocka_unit_test(test_listener_bad),
                cmocka_unit_test(test_listeners_key),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
