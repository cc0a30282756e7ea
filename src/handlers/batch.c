/* The batched handler: event copies pile up in an array and go to the batch
 * function together.
 *
 * The timer is one-shot: started when an empty batch gets its first event,
 * stopped when the batch is handed over. So it is active exactly while
 * events are pending, and the interval counts from the oldest one. A flush
 * detaches the array before calling the batch function, so an event that
 * arrives during the call (a re-entrant dispatch) starts the next batch. */
#define _POSIX_C_SOURCE 200809L

#include <uv.h>

#include "handlers_int.h"

#define BATCH_DEFAULT_SIZE 100
#define BATCH_DEFAULT_INTERVAL_MS 5000

typedef struct {
  uv_timer_t timer; /* timer.data is the state; freed in its close callback */
  fc_batch_options_t o;
  int use_timer;
  fc_event_t **items;
  size_t n;
  size_t cap;
  fc_batch_stats_t stats;
  int closing; /* destroy has run; the state lives until the timer closes */
} batch_t;

/* Hands the pending events to the batch function. Returns what it returned,
 * or 0 when nothing was pending. */
static int batch_flush(batch_t *b, fc_batch_reason_t reason) {
  fc_event_t **items = b->items;
  size_t n = b->n, cap = b->cap, i;
  int rc;

  if (n == 0)
    return 0;
  b->items = NULL;
  b->n = b->cap = 0;
  if (b->use_timer)
    (void)uv_timer_stop(&b->timer);

  rc = b->o.fn(b->o.data, (const fc_event_t *const *)items, n, reason);
  b->stats.batches++;
  b->stats.by_reason[reason]++;
  if (n > b->stats.largest_batch)
    b->stats.largest_batch = n;
  if (rc != 0) {
    b->stats.failures++;
    b->stats.last_error = rc;
  }

  for (i = 0; i < n; i++)
    fc__event_copy_free(items[i]);
  if (b->items == NULL && !b->closing) {
    b->items = items; /* keep the array for the next batch */
    b->cap = cap;
  } else {
    fc__free(items); /* a re-entrant event started a new one, or the
                        batch function destroyed the handler */
  }
  return rc;
}

static void batch_timer_cb(uv_timer_t *t) {
  (void)batch_flush(t->data, FC_BATCH_INTERVAL);
}

static int batch_cb(void *self, const fc_event_t *ev) {
  batch_t *b = self;
  fc_event_t *copy;

  if (b == NULL || ev == NULL || (unsigned)ev->kind >= (unsigned)FC_EVENT_KIND_COUNT)
    return FC_EINVAL;
  if (b->closing)
    return FC_ESTATE;
  if (b->o.kinds != 0 && (b->o.kinds & FC_EVENT_KIND_BIT(ev->kind)) == 0)
    return 0;
  copy = fc__event_copy(ev);
  if (copy == NULL ||
      fc__grow((void **)&b->items, &b->cap, b->n + 1, sizeof b->items[0]) != 0) {
    fc__event_copy_free(copy);
    b->stats.dropped++;
    return FC_ENOMEM;
  }
  b->items[b->n++] = copy;
  b->stats.events++;
  if (b->n == 1 && b->use_timer)
    (void)uv_timer_start(&b->timer, batch_timer_cb, b->o.flush_interval_ms, 0);
  if (b->n >= b->o.batch_size)
    return batch_flush(b, FC_BATCH_SIZE);
  return 0;
}

static void batch_closed_cb(uv_handle_t *h) { fc__free(h->data); }

static void batch_destroy(void *self) {
  batch_t *b = self;
  if (b == NULL || b->closing)
    return;
  b->closing = 1;
  (void)batch_flush(b, FC_BATCH_CLOSE);
  if (b->o.data_free != NULL)
    b->o.data_free(b->o.data);
  fc__free(b->items);
  b->items = NULL;
  uv_close((uv_handle_t *)&b->timer, batch_closed_cb);
}

void fc_batch_options_init(fc_batch_options_t *opts) {
  if (opts == NULL)
    return;
  memset(opts, 0, sizeof *opts);
  opts->batch_size = BATCH_DEFAULT_SIZE;
  opts->flush_interval_ms = BATCH_DEFAULT_INTERVAL_MS;
}

int fc_batch_handler(uv_loop_t *loop, const fc_batch_options_t *opts, fc_handler_t *out) {
  batch_t *b;
  unsigned mask;
  int rc, k;

  if (out != NULL)
    memset(out, 0, sizeof *out);
  if (opts == NULL)
    return FC_EINVAL;
  if (loop == NULL || opts->fn == NULL || out == NULL ||
      (opts->kinds & ~FC_EVENT_KINDS_ALL) != 0) {
    rc = FC_EINVAL;
    goto fail;
  }
  b = fc__handlers_calloc(1, sizeof *b);
  if (b == NULL) {
    rc = FC_ENOMEM;
    goto fail;
  }
  b->o = *opts;
  if (b->o.batch_size == 0)
    b->o.batch_size = BATCH_DEFAULT_SIZE;
  if (b->o.flush_interval_ms == 0)
    b->o.flush_interval_ms = BATCH_DEFAULT_INTERVAL_MS;
  b->use_timer = b->o.flush_interval_ms != UINT64_MAX;
  rc = uv_timer_init(loop, &b->timer);
  if (rc != 0) {
    fc__free(b);
    goto fail;
  }
  b->timer.data = b;
  if (b->o.unref_timer)
    uv_unref((uv_handle_t *)&b->timer);

  out->name = "batch";
  out->self = b;
  out->destroy = batch_destroy;
  mask = b->o.kinds != 0 ? b->o.kinds : FC_EVENT_KINDS_ALL;
  for (k = 0; k < FC_EVENT_KIND_COUNT; k++)
    if ((mask & FC_EVENT_KIND_BIT(k)) != 0)
      fc__handler_set_cb(out, (fc_event_kind_t)k, batch_cb);

  return 0;

fail:
  if (opts->data_free != NULL)
    opts->data_free(opts->data);
  return rc;
}

static batch_t *batch_of(const fc_handler_t *h) {
  if (h == NULL || h->destroy != batch_destroy)
    return NULL;
  return h->self;
}

int fc_batch_handler_flush(const fc_handler_t *h) {
  batch_t *b = batch_of(h);
  if (b == NULL)
    return FC_EINVAL;
  return batch_flush(b, FC_BATCH_FLUSH);
}

int fc_batch_handler_stats(const fc_handler_t *h, fc_batch_stats_t *out) {
  batch_t *b = batch_of(h);
  if (b == NULL)
    return FC_EINVAL;
  if (out != NULL) {
    *out = b->stats;
    out->pending = b->n;
  }
  return 0;
}

const char *fc_batch_reason_name(fc_batch_reason_t reason) {
  switch (reason) {
  case FC_BATCH_SIZE:
    return "size";
  case FC_BATCH_INTERVAL:
    return "interval";
  case FC_BATCH_FLUSH:
    return "flush";
  case FC_BATCH_CLOSE:
    return "close";
  default:
    return "unknown";
  }
}
