/* The logging handler: text and JSON-lines output, levels, payloads and
 * their truncation, escaping. Events are built by hand. */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fc_test.h"

#define WF "01890a5d-ac96-774b-bcce-b302099a8057"
#define T0 INT64_C(1795753853123456) /* 2026-11-27T04:30:53.123456Z */

/* ---- capture ------------------------------------------------------------- */

typedef struct {
  char *buf;
  size_t len;
  FILE *f;
  fc_handler_t h;
  char *lines[64];
  size_t n;
} cap_t;

static void cap_open(cap_t *c, fc_log_level_t level, fc_log_format_t format, size_t max_payload) {
  fc_log_options_t o;
  memset(c, 0, sizeof *c);
  c->f = open_memstream(&c->buf, &c->len);
  assert_non_null(c->f);
  memset(&o, 0, sizeof o);
  o.out = c->f;
  o.min_level = level;
  o.format = format;
  o.max_payload = max_payload;
  assert_int_equal(fc_log_handler(&o, &c->h), 0);
  assert_string_equal(c->h.name, "log");
  assert_non_null(c->h.destroy);
}

/* Closes the stream and splits the output into lines (each ends in \n). */
static void cap_finish(cap_t *c) {
  char *p, *nl;
  fc_handler_destroy(&c->h);
  assert_int_equal(fclose(c->f), 0);
  c->f = NULL;
  for (p = c->buf; *p != '\0'; p = nl + 1) {
    nl = strchr(p, '\n');
    assert_non_null(nl); /* every line is complete */
    *nl = '\0';
    assert_true(c->n < 64);
    c->lines[c->n++] = p;
  }
}

static void cap_free(cap_t *c) { free(c->buf); }

static void cap_send(cap_t *c, const fc_event_t *ev) {
  assert_int_equal(fc_handler_call(&c->h, ev), 0);
}

static json_t *parse_line(const char *line) {
  json_error_t jerr;
  json_t *v = json_loads(line, 0, &jerr);
  if (v == NULL)
    fail_msg("not JSON (%s): %s", jerr.text, line);
  assert_true(json_is_object(v));
  return v;
}

static const char *jstr(json_t *obj, const char *key) {
  json_t *v = json_object_get(obj, key);
  if (!json_is_string(v))
    fail_msg("field %s is not a string", key);
  return json_string_value(v);
}

static json_int_t jint(json_t *obj, const char *key) {
  json_t *v = json_object_get(obj, key);
  if (!json_is_integer(v))
    fail_msg("field %s is not an integer", key);
  return json_integer_value(v);
}

/* ---- a run's worth of events --------------------------------------------- */

typedef struct {
  json_t *wf_input;
  json_t *node_input;
  json_t *wf_output;
  fc_error_info_t info;
  int counts[FC_NODE_STATUS_COUNT];
  fc_event_t ev[6];
} run_t;

/* 0 workflow_start, 1 node_start, 2 error, 3 node_end failed,
 * 4 node_end skipped (attempt 0), 5 workflow_end failed. */
static void run_init(run_t *r, const char *wf_name) {
  int i;
  memset(r, 0, sizeof *r);
  r->wf_input = json_pack("{s:s}", "day", "2026-11-27");
  r->node_input = json_pack("{s:{s:s}}", "input", "day", "2026-11-27");
  r->wf_output = json_object();
  r->info.type = "exit_status";
  r->info.message = "exit 2\nbad \"data\"";
  r->info.stack_trace = "line1\nline2";
  r->info.severity = FC_SEVERITY_CRITICAL;
  r->info.node_id = "extract";
  r->info.attempt = 1;
  r->info.occurred_at_us = T0 + 1000;
  r->counts[FC_NODE_FAILED] = 1;
  r->counts[FC_NODE_SKIPPED] = 2;
  for (i = 0; i < 6; i++) {
    fc_event_t *e = &r->ev[i];
    e->workflow_id = WF;
    e->workflow_name = wf_name;
    e->node_count = 3;
    e->node_index = -1;
    e->time_us = T0 + i * 1000;
  }
  r->ev[0].kind = FC_EVENT_WORKFLOW_START;
  r->ev[0].status = FC_WORKFLOW_RUNNING;
  r->ev[0].input = r->wf_input;
  for (i = 1; i < 5; i++) {
    r->ev[i].node_id = "extract";
    r->ev[i].node_type = "exec";
    r->ev[i].node_index = 0;
    r->ev[i].attempt = 1;
  }
  r->ev[1].kind = FC_EVENT_NODE_START;
  r->ev[1].status = FC_NODE_RUNNING;
  r->ev[1].input = r->node_input;
  r->ev[2].kind = FC_EVENT_ERROR;
  r->ev[2].error = &r->info;
  r->ev[3].kind = FC_EVENT_NODE_END;
  r->ev[3].status = FC_NODE_FAILED;
  r->ev[3].duration_us = 1500;
  r->ev[4].kind = FC_EVENT_NODE_END;
  r->ev[4].node_id = "load";
  r->ev[4].node_type = "";
  r->ev[4].attempt = 0;
  r->ev[4].status = FC_NODE_SKIPPED;
  r->ev[5].kind = FC_EVENT_WORKFLOW_END;
  r->ev[5].status = FC_WORKFLOW_FAILED;
  r->ev[5].duration_us = 2500000;
  r->ev[5].output = r->wf_output;
  r->ev[5].status_counts = r->counts;
  r->ev[5].error_count = 1;
}

static void run_free(run_t *r) {
  json_decref(r->wf_input);
  json_decref(r->node_input);
  json_decref(r->wf_output);
}

static void run_send(cap_t *c, run_t *r) {
  int i;
  for (i = 0; i < 6; i++)
    cap_send(c, &r->ev[i]);
}

/* ---- tests --------------------------------------------------------------- */

static void test_json_lines(void **state) {
  cap_t c;
  run_t r;
  json_t *o, *v;
  (void)state;
  run_init(&r, "nightly-etl");
  cap_open(&c, FC_LOG_DEBUG, FC_LOG_FORMAT_JSON, 0);
  run_send(&c, &r);
  cap_finish(&c);
  assert_int_equal(c.n, 6);

  o = parse_line(c.lines[0]);
  assert_string_equal(jstr(o, "time"), "2026-11-27T04:30:53.123456Z");
  assert_string_equal(jstr(o, "level"), "info");
  assert_string_equal(jstr(o, "event"), "workflow_start");
  assert_string_equal(jstr(o, "workflow_id"), WF);
  assert_string_equal(jstr(o, "workflow_name"), "nightly-etl");
  assert_string_equal(jstr(o, "status"), "running");
  assert_int_equal(jint(o, "node_count"), 3);
  assert_null(json_object_get(o, "node_id"));
  assert_true(json_equal(json_object_get(o, "input"), r.wf_input));
  json_decref(o);

  o = parse_line(c.lines[1]);
  assert_string_equal(jstr(o, "time"), "2026-11-27T04:30:53.124456Z");
  assert_string_equal(jstr(o, "level"), "debug");
  assert_string_equal(jstr(o, "event"), "node_start");
  assert_string_equal(jstr(o, "node_id"), "extract");
  assert_string_equal(jstr(o, "node_type"), "exec");
  assert_int_equal(jint(o, "attempt"), 1);
  assert_true(json_equal(json_object_get(o, "input"), r.node_input));
  assert_null(json_object_get(o, "duration_ms"));
  json_decref(o);

  o = parse_line(c.lines[2]);
  assert_string_equal(jstr(o, "level"), "error");
  assert_string_equal(jstr(o, "event"), "error");
  assert_string_equal(jstr(o, "node_id"), "extract");
  assert_int_equal(jint(o, "attempt"), 1);
  assert_string_equal(jstr(o, "error_type"), "exit_status");
  assert_string_equal(jstr(o, "error_message"), "exit 2\nbad \"data\"");
  assert_string_equal(jstr(o, "severity"), "critical");
  assert_string_equal(jstr(o, "stack_trace"), "line1\nline2");
  assert_string_equal(jstr(o, "occurred_at"), "2026-11-27T04:30:53.124456Z");
  json_decref(o);

  o = parse_line(c.lines[3]);
  assert_string_equal(jstr(o, "level"), "warning");
  assert_string_equal(jstr(o, "event"), "node_end");
  assert_string_equal(jstr(o, "status"), "failed");
  v = json_object_get(o, "duration_ms");
  assert_true(json_is_number(v));
  assert_true(json_number_value(v) > 1.4999 && json_number_value(v) < 1.5001);
  assert_null(json_object_get(o, "output"));
  json_decref(o);

  o = parse_line(c.lines[4]);
  assert_string_equal(jstr(o, "level"), "debug");
  assert_string_equal(jstr(o, "node_id"), "load");
  assert_string_equal(jstr(o, "status"), "skipped");
  assert_int_equal(jint(o, "attempt"), 0);
  json_decref(o);

  o = parse_line(c.lines[5]);
  assert_string_equal(jstr(o, "level"), "info");
  assert_string_equal(jstr(o, "event"), "workflow_end");
  assert_string_equal(jstr(o, "status"), "failed");
  assert_true(json_number_value(json_object_get(o, "duration_ms")) > 2499.999);
  assert_true(json_number_value(json_object_get(o, "duration_ms")) < 2500.001);
  assert_int_equal(jint(o, "error_count"), 1);
  v = json_object_get(o, "status_counts");
  assert_int_equal(jint(v, "failed"), 1);
  assert_int_equal(jint(v, "skipped"), 2);
  assert_int_equal(jint(v, "completed"), 0);
  assert_true(json_equal(json_object_get(o, "output"), r.wf_output));
  json_decref(o);

  cap_free(&c);
  run_free(&r);
}

static void test_text_lines(void **state) {
  cap_t c;
  run_t r;
  (void)state;
  run_init(&r, "nightly-etl");
  cap_open(&c, FC_LOG_INFO, FC_LOG_FORMAT_TEXT, 0);
  run_send(&c, &r);
  cap_finish(&c);
  assert_int_equal(c.n, 4);
  assert_string_equal(c.lines[0], "2026-11-27T04:30:53.123456Z INFO  workflow_start "
                                  "wf=nightly-etl id=" WF " nodes=3");
  assert_string_equal(c.lines[1], "2026-11-27T04:30:53.125456Z ERROR error wf=nightly-etl id=" WF
                                  " node=extract attempt=1 severity=critical type=exit_status "
                                  "message=\"exit 2\\nbad \\\"data\\\"\" "
                                  "stack_trace=\"line1\\nline2\"");
  assert_string_equal(c.lines[2], "2026-11-27T04:30:53.126456Z WARN  node_end wf=nightly-etl id=" WF
                                  " node=extract type=exec attempt=1 status=failed "
                                  "duration_ms=1.500");
  assert_string_equal(c.lines[3], "2026-11-27T04:30:53.128456Z INFO  workflow_end wf=nightly-etl "
                                  "id=" WF " status=failed duration_ms=2500.000 nodes=3 "
                                  "completed=0 failed=1 skipped=2 timed_out=0 cancelled=0 "
                                  "errors=1");
  cap_free(&c);
  run_free(&r);
}

static void test_text_debug_payloads(void **state) {
  cap_t c;
  run_t r;
  (void)state;
  run_init(&r, "nightly etl"); /* a space: quoted */
  cap_open(&c, FC_LOG_DEBUG, FC_LOG_FORMAT_TEXT, 0);
  run_send(&c, &r);
  cap_finish(&c);
  assert_int_equal(c.n, 6);
  assert_string_equal(c.lines[0],
                      "2026-11-27T04:30:53.123456Z INFO  workflow_start "
                      "wf=\"nightly etl\" id=" WF " nodes=3 input={\"day\":\"2026-11-27\"}");
  assert_string_equal(c.lines[1], "2026-11-27T04:30:53.124456Z DEBUG node_start "
                                  "wf=\"nightly etl\" id=" WF " node=extract type=exec attempt=1 "
                                  "input={\"input\":{\"day\":\"2026-11-27\"}}");
  assert_string_equal(c.lines[4], "2026-11-27T04:30:53.127456Z DEBUG node_end "
                                  "wf=\"nightly etl\" id=" WF
                                  " node=load attempt=0 status=skipped duration_ms=0.000");
  assert_non_null(strstr(c.lines[5], " output={}"));
  cap_free(&c);
  run_free(&r);
}

static size_t count_lines_at(fc_log_level_t level, fc_log_format_t format) {
  cap_t c;
  run_t r;
  size_t n, i;
  run_init(&r, "wf");
  cap_open(&c, level, format, 0);
  run_send(&c, &r);
  cap_finish(&c);
  n = c.n;
  for (i = 0; i < c.n; i++) {
    if (format == FC_LOG_FORMAT_JSON) {
      json_t *o = parse_line(c.lines[i]);
      /* payloads only at debug */
      if (level > FC_LOG_DEBUG) {
        assert_null(json_object_get(o, "input"));
        assert_null(json_object_get(o, "output"));
      }
      json_decref(o);
    } else if (level > FC_LOG_DEBUG) {
      assert_null(strstr(c.lines[i], "input="));
      assert_null(strstr(c.lines[i], "output="));
    }
  }
  cap_free(&c);
  run_free(&r);
  return n;
}

static void test_min_level(void **state) {
  (void)state;
  assert_int_equal(count_lines_at(FC_LOG_DEBUG, FC_LOG_FORMAT_JSON), 6);
  /* info: workflow events, the failed node_end (warning), the error */
  assert_int_equal(count_lines_at(FC_LOG_INFO, FC_LOG_FORMAT_JSON), 4);
  assert_int_equal(count_lines_at(FC_LOG_WARNING, FC_LOG_FORMAT_JSON), 2);
  assert_int_equal(count_lines_at(FC_LOG_ERROR, FC_LOG_FORMAT_JSON), 1);
  assert_int_equal(count_lines_at(FC_LOG_DEBUG, FC_LOG_FORMAT_TEXT), 6);
  assert_int_equal(count_lines_at(FC_LOG_INFO, FC_LOG_FORMAT_TEXT), 4);
  assert_int_equal(count_lines_at(FC_LOG_WARNING, FC_LOG_FORMAT_TEXT), 2);
  assert_int_equal(count_lines_at(FC_LOG_ERROR, FC_LOG_FORMAT_TEXT), 1);
}

static void test_truncation(void **state) {
  cap_t c;
  fc_event_t ev;
  json_t *big = json_pack("{s:s}", "text", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
  json_t *exact = json_pack("{s:s}", "a", "12345678"); /* 16 bytes compact */
  json_t *utf8 = json_string("\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9");
  json_t *o;
  const char *s;
  (void)state;
  memset(&ev, 0, sizeof ev);
  ev.kind = FC_EVENT_WORKFLOW_START;
  ev.workflow_id = WF;
  ev.workflow_name = "wf";
  ev.time_us = T0;

  cap_open(&c, FC_LOG_DEBUG, FC_LOG_FORMAT_JSON, 16);
  ev.input = big;
  cap_send(&c, &ev);
  ev.input = exact;
  cap_send(&c, &ev);
  ev.input = utf8;
  cap_send(&c, &ev);
  cap_finish(&c);
  assert_int_equal(c.n, 3);

  o = parse_line(c.lines[0]);
  s = jstr(o, "input");
  assert_string_equal(s, "{\"text\":\"aaaaaaa"); /* the first 16 bytes */
  assert_true(json_is_true(json_object_get(o, "input_truncated")));
  json_decref(o);

  o = parse_line(c.lines[1]);
  assert_true(json_equal(json_object_get(o, "input"), exact));
  assert_null(json_object_get(o, "input_truncated"));
  json_decref(o);

  /* cut on a character boundary: "\"" + 7 two-byte characters = 15 bytes */
  o = parse_line(c.lines[2]);
  assert_string_equal(jstr(o, "input"),
                      "\"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9");
  json_decref(o);
  cap_free(&c);

  cap_open(&c, FC_LOG_DEBUG, FC_LOG_FORMAT_TEXT, 16);
  ev.input = big;
  cap_send(&c, &ev);
  cap_finish(&c);
  assert_int_equal(c.n, 1);
  s = strstr(c.lines[0], " input=");
  assert_non_null(s);
  assert_string_equal(s, " input={\"text\":\"aaaaaaa...(truncated)");
  cap_free(&c);

  json_decref(big);
  json_decref(exact);
  json_decref(utf8);
}

static void test_stack_trace_truncation(void **state) {
  cap_t c;
  run_t r;
  char trace[600];
  json_t *o;
  (void)state;
  memset(trace, 'x', sizeof trace - 1);
  trace[sizeof trace - 1] = '\0';
  run_init(&r, "wf");
  r.info.stack_trace = trace;
  cap_open(&c, FC_LOG_ERROR, FC_LOG_FORMAT_JSON, 0); /* default: 256 bytes */
  run_send(&c, &r);
  cap_finish(&c);
  assert_int_equal(c.n, 1);
  o = parse_line(c.lines[0]);
  assert_int_equal(strlen(jstr(o, "stack_trace")), 256);
  assert_true(json_is_true(json_object_get(o, "stack_trace_truncated")));
  json_decref(o);
  cap_free(&c);
  run_free(&r);
}

/* Names and messages with control characters, quotes and invalid UTF-8
 * still give valid JSON (invalid bytes become U+FFFD). */
static void test_escaping(void **state) {
  cap_t c;
  run_t r;
  json_t *o;
  (void)state;
  run_init(&r, "we\"ird\tname");
  r.info.message = "bad \xff byte \x01 and \xe2\x82\xac";
  cap_open(&c, FC_LOG_DEBUG, FC_LOG_FORMAT_JSON, 0);
  run_send(&c, &r);
  cap_finish(&c);
  assert_int_equal(c.n, 6);
  o = parse_line(c.lines[2]);
  assert_string_equal(jstr(o, "workflow_name"), "we\"ird\tname");
  assert_string_equal(jstr(o, "error_message"), "bad \xef\xbf\xbd byte \x01 and \xe2\x82\xac");
  json_decref(o);
  cap_free(&c);

  cap_open(&c, FC_LOG_INFO, FC_LOG_FORMAT_TEXT, 0);
  cap_send(&c, &r.ev[0]);
  cap_finish(&c);
  assert_non_null(strstr(c.lines[0], " wf=\"we\\\"ird\\tname\" "));
  cap_free(&c);
  run_free(&r);
}

/* Invalid UTF-8 becomes one U+FFFD per maximal invalid subpart (the rule
 * of src/utf8.c, as in exec output and the history): a 4-byte character
 * cut after 3 bytes, a surrogate, an overlong form, and a 3-byte character
 * cut at the end. Before the one decoder, each invalid byte was one. */
static void test_invalid_utf8_maximal_subparts(void **state) {
  cap_t c;
  run_t r;
  json_t *o;
  (void)state;
  run_init(&r, "wf");
  r.info.message = "a\xf0\x9f\x98" "b\xed\xa0\x80" "c\xc0\xaf" "d\xe2\x82";
  cap_open(&c, FC_LOG_DEBUG, FC_LOG_FORMAT_JSON, 0);
  run_send(&c, &r);
  cap_finish(&c);
  assert_int_equal(c.n, 6);
  o = parse_line(c.lines[2]);
  assert_string_equal(jstr(o, "error_message"), "a\xef\xbf\xbd"
                                                "b\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"
                                                "c\xef\xbf\xbd\xef\xbf\xbd"
                                                "d\xef\xbf\xbd");
  json_decref(o);
  cap_free(&c);
  run_free(&r);
}

static void test_options(void **state) {
  fc_log_options_t o;
  fc_handler_t h;
  (void)state;
  memset(&o, 0, sizeof o);
  assert_int_equal(fc_log_handler(&o, NULL), FC_EINVAL);
  o.min_level = (fc_log_level_t)7;
  assert_int_equal(fc_log_handler(&o, &h), FC_EINVAL);
  o.min_level = FC_LOG_INFO;
  o.format = (fc_log_format_t)2;
  assert_int_equal(fc_log_handler(&o, &h), FC_EINVAL);
  /* The defaults: what opts NULL means (see test_defaults_to_stderr). */
  memset(&o, 0xff, sizeof o);
  fc_log_options_init(&o);
  assert_null(o.out);
  assert_int_equal(o.min_level, FC_LOG_INFO);
  assert_int_equal(o.format, FC_LOG_FORMAT_TEXT);
  assert_int_equal(o.max_payload, 256);
  assert_null(o.sink);
  assert_null(o.sink_data);
  assert_int_equal(fc_log_handler(&o, &h), 0);
  fc_handler_destroy(&h);
}

/* opts NULL: text at info to stderr. */
static void test_defaults_to_stderr(void **state) {
  FILE *tmp = tmpfile();
  fc_handler_t h;
  run_t r;
  char buf[1024];
  size_t n;
  int saved;
  (void)state;
  assert_non_null(tmp);
  run_init(&r, "wf");
  assert_int_equal(fc_log_handler(NULL, &h), 0);
  fflush(stderr);
  saved = dup(2);
  assert_true(saved >= 0);
  assert_true(dup2(fileno(tmp), 2) >= 0);
  assert_int_equal(fc_handler_call(&h, &r.ev[0]), 0);
  assert_int_equal(fc_handler_call(&h, &r.ev[1]), 0); /* debug: not written */
  fflush(stderr);
  assert_true(dup2(saved, 2) >= 0);
  close(saved);
  rewind(tmp);
  n = fread(buf, 1, sizeof buf - 1, tmp);
  buf[n] = '\0';
  assert_string_equal(buf,
                      "2026-11-27T04:30:53.123456Z INFO  workflow_start wf=wf id=" WF " nodes=3\n");
  fclose(tmp);
  fc_handler_destroy(&h);
  run_free(&r);
}

static void test_write_error(void **state) {
  FILE *ro = fopen("/dev/null", "r");
  fc_log_options_t o;
  fc_handler_t h;
  run_t r;
  (void)state;
  assert_non_null(ro);
  run_init(&r, "wf");
  memset(&o, 0, sizeof o);
  o.out = ro;
  o.min_level = FC_LOG_INFO;
  assert_int_equal(fc_log_handler(&o, &h), 0);
  assert_true(fc_handler_call(&h, &r.ev[0]) < 0);
  fc_handler_destroy(&h);
  fclose(ro);
  run_free(&r);
}

/* Through a manager: the log handler is an ordinary handler. */
static void test_with_manager(void **state) {
  cap_t c;
  run_t r;
  fc_manager_t *m;
  fc_handler_t h;
  fc_log_options_t o;
  int i;
  (void)state;
  memset(&c, 0, sizeof c);
  c.f = open_memstream(&c.buf, &c.len);
  assert_non_null(c.f);
  memset(&o, 0, sizeof o);
  o.out = c.f;
  o.min_level = FC_LOG_DEBUG;
  o.format = FC_LOG_FORMAT_JSON;
  assert_int_equal(fc_log_handler(&o, &h), 0);
  assert_int_equal(fc_manager_new(&m), 0);
  assert_int_equal(fc_manager_add(m, &h, 0, NULL), 0);
  run_init(&r, "wf");
  for (i = 0; i < 6; i++)
    assert_int_equal(fc_manager_dispatch(m, &r.ev[i]), 0);
  fc_manager_free(m); /* destroys the handler state; the FILE is ours */
  fflush(c.f);
  for (i = 0; c.buf[i] != '\0'; i++)
    if (c.buf[i] == '\n')
      c.n++;
  assert_int_equal(c.n, 6);
  fclose(c.f);
  cap_free(&c);
  run_free(&r);
}

/* ---- user sink ----------------------------------------------------------- */

typedef struct {
  char *lines[64];
  size_t n;
} sink_lines_t;

static void sink_collect(void *data, const char *line) {
  sink_lines_t *s = data;
  assert_true(s->n < 64);
  assert_null(strchr(line, '\n')); /* one line, no newline */
  s->lines[s->n] = strdup(line);
  assert_non_null(s->lines[s->n]);
  s->n++;
}

static void sink_lines_free(sink_lines_t *s) {
  size_t i;
  for (i = 0; i < s->n; i++)
    free(s->lines[i]);
}

/* The sink gets exactly the lines the FILE would get, without the newline,
 * for both formats, and `out` is not written when a sink is set. */
static void test_sink_lines(void **state) {
  fc_log_format_t formats[2] = {FC_LOG_FORMAT_TEXT, FC_LOG_FORMAT_JSON};
  int f, i;
  (void)state;
  for (f = 0; f < 2; f++) {
    cap_t c;
    run_t r;
    sink_lines_t s;
    fc_log_options_t o;
    fc_handler_t h;
    FILE *unused;
    char *ubuf = NULL;
    size_t ulen = 0;

    run_init(&r, "nightly etl");
    cap_open(&c, FC_LOG_DEBUG, formats[f], 20);
    run_send(&c, &r);
    cap_finish(&c);

    memset(&s, 0, sizeof s);
    unused = open_memstream(&ubuf, &ulen);
    assert_non_null(unused);
    memset(&o, 0, sizeof o);
    o.out = unused; /* ignored: the sink wins */
    o.min_level = FC_LOG_DEBUG;
    o.format = formats[f];
    o.max_payload = 20;
    o.sink = sink_collect;
    o.sink_data = &s;
    assert_int_equal(fc_log_handler(&o, &h), 0);
    for (i = 0; i < 6; i++)
      assert_int_equal(fc_handler_call(&h, &r.ev[i]), 0);
    fc_handler_destroy(&h);
    assert_int_equal(fclose(unused), 0);
    assert_int_equal(ulen, 0);
    free(ubuf);

    assert_int_equal(s.n, c.n);
    for (i = 0; i < (int)s.n; i++)
      assert_string_equal(s.lines[i], c.lines[i]);
    sink_lines_free(&s);
    cap_free(&c);
    run_free(&r);
  }
}

/* A sink with levels and truncation, through a manager. */
static void test_sink_levels_through_manager(void **state) {
  run_t r;
  sink_lines_t s;
  fc_log_options_t o;
  fc_handler_t h;
  fc_manager_t *m;
  json_t *obj;
  int i;
  (void)state;
  run_init(&r, "wf");
  memset(&s, 0, sizeof s);
  memset(&o, 0, sizeof o);
  o.min_level = FC_LOG_WARNING;
  o.format = FC_LOG_FORMAT_JSON;
  o.sink = sink_collect;
  o.sink_data = &s;
  assert_int_equal(fc_log_handler(&o, &h), 0);
  assert_int_equal(fc_manager_new(&m), 0);
  assert_int_equal(fc_manager_add(m, &h, 0, NULL), 0);
  for (i = 0; i < 6; i++)
    assert_int_equal(fc_manager_dispatch(m, &r.ev[i]), 0);
  fc_manager_free(m);
  assert_int_equal(s.n, 2); /* the error and the failed node_end */
  obj = parse_line(s.lines[0]);
  assert_string_equal(jstr(obj, "event"), "error");
  assert_null(json_object_get(obj, "details"));
  json_decref(obj);
  obj = parse_line(s.lines[1]);
  assert_string_equal(jstr(obj, "level"), "warning");
  assert_null(json_object_get(obj, "output")); /* payloads only at debug */
  json_decref(obj);
  sink_lines_free(&s);
  run_free(&r);
}

/* RFC 3339 in UTC: four-digit years, microseconds, 'Z'; instants outside
 * 0000..9999 are clamped. */
static void test_time_format(void **state) {
  static const struct {
    int64_t us;
    const char *want;
  } cases[] = {
      {INT64_C(1), "1970-01-01T00:00:00.000001Z"},
      {INT64_C(-1), "1969-12-31T23:59:59.999999Z"},
      {INT64_C(951782400000000), "2000-02-29T00:00:00.000000Z"},
      {INT64_C(-30610310400000000), "0999-12-31T00:00:00.000000Z"},
      {INT64_C(253402300799999999), "9999-12-31T23:59:59.999999Z"},
      {INT64_C(253402300800000000), "9999-12-31T23:59:59.999999Z"},
      {INT64_C(-62167219200000001), "0000-01-01T00:00:00.000000Z"},
  };
  size_t i;
  (void)state;
  for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    sink_lines_t s;
    fc_log_options_t o;
    fc_handler_t h;
    run_t r;
    json_t *obj;
    run_init(&r, "wf");
    r.ev[0].time_us = cases[i].us;
    memset(&s, 0, sizeof s);
    memset(&o, 0, sizeof o);
    o.min_level = FC_LOG_INFO;
    o.format = FC_LOG_FORMAT_JSON;
    o.sink = sink_collect;
    o.sink_data = &s;
    assert_int_equal(fc_log_handler(&o, &h), 0);
    assert_int_equal(fc_handler_call(&h, &r.ev[0]), 0);
    fc_handler_destroy(&h);
    assert_int_equal(s.n, 1);
    obj = parse_line(s.lines[0]);
    assert_string_equal(jstr(obj, "time"), cases[i].want);
    json_decref(obj);
    sink_lines_free(&s);
    run_free(&r);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_json_lines),
      cmocka_unit_test(test_text_lines),
      cmocka_unit_test(test_text_debug_payloads),
      cmocka_unit_test(test_min_level),
      cmocka_unit_test(test_truncation),
      cmocka_unit_test(test_stack_trace_truncation),
      cmocka_unit_test(test_escaping),
      cmocka_unit_test(test_invalid_utf8_maximal_subparts),
      cmocka_unit_test(test_options),
      cmocka_unit_test(test_defaults_to_stderr),
      cmocka_unit_test(test_write_error),
      cmocka_unit_test(test_with_manager),
      cmocka_unit_test(test_sink_lines),
      cmocka_unit_test(test_sink_levels_through_manager),
      cmocka_unit_test(test_time_format),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
