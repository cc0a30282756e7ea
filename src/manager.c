/* The callback manager: handlers in priority order, failures isolated.
 *
 * Dispatch is the hot path (the engine calls it twice per node; it makes
 * no node event at all for a kind no handler listens to, asking
 * fc__manager_listens, which reads the same table), so the
 * manager keeps a dispatch table: for every event kind, a packed array of
 * {callback, self, entry} holding only the handlers interested in that kind,
 * already sorted by priority (higher first, then in order of adding). The
 * table is rebuilt on add and remove, never during a dispatch of an event,
 * and dispatch itself never allocates.
 *
 * Re-entrancy: a callback may add or remove handlers, or dispatch another
 * event. A dispatch iterates over the table that was current when it began;
 * a change made meanwhile builds a new table (the old one is retired and
 * freed when the outermost dispatch returns), so a nested dispatch sees the
 * change at once. A removed handler is flagged and skipped by every dispatch
 * still in progress; its destroy runs when the outermost dispatch returns.
 * Outside a dispatch the table is rebuilt in place when it is big enough, so
 * removal never needs memory. */
#define _POSIX_C_SOURCE 200809L

#include <inttypes.h>
#include <stdio.h>

#include "internal.h"

#define MANAGER_LOG_PER_SECOND 5
#define MANAGER_LINE_MAX 640

typedef struct manager_entry_s {
  fc_handler_t h;         /* h.name is `name` */
  const char *given_name; /* the pointer given to fc_manager_add */
  char *name;             /* owned copy, or "handler#<id>" */
  int id;
  int priority;
  int removed; /* no longer registered; skipped by running dispatches */
  fc_handler_stats_t stats;
  /* Rate limit of failure log lines: a one-second window. */
  uint64_t window_start_ns;
  unsigned window_lines;
  uint64_t suppressed;
  struct manager_entry_s *next_pending;
} manager_entry_t;

typedef struct {
  fc_handler_cb cb;
  void *self;
  manager_entry_t *entry;
} manager_slot_t;

typedef struct manager_table_s {
  struct manager_table_s *next_retired;
  size_t cap; /* slots allocated */
  /* Slots of kind k are slots[off[k] .. off[k + 1]). */
  size_t off[FC_EVENT_KIND_COUNT + 1];
  manager_slot_t slots[];
} manager_table_t;

struct fc_manager_s {
  manager_entry_t **items; /* registered handlers in order of adding */
  size_t n;
  size_t cap;
  manager_table_t *table;   /* current dispatch table, NULL when empty */
  manager_table_t *retired; /* replaced during a dispatch */
  manager_entry_t *pending; /* removed during a dispatch, destroy pending */
  manager_entry_t *pending_tail;
  unsigned depth;   /* dispatches in progress */
  int dirty;        /* table still lists a removed handler */
  int free_pending; /* fc_manager_free was called during a dispatch */
  int settling;
  int next_id;
  uint64_t failures;
  fc_log_sink_cb sink;
  void *sink_data;
  unsigned per_second;
};

/* ---- handlers ------------------------------------------------------------ */

fc_handler_cb fc_handler_get_cb(const fc_handler_t *h, fc_event_kind_t kind) {
  if (h == NULL)
    return NULL;
  switch (kind) {
  case FC_EVENT_WORKFLOW_START:
    return h->on_workflow_start;
  case FC_EVENT_WORKFLOW_END:
    return h->on_workflow_end;
  case FC_EVENT_NODE_START:
    return h->on_node_start;
  case FC_EVENT_NODE_END:
    return h->on_node_end;
  case FC_EVENT_ERROR:
    return h->on_error;
  default:
    return NULL;
  }
}

int fc__handler_of(fc_handler_t *out, const char *name, void *self, fc_handler_cb cb,
                   void (*destroy)(void *self)) {
  int k;
  if (out != NULL)
    memset(out, 0, sizeof *out);
  if (self == NULL || out == NULL) {
    if (self != NULL && destroy != NULL)
      destroy(self);
    return FC_EINVAL;
  }
  out->name = name;
  out->self = self;
  for (k = 0; k < FC_EVENT_KIND_COUNT; k++)
    fc__handler_set_cb(out, (fc_event_kind_t)k, cb);
  out->destroy = destroy;
  return 0;
}

void fc__handler_set_cb(fc_handler_t *h, fc_event_kind_t kind, fc_handler_cb cb) {
  switch (kind) {
  case FC_EVENT_WORKFLOW_START:
    h->on_workflow_start = cb;
    break;
  case FC_EVENT_WORKFLOW_END:
    h->on_workflow_end = cb;
    break;
  case FC_EVENT_NODE_START:
    h->on_node_start = cb;
    break;
  case FC_EVENT_NODE_END:
    h->on_node_end = cb;
    break;
  case FC_EVENT_ERROR:
    h->on_error = cb;
    break;
  default:
    break;
  }
}

int fc_handler_call(const fc_handler_t *h, const fc_event_t *ev) {
  fc_handler_cb cb;
  if (h == NULL || ev == NULL)
    return FC_EINVAL;
  cb = fc_handler_get_cb(h, ev->kind);
  return cb != NULL ? cb(h->self, ev) : 0;
}

void fc_handler_destroy(fc_handler_t *h) {
  if (h == NULL)
    return;
  if (h->destroy != NULL)
    h->destroy(h->self);
  memset(h, 0, sizeof *h);
}

/* ---- internals ----------------------------------------------------------- */

static void default_sink(void *data, const char *line) {
  (void)data;
  fprintf(stderr, "%s\n", line);
}

static void entry_destroy(manager_entry_t *e) {
  if (e->h.destroy != NULL)
    e->h.destroy(e->h.self);
  fc__free(e->name);
  fc__free(e);
}

static long manager_find(const fc_manager_t *m, int id) {
  size_t i;
  for (i = 0; i < m->n; i++)
    if (m->items[i]->id == id)
      return (long)i;
  return -1;
}

/* Fills t from the registered handlers. Insertion sort per kind: stable, so
 * equal priorities keep the order of adding. */
static void table_fill(manager_table_t *t, manager_entry_t *const *items, size_t n) {
  size_t pos = 0, i, j;
  int k;
  for (k = 0; k < FC_EVENT_KIND_COUNT; k++) {
    t->off[k] = pos;
    for (i = 0; i < n; i++) {
      manager_entry_t *e = items[i];
      fc_handler_cb cb = fc_handler_get_cb(&e->h, (fc_event_kind_t)k);
      if (cb == NULL)
        continue;
      for (j = pos; j > t->off[k] && t->slots[j - 1].entry->priority < e->priority; j--)
        t->slots[j] = t->slots[j - 1];
      t->slots[j].cb = cb;
      t->slots[j].self = e->h.self;
      t->slots[j].entry = e;
      pos++;
    }
  }
  t->off[FC_EVENT_KIND_COUNT] = pos;
}

/* Makes the table match the registered handlers. Returns 0 or FC_ENOMEM
 * (only possible during a dispatch or when growing). */
static int manager_rebuild(fc_manager_t *m) {
  manager_table_t *t = m->table;
  size_t need = 0, i;
  int k;

  for (i = 0; i < m->n; i++)
    for (k = 0; k < FC_EVENT_KIND_COUNT; k++)
      if (fc_handler_get_cb(&m->items[i]->h, (fc_event_kind_t)k) != NULL)
        need++;

  if (t == NULL || m->depth > 0 || t->cap < need) {
    size_t cap = need < 8 ? 8 : need * 2;
    t = fc__malloc(sizeof *t + cap * sizeof t->slots[0]);
    if (t == NULL)
      return FC_ENOMEM;
    t->cap = cap;
    t->next_retired = NULL;
  }
  table_fill(t, m->items, m->n);
  if (t != m->table) {
    if (m->table != NULL) {
      if (m->depth > 0) {
        m->table->next_retired = m->retired;
        m->retired = m->table;
      } else {
        fc__free(m->table);
      }
    }
    m->table = t;
  }
  m->dirty = 0;
  return 0;
}

/* Destroys every handler (those removed during a dispatch first, then the
 * registered ones in order of adding) and frees the manager. A destroy
 * callback that calls back into the manager finds it empty (remove answers
 * FC_ENOTFOUND); a handler it adds is destroyed too. */
static void manager_free_now(fc_manager_t *m) {
  m->free_pending = 0;
  m->settling = 1; /* no settle from a dispatch made by a destroy callback */
  while (m->pending != NULL || m->n > 0) {
    manager_entry_t **items = m->items;
    size_t n = m->n, i;
    manager_entry_t *e;
    m->items = NULL;
    m->n = m->cap = 0;
    fc__free(m->table); /* a dispatch from a destroy callback reaches nobody */
    m->table = NULL;
    while ((e = m->pending) != NULL) {
      m->pending = e->next_pending;
      if (m->pending == NULL)
        m->pending_tail = NULL;
      entry_destroy(e);
    }
    for (i = 0; i < n; i++)
      entry_destroy(items[i]);
    fc__free(items);
  }
  while (m->retired != NULL) {
    manager_table_t *t = m->retired;
    m->retired = t->next_retired;
    fc__free(t);
  }
  fc__free(m->table);
  fc__free(m->items);
  fc__free(m);
}

/* Runs when the outermost dispatch returns: frees retired tables, destroys
 * handlers removed meanwhile, and performs a deferred fc_manager_free. */
static void manager_settle(fc_manager_t *m) {
  if (m->settling)
    return;
  m->settling = 1;
  while (m->retired != NULL) {
    manager_table_t *t = m->retired;
    m->retired = t->next_retired;
    fc__free(t);
  }
  if (m->dirty)
    (void)manager_rebuild(m); /* in place: cannot fail at depth 0 */
  while (m->pending != NULL && !m->dirty && m->depth == 0) {
    manager_entry_t *e = m->pending;
    m->pending = e->next_pending;
    if (m->pending == NULL)
      m->pending_tail = NULL;
    entry_destroy(e); /* may re-enter the manager */
  }
  m->settling = 0;
  if (m->free_pending && m->depth == 0)
    manager_free_now(m);
}

static void manager_log_failure(fc_manager_t *m, manager_entry_t *e, const fc_event_t *ev, int rc) {
  char line[MANAGER_LINE_MAX];
  uint64_t now = fc__mono_ns();
  int len;

  if (e->window_lines == 0 || now - e->window_start_ns >= UINT64_C(1000000000)) {
    e->window_start_ns = now;
    e->window_lines = 0;
  }
  if (e->window_lines >= m->per_second) {
    e->suppressed++;
    return;
  }
  e->window_lines++;

  len = snprintf(line, sizeof line, "flowcore: handler \"%s\" (id %d) failed on %s: %s (%s)",
                 e->name, e->id, fc_event_kind_name(ev->kind), fc_err_name(rc), fc_strerror(rc));
  if (len >= 0 && (size_t)len < sizeof line && ev->workflow_id != NULL)
    len += snprintf(line + len, sizeof line - (size_t)len, " workflow_id=%s", ev->workflow_id);
  if (len >= 0 && (size_t)len < sizeof line && ev->node_id != NULL)
    len += snprintf(line + len, sizeof line - (size_t)len, " node=%s attempt=%d", ev->node_id,
                    ev->attempt);
  if (len >= 0 && (size_t)len < sizeof line && e->suppressed > 0)
    snprintf(line + len, sizeof line - (size_t)len, " (%" PRIu64 " similar lines suppressed)",
             e->suppressed);
  e->suppressed = 0;
  m->sink(m->sink_data, line);
}

/* ---- manager ------------------------------------------------------------- */

int fc_manager_new(fc_manager_t **out) {
  fc_manager_t *m;
  if (out == NULL)
    return FC_EINVAL;
  m = fc__calloc(1, sizeof *m);
  if (m == NULL)
    return FC_ENOMEM;
  m->sink = default_sink;
  m->per_second = MANAGER_LOG_PER_SECOND;
  *out = m;
  return 0;
}

/* During a dispatch the manager is freed when the outermost dispatch
 * returns; until then no handler is called any more. */
void fc_manager_free(fc_manager_t *m) {
  size_t i;
  if (m == NULL)
    return;
  if (m->depth > 0 || m->settling) {
    m->free_pending = 1;
    for (i = 0; i < m->n; i++)
      m->items[i]->removed = 1;
    return;
  }
  manager_free_now(m);
}

int fc_manager_add(fc_manager_t *m, const fc_handler_t *h, int priority, int *id_out) {
  manager_entry_t *e;
  char buf[32];
  int id;

  if (h == NULL)
    return FC_EINVAL;
  if (m == NULL) {
    if (h->destroy != NULL)
      h->destroy(h->self);
    return FC_EINVAL;
  }
  e = fc__calloc(1, sizeof *e);
  if (e == NULL)
    goto nomem;
  id = ++m->next_id;
  if (h->name == NULL)
    snprintf(buf, sizeof buf, "handler#%d", id);
  e->name = fc__strdup(h->name != NULL ? h->name : buf);
  if (e->name == NULL)
    goto nomem;
  e->h = *h;
  e->h.name = e->name;
  e->given_name = h->name;
  e->id = id;
  e->priority = priority;
  if (fc__grow((void **)&m->items, &m->cap, m->n + 1, sizeof m->items[0]) != 0)
    goto nomem;
  m->items[m->n++] = e;
  if (manager_rebuild(m) != 0) {
    m->n--;
    goto nomem;
  }
  if (id_out != NULL)
    *id_out = id;
  return 0;

nomem:
  if (e != NULL) {
    fc__free(e->name);
    fc__free(e);
  }
  if (h->destroy != NULL)
    h->destroy(h->self);
  return FC_ENOMEM;
}

/* Takes the entry at index i out of the registered list and the table. */
static manager_entry_t *manager_unlink(fc_manager_t *m, size_t i) {
  manager_entry_t *e = m->items[i];
  memmove(m->items + i, m->items + i + 1, (m->n - i - 1) * sizeof m->items[0]);
  m->n--;
  e->removed = 1;
  if (manager_rebuild(m) != 0)
    m->dirty = 1; /* running dispatches skip it; rebuilt when they return */
  return e;
}

int fc_manager_remove(fc_manager_t *m, int id) {
  manager_entry_t *e;
  long i;
  if (m == NULL)
    return FC_EINVAL;
  i = manager_find(m, id);
  if (i < 0)
    return FC_ENOTFOUND;
  e = manager_unlink(m, (size_t)i);
  if (m->depth > 0 || m->dirty || m->settling) {
    e->next_pending = NULL;
    if (m->pending_tail != NULL)
      m->pending_tail->next_pending = e;
    else
      m->pending = e;
    m->pending_tail = e;
  } else {
    entry_destroy(e);
  }
  return 0;
}

int fc_manager_detach(fc_manager_t *m, int id, fc_handler_t *out) {
  manager_entry_t *e;
  long i;
  if (m == NULL)
    return FC_EINVAL;
  if (m->depth > 0)
    return FC_ESTATE;
  i = manager_find(m, id);
  if (i < 0)
    return FC_ENOTFOUND;
  e = manager_unlink(m, (size_t)i);
  if (out != NULL) {
    *out = e->h;
    out->name = e->given_name;
  }
  fc__free(e->name);
  fc__free(e);
  return 0;
}

int fc_manager_dispatch(fc_manager_t *m, const fc_event_t *ev) {
  const manager_table_t *t;
  const manager_slot_t *s, *end;
  int failed = 0;

  if (m == NULL || ev == NULL || (unsigned)ev->kind >= FC_EVENT_KIND_COUNT)
    return 0;
  t = m->table;
  if (t == NULL || t->off[ev->kind] == t->off[ev->kind + 1])
    return 0;
  s = t->slots + t->off[ev->kind];
  end = t->slots + t->off[ev->kind + 1];
  m->depth++;
  for (; s < end; s++) {
    manager_entry_t *e = s->entry;
    int rc;
    if (e->removed)
      continue;
    e->stats.calls++;
    rc = s->cb(s->self, ev);
    if (rc != 0) {
      failed++;
      e->stats.failures++;
      e->stats.last_error = rc;
      m->failures++;
      manager_log_failure(m, e, ev, rc);
    }
  }
  if (--m->depth == 0 && (m->retired != NULL || m->pending != NULL || m->dirty || m->free_pending))
    manager_settle(m);
  return failed;
}

size_t fc_manager_count(const fc_manager_t *m) { return m != NULL ? m->n : 0; }

int fc__manager_listens(const fc_manager_t *m, fc_event_kind_t kind) {
  const manager_table_t *t = m != NULL ? m->table : NULL;
  return t != NULL && (unsigned)kind < FC_EVENT_KIND_COUNT && t->off[kind] != t->off[kind + 1];
}

int fc_manager_handler_stats(const fc_manager_t *m, int id, fc_handler_stats_t *out) {
  long i;
  if (m == NULL)
    return FC_EINVAL;
  i = manager_find(m, id);
  if (i < 0)
    return FC_ENOTFOUND;
  if (out != NULL)
    *out = m->items[i]->stats;
  return 0;
}

uint64_t fc_manager_failures(const fc_manager_t *m) { return m != NULL ? m->failures : 0; }

void fc_manager_set_log_sink(fc_manager_t *m, fc_log_sink_cb sink, void *data,
                             unsigned per_second) {
  if (m == NULL)
    return;
  m->sink = sink != NULL ? sink : default_sink;
  m->sink_data = sink != NULL ? data : NULL;
  m->per_second = per_second != 0 ? per_second : MANAGER_LOG_PER_SECOND;
}
