/* The database handler: events -> compact records -> blocks for the
 * writer. Runs on the engine's loop thread; its callbacks do no I/O and
 * serialize no payload (the writer does that on its own thread): the one
 * text they write is the references of an input or output (compact). */
#include <stdio.h>

#include "buf.h"
#include "history/record.h"
#include "workflow_int.h"

#define MAX_TYPE 256
#define MAX_MESSAGE (8 * 1024)
#define MAX_STACK (64 * 1024)

/* What compact storage compares against (docs/history.md "Compact
 * payloads"), per run: references held so that an address compared is
 * never one reused by a newer value. */
typedef struct {
  json_t *input;     /* the run's input, or NULL */
  json_t **out;      /* node_count: latest output of each node, or NULL */
  int32_t *out_attempt;
  json_t **in;       /* node_count: input of the attempt now running */
  /* The node input compacted last and what it gave (references held):
   * the successors of one node share one input object (src/run.c), so a
   * fan-out compacts it once and its records share payload and refs. */
  json_t *memo_value, *memo_refs, *memo_rest;
  json_t *empty; /* {}: the payload of an input that is references only */
} refs_state;

typedef struct {
  fc_history_writer_t *writer; /* borrowed */
  fc__hblock_t *block;         /* being filled, or NULL */
  fc__hrun_t *runs[4];         /* data of the runs seen last (references) */
  int credit[4];               /* ... and references taken ahead on each (run_ref) */
  refs_state refs[4];          /* the same runs' compact-storage state */
  unsigned next_slot, last;    /* the slot to fill next; the slot used last */
  uv_prepare_t prepare;        /* hands over a partial block before the loop waits */
  uv_check_t check;            /* ... and after I/O callbacks ran */
  int closing;
} db_handler;

/* ---- handing blocks over ------------------------------------------------- */

static void hand_over(db_handler *h) {
  fc__hblock_t *b = h->block;
  if (b == NULL || b->n == 0)
    return;
  h->block = NULL;
  fc__writer_submit(h->writer, b);
}

static fc__hrec_t *next_rec(db_handler *h) {
  fc__hblock_t *b = h->block;
  if (b == NULL) {
    b = fc__malloc(sizeof *b);
    if (b == NULL)
      return NULL;
    b->next = NULL;
    b->n = 0;
    h->block = b;
  }
  return &b->recs[b->n];
}

/* Commits the record just filled by next_rec. */
static void push_rec(db_handler *h) {
  if (++h->block->n == FC__HBLOCK_SIZE)
    hand_over(h);
}

static void memo_clear(refs_state *st) {
  json_decref(st->memo_value);
  json_decref(st->memo_refs);
  json_decref(st->memo_rest);
  st->memo_value = st->memo_refs = st->memo_rest = NULL;
}

static void refs_clear(refs_state *st, int node_count) {
  int i;
  memo_clear(st);
  json_decref(st->input);
  for (i = 0; st->out != NULL && i < node_count; i++) {
    json_decref(st->out[i]);
    json_decref(st->in[i]);
  }
  fc__free(st->out);
  fc__free(st->out_attempt);
  fc__free(st->in);
  json_decref(st->empty);
  memset(st, 0, sizeof *st);
}

/* References on a run are taken this many at a time (run_ref). */
#define RUN_CREDIT 1024

/* Forgets slot i's run: its compact-storage state, the references taken
 * ahead and the slot's own. */
static void drop_slot(db_handler *h, unsigned i) {
  if (h->runs[i] == NULL)
    return;
  refs_clear(&h->refs[i], h->runs[i]->node_count);
  fc__hrun_addref(h->runs[i], -h->credit[i]);
  h->credit[i] = 0;
  fc__hrun_decref(h->runs[i]);
  h->runs[i] = NULL;
}

/* A counted reference on slot i's run, for a record. Every record holds
 * one and the writer's thread drops it when done with the record; taking
 * them RUN_CREDIT at a time makes the engine's thread do one atomic add
 * on the shared count per RUN_CREDIT records instead of one per record. */
static fc__hrun_t *run_ref(db_handler *h, unsigned i) {
  if (h->credit[i] == 0) {
    fc__hrun_addref(h->runs[i], RUN_CREDIT);
    h->credit[i] = RUN_CREDIT;
  }
  h->credit[i]--;
  return h->runs[i];
}

/* The slot of ev's run: the runs seen last are cached (several runs may
 * interleave on one loop), else the run data is made from the event's
 * workflow, in the next slot in turn (round robin). Returns the slot, or -1 when
 * out of memory. A run evicted from the cache and seen again starts with
 * an empty compact-storage state: its rows are then stored whole, never
 * wrongly. */
static int run_slot(db_handler *h, const fc_event_t *ev) {
  unsigned i;
  fc__hrun_t *r;
  if (h->runs[h->last] != NULL && memcmp(h->runs[h->last]->uuid, ev->workflow_uuid, 16) == 0)
    return (int)h->last;
  for (i = 0; i < FC__ARRAY_SIZE(h->runs); i++)
    if (h->runs[i] != NULL && memcmp(h->runs[i]->uuid, ev->workflow_uuid, 16) == 0) {
      h->last = i;
      return (int)i;
    }
  r = fc__hrun_new(ev);
  if (r == NULL)
    return -1;
  i = h->next_slot++ % FC__ARRAY_SIZE(h->runs);
  drop_slot(h, i);
  h->runs[i] = r;
  h->last = i;
  return (int)i;
}

static int refs_alloc(refs_state *st, int node_count) {
  size_t n = node_count > 0 ? (size_t)node_count : 1;
  st->out = fc__calloc(n, sizeof *st->out);
  st->out_attempt = fc__calloc(n, sizeof *st->out_attempt);
  st->in = fc__calloc(n, sizeof *st->in);
  st->empty = json_object();
  if (st->out == NULL || st->out_attempt == NULL || st->in == NULL || st->empty == NULL) {
    refs_clear(st, 0);
    return FC_ENOMEM;
  }
  return 0;
}

/* Where is_ref looks for a member's node before the workflow's id table:
 * a node's input has a member per predecessor in the order of its `in`
 * list (src/run.c, node_input), after "input"; a run's output lists its
 * sinks in node order. */
typedef struct {
  const uint32_t *in; /* a node start: its predecessors; NULL: a run's output */
  size_t nin, pos;    /* the next of `in` to try */
  size_t next;        /* a run's output: the node after the last one found */
} ref_hint_t;

/* Whether member (key, v) of a node's input or a run's output is stored
 * as a reference: 1 with *attempt = 0 when v is the run's input itself
 * ("run"), 1 with *attempt = n when v is the latest output of node `key`
 * itself (attempt n), else 0. Pointer identity only. */
static int is_ref(const refs_state *st, const fc_workflow_t *wf, const char *key, const json_t *v,
                  int32_t *attempt, ref_hint_t *hint) {
  const fc_node_t *dep = NULL;
  size_t guess;
  if (v == st->input) {
    *attempt = 0;
    return 1;
  }
  if (wf == NULL)
    return 0;
  if (hint->in != NULL)
    guess = hint->pos < hint->nin ? hint->in[hint->pos++] : SIZE_MAX;
  else
    guess = hint->next;
  if (guess < wf->nnodes && strcmp(wf->nodes[guess]->id, key) == 0)
    dep = wf->nodes[guess];
  else
    dep = fc_workflow_find_node(wf, key);
  if (dep != NULL && st->out[dep->index] == v && st->out_attempt[dep->index] > 0) {
    *attempt = st->out_attempt[dep->index];
    hint->next = (size_t)dep->index + 1;
    return 1;
  }
  return 0;
}

/* 1 when key is written in JSON as it is (no '"', '\\' or control byte):
 * true of node ids (fc__name_valid). */
static int plain_key(const char *key) {
  const unsigned char *p;
  for (p = (const unsigned char *)key; *p != '\0'; p++)
    if (*p == '"' || *p == '\\' || *p < 0x20)
      return 0;
  return 1;
}

/* Appends ,"key":"run" or ,"key":n (no comma before the first). */
static void put_ref(fc__buf_t *b, size_t nth, const char *key, int32_t attempt) {
  char num[16];
  int len = 0;
  uint32_t a = attempt > 0 ? (uint32_t)attempt : 0;
  if (nth > 0)
    fc__buf_append(b, ",", 1);
  fc__buf_append(b, "\"", 1);
  fc__buf_puts(b, key);
  if (attempt == 0) {
    fc__buf_append(b, "\":\"run\"", 7);
    return;
  }
  fc__buf_append(b, "\":", 2);
  do
    num[sizeof num - 1 - len++] = (char)('0' + a % 10);
  while ((a /= 10) != 0);
  fc__buf_append(b, num + sizeof num - len, (size_t)len);
}

/* Fills rec->payload and rec->refs for a node start's input or a run's
 * output (value): the members that are stored elsewhere become
 * references, written as compact JSON text into one string
 * (rec->refs_text: one allocation, not an object and a pair per member;
 * a run's output has a member per sink, a million for a fan-out of a
 * million nodes); the other members stay in the payload, an object of its
 * own, or the run's shared empty object when every member is a reference.
 * A reference under a key that needs escaping in JSON (never a node id)
 * leaves the value stored whole. */
static int compact(refs_state *st, const fc_event_t *ev, json_t *value, fc__hrec_t *rec) {
  const char *key;
  json_t *v, *rest = NULL;
  fc__buf_t text;
  size_t nrefs = 0, need = 2;
  ref_hint_t hint = {NULL, 0, 0, 0};
  int32_t att;
  int whole = 0;
  if (value != NULL && value == st->memo_value) {
    rec->payload = json_incref(st->memo_rest);
    rec->refs = json_incref(st->memo_refs);
    rec->refs_text = 1;
    return 0;
  }
  rec->payload = json_incref(value);
  if (st->out == NULL || !json_is_object(value))
    return 0;
  json_object_foreach(value, key, v)
    need += strlen(key) + 16; /* ,"K":N */
  if (ev->kind == FC_EVENT_NODE_START && ev->workflow != NULL && ev->node_index >= 0 &&
      (size_t)ev->node_index < ev->workflow->nnodes) {
    hint.in = fc__node_in(ev->workflow->nodes[ev->node_index]);
    hint.nin = ev->workflow->nodes[ev->node_index]->nin;
  }
  fc__buf_init(&text);
  (void)fc__buf_reserve(&text, need); /* one allocation, not doublings */
  fc__buf_append(&text, "{", 1);
  json_object_foreach(value, key, v) {
    if (is_ref(st, ev->workflow, key, v, &att, &hint)) {
      if (!plain_key(key)) {
        whole = 1;
        break;
      }
      put_ref(&text, nrefs++, key, att);
    } else if (rest == NULL && (rest = json_object()) == NULL) {
      text.oom = 1;
    } else if (json_object_set(rest, key, v) != 0) {
      text.oom = 1;
    }
    if (text.oom)
      break;
  }
  fc__buf_append(&text, "}", 1);
  if (whole || nrefs == 0 || text.oom) {
    int rc = text.oom ? FC_ENOMEM : 0;
    fc__buf_free(&text);
    json_decref(rest);
    return rc;
  }
  if (rest == NULL)
    rest = json_incref(st->empty);
  json_decref(rec->payload);
  rec->payload = rest;
  rec->refs = json_stringn_nocheck(text.data, text.len);
  fc__buf_free(&text);
  if (rec->refs == NULL)
    return FC_ENOMEM;
  rec->refs_text = 1;
  if (ev->kind == FC_EVENT_NODE_START) {
    memo_clear(st);
    st->memo_value = json_incref(value);
    st->memo_refs = json_incref(rec->refs);
    st->memo_rest = json_incref(rest);
  }
  return 0;
}

/* Keeps what later records are compared against. */
static void track(refs_state *st, const fc_event_t *ev) {
  int i = ev->node_index;
  if (st->out == NULL || i < 0)
    return;
  if (ev->kind == FC_EVENT_NODE_START) {
    json_decref(st->in[i]);
    st->in[i] = json_incref(ev->input);
  } else if (ev->kind == FC_EVENT_NODE_END) {
    json_decref(st->in[i]);
    st->in[i] = NULL;
    if (ev->output != NULL && ev->status == FC_NODE_COMPLETED) {
      /* The memo may refer to this node's previous output. */
      if (st->memo_value != NULL && ev->node_id != NULL &&
          json_object_get(st->memo_value, ev->node_id) != NULL)
        memo_clear(st);
      json_decref(st->out[i]);
      st->out[i] = json_incref(ev->output);
      st->out_attempt[i] = ev->attempt;
    }
  }
}

static int on_event(void *self, const fc_event_t *ev) {
  db_handler *h = self;
  fc__hrec_t *rec;
  refs_state *rs;
  fc__hrun_t *run;
  int rc, slot = run_slot(h, ev);
  if (slot < 0)
    return FC_ENOMEM;
  rec = next_rec(h);
  if (rec == NULL)
    return FC_ENOMEM;
  rs = &h->refs[slot];
  run = run_ref(h, (unsigned)slot);
  rec->refs = NULL;
  rec->refs_text = 0;
  rec->output_is_input = 0;
  rec->kind = (uint8_t)ev->kind;
  rec->status = (uint8_t)ev->status;
  rec->severity = 0;
  rec->attempt = ev->attempt;
  rec->node = ev->node_index;
  rec->t_us = ev->time_us;
  rec->started_us = ev->started_at_us;
  rec->duration_us = ev->duration_us;
  rec->err = NULL;
  rec->run = run;
  switch (ev->kind) {
  case FC_EVENT_WORKFLOW_START:
    rec->count = ev->node_count;
    rec->payload = json_incref(ev->input);
    refs_clear(rs, run->node_count);
    if (refs_alloc(rs, run->node_count) == 0)
      rs->input = json_incref(ev->input);
    break;
  case FC_EVENT_NODE_START:
    rec->count = 0;
    if ((rc = compact(rs, ev, ev->input, rec)) != 0) {
      fc__hrec_clear(rec);
      return rc;
    }
    break;
  case FC_EVENT_WORKFLOW_END:
    rec->count = ev->error_count;
    rc = compact(rs, ev, ev->output, rec);
    refs_clear(rs, run->node_count);
    if (rc != 0) {
      fc__hrec_clear(rec);
      return rc;
    }
    break;
  case FC_EVENT_NODE_END:
    rec->count = 0;
    if (ev->output != NULL && rs->out != NULL && ev->node_index >= 0 &&
        ev->output == rs->in[ev->node_index]) {
      rec->payload = NULL;
      rec->output_is_input = 1;
    } else {
      rec->payload = json_incref(ev->output);
    }
    break;
  default: { /* FC_EVENT_ERROR */
    const fc_error_info_t *e = ev->error;
    const char *type = e && e->type ? e->type : "error";
    const char *msg = e && e->message ? e->message : "";
    const char *st = e && e->stack_trace ? e->stack_trace : "";
    size_t a = strlen(type) + 1, b = strlen(msg) + 1, c = strlen(st) + 1;
    /* Bounded text: a message keeps its head, a stack trace (e.g. the tail
     * of stderr) its tail. */
    if (a > MAX_TYPE + 1)
      a = MAX_TYPE + 1;
    if (b > MAX_MESSAGE + 1)
      b = MAX_MESSAGE + 1;
    if (c > MAX_STACK + 1) {
      st += c - (MAX_STACK + 1);
      c = MAX_STACK + 1;
    }
    rec->count = 0;
    rec->severity = (uint8_t)(e ? e->severity : FC_SEVERITY_ERROR);
    rec->payload = e ? json_incref(e->details) : NULL;
    if (e != NULL && e->occurred_at_us != 0)
      rec->t_us = e->occurred_at_us;
    rec->err = fc__malloc(a + b + c);
    rc = fc_uuid7(rec->error_id);
    if (rec->err == NULL || rc != 0) {
      fc__hrec_clear(rec);
      return rc != 0 ? rc : FC_ENOMEM;
    }
    memcpy(rec->err, type, a - 1);
    rec->err[a - 1] = '\0';
    memcpy(rec->err + a, msg, b - 1);
    rec->err[a + b - 1] = '\0';
    memcpy(rec->err + a + b, st, c);
    break;
  }
  }
  rec->bytes = fc__hrec_estimate(rec);
  track(rs, ev);
  push_rec(h);
  if (ev->kind == FC_EVENT_WORKFLOW_END)
    hand_over(h); /* the end of a run is a natural point to hand over */
  return 0;
}

static void on_loop_turn(db_handler *h) { hand_over(h); }
static void prepare_cb(uv_prepare_t *p) { on_loop_turn(p->data); }
static void check_cb(uv_check_t *c) { on_loop_turn(c->data); }

static void closed_cb(uv_handle_t *handle) {
  db_handler *h = handle->data;
  if (--h->closing == 0)
    fc__free(h);
}

static void destroy(void *self) {
  db_handler *h = self;
  unsigned i;
  hand_over(h);
  if (h->block != NULL) { /* an empty block */
    fc__free(h->block);
    h->block = NULL;
  }
  for (i = 0; i < FC__ARRAY_SIZE(h->runs); i++)
    drop_slot(h, i);
  h->closing = 2;
  uv_close((uv_handle_t *)&h->prepare, closed_cb);
  uv_close((uv_handle_t *)&h->check, closed_cb);
}

int fc_history_handler(fc_history_writer_t *w, uv_loop_t *loop, fc_handler_t *out) {
  db_handler *h;
  if (w == NULL || loop == NULL || out == NULL)
    return FC_EINVAL;
  h = fc__calloc(1, sizeof *h);
  if (h == NULL)
    return FC_ENOMEM;
  h->writer = w;
  uv_prepare_init(loop, &h->prepare);
  uv_check_init(loop, &h->check);
  h->prepare.data = h;
  h->check.data = h;
  uv_prepare_start(&h->prepare, prepare_cb);
  uv_check_start(&h->check, check_cb);
  /* They must not keep the loop alive on their own. */
  uv_unref((uv_handle_t *)&h->prepare);
  uv_unref((uv_handle_t *)&h->check);
  return fc__handler_of(out, "database", h, on_event, destroy);
}
