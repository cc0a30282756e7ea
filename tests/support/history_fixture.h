/* Helpers for the tests of the history writer against a real PostgreSQL
 * (tests/integration/). All fail the current cmocka test on error. */
#ifndef FC_TEST_HISTORY_FIXTURE_H
#define FC_TEST_HISTORY_FIXTURE_H

#include <stddef.h>
#include <stdint.h>

#include "flowcore.h"
#include "pg_server.h"

/* Sleeps ms milliseconds (EINTR-safe). */
void fc_test_sleep_ms(long ms);

/* Creates database `name` on pg's server (dropped first if it exists),
 * applies the migrations of the source tree, and writes its conninfo into
 * out. */
void fc_test_make_db(fc_test_pg_t *pg, const char *name, char *out, size_t size);

/* fc_history_writer_new, failing the test with the error text. */
fc_history_writer_t *fc_test_writer_new(const fc_history_config_t *cfg);

/* Waits until the writer has at least n connections up. Returns 0, or -1
 * after timeout_ms. */
int fc_test_wait_connected(fc_history_writer_t *w, int n, int timeout_ms);

#endif
