/* History records and the run data they share (record.h says what they hold). */
#include "history/record.h"

fc__hrun_t *fc__hrun_new(const fc_event_t *ev) {
  const fc_workflow_t *wf = ev->workflow;
  size_t n = wf != NULL ? fc_workflow_node_count(wf) : 0, i, bytes = 0, off;
  fc__hrun_t *r;
  char *p;
  for (i = 0; i < n; i++) {
    const fc_node_t *node = fc_workflow_node_at(wf, i);
    bytes += strlen(fc_node_id(node)) + strlen(fc_node_type(node)) + 2;
  }
  bytes += strlen(ev->workflow_name) + 1;
  /* One allocation: struct, two pointer arrays, then the strings. */
  off = sizeof *r + 2 * n * sizeof(char *);
  r = fc__malloc(off + bytes);
  if (r == NULL)
    return NULL;
  atomic_init(&r->refs, 1);
  r->owns_strings = 0;
  memcpy(r->uuid, ev->workflow_uuid, 16);
  r->node_count = (int)n;
  r->node_ids = (char **)(void *)(r + 1);
  r->node_types = r->node_ids + n;
  p = (char *)r + off;
  for (i = 0; i < n; i++) {
    const fc_node_t *node = fc_workflow_node_at(wf, i);
    size_t a = strlen(fc_node_id(node)) + 1, b = strlen(fc_node_type(node)) + 1;
    r->node_ids[i] = memcpy(p, fc_node_id(node), a);
    p += a;
    r->node_types[i] = memcpy(p, fc_node_type(node), b);
    p += b;
  }
  r->name = memcpy(p, ev->workflow_name, strlen(ev->workflow_name) + 1);
  return r;
}

void fc__hrun_incref(fc__hrun_t *r) {
  atomic_fetch_add_explicit(&r->refs, 1, memory_order_relaxed);
}

void fc__hrun_decref(fc__hrun_t *r) {
  if (r != NULL && atomic_fetch_sub_explicit(&r->refs, 1, memory_order_acq_rel) == 1) {
    if (r->owns_strings) {
      int i;
      for (i = 0; i < r->node_count; i++) {
        fc__free(r->node_ids[i]);
        fc__free(r->node_types[i]);
      }
    }
    fc__free(r);
  }
}

void fc__hrec_clear(fc__hrec_t *rec) {
  fc__hrun_decref(rec->run);
  json_decref(rec->payload);
  json_decref(rec->refs);
  fc__free(rec->err);
  rec->run = NULL;
  rec->payload = NULL;
  rec->refs = NULL;
  rec->err = NULL;
}
