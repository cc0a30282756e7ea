/* Handlers made of handlers: conditional, filtering and chained.
 *
 * Conditional and filtering share one "gate": a wrapped handler plus a test
 * the event must pass. Chained keeps its members in one allocation with a
 * stats record each. Every wrapper records whether it owns what it wraps;
 * its destroy frees its own state and, when it owns them, destroys the
 * wrapped handlers (in order). */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>

#include "handlers_int.h"

#define COMPOSE_NAME_MAX 160

typedef struct {
  fc_handler_t inner;
  int owns;
  /* conditional */
  fc_event_pred_cb pred;
  void *pred_data;
  /* filtering (filter.node_ids points to `ids`, owned copies) */
  int is_filter;
  fc_filter_t filter;
  char **ids;
  char name[COMPOSE_NAME_MAX];
} gate_t;

typedef struct {
  fc_handler_t h;
  fc_handler_stats_t stats;
} chain_member_t;

typedef struct {
  int owns;
  size_t n;
  char name[COMPOSE_NAME_MAX];
  chain_member_t m[];
} chain_t;

/* ---- helpers ------------------------------------------------------------- */

/* Destroys handlers[0..n) if `owns` (a constructor's failure path). */
static void release_all(const fc_handler_t *handlers, size_t n, int owns) {
  size_t i;
  if (!owns || handlers == NULL)
    return;
  for (i = 0; i < n; i++)
    if (handlers[i].destroy != NULL)
      handlers[i].destroy(handlers[i].self);
}

static const char *handler_label(const fc_handler_t *h) {
  return h->name != NULL ? h->name : "handler";
}

/* Sets every callback of `out` to cb for the kinds in `mask` that `has`
 * handles. */
static void set_callbacks(fc_handler_t *out, const fc_handler_t *has, unsigned mask,
                          fc_handler_cb cb) {
  int k;
  for (k = 0; k < FC_EVENT_KIND_COUNT; k++)
    if ((mask & FC_EVENT_KIND_BIT(k)) != 0 && fc_handler_get_cb(has, (fc_event_kind_t)k) != NULL)
      fc__handler_set_cb(out, (fc_event_kind_t)k, cb);
}

/* The node an event is about: its node id, or for an error raised by a node
 * the id in its info; NULL for workflow events. */
static const char *event_node_id(const fc_event_t *ev) {
  if (ev->node_id != NULL)
    return ev->node_id;
  if (ev->kind == FC_EVENT_ERROR && ev->error != NULL)
    return ev->error->node_id;
  return NULL;
}

static int id_matches(const char *pattern, const char *id) {
  size_t n = strlen(pattern);
  if (n > 0 && pattern[n - 1] == '*')
    return strncmp(pattern, id, n - 1) == 0;
  return strcmp(pattern, id) == 0;
}

/* ---- gates: conditional and filtering ------------------------------------ */

int fc_filter_match(const fc_filter_t *filter, const fc_event_t *ev) {
  const char *node;
  fc_event_pred_cb pred;
  size_t i;

  if (ev == NULL || (unsigned)ev->kind >= (unsigned)FC_EVENT_KIND_COUNT)
    return 0;
  if (filter == NULL)
    return 1;
  if (filter->kinds != 0 && (filter->kinds & FC_EVENT_KIND_BIT(ev->kind)) == 0)
    return 0;
  node = event_node_id(ev);
  if (filter->n_node_ids > 0 && filter->node_ids != NULL && node != NULL) {
    for (i = 0; i < filter->n_node_ids; i++)
      if (filter->node_ids[i] != NULL && id_matches(filter->node_ids[i], node))
        break;
    if (i == filter->n_node_ids)
      return 0;
  }
  pred = filter->by_kind[ev->kind];
  return pred == NULL || pred(filter->data, ev) != 0;
}

static int gate_cb(void *self, const fc_event_t *ev) {
  gate_t *g = self;
  int pass;
  if (g == NULL || ev == NULL)
    return FC_EINVAL;
  if (g->is_filter)
    pass = fc_filter_match(&g->filter, ev);
  else
    pass = g->pred(g->pred_data, ev) != 0;
  return pass ? fc_handler_call(&g->inner, ev) : 0;
}

static void gate_free(gate_t *g) {
  size_t i;
  if (g->ids != NULL) {
    for (i = 0; i < g->filter.n_node_ids; i++)
      fc__free(g->ids[i]);
    fc__free(g->ids);
  }
  fc__free(g);
}

static void gate_destroy(void *self) {
  gate_t *g = self;
  if (g == NULL)
    return;
  if (g->owns)
    fc_handler_destroy(&g->inner);
  gate_free(g);
}

static void gate_handler(gate_t *g, unsigned mask, fc_handler_t *out) {
  memset(out, 0, sizeof *out);
  out->name = g->name;
  out->self = g;
  out->destroy = gate_destroy;
  set_callbacks(out, &g->inner, mask, gate_cb);
}

static int conditional_make(const fc_handler_t *inner, fc_event_pred_cb pred, void *data,
                            fc_handler_t *out, int owns) {
  gate_t *g;
  if (out != NULL)
    memset(out, 0, sizeof *out);
  if (inner == NULL)
    return FC_EINVAL;
  if (pred == NULL || out == NULL) {
    release_all(inner, 1, owns);
    return FC_EINVAL;
  }
  g = fc__handlers_calloc(1, sizeof *g);
  if (g == NULL) {
    release_all(inner, 1, owns);
    return FC_ENOMEM;
  }
  g->inner = *inner;
  g->owns = owns;
  g->pred = pred;
  g->pred_data = data;
  snprintf(g->name, sizeof g->name, "conditional(%s)", handler_label(inner));
  gate_handler(g, FC_EVENT_KINDS_ALL, out);
  return 0;
}

int fc_conditional_handler_owned(const fc_handler_t *inner, fc_event_pred_cb pred, void *data,
                                 fc_handler_t *out) {
  return conditional_make(inner, pred, data, out, 1);
}

int fc_conditional_handler(const fc_handler_t *inner, fc_event_pred_cb pred, void *data,
                           fc_handler_t *out) {
  return conditional_make(inner, pred, data, out, 0);
}

static int filter_valid(const fc_filter_t *f) {
  size_t i;
  if (f == NULL)
    return 1;
  if ((f->kinds & ~FC_EVENT_KINDS_ALL) != 0)
    return 0;
  if (f->n_node_ids > 0 && f->node_ids == NULL)
    return 0;
  for (i = 0; i < f->n_node_ids; i++)
    if (f->node_ids[i] == NULL || f->node_ids[i][0] == '\0')
      return 0;
  return 1;
}

static int filter_make(const fc_handler_t *inner, const fc_filter_t *filter, fc_handler_t *out,
                       int owns) {
  gate_t *g;
  size_t i;
  if (out != NULL)
    memset(out, 0, sizeof *out);
  if (inner == NULL)
    return FC_EINVAL;
  if (out == NULL || !filter_valid(filter)) {
    release_all(inner, 1, owns);
    return FC_EINVAL;
  }
  g = fc__handlers_calloc(1, sizeof *g);
  if (g == NULL)
    goto nomem;
  g->is_filter = 1;
  if (filter != NULL) {
    g->filter = *filter;
    g->filter.node_ids = NULL;
    g->filter.n_node_ids = 0;
    if (filter->n_node_ids > 0) {
      g->ids = fc__handlers_calloc(filter->n_node_ids, sizeof g->ids[0]);
      if (g->ids == NULL)
        goto nomem;
      for (i = 0; i < filter->n_node_ids; i++) {
        g->filter.n_node_ids = i + 1; /* what gate_free must release */
        g->ids[i] = fc__handlers_strdup(filter->node_ids[i]);
        if (g->ids[i] == NULL)
          goto nomem;
      }
      g->filter.node_ids = (const char *const *)g->ids;
    }
  }
  g->inner = *inner;
  g->owns = owns;
  snprintf(g->name, sizeof g->name, "filter(%s)", handler_label(inner));
  gate_handler(g, g->filter.kinds != 0 ? g->filter.kinds : FC_EVENT_KINDS_ALL, out);
  return 0;

nomem:
  if (g != NULL)
    gate_free(g);
  release_all(inner, 1, owns);
  return FC_ENOMEM;
}

int fc_filter_handler_owned(const fc_handler_t *inner, const fc_filter_t *filter,
                            fc_handler_t *out) {
  return filter_make(inner, filter, out, 1);
}

int fc_filter_handler(const fc_handler_t *inner, const fc_filter_t *filter, fc_handler_t *out) {
  return filter_make(inner, filter, out, 0);
}

/* ---- chained ------------------------------------------------------------- */

static int chain_cb(void *self, const fc_event_t *ev) {
  chain_t *c = self;
  int first = 0;
  size_t i;
  if (c == NULL || ev == NULL)
    return FC_EINVAL;
  for (i = 0; i < c->n; i++) {
    chain_member_t *m = &c->m[i];
    fc_handler_cb cb = fc_handler_get_cb(&m->h, ev->kind);
    int rc;
    if (cb == NULL)
      continue;
    m->stats.calls++;
    rc = cb(m->h.self, ev);
    if (rc != 0) {
      m->stats.failures++;
      m->stats.last_error = rc;
      if (first == 0)
        first = rc;
    }
  }
  return first;
}

static void chain_destroy(void *self) {
  chain_t *c = self;
  size_t i;
  if (c == NULL)
    return;
  if (c->owns)
    for (i = 0; i < c->n; i++)
      fc_handler_destroy(&c->m[i].h);
  fc__free(c);
}

static void chain_name(chain_t *c) {
  size_t len, i;
  int n;
  n = snprintf(c->name, sizeof c->name, "chained(");
  len = n > 0 ? (size_t)n : 0;
  for (i = 0; i < c->n && len < sizeof c->name; i++) {
    n = snprintf(c->name + len, sizeof c->name - len, "%s%s", i ? "+" : "",
                 handler_label(&c->m[i].h));
    if (n < 0)
      break;
    len += (size_t)n;
  }
  if (len + 2 > sizeof c->name) {
    /* too long: end with "...)" */
    memcpy(c->name + sizeof c->name - 5, "...)", 5);
    return;
  }
  c->name[len] = ')';
  c->name[len + 1] = '\0';
}

static int chain_make(const fc_handler_t *handlers, size_t n, fc_handler_t *out, int owns) {
  chain_t *c;
  size_t i;
  if (out != NULL)
    memset(out, 0, sizeof *out);
  if (handlers == NULL && n > 0)
    return FC_EINVAL;
  if (out == NULL) {
    release_all(handlers, n, owns);
    return FC_EINVAL;
  }
  if (n > (SIZE_MAX - sizeof *c) / sizeof c->m[0]) {
    release_all(handlers, n, owns);
    return FC_ENOMEM;
  }
  c = fc__handlers_calloc(1, sizeof *c + n * sizeof c->m[0]);
  if (c == NULL) {
    release_all(handlers, n, owns);
    return FC_ENOMEM;
  }
  c->owns = owns;
  c->n = n;
  for (i = 0; i < n; i++)
    c->m[i].h = handlers[i];
  chain_name(c);
  out->name = c->name;
  out->self = c;
  out->destroy = chain_destroy;
  for (i = 0; i < n; i++)
    set_callbacks(out, &c->m[i].h, FC_EVENT_KINDS_ALL, chain_cb);
  return 0;
}

int fc_chained_handler_owned(const fc_handler_t *handlers, size_t n, fc_handler_t *out) {
  return chain_make(handlers, n, out, 1);
}

int fc_chained_handler(const fc_handler_t *handlers, size_t n, fc_handler_t *out) {
  return chain_make(handlers, n, out, 0);
}

int fc_chained_handler_stats(const fc_handler_t *chain, size_t i, fc_handler_stats_t *out) {
  const chain_t *c;
  if (chain == NULL || chain->destroy != chain_destroy || chain->self == NULL)
    return FC_EINVAL;
  c = chain->self;
  if (i >= c->n)
    return FC_ENOTFOUND;
  if (out != NULL)
    *out = c->m[i].stats;
  return 0;
}
