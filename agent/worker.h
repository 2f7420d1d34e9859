/* SPDX-License-Identifier: Apache-2.0 */
/*
 * worker: the standalone worker (connect-standalone.sh): loads the worker config
 * and the connector configs, runs every connector's task on one event loop, writes
 * checkpoints, and shuts down cleanly on SIGTERM/SIGINT.
 */
#pragma once

#include <stdbool.h>

/* Exit statuses (DESIGN.md). */
enum {
        WORKER_EXIT_OK = 0,
        WORKER_EXIT_RUNTIME = 1,
        WORKER_EXIT_USAGE = 2,
};

/* Runs until a signal or until every task has failed. Returns a WORKER_EXIT_*. */
int worker_standalone(const char *worker_path, char *const *connector_paths, int n_connectors);

/* Loads and checks the files (a worker file first if worker_first, then connector
 * files), printing every problem on stdout, and with describe the keys and defaults.
 * Returns WORKER_EXIT_OK or WORKER_EXIT_USAGE. */
int worker_validate(char *const *paths, int n, bool worker_first);

/* Prints every definition (key, type, default, doc) on stdout. */
void worker_describe(void);
