/* Names of event kinds, statuses and severities. */
#define _POSIX_C_SOURCE 200809L

#include "fc_test.h"

static void test_kind_names(void **state) {
  (void)state;
  assert_string_equal(fc_event_kind_name(FC_EVENT_WORKFLOW_START), "workflow_start");
  assert_string_equal(fc_event_kind_name(FC_EVENT_WORKFLOW_END), "workflow_end");
  assert_string_equal(fc_event_kind_name(FC_EVENT_NODE_START), "node_start");
  assert_string_equal(fc_event_kind_name(FC_EVENT_NODE_END), "node_end");
  assert_string_equal(fc_event_kind_name(FC_EVENT_ERROR), "error");
  assert_string_equal(fc_event_kind_name(FC_EVENT_KIND_COUNT), "unknown");
  assert_string_equal(fc_event_kind_name((fc_event_kind_t)-1), "unknown");
}

static void test_status_names(void **state) {
  (void)state;
  assert_string_equal(fc_node_status_name(FC_NODE_PENDING), "pending");
  assert_string_equal(fc_node_status_name(FC_NODE_RUNNING), "running");
  assert_string_equal(fc_node_status_name(FC_NODE_COMPLETED), "completed");
  assert_string_equal(fc_node_status_name(FC_NODE_FAILED), "failed");
  assert_string_equal(fc_node_status_name(FC_NODE_SKIPPED), "skipped");
  assert_string_equal(fc_node_status_name(FC_NODE_TIMED_OUT), "timed_out");
  assert_string_equal(fc_node_status_name(FC_NODE_CANCELLED), "cancelled");
  assert_string_equal(fc_node_status_name((fc_node_status_t)FC_NODE_STATUS_COUNT), "unknown");
  assert_string_equal(fc_workflow_status_name(FC_WORKFLOW_PENDING), "pending");
  assert_string_equal(fc_workflow_status_name(FC_WORKFLOW_RUNNING), "running");
  assert_string_equal(fc_workflow_status_name(FC_WORKFLOW_COMPLETED), "completed");
  assert_string_equal(fc_workflow_status_name(FC_WORKFLOW_FAILED), "failed");
  assert_string_equal(fc_workflow_status_name(FC_WORKFLOW_CANCELLED), "cancelled");
  assert_string_equal(fc_workflow_status_name((fc_workflow_status_t)5), "unknown");
}

static void test_severity(void **state) {
  fc_severity_t s = FC_SEVERITY_INFO;
  (void)state;
  assert_string_equal(fc_severity_name(FC_SEVERITY_INFO), "info");
  assert_string_equal(fc_severity_name(FC_SEVERITY_WARNING), "warning");
  assert_string_equal(fc_severity_name(FC_SEVERITY_ERROR), "error");
  assert_string_equal(fc_severity_name(FC_SEVERITY_CRITICAL), "critical");
  assert_string_equal(fc_severity_name((fc_severity_t)4), "unknown");

  assert_int_equal(fc_severity_parse("critical", &s), 0);
  assert_int_equal(s, FC_SEVERITY_CRITICAL);
  assert_int_equal(fc_severity_parse("warning", &s), 0);
  assert_int_equal(s, FC_SEVERITY_WARNING);
  assert_int_equal(fc_severity_parse("ERROR", &s), 0);
  assert_int_equal(s, FC_SEVERITY_ERROR);
  assert_int_equal(fc_severity_parse("info", &s), 0);
  assert_int_equal(s, FC_SEVERITY_INFO);

  s = FC_SEVERITY_CRITICAL;
  assert_int_equal(fc_severity_parse("warn", &s), FC_EINVAL);
  assert_int_equal(fc_severity_parse("", &s), FC_EINVAL);
  assert_int_equal(fc_severity_parse("errors", &s), FC_EINVAL);
  assert_int_equal(fc_severity_parse(NULL, &s), FC_EINVAL);
  assert_int_equal(s, FC_SEVERITY_CRITICAL); /* untouched on failure */
  assert_int_equal(fc_severity_parse("info", NULL), FC_EINVAL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_kind_names),
      cmocka_unit_test(test_status_names),
      cmocka_unit_test(test_severity),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
