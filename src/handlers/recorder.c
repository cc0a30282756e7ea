/* The recording handler: keeps a deep copy of every event for tests. */
#define _POSIX_C_SOURCE 200809L

#include <stdarg.h>
#include <stdio.h>

#include "internal.h"

struct fc_recorder_s {
  fc_recorded_event_t **events; /* individually allocated: pointers stay valid */
  size_t n;
  size_t cap;
  int fail[FC_EVENT_KIND_COUNT];
};

/* ---- recording ----------------------------------------------------------- */

static void recorded_free(fc_recorded_event_t *e) {
  if (e == NULL)
    return;
  fc__free(e->workflow_id);
  fc__free(e->workflow_name);
  fc__free(e->node_id);
  fc__free(e->node_type);
  json_decref(e->input);
  json_decref(e->output);
  fc__free(e->error_type);
  fc__free(e->error_message);
  fc__free(e->error_stack_trace);
  fc__free(e);
}

/* Copies s into *dst (NULL stays NULL). Returns 0 or FC_ENOMEM. */
static int copy_str(char **dst, const char *s) {
  if (s == NULL) {
    *dst = NULL;
    return 0;
  }
  *dst = fc__strdup(s);
  return *dst != NULL ? 0 : FC_ENOMEM;
}

static int copy_json(json_t **dst, json_t *v) {
  if (v == NULL) {
    *dst = NULL;
    return 0;
  }
  *dst = json_deep_copy(v);
  return *dst != NULL ? 0 : FC_ENOMEM;
}

static int recorder_record(fc_recorder_t *r, const fc_event_t *ev) {
  fc_recorded_event_t *e;
  const fc_error_info_t *err = ev->kind == FC_EVENT_ERROR ? ev->error : NULL;
  const char *node_id = ev->node_id;
  int attempt = ev->attempt;
  int rc = 0;

  /* An error event raised by a node names it in the event; fall back to
   * the error info for producers that only fill that in. */
  if (err != NULL && node_id == NULL && err->node_id != NULL) {
    node_id = err->node_id;
    attempt = err->attempt;
  }
  if (fc__grow((void **)&r->events, &r->cap, r->n + 1, sizeof r->events[0]) != 0)
    return FC_ENOMEM;
  e = fc__calloc(1, sizeof *e);
  if (e == NULL)
    return FC_ENOMEM;
  e->kind = ev->kind;
  e->attempt = attempt;
  e->status = ev->status;
  e->time_us = ev->time_us;
  e->duration_us = ev->duration_us;
  e->node_count = ev->node_count;
  e->seq = r->n;
  rc |= copy_str(&e->workflow_id, ev->workflow_id);
  rc |= copy_str(&e->workflow_name, ev->workflow_name);
  rc |= copy_str(&e->node_id, node_id);
  rc |= copy_str(&e->node_type, ev->node_type);
  rc |= copy_json(&e->input, ev->input);
  rc |= copy_json(&e->output, ev->output);
  if (err != NULL) {
    rc |= copy_str(&e->error_type, err->type);
    rc |= copy_str(&e->error_message, err->message);
    rc |= copy_str(&e->error_stack_trace, err->stack_trace);
    e->error_severity = err->severity;
  }
  if (rc != 0) {
    recorded_free(e);
    return FC_ENOMEM;
  }
  r->events[r->n++] = e;
  return 0;
}

static int recorder_cb(void *self, const fc_event_t *ev) {
  fc_recorder_t *r = self;
  int rc;
  if (r == NULL || ev == NULL || (unsigned)ev->kind >= (unsigned)FC_EVENT_KIND_COUNT)
    return FC_EINVAL;
  rc = recorder_record(r, ev);
  if (rc != 0)
    return rc;
  return r->fail[ev->kind];
}

static void recorder_destroy(void *self) { fc_recorder_free(self); }

int fc_recorder_new(fc_recorder_t **out) {
  fc_recorder_t *r;
  if (out == NULL)
    return FC_EINVAL;
  r = fc__calloc(1, sizeof *r);
  if (r == NULL)
    return FC_ENOMEM;
  *out = r;
  return 0;
}

void fc_recorder_clear(fc_recorder_t *r) {
  size_t i;
  if (r == NULL)
    return;
  for (i = 0; i < r->n; i++)
    recorded_free(r->events[i]);
  r->n = 0;
}

void fc_recorder_free(fc_recorder_t *r) {
  if (r == NULL)
    return;
  fc_recorder_clear(r);
  fc__free(r->events);
  fc__free(r);
}

int fc_recorder_handler(fc_recorder_t *r, fc_handler_t *out) {
  return fc__handler_of(out, "recorder", r, recorder_cb, NULL);
}

int fc_recorder_handler_owned(fc_recorder_t *r, fc_handler_t *out) {
  return fc__handler_of(out, "recorder", r, recorder_cb, recorder_destroy);
}

void fc_recorder_fail_on(fc_recorder_t *r, fc_event_kind_t kind, int err) {
  if (r == NULL || (unsigned)kind >= (unsigned)FC_EVENT_KIND_COUNT)
    return;
  r->fail[kind] = err;
}

/* ---- queries ------------------------------------------------------------- */

size_t fc_recorder_size(const fc_recorder_t *r) { return r != NULL ? r->n : 0; }

const fc_recorded_event_t *fc_recorder_at(const fc_recorder_t *r, size_t i) {
  if (r == NULL || i >= r->n)
    return NULL;
  return r->events[i];
}

/* node_id NULL matches anything; otherwise the event must be for that node. */
static int event_matches(const fc_recorded_event_t *e, fc_event_kind_t kind, const char *node_id) {
  if (e->kind != kind)
    return 0;
  if (node_id == NULL)
    return 1;
  return e->node_id != NULL && strcmp(e->node_id, node_id) == 0;
}

size_t fc_recorder_count(const fc_recorder_t *r, fc_event_kind_t kind, const char *node_id) {
  size_t i, count = 0;
  if (r == NULL)
    return 0;
  for (i = 0; i < r->n; i++)
    if (event_matches(r->events[i], kind, node_id))
      count++;
  return count;
}

size_t fc_recorder_count_status(const fc_recorder_t *r, const char *node_id,
                                fc_node_status_t status) {
  size_t i, count = 0;
  if (r == NULL)
    return 0;
  for (i = 0; i < r->n; i++) {
    const fc_recorded_event_t *e = r->events[i];
    if (event_matches(e, FC_EVENT_NODE_END, node_id) && e->status == (int)status)
      count++;
  }
  return count;
}

long fc_recorder_find(const fc_recorder_t *r, fc_event_kind_t kind, const char *node_id,
                      size_t from) {
  size_t i;
  if (r == NULL)
    return -1;
  for (i = from; i < r->n; i++)
    if (event_matches(r->events[i], kind, node_id))
      return (long)i;
  return -1;
}

const fc_recorded_event_t *fc_recorder_last(const fc_recorder_t *r, fc_event_kind_t kind,
                                            const char *node_id) {
  size_t i;
  if (r == NULL)
    return NULL;
  for (i = r->n; i > 0; i--)
    if (event_matches(r->events[i - 1], kind, node_id))
      return r->events[i - 1];
  return NULL;
}

static void msg_set(char *msg, size_t msg_size, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

static void msg_set(char *msg, size_t msg_size, const char *fmt, ...) {
  va_list ap;
  if (msg == NULL || msg_size == 0)
    return;
  va_start(ap, fmt);
  vsnprintf(msg, msg_size, fmt, ap);
  va_end(ap);
}

/* node_ids may be NULL: every step then matches any node. */
int fc_recorder_in_order(const fc_recorder_t *r, const fc_event_kind_t *kinds,
                         const char *const *node_ids, size_t n, char *msg, size_t msg_size) {
  size_t step, pos = 0;
  if (r == NULL || (kinds == NULL && n > 0)) {
    msg_set(msg, msg_size, "invalid arguments");
    return 0;
  }
  for (step = 0; step < n; step++) {
    const char *node = node_ids != NULL ? node_ids[step] : NULL;
    long at = fc_recorder_find(r, kinds[step], node, pos);
    if (at < 0) {
      if (step == 0)
        msg_set(msg, msg_size, "step %zu (%s%s%s) not found in %zu events", step,
                fc_event_kind_name(kinds[step]), node ? " " : "", node ? node : "", r->n);
      else
        msg_set(msg, msg_size, "step %zu (%s%s%s) not found after step %zu at event #%zu", step,
                fc_event_kind_name(kinds[step]), node ? " " : "", node ? node : "", step - 1,
                pos - 1);
      return 0;
    }
    pos = (size_t)at + 1;
  }
  if (msg != NULL && msg_size > 0)
    msg[0] = '\0';
  return 1;
}

/* ---- the order contract -------------------------------------------------- */

/* State of one run (node == NULL) or one node of a run, in a small open
 * addressing hash table keyed by (workflow_id, node_id). */
typedef struct {
  const char *wf;
  const char *node;
  int used;
  /* runs */
  int ended;          /* workflow_end seen */
  size_t nodes_ended; /* nodes with at least one node_end */
  /* nodes */
  int open;      /* attempt started and not ended, 0 if none */
  int last;      /* last attempt started */
  int never_ran; /* ended with attempt 0 */
  int has_end;
} contract_state_t;

typedef struct {
  contract_state_t *slots;
  size_t cap;
  size_t n;
} contract_map_t;

static uint64_t hash_str(uint64_t h, const char *s) {
  for (; *s != '\0'; s++) {
    h ^= (unsigned char)*s;
    h *= UINT64_C(1099511628211);
  }
  return h;
}

static uint64_t contract_hash(const char *wf, const char *node) {
  uint64_t h = hash_str(UINT64_C(14695981039346656037), wf);
  if (node != NULL) {
    h ^= 0xff;
    h *= UINT64_C(1099511628211);
    h = hash_str(h, node);
  }
  return h;
}

static int key_equal(const contract_state_t *s, const char *wf, const char *node) {
  if (strcmp(s->wf, wf) != 0)
    return 0;
  if (s->node == NULL || node == NULL)
    return s->node == node;
  return strcmp(s->node, node) == 0;
}

/* Finds or inserts the state of (wf, node). Returns NULL when out of memory. */
static contract_state_t *contract_get(contract_map_t *map, const char *wf, const char *node) {
  size_t i;
  if ((map->n + 1) * 2 > map->cap) {
    size_t ncap = map->cap ? map->cap * 2 : 64, j;
    contract_state_t *ns = fc__calloc(ncap, sizeof *ns);
    if (ns == NULL)
      return NULL;
    for (j = 0; j < map->cap; j++) {
      if (!map->slots[j].used)
        continue;
      i = (size_t)contract_hash(map->slots[j].wf, map->slots[j].node) & (ncap - 1);
      while (ns[i].used)
        i = (i + 1) & (ncap - 1);
      ns[i] = map->slots[j];
    }
    fc__free(map->slots);
    map->slots = ns;
    map->cap = ncap;
  }
  i = (size_t)contract_hash(wf, node) & (map->cap - 1);
  while (map->slots[i].used) {
    if (key_equal(&map->slots[i], wf, node))
      return &map->slots[i];
    i = (i + 1) & (map->cap - 1);
  }
  memset(&map->slots[i], 0, sizeof map->slots[i]);
  map->slots[i].used = 1;
  map->slots[i].wf = wf;
  map->slots[i].node = node;
  map->n++;
  return &map->slots[i];
}

static const contract_state_t *contract_lookup(const contract_map_t *map, const char *wf,
                                               const char *node) {
  size_t i;
  if (map->cap == 0)
    return NULL;
  i = (size_t)contract_hash(wf, node) & (map->cap - 1);
  while (map->slots[i].used) {
    if (key_equal(&map->slots[i], wf, node))
      return &map->slots[i];
    i = (i + 1) & (map->cap - 1);
  }
  return NULL;
}

/* Checks one event against the state; returns 1 if it is allowed (and
 * updates the state), else 0 with a description in msg. */
static int contract_step(contract_map_t *map, const fc_recorded_event_t *e, char *msg,
                         size_t msg_size) {
  const char *kind = fc_event_kind_name(e->kind);
  const char *node = e->node_id;
  contract_state_t *run, *st;
  size_t i;

  if (e->workflow_id == NULL) {
    msg_set(msg, msg_size, "event #%zu (%s) has no workflow_id", e->seq, kind);
    return 0;
  }
  run = contract_get(map, e->workflow_id, NULL);
  if (run == NULL) {
    msg_set(msg, msg_size, "out of memory");
    return 0;
  }
  if (e->kind == FC_EVENT_WORKFLOW_START) {
    if (run->last != 0) {
      msg_set(msg, msg_size, "event #%zu: second workflow_start of run %s", e->seq, e->workflow_id);
      return 0;
    }
    run->last = 1; /* started */
    return 1;
  }
  if (run->last == 0) {
    msg_set(msg, msg_size, "event #%zu (%s%s%s) before the workflow_start of run %s", e->seq, kind,
            node ? " node=" : "", node ? node : "", e->workflow_id);
    return 0;
  }
  if (run->ended) {
    msg_set(msg, msg_size, "event #%zu (%s%s%s) after the workflow_end of run %s", e->seq, kind,
            node ? " node=" : "", node ? node : "", e->workflow_id);
    return 0;
  }
  if (e->kind == FC_EVENT_WORKFLOW_END) {
    for (i = 0; i < map->cap; i++) {
      st = &map->slots[i];
      if (st->used && st->node != NULL && st->open != 0 && strcmp(st->wf, e->workflow_id) == 0) {
        msg_set(msg, msg_size, "event #%zu: workflow_end while node %s attempt %d has no node_end",
                e->seq, st->node, st->open);
        return 0;
      }
    }
    if (e->node_count > 0 && run->nodes_ended != (size_t)e->node_count) {
      msg_set(msg, msg_size, "event #%zu: workflow_end but %zu of %d nodes have a node_end", e->seq,
              run->nodes_ended, e->node_count);
      return 0;
    }
    run->ended = 1;
    return 1;
  }
  if (e->kind == FC_EVENT_ERROR && node == NULL)
    return 1; /* a workflow-level error: anywhere inside the run */
  if (node == NULL) {
    msg_set(msg, msg_size, "event #%zu (%s) has no node_id", e->seq, kind);
    return 0;
  }
  st = contract_get(map, e->workflow_id, node);
  if (st == NULL) {
    msg_set(msg, msg_size, "out of memory");
    return 0;
  }
  run = (contract_state_t *)contract_lookup(map, e->workflow_id, NULL); /* may have moved */

  switch (e->kind) {
  case FC_EVENT_NODE_START:
    if (st->never_ran) {
      msg_set(msg, msg_size, "event #%zu: node_start of node %s after its node_end with attempt 0",
              e->seq, node);
      return 0;
    }
    if (st->open != 0) {
      msg_set(msg, msg_size,
              "event #%zu: node_start of node %s attempt %d while attempt %d has no node_end",
              e->seq, node, e->attempt, st->open);
      return 0;
    }
    if (e->attempt != st->last + 1) {
      msg_set(msg, msg_size, "event #%zu: node_start of node %s with attempt %d, expected %d",
              e->seq, node, e->attempt, st->last + 1);
      return 0;
    }
    st->open = st->last = e->attempt;
    return 1;

  case FC_EVENT_NODE_END:
    if (e->attempt == 0) {
      if (st->last != 0 || st->never_ran) {
        msg_set(msg, msg_size, "event #%zu: node_end of node %s with attempt 0, but it %s", e->seq,
                node, st->never_ran ? "already ended" : "ran");
        return 0;
      }
      if (e->status != FC_NODE_SKIPPED && e->status != FC_NODE_CANCELLED) {
        msg_set(msg, msg_size,
                "event #%zu: node_end of node %s with attempt 0 has status %s "
                "(skipped or cancelled expected)",
                e->seq, node, fc_node_status_name((fc_node_status_t)e->status));
        return 0;
      }
      st->never_ran = 1;
    } else if (st->open != e->attempt) {
      if (st->open == 0)
        msg_set(msg, msg_size, "event #%zu: node_end of node %s attempt %d without its node_start",
                e->seq, node, e->attempt);
      else
        msg_set(msg, msg_size,
                "event #%zu: node_end of node %s attempt %d while attempt %d is open", e->seq, node,
                e->attempt, st->open);
      return 0;
    } else {
      st->open = 0;
    }
    if (!st->has_end) {
      st->has_end = 1;
      run->nodes_ended++;
    }
    return 1;

  case FC_EVENT_ERROR:
    if (st->open == 0 || st->open != e->attempt) {
      msg_set(msg, msg_size, "event #%zu: error of node %s attempt %d outside that attempt", e->seq,
              node, e->attempt);
      return 0;
    }
    return 1;

  default:
    msg_set(msg, msg_size, "event #%zu has an unknown kind %d", e->seq, (int)e->kind);
    return 0;
  }
}

int fc_recorder_check_contract(const fc_recorder_t *r, char *msg, size_t msg_size) {
  contract_map_t map = {NULL, 0, 0};
  size_t i;
  int ok = 1;

  if (r == NULL) {
    msg_set(msg, msg_size, "no recorder");
    return 0;
  }
  for (i = 0; i < r->n && ok; i++)
    ok = contract_step(&map, r->events[i], msg, msg_size);
  for (i = 0; i < map.cap && ok; i++) {
    const contract_state_t *st = &map.slots[i];
    if (st->used && st->node == NULL && !st->ended) {
      msg_set(msg, msg_size, "run %s has no workflow_end", st->wf);
      ok = 0;
    }
  }
  fc__free(map.slots);
  if (ok && msg != NULL && msg_size > 0)
    msg[0] = '\0';
  return ok;
}
