/* The callback manager: order, interest, isolation, rate-limited logs,
 * removal (also from inside a dispatch), ownership. */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fc_test.h"

/* ---- a probe handler ----------------------------------------------------- */

#define TRACE_MAX 64

typedef struct {
  char calls[TRACE_MAX][32]; /* "<tag>:<kind>" in call order */
  int n;
  char destroyed[TRACE_MAX][16];
  int ndestroyed;
} trace_t;

typedef struct probe_s probe_t;
typedef int (*probe_action)(probe_t *p, const fc_event_t *ev);

struct probe_s {
  const char *tag;
  trace_t *trace;
  int rc; /* returned by every callback */
  int destroy_count;
  probe_action action; /* run inside the callback, before returning rc */
  fc_manager_t *m;
  int target_id; /* for actions */
  probe_t *other;
  int observed; /* what an action saw */
};

static int probe_cb(void *self, const fc_event_t *ev) {
  probe_t *p = self;
  if (p->trace->n < TRACE_MAX)
    snprintf(p->trace->calls[p->trace->n++], sizeof p->trace->calls[0], "%s:%s", p->tag,
             fc_event_kind_name(ev->kind));
  if (p->action != NULL)
    return p->action(p, ev);
  return p->rc;
}

static void probe_destroy(void *self) {
  probe_t *p = self;
  p->destroy_count++;
  if (p->trace->ndestroyed < TRACE_MAX)
    snprintf(p->trace->destroyed[p->trace->ndestroyed++], sizeof p->trace->destroyed[0], "%s",
             p->tag);
}

static void probe_init(probe_t *p, trace_t *t, const char *tag) {
  memset(p, 0, sizeof *p);
  p->tag = tag;
  p->trace = t;
}

/* A handler for every kind. */
static fc_handler_t probe_handler(probe_t *p) {
  fc_handler_t h;
  memset(&h, 0, sizeof h);
  h.name = p->tag;
  h.self = p;
  h.on_workflow_start = probe_cb;
  h.on_workflow_end = probe_cb;
  h.on_node_start = probe_cb;
  h.on_node_end = probe_cb;
  h.on_error = probe_cb;
  h.destroy = probe_destroy;
  return h;
}

static fc_event_t event_of(fc_event_kind_t kind) {
  fc_event_t ev;
  memset(&ev, 0, sizeof ev);
  ev.kind = kind;
  ev.workflow_id = "01890a5d-ac96-774b-bcce-b302099a8057";
  ev.workflow_name = "wf";
  ev.node_index = -1;
  if (kind == FC_EVENT_NODE_START || kind == FC_EVENT_NODE_END) {
    ev.node_id = "n1";
    ev.node_type = "";
    ev.node_index = 0;
    ev.attempt = 1;
  }
  return ev;
}

static int dispatch_kind(fc_manager_t *m, fc_event_kind_t kind) {
  fc_event_t ev = event_of(kind);
  return fc_manager_dispatch(m, &ev);
}

/* Joins the trace into "a:node_start b:node_start ...". */
static const char *trace_str(const trace_t *t, char *buf, size_t size) {
  int i;
  size_t len = 0;
  buf[0] = '\0';
  for (i = 0; i < t->n && len < size; i++)
    len += (size_t)snprintf(buf + len, size - len, "%s%s", i ? " " : "", t->calls[i]);
  return buf;
}

static const char *destroyed_str(const trace_t *t, char *buf, size_t size) {
  int i;
  size_t len = 0;
  buf[0] = '\0';
  for (i = 0; i < t->ndestroyed && len < size; i++)
    len += (size_t)snprintf(buf + len, size - len, "%s%s", i ? " " : "", t->destroyed[i]);
  return buf;
}

/* ---- log sink ------------------------------------------------------------ */

typedef struct {
  char lines[32][640];
  int n;
} sink_t;

static void sink_cb(void *data, const char *line) {
  sink_t *s = data;
  if (s->n < 32)
    snprintf(s->lines[s->n], sizeof s->lines[0], "%s", line);
  s->n++;
}

/* ---- tests --------------------------------------------------------------- */

static void test_handler_helpers(void **state) {
  trace_t t = {0};
  probe_t p;
  fc_handler_t h;
  fc_event_t ev = event_of(FC_EVENT_ERROR);
  (void)state;
  probe_init(&p, &t, "p");
  h = probe_handler(&p);
  h.on_node_end = NULL;
  assert_ptr_equal(fc_handler_get_cb(&h, FC_EVENT_ERROR), probe_cb);
  assert_null(fc_handler_get_cb(&h, FC_EVENT_NODE_END));
  assert_null(fc_handler_get_cb(&h, FC_EVENT_KIND_COUNT));
  assert_null(fc_handler_get_cb(NULL, FC_EVENT_ERROR));

  p.rc = -7;
  assert_int_equal(fc_handler_call(&h, &ev), -7);
  ev.kind = FC_EVENT_NODE_END;
  assert_int_equal(fc_handler_call(&h, &ev), 0); /* not interested */
  assert_int_equal(t.n, 1);
  assert_int_equal(fc_handler_call(NULL, &ev), FC_EINVAL);

  fc_handler_destroy(&h);
  assert_int_equal(p.destroy_count, 1);
  assert_null(h.self);
  assert_null(h.destroy);
  fc_handler_destroy(&h); /* cleared: nothing to call again */
  assert_int_equal(p.destroy_count, 1);
  fc_handler_destroy(NULL);
}

static void test_priority_order(void **state) {
  trace_t t = {0};
  probe_t p[5];
  const char *tags[5] = {"a", "b", "c", "d", "e"};
  const int prio[5] = {0, 10, 0, 10, -5};
  fc_manager_t *m;
  char buf[512];
  int i, id;
  (void)state;
  assert_int_equal(fc_manager_new(&m), 0);
  for (i = 0; i < 5; i++) {
    fc_handler_t h;
    probe_init(&p[i], &t, tags[i]);
    h = probe_handler(&p[i]);
    assert_int_equal(fc_manager_add(m, &h, prio[i], &id), 0);
    assert_true(id > 0);
  }
  assert_int_equal(fc_manager_count(m), 5);
  assert_int_equal(dispatch_kind(m, FC_EVENT_NODE_START), 0);
  assert_string_equal(trace_str(&t, buf, sizeof buf),
                      "b:node_start d:node_start a:node_start c:node_start e:node_start");
  t.n = 0;
  assert_int_equal(dispatch_kind(m, FC_EVENT_WORKFLOW_END), 0);
  assert_string_equal(trace_str(&t, buf, sizeof buf),
                      "b:workflow_end d:workflow_end a:workflow_end c:workflow_end e:workflow_end");
  fc_manager_free(m);
  /* free destroys in order of adding, each once */
  assert_string_equal(destroyed_str(&t, buf, sizeof buf), "a b c d e");
  for (i = 0; i < 5; i++)
    assert_int_equal(p[i].destroy_count, 1);
}

/* Adding a handler with a higher priority after the others puts it first;
 * the order survives removals. */
static void test_priority_order_after_changes(void **state) {
  trace_t t = {0};
  probe_t a, b, c;
  fc_handler_t h;
  fc_manager_t *m;
  char buf[256];
  int ida, idb, idc;
  (void)state;
  assert_int_equal(fc_manager_new(&m), 0);
  probe_init(&a, &t, "a");
  probe_init(&b, &t, "b");
  probe_init(&c, &t, "c");
  h = probe_handler(&a);
  assert_int_equal(fc_manager_add(m, &h, 1, &ida), 0);
  h = probe_handler(&b);
  assert_int_equal(fc_manager_add(m, &h, 1, &idb), 0);
  h = probe_handler(&c);
  assert_int_equal(fc_manager_add(m, &h, 100, &idc), 0);
  assert_true(ida != idb && idb != idc && ida != idc);
  dispatch_kind(m, FC_EVENT_ERROR);
  assert_string_equal(trace_str(&t, buf, sizeof buf), "c:error a:error b:error");
  assert_int_equal(fc_manager_remove(m, ida), 0);
  t.n = 0;
  dispatch_kind(m, FC_EVENT_ERROR);
  assert_string_equal(trace_str(&t, buf, sizeof buf), "c:error b:error");
  fc_manager_free(m);
}

static void test_only_interested(void **state) {
  trace_t t = {0};
  probe_t all, errors_only;
  fc_handler_t h;
  fc_manager_t *m;
  fc_handler_stats_t st;
  char buf[256];
  int id_all, id_err;
  (void)state;
  assert_int_equal(fc_manager_new(&m), 0);
  probe_init(&all, &t, "all");
  probe_init(&errors_only, &t, "err");
  h = probe_handler(&errors_only);
  h.on_workflow_start = h.on_workflow_end = h.on_node_start = h.on_node_end = NULL;
  assert_int_equal(fc_manager_add(m, &h, 5, &id_err), 0);
  h = probe_handler(&all);
  assert_int_equal(fc_manager_add(m, &h, 0, &id_all), 0);

  dispatch_kind(m, FC_EVENT_NODE_START);
  dispatch_kind(m, FC_EVENT_NODE_END);
  dispatch_kind(m, FC_EVENT_ERROR);
  assert_string_equal(trace_str(&t, buf, sizeof buf),
                      "all:node_start all:node_end err:error all:error");
  assert_int_equal(fc_manager_handler_stats(m, id_err, &st), 0);
  assert_int_equal(st.calls, 1);
  assert_int_equal(fc_manager_handler_stats(m, id_all, &st), 0);
  assert_int_equal(st.calls, 3);
  assert_int_equal(st.failures, 0);
  assert_int_equal(st.last_error, 0);

  /* an event kind out of range reaches nobody */
  {
    fc_event_t ev = event_of(FC_EVENT_NODE_START);
    ev.kind = FC_EVENT_KIND_COUNT;
    t.n = 0;
    assert_int_equal(fc_manager_dispatch(m, &ev), 0);
    assert_int_equal(t.n, 0);
  }
  fc_manager_free(m);
}

static void test_failure_isolation(void **state) {
  trace_t t = {0};
  probe_t a, b, c;
  fc_handler_t h;
  fc_manager_t *m;
  fc_handler_stats_t st;
  sink_t sink = {0};
  char buf[256];
  int ida, idb, idc, i;
  (void)state;
  assert_int_equal(fc_manager_new(&m), 0);
  fc_manager_set_log_sink(m, sink_cb, &sink, 0);
  probe_init(&a, &t, "a");
  probe_init(&b, &t, "b");
  probe_init(&c, &t, "c");
  b.rc = FC_EHANDLER;
  c.rc = UV_EIO;
  h = probe_handler(&a);
  assert_int_equal(fc_manager_add(m, &h, 3, &ida), 0);
  h = probe_handler(&b);
  assert_int_equal(fc_manager_add(m, &h, 2, &idb), 0);
  h = probe_handler(&c);
  assert_int_equal(fc_manager_add(m, &h, 1, &idc), 0);

  assert_int_equal(dispatch_kind(m, FC_EVENT_NODE_END), 2);
  /* the failing handler did not stop the ones after it */
  assert_string_equal(trace_str(&t, buf, sizeof buf), "a:node_end b:node_end c:node_end");
  c.rc = 0;
  for (i = 0; i < 3; i++)
    assert_int_equal(dispatch_kind(m, FC_EVENT_NODE_START), 1);

  assert_int_equal(fc_manager_handler_stats(m, ida, &st), 0);
  assert_int_equal(st.calls, 4);
  assert_int_equal(st.failures, 0);
  assert_int_equal(fc_manager_handler_stats(m, idb, &st), 0);
  assert_int_equal(st.calls, 4);
  assert_int_equal(st.failures, 4);
  assert_int_equal(st.last_error, FC_EHANDLER);
  assert_int_equal(fc_manager_handler_stats(m, idc, &st), 0);
  assert_int_equal(st.calls, 4);
  assert_int_equal(st.failures, 1);
  assert_int_equal(st.last_error, UV_EIO);
  assert_int_equal(fc_manager_failures(m), 5);
  assert_int_equal(fc_manager_handler_stats(m, 9999, &st), FC_ENOTFOUND);

  /* default rate (5/s per handler): all five lines got through */
  assert_int_equal(sink.n, 5);
  assert_non_null(strstr(sink.lines[0], "\"b\""));
  assert_non_null(strstr(sink.lines[0], "node_end"));
  assert_non_null(strstr(sink.lines[0], "FC_EHANDLER"));
  assert_non_null(strstr(sink.lines[0], "n1"));
  assert_non_null(strstr(sink.lines[1], "\"c\""));
  assert_non_null(strstr(sink.lines[1], "EIO"));
  assert_non_null(strstr(sink.lines[2], "node_start"));
  for (i = 0; i < sink.n; i++)
    assert_null(strchr(sink.lines[i], '\n'));
  fc_manager_free(m);
}

static void test_rate_limited_log(void **state) {
  trace_t t = {0};
  probe_t a, b;
  fc_handler_t h;
  fc_manager_t *m;
  sink_t sink = {0};
  int i, a_lines = 0, b_lines = 0;
  (void)state;
  assert_int_equal(fc_manager_new(&m), 0);
  fc_manager_set_log_sink(m, sink_cb, &sink, 3);
  probe_init(&a, &t, "alpha");
  probe_init(&b, &t, "beta");
  a.rc = b.rc = FC_EHANDLER;
  h = probe_handler(&a);
  assert_int_equal(fc_manager_add(m, &h, 0, NULL), 0);
  h = probe_handler(&b);
  assert_int_equal(fc_manager_add(m, &h, 0, NULL), 0);
  for (i = 0; i < 10; i++)
    assert_int_equal(dispatch_kind(m, FC_EVENT_ERROR), 2);
  /* 3 lines per handler, the other 7 each suppressed */
  assert_int_equal(sink.n, 6);
  for (i = 0; i < sink.n; i++) {
    a_lines += strstr(sink.lines[i], "\"alpha\"") != NULL;
    b_lines += strstr(sink.lines[i], "\"beta\"") != NULL;
    assert_null(strstr(sink.lines[i], "suppressed"));
  }
  assert_int_equal(a_lines, 3);
  assert_int_equal(b_lines, 3);
  assert_int_equal(fc_manager_failures(m), 20);

  uv_sleep(1100); /* a new window */
  b.rc = 0;
  assert_int_equal(dispatch_kind(m, FC_EVENT_ERROR), 1);
  assert_int_equal(sink.n, 7);
  assert_non_null(strstr(sink.lines[6], "\"alpha\""));
  assert_non_null(strstr(sink.lines[6], "(7 similar lines suppressed)"));
  /* the count was reported: the next line has none */
  assert_int_equal(dispatch_kind(m, FC_EVENT_ERROR), 1);
  assert_int_equal(sink.n, 8);
  assert_null(strstr(sink.lines[7], "suppressed"));
  fc_manager_free(m);
}

static void test_names(void **state) {
  trace_t t = {0};
  probe_t a, b;
  fc_handler_t h;
  fc_manager_t *m;
  sink_t sink = {0};
  char name[16], expect[32];
  int idb;
  (void)state;
  assert_int_equal(fc_manager_new(&m), 0);
  fc_manager_set_log_sink(m, sink_cb, &sink, 10);
  probe_init(&a, &t, "a");
  probe_init(&b, &t, "b");
  a.rc = b.rc = -1;
  snprintf(name, sizeof name, "metrics");
  h = probe_handler(&a);
  h.name = name;
  assert_int_equal(fc_manager_add(m, &h, 1, NULL), 0);
  memset(name, 'X', sizeof name - 1); /* the manager kept its own copy */
  h = probe_handler(&b);
  h.name = NULL;
  assert_int_equal(fc_manager_add(m, &h, 0, &idb), 0);
  dispatch_kind(m, FC_EVENT_WORKFLOW_START);
  assert_int_equal(sink.n, 2);
  assert_non_null(strstr(sink.lines[0], "\"metrics\""));
  snprintf(expect, sizeof expect, "\"handler#%d\"", idb);
  assert_non_null(strstr(sink.lines[1], expect));
  fc_manager_free(m);
}

static void test_remove(void **state) {
  trace_t t = {0};
  probe_t a, b;
  fc_handler_t h;
  fc_manager_t *m;
  fc_handler_stats_t st;
  char buf[256];
  int ida, idb;
  (void)state;
  assert_int_equal(fc_manager_new(&m), 0);
  probe_init(&a, &t, "a");
  probe_init(&b, &t, "b");
  h = probe_handler(&a);
  assert_int_equal(fc_manager_add(m, &h, 0, &ida), 0);
  h = probe_handler(&b);
  assert_int_equal(fc_manager_add(m, &h, 0, &idb), 0);
  assert_int_equal(fc_manager_remove(m, ida), 0);
  assert_int_equal(a.destroy_count, 1);
  assert_int_equal(b.destroy_count, 0);
  assert_int_equal(fc_manager_count(m), 1);
  assert_int_equal(fc_manager_remove(m, ida), FC_ENOTFOUND);
  assert_int_equal(fc_manager_handler_stats(m, ida, &st), FC_ENOTFOUND);
  assert_int_equal(fc_manager_remove(m, 12345), FC_ENOTFOUND);
  dispatch_kind(m, FC_EVENT_NODE_START);
  assert_string_equal(trace_str(&t, buf, sizeof buf), "b:node_start");
  fc_manager_free(m);
  assert_int_equal(a.destroy_count, 1);
  assert_int_equal(b.destroy_count, 1);
}

static void test_detach(void **state) {
  trace_t t = {0};
  probe_t a;
  fc_handler_t h, back;
  fc_manager_t *m;
  int id, id2;
  (void)state;
  assert_int_equal(fc_manager_new(&m), 0);
  probe_init(&a, &t, "a");
  h = probe_handler(&a);
  assert_int_equal(fc_manager_add(m, &h, 0, &id), 0);
  memset(&back, 0, sizeof back);
  assert_int_equal(fc_manager_detach(m, id, &back), 0);
  assert_int_equal(a.destroy_count, 0);
  assert_ptr_equal(back.self, &a);
  assert_ptr_equal(back.on_node_end, probe_cb);
  assert_ptr_equal(back.destroy, probe_destroy);
  assert_string_equal(back.name, "a");
  assert_int_equal(fc_manager_count(m), 0);
  assert_int_equal(fc_manager_detach(m, id, &back), FC_ENOTFOUND);
  dispatch_kind(m, FC_EVENT_NODE_END);
  assert_int_equal(t.n, 0);
  /* it can be added again */
  assert_int_equal(fc_manager_add(m, &back, 0, &id2), 0);
  assert_true(id2 != id);
  dispatch_kind(m, FC_EVENT_NODE_END);
  assert_int_equal(t.n, 1);
  fc_manager_free(m);
  assert_int_equal(a.destroy_count, 1);
}

static int detach_action(probe_t *p, const fc_event_t *ev) {
  fc_handler_t out;
  (void)ev;
  p->observed = fc_manager_detach(p->m, p->target_id, &out);
  return 0;
}

static void test_detach_during_dispatch(void **state) {
  trace_t t = {0};
  probe_t a;
  fc_handler_t h;
  fc_manager_t *m;
  int id;
  (void)state;
  assert_int_equal(fc_manager_new(&m), 0);
  probe_init(&a, &t, "a");
  a.action = detach_action;
  a.m = m;
  h = probe_handler(&a);
  assert_int_equal(fc_manager_add(m, &h, 0, &id), 0);
  a.target_id = id;
  dispatch_kind(m, FC_EVENT_NODE_END);
  assert_int_equal(a.observed, FC_ESTATE);
  assert_int_equal(fc_manager_count(m), 1);
  fc_manager_free(m);
  assert_int_equal(a.destroy_count, 1);
}

/* a removes `target_id` and records whether `other` was destroyed already. */
static int remove_action(probe_t *p, const fc_event_t *ev) {
  (void)ev;
  p->observed = fc_manager_remove(p->m, p->target_id);
  if (p->observed == 0 && p->other != NULL && p->other->destroy_count != 0)
    p->observed = 1000; /* destroyed too early */
  return 0;
}

static int observe_action(probe_t *p, const fc_event_t *ev) {
  (void)ev;
  p->observed = p->other->destroy_count + 1; /* 1: not yet destroyed */
  return 0;
}

static void test_remove_during_dispatch(void **state) {
  trace_t t = {0};
  probe_t a, b, c;
  fc_handler_t h;
  fc_manager_t *m;
  char buf[256];
  int idb;
  (void)state;
  assert_int_equal(fc_manager_new(&m), 0);
  probe_init(&a, &t, "a");
  probe_init(&b, &t, "b");
  probe_init(&c, &t, "c");
  a.action = remove_action;
  a.m = m;
  a.other = &b;
  c.action = observe_action;
  c.other = &b;
  h = probe_handler(&a);
  assert_int_equal(fc_manager_add(m, &h, 3, NULL), 0);
  h = probe_handler(&b);
  assert_int_equal(fc_manager_add(m, &h, 2, &idb), 0);
  h = probe_handler(&c);
  assert_int_equal(fc_manager_add(m, &h, 1, NULL), 0);
  a.target_id = idb;

  assert_int_equal(dispatch_kind(m, FC_EVENT_NODE_START), 0);
  assert_int_equal(a.observed, 0);
  /* b was removed before its turn: skipped; c ran while b still existed */
  assert_string_equal(trace_str(&t, buf, sizeof buf), "a:node_start c:node_start");
  assert_int_equal(c.observed, 1);
  assert_int_equal(b.destroy_count, 1); /* once the dispatch returned */
  assert_int_equal(fc_manager_count(m), 2);

  /* later events: b stays gone; removing it again is an error */
  t.n = 0;
  dispatch_kind(m, FC_EVENT_NODE_START);
  assert_string_equal(trace_str(&t, buf, sizeof buf), "a:node_start c:node_start");
  assert_int_equal(a.observed, FC_ENOTFOUND);
  fc_manager_free(m);
  assert_int_equal(b.destroy_count, 1);
  assert_int_equal(a.destroy_count, 1);
  assert_int_equal(c.destroy_count, 1);
}

static void test_remove_self_during_dispatch(void **state) {
  trace_t t = {0};
  probe_t a, b;
  fc_handler_t h;
  fc_manager_t *m;
  char buf[256];
  int ida;
  (void)state;
  assert_int_equal(fc_manager_new(&m), 0);
  probe_init(&a, &t, "a");
  probe_init(&b, &t, "b");
  a.action = remove_action;
  a.m = m;
  a.other = &a; /* checks its own destroy did not run yet */
  h = probe_handler(&a);
  assert_int_equal(fc_manager_add(m, &h, 1, &ida), 0);
  h = probe_handler(&b);
  assert_int_equal(fc_manager_add(m, &h, 0, NULL), 0);
  a.target_id = ida;
  dispatch_kind(m, FC_EVENT_WORKFLOW_START);
  assert_int_equal(a.observed, 0);
  assert_int_equal(a.destroy_count, 1);
  assert_string_equal(trace_str(&t, buf, sizeof buf), "a:workflow_start b:workflow_start");
  t.n = 0;
  dispatch_kind(m, FC_EVENT_WORKFLOW_START);
  assert_string_equal(trace_str(&t, buf, sizeof buf), "b:workflow_start");
  fc_manager_free(m);
  assert_int_equal(a.destroy_count, 1);
  assert_int_equal(b.destroy_count, 1);
}

/* node_start handler dispatches a node_end from inside; the node_end handler
 * removes a third handler in the nested dispatch. */
static int nested_action(probe_t *p, const fc_event_t *ev) {
  if (ev->kind == FC_EVENT_NODE_START) {
    fc_event_t inner = event_of(FC_EVENT_NODE_END);
    int failed = fc_manager_dispatch(p->m, &inner);
    /* back in the outer dispatch: the removed handler is not destroyed yet */
    p->observed = failed * 100 + p->other->destroy_count;
  } else if (ev->kind == FC_EVENT_NODE_END) {
    return fc_manager_remove(p->m, p->target_id);
  }
  return 0;
}

static void test_nested_dispatch(void **state) {
  trace_t t = {0};
  probe_t a, b;
  fc_handler_t h;
  fc_manager_t *m;
  char buf[256];
  int idb;
  (void)state;
  assert_int_equal(fc_manager_new(&m), 0);
  probe_init(&a, &t, "a");
  probe_init(&b, &t, "b");
  a.action = nested_action;
  a.m = m;
  a.other = &b;
  h = probe_handler(&a);
  assert_int_equal(fc_manager_add(m, &h, 1, NULL), 0);
  h = probe_handler(&b);
  assert_int_equal(fc_manager_add(m, &h, 0, &idb), 0);
  a.target_id = idb;

  assert_int_equal(dispatch_kind(m, FC_EVENT_NODE_START), 0);
  assert_string_equal(trace_str(&t, buf, sizeof buf), "a:node_start a:node_end");
  assert_int_equal(a.observed, 0); /* no failure, b not destroyed inside */
  assert_int_equal(b.destroy_count, 1);
  assert_int_equal(fc_manager_count(m), 1);
  fc_manager_free(m);
  assert_int_equal(a.destroy_count, 1);
  assert_int_equal(b.destroy_count, 1);
}

static int add_action(probe_t *p, const fc_event_t *ev) {
  fc_handler_t h = probe_handler(p->other);
  (void)ev;
  if (p->observed == 0)
    p->observed = fc_manager_add(p->m, &h, 100, &p->target_id) == 0 ? 1 : -1;
  return 0;
}

static void test_add_during_dispatch(void **state) {
  trace_t t = {0};
  probe_t a, b, c;
  fc_handler_t h;
  fc_manager_t *m;
  char buf[256];
  int i;
  (void)state;
  assert_int_equal(fc_manager_new(&m), 0);
  probe_init(&a, &t, "a");
  probe_init(&b, &t, "b");
  probe_init(&c, &t, "c");
  a.action = add_action;
  a.m = m;
  a.other = &b;
  h = probe_handler(&a);
  assert_int_equal(fc_manager_add(m, &h, 0, NULL), 0);
  /* more handlers so that the table has to grow during the dispatch */
  for (i = 0; i < 3; i++) {
    h = probe_handler(&c);
    h.destroy = NULL;
    assert_int_equal(fc_manager_add(m, &h, -1, NULL), 0);
  }
  dispatch_kind(m, FC_EVENT_NODE_END);
  assert_int_equal(a.observed, 1);
  /* b joins with the next event */
  assert_string_equal(trace_str(&t, buf, sizeof buf),
                      "a:node_end c:node_end c:node_end c:node_end");
  t.n = 0;
  dispatch_kind(m, FC_EVENT_NODE_END);
  assert_string_equal(trace_str(&t, buf, sizeof buf),
                      "b:node_end a:node_end c:node_end c:node_end c:node_end");
  assert_int_equal(fc_manager_count(m), 5);
  fc_manager_free(m);
  assert_int_equal(a.destroy_count, 1);
  assert_int_equal(b.destroy_count, 1);
}

static int free_action(probe_t *p, const fc_event_t *ev) {
  (void)ev;
  fc_manager_free(p->m);
  p->observed = p->other->destroy_count + 1;
  return 0;
}

static void test_free_during_dispatch(void **state) {
  trace_t t = {0};
  probe_t a, b;
  fc_handler_t h;
  fc_manager_t *m;
  char buf[256];
  (void)state;
  assert_int_equal(fc_manager_new(&m), 0);
  probe_init(&a, &t, "a");
  probe_init(&b, &t, "b");
  a.action = free_action;
  a.m = m;
  a.other = &b;
  h = probe_handler(&a);
  assert_int_equal(fc_manager_add(m, &h, 1, NULL), 0);
  h = probe_handler(&b);
  assert_int_equal(fc_manager_add(m, &h, 0, NULL), 0);
  assert_int_equal(fc_manager_dispatch(m, &(fc_event_t){.kind = FC_EVENT_ERROR}), 0);
  /* b was not called after the free and not destroyed inside the dispatch */
  assert_string_equal(trace_str(&t, buf, sizeof buf), "a:error");
  assert_int_equal(a.observed, 1);
  assert_int_equal(a.destroy_count, 1);
  assert_int_equal(b.destroy_count, 1);
  assert_string_equal(destroyed_str(&t, buf, sizeof buf), "a b");
}

static void test_add_ownership(void **state) {
  trace_t t = {0};
  probe_t a;
  fc_handler_t h;
  fc_manager_t *m;
  int id = -1;
  (void)state;
  probe_init(&a, &t, "a");
  h = probe_handler(&a);
  /* a failed add still takes ownership */
  assert_int_equal(fc_manager_add(NULL, &h, 0, &id), FC_EINVAL);
  assert_int_equal(a.destroy_count, 1);
  assert_int_equal(id, -1);

  assert_int_equal(fc_manager_new(&m), 0);
  assert_int_equal(fc_manager_add(m, NULL, 0, &id), FC_EINVAL);
  assert_int_equal(fc_manager_count(m), 0);
  /* a handler with no callbacks and no destroy is fine */
  memset(&h, 0, sizeof h);
  assert_int_equal(fc_manager_add(m, &h, 0, &id), 0);
  assert_int_equal(dispatch_kind(m, FC_EVENT_NODE_END), 0);
  assert_int_equal(fc_manager_remove(m, id), 0);
  fc_manager_free(m);
  fc_manager_free(NULL);
  assert_int_equal(a.destroy_count, 1);
  assert_int_equal(fc_manager_new(NULL), FC_EINVAL);
}

/* Many handlers, many events, random removals and re-adds: call counts add
 * up and every destroy runs once. */
static void test_many_handlers(void **state) {
  enum { N = 40 };
  trace_t t = {0};
  probe_t p[N];
  int ids[N], i, round;
  fc_manager_t *m;
  fc_handler_stats_t st;
  (void)state;
  assert_int_equal(fc_manager_new(&m), 0);
  for (i = 0; i < N; i++) {
    fc_handler_t h;
    probe_init(&p[i], &t, "p");
    h = probe_handler(&p[i]);
    assert_int_equal(fc_manager_add(m, &h, i % 7, &ids[i]), 0);
  }
  for (round = 0; round < 1000; round++) {
    t.n = 0;
    assert_int_equal(dispatch_kind(m, (fc_event_kind_t)(round % FC_EVENT_KIND_COUNT)), 0);
  }
  for (i = 0; i < N; i++) {
    assert_int_equal(fc_manager_handler_stats(m, ids[i], &st), 0);
    assert_int_equal(st.calls, 1000);
  }
  for (i = 0; i < N; i += 2)
    assert_int_equal(fc_manager_remove(m, ids[i]), 0);
  assert_int_equal(fc_manager_count(m), N / 2);
  fc_manager_free(m);
  for (i = 0; i < N; i++)
    assert_int_equal(p[i].destroy_count, 1);
}

/* Destroy callbacks that call back into the manager: while it is being
 * freed it is empty; after a removal it works normally. */
typedef struct {
  fc_manager_t *m;
  int other_id;
  int remove_rc;
  int dispatch_rc;
  int destroyed;
} reentrant_t;

static void reentrant_destroy(void *self) {
  reentrant_t *r = self;
  fc_event_t ev = event_of(FC_EVENT_NODE_END);
  r->destroyed++;
  r->remove_rc = fc_manager_remove(r->m, r->other_id);
  r->dispatch_rc = fc_manager_dispatch(r->m, &ev);
}

static void test_reentrant_destroy(void **state) {
  trace_t t = {0};
  probe_t b, c;
  reentrant_t r;
  fc_handler_t h;
  fc_manager_t *m;
  int idr, idb, idc;
  (void)state;
  assert_int_equal(fc_manager_new(&m), 0);
  memset(&r, 0, sizeof r);
  r.m = m;
  memset(&h, 0, sizeof h);
  h.self = &r;
  h.destroy = reentrant_destroy;
  assert_int_equal(fc_manager_add(m, &h, 0, &idr), 0);
  probe_init(&b, &t, "b");
  probe_init(&c, &t, "c");
  b.rc = -1; /* fails on the dispatch made by the destroy callback */
  h = probe_handler(&b);
  assert_int_equal(fc_manager_add(m, &h, 0, &idb), 0);
  h = probe_handler(&c);
  assert_int_equal(fc_manager_add(m, &h, 0, &idc), 0);
  fc_manager_set_log_sink(m, sink_cb, &(sink_t){0}, 0);

  /* removal: the destroy callback removes c and dispatches to b */
  r.other_id = idc;
  assert_int_equal(fc_manager_remove(m, idr), 0);
  assert_int_equal(r.destroyed, 1);
  assert_int_equal(r.remove_rc, 0);
  assert_int_equal(c.destroy_count, 1);
  assert_int_equal(r.dispatch_rc, 1);
  assert_int_equal(t.n, 1);
  assert_string_equal(t.calls[0], "b:node_end");

  /* free: the callback finds an empty manager */
  memset(&h, 0, sizeof h);
  h.self = &r;
  h.destroy = reentrant_destroy;
  assert_int_equal(fc_manager_add(m, &h, 0, &idr), 0);
  r.other_id = idb;
  r.remove_rc = r.dispatch_rc = 42;
  fc_manager_free(m);
  assert_int_equal(r.destroyed, 2);
  assert_int_equal(r.remove_rc, FC_ENOTFOUND);
  assert_int_equal(r.dispatch_rc, 0);
  assert_int_equal(b.destroy_count, 1);
  assert_int_equal(t.n, 1); /* b was not called again */
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_handler_helpers),
      cmocka_unit_test(test_priority_order),
      cmocka_unit_test(test_priority_order_after_changes),
      cmocka_unit_test(test_only_interested),
      cmocka_unit_test(test_failure_isolation),
      cmocka_unit_test(test_rate_limited_log),
      cmocka_unit_test(test_names),
      cmocka_unit_test(test_remove),
      cmocka_unit_test(test_detach),
      cmocka_unit_test(test_detach_during_dispatch),
      cmocka_unit_test(test_remove_during_dispatch),
      cmocka_unit_test(test_remove_self_during_dispatch),
      cmocka_unit_test(test_nested_dispatch),
      cmocka_unit_test(test_add_during_dispatch),
      cmocka_unit_test(test_free_during_dispatch),
      cmocka_unit_test(test_add_ownership),
      cmocka_unit_test(test_many_handlers),
      cmocka_unit_test(test_reentrant_destroy),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
