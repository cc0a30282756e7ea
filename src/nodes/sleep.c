/* The sleep node: waits `ms` milliseconds on a uv_timer, one per attempt.
 * A stop (timeout, cancellation) ends the timer at once; the attempt is
 * completed from the timer's close callback, so nothing of the attempt is
 * left on the loop after its completion. In a workflow file: "ms". */
#include "node_type.h"
#include "nodes_int.h"

typedef struct {
  uv_timer_t timer; /* first: the close callback frees through it */
  fc_node_ctx_t *ctx;
  uint64_t ms;
  int fired;
  int err; /* a libuv error starting the timer */
} sleep_attempt;

static void sleep_closed(uv_handle_t *h) {
  sleep_attempt *a = (sleep_attempt *)h;
  fc_node_ctx_t *ctx = a->ctx;
  int fired = a->fired, err = a->err;
  uint64_t ms = a->ms;
  fc__free(a);
  if (err != 0) {
    fc_node_failf(ctx, FC_SEVERITY_ERROR, "node_error", "uv_timer_start: %s", uv_strerror(err));
  } else if (fired) {
    json_t *out = json_object();
    if (out != NULL && json_object_set_new(out, "slept_ms", json_integer((json_int_t)ms)) != 0) {
      json_decref(out);
      out = NULL;
    }
    if (out == NULL)
      fc_node_failf(ctx, FC_SEVERITY_ERROR, "node_error", "out of memory");
    else
      fc_node_succeed(ctx, out);
  } else {
    /* Stopped: the engine already ended the attempt and ignores this. */
    fc_node_failf(ctx, FC_SEVERITY_INFO, "stopped", "sleep stopped");
  }
}

static void sleep_fired(uv_timer_t *t) {
  sleep_attempt *a = (sleep_attempt *)t;
  a->fired = 1;
  uv_close((uv_handle_t *)t, sleep_closed);
}

static void sleep_stop(fc_node_ctx_t *ctx, fc_node_status_t reason, void *data) {
  sleep_attempt *a = data;
  (void)ctx;
  (void)reason;
  if (!uv_is_closing((uv_handle_t *)&a->timer))
    uv_close((uv_handle_t *)&a->timer, sleep_closed);
}

static void sleep_fn(fc_node_ctx_t *ctx, void *data) {
  const uint64_t *ms = data;
  sleep_attempt *a = fc__calloc(1, sizeof *a);
  int rc;
  if (a == NULL) {
    fc_node_failf(ctx, FC_SEVERITY_ERROR, "node_error", "out of memory");
    return;
  }
  a->ctx = ctx;
  a->ms = *ms;
  rc = uv_timer_init(fc_node_ctx_loop(ctx), &a->timer);
  if (rc != 0) {
    fc__free(a);
    fc_node_failf(ctx, FC_SEVERITY_ERROR, "node_error", "uv_timer_init: %s", uv_strerror(rc));
    return;
  }
  fc_node_ctx_on_stop(ctx, sleep_stop, a);
  rc = uv_timer_start(&a->timer, sleep_fired, a->ms, 0);
  if (rc != 0) { /* cannot happen with a callback given; handled anyway */
    a->err = rc;
    uv_close((uv_handle_t *)&a->timer, sleep_closed);
  }
}

int fc_workflow_add_sleep_node(fc_workflow_t *wf, const char *id, uint64_t ms,
                               fc_node_t **node_out) {
  uint64_t *cfg;
  if (node_out != NULL)
    *node_out = NULL;
  if (wf == NULL || id == NULL)
    return FC_EINVAL;
  cfg = fc__malloc(sizeof *cfg);
  if (cfg == NULL)
    return FC_ENOMEM;
  *cfg = ms;
  return fc__nodes_add(wf, id, "sleep", FC__NODE_NO_INPUT, sleep_fn, cfg, fc__free, node_out);
}

/* ---- in a workflow file --------------------------------------------------- */

static const char *const sleep_fields[] = {"ms", NULL};

static void sleep_check(fc__load_node_t *N, json_t *node) {
  uint64_t x;
  if (json_object_get(node, "ms") == NULL)
    fc__load_error(N, FC_EDEFINITION, NULL, "missing required field \"ms\"");
  else
    fc__load_uint(N, node, "ms", 0, (uint64_t)1 << 40, &x);
}

static int sleep_add(fc_workflow_t *wf, const char *id, json_t *node, fc_node_t **node_out) {
  return fc_workflow_add_sleep_node(
      wf, id, (uint64_t)json_integer_value(json_object_get(node, "ms")), node_out);
}

const fc__node_type_t fc__node_type_sleep = {
    .name = "sleep", .fields = sleep_fields, .check = sleep_check, .add = sleep_add};
