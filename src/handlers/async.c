/* The async handler: a bounded FIFO of event copies between the loop
 * thread (the only producer) and one worker thread (the only consumer).
 *
 * One mutex guards the ring and the counts. Three condition variables:
 * `not_empty` wakes the worker (an event, closing, abandon), `not_full`
 * wakes a producer blocked by FC_ASYNC_BLOCK, `idle` tells fc_async_close
 * the queue is empty and no delivery is in progress. The event copy is made
 * and freed outside the lock; the wrapped handler is called outside it.
 *
 * Lifetime: two references, the handler (dropped by its destroy) and the
 * owner (dropped by fc_async_close); both are dropped on the loop thread,
 * so they need no atomics. */
#define _POSIX_C_SOURCE 200809L

#include <uv.h>

#include "handlers_int.h"

struct fc_async_s {
  fc_handler_t inner;
  fc_async_policy_t policy;
  uv_thread_t thread;
  uv_mutex_t mu;
  uv_cond_t not_empty;
  uv_cond_t not_full;
  uv_cond_t idle;
  /* under mu */
  fc_event_t **ring;
  size_t cap;
  size_t head; /* index of the oldest event */
  size_t count;
  int busy;    /* the worker is delivering an event */
  int closing; /* no more events; the worker exits once the queue is empty */
  int abandon; /* the worker exits after the delivery in progress */
  fc_async_stats_t stats;
  /* loop thread only */
  int closed;        /* fc_async_close has returned */
  int handler_alive; /* the handler has not been destroyed */
};

/* ---- worker -------------------------------------------------------------- */

static void async_worker(void *arg) {
  fc_async_t *a = arg;
  uv_mutex_lock(&a->mu);
  for (;;) {
    fc_event_t *ev;
    int rc;
    while (a->count == 0 && !a->closing && !a->abandon)
      uv_cond_wait(&a->not_empty, &a->mu);
    if (a->abandon || a->count == 0)
      break;
    ev = a->ring[a->head];
    a->ring[a->head] = NULL;
    a->head = (a->head + 1) % a->cap;
    a->count--;
    a->stats.queue_depth = a->count;
    a->busy = 1;
    uv_cond_signal(&a->not_full);
    uv_mutex_unlock(&a->mu);

    rc = fc_handler_call(&a->inner, ev);
    fc__event_copy_free(ev);

    uv_mutex_lock(&a->mu);
    a->busy = 0;
    a->stats.delivered++;
    if (rc != 0) {
      a->stats.failed++;
      a->stats.last_error = rc;
    }
    if (a->count == 0)
      uv_cond_broadcast(&a->idle);
  }
  uv_cond_broadcast(&a->idle);
  uv_mutex_unlock(&a->mu);
}

/* ---- producer (loop thread) ---------------------------------------------- */

static int async_cb(void *self, const fc_event_t *ev) {
  fc_async_t *a = self;
  fc_event_t *copy;

  if (a == NULL || ev == NULL)
    return FC_EINVAL;
  if (a->closed)
    return FC_ESTATE;

  uv_mutex_lock(&a->mu);
  a->stats.received++;
  if (a->count == a->cap && a->policy == FC_ASYNC_DROP) {
    a->stats.dropped++;
    uv_mutex_unlock(&a->mu);
    return 0;
  }
  uv_mutex_unlock(&a->mu);

  /* Copy outside the lock. The loop thread is the only producer: the queue
   * can only have shrunk meanwhile, so a drop decision cannot change. */
  copy = fc__event_copy(ev);

  uv_mutex_lock(&a->mu);
  if (copy == NULL) {
    a->stats.dropped++;
    a->stats.dropped_nomem++;
    uv_mutex_unlock(&a->mu);
    return FC_ENOMEM;
  }
  while (a->count == a->cap)
    uv_cond_wait(&a->not_full, &a->mu); /* FC_ASYNC_BLOCK */
  a->ring[(a->head + a->count) % a->cap] = copy;
  a->count++;
  a->stats.queued++;
  a->stats.queue_depth = a->count;
  if (a->count > a->stats.queue_high_water)
    a->stats.queue_high_water = a->count;
  uv_cond_signal(&a->not_empty);
  uv_mutex_unlock(&a->mu);
  return 0;
}

/* ---- lifetime ------------------------------------------------------------ */

static void async_free(fc_async_t *a) {
  uv_cond_destroy(&a->idle);
  uv_cond_destroy(&a->not_full);
  uv_cond_destroy(&a->not_empty);
  uv_mutex_destroy(&a->mu);
  fc__free(a->ring);
  fc__free(a);
}

static void async_handler_destroy(void *self) {
  fc_async_t *a = self;
  if (a == NULL)
    return;
  a->handler_alive = 0;
  if (a->closed)
    async_free(a);
}

/* Initializes the lock and condition variables; undoes what it did when one
 * fails. Returns 0 or a libuv error. */
static int async_sync_init(fc_async_t *a) {
  int rc = uv_mutex_init(&a->mu);
  if (rc != 0)
    return rc;
  rc = uv_cond_init(&a->not_empty);
  if (rc != 0)
    goto fail_mu;
  rc = uv_cond_init(&a->not_full);
  if (rc != 0)
    goto fail_empty;
  rc = uv_cond_init(&a->idle);
  if (rc != 0)
    goto fail_full;
  return 0;
fail_full:
  uv_cond_destroy(&a->not_full);
fail_empty:
  uv_cond_destroy(&a->not_empty);
fail_mu:
  uv_mutex_destroy(&a->mu);
  return rc;
}

void fc_async_options_init(fc_async_options_t *opts) {
  if (opts == NULL)
    return;
  memset(opts, 0, sizeof *opts);
  opts->queue_capacity = FC_ASYNC_DEFAULT_CAPACITY;
  opts->policy = FC_ASYNC_BLOCK;
}

/* Both constructors: `own` says whether the handler destroys inner (at
 * fc_async_close, or here on failure). */
static int async_make(const fc_handler_t *inner, const fc_async_options_t *opts, fc_async_t **out,
                      fc_handler_t *handler, int own) {
  fc_async_t *a;
  size_t cap = FC_ASYNC_DEFAULT_CAPACITY;
  fc_async_policy_t policy = FC_ASYNC_BLOCK;
  int rc, k;

  if (out != NULL)
    *out = NULL;
  if (handler != NULL)
    memset(handler, 0, sizeof *handler);
  if (inner == NULL)
    return FC_EINVAL;
  if (opts != NULL) {
    if (opts->queue_capacity != 0)
      cap = opts->queue_capacity;
    policy = opts->policy;
  }
  if (out == NULL || handler == NULL || cap > FC_ASYNC_MAX_CAPACITY ||
      (policy != FC_ASYNC_BLOCK && policy != FC_ASYNC_DROP)) {
    rc = FC_EINVAL;
    goto fail_inner;
  }
  a = fc__handlers_calloc(1, sizeof *a);
  if (a == NULL) {
    rc = FC_ENOMEM;
    goto fail_inner;
  }
  a->ring = fc__handlers_calloc(cap, sizeof a->ring[0]);
  if (a->ring == NULL) {
    fc__free(a);
    rc = FC_ENOMEM;
    goto fail_inner;
  }
  a->cap = cap;
  a->policy = policy;
  a->inner = *inner;
  if (!own)
    a->inner.destroy = NULL; /* fc_async_close leaves it to the caller */
  a->handler_alive = 1;
  rc = async_sync_init(a);
  if (rc != 0) {
    fc__free(a->ring);
    fc__free(a);
    goto fail_inner;
  }
  rc = fc__thread_create(&a->thread, async_worker, a);
  if (rc != 0) {
    async_free(a);
    goto fail_inner;
  }

  handler->name = "async";
  handler->self = a;
  handler->destroy = async_handler_destroy;
  for (k = 0; k < FC_EVENT_KIND_COUNT; k++)
    if (fc_handler_get_cb(inner, (fc_event_kind_t)k) != NULL)
      fc__handler_set_cb(handler, (fc_event_kind_t)k, async_cb);

  *out = a;
  return 0;

fail_inner:
  if (own && inner->destroy != NULL)
    inner->destroy(inner->self);
  return rc;
}

int fc_async_handler(const fc_handler_t *inner, const fc_async_options_t *opts, fc_async_t **out,
                     fc_handler_t *handler) {
  return async_make(inner, opts, out, handler, 0);
}

int fc_async_handler_owned(const fc_handler_t *inner, const fc_async_options_t *opts,
                           fc_async_t **out, fc_handler_t *handler) {
  return async_make(inner, opts, out, handler, 1);
}

int fc_async_close(fc_async_t *a, uint64_t deadline_ms, fc_async_stats_t *report) {
  uint64_t deadline, now;
  int timed_out = 0;

  if (a == NULL || a->closed)
    return FC_EINVAL;
  now = uv_hrtime();
  deadline = deadline_ms > (UINT64_MAX - now) / UINT64_C(1000000)
                 ? UINT64_MAX
                 : now + deadline_ms * UINT64_C(1000000);

  uv_mutex_lock(&a->mu);
  a->closing = 1;
  uv_cond_signal(&a->not_empty);
  while (a->count > 0 || a->busy) {
    now = uv_hrtime();
    if (now >= deadline) {
      timed_out = 1;
      break;
    }
    (void)uv_cond_timedwait(&a->idle, &a->mu, deadline - now);
  }
  if (timed_out) {
    a->abandon = 1;
    uv_cond_signal(&a->not_empty);
  }
  uv_mutex_unlock(&a->mu);

  (void)uv_thread_join(&a->thread);

  /* The worker is gone: no lock needed any more. */
  while (a->count > 0) {
    fc__event_copy_free(a->ring[a->head]);
    a->ring[a->head] = NULL;
    a->head = (a->head + 1) % a->cap;
    a->count--;
    a->stats.abandoned++;
  }
  a->stats.queue_depth = 0;
  fc_handler_destroy(&a->inner);
  if (report != NULL)
    *report = a->stats;
  timed_out = a->stats.abandoned > 0;

  a->closed = 1;
  if (!a->handler_alive)
    async_free(a);
  return timed_out ? FC_ETIMEDOUT : 0;
}

void fc_async_stats(fc_async_t *a, fc_async_stats_t *out) {
  if (out == NULL)
    return;
  if (a == NULL) {
    memset(out, 0, sizeof *out);
    return;
  }
  uv_mutex_lock(&a->mu);
  *out = a->stats;
  uv_mutex_unlock(&a->mu);
}

const char *fc_async_policy_name(fc_async_policy_t p) {
  switch (p) {
  case FC_ASYNC_BLOCK:
    return "block";
  case FC_ASYNC_DROP:
    return "drop";
  default:
    return "unknown";
  }
}

int fc_async_policy_parse(const char *name, fc_async_policy_t *out) {
  fc_async_policy_t p;
  if (name == NULL)
    return FC_EINVAL;
  if (strcmp(name, "block") == 0)
    p = FC_ASYNC_BLOCK;
  else if (strcmp(name, "drop") == 0)
    p = FC_ASYNC_DROP;
  else
    return FC_EINVAL;
  if (out != NULL)
    *out = p;
  return 0;
}
