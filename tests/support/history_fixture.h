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

/* What fc_test_run_with_history saw of a run. */
typedef struct {
  int rc;     /* 0, or the code of the first step that failed */
  int status; /* fc_workflow_status_t at the end */
  char wf_id[FC_UUID_STRING_LENGTH];
  uint64_t t_start_ns; /* uv_hrtime() just before fc_run_start */
  uint64_t t_end_ns;   /* uv_hrtime() in the run's done callback */
} fc_test_hrun_t;

/* Runs wf (borrowed) to its end on a private loop with w's database handler
 * attached, then closes the run, removes the handler and closes the loop.
 * input is borrowed (may be NULL). on_end (may be NULL) is called with
 * data from the run's done callback, after *out is filled. Asserts nothing,
 * so a fault thread waiting on the run is never left hanging: check
 * out->rc. */
void fc_test_run_with_history(fc_workflow_t *wf, fc_history_writer_t *w, json_t *input,
                              fc_test_hrun_t *out, void (*on_end)(void *data), void *data);

/* Feeds the database handler dbh, as the engine would, one run of wf
 * (validated, whose only node is "a", of type pass) under the id uuid:
 * the workflow start at t_us with input in, the node start at t_us + 10
 * and, when `ends` is set, the node end (completed at t_us + 30 with
 * output out) and the workflow end (t_us + 40, output out too, which
 * hands the block over to the writer). Asserts that every callback
 * returns 0. */
void fc_test_feed_run(fc_handler_t *dbh, fc_workflow_t *wf, const uint8_t uuid[16], int64_t t_us,
                      json_t *in, json_t *out, int ends);

#endif
