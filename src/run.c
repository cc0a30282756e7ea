/* The engine: runs a validated workflow on a libuv loop.
 *
 * Scheduling is a non-reentrant pump: completions (synchronous or not) only
 * update state and queue work; the pump starts ready nodes up to the
 * parallel limit and propagates resolutions, so a chain of any length
 * completes without recursion. */
#include <stdarg.h>
#include <stdio.h>

#include "nodes/nodes_int.h"
#include "workflow_int.h"


/* A node's timer (timeout, then retry backoff); the handle comes first so
 * the close callback can free the struct through the handle. */
typedef struct {
  uv_timer_t handle;
  uint32_t index;
} node_timer;

typedef struct {
  json_t *input;  /* built for the first attempt, kept for retries */
  json_t *output; /* when completed, unless deferred */
  /* The input of the successors whose only dependency this node is (they
   * all get the same {"input", "<this>"} object: a fan-out of a million
   * nodes holds one, not a million), kept until the last of them took it. */
  json_t *sole_input;
  uint32_t sole_left; /* successors yet to take their input: sole_input, once made */
  uint8_t sole_counted; /* sole_left is set (sole_input is made on first need) */
  uint8_t deferred;     /* completed, its output not made yet (output_of) */
  fc_node_ctx_t *ctx; /* the running attempt, NULL otherwise */
  node_timer *timer;  /* timeout or retry backoff, lazily made */
  /* Counted up from 0, so that a run of a big workflow starts without a
   * pass over every node: ready when preds_done reaches the node's nin;
   * its output released when succs_done reaches its nout
   * (fc_run_set_keep_outputs). */
  uint32_t preds_done;
  uint32_t succs_done;
  int attempts;
  uint8_t status;   /* fc_node_status_t; PENDING until resolved or running */
  uint8_t doomed;   /* a predecessor will not let it run */
  uint8_t resolved; /* final status known */
  uint8_t retry_wait; /* between attempts (timer running or queued) */
} node_state;
#if UINTPTR_MAX == UINT64_MAX
/* One cache line a node; and a big workflow's states (12.8 MB for 200,000
 * nodes) fit where its file's text was (freed before the run). The time an
 * attempt started is in its context, not here. */
_Static_assert(sizeof(node_state) == 64, "node_state is 64 bytes");
#endif

struct fc_node_ctx_s {
  fc_run_t *run;
  uint32_t index;
  int attempt;
  uint64_t started_mono; /* of the attempt (its wall clock: run_now_us); 0: not timed */
  json_t *input; /* a reference: valid until the completion, even after a stop */
  fc_node_status_t stopped; /* 0, FC_NODE_TIMED_OUT or FC_NODE_CANCELLED */
  fc_node_stop_cb stop_cb;
  void *stop_data;
  uv_work_t work;
  fc_node_work_cb work_cb, after_cb;
  void *work_data;
};

struct fc_run_s {
  uv_loop_t *loop;
  fc_workflow_t *wf;
  fc_manager_t *manager;
  node_state *nodes;
  size_t n;
  int max_parallel;
  fc_workflow_status_t status;
  json_t *input;
  json_t *output;
  fc_run_done_cb done_cb;
  void *done_data;
  fc_run_close_cb close_cb;
  void *close_data;
  uv_timer_t kick; /* first pump after start, from the loop */
  uint8_t uuid[16];
  char id[FC_UUID_STRING_LENGTH];
  int64_t wall0_us; /* wall clock at start ... */
  uint64_t mono0;   /* ... and the monotonic clock at the same instant */
  /* The clock at the last completion, when no handler was called since:
   * the next attempt the same pump starts is timed with it instead of
   * reading the clock again (the engine's own steps between the two take
   * well under a microsecond). 0: read the clock. */
  uint64_t mono_hint;
  /* Work lists, each sized n: ready to start, and resolved (successors to
   * be told). A node is in each at most once at a time. */
  uint32_t *ready;
  size_t ready_head, ready_len;
  uint32_t *resolved;
  size_t resolved_len;
  size_t resolved_count;
  /* Bit i: node i has no successors and completed, so its output is part
   * of the workflow's (set by resolve, while the node is in the cache:
   * finish then reads these words, not every node of a big workflow). */
  uint64_t *sinks;
  size_t timers; /* node timers made (timer_get): finish looks for them only if any */
  int running;
  int peak;
  int error_count;
  int status_counts[FC_NODE_STATUS_COUNT];
  int open_handles;
  int busy; /* inside a completion or timeout: a cancel waits for its end */
  int outstanding; /* attempt contexts not yet completed by their node */
  unsigned pumping : 1;
  unsigned started : 1;
  unsigned finished : 1;
  unsigned cancel_requested : 1;
  unsigned cancel_done : 1;
  unsigned closing : 1;
  unsigned freed : 1;
  unsigned release_outputs : 1; /* fc_run_set_keep_outputs(run, 0) */
};

/* ---- small helpers -------------------------------------------------------- */

static int64_t run_now_us(const fc_run_t *run, uint64_t mono) {
  return run->wall0_us + (int64_t)((mono - run->mono0) / 1000);
}

static void event_init(const fc_run_t *run, fc_event_t *ev, fc_event_kind_t kind) {
  memset(ev, 0, sizeof *ev);
  ev->kind = kind;
  ev->workflow_id = run->id;
  ev->workflow_uuid = run->uuid;
  ev->workflow_name = run->wf->name;
  ev->workflow = run->wf;
  ev->node_index = -1;
  ev->node_count = (int)run->n;
}

static void event_node(const fc_run_t *run, fc_event_t *ev, fc_event_kind_t kind, uint32_t i,
                       int attempt) {
  const fc_node_t *node = run->wf->nodes[i];
  event_init(run, ev, kind);
  ev->node_id = node->id;
  ev->node_type = node->type;
  ev->node_index = (int)i;
  ev->attempt = attempt;
}

static void dispatch(fc_run_t *run, const fc_event_t *ev) {
  if (run->manager != NULL)
    fc_manager_dispatch(run->manager, ev);
}

static void maybe_free(fc_run_t *run);
static void pump(fc_run_t *run);

static void handle_closed(uv_handle_t *h) {
  fc_run_t *run = h->data;
  if (h != (uv_handle_t *)&run->kick)
    fc__free(h);
  run->open_handles--;
  maybe_free(run);
}

static void ctx_free(fc_node_ctx_t *ctx) {
  fc_run_t *run = ctx->run;
  json_decref(ctx->input);
  fc__free(ctx);
  run->outstanding--;
  maybe_free(run);
}

/* ---- events of one node ----------------------------------------------------- */

static void emit_error(fc_run_t *run, uint32_t i, int attempt, const fc_error_info_t *info,
                       uint64_t mono) {
  fc_event_t ev;
  fc_error_info_t copy = *info;
  event_node(run, &ev, FC_EVENT_ERROR, i, attempt);
  copy.node_id = run->wf->nodes[i]->id;
  copy.attempt = attempt;
  copy.occurred_at_us = run_now_us(run, mono);
  if (copy.type == NULL)
    copy.type = "error";
  if (copy.message == NULL)
    copy.message = "";
  ev.time_us = copy.occurred_at_us;
  ev.error = &copy;
  run->error_count++;
  dispatch(run, &ev);
}

/* The end of attempt `attempt` (0: the node never ran), which started at
 * `started` (0: not timed, see start_attempt) and ended at `mono`. */
static void emit_node_end(fc_run_t *run, uint32_t i, int attempt, fc_node_status_t status,
                          uint64_t started, uint64_t mono) {
  node_state *st = &run->nodes[i];
  fc_event_t ev;
  if (!fc__manager_listens(run->manager, FC_EVENT_NODE_END))
    return; /* the event would reach no one: not even made */
  event_node(run, &ev, FC_EVENT_NODE_END, i, attempt);
  ev.status = (int)status;
  ev.time_us = run_now_us(run, mono);
  if (attempt > 0) { /* an attempt not timed ended in its node's call: it took no time */
    if (started == 0)
      started = mono;
    ev.started_at_us = run_now_us(run, started);
    ev.duration_us = (int64_t)((mono - started) / 1000);
  }
  ev.output = status == FC_NODE_COMPLETED ? st->output : NULL;
  dispatch(run, &ev);
}

/* ---- resolution and readiness ---------------------------------------------- */

/* Node i's output (borrowed), made now if its node deferred it
 * (fc__node_succeed_deferred). NULL when it has none (not completed, or
 * released) or, with deferred still set, when out of memory making it. */
static json_t *output_of(fc_run_t *run, uint32_t i) {
  node_state *st = &run->nodes[i];
  if (st->deferred) {
    st->output = fc__node_deferred_output(run->wf->nodes[i]);
    if (st->output == NULL)
      return NULL;
    st->deferred = 0;
  }
  return st->output;
}

/* Drops the outputs that node i was the last successor to need: each
 * resolved node's predecessors lose one successor to wait for, and a
 * predecessor with none left has its output released (the outputs of
 * nodes without successors are the workflow's output and stay). An output
 * freed here, right after its last reader, is still in the cache and its
 * memory is reused by the next output: a chain runs in constant memory
 * instead of holding every output until the run is closed. */
static void release_inputs(fc_run_t *run, uint32_t i) {
  const fc_node_t *node = run->wf->nodes[i];
  const uint32_t *in = fc__node_in(node);
  size_t k;
  for (k = 0; k < node->nin; k++) {
    node_state *d = &run->nodes[in[k]];
    if (++d->succs_done == run->wf->nodes[in[k]]->nout) {
      json_decref(d->output);
      d->output = NULL;
      d->deferred = 0; /* not made, and now never will be */
    }
  }
}

/* Final status for node i: record it and queue the successors' update. */
static void resolve(fc_run_t *run, uint32_t i, fc_node_status_t status) {
  node_state *st = &run->nodes[i];
  if (status == FC_NODE_COMPLETED && run->wf->nodes[i]->nout == 0)
    run->sinks[i / 64] |= (uint64_t)1 << (i % 64);
  st->status = (uint8_t)status;
  st->resolved = 1;
  run->resolved_count++;
  run->status_counts[status]++;
  if (st->input != NULL) {
    json_decref(st->input);
    st->input = NULL;
  }
  if (run->release_outputs)
    release_inputs(run, i);
  run->resolved[run->resolved_len++] = i;
}

/* Resolves a node that will never run, with its single node_end. */
static void resolve_unrun(fc_run_t *run, uint32_t i, fc_node_status_t status, uint64_t mono) {
  resolve(run, i, status);
  emit_node_end(run, i, 0, status, 0, mono);
}

/* Chosen route index of a completed router, in *chosen. 0 or FC_EROUTE. */
static int choose_route(const fc_node_t *node, json_t *output, int *chosen) {
  const char *name = json_string_value(json_object_get(output, "route"));
  size_t r;
  if (name != NULL)
    for (r = 0; r < fc__node_nroutes(node); r++)
      if (strcmp(node->extra->routes[r].name, name) == 0) {
        *chosen = (int)r;
        return 0;
      }
  if (node->extra != NULL && node->extra->default_route >= 0) {
    *chosen = node->extra->default_route;
    return 0;
  }
  return FC_EROUTE;
}

/* Tells the successors of resolved nodes; nodes that become decidable are
 * either queued to run or resolved as skipped (iteratively). */
static void propagate(fc_run_t *run) {
  uint64_t mono = 0;
  while (run->resolved_len > 0) {
    uint32_t i = run->resolved[--run->resolved_len];
    node_state *st = &run->nodes[i];
    const fc_node_t *node = run->wf->nodes[i];
    uint64_t chosen_mask = ~(uint64_t)0;
    size_t e;
    if (st->status == FC_NODE_COMPLETED && fc__node_nroutes(node) > 0) {
      int chosen = 0;
      (void)choose_route(node, st->output, &chosen); /* checked at completion */
      chosen_mask = (uint64_t)1 << chosen;
    }
    for (e = 0; e < node->nout; e++) {
      uint32_t t = node->out[e].to;
      node_state *ts = &run->nodes[t];
      uint64_t mask = node->out[e].route_mask;
      if (st->status != FC_NODE_COMPLETED || (mask != 0 && (mask & chosen_mask) == 0))
        ts->doomed = 1;
      if (++ts->preds_done < run->wf->nodes[t]->nin)
        continue;
      if (ts->doomed || run->cancel_requested) {
        if (mono == 0)
          mono = fc__mono_ns();
        resolve_unrun(run, t,
                      run->cancel_requested ? FC_NODE_CANCELLED : FC_NODE_SKIPPED, mono);
      } else {
        run->ready[(run->ready_head + run->ready_len++) % run->n] = t;
      }
    }
  }
}

/* {"input": <workflow input>, "<dep>": <its output>, ...} of node i, a
 * new object (NULL when out of memory). */
static json_t *input_object(fc_run_t *run, uint32_t i) {
  const fc_node_t *node = run->wf->nodes[i];
  const uint32_t *preds = fc__node_in(node);
  json_t *in = json_object();
  size_t k;
  if (in == NULL)
    return NULL;
  json_object_set(in, "input", run->input);
  for (k = 0; k < node->nin; k++) {
    uint32_t d = preds[k];
    json_t *out = output_of(run, d);
    if (out == NULL && run->nodes[d].deferred) {
      json_decref(in);
      return NULL;
    }
    json_object_set(in, run->wf->nodes[d]->id, out != NULL ? out : json_null());
  }
  return in;
}

/* The input of node i's first attempt: a new reference, or NULL when out
 * of memory or not `needed` (a node that never reads its input, and no
 * handler listens to node_start). Inputs are read-only, so the successors
 * of one node that depend on it alone share one object
 * (node_state.sole_input): made when the first of them needs it, dropped
 * when the last of them has started, needed or not. */
static json_t *node_input(fc_run_t *run, uint32_t i, int needed) {
  const fc_node_t *node = run->wf->nodes[i];
  json_t *in;
  size_t k;
  if (node->nin == 1) {
    uint32_t p = fc__node_in(node)[0];
    node_state *dep = &run->nodes[p];
    const fc_node_t *d = run->wf->nodes[p];
    if (!dep->sole_counted) {
      uint32_t n = 0;
      for (k = 0; k < d->nout; k++)
        n += run->wf->nodes[d->out[k].to]->nin == 1;
      dep->sole_left = n > 1 ? n : 0;
      dep->sole_counted = 1;
    }
    if (dep->sole_left > 0) {
      if (needed && dep->sole_input == NULL) {
        json_t *out = output_of(run, p);
        if (out == NULL && dep->deferred)
          return NULL;
        dep->sole_input = json_object();
        if (dep->sole_input == NULL)
          return NULL;
        json_object_set(dep->sole_input, "input", run->input);
        json_object_set(dep->sole_input, d->id, out != NULL ? out : json_null());
      }
      in = needed ? json_incref(dep->sole_input) : NULL;
      if (--dep->sole_left == 0 && dep->sole_input != NULL) {
        json_decref(dep->sole_input); /* the last one: it holds the only reference now */
        dep->sole_input = NULL;
      }
      return in;
    }
  }
  return needed ? input_object(run, i) : NULL;
}

/* ---- attempts -------------------------------------------------------------- */

static int timer_get(fc_run_t *run, uint32_t i, uv_timer_t **out) {
  node_state *st = &run->nodes[i];
  if (st->timer == NULL) {
    node_timer *t = fc__malloc(sizeof *t);
    if (t == NULL)
      return FC_ENOMEM;
    uv_timer_init(run->loop, &t->handle);
    t->handle.data = run;
    t->index = i;
    run->open_handles++;
    run->timers++;
    st->timer = t;
  }
  *out = &st->timer->handle;
  return 0;
}

static void timer_stop(node_state *st) {
  if (st->timer != NULL)
    uv_timer_stop(&st->timer->handle);
}

static void attempt_failed(fc_run_t *run, uint32_t i, fc_node_status_t status, uint64_t started,
                           uint64_t mono);
static void on_timeout(uv_timer_t *t);

static void start_attempt(fc_run_t *run, uint32_t i) {
  node_state *st = &run->nodes[i];
  const fc_node_t *node = run->wf->nodes[i];
  fc_node_ctx_t *ctx;
  fc_event_t ev;
  int shown = fc__manager_listens(run->manager, FC_EVENT_NODE_START);
  int needed = !node->no_input || shown;
  /* An attempt is timed unless no one can see when it starts or ends: a
   * node that ends it in its own call (node->sync), and no handler of
   * node_start or node_end. A chain of `set` nodes run without handlers
   * then reads no clock (it was a third of its run). */
  int timed = shown || !node->sync || fc__manager_listens(run->manager, FC_EVENT_NODE_END);
  uint64_t mono = !timed ? 0 : run->mono_hint != 0 ? run->mono_hint : fc__mono_ns();

  run->mono_hint = 0;
  st->attempts++;
  st->retry_wait = 0;
  st->status = FC_NODE_RUNNING;
  /* A retry reuses the first attempt's input; a node that did not need
   * it then, but does now (a handler was added since), gets its own. */
  if (st->attempts == 1)
    st->input = node_input(run, i, needed);
  else if (st->input == NULL && needed)
    st->input = input_object(run, i);
  ctx = fc__calloc(1, sizeof *ctx);
  if (shown) {
    event_node(run, &ev, FC_EVENT_NODE_START, i, st->attempts);
    ev.status = FC_NODE_RUNNING;
    ev.time_us = run_now_us(run, mono);
    ev.input = st->input;
    dispatch(run, &ev);
  }
  run->running++;
  if (run->running > run->peak)
    run->peak = run->running;
  if (ctx == NULL || (needed && st->input == NULL)) {
    fc_error_info_t info = {0};
    fc__free(ctx);
    info.type = "engine_error";
    info.message = "out of memory starting the attempt";
    info.severity = FC_SEVERITY_CRITICAL;
    if (mono == 0)
      mono = fc__mono_ns();
    emit_error(run, i, st->attempts, &info, mono);
    attempt_failed(run, i, FC_NODE_FAILED, mono, mono);
    return;
  }
  run->outstanding++;
  ctx->run = run;
  ctx->index = i;
  ctx->attempt = st->attempts;
  ctx->started_mono = mono;
  ctx->input = json_incref(st->input);
  st->ctx = ctx;
  if (fc__node_timeout_ms(node) > 0) {
    uv_timer_t *t;
    if (timer_get(run, i, &t) == 0)
      uv_timer_start(t, on_timeout, fc__node_timeout_ms(node), 0);
  }
  node->fn(ctx, node->user_data);
}

/* The wait before the next attempt of a node that has retries (so a
 * policy). */
static uint64_t backoff_ms(const fc_node_t *node, int attempt_done) {
  const fc__node_policy_t *p = &node->extra->policy;
  uint64_t d = p->backoff_base_ms;
  int k;
  if (d == 0)
    return 0;
  for (k = 1; k < attempt_done && d < p->backoff_max_ms; k++)
    d *= 2;
  if (d > p->backoff_max_ms)
    d = p->backoff_max_ms;
  /* Up to 10 % jitter removed, so a fleet of retries does not stampede. */
  return d - (d / 10 ? (uint64_t)rand() % (d / 10 + 1) : 0);
}

static void on_retry_timer(uv_timer_t *t) {
  fc_run_t *run = t->data;
  uint32_t i = ((node_timer *)t)->index;
  if (run->nodes[i].retry_wait && !run->nodes[i].resolved) {
    run->ready[(run->ready_head + run->ready_len++) % run->n] = i;
    pump(run);
  }
}

/* The attempt, started at `started`, ended in failure or timeout at
 * `mono`: its node_end, then a retry or the node's resolution. */
static void attempt_failed(fc_run_t *run, uint32_t i, fc_node_status_t status, uint64_t started,
                           uint64_t mono) {
  node_state *st = &run->nodes[i];
  const fc_node_t *node = run->wf->nodes[i];
  st->ctx = NULL;
  run->running--;
  emit_node_end(run, i, st->attempts, status, started, mono);
  if (st->attempts <= fc__node_retries(node) && !run->cancel_requested) {
    uint64_t delay = backoff_ms(node, st->attempts);
    uv_timer_t *t;
    st->status = FC_NODE_PENDING;
    st->retry_wait = 1;
    if (delay > 0 && timer_get(run, i, &t) == 0) {
      uv_timer_start(t, on_retry_timer, delay, 0);
    } else {
      run->ready[(run->ready_head + run->ready_len++) % run->n] = i;
    }
    return;
  }
  resolve(run, i, status);
}

static void on_timeout(uv_timer_t *t) {
  fc_run_t *run = t->data;
  uint32_t i = ((node_timer *)t)->index;
  fc_node_ctx_t *ctx;
  fc_error_info_t info = {0};
  char msg[96];
  uint64_t mono = fc__mono_ns();
  if (run->nodes[i].ctx == NULL)
    return;
  ctx = run->nodes[i].ctx;
  ctx->stopped = FC_NODE_TIMED_OUT;
  run->busy++;
  snprintf(msg, sizeof msg, "attempt %d timed out after %llu ms", ctx->attempt,
           (unsigned long long)fc__node_timeout_ms(run->wf->nodes[i]));
  info.type = "timeout";
  info.message = msg;
  info.severity = FC_SEVERITY_ERROR;
  emit_error(run, i, ctx->attempt, &info, mono);
  attempt_failed(run, i, FC_NODE_TIMED_OUT, ctx->started_mono, mono);
  run->busy--;
  if (ctx->stop_cb != NULL)
    ctx->stop_cb(ctx, FC_NODE_TIMED_OUT, ctx->stop_data);
  pump(run);
}

/* ---- completion (called by node functions) --------------------------------- */

/* `deferred`: a success whose output is made when first read (output_of);
 * never for a node with routes, whose output chooses them now. */
static void complete(fc_node_ctx_t *ctx, json_t *output, int deferred,
                     const fc_error_info_t *info) {
  fc_run_t *run = ctx->run;
  uint32_t i = ctx->index;
  node_state *st = &run->nodes[i];
  const fc_node_t *node = run->wf->nodes[i];
  uint64_t mono;
  int end_seen; /* a node_end handler listens (none can be added unless one is called) */
  if (ctx->stopped) { /* already ended by a timeout or a cancellation */
    json_decref(output);
    ctx_free(ctx);
    return;
  }
  /* Read unless the attempt was not timed and its success shows no time:
   * no node_end handler, no route to choose (whose error has a time). */
  end_seen = fc__manager_listens(run->manager, FC_EVENT_NODE_END);
  mono = ctx->started_mono != 0 || info != NULL || fc__node_nroutes(node) > 0 || end_seen
             ? fc__mono_ns()
             : 0;
  run->busy++;
  if (fc__node_timeout_ms(node) > 0)
    timer_stop(st);
  if (info == NULL) {
    int chosen;
    if (output == NULL && !deferred)
      output = json_null();
    if (fc__node_nroutes(node) > 0 && choose_route(node, output, &chosen) != 0) {
      fc_error_info_t rinfo = {0};
      char msg[FC_NAME_MAX + 96];
      const char *name = json_string_value(json_object_get(output, "route"));
      snprintf(msg, sizeof msg, "output chose route \"%.*s\", which is not declared", FC_NAME_MAX,
               name != NULL ? name : "(none)");
      rinfo.type = "route_error";
      rinfo.message = msg;
      rinfo.severity = FC_SEVERITY_ERROR;
      rinfo.details = output;
      emit_error(run, i, ctx->attempt, &rinfo, mono);
      json_decref(output);
      attempt_failed(run, i, FC_NODE_FAILED, ctx->started_mono, mono);
    } else {
      st->ctx = NULL;
      st->output = output;
      st->deferred = (uint8_t)deferred;
      run->running--;
      emit_node_end(run, i, ctx->attempt, FC_NODE_COMPLETED, ctx->started_mono, mono);
      resolve(run, i, FC_NODE_COMPLETED);
      if (!end_seen)
        run->mono_hint = mono;
    }
  } else {
    json_decref(output);
    emit_error(run, i, ctx->attempt, info, mono);
    attempt_failed(run, i, FC_NODE_FAILED, ctx->started_mono, mono);
  }
  run->busy--;
  pump(run);
  ctx_free(ctx); /* last: it may free a closed run */
}

void fc_node_succeed(fc_node_ctx_t *ctx, json_t *output) { complete(ctx, output, 0, NULL); }

void fc__node_succeed_deferred(fc_node_ctx_t *ctx) {
  const fc_node_t *node = ctx->run->wf->nodes[ctx->index];
  json_t *output;
  if (ctx->stopped || (fc__node_nroutes(node) == 0 &&
                       !fc__manager_listens(ctx->run->manager, FC_EVENT_NODE_END))) {
    complete(ctx, NULL, !ctx->stopped, NULL);
    return;
  }
  output = fc__node_deferred_output(node);
  if (output == NULL)
    fc_node_failf(ctx, FC_SEVERITY_ERROR, "node_error", "out of memory making the output");
  else
    complete(ctx, output, 0, NULL);
}

void fc_node_fail(fc_node_ctx_t *ctx, const fc_error_info_t *info) {
  fc_error_info_t fallback = {0};
  if (info == NULL) {
    fallback.type = "error";
    fallback.message = "node failed";
    fallback.severity = FC_SEVERITY_ERROR;
    info = &fallback;
  }
  complete(ctx, NULL, 0, info);
}

void fc_node_failf(fc_node_ctx_t *ctx, fc_severity_t severity, const char *type,
                   const char *fmt, ...) {
  fc_error_info_t info = {0};
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  info.type = type;
  info.message = msg;
  info.severity = severity;
  complete(ctx, NULL, 0, &info);
}

static void work_cb(uv_work_t *req) {
  fc_node_ctx_t *ctx = FC__CONTAINER_OF(req, fc_node_ctx_t, work);
  ctx->work_cb(ctx, ctx->work_data);
}

static void after_work_cb(uv_work_t *req, int status) {
  fc_node_ctx_t *ctx = FC__CONTAINER_OF(req, fc_node_ctx_t, work);
  (void)status; /* never cancelled: we do not call uv_cancel */
  ctx->after_cb(ctx, ctx->work_data);
}

int fc_node_queue_work(fc_node_ctx_t *ctx, fc_node_work_cb work, fc_node_work_cb after,
                       void *data) {
  if (ctx == NULL || work == NULL || after == NULL)
    return FC_EINVAL;
  ctx->work_cb = work;
  ctx->after_cb = after;
  ctx->work_data = data;
  return uv_queue_work(ctx->run->loop, &ctx->work, work_cb, after_work_cb);
}

json_t *fc_node_ctx_input(const fc_node_ctx_t *ctx) { return ctx->input; }
const char *fc_node_ctx_workflow_id(const fc_node_ctx_t *ctx) { return ctx->run->id; }
const char *fc_node_ctx_node_id(const fc_node_ctx_t *ctx) {
  return ctx->run->wf->nodes[ctx->index]->id;
}
const fc_node_t *fc_node_ctx_node(const fc_node_ctx_t *ctx) {
  return ctx->run->wf->nodes[ctx->index];
}
int fc_node_ctx_attempt(const fc_node_ctx_t *ctx) { return ctx->attempt; }
void *fc_node_ctx_user_data(const fc_node_ctx_t *ctx) {
  return ctx->run->wf->nodes[ctx->index]->user_data;
}
uv_loop_t *fc_node_ctx_loop(const fc_node_ctx_t *ctx) { return ctx->run->loop; }
void fc_node_ctx_on_stop(fc_node_ctx_t *ctx, fc_node_stop_cb cb, void *data) {
  ctx->stop_cb = cb;
  ctx->stop_data = data;
}
fc_node_status_t fc_node_ctx_stopped(const fc_node_ctx_t *ctx) { return ctx->stopped; }

/* ---- cancellation ------------------------------------------------------------ */

static void do_cancel(fc_run_t *run) {
  uint64_t mono = fc__mono_ns();
  size_t i;
  run->cancel_done = 1;
  run->ready_len = 0;
  /* Running attempts first: they end cancelled and are told to stop. */
  for (i = 0; i < run->n; i++) {
    node_state *st = &run->nodes[i];
    fc_node_ctx_t *ctx = st->ctx;
    if (ctx == NULL)
      continue;
    st->ctx = NULL;
    ctx->stopped = FC_NODE_CANCELLED;
    timer_stop(st);
    run->running--;
    emit_node_end(run, (uint32_t)i, ctx->attempt, FC_NODE_CANCELLED, ctx->started_mono, mono);
    resolve(run, (uint32_t)i, FC_NODE_CANCELLED);
    if (ctx->stop_cb != NULL)
      ctx->stop_cb(ctx, FC_NODE_CANCELLED, ctx->stop_data);
  }
  /* Then every node that is not resolved yet and not running. A node
   * waiting to retry already had its attempts' events: it ends cancelled
   * without another event (an event is one attempt's, and none started). */
  for (i = 0; i < run->n; i++) {
    node_state *st = &run->nodes[i];
    if (st->resolved)
      continue;
    timer_stop(st);
    if (st->attempts > 0)
      resolve(run, (uint32_t)i, FC_NODE_CANCELLED);
    else
      resolve_unrun(run, (uint32_t)i, FC_NODE_CANCELLED, mono);
  }
  run->resolved_len = 0; /* everything is resolved; nothing to propagate */
}

/* ---- the pump ---------------------------------------------------------------- */

static void finish(fc_run_t *run) {
  fc_event_t ev;
  size_t i, w;
  int whole;
  uint64_t mono = fc__mono_ns();
  run->finished = 1;
  if (run->cancel_requested)
    run->status = FC_WORKFLOW_CANCELLED;
  else if (run->status_counts[FC_NODE_FAILED] > 0 || run->status_counts[FC_NODE_TIMED_OUT] > 0)
    run->status = FC_WORKFLOW_FAILED;
  else
    run->status = FC_WORKFLOW_COMPLETED;
  /* A run whose output cannot be made whole (out of memory: the object,
   * a member, a deferred output) ends failed, not completed with less. */
  run->output = json_object();
  whole = run->output != NULL;
  for (w = 0; w < (run->n + 63) / 64 && whole; w++) {
    uint64_t bits = run->sinks[w];
    while (bits != 0 && whole) { /* its completed sinks, in index order */
      uint32_t k = (uint32_t)(w * 64 + fc__ctz64(bits));
      bits &= bits - 1;
      whole = json_object_set(run->output, run->wf->nodes[k]->id, output_of(run, k)) == 0;
    }
  }
  if (!whole && run->status == FC_WORKFLOW_COMPLETED)
    run->status = FC_WORKFLOW_FAILED;
  for (i = 0; i < run->n && run->timers > 0; i++)
    timer_stop(&run->nodes[i]);
  event_init(run, &ev, FC_EVENT_WORKFLOW_END);
  ev.status = (int)run->status;
  ev.time_us = run_now_us(run, mono);
  ev.started_at_us = run->wall0_us;
  ev.duration_us = (int64_t)((mono - run->mono0) / 1000);
  ev.input = run->input;
  ev.output = run->output;
  ev.status_counts = run->status_counts;
  ev.error_count = run->error_count;
  dispatch(run, &ev);
  if (run->done_cb != NULL)
    run->done_cb(run, run->done_data);
}

static void pump(fc_run_t *run) {
  if (run->pumping)
    return; /* the pump below this call goes on (and may use mono_hint) */
  if (run->busy > 0 || run->finished || !run->started) {
    run->mono_hint = 0;
    return;
  }
  run->pumping = 1;
  for (;;) {
    if (run->cancel_requested && !run->cancel_done)
      do_cancel(run);
    if (run->resolved_len > 0) {
      propagate(run);
      continue;
    }
    if (run->ready_len > 0 && !run->cancel_requested &&
        (run->max_parallel == 0 || run->running < run->max_parallel)) {
      uint32_t i = run->ready[run->ready_head];
      run->ready_head = (run->ready_head + 1) % run->n;
      run->ready_len--;
      start_attempt(run, i);
      continue;
    }
    break;
  }
  run->pumping = 0;
  run->mono_hint = 0;
  if (run->resolved_count == run->n && run->running == 0)
    finish(run);
}

static void on_kick(uv_timer_t *t) {
  fc_run_t *run = t->data;
  size_t i;
  /* Nodes without predecessors are ready (in definition order). */
  for (i = 0; i < run->wf->nroots && !run->cancel_requested; i++)
    run->ready[(run->ready_head + run->ready_len++) % run->n] = run->wf->roots[i];
  pump(run);
}

/* ---- lifecycle ----------------------------------------------------------------- */

int fc_run_new(fc_run_t **out, uv_loop_t *loop, fc_workflow_t *wf, fc_manager_t *manager,
               fc_error_t *err) {
  fc_run_t *run;
  size_t n;
  int rc;
  if (out == NULL)
    return fc__error_set(err, FC_EINVAL, "", "no output pointer");
  *out = NULL;
  if (loop == NULL || wf == NULL)
    return fc__error_set(err, FC_EINVAL, "", "no loop or workflow");
  rc = fc_workflow_validate(wf, err);
  if (rc != 0)
    return rc;
  n = wf->nnodes;
  run = fc__calloc(1, sizeof *run);
  if (run == NULL)
    return fc__error_set(err, FC_ENOMEM, "", "out of memory");
  run->nodes = fc__calloc(n, sizeof *run->nodes);
  run->ready = fc__malloc(n * sizeof *run->ready);
  run->resolved = fc__malloc(n * sizeof *run->resolved);
  run->sinks = fc__calloc((n + 63) / 64, sizeof *run->sinks);
  if (run->nodes == NULL || run->ready == NULL || run->resolved == NULL || run->sinks == NULL) {
    fc__free(run->nodes);
    fc__free(run->ready);
    fc__free(run->resolved);
    fc__free(run->sinks);
    fc__free(run);
    return fc__error_set(err, FC_ENOMEM, "", "out of memory");
  }
  run->loop = loop;
  run->wf = wf;
  run->manager = manager;
  run->n = n;
  run->max_parallel = wf->max_parallel;
  uv_timer_init(loop, &run->kick);
  run->kick.data = run;
  run->open_handles = 1;
  *out = run;
  return 0;
}

int fc_run_set_max_parallel(fc_run_t *run, int max_parallel) {
  if (run == NULL || max_parallel < 0)
    return FC_EINVAL;
  if (run->started)
    return FC_ESTATE;
  run->max_parallel = max_parallel;
  return 0;
}

int fc_run_set_keep_outputs(fc_run_t *run, int keep) {
  if (run == NULL)
    return FC_EINVAL;
  if (run->started)
    return FC_ESTATE;
  run->release_outputs = !keep;
  return 0;
}

int fc_run_start(fc_run_t *run, json_t *input, fc_run_done_cb done_cb, void *data) {
  fc_event_t ev;
  int rc;
  if (run == NULL)
    return FC_EINVAL;
  if (run->started || run->closing)
    return FC_ESTATE;
  rc = fc_uuid7(run->uuid);
  if (rc != 0)
    return rc;
  fc_uuid_format(run->uuid, run->id);
  run->input = input != NULL ? json_incref(input) : json_object();
  if (run->input == NULL)
    return FC_ENOMEM;
  rc = uv_timer_start(&run->kick, on_kick, 0, 0);
  if (rc != 0) {
    json_decref(run->input);
    run->input = NULL;
    return rc;
  }
  run->done_cb = done_cb;
  run->done_data = data;
  run->started = 1;
  run->status = FC_WORKFLOW_RUNNING;
  run->mono0 = fc__mono_ns();
  run->wall0_us = fc__wall_us();
  event_init(run, &ev, FC_EVENT_WORKFLOW_START);
  ev.status = FC_WORKFLOW_RUNNING;
  ev.time_us = run->wall0_us;
  ev.input = run->input;
  dispatch(run, &ev);
  return 0;
}

int fc_run_cancel(fc_run_t *run) {
  if (run == NULL)
    return FC_EINVAL;
  if (!run->started || run->finished || run->cancel_requested)
    return FC_ESTATE;
  run->cancel_requested = 1;
  pump(run);
  return 0;
}

static void maybe_free(fc_run_t *run) {
  size_t i;
  if (!run->closing || run->freed || run->open_handles > 0 || run->outstanding > 0)
    return;
  run->freed = 1;
  if (run->close_cb != NULL)
    run->close_cb(run, run->close_data);
  for (i = 0; i < run->n; i++) {
    json_decref(run->nodes[i].input);
    json_decref(run->nodes[i].output);
    json_decref(run->nodes[i].sole_input);
  }
  json_decref(run->input);
  json_decref(run->output);
  fc__free(run->nodes);
  fc__free(run->ready);
  fc__free(run->resolved);
  fc__free(run->sinks);
  fc__free(run);
}

void fc_run_close(fc_run_t *run, fc_run_close_cb close_cb, void *data) {
  size_t i;
  if (run == NULL || run->closing)
    return;
  if (run->started && !run->finished && !run->cancel_requested)
    fc_run_cancel(run);
  run->closing = 1;
  run->close_cb = close_cb;
  run->close_data = data;
  for (i = 0; i < run->n; i++)
    if (run->nodes[i].timer != NULL) {
      uv_close((uv_handle_t *)&run->nodes[i].timer->handle, handle_closed);
      run->nodes[i].timer = NULL;
    }
  uv_close((uv_handle_t *)&run->kick, handle_closed);
}

/* ---- accessors ----------------------------------------------------------------- */

fc_workflow_status_t fc_run_status(const fc_run_t *run) { return run->status; }
const char *fc_run_id(const fc_run_t *run) { return run->id; }
json_t *fc_run_output(const fc_run_t *run) { return run->output; }
const fc_workflow_t *fc_run_workflow(const fc_run_t *run) { return run->wf; }
fc_node_status_t fc_run_node_status(const fc_run_t *run, size_t index) {
  if (index >= run->n || !run->nodes[index].resolved)
    return FC_NODE_PENDING;
  return (fc_node_status_t)run->nodes[index].status;
}
int fc_run_node_attempts(const fc_run_t *run, size_t index) {
  return index < run->n ? run->nodes[index].attempts : 0;
}
/* An output made on first read is made here too: the run is const to the
 * caller, not to the engine's own cache of what it made. */
json_t *fc_run_node_output(const fc_run_t *run, size_t index) {
  return index < run->n ? output_of((fc_run_t *)run, (uint32_t)index) : NULL;
}
int fc_run_error_count(const fc_run_t *run) { return run->error_count; }
int fc_run_peak_parallel(const fc_run_t *run) { return run->peak; }

/* ---- convenience: run to completion on a private loop -------------------------- */

static void sync_done(fc_run_t *run, void *data) {
  fc_run_result_t *res = data;
  res->status = fc_run_status(run);
  memcpy(res->workflow_id, run->id, sizeof res->workflow_id);
  res->output = json_incref(run->output);
  memcpy(res->status_counts, run->status_counts, sizeof res->status_counts);
  res->error_count = run->error_count;
}

int fc_workflow_run(fc_workflow_t *wf, json_t *input, fc_manager_t *manager,
                    fc_run_result_t *result, fc_error_t *err) {
  uv_loop_t loop;
  fc_run_t *run;
  int rc;
  if (result == NULL)
    return fc__error_set(err, FC_EINVAL, "", "no result struct");
  memset(result, 0, sizeof *result);
  rc = uv_loop_init(&loop);
  if (rc != 0)
    return fc__error_set(err, rc, "", "uv_loop_init: %s", uv_strerror(rc));
  rc = fc_run_new(&run, &loop, wf, manager, err);
  if (rc == 0) {
    (void)fc_run_set_keep_outputs(run, 0); /* nothing reads them here */
    rc = fc_run_start(run, input, sync_done, result);
    if (rc != 0)
      fc__error_set(err, rc, "", "fc_run_start: %s", fc_strerror(rc));
    else
      uv_run(&loop, UV_RUN_DEFAULT);
    fc_run_close(run, NULL, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
  }
  uv_loop_close(&loop);
  return rc;
}

void fc_run_result_clear(fc_run_result_t *result) {
  if (result == NULL)
    return;
  json_decref(result->output);
  result->output = NULL;
}
