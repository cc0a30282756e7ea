/* The history writer's configuration: fc_history_config_init's defaults
 * are the only source of defaults (a field left 0 takes its default from
 * it), and fc_history_writer_new's refusals release what they made (ASan
 * and valgrind find a leak on its unwind path). No server needed. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "fc_test.h"
#include "history/writer_int.h"

/* Field by field (a struct copy need not copy padding). */
static void assert_config_equal(const fc_history_config_t *a, const fc_history_config_t *b) {
  assert_ptr_equal(a->conninfo, b->conninfo);
  assert_ptr_equal(a->spool_dir, b->spool_dir);
  assert_int_equal(a->batch_size, b->batch_size);
  assert_int_equal(a->flush_interval_ms, b->flush_interval_ms);
  assert_int_equal(a->queue_capacity, b->queue_capacity);
  assert_int_equal(a->policy, b->policy);
  assert_int_equal(a->spool_fsync_ms, b->spool_fsync_ms);
  assert_int_equal(a->spool_max_bytes, b->spool_max_bytes);
  assert_int_equal(a->shutdown_deadline_ms, b->shutdown_deadline_ms);
  assert_int_equal(a->connections, b->connections);
  assert_int_equal(a->max_payload_bytes, b->max_payload_bytes);
  assert_int_equal(a->reconnect_min_ms, b->reconnect_min_ms);
  assert_int_equal(a->reconnect_max_ms, b->reconnect_max_ms);
}

static void test_config_init_documented_defaults(void **state) {
  fc_history_config_t cfg;
  (void)state;
  memset(&cfg, 0xff, sizeof cfg);
  fc_history_config_init(&cfg);
  assert_null(cfg.conninfo);
  assert_null(cfg.spool_dir);
  assert_int_equal(cfg.batch_size, 8000);
  assert_int_equal(cfg.flush_interval_ms, 100);
  assert_int_equal(cfg.queue_capacity, 200000);
  assert_int_equal(cfg.policy, FC_QUEUE_BLOCK);
  assert_int_equal(cfg.spool_fsync_ms, 200);
  assert_int_equal(cfg.spool_max_bytes, (uint64_t)1 << 30);
  assert_int_equal(cfg.shutdown_deadline_ms, 10000);
  assert_int_equal(cfg.connections, 2);
  assert_int_equal(cfg.max_payload_bytes, 1024 * 1024);
  assert_int_equal(cfg.reconnect_min_ms, 100);
  assert_int_equal(cfg.reconnect_max_ms, 5000);
}

/* NULL and an all-zero config run with fc_history_config_init's values for
 * the fields where 0 means "default"; fields where 0 has a meaning of its
 * own (no byte cap, no payload limit, no shutdown wait) keep it. */
static void test_resolve_defaults_come_from_config_init(void **state) {
  fc_history_config_t def, zero, out;
  (void)state;
  fc_history_config_init(&def);
  assert_int_equal(fc__history_config_resolve(NULL, &out, NULL), 0);
  assert_config_equal(&out, &def);

  memset(&zero, 0, sizeof zero);
  assert_int_equal(fc__history_config_resolve(&zero, &out, NULL), 0);
  assert_int_equal(out.batch_size, def.batch_size);
  assert_int_equal(out.flush_interval_ms, def.flush_interval_ms);
  assert_int_equal(out.queue_capacity, def.queue_capacity);
  assert_int_equal(out.connections, def.connections);
  assert_int_equal(out.reconnect_min_ms, def.reconnect_min_ms);
  assert_int_equal(out.spool_fsync_ms, def.spool_fsync_ms);
  /* max below min is raised to min */
  assert_int_equal(out.reconnect_max_ms, def.reconnect_min_ms);
  assert_int_equal(out.spool_max_bytes, 0);
  assert_int_equal(out.max_payload_bytes, 0);
  assert_int_equal(out.shutdown_deadline_ms, 0);
}

static void test_resolve_keeps_given_values(void **state) {
  fc_history_config_t cfg, out;
  (void)state;
  fc_history_config_init(&cfg);
  cfg.conninfo = "host=/nonexistent";
  cfg.batch_size = 7;
  cfg.flush_interval_ms = 3;
  cfg.queue_capacity = 11;
  cfg.connections = 16;
  cfg.reconnect_min_ms = 40;
  cfg.reconnect_max_ms = 50;
  cfg.spool_fsync_ms = 9;
  assert_int_equal(fc__history_config_resolve(&cfg, &out, NULL), 0);
  assert_config_equal(&out, &cfg);
  cfg.connections = -3;
  assert_int_equal(fc__history_config_resolve(&cfg, &out, NULL), 0);
  assert_int_equal(out.connections, 2);
}

static void test_writer_new_refuses_too_many_connections(void **state) {
  fc_history_config_t cfg;
  fc_history_writer_t *w = (fc_history_writer_t *)&cfg; /* must be reset */
  fc_error_t err;
  (void)state;
  fc_history_config_init(&cfg);
  cfg.conninfo = "host=/nonexistent";
  cfg.connections = 17;
  fc_error_clear(&err);
  assert_int_equal(fc_history_writer_new(&w, &cfg, &err), FC_EINVAL);
  assert_null(w);
  assert_int_equal(err.code, FC_EINVAL);
  assert_string_equal(err.where, "connections");
  assert_non_null(strstr(err.text, "at most 16, got 17"));
}

/* The spool cannot be opened (its directory is a regular file): the error
 * names spool_dir, and nothing made before is left behind. */
static void test_writer_new_unwinds_when_the_spool_fails(void **state) {
  char path[64];
  FILE *f;
  fc_history_config_t cfg;
  fc_history_writer_t *w = NULL;
  fc_error_t err;
  (void)state;
  snprintf(path, sizeof path, "/tmp/fc-config-test-%d", (int)getpid());
  f = fopen(path, "w");
  assert_non_null(f);
  fclose(f);
  fc_history_config_init(&cfg);
  cfg.conninfo = "host=/nonexistent";
  cfg.policy = FC_QUEUE_SPOOL;
  cfg.spool_dir = path;
  fc_error_clear(&err);
  assert_true(fc_history_writer_new(&w, &cfg, &err) < 0);
  assert_null(w);
  assert_string_equal(err.where, "spool_dir");
  cfg.spool_dir = NULL;
  fc_error_clear(&err);
  assert_int_equal(fc_history_writer_new(&w, &cfg, &err), FC_EINVAL);
  assert_null(w);
  assert_string_equal(err.where, "spool_dir");
  unlink(path);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_config_init_documented_defaults),
      cmocka_unit_test(test_resolve_defaults_come_from_config_init),
      cmocka_unit_test(test_resolve_keeps_given_values),
      cmocka_unit_test(test_writer_new_refuses_too_many_connections),
      cmocka_unit_test(test_writer_new_unwinds_when_the_spool_fails),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
