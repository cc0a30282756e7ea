/* The HTML reports' writing (src/cli/report_html.c) and pages
 * (src/cli/report_run.c, src/cli/report_workflow.c), without a server:
 * escaping of markup, invalid UTF-8 and control characters; status classes
 * that never carry data; hostile data that stays text; the lane and graph
 * limits of large runs. */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fc_test.h"

#include "cli/cli.h"
#include "cli/report.h"
#include "utf8.h"

/* What fn wrote to a memory stream, as a malloc'd string. */
static char *written_text(const char *s, size_t n) {
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  assert_non_null(f);
  cli_html_text(f, s, n);
  assert_int_equal(fclose(f), 0);
  return buf;
}

static void expect_text(const char *in, size_t n, const char *want) {
  char *got = written_text(in, n);
  assert_string_equal(got, want);
  free(got);
}

static size_t occurrences(const char *hay, const char *needle) {
  size_t n = 0;
  const char *p = hay;
  while ((p = strstr(p, needle)) != NULL) {
    n++;
    p += strlen(needle);
  }
  return n;
}

static void test_markup_escaped(void **state) {
  (void)state;
  expect_text("<script>alert(\"x\")</script>", 27,
              "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;");
  expect_text("a & b 'c' </svg>", 16, "a &amp; b &#39;c&#39; &lt;/svg&gt;");
  expect_text("plain text, tab\tand\nnewline", 27, "plain text, tab\tand\nnewline");
  expect_text("", 0, "");
}

static void test_invalid_utf8_replaced(void **state) {
  (void)state;
  /* A lone byte, a cut sequence, a surrogate, an overlong form: each
   * maximal subpart is one U+FFFD. */
  expect_text("a\xff"
              "b",
              3, "a\xEF\xBF\xBD"
                 "b");
  expect_text("x\xe2\x82", 3, "x\xEF\xBF\xBD");
  expect_text("\xed\xa0\x80", 3, "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
  expect_text("\xc0\xbc", 2, "\xEF\xBF\xBD\xEF\xBF\xBD");
  /* Well-formed characters are kept. */
  expect_text("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 9, "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80");
  /* NUL, other controls and DEL become U+FFFD too. */
  expect_text("a\0b\x01\x7f", 5, "a\xEF\xBF\xBD"
                                 "b\xEF\xBF\xBD\xEF\xBF\xBD");
}

static void test_capped(void **state) {
  char *buf = NULL;
  size_t len = 0, left;
  FILE *f;
  (void)state;
  f = open_memstream(&buf, &len);
  assert_non_null(f);
  /* "ééé" is 6 bytes: a cap of 3 keeps one whole "é", never half of one. */
  left = cli_html_capped(f, "\xc3\xa9\xc3\xa9\xc3\xa9", 6, 3, 0);
  assert_int_equal(fclose(f), 0);
  assert_int_equal(left, 4);
  assert_string_equal(buf, "\xc3\xa9<span class=\"cut\">\xE2\x80\xA6 (4 more bytes)</span>");
  free(buf);
  /* The full size from the query counts when the text was cut before. */
  f = open_memstream(&buf, &len);
  assert_non_null(f);
  left = cli_html_capped(f, "<ab", 3, 10, 103);
  assert_int_equal(fclose(f), 0);
  assert_int_equal(left, 100);
  assert_string_equal(buf, "&lt;ab<span class=\"cut\">\xE2\x80\xA6 (100 more bytes)</span>");
  free(buf);
}

static void test_label(void **state) {
  char *buf = NULL;
  size_t len = 0;
  FILE *f;
  (void)state;
  f = open_memstream(&buf, &len);
  assert_non_null(f);
  cli_html_label(f, "<ab>", 4);
  cli_html_label(f, "|", 4);
  /* 6 bytes into 4: "x" and one whole "é" fit in 3, then the ellipsis. */
  cli_html_label(f, "x\xc3\xa9\xc3\xa9y", 4);
  cli_html_label(f, NULL, 4);
  assert_int_equal(fclose(f), 0);
  assert_string_equal(buf, "&lt;ab&gt;|x\xc3\xa9\xE2\x80\xA6?");
  free(buf);
}

static void test_status_class(void **state) {
  (void)state;
  assert_string_equal(cli_report_status_class("completed"), "st-completed");
  assert_string_equal(cli_report_status_class("timed_out"), "st-timed_out");
  assert_string_equal(cli_report_status_class("skipped"), "st-skipped");
  assert_string_equal(cli_report_status_class("x\" onmouseover=\"alert(1)"), "st-other");
  assert_string_equal(cli_report_status_class(NULL), "st-other");
}

/* ---- whole pages --------------------------------------------------------- */

typedef int (*render_fn)(FILE *, const json_t *);

static char *render(render_fn fn, const json_t *data, size_t *len_out) {
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  assert_non_null(f);
  assert_int_equal(fn(f, data), 0);
  assert_int_equal(fclose(f), 0);
  if (len_out != NULL)
    *len_out = len;
  return buf;
}

#define HOSTILE_ID "<script>document.title='pwned'</script>"
#define HOSTILE_ID2 "</svg><img src=x onerror=\"alert(1)\">"
#define HOSTILE_MSG "</title></text><script>alert('message')</script>"

static json_t *attempt(const char *node, int n, const char *status, long long start_us,
                       long long end_us, const char *etype, const char *emsg) {
  json_t *a = json_pack("{s:s, s:i, s:s, s:s, s:I, s:I, s:f}", "node_id", node, "attempt", n,
                        "node_type", "exec", "status", status, "started_at", (json_int_t)start_us,
                        "completed_at", (json_int_t)end_us, "duration_ms",
                        (double)(end_us - start_us) / 1000.0);
  assert_non_null(a);
  if (start_us == 0) {
    json_object_set_new(a, "started_at", json_null());
    json_object_set_new(a, "completed_at", json_null());
    json_object_set_new(a, "duration_ms", json_null());
  }
  if (etype != NULL)
    json_object_set_new(a, "error_type", json_string(etype));
  /* Not checked: the renderer must cope with invalid UTF-8 too. */
  if (emsg != NULL)
    json_object_set_new(a, "error_message", json_stringn_nocheck(emsg, strlen(emsg)));
  return a;
}

static json_t *hostile_run(void) {
  const long long t0 = 1700000000000000LL;
  json_t *data = json_pack(
      "{s:s, s:I, s:{s:s, s:s, s:I, s:I, s:f, s:i, s:i, s:i, s:i, s:s}, s:s, s:[], s:[], s:[],"
      " s:[]}",
      "workflow_id", "01a2", "now", (json_int_t)(t0 + 5000000), "run", "workflow_name",
      "wf<b>", "status", "failed", "started_at", (json_int_t)t0, "completed_at",
      (json_int_t)(t0 + 3000000), "duration_ms", 3000.0, "node_count", 3, "attempts", 4,
      "error_count", 1, "pid", 1, "host", "<i>host</i>", "input", "{\"x\": \"</pre><script>\"}",
      "attempts", "edges", "errors", "payloads");
  json_t *atts, *edges, *errs, *pays, *e;
  assert_non_null(data);
  atts = json_object_get(data, "attempts");
  json_array_append_new(atts, attempt(HOSTILE_ID, 1, "completed", t0, t0 + 500000, NULL, NULL));
  json_array_append_new(atts, attempt(HOSTILE_ID2, 1, "failed", t0 + 600000, t0 + 800000,
                                      "<i>t</i>", HOSTILE_MSG));
  json_array_append_new(atts,
                        attempt(HOSTILE_ID2, 2, "timed_out", t0 + 1000000, t0 + 1500000, NULL,
                                "bad \xff\xfe bytes"));
  json_array_append_new(atts, attempt("skipped'\"", 0, "skipped", 0, 0, NULL, NULL));
  edges = json_object_get(data, "edges");
  json_array_append_new(edges, json_pack("{s:s, s:s}", "from", HOSTILE_ID, "to", HOSTILE_ID2));
  errs = json_object_get(data, "errors");
  e = json_pack("{s:s, s:i, s:s, s:s, s:s, s:s, s:I}", "node_id", HOSTILE_ID2, "attempt", 1,
                "severity", "error\"", "error_type", "<i>t</i>", "error_message", HOSTILE_MSG,
                "stack_trace", "line\n</pre></details><script>alert(2)</script>\n\x01",
                "occurred_at", (json_int_t)(t0 + 800000));
  json_array_append_new(errs, e);
  pays = json_object_get(data, "payloads");
  json_array_append_new(pays, json_pack("{s:s, s:i, s:s, s:i, s:s, s:i}", "node_id", HOSTILE_ID,
                                        "attempt", 1, "input", "{\"k\": \"<script>\"}",
                                        "input_bytes", 17, "output", "\"</svg>\"",
                                        "output_bytes", 8));
  return data;
}

/* Nothing but the page's own markup: one script, each SVG closed once, no
 * element made of the data, valid UTF-8 throughout. */
static void expect_inert(const char *page, size_t len) {
  assert_int_equal(occurrences(page, "<script"), 1);
  assert_int_equal(occurrences(page, "<svg"), occurrences(page, "</svg>"));
  assert_int_equal(occurrences(page, "<img"), 0);
  assert_null(strstr(page, "<i>t</i>"));
  assert_null(strstr(page, "<i>host"));
  assert_null(strstr(page, "wf<b>"));
  assert_null(strstr(page, "onerror=\""));
  assert_true(fc__utf8_valid(page, len));
}

static void test_run_page_hostile(void **state) {
  json_t *data = hostile_run();
  size_t len;
  char *page;
  (void)state;
  page = render(cli_report_run, data, &len);
  expect_inert(page, len);
  /* The data is there, as text. */
  assert_non_null(strstr(page, "&lt;script&gt;document.title=&#39;pwned&#39;&lt;/script&gt;"));
  assert_non_null(strstr(page, "&lt;/svg&gt;&lt;img src=x onerror=&quot;alert(1)&quot;&gt;"));
  assert_non_null(strstr(page, "bad \xEF\xBF\xBD\xEF\xBF\xBD bytes"));
  /* One bar per attempt, with its status class; the backoff between the
   * two attempts of a node; the skipped node's bar. */
  assert_int_equal(occurrences(page, "class=\"bar "), 4);
  assert_int_equal(occurrences(page, "class=\"bar st-failed\""), 1);
  assert_int_equal(occurrences(page, "class=\"bar st-timed_out\""), 1);
  assert_int_equal(occurrences(page, "class=\"bar st-skipped\""), 1);
  assert_int_equal(occurrences(page, "class=\"backoff\""), 1);
  /* The graph: three nodes and the one edge. */
  assert_int_equal(occurrences(page, "class=\"node-box "), 3);
  assert_int_equal(occurrences(page, "class=\"edge\""), 1);
  assert_non_null(strstr(page, "Content-Security-Policy"));
  free(page);
  json_decref(data);
}

/* A run of n nodes in a chain, each node one attempt; every 100th failed
 * once before its second attempt. */
static json_t *large_run(size_t n) {
  const long long t0 = 1700000000000000LL;
  json_t *data = json_pack("{s:s, s:I, s:n, s:[], s:[]}", "workflow_id", "big", "now",
                           (json_int_t)t0, "run", "attempts", "edges");
  json_t *atts = json_object_get(data, "attempts"), *edges = json_object_get(data, "edges");
  size_t i;
  char id[32], prev[32];
  for (i = 0; i < n; i++) {
    long long s = t0 + (long long)i * 1000;
    snprintf(id, sizeof id, "n%zu", i);
    if (i % 100 == 99) {
      json_array_append_new(atts, attempt(id, 1, "failed", s, s + 500, "e", "m"));
      json_array_append_new(atts, attempt(id, 2, "completed", s + 700, s + 900, NULL, NULL));
    } else {
      json_array_append_new(atts, attempt(id, 1, "completed", s, s + 900, NULL, NULL));
    }
    if (i > 0)
      json_array_append_new(edges, json_pack("{s:s, s:s}", "from", prev, "to", id));
    memcpy(prev, id, sizeof id);
  }
  return data;
}

static void test_run_page_small_has_no_notes(void **state) {
  json_t *data = large_run(50);
  char *page;
  (void)state;
  page = render(cli_report_run, data, NULL);
  assert_int_equal(occurrences(page, "class=\"bar "), 50);
  assert_null(strstr(page, "id=\"lanes-note\""));
  assert_null(strstr(page, "id=\"dag-note\""));
  assert_int_equal(occurrences(page, "class=\"node-box "), 50);
  assert_int_equal(occurrences(page, "class=\"edge\""), 49);
  free(page);
  json_decref(data);
}

static void test_run_page_large_aggregates(void **state) {
  size_t n = 10000, len;
  json_t *data = large_run(n);
  char *page;
  char want[64];
  (void)state;
  page = render(cli_report_run, data, &len);
  /* 500 lanes: the 100 retried nodes (2 attempts each) and 400 others. */
  assert_non_null(strstr(page, "data-lanes=\"500\""));
  assert_non_null(strstr(page, "id=\"lanes-note\""));
  assert_int_equal(occurrences(page, "class=\"bar "), 600);
  snprintf(want, sizeof want, "data-shown-attempts=\"%d\"", 600);
  assert_non_null(strstr(page, want));
  assert_int_equal(occurrences(page, "class=\"bar st-failed\""), 100);
  assert_non_null(strstr(page, "9500 other nodes"));
  /* The graph is a table by layer. */
  assert_non_null(strstr(page, "id=\"dag-note\""));
  assert_int_equal(occurrences(page, "class=\"node-box "), 0);
  assert_true(len < 5u * 1024 * 1024);
  free(page);
  json_decref(data);
}

static void test_run_page_without_run_row(void **state) {
  json_t *data = json_pack("{s:s}", "workflow_id", "<x>");
  char *page;
  (void)state;
  page = render(cli_report_run, data, NULL);
  assert_non_null(strstr(page, "&lt;x&gt; <span class=\"muted\">(its run record is not in"));
  assert_non_null(strstr(page, "No node attempt is recorded."));
  free(page);
  json_decref(data);
}

static void test_workflow_page(void **state) {
  const long long t0 = 1700000000000000LL;
  json_t *data = json_pack(
      "{s:s, s:I, s:I, s:i, s:[{s:s, s:s, s:I, s:f, s:i}, {s:s, s:s, s:I, s:n, s:i}],"
      " s:[{s:s, s:s, s:s, s:i}, {s:s, s:s, s:s, s:i}, {s:s, s:s, s:s, s:i}],"
      " s:[{s:s, s:i, s:i, s:f, s:f}, {s:s, s:i, s:i, s:f, s:f}],"
      " s:[{s:s, s:i}, {s:s, s:i}]}",
      "workflow", "wf<script>", "since", (json_int_t)(t0 - 86400000000LL), "now",
      (json_int_t)(t0 + 1000000), "runs_total", 5, "runs", "workflow_id", "r1", "status",
      "failed", "started_at", (json_int_t)t0, "duration_ms", 12.5, "error_count", 1,
      "workflow_id", "r2", "status", "running", "started_at", (json_int_t)(t0 + 1000),
      "duration_ms", "error_count", 0, "cells", "workflow_id", "r1", "node_id", HOSTILE_ID,
      "status", "completed", "attempts", 1, "workflow_id", "r1", "node_id", HOSTILE_ID2, "status",
      "failed", "attempts", 2, "workflow_id", "r2", "node_id", HOSTILE_ID, "status", "running",
      "attempts", 1, "node_stats", "node_id", HOSTILE_ID, "attempts", 2, "failures", 0, "p50_ms",
      3.0, "p95_ms", 4.0, "node_id", HOSTILE_ID2, "attempts", 2, "failures", 1, "p50_ms", 1.0,
      "p95_ms", 2.0, "errors_per_day", "day", "2023-11-13", "errors", 0, "day", "2023-11-14",
      "errors", 1);
  size_t len;
  char *page;
  (void)state;
  assert_non_null(data);
  page = render(cli_report_workflow, data, &len);
  expect_inert(page, len);
  /* Two runs x two nodes: three cells with data, one without. */
  assert_int_equal(occurrences(page, "class=\"cell "), 4);
  assert_int_equal(occurrences(page, "class=\"cell st-none\""), 1);
  assert_int_equal(occurrences(page, "class=\"cell st-failed\""), 1);
  assert_int_equal(occurrences(page, "class=\"run st-running\""), 1);
  assert_non_null(strstr(page, "id=\"runs-note\""));
  assert_non_null(strstr(page, "data-errors=\"1\""));
  assert_non_null(strstr(page, "wf&lt;script&gt;"));
  free(page);
  json_decref(data);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_markup_escaped),
      cmocka_unit_test(test_invalid_utf8_replaced),
      cmocka_unit_test(test_capped),
      cmocka_unit_test(test_label),
      cmocka_unit_test(test_status_class),
      cmocka_unit_test(test_run_page_hostile),
      cmocka_unit_test(test_run_page_small_has_no_notes),
      cmocka_unit_test(test_run_page_large_aggregates),
      cmocka_unit_test(test_run_page_without_run_row),
      cmocka_unit_test(test_workflow_page),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
