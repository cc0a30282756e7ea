#include <errno.h>
#include <stdio.h>
#include <string.h>
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

typedef struct {
  fc_test_hrun_t *out;
  void (*on_end)(void *data);
  void *data;
} hrun_ctx_t;

static void hrun_done(fc_run_t *run, void *arg) {
  hrun_ctx_t *c = arg;
  c->out->t_end_ns = uv_hrtime();
  c->out->status = (int)fc_run_status(run);
  snprintf(c->out->wf_id, sizeof c->out->wf_id, "%s", fc_run_id(run));
  if (c->on_end != NULL)
    c->on_end(c->data);
}

void fc_test_feed_run(fc_handler_t *dbh, fc_workflow_t *wf, const uint8_t uuid[16], int64_t t_us,
                      json_t *in, json_t *out, int ends) {
  fc_event_t ev;
  char idtext[FC_UUID_STRING_LENGTH];
  fc_uuid_format(uuid, idtext);
  memset(&ev, 0, sizeof ev);
  ev.workflow = wf;
  ev.workflow_id = idtext;
  ev.workflow_uuid = uuid;
  ev.workflow_name = fc_workflow_name(wf);
  ev.node_count = 1;
  ev.node_index = -1;
  ev.kind = FC_EVENT_WORKFLOW_START;
  ev.status = FC_WORKFLOW_RUNNING;
  ev.time_us = t_us;
  ev.input = in;
  assert_int_equal(dbh->on_workflow_start(dbh->self, &ev), 0);
  ev.kind = FC_EVENT_NODE_START;
  ev.node_id = "a";
  ev.node_type = "pass";
  ev.node_index = 0;
  ev.attempt = 1;
  ev.time_us = t_us + 10;
  assert_int_equal(dbh->on_node_start(dbh->self, &ev), 0);
  if (!ends)
    return;
  ev.kind = FC_EVENT_NODE_END;
  ev.status = FC_NODE_COMPLETED;
  ev.time_us = t_us + 30;
  ev.started_at_us = t_us + 10;
  ev.duration_us = 20;
  ev.input = NULL;
  ev.output = out;
  assert_int_equal(dbh->on_node_end(dbh->self, &ev), 0);
  ev.kind = FC_EVENT_WORKFLOW_END;
  ev.node_id = NULL;
  ev.node_type = NULL;
  ev.node_index = -1;
  ev.attempt = 0;
  ev.status = FC_WORKFLOW_COMPLETED;
  ev.time_us = t_us + 40;
  ev.started_at_us = t_us;
  ev.duration_us = 40; /* the run's output: out as well */
  assert_int_equal(dbh->on_workflow_end(dbh->self, &ev), 0);
}

void fc_test_run_with_history(fc_workflow_t *wf, fc_history_writer_t *w, json_t *input,
                              fc_test_hrun_t *out, void (*on_end)(void *data), void *data) {
  hrun_ctx_t c = {out, on_end, data};
  uv_loop_t loop;
  fc_manager_t *m = NULL;
  fc_handler_t h;
  fc_run_t *run = NULL;
  fc_error_t err;
  int hid = -1, rc;

  memset(out, 0, sizeof *out);
  fc_error_clear(&err);
  rc = uv_loop_init(&loop);
  if (rc != 0) {
    out->rc = rc;
    return;
  }
  rc = fc_manager_new(&m);
  if (rc == 0)
    rc = fc_history_handler(w, &loop, &h);
  if (rc == 0)
    rc = fc_manager_add(m, &h, 0, &hid);
  if (rc == 0)
    rc = fc_run_new(&run, &loop, wf, m, &err);
  if (rc == 0) {
    out->t_start_ns = uv_hrtime();
    rc = fc_run_start(run, input, hrun_done, &c);
  }
  if (rc == 0)
    uv_run(&loop, UV_RUN_DEFAULT);
  out->rc = rc;
  if (run != NULL)
    fc_run_close(run, NULL, NULL);
  if (hid >= 0)
    fc_manager_remove(m, hid);
  uv_run(&loop, UV_RUN_DEFAULT);
  fc_manager_free(m);
  fc_test_loop_close(&loop);
}
