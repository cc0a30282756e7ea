/* History records and the run data they share (record.h says what they hold). */
#include "history/record.h"

/* Appends str (and its NUL) to the run's string block; returns its offset,
 * or SIZE_MAX when out of memory. */
static size_t put_str(char **block, size_t *len, size_t *cap, const char *str) {
  size_t n = strlen(str) + 1, off = *len;
  if (fc__grow((void **)block, cap, off + n, 1) != 0)
    return SIZE_MAX;
  memcpy(*block + off, str, n);
  *len = off + n;
  return off;
}

/* The node ids and types are copied (the writer uses them after the
 * workflow may be gone) in one pass over the nodes, into one block; a type
 * met among the last few copied (built-in types are shared strings) is not
 * copied again. Offsets are kept in the pointer arrays until the block
 * stops moving. */
fc__hrun_t *fc__hrun_new(const fc_event_t *ev) {
  enum { NTYPES = 4 };
  const fc_workflow_t *wf = ev->workflow;
  size_t n = wf != NULL ? fc_workflow_node_count(wf) : 0, i, k, len = 0, cap = n * 12 + 64;
  const char *type_src[NTYPES] = {NULL};
  size_t type_off[NTYPES] = {0}, next_type = 0, off;
  fc__hrun_t *r = fc__malloc(sizeof *r + 2 * n * sizeof(char *));
  char *block = fc__malloc(cap);
  if (r == NULL || block == NULL)
    goto oom;
  atomic_init(&r->refs, 1);
  r->owns_strings = 0;
  memcpy(r->uuid, ev->workflow_uuid, 16);
  r->node_count = (int)n;
  r->node_ids = (char **)(void *)(r + 1);
  r->node_types = r->node_ids + n;
  for (i = 0; i < n; i++) {
    const fc_node_t *node = fc_workflow_node_at(wf, i);
    const char *type = fc_node_type(node);
    if ((off = put_str(&block, &len, &cap, fc_node_id(node))) == SIZE_MAX)
      goto oom;
    r->node_ids[i] = (char *)(uintptr_t)off;
    for (k = 0; k < NTYPES; k++)
      if (type_src[k] != NULL && (type_src[k] == type || strcmp(type_src[k], type) == 0))
        break;
    if (k == NTYPES) {
      k = next_type++ % NTYPES;
      type_src[k] = type;
      if ((type_off[k] = put_str(&block, &len, &cap, type)) == SIZE_MAX)
        goto oom;
    }
    r->node_types[i] = (char *)(uintptr_t)type_off[k];
  }
  if ((off = put_str(&block, &len, &cap, ev->workflow_name)) == SIZE_MAX)
    goto oom;
  r->strings = block;
  r->name = block + off;
  for (i = 0; i < n; i++) {
    r->node_ids[i] = block + (uintptr_t)r->node_ids[i];
    r->node_types[i] = block + (uintptr_t)r->node_types[i];
  }
  return r;
oom:
  fc__free(r);
  fc__free(block);
  return NULL;
}

void fc__hrun_incref(fc__hrun_t *r) {
  atomic_fetch_add_explicit(&r->refs, 1, memory_order_relaxed);
}

void fc__hrun_addref(fc__hrun_t *r, int n) {
  atomic_fetch_add_explicit(&r->refs, n, memory_order_relaxed);
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
    fc__free(r->strings);
    fc__free(r);
  }
}

static uint64_t estimate(const json_t *v, int depth, size_t *budget) {
  uint64_t n;
  if (v == NULL || *budget == 0)
    return 0;
  (*budget)--;
  switch (json_typeof(v)) {
  case JSON_STRING:
    return json_string_length(v) + 2;
  case JSON_OBJECT: {
    const char *key;
    json_t *m;
    n = 2;
    if (depth >= FC__ESTIMATE_DEPTH)
      return n;
    json_object_foreach((json_t *)v, key, m) {
      if (*budget == 0)
        break;
      n += strlen(key) + 4 + estimate(m, depth + 1, budget);
    }
    return n;
  }
  case JSON_ARRAY: {
    size_t i;
    n = 2;
    for (i = 0; depth < FC__ESTIMATE_DEPTH && i < json_array_size(v) && *budget > 0; i++)
      n += 1 + estimate(json_array_get(v, i), depth + 1, budget);
    return n;
  }
  default:
    return 8;
  }
}

uint32_t fc__hrec_estimate(const fc__hrec_t *rec) {
  size_t budget = FC__ESTIMATE_VALUES;
  uint64_t n = 64 + estimate(rec->payload, 0, &budget) + estimate(rec->refs, 0, &budget);
  if (rec->err != NULL) {
    const char *p = rec->err;
    int i;
    for (i = 0; i < 3; i++) {
      size_t l = strlen(p);
      n += l + 1;
      p += l + 1;
    }
  }
  return n > UINT32_MAX ? UINT32_MAX : (uint32_t)n;
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
