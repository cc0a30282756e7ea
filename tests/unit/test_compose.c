/* The composite handlers: conditional, filtering, chained. Predicates filter
 * exactly, chained members are isolated, and every wrapped handler is
 * destroyed exactly once -- by the wrapper, or by a constructor that fails
 * (bad arguments, or an injected allocation failure). Probes live on the
 * heap and are freed by their destroy, so a double destroy is a double free
 * and a missed one a leak under ASan, on top of the counters. */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fc_test.h"
#include "handlers/handlers_int.h"

#define WF "01890a5d-ac96-774b-bcce-b302099a8057"
#define NKINDS FC_EVENT_KIND_COUNT

/* ---- probes -------------------------------------------------------------- */

/* What every probe of a test writes to: destroy counts and a call log. */
typedef struct {
  int destroyed[8];
  int log[256]; /* probe ids in call order */
  size_t nlog;
} world_t;

typedef struct {
  world_t *w;
  int id;
  int calls[NKINDS];
  int fail[NKINDS]; /* what to return per kind */
  char seen[64][32]; /* node ids (or "-") of the events received */
  size_t nseen;
} probe_t;

static int probe_cb(void *self, const fc_event_t *ev) {
  probe_t *p = self;
  p->calls[ev->kind]++;
  if (p->nseen < 64)
    snprintf(p->seen[p->nseen++], sizeof p->seen[0], "%s", ev->node_id ? ev->node_id : "-");
  if (p->w->nlog < 256)
    p->w->log[p->w->nlog++] = p->id;
  return p->fail[ev->kind];
}

static void probe_destroy(void *self) {
  probe_t *p = self;
  p->w->destroyed[p->id]++;
  free(p);
}

/* A heap probe handling every kind (mask: which callbacks it sets). */
static fc_handler_t probe_new_mask(world_t *w, int id, unsigned mask, probe_t **out) {
  fc_handler_t h;
  probe_t *p = calloc(1, sizeof *p);
  assert_non_null(p);
  p->w = w;
  p->id = id;
  memset(&h, 0, sizeof h);
  h.name = "probe";
  h.self = p;
  if (mask & FC_EVENT_KIND_BIT(FC_EVENT_WORKFLOW_START))
    h.on_workflow_start = probe_cb;
  if (mask & FC_EVENT_KIND_BIT(FC_EVENT_WORKFLOW_END))
    h.on_workflow_end = probe_cb;
  if (mask & FC_EVENT_KIND_BIT(FC_EVENT_NODE_START))
    h.on_node_start = probe_cb;
  if (mask & FC_EVENT_KIND_BIT(FC_EVENT_NODE_END))
    h.on_node_end = probe_cb;
  if (mask & FC_EVENT_KIND_BIT(FC_EVENT_ERROR))
    h.on_error = probe_cb;
  h.destroy = probe_destroy;
  if (out != NULL)
    *out = p;
  return h;
}

static fc_handler_t probe_new(world_t *w, int id, probe_t **out) {
  return probe_new_mask(w, id, FC_EVENT_KINDS_ALL, out);
}

/* ---- events -------------------------------------------------------------- */

/* 0 workflow_start, 1 node_start critical_a, 2 node_start b, 3 error of b
 * (critical; names its node only in the info), 4 error of b (warning),
 * 5 node_end critical_a, 6 node_end b, 7 workflow-level error (critical),
 * 8 workflow_end. */
#define NEV 9
typedef struct {
  fc_error_info_t crit, warn, wf_err;
  fc_event_t ev[NEV];
} events_t;

static void events_init(events_t *e) {
  static const fc_event_kind_t kinds[NEV] = {
      FC_EVENT_WORKFLOW_START, FC_EVENT_NODE_START, FC_EVENT_NODE_START,
      FC_EVENT_ERROR,          FC_EVENT_ERROR,      FC_EVENT_NODE_END,
      FC_EVENT_NODE_END,       FC_EVENT_ERROR,      FC_EVENT_WORKFLOW_END};
  static const char *const nodes[NEV] = {NULL, "critical_a", "b", NULL, "b",
                                         "critical_a", "b", NULL, NULL};
  int i;
  memset(e, 0, sizeof *e);
  e->crit.type = "exit_status";
  e->crit.message = "boom";
  e->crit.severity = FC_SEVERITY_CRITICAL;
  e->crit.node_id = "b";
  e->crit.attempt = 1;
  e->warn = e->crit;
  e->warn.severity = FC_SEVERITY_WARNING;
  e->wf_err = e->crit;
  e->wf_err.node_id = NULL;
  e->wf_err.attempt = 0;
  for (i = 0; i < NEV; i++) {
    e->ev[i].kind = kinds[i];
    e->ev[i].workflow_id = WF;
    e->ev[i].workflow_name = "wf";
    e->ev[i].node_id = nodes[i];
    e->ev[i].node_index = nodes[i] ? 0 : -1;
    e->ev[i].attempt = nodes[i] ? 1 : 0;
    e->ev[i].node_count = 2;
  }
  e->ev[3].error = &e->crit;
  e->ev[4].error = &e->warn;
  e->ev[7].error = &e->wf_err;
}

/* ---- conditional --------------------------------------------------------- */

typedef struct {
  int calls;
} pred_state_t;

/* Passes critical errors and events of nodes named critical_*. */
static int pred_critical(void *data, const fc_event_t *ev) {
  pred_state_t *s = data;
  s->calls++;
  if (ev->kind == FC_EVENT_ERROR)
    return ev->error != NULL && ev->error->severity == FC_SEVERITY_CRITICAL;
  return ev->node_id != NULL && strncmp(ev->node_id, "critical_", 9) == 0;
}

static void test_conditional_filters_exactly(void **state) {
  world_t w;
  events_t e;
  pred_state_t ps = {0};
  probe_t *p;
  fc_handler_t inner, h;
  int i;
  (void)state;
  memset(&w, 0, sizeof w);
  events_init(&e);
  inner = probe_new(&w, 0, &p);
  p->fail[FC_EVENT_ERROR] = FC_EHANDLER;
  p->fail[FC_EVENT_WORKFLOW_START] = FC_EDB; /* rejected: never returned */
  assert_int_equal(fc_conditional_handler_owned(&inner, pred_critical, &ps, &h), 0);
  assert_string_equal(h.name, "conditional(probe)");

  for (i = 0; i < NEV; i++) {
    int rc = fc_handler_call(&h, &e.ev[i]);
    /* passing errors (3, 7) return the inner error; rejected events 0 */
    assert_int_equal(rc, (i == 3 || i == 7) ? FC_EHANDLER : 0);
  }
  assert_int_equal(ps.calls, NEV); /* the predicate saw every event */
  assert_int_equal(p->calls[FC_EVENT_WORKFLOW_START], 0);
  assert_int_equal(p->calls[FC_EVENT_WORKFLOW_END], 0);
  assert_int_equal(p->calls[FC_EVENT_NODE_START], 1);
  assert_int_equal(p->calls[FC_EVENT_NODE_END], 1);
  assert_int_equal(p->calls[FC_EVENT_ERROR], 2);
  assert_int_equal(p->nseen, 4);
  assert_string_equal(p->seen[0], "critical_a");
  assert_string_equal(p->seen[1], "-"); /* event 3 names b only in its info */
  assert_string_equal(p->seen[2], "critical_a");
  assert_string_equal(p->seen[3], "-");

  fc_handler_destroy(&h);
  assert_int_equal(w.destroyed[0], 1);
}

/* The wrapper only sets the kinds the wrapped handler handles, so the
 * manager's table skips the others (and the predicate is not asked). */
static void test_conditional_kinds_follow_inner(void **state) {
  world_t w;
  events_t e;
  pred_state_t ps = {0};
  fc_handler_t inner, h;
  fc_manager_t *m;
  probe_t *p;
  int i;
  (void)state;
  memset(&w, 0, sizeof w);
  events_init(&e);
  inner = probe_new_mask(&w, 0, FC_EVENT_KIND_BIT(FC_EVENT_ERROR), &p);
  assert_int_equal(fc_conditional_handler_owned(&inner, pred_critical, &ps, &h), 0);
  assert_non_null(h.on_error);
  assert_null(h.on_workflow_start);
  assert_null(h.on_workflow_end);
  assert_null(h.on_node_start);
  assert_null(h.on_node_end);
  assert_int_equal(fc_manager_new(&m), 0);
  assert_int_equal(fc_manager_add(m, &h, 0, NULL), 0);
  for (i = 0; i < NEV; i++)
    (void)fc_manager_dispatch(m, &e.ev[i]);
  assert_int_equal(ps.calls, 3); /* the three errors only */
  assert_int_equal(p->calls[FC_EVENT_ERROR], 2);
  fc_manager_free(m);
  assert_int_equal(w.destroyed[0], 1);
}

/* ---- filtering ----------------------------------------------------------- */

static int pred_severe(void *data, const fc_event_t *ev) {
  int *calls = data;
  (*calls)++;
  return ev->error != NULL && ev->error->severity >= FC_SEVERITY_ERROR;
}

static void test_filter_match_table(void **state) {
  events_t e;
  fc_filter_t f;
  const char *ids[] = {"critical_*", "b"};
  int calls = 0, i;
  (void)state;
  events_init(&e);

  /* all-zero and NULL filters pass everything */
  memset(&f, 0, sizeof f);
  for (i = 0; i < NEV; i++) {
    assert_int_equal(fc_filter_match(&f, &e.ev[i]), 1);
    assert_int_equal(fc_filter_match(NULL, &e.ev[i]), 1);
  }

  /* kinds only */
  f.kinds = FC_EVENT_KIND_BIT(FC_EVENT_NODE_START) | FC_EVENT_KIND_BIT(FC_EVENT_WORKFLOW_END);
  {
    static const int want[NEV] = {0, 1, 1, 0, 0, 0, 0, 0, 1};
    for (i = 0; i < NEV; i++)
      assert_int_equal(fc_filter_match(&f, &e.ev[i]), want[i]);
  }

  /* node allow list: exact and prefix; node errors are matched by the id in
   * their info; workflow events and workflow errors pass the list */
  memset(&f, 0, sizeof f);
  ids[1] = "critical_a";
  f.node_ids = ids;
  f.n_node_ids = 1; /* "critical_*" */
  {
    static const int want[NEV] = {1, 1, 0, 0, 0, 1, 0, 1, 1};
    for (i = 0; i < NEV; i++)
      assert_int_equal(fc_filter_match(&f, &e.ev[i]), want[i]);
  }
  ids[0] = "b";
  f.n_node_ids = 2; /* "b", "critical_a" */
  for (i = 0; i < NEV; i++)
    assert_int_equal(fc_filter_match(&f, &e.ev[i]), 1);
  ids[0] = "critical"; /* exact, no star: matches nothing here */
  ids[1] = "crit*";
  {
    static const int want[NEV] = {1, 1, 0, 0, 0, 1, 0, 1, 1};
    for (i = 0; i < NEV; i++)
      assert_int_equal(fc_filter_match(&f, &e.ev[i]), want[i]);
  }

  /* a predicate per kind, the others pass; the documented example:
   * "error": severity high */
  memset(&f, 0, sizeof f);
  f.by_kind[FC_EVENT_ERROR] = pred_severe;
  f.data = &calls;
  {
    static const int want[NEV] = {1, 1, 1, 1, 0, 1, 1, 1, 1};
    for (i = 0; i < NEV; i++)
      assert_int_equal(fc_filter_match(&f, &e.ev[i]), want[i]);
  }
  assert_int_equal(calls, 3);

  /* all three together, in order: kinds, then ids, then the predicate (not
   * asked for events the first two rejected) */
  calls = 0;
  ids[0] = "b";
  f.kinds = FC_EVENT_KIND_BIT(FC_EVENT_ERROR) | FC_EVENT_KIND_BIT(FC_EVENT_NODE_END);
  f.node_ids = ids;
  f.n_node_ids = 1;
  {
    static const int want[NEV] = {0, 0, 0, 1, 0, 0, 1, 1, 0};
    for (i = 0; i < NEV; i++)
      assert_int_equal(fc_filter_match(&f, &e.ev[i]), want[i]);
  }
  assert_int_equal(calls, 3); /* 3, 4 and 7 */
}

static void test_filter_handler(void **state) {
  world_t w;
  events_t e;
  fc_filter_t f;
  char id0[16];
  const char *ids[1];
  fc_handler_t inner, h;
  probe_t *p;
  int calls = 0, i;
  (void)state;
  memset(&w, 0, sizeof w);
  events_init(&e);
  snprintf(id0, sizeof id0, "b");
  ids[0] = id0;
  memset(&f, 0, sizeof f);
  f.kinds = FC_EVENT_KIND_BIT(FC_EVENT_ERROR) | FC_EVENT_KIND_BIT(FC_EVENT_NODE_END);
  f.node_ids = ids;
  f.n_node_ids = 1;
  f.by_kind[FC_EVENT_ERROR] = pred_severe;
  f.data = &calls;
  inner = probe_new(&w, 0, &p);
  assert_int_equal(fc_filter_handler_owned(&inner, &f, &h), 0);
  assert_string_equal(h.name, "filter(probe)");
  /* only the kinds of the mask get callbacks */
  assert_null(h.on_workflow_start);
  assert_null(h.on_workflow_end);
  assert_null(h.on_node_start);
  assert_non_null(h.on_node_end);
  assert_non_null(h.on_error);

  /* the filter was copied: changing ours changes nothing */
  snprintf(id0, sizeof id0, "zzz");
  f.kinds = 0;
  f.by_kind[FC_EVENT_ERROR] = NULL;

  for (i = 0; i < NEV; i++)
    assert_int_equal(fc_handler_call(&h, &e.ev[i]), 0);
  assert_int_equal(p->calls[FC_EVENT_NODE_END], 1);
  assert_int_equal(p->calls[FC_EVENT_ERROR], 2);
  assert_int_equal(p->nseen, 3);
  assert_string_equal(p->seen[0], "-"); /* 3: critical error of b */
  assert_string_equal(p->seen[1], "b"); /* 6: node_end of b */
  assert_string_equal(p->seen[2], "-"); /* 7: workflow-level critical error */
  fc_handler_destroy(&h);
  assert_int_equal(w.destroyed[0], 1);

  /* NULL filter: a transparent wrapper */
  inner = probe_new(&w, 1, &p);
  assert_int_equal(fc_filter_handler_owned(&inner, NULL, &h), 0);
  for (i = 0; i < NEV; i++)
    assert_int_equal(fc_handler_call(&h, &e.ev[i]), 0);
  assert_int_equal(p->nseen, NEV);
  fc_handler_destroy(&h);
  assert_int_equal(w.destroyed[1], 1);
}

/* ---- chained ------------------------------------------------------------- */

static void test_chained_isolation(void **state) {
  world_t w;
  events_t e;
  fc_handler_t hs[3], h;
  probe_t *p[3];
  fc_handler_stats_t st;
  int i;
  (void)state;
  memset(&w, 0, sizeof w);
  events_init(&e);
  for (i = 0; i < 3; i++)
    hs[i] = probe_new(&w, i, &p[i]);
  hs[2].name = "last";
  p[1]->fail[FC_EVENT_NODE_END] = FC_EHANDLER;
  p[2]->fail[FC_EVENT_NODE_END] = FC_EDB;
  p[0]->fail[FC_EVENT_ERROR] = FC_EDB;
  assert_int_equal(fc_chained_handler_owned(hs, 3, &h), 0);
  assert_string_equal(h.name, "chained(probe+probe+last)");

  for (i = 0; i < NEV; i++) {
    int rc = fc_handler_call(&h, &e.ev[i]);
    if (e.ev[i].kind == FC_EVENT_NODE_END)
      assert_int_equal(rc, FC_EHANDLER); /* the first error of the chain */
    else if (e.ev[i].kind == FC_EVENT_ERROR)
      assert_int_equal(rc, FC_EDB);
    else
      assert_int_equal(rc, 0);
  }
  /* every member saw every event, in chain order, despite the failures */
  assert_int_equal(w.nlog, 3 * NEV);
  for (i = 0; i < 3 * NEV; i++)
    assert_int_equal(w.log[i], i % 3);
  for (i = 0; i < 3; i++)
    assert_int_equal((int)p[i]->nseen, NEV);

  assert_int_equal(fc_chained_handler_stats(&h, 0, &st), 0);
  assert_int_equal(st.calls, NEV);
  assert_int_equal(st.failures, 3);
  assert_int_equal(st.last_error, FC_EDB);
  assert_int_equal(fc_chained_handler_stats(&h, 1, &st), 0);
  assert_int_equal(st.failures, 2);
  assert_int_equal(st.last_error, FC_EHANDLER);
  assert_int_equal(fc_chained_handler_stats(&h, 2, &st), 0);
  assert_int_equal(st.failures, 2);
  assert_int_equal(fc_chained_handler_stats(&h, 3, &st), FC_ENOTFOUND);
  assert_int_equal(fc_chained_handler_stats(&hs[0], 0, &st), FC_EINVAL); /* not a chain */

  fc_handler_destroy(&h);
  for (i = 0; i < 3; i++)
    assert_int_equal(w.destroyed[i], 1);
}

static void count_line(void *data, const char *line) {
  int *n = data;
  assert_non_null(strstr(line, "chained(probe+probe)"));
  (*n)++;
}

/* Members only get the kinds they handle; the chain handles the union. A
 * chain inside a manager counts as one handler: one failure per event. */
static void test_chained_kinds_and_manager(void **state) {
  world_t w;
  events_t e;
  fc_handler_t hs[2], h;
  probe_t *p[2];
  fc_manager_t *m;
  fc_handler_stats_t st;
  int id, i, failed = 0, lines = 0;
  (void)state;
  memset(&w, 0, sizeof w);
  events_init(&e);
  hs[0] = probe_new_mask(&w, 0, FC_EVENT_KIND_BIT(FC_EVENT_NODE_START), &p[0]);
  hs[1] = probe_new_mask(&w, 1, FC_EVENT_KIND_BIT(FC_EVENT_ERROR), &p[1]);
  p[0]->fail[FC_EVENT_NODE_START] = FC_EHANDLER;
  assert_int_equal(fc_chained_handler_owned(hs, 2, &h), 0);
  assert_non_null(h.on_node_start);
  assert_non_null(h.on_error);
  assert_null(h.on_workflow_start);
  assert_null(h.on_node_end);
  assert_null(h.on_workflow_end);
  assert_int_equal(fc_manager_new(&m), 0);
  fc_manager_set_log_sink(m, count_line, &lines, 100);
  assert_int_equal(fc_manager_add(m, &h, 0, &id), 0);
  for (i = 0; i < NEV; i++)
    failed += fc_manager_dispatch(m, &e.ev[i]);
  assert_int_equal(failed, 2);
  assert_int_equal(lines, 2); /* the chain's failures, logged as one handler's */
  assert_int_equal(fc_manager_handler_stats(m, id, &st), 0);
  assert_int_equal(st.calls, 5); /* 2 node_start + 3 errors */
  assert_int_equal(st.failures, 2);
  assert_int_equal(p[0]->nseen, 2);
  assert_int_equal(p[1]->nseen, 3);
  fc_manager_free(m);
  assert_int_equal(w.destroyed[0], 1);
  assert_int_equal(w.destroyed[1], 1);

  /* an empty chain handles nothing */
  assert_int_equal(fc_chained_handler_owned(NULL, 0, &h), 0);
  assert_null(h.on_node_start);
  assert_int_equal(fc_handler_call(&h, &e.ev[0]), 0);
  fc_handler_destroy(&h);
}

/* ---- ownership ----------------------------------------------------------- */

static int pred_all(void *data, const fc_event_t *ev) {
  (void)data;
  (void)ev;
  return 1;
}

/* Wrappers nest; destroying the outermost destroys each probe once. */
static void test_nested_ownership(void **state) {
  world_t w;
  events_t e;
  fc_handler_t a, b, inner[3], h, outer[2];
  fc_filter_t f;
  int i;
  (void)state;
  memset(&w, 0, sizeof w);
  events_init(&e);
  memset(&f, 0, sizeof f);
  f.kinds = FC_EVENT_KIND_BIT(FC_EVENT_WORKFLOW_START);

  a = probe_new(&w, 0, NULL);
  assert_int_equal(fc_conditional_handler_owned(&a, pred_all, NULL, &inner[0]), 0);
  b = probe_new(&w, 1, NULL);
  assert_int_equal(fc_filter_handler_owned(&b, &f, &inner[1]), 0);
  inner[2] = probe_new(&w, 2, NULL);
  assert_int_equal(fc_chained_handler_owned(inner, 3, &outer[0]), 0);
  outer[1] = probe_new(&w, 3, NULL);
  assert_int_equal(fc_chained_handler_owned(outer, 2, &h), 0);
  assert_string_equal(h.name, "chained(chained(conditional(probe)+filter(probe)+probe)+probe)");
  for (i = 0; i < NEV; i++)
    assert_int_equal(fc_handler_call(&h, &e.ev[i]), 0);
  /* conditional 9, filter 1, probe 9, probe 9 */
  assert_int_equal(w.nlog, 28);
  for (i = 0; i < 4; i++)
    assert_int_equal(w.destroyed[i], 0);
  fc_handler_destroy(&h);
  for (i = 0; i < 4; i++)
    assert_int_equal(w.destroyed[i], 1);
}

/* A constructor that fails with bad arguments destroys what it was given
 * (and leaves *out zeroed); a borrowing one does not. */
static void test_failure_ownership_invalid(void **state) {
  world_t w;
  fc_handler_t a, hs[3], h;
  fc_filter_t f;
  const char *bad_ids[] = {"ok", ""};
  int i;
  (void)state;
  memset(&w, 0, sizeof w);

  a = probe_new(&w, 0, NULL);
  memset(&h, 0xff, sizeof h);
  assert_int_equal(fc_conditional_handler_owned(&a, NULL, NULL, &h), FC_EINVAL);
  assert_int_equal(w.destroyed[0], 1);
  assert_null(h.self);
  assert_null(h.destroy);

  a = probe_new(&w, 1, NULL);
  assert_int_equal(fc_conditional_handler_owned(&a, pred_all, NULL, NULL), FC_EINVAL);
  assert_int_equal(w.destroyed[1], 1);

  memset(&f, 0, sizeof f);
  f.kinds = 1u << 7;
  a = probe_new(&w, 2, NULL);
  assert_int_equal(fc_filter_handler_owned(&a, &f, &h), FC_EINVAL);
  assert_int_equal(w.destroyed[2], 1);
  f.kinds = 0;
  f.node_ids = bad_ids;
  f.n_node_ids = 2;
  a = probe_new(&w, 3, NULL);
  assert_int_equal(fc_filter_handler_owned(&a, &f, &h), FC_EINVAL);
  assert_int_equal(w.destroyed[3], 1);
  f.node_ids = NULL;
  a = probe_new(&w, 4, NULL);
  assert_int_equal(fc_filter_handler_owned(&a, &f, &h), FC_EINVAL);
  assert_int_equal(w.destroyed[4], 1);

  for (i = 0; i < 3; i++)
    hs[i] = probe_new(&w, 5 + i, NULL);
  assert_int_equal(fc_chained_handler_owned(hs, 3, NULL), FC_EINVAL);
  for (i = 0; i < 3; i++)
    assert_int_equal(w.destroyed[5 + i], 1);

  /* NULL inner: nothing to destroy */
  assert_int_equal(fc_conditional_handler_owned(NULL, pred_all, NULL, &h), FC_EINVAL);
  assert_int_equal(fc_filter_handler_owned(NULL, NULL, &h), FC_EINVAL);
  assert_int_equal(fc_chained_handler_owned(NULL, 2, &h), FC_EINVAL);

  /* borrowing: never destroyed by the wrapper, failing or not */
  memset(&w, 0, sizeof w);
  a = probe_new(&w, 0, NULL);
  assert_int_equal(fc_conditional_handler(&a, NULL, NULL, &h), FC_EINVAL);
  assert_int_equal(fc_filter_handler(&a, &f, &h), FC_EINVAL); /* ids NULL, n 2 */
  assert_int_equal(fc_chained_handler(&a, 1, NULL), FC_EINVAL);
  assert_int_equal(w.destroyed[0], 0);
  fc_handler_destroy(&a);
  assert_int_equal(w.destroyed[0], 1);
}

/* Borrowing wrappers: the caller destroys the wrapped handlers after the
 * wrapper; the wrapper frees only itself. */
static void test_borrow(void **state) {
  world_t w;
  events_t e;
  fc_handler_t a, b, hs[2], h1, h2, h3;
  probe_t *pa, *pb;
  int i;
  (void)state;
  memset(&w, 0, sizeof w);
  events_init(&e);
  a = probe_new(&w, 0, &pa);
  b = probe_new(&w, 1, &pb);
  assert_int_equal(fc_conditional_handler(&a, pred_all, NULL, &h1), 0);
  assert_int_equal(fc_filter_handler(&b, NULL, &h2), 0);
  hs[0] = a;
  hs[1] = b;
  assert_int_equal(fc_chained_handler(hs, 2, &h3), 0);
  for (i = 0; i < NEV; i++) {
    assert_int_equal(fc_handler_call(&h1, &e.ev[i]), 0);
    assert_int_equal(fc_handler_call(&h2, &e.ev[i]), 0);
    assert_int_equal(fc_handler_call(&h3, &e.ev[i]), 0);
  }
  assert_int_equal(pa->nseen, 2 * NEV);
  assert_int_equal(pb->nseen, 2 * NEV);
  fc_handler_destroy(&h1);
  fc_handler_destroy(&h2);
  fc_handler_destroy(&h3);
  assert_int_equal(w.destroyed[0], 0);
  assert_int_equal(w.destroyed[1], 0);
  fc_handler_destroy(&a);
  fc_handler_destroy(&b);
  assert_int_equal(w.destroyed[0], 1);
  assert_int_equal(w.destroyed[1], 1);
}

/* Injected allocation failures: make the k-th allocation of a constructor
 * fail, for every k until the constructor succeeds. Each failure returns
 * FC_ENOMEM and destroys every wrapped handler exactly once. */
static void test_failure_ownership_injected(void **state) {
  world_t w;
  fc_handler_t a, hs[3], h;
  fc_filter_t f;
  const char *ids[] = {"a", "b*", "c"};
  long k;
  int rc, i, which;
  (void)state;

  memset(&f, 0, sizeof f);
  f.node_ids = ids;
  f.n_node_ids = 3;
  for (which = 0; which < 3; which++) {
    int failures = 0;
    for (k = 1;; k++) {
      memset(&w, 0, sizeof w);
      for (i = 0; i < 3; i++)
        hs[i] = probe_new(&w, i, NULL);
      a = hs[0];
      fc__handlers_fail_countdown = k;
      if (which == 0)
        rc = fc_conditional_handler_owned(&a, pred_all, NULL, &h);
      else if (which == 1)
        rc = fc_filter_handler_owned(&a, &f, &h);
      else
        rc = fc_chained_handler_owned(hs, 3, &h);
      fc__handlers_fail_countdown = 0;
      if (rc == 0) {
        fc_handler_destroy(&h);
        if (which != 2) {
          fc_handler_destroy(&hs[1]);
          fc_handler_destroy(&hs[2]);
        }
        for (i = 0; i < 3; i++)
          assert_int_equal(w.destroyed[i], 1);
        break;
      }
      failures++;
      assert_int_equal(rc, FC_ENOMEM);
      assert_null(h.self);
      assert_int_equal(w.destroyed[0], 1);
      assert_int_equal(w.destroyed[1], which == 2 ? 1 : 0);
      assert_int_equal(w.destroyed[2], which == 2 ? 1 : 0);
      if (which != 2) {
        fc_handler_destroy(&hs[1]);
        fc_handler_destroy(&hs[2]);
      }
      assert_true(k < 20);
    }
    /* conditional: 1 allocation; filter: state, id array, 3 ids; chain: 1 */
    assert_int_equal(failures, which == 1 ? 5 : 1);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_conditional_filters_exactly),
      cmocka_unit_test(test_conditional_kinds_follow_inner),
      cmocka_unit_test(test_filter_match_table),
      cmocka_unit_test(test_filter_handler),
      cmocka_unit_test(test_chained_isolation),
      cmocka_unit_test(test_chained_kinds_and_manager),
      cmocka_unit_test(test_nested_ownership),
      cmocka_unit_test(test_failure_ownership_invalid),
      cmocka_unit_test(test_borrow),
      cmocka_unit_test(test_failure_ownership_injected),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
