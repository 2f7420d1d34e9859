/* SPDX-License-Identifier: Apache-2.0 */
/*
 * log: see log.h. Each line is formatted into a stack buffer and written with a
 * single write(2) to fd 2, which is atomic for pipes up to PIPE_BUF and keeps lines
 * whole for files opened O_APPEND; long messages are cut at 2 KiB with "...".
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "agent/log.h"

enum log_level log_max_level = LOG_LVL_INFO;

static const char *const level_names[] = {
        [LOG_LVL_ERROR] = "ERROR", [LOG_LVL_WARN] = "WARN",   [LOG_LVL_NOTICE] = "NOTICE",
        [LOG_LVL_INFO] = "INFO",   [LOG_LVL_DEBUG] = "DEBUG",
};

int log_level_from_string(const char *s, enum log_level *ret_level)
{
        static const struct {
                const char *name;
                enum log_level level;
        } map[] = {
                {"error", LOG_LVL_ERROR}, {"warn", LOG_LVL_WARN},   {"notice", LOG_LVL_NOTICE},
                {"info", LOG_LVL_INFO},   {"debug", LOG_LVL_DEBUG},
        };
        for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
                if (strcmp(s, map[i].name) == 0) {
                        *ret_level = map[i].level;
                        return 0;
                }
        }
        return -EINVAL;
}

void log_internal(enum log_level level, const char *fmt, ...)
{
        char line[2048];
        const size_t cap = sizeof(line) - 1; /* the last byte is kept for '\n' */
        size_t n;
        int saved_errno = errno;

        if (getenv("JOURNAL_STREAM")) {
                n = (size_t)snprintf(line, cap, "<%d>", (int)level);
        } else {
                struct timespec ts;
                struct tm tm;
                (void)clock_gettime(CLOCK_REALTIME, &ts);
                (void)gmtime_r(&ts.tv_sec, &tm);
                n = strftime(line, cap, "%Y-%m-%dT%H:%M:%S", &tm);
                n += (size_t)snprintf(line + n, cap - n, ".%03ldZ %s ", ts.tv_nsec / 1000000L,
                                      level_names[level]);
        }

        va_list ap;
        va_start(ap, fmt);
        int m = vsnprintf(line + n, cap - n, fmt, ap);
        va_end(ap);
        if (m < 0)
                m = 0;
        if ((size_t)m >= cap - n) {
                n = cap - 1;
                memcpy(line + n - 3, "...", 3);
        } else {
                n += (size_t)m;
        }
        line[n++] = '\n';
        (void)!write(STDERR_FILENO, line, n);
        errno = saved_errno;
}
