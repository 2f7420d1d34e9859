/* SPDX-License-Identifier: Apache-2.0 */
/*
 * log: the process's one logger. Only agent/ logs; the other modules return errors
 * and their caller logs once (STYLE.md "Logging").
 *
 * Lines go to stderr, one write(2) each so lines from librdkafka's threads never
 * interleave. Under systemd (JOURNAL_STREAM set) a line is "<N>text" with N the
 * syslog priority, which journald turns into the entry's priority; otherwise it is
 * "YYYY-mm-ddTHH:MM:SS.mmmZ LEVEL text". The macros test the level before the
 * arguments are evaluated. Thread-safe.
 */
#pragma once

#include <stdbool.h>

/* Values are syslog priorities (journald's "<N>" prefix). */
enum log_level {
        LOG_LVL_ERROR = 3,
        LOG_LVL_WARN = 4,
        LOG_LVL_NOTICE = 5,
        LOG_LVL_INFO = 6,
        LOG_LVL_DEBUG = 7,
};

extern enum log_level log_max_level;

/* Parses "error|warn|notice|info|debug". Returns 0 or -EINVAL. */
int log_level_from_string(const char *s, enum log_level *ret_level);

void log_internal(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_at(lvl, ...)                                                                           \
        do {                                                                                       \
                if ((lvl) <= log_max_level)                                                        \
                        log_internal((lvl), __VA_ARGS__);                                          \
        } while (0)

#define log_error(...)  log_at(LOG_LVL_ERROR, __VA_ARGS__)
#define log_warn(...)   log_at(LOG_LVL_WARN, __VA_ARGS__)
#define log_notice(...) log_at(LOG_LVL_NOTICE, __VA_ARGS__)
#define log_info(...)   log_at(LOG_LVL_INFO, __VA_ARGS__)
#define log_debug(...)  log_at(LOG_LVL_DEBUG, __VA_ARGS__)
