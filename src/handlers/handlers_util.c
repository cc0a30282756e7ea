/* Shared by the handlers in src/handlers/: deep copies of events (one block
 * for the struct and its strings, jansson deep copies for the payloads) and
 * the allocation failure injection of their tests. */
#include "handlers_int.h"

long fc__handlers_fail_countdown = 0;

static int handlers_fail_now(void) {
  return fc__handlers_fail_countdown > 0 && --fc__handlers_fail_countdown == 0;
}

void *fc__handlers_malloc(size_t size) { return handlers_fail_now() ? NULL : fc__malloc(size); }

void *fc__handlers_calloc(size_t n, size_t size) {
  return handlers_fail_now() ? NULL : fc__calloc(n, size);
}

char *fc__handlers_strdup(const char *s) { return handlers_fail_now() ? NULL : fc__strdup(s); }


typedef struct {
  fc_event_t ev; /* first: a copy is handed out as &block->ev */
  fc_error_info_t err;
  int counts[FC_NODE_STATUS_COUNT];
  uint8_t uuid[16];
  char strings[]; /* every string of the event, NUL-terminated */
} event_block_t;

static size_t str_size(const char *s) { return s != NULL ? strlen(s) + 1 : 0; }

/* Copies s to *cursor and advances it; returns the copy (NULL for NULL). */
static const char *str_put(char **cursor, const char *s) {
  char *dst = *cursor;
  size_t n;
  if (s == NULL)
    return NULL;
  n = strlen(s) + 1;
  memcpy(dst, s, n);
  *cursor = dst + n;
  return dst;
}

static int json_put(json_t **dst, const json_t *v) {
  if (v == NULL) {
    *dst = NULL;
    return 0;
  }
  *dst = json_deep_copy(v);
  return *dst != NULL ? 0 : -1;
}

fc_event_t *fc__event_copy(const fc_event_t *ev) {
  const fc_error_info_t *err;
  event_block_t *b;
  size_t size;
  char *cursor;
  int rc = 0;

  if (ev == NULL)
    return NULL;
  err = ev->error;
  size = str_size(ev->workflow_id) + str_size(ev->workflow_name) + str_size(ev->node_id) +
         str_size(ev->node_type);
  if (err != NULL)
    size += str_size(err->type) + str_size(err->message) + str_size(err->stack_trace) +
            str_size(err->node_id);
  b = fc__handlers_malloc(sizeof *b + size);
  if (b == NULL)
    return NULL;
  b->ev = *ev;
  b->ev.workflow = NULL;
  cursor = b->strings;
  b->ev.workflow_id = str_put(&cursor, ev->workflow_id);
  b->ev.workflow_name = str_put(&cursor, ev->workflow_name);
  b->ev.node_id = str_put(&cursor, ev->node_id);
  b->ev.node_type = str_put(&cursor, ev->node_type);
  if (ev->workflow_uuid != NULL) {
    memcpy(b->uuid, ev->workflow_uuid, sizeof b->uuid);
    b->ev.workflow_uuid = b->uuid;
  }
  if (ev->status_counts != NULL) {
    memcpy(b->counts, ev->status_counts, sizeof b->counts);
    b->ev.status_counts = b->counts;
  }
  b->ev.input = NULL;
  b->ev.output = NULL;
  b->ev.error = NULL;
  b->err.details = NULL;
  if (err != NULL) {
    b->err = *err;
    b->err.type = str_put(&cursor, err->type);
    b->err.message = str_put(&cursor, err->message);
    b->err.stack_trace = str_put(&cursor, err->stack_trace);
    b->err.node_id = str_put(&cursor, err->node_id);
    rc |= json_put(&b->err.details, err->details);
    b->ev.error = &b->err;
  }
  rc |= json_put(&b->ev.input, ev->input);
  rc |= json_put(&b->ev.output, ev->output);
  if (rc != 0) {
    fc__event_copy_free(&b->ev);
    return NULL;
  }
  return &b->ev;
}

void fc__event_copy_free(fc_event_t *copy) {
  event_block_t *b = (event_block_t *)copy;
  if (b == NULL)
    return;
  json_decref(b->ev.input);
  json_decref(b->ev.output);
  if (b->ev.error != NULL)
    json_decref(b->err.details);
  fc__free(b);
}
