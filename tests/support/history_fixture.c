#include <errno.h>
#include <time.h>

#include "fc_test.h"
#include "history_fixture.h"

#ifndef FLOWCORE_SOURCE_DIR
#error "history_fixture.c needs FLOWCORE_SOURCE_DIR"
#endif

void fc_test_sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

void fc_test_make_db(fc_test_pg_t *pg, const char *name, char *out, size_t size) {
  fc_migrate_report_t rep;
  fc_error_t err;
  int rc;
  fc_error_clear(&err);
  assert_int_equal(fc_test_pg_create_db(pg, name, out, size), 0);
  rc = fc_migrate_run(out, FLOWCORE_SOURCE_DIR "/migrations", &rep, &err);
  fc_migrate_report_free(&rep);
  if (rc != 0)
    fail_msg("migrations failed: %s (%s)", err.text, fc_strerror(rc));
}

fc_history_writer_t *fc_test_writer_new(const fc_history_config_t *cfg) {
  fc_history_writer_t *w = NULL;
  fc_error_t err;
  int rc;
  fc_error_clear(&err);
  rc = fc_history_writer_new(&w, cfg, &err);
  if (rc != 0)
    fail_msg("fc_history_writer_new: %s", err.text);
  return w;
}

int fc_test_wait_connected(fc_history_writer_t *w, int n, int timeout_ms) {
  uint64_t end = uv_hrtime() + (uint64_t)timeout_ms * 1000000ULL;
  fc_history_stats_t st;
  do {
    fc_history_writer_stats(w, &st);
    if (st.connected >= n)
      return 0;
    fc_test_sleep_ms(5);
  } while (uv_hrtime() < end);
  return -1;
}
