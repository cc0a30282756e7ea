/* The progress handler: the stored values at each step (hand-built events
 * and real runs), several runs at once, the renderer in forced TTY and
 * plain modes (parsed, with a fake clock for the rate limits), AUTO mode on
 * a pseudo-terminal and on a memory stream, options and ownership. */
#define _XOPEN_SOURCE 700 /* posix_openpt */
#define _POSIX_C_SOURCE 200809L

#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fc_test.h"

#define ID_A "01890a5d-ac96-774b-bcce-b302099a8057"
#define ID_B "01890a5d-ac96-774b-bcce-b302099a8058"
#define ID_C "01890a5d-ac96-774b-bcce-b302099a8059"
#define MS UINT64_C(1000000)

static uint64_t fake_now;
static uint64_t fake_clock(void *data) {
  (void)data;
  return fake_now;
}

/* ---- events ------------------------------------------------------------------ */

typedef struct {
  fc_event_t ev;
  int counts[FC_NODE_STATUS_COUNT];
  fc_error_info_t err;
} evbuf_t;

static const fc_event_t *mk(evbuf_t *b, fc_event_kind_t kind, const char *id, int node_count,
                            const char *node, int index, int attempt, int status) {
  memset(b, 0, sizeof *b);
  b->ev.kind = kind;
  b->ev.workflow_id = id;
  b->ev.workflow_name = "etl";
  b->ev.node_id = node;
  b->ev.node_type = "";
  b->ev.node_index = index;
  b->ev.attempt = attempt;
  b->ev.status = status;
  b->ev.node_count = node_count;
  if (kind == FC_EVENT_ERROR) {
    b->err.type = "exit_status";
    b->err.message = "failed";
    b->err.severity = FC_SEVERITY_ERROR;
    b->err.node_id = node;
    b->ev.error = &b->err;
  }
  return &b->ev;
}

static const fc_event_t *mk_end(evbuf_t *b, const char *id, int node_count, int status,
                                int64_t dur_us, int completed, int failed, int skipped) {
  mk(b, FC_EVENT_WORKFLOW_END, id, node_count, NULL, -1, 0, status);
  b->ev.duration_us = dur_us;
  b->counts[FC_NODE_COMPLETED] = completed;
  b->counts[FC_NODE_FAILED] = failed;
  b->counts[FC_NODE_SKIPPED] = skipped;
  b->ev.status_counts = b->counts;
  return &b->ev;
}

static void feed(fc_progress_t *p, const fc_event_t *ev) {
  assert_int_equal(fc_progress_observe(p, ev), 0);
}

/* The stored value of a run; checks the counters and returns it. */
static json_t *expect(fc_progress_memstore_t *s, const char *id, const char *status, int total,
                      int completed, int failed, int skipped, int running, double pct) {
  char key[80];
  json_t *v;
  snprintf(key, sizeof key, "workflow:%s", id);
  v = fc_progress_memstore_get(s, key);
  if (v == NULL)
    fail_msg("no value for %s", key);
#define EQ_INT(k, want)                                                                            \
  do {                                                                                             \
    json_t *x_ = json_object_get(v, k);                                                            \
    if (!json_is_integer(x_) || json_integer_value(x_) != (want))                                  \
      fail_msg("%s: %s is %lld, expected %d", key, k,                                              \
               json_is_integer(x_) ? (long long)json_integer_value(x_) : -999LL, (int)(want));     \
  } while (0)
  assert_string_equal(json_string_value(json_object_get(v, "status")), status);
  assert_string_equal(json_string_value(json_object_get(v, "workflow_id")), id);
  EQ_INT("total", total);
  EQ_INT("completed", completed);
  EQ_INT("failed", failed);
  EQ_INT("skipped", skipped);
  EQ_INT("running", running);
  EQ_INT("finished",
         completed + failed + skipped + json_integer_value(json_object_get(v, "cancelled")));
  if (fabs(json_real_value(json_object_get(v, "percent")) - pct) > 0.01)
    fail_msg("%s: percent %.3f, expected %.3f", key, json_real_value(json_object_get(v, "percent")),
             pct);
  return v;
}

static fc_progress_t *new_progress(fc_progress_memstore_t *s, FILE *out, fc_progress_mode_t mode) {
  fc_progress_options_t o;
  fc_progress_t *p;
  fc_progress_options_init(&o);
  assert_int_equal(o.mode, FC_PROGRESS_AUTO);
  assert_int_equal(o.tty_interval_ms, 100);
  assert_int_equal(o.plain_interval_ms, 1000);
  assert_int_equal(o.bar_width, 20);
  assert_int_equal(o.max_runs, 1024);
  assert_null(o.store.set);
  assert_null(o.key_prefix);
  if (s != NULL)
    o.store = fc_progress_memstore_store(s);
  o.out = out;
  o.mode = mode;
  o.clock_ns = fake_clock;
  assert_int_equal(fc_progress_new(&p, &o), 0);
  return p;
}

/* ---- stored values ----------------------------------------------------------- */

static void test_store_steps(void **state) {
  fc_progress_memstore_t *s;
  fc_progress_t *p;
  fc_progress_stats_t st;
  evbuf_t b;
  json_t *v;
  (void)state;
  assert_int_equal(fc_progress_memstore_new(&s), 0);
  p = new_progress(s, NULL, FC_PROGRESS_OFF);
  fake_now = 1000 * MS;

  feed(p, mk(&b, FC_EVENT_WORKFLOW_START, ID_A, 3, NULL, -1, 0, FC_WORKFLOW_RUNNING));
  v = expect(s, ID_A, "started", 3, 0, 0, 0, 0, 0.0);
  assert_int_equal(json_integer_value(json_object_get(v, "elapsed_ms")), 0);
  assert_string_equal(json_string_value(json_object_get(v, "workflow_name")), "etl");
  assert_null(json_object_get(v, "last_node"));

  fake_now += 250 * MS;
  feed(p, mk(&b, FC_EVENT_NODE_START, ID_A, 3, "a", 0, 1, FC_NODE_RUNNING));
  v = expect(s, ID_A, "running", 3, 0, 0, 0, 1, 0.0);
  assert_int_equal(json_integer_value(json_object_get(v, "elapsed_ms")), 250);

  feed(p, mk(&b, FC_EVENT_NODE_END, ID_A, 3, "a", 0, 1, FC_NODE_COMPLETED));
  v = expect(s, ID_A, "running", 3, 1, 0, 0, 0, 100.0 / 3);
  assert_string_equal(json_string_value(json_object_get(v, "last_node")), "a");

  feed(p, mk(&b, FC_EVENT_NODE_START, ID_A, 3, "b", 1, 1, FC_NODE_RUNNING));
  expect(s, ID_A, "running", 3, 1, 0, 0, 1, 100.0 / 3);
  feed(p, mk(&b, FC_EVENT_ERROR, ID_A, 3, "b", 1, 1, 0));
  v = expect(s, ID_A, "running", 3, 1, 0, 0, 1, 100.0 / 3);
  assert_int_equal(json_integer_value(json_object_get(v, "errors")), 1);
  feed(p, mk(&b, FC_EVENT_NODE_END, ID_A, 3, "b", 1, 1, FC_NODE_FAILED));
  expect(s, ID_A, "running", 3, 1, 1, 0, 0, 200.0 / 3);
  /* the retry: b leaves "failed" */
  feed(p, mk(&b, FC_EVENT_NODE_START, ID_A, 3, "b", 1, 2, FC_NODE_RUNNING));
  expect(s, ID_A, "running", 3, 1, 0, 0, 1, 100.0 / 3);
  feed(p, mk(&b, FC_EVENT_NODE_END, ID_A, 3, "b", 1, 2, FC_NODE_COMPLETED));
  expect(s, ID_A, "running", 3, 2, 0, 0, 0, 200.0 / 3);
  feed(p, mk(&b, FC_EVENT_NODE_END, ID_A, 3, "c", 2, 0, FC_NODE_SKIPPED));
  v = expect(s, ID_A, "running", 3, 2, 0, 1, 0, 100.0);
  assert_string_equal(json_string_value(json_object_get(v, "last_node")), "c");

  /* a live snapshot equals the stored value */
  {
    json_t *snap = fc_progress_get(p, ID_A);
    assert_non_null(snap);
    assert_true(json_equal(snap, v));
    json_decref(snap);
  }
  fc_progress_stats(p, &st);
  assert_int_equal(st.active_runs, 1);

  fake_now += 5000 * MS;
  feed(p, mk_end(&b, ID_A, 3, FC_WORKFLOW_COMPLETED, 1234567, 2, 0, 1));
  v = expect(s, ID_A, "completed", 3, 2, 0, 1, 0, 100.0);
  assert_int_equal(json_integer_value(json_object_get(v, "elapsed_ms")), 1234);
  assert_null(fc_progress_get(p, ID_A)); /* forgotten at the end */

  /* events of an unknown run are ignored, nothing is guessed */
  feed(p, mk(&b, FC_EVENT_NODE_END, ID_B, 3, "x", 0, 1, FC_NODE_COMPLETED));
  assert_null(fc_progress_memstore_get(s, "workflow:" ID_B));
  fc_progress_stats(p, &st);
  assert_int_equal(st.active_runs, 0);
  assert_int_equal(st.runs_started, 1);
  assert_int_equal(st.runs_ended, 1);
  assert_int_equal(st.events_ignored, 1);
  assert_int_equal(st.draws, 0); /* mode off */
  assert_int_equal(fc_progress_memstore_size(s), 1);
  assert_int_equal(fc_progress_memstore_sets(s), 10);
  fc_progress_free(p);
  fc_progress_memstore_free(s);
}

static void test_concurrent_runs(void **state) {
  fc_progress_memstore_t *s;
  fc_progress_options_t o;
  fc_progress_t *p;
  fc_progress_stats_t st;
  evbuf_t b;
  (void)state;
  assert_int_equal(fc_progress_memstore_new(&s), 0);
  memset(&o, 0, sizeof o);
  o.store = fc_progress_memstore_store(s);
  o.mode = FC_PROGRESS_OFF;
  o.max_runs = 2;
  o.clock_ns = fake_clock;
  assert_int_equal(fc_progress_new(&p, &o), 0);

  feed(p, mk(&b, FC_EVENT_WORKFLOW_START, ID_A, 2, NULL, -1, 0, FC_WORKFLOW_RUNNING));
  feed(p, mk(&b, FC_EVENT_WORKFLOW_START, ID_B, 4, NULL, -1, 0, FC_WORKFLOW_RUNNING));
  feed(p, mk(&b, FC_EVENT_WORKFLOW_START, ID_C, 1, NULL, -1, 0, FC_WORKFLOW_RUNNING));
  feed(p, mk(&b, FC_EVENT_NODE_START, ID_A, 2, "a", 0, 1, FC_NODE_RUNNING));
  feed(p, mk(&b, FC_EVENT_NODE_START, ID_B, 4, "a", 0, 1, FC_NODE_RUNNING));
  feed(p, mk(&b, FC_EVENT_NODE_START, ID_B, 4, "b", 1, 1, FC_NODE_RUNNING));
  feed(p, mk(&b, FC_EVENT_NODE_END, ID_B, 4, "b", 1, 1, FC_NODE_TIMED_OUT));
  feed(p, mk(&b, FC_EVENT_NODE_END, ID_A, 2, "a", 0, 1, FC_NODE_COMPLETED));
  feed(p, mk(&b, FC_EVENT_NODE_START, ID_C, 1, "a", 0, 1, FC_NODE_RUNNING));
  expect(s, ID_A, "running", 2, 1, 0, 0, 0, 50.0);
  expect(s, ID_B, "running", 4, 0, 1, 0, 1, 25.0);
  assert_null(fc_progress_memstore_get(s, "workflow:" ID_C)); /* beyond max_runs */
  feed(p, mk_end(&b, ID_B, 4, FC_WORKFLOW_CANCELLED, 1000, 0, 1, 0));
  expect(s, ID_B, "cancelled", 4, 0, 1, 0, 0, 25.0);
  expect(s, ID_A, "running", 2, 1, 0, 0, 0, 50.0);
  fc_progress_stats(p, &st);
  assert_int_equal(st.active_runs, 1);
  assert_int_equal(st.runs_untracked, 1);
  assert_int_equal(st.events_ignored, 1);
  fc_progress_free(p); /* a run still active is freed too */
  fc_progress_memstore_free(s);
}

/* ---- rendering --------------------------------------------------------------- */

typedef struct {
  char *buf;
  size_t len;
  FILE *f;
} cap_t;

static void cap_open(cap_t *c) {
  memset(c, 0, sizeof *c);
  c->f = open_memstream(&c->buf, &c->len);
  assert_non_null(c->f);
}

static void cap_close(cap_t *c) { assert_int_equal(fclose(c->f), 0); }

/* A TTY segment "label [bar] c/t pct% ..."; returns the number of fields. */
typedef struct {
  char label[64], bar[64], word[32];
  int completed, total, pct, running, failed, skipped;
  double secs;
  int final;
} tty_seg_t;

static void parse_tty(const char *seg, tty_seg_t *t) {
  char rest[256];
  size_t n;
  memset(t, 0, sizeof *t);
  n = strlen(seg);
  if (n >= 4 && strcmp(seg + n - 4, "\033[K\n") == 0)
    t->final = 1;
  else if (n < 3 || strcmp(seg + n - 3, "\033[K") != 0)
    fail_msg("TTY segment without clear-line: [%s]", seg);
  snprintf(rest, sizeof rest, "%.*s", (int)(n - 3 - (size_t)t->final), seg);
  if (sscanf(rest, "%63[^[][%63[#.]] %d/%d %d%% %31s", t->label, t->bar, &t->completed, &t->total,
             &t->pct, t->word) != 6)
    fail_msg("bad TTY segment [%s]", rest);
  if (t->final) {
    if (sscanf(strstr(rest, "% ") + 2, "%*s failed %d skipped %d %lfs", &t->failed, &t->skipped,
               &t->secs) != 3)
      fail_msg("bad final TTY segment [%s]", rest);
  } else {
    if (strcmp(t->word, "running") != 0 ||
        sscanf(strstr(rest, "running "), "running %d failed %d skipped %d %lfs", &t->running,
               &t->failed, &t->skipped, &t->secs) != 4)
      fail_msg("bad TTY segment [%s]", rest);
  }
}

/* Splits the output on \r (it must start with one); returns the count. */
static size_t split_cr(char *buf, char **segs, size_t max) {
  size_t n = 0;
  char *p = buf, *next;
  assert_true(buf[0] == '\r');
  p++;
  while (*p != '\0' && n < max) {
    next = strchr(p, '\r');
    if (next != NULL)
      *next = '\0';
    segs[n++] = p;
    if (next == NULL)
      break;
    p = next + 1;
  }
  return n;
}

static void test_tty_render(void **state) {
  fc_progress_t *p;
  fc_progress_stats_t st;
  cap_t c;
  evbuf_t b;
  char *segs[16];
  tty_seg_t t;
  size_t n;
  (void)state;
  cap_open(&c);
  p = new_progress(NULL, c.f, FC_PROGRESS_TTY); /* 100 ms rate limit */
  fake_now = 0;
  feed(p, mk(&b, FC_EVENT_WORKFLOW_START, ID_A, 4, NULL, -1, 0, FC_WORKFLOW_RUNNING)); /* draw */
  fake_now = 50 * MS;
  feed(p, mk(&b, FC_EVENT_NODE_START, ID_A, 4, "a", 0, 1, FC_NODE_RUNNING)); /* too soon */
  fake_now = 99 * MS;
  feed(p, mk(&b, FC_EVENT_NODE_START, ID_A, 4, "b", 1, 1, FC_NODE_RUNNING)); /* too soon */
  fake_now = 120 * MS;
  feed(p, mk(&b, FC_EVENT_NODE_END, ID_A, 4, "a", 0, 1, FC_NODE_COMPLETED)); /* draw */
  fake_now = 150 * MS;
  feed(p, mk(&b, FC_EVENT_NODE_END, ID_A, 4, "b", 1, 1, FC_NODE_FAILED)); /* too soon */
  assert_int_equal(fc_progress_refresh(p), 0);                            /* too soon */
  fake_now = 230 * MS;
  assert_int_equal(fc_progress_refresh(p), 0); /* draw */
  fake_now = 260 * MS;
  feed(p, mk(&b, FC_EVENT_NODE_END, ID_A, 4, "c", 2, 0, FC_NODE_SKIPPED)); /* too soon */
  fake_now = 400 * MS;
  feed(p, mk_end(&b, ID_A, 4, FC_WORKFLOW_FAILED, 0, 1, 1, 2)); /* final */
  fc_progress_stats(p, &st);
  assert_int_equal(st.draws, 4);
  fc_progress_free(p);
  cap_close(&c);

  /* exactly one newline, at the very end */
  assert_int_equal(strchr(c.buf, '\n') - c.buf, (long)c.len - 1);
  n = split_cr(c.buf, segs, 16);
  assert_int_equal(n, 4);
  parse_tty(segs[0], &t);
  assert_false(t.final);
  assert_string_equal(t.label, "etl ");
  assert_string_equal(t.bar, "....................");
  assert_int_equal(t.completed, 0);
  assert_int_equal(t.total, 4);
  assert_int_equal(t.pct, 0);
  assert_int_equal(t.running, 0);
  parse_tty(segs[1], &t);
  assert_int_equal(t.completed, 1);
  assert_int_equal(t.pct, 25);
  assert_int_equal(t.running, 1);
  assert_string_equal(t.bar, "#####...............");
  assert_true(fabs(t.secs - 0.1) < 1e-9);
  parse_tty(segs[2], &t);
  assert_int_equal(t.completed, 1);
  assert_int_equal(t.failed, 1);
  assert_int_equal(t.running, 0);
  assert_int_equal(t.pct, 50);
  assert_string_equal(t.bar, "##########..........");
  parse_tty(segs[3], &t);
  assert_true(t.final);
  assert_string_equal(t.word, "failed");
  assert_int_equal(t.completed, 1);
  assert_int_equal(t.failed, 1);
  assert_int_equal(t.skipped, 2);
  assert_int_equal(t.pct, 100);
  assert_true(fabs(t.secs - 0.4) < 1e-9);
  assert_string_equal(t.bar, "####################");
  free(c.buf);
}

static void test_tty_several_runs(void **state) {
  fc_progress_t *p;
  cap_t c;
  evbuf_t b;
  char *segs[16];
  tty_seg_t t;
  size_t n;
  (void)state;
  cap_open(&c);
  p = new_progress(NULL, c.f, FC_PROGRESS_TTY);
  fake_now = 0;
  feed(p, mk(&b, FC_EVENT_WORKFLOW_START, ID_A, 2, NULL, -1, 0, FC_WORKFLOW_RUNNING));
  fake_now = 200 * MS;
  feed(p, mk(&b, FC_EVENT_WORKFLOW_START, ID_B, 3, NULL, -1, 0, FC_WORKFLOW_RUNNING));
  fake_now = 400 * MS;
  feed(p, mk(&b, FC_EVENT_NODE_START, ID_B, 3, "x", 0, 1, FC_NODE_RUNNING));
  fake_now = 450 * MS;
  feed(p, mk_end(&b, ID_A, 2, FC_WORKFLOW_COMPLETED, 450000, 2, 0, 0));
  fc_progress_free(p);
  cap_close(&c);

  n = split_cr(c.buf, segs, 16);
  assert_int_equal(n, 5);
  parse_tty(segs[0], &t);
  assert_string_equal(t.label, "etl ");
  parse_tty(segs[1], &t);
  assert_string_equal(t.label, "2 runs ");
  assert_int_equal(t.total, 5);
  parse_tty(segs[2], &t);
  assert_string_equal(t.label, "2 runs ");
  assert_int_equal(t.running, 1);
  assert_true(fabs(t.secs - 0.4) < 1e-9); /* the oldest run's */
  parse_tty(segs[3], &t);                 /* A's final line */
  assert_true(t.final);
  assert_string_equal(t.word, "completed");
  assert_int_equal(t.completed, 2);
  assert_int_equal(t.total, 2);
  parse_tty(segs[4], &t); /* B's line again */
  assert_false(t.final);
  assert_string_equal(t.label, "etl ");
  assert_int_equal(t.total, 3);
  assert_int_equal(t.running, 1);
  free(c.buf);
}

/* One plain line: "<kind> wf="..." id=... key=value ...". */
typedef struct {
  char kind[16], wf[256], id[64], status[16];
  int completed, total, running, failed, skipped, cancelled;
  double percent;
  long long elapsed_ms;
} plain_t;

static void parse_plain(const char *line, plain_t *l) {
  memset(l, 0, sizeof *l);
  if (sscanf(line,
             "%15s wf=\"%255[^\"]\" id=%63s status=%15s completed=%d total=%d running=%d failed=%d "
             "skipped=%d cancelled=%d percent=%lf elapsed_ms=%lld",
             l->kind, l->wf, l->id, l->status, &l->completed, &l->total, &l->running, &l->failed,
             &l->skipped, &l->cancelled, &l->percent, &l->elapsed_ms) != 12)
    fail_msg("bad plain line [%s]", line);
}

static size_t split_lines(char *buf, char **lines, size_t max) {
  size_t n = 0;
  char *p = buf, *nl;
  while (*p != '\0' && n < max) {
    nl = strchr(p, '\n');
    assert_non_null(nl); /* complete lines only */
    *nl = '\0';
    assert_null(strchr(p, '\r'));
    lines[n++] = p;
    p = nl + 1;
  }
  return n;
}

static void test_plain_render(void **state) {
  fc_progress_t *p;
  cap_t c;
  evbuf_t b;
  char *lines[16];
  plain_t l;
  size_t n;
  (void)state;
  cap_open(&c);
  p = new_progress(NULL, c.f, FC_PROGRESS_PLAIN); /* once a second */
  fake_now = 0;
  feed(p, mk(&b, FC_EVENT_WORKFLOW_START, ID_A, 2, NULL, -1, 0, FC_WORKFLOW_RUNNING)); /* line */
  fake_now = 300 * MS;
  feed(p, mk(&b, FC_EVENT_NODE_START, ID_A, 2, "a", 0, 1, FC_NODE_RUNNING));
  fake_now = 999 * MS;
  feed(p, mk(&b, FC_EVENT_NODE_END, ID_A, 2, "a", 0, 1, FC_NODE_COMPLETED));
  fake_now = 1200 * MS;
  feed(p, mk(&b, FC_EVENT_NODE_START, ID_A, 2, "b", 1, 1, FC_NODE_RUNNING)); /* line */
  fake_now = 1300 * MS;
  feed(p, mk(&b, FC_EVENT_WORKFLOW_START, ID_B, 1, NULL, -1, 0, FC_WORKFLOW_RUNNING));
  fake_now = 2300 * MS;
  feed(p, mk(&b, FC_EVENT_NODE_END, ID_A, 2, "b", 1, 1, FC_NODE_COMPLETED)); /* two lines */
  fake_now = 2400 * MS;
  feed(p, mk_end(&b, ID_A, 2, FC_WORKFLOW_COMPLETED, 0, 2, 0, 0)); /* done line */
  fc_progress_free(p);
  cap_close(&c);

  n = split_lines(c.buf, lines, 16);
  assert_int_equal(n, 5);
  parse_plain(lines[0], &l);
  assert_string_equal(l.kind, "progress");
  assert_string_equal(l.wf, "etl");
  assert_string_equal(l.id, ID_A);
  assert_string_equal(l.status, "started");
  assert_int_equal(l.total, 2);
  assert_int_equal(l.elapsed_ms, 0);
  parse_plain(lines[1], &l);
  assert_string_equal(l.status, "running");
  assert_int_equal(l.completed, 1);
  assert_int_equal(l.running, 1);
  assert_true(fabs(l.percent - 50.0) < 1e-9);
  assert_int_equal(l.elapsed_ms, 1200);
  parse_plain(lines[2], &l);
  assert_string_equal(l.id, ID_A);
  assert_int_equal(l.completed, 2);
  assert_true(fabs(l.percent - 100.0) < 1e-9);
  parse_plain(lines[3], &l);
  assert_string_equal(l.id, ID_B);
  assert_string_equal(l.status, "started");
  assert_int_equal(l.elapsed_ms, 1000);
  parse_plain(lines[4], &l);
  assert_string_equal(l.kind, "done");
  assert_string_equal(l.id, ID_A);
  assert_string_equal(l.status, "completed");
  assert_int_equal(l.completed, 2);
  assert_int_equal(l.running, 0);
  assert_int_equal(l.elapsed_ms, 2400);
  free(c.buf);
}

static void test_auto_mode(void **state) {
  fc_progress_options_t o;
  fc_progress_t *p;
  cap_t c;
  evbuf_t b;
  int master, slave;
  FILE *tty;
  char buf[4096];
  struct pollfd pfd;
  ssize_t n;
  (void)state;
  /* Not a terminal: plain lines. */
  cap_open(&c);
  memset(&o, 0, sizeof o);
  o.out = c.f;
  assert_int_equal(fc_progress_new(&p, &o), 0);
  feed(p, mk(&b, FC_EVENT_WORKFLOW_START, ID_A, 1, NULL, -1, 0, FC_WORKFLOW_RUNNING));
  fc_progress_free(p);
  cap_close(&c);
  assert_true(strncmp(c.buf, "progress wf=\"etl\" ", 18) == 0);
  free(c.buf);

  /* A pseudo-terminal: the TTY renderer. */
  master = posix_openpt(O_RDWR | O_NOCTTY);
  if (master < 0 || grantpt(master) != 0 || unlockpt(master) != 0) {
    if (master >= 0)
      close(master);
    skip();
  }
  slave = open(ptsname(master), O_RDWR | O_NOCTTY);
  assert_true(slave >= 0);
  tty = fdopen(slave, "w");
  assert_non_null(tty);
  memset(&o, 0, sizeof o);
  o.out = tty;
  assert_int_equal(fc_progress_new(&p, &o), 0);
  feed(p, mk(&b, FC_EVENT_WORKFLOW_START, ID_A, 1, NULL, -1, 0, FC_WORKFLOW_RUNNING));
  fc_progress_free(p);
  pfd.fd = master;
  pfd.events = POLLIN;
  assert_int_equal(poll(&pfd, 1, 2000), 1);
  n = read(master, buf, sizeof buf - 1);
  assert_true(n > 0);
  buf[n] = '\0';
  assert_true(buf[0] == '\r');
  assert_non_null(strstr(buf, "etl ["));
  assert_non_null(strstr(buf, "\033[K"));
  fclose(tty);
  close(master);
}

/* ---- a real run -------------------------------------------------------------- */

typedef struct {
  fc_progress_memstore_t *s;
  int checked;
} probe_t;

static void fn_ok(fc_node_ctx_t *ctx, void *ud) {
  (void)ud;
  fc_node_succeed(ctx, json_integer(1));
}

static void fn_fail(fc_node_ctx_t *ctx, void *ud) {
  (void)ud;
  fc_node_failf(ctx, FC_SEVERITY_ERROR, "boom", "attempt %d", fc_node_ctx_attempt(ctx));
}

/* The third node of the chain looks at its own run's progress. */
static void fn_probe(fc_node_ctx_t *ctx, void *ud) {
  probe_t *pr = ud;
  char key[80];
  json_t *v;
  snprintf(key, sizeof key, "workflow:%s", fc_node_ctx_workflow_id(ctx));
  v = fc_progress_memstore_get(pr->s, key);
  if (v != NULL && json_integer_value(json_object_get(v, "completed")) == 2 &&
      json_integer_value(json_object_get(v, "running")) == 1 &&
      json_integer_value(json_object_get(v, "total")) == 5)
    pr->checked++;
  fc_node_succeed(ctx, json_integer(3));
}

static void on_done(fc_run_t *run, void *data) {
  (void)run;
  (*(int *)data)++;
}

static void test_real_run(void **state) {
  fc_progress_memstore_t *s;
  fc_progress_options_t o;
  fc_progress_t *p;
  fc_manager_t *mgr;
  fc_workflow_t *wf;
  fc_node_t *n;
  fc_handler_t h;
  fc_run_t *run;
  uv_loop_t loop;
  probe_t pr = {0};
  cap_t c;
  char *lines[64], id[FC_UUID_STRING_LENGTH];
  plain_t l;
  size_t nl;
  int done = 0;
  (void)state;
  /* a -> b -> probe ; bad (1 retry) -> after_bad (skipped) */
  assert_int_equal(fc_workflow_new(&wf, "chain"), 0);
  assert_int_equal(fc_workflow_add_node(wf, "a", fn_ok, NULL, NULL), 0);
  assert_int_equal(fc_workflow_add_node(wf, "b", fn_ok, NULL, &n), 0);
  assert_int_equal(fc_node_add_dep(n, "a"), 0);
  assert_int_equal(fc_workflow_add_node(wf, "probe", fn_probe, &pr, &n), 0);
  assert_int_equal(fc_node_add_dep(n, "b"), 0);
  assert_int_equal(fc_workflow_add_node(wf, "bad", fn_fail, NULL, &n), 0);
  assert_int_equal(fc_node_set_retries(n, 1, 0, 0), 0);
  assert_int_equal(fc_workflow_add_node(wf, "after_bad", fn_ok, NULL, &n), 0);
  assert_int_equal(fc_node_add_dep(n, "bad"), 0);
  assert_int_equal(fc_workflow_set_max_parallel(wf, 1), 0); /* a, b, probe, bad in order */
  assert_int_equal(fc_workflow_validate(wf, NULL), 0);

  assert_int_equal(fc_progress_memstore_new(&s), 0);
  pr.s = s;
  cap_open(&c);
  memset(&o, 0, sizeof o);
  o.store = fc_progress_memstore_store(s);
  o.out = c.f;
  o.mode = FC_PROGRESS_PLAIN;
  assert_int_equal(fc_progress_new(&p, &o), 0);
  assert_int_equal(fc_manager_new(&mgr), 0);
  assert_int_equal(fc_progress_handler_owned(p, &h), 0);
  assert_int_equal(fc_manager_add(mgr, &h, 0, NULL), 0);

  assert_int_equal(uv_loop_init(&loop), 0);
  assert_int_equal(fc_run_new(&run, &loop, wf, mgr, NULL), 0);
  assert_int_equal(fc_run_start(run, NULL, on_done, &done), 0);
  snprintf(id, sizeof id, "%s", fc_run_id(run));
  assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(done, 1);
  fc_run_close(run, NULL, NULL);
  fc_test_loop_close(&loop);
  assert_int_equal(fc_manager_failures(mgr), 0);

  assert_int_equal(pr.checked, 1);
  expect(s, id, "failed", 5, 3, 1, 1, 0, 100.0);
  fc_manager_free(mgr); /* frees p (owned) */
  cap_close(&c);
  nl = split_lines(c.buf, lines, 64);
  assert_true(nl >= 2);
  parse_plain(lines[0], &l);
  assert_string_equal(l.kind, "progress");
  assert_string_equal(l.wf, "chain");
  assert_string_equal(l.id, id);
  assert_int_equal(l.total, 5);
  parse_plain(lines[nl - 1], &l);
  assert_string_equal(l.kind, "done");
  assert_string_equal(l.status, "failed");
  assert_int_equal(l.completed, 3);
  assert_int_equal(l.failed, 1);
  assert_int_equal(l.skipped, 1);
  assert_true(fabs(l.percent - 100.0) < 1e-9);
  free(c.buf);
  fc_progress_memstore_free(s);
  fc_workflow_free(wf);
}

/* ---- options, ownership, failures -------------------------------------------- */

typedef struct {
  int destroyed;
  int fail;
  int sets;
} fake_store_t;

static int fake_set(void *self, const char *key, json_t *value) {
  fake_store_t *f = self;
  (void)key;
  (void)value;
  f->sets++;
  return f->fail;
}

static void fake_destroy(void *self) { ((fake_store_t *)self)->destroyed++; }

static void test_options_and_ownership(void **state) {
  fake_store_t fs = {0};
  fc_progress_options_t o;
  fc_progress_t *p;
  fc_progress_stats_t st;
  evbuf_t b;
  (void)state;
  memset(&o, 0, sizeof o);
  o.store.self = &fs;
  o.store.set = fake_set;
  o.store.destroy = fake_destroy;
  o.mode = (fc_progress_mode_t)7;
  assert_int_equal(fc_progress_new(&p, &o), FC_EINVAL);
  assert_null(p);
  assert_int_equal(fs.destroyed, 1); /* owned even on failure */
  o.mode = FC_PROGRESS_OFF;
  o.bar_width = 1000;
  assert_int_equal(fc_progress_new(&p, &o), FC_EINVAL);
  assert_int_equal(fs.destroyed, 2);
  o.bar_width = 0;
  o.key_prefix = "progress:";
  fs.fail = FC_EDB;
  assert_int_equal(fc_progress_new(&p, &o), 0);
  /* a failing store: the error comes back, counted */
  assert_int_equal(fc_progress_observe(p, mk(&b, FC_EVENT_WORKFLOW_START, ID_A, 1, NULL, -1, 0, 1)),
                   FC_EDB);
  fc_progress_stats(p, &st);
  assert_int_equal(st.store_failures, 1);
  assert_int_equal(fs.sets, 1);
  assert_int_equal(fc_progress_observe(NULL, &b.ev), FC_EINVAL);
  assert_int_equal(fc_progress_observe(p, NULL), FC_EINVAL);
  fc_progress_free(p);
  assert_int_equal(fs.destroyed, 3);

  /* the key prefix */
  {
    fc_progress_memstore_t *s;
    assert_int_equal(fc_progress_memstore_new(&s), 0);
    memset(&o, 0, sizeof o);
    o.store = fc_progress_memstore_store(s);
    o.mode = FC_PROGRESS_OFF;
    o.key_prefix = "progress:";
    assert_int_equal(fc_progress_new(&p, &o), 0);
    feed(p, mk(&b, FC_EVENT_WORKFLOW_START, ID_A, 1, NULL, -1, 0, 1));
    assert_non_null(fc_progress_memstore_get(s, "progress:" ID_A));
    assert_null(fc_progress_memstore_get(s, "workflow:" ID_A));
    fc_progress_free(p);
    fc_progress_memstore_free(s);
  }
  /* defaults: no options at all */
  assert_int_equal(fc_progress_new(&p, NULL), 0);
  fc_progress_free(p);
  fc_progress_free(NULL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_store_steps),  cmocka_unit_test(test_concurrent_runs),
      cmocka_unit_test(test_tty_render),   cmocka_unit_test(test_tty_several_runs),
      cmocka_unit_test(test_plain_render), cmocka_unit_test(test_auto_mode),
      cmocka_unit_test(test_real_run),     cmocka_unit_test(test_options_and_ownership),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
