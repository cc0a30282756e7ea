/* Workflow definitions: building, validation, freezing. */
#include <stdio.h>

#include "workflow_int.h"

/* ---- id table ------------------------------------------------------------ */

static uint32_t fold(uint64_t h) { return (uint32_t)(h >> 32) ^ (uint32_t)h; }

static uint32_t id_hash(const char *id) { return fold(fc__str_hash(id)); }

/* The first slot to probe for hash h: Fibonacci hashing on the top bits. */
static size_t slot_of(const fc_workflow_t *wf, uint32_t h) {
  return (size_t)((h * 2654435769u) >> (32 - wf->slot_bits));
}

/* The hash of id (the one fc__workflow_prefetch_id kept, for its id). */
static uint32_t wf_id_hash(const fc_workflow_t *wf, const char *id) {
  return id == wf->hint_id ? wf->hint_hash : id_hash(id);
}

/* Returns the index of the (first) node called `id`, or -1. */
static long table_find(const fc_workflow_t *wf, const char *id) {
  size_t mask, i;
  uint32_t h;
  if (wf->nslots == 0)
    return -1;
  h = wf_id_hash(wf, id);
  mask = wf->nslots - 1;
  for (i = slot_of(wf, h);; i = (i + 1) & mask) {
    const fc__id_slot_t *s = &wf->slots[i];
    if (s->node == 0)
      return -1;
    if (s->hash == h && strcmp(wf->nodes[s->node - 1]->id, id) == 0)
      return (long)(s->node - 1);
  }
}

/* Makes room for `extra` more ids: at most half the slots are used. */
static int table_reserve(fc_workflow_t *wf, size_t extra) {
  fc__id_slot_t *old = wf->slots;
  size_t nold = wf->nslots, k, i, mask;
  unsigned bits = nold != 0 ? wf->slot_bits : 4;
  while (((size_t)1 << bits) / 2 < wf->nids + extra)
    bits++;
  if (nold != 0 && bits == wf->slot_bits)
    return 0;
  wf->slots = fc__calloc((size_t)1 << bits, sizeof *wf->slots);
  if (wf->slots == NULL) {
    wf->slots = old;
    return FC_ENOMEM;
  }
  wf->slot_bits = bits;
  wf->nslots = (size_t)1 << bits;
  mask = wf->nslots - 1;
  for (k = 0; k < nold; k++) {
    if (old[k].node == 0)
      continue;
    for (i = slot_of(wf, old[k].hash); wf->slots[i].node != 0; i = (i + 1) & mask)
      ;
    wf->slots[i] = old[k];
  }
  fc__free(old);
  return 0;
}

/* Enters node `index`, whose id hashes to h (table_reserve made room), or
 * notes its id as a duplicate. */
static void table_add(fc_workflow_t *wf, size_t index, uint32_t h) {
  const char *id = wf->nodes[index]->id;
  size_t mask = wf->nslots - 1, i;
  for (i = slot_of(wf, h); wf->slots[i].node != 0; i = (i + 1) & mask) {
    const fc__id_slot_t *s = &wf->slots[i];
    if (s->hash == h && strcmp(wf->nodes[s->node - 1]->id, id) == 0) {
      if (wf->dup == 0) {
        wf->dup = (uint32_t)(index + 1);
        wf->dup_of = s->node;
      }
      return;
    }
  }
  wf->slots[i].node = (uint32_t)(index + 1);
  wf->slots[i].hash = h;
  wf->nids++;
}

/* ---- building ------------------------------------------------------------ */

int fc_workflow_new(fc_workflow_t **out, const char *name) {
  fc_workflow_t *wf;
  if (out == NULL || name == NULL)
    return FC_EINVAL;
  *out = NULL;
  wf = fc__calloc(1, sizeof *wf);
  if (wf == NULL)
    return FC_ENOMEM;
  wf->name = fc__strdup(name);
  if (wf->name == NULL) {
    fc__free(wf);
    return FC_ENOMEM;
  }
  *out = wf;
  return 0;
}

static void str_array_free(char **a, size_t n) {
  size_t i;
  for (i = 0; i < n; i++)
    fc__free(a[i]);
  fc__free(a);
}

/* Nodes and their ids are carved from slabs of the workflow: they live as
 * long as it does (a node is never freed alone), they cost no malloc each,
 * and the nodes of a big file lie next to each other for validation's
 * passes over them. A slab comes from malloc's heap (64 KiB, under its
 * mmap threshold), so the loader's second thread takes it from its own
 * arena. */
#define SLAB_BYTES (64 * 1024)

struct fc__slab_s {
  struct fc__slab_s *next;
  size_t used, cap;
  uint64_t data[];
};

#if UINTPTR_MAX == UINT64_MAX
_Static_assert(sizeof(fc_node_t) == 96, "fc_node_t is 96 bytes");
#endif

/* Returns n zeroed bytes aligned to 8 (what nodes and their data need; a
 * node with an id of up to 7 bytes then takes 104 bytes, not 112) or
 * NULL. */
static void *slab_alloc(fc_workflow_t *wf, size_t n) {
  fc__slab_t *s = wf->slabs;
  void *p;
  n = (n + sizeof(uint64_t) - 1) / sizeof(uint64_t) * sizeof(uint64_t);
  if (s == NULL || s->cap - s->used < n) {
    size_t cap = n > SLAB_BYTES - sizeof *s ? n : SLAB_BYTES - sizeof *s;
    s = fc__calloc(1, sizeof *s + cap);
    if (s == NULL)
      return NULL;
    s->cap = cap;
    s->next = wf->slabs;
    wf->slabs = s;
  }
  p = (char *)s->data + s->used;
  s->used += n;
  return p;
}

void *fc__workflow_alloc(fc_workflow_t *wf, size_t n) { return slab_alloc(wf, n); }

static void slabs_free(fc__slab_t *s) {
  while (s != NULL) {
    fc__slab_t *next = s->next;
    fc__free(s);
    s = next;
  }
}

/* What a node holds; the node itself is in a slab. */
static void node_free(fc_node_t *n) {
  size_t r;
  if (n->data_free != NULL)
    n->data_free(n->user_data);
  if (n->type_owned)
    fc__free((char *)n->type);
  for (r = 0; r < n->ndeps; r++)
    fc__free(n->deps[r].id);
  fc__free(n->deps);
  for (r = 0; r < fc__node_nroutes(n); r++) {
    fc__free(n->extra->routes[r].name);
    str_array_free(n->extra->routes[r].targets, n->extra->routes[r].ntargets);
  }
  if (n->extra != NULL)
    fc__free(n->extra->routes);
  fc__free(n->out);
}

void fc_workflow_free(fc_workflow_t *wf) {
  size_t i;
  if (wf == NULL)
    return;
  for (i = 0; i < wf->nnodes; i++)
    node_free(wf->nodes[i]);
  fc__free(wf->nodes);
  fc__free(wf->slots);
  fc__free(wf->in_all);
  fc__free(wf->roots);
  slabs_free(wf->slabs);
  fc__free(wf->name);
  fc__free(wf);
}

int fc_workflow_add_node(fc_workflow_t *wf, const char *id, fc_node_fn fn, void *user_data,
                         fc_node_t **node_out) {
  fc_node_t *n;
  size_t len;
  if (node_out != NULL)
    *node_out = NULL;
  if (wf == NULL || id == NULL)
    return FC_EINVAL;
  if (wf->frozen)
    return FC_EFROZEN;
  if (wf->nnodes >= FC__MAX_NODES ||
      fc__grow((void **)&wf->nodes, &wf->cap_nodes, wf->nnodes + 1, sizeof *wf->nodes) != 0 ||
      table_reserve(wf, 1) != 0)
    return FC_ENOMEM;
  len = strlen(id) + 1;
  n = slab_alloc(wf, sizeof *n + len); /* the node, then its id */
  if (n == NULL)
    return FC_ENOMEM;
  n->id = (char *)(n + 1);
  memcpy(n->id, id, len);
  n->type = "";
  n->wf = wf;
  n->index = (uint32_t)wf->nnodes; /* < FC__MAX_NODES */
  n->fn = fn;
  n->user_data = user_data;
  /* check_names looks at every node only if one may fail it; the id is
   * checked now, while it is in the cache. */
  if (fn == NULL || !fc__name_valid(n->id, FC_NAME_MAX, 0) || fc__streq(n->id, "input"))
    wf->suspect = 1;
  wf->nodes[wf->nnodes++] = n;
  table_add(wf, n->index, wf_id_hash(wf, id));
  if (node_out != NULL)
    *node_out = n;
  return 0;
}

#define APPEND_AHEAD 16
size_t fc__workflow_thread_min = 16384;

typedef struct {
  fc_workflow_t *wf; /* the workflow the part's nodes now belong to */
  fc_workflow_t *part;
  uint32_t off; /* added (modulo 2^32) to every index of the part */
  /* When `collect`: the nodes with a reference to look up (a dependency
   * not found in the part, routes); `lost` when out of memory noting one. */
  int collect, lost;
  fc_node_t **open;
  size_t nopen, cap_open;
} renumber_t;

/* The part's nodes and their dependencies found in part, renumbered. */
static void renumber(void *arg) {
  renumber_t *r = arg;
  size_t k, d;
  for (k = 0; k < r->part->nnodes; k++) {
    fc_node_t *n = r->part->nodes[k];
    int open = fc__node_nroutes(n) > 0;
    n->wf = r->wf;
    n->index += r->off;
    for (d = 0; d < n->ndeps; d++) {
      if (n->deps[d].node != 0)
        n->deps[d].node += r->off;
      else
        open = 1;
    }
    if (open && r->collect && !r->lost) {
      if (fc__grow((void **)&r->open, &r->cap_open, r->nopen + 1, sizeof *r->open) != 0)
        r->lost = 1;
      else
        r->open[r->nopen++] = n;
    }
  }
}

/* Whether every dependency and route target of n names a node of wf. */
static int refs_known(const fc_workflow_t *wf, const fc_node_t *n) {
  size_t d, r, t;
  for (d = 0; d < n->ndeps; d++)
    if (n->deps[d].node == 0 && table_find(wf, n->deps[d].id) < 0)
      return 0;
  for (r = 0; r < fc__node_nroutes(n); r++)
    for (t = 0; t < n->extra->routes[r].ntargets; t++)
      if (table_find(wf, n->extra->routes[r].targets[t]) < 0)
        return 0;
  return 1;
}

typedef struct {
  fc_workflow_t *wf, *part;
  int rc;
} append_ids_t;

/* Enters the ids of part (node index + off + 1) in wf's table (room is
 * made): 0, or FC_EDUPLICATE with the table as it was. Each id is entered
 * where a probe for it ends; one already in wf (an index up to off) is a
 * duplicate, and the ids entered before it are taken out again, the last
 * first. The part's slots are read in order and wf's slot for the one
 * APPEND_AHEAD further on is fetched meanwhile: each is a cache miss in a
 * table of megabytes. A node's id is read only when a hash matches. */
static void append_ids(void *arg) {
  append_ids_t *a = arg;
  fc_workflow_t *wf = a->wf;
  const fc_workflow_t *part = a->part;
  size_t off = wf->nnodes, k, i, mask = wf->nslots - 1;
  a->rc = 0;
  for (k = 0; k < part->nslots; k++) {
    fc__id_slot_t slot = part->slots[k];
#if defined(__GNUC__)
    if (k + APPEND_AHEAD < part->nslots && part->slots[k + APPEND_AHEAD].node != 0)
      __builtin_prefetch(&wf->slots[slot_of(wf, part->slots[k + APPEND_AHEAD].hash)], 1);
#endif
    if (slot.node == 0)
      continue;
    slot.node += (uint32_t)off;
    for (i = slot_of(wf, slot.hash); wf->slots[i].node != 0; i = (i + 1) & mask) {
      const fc__id_slot_t *s = &wf->slots[i];
      if (s->hash == slot.hash && s->node <= off &&
          strcmp(wf->nodes[s->node - 1]->id, part->nodes[slot.node - off - 1]->id) == 0)
        break;
    }
    if (wf->slots[i].node != 0) {
      while (k-- > 0) {
        slot = part->slots[k];
        if (slot.node == 0)
          continue;
        slot.node += (uint32_t)off;
        for (i = slot_of(wf, slot.hash); wf->slots[i].node != slot.node; i = (i + 1) & mask)
          ;
        wf->slots[i].node = 0;
        wf->nids--;
      }
      a->rc = FC_EDUPLICATE;
      return;
    }
    wf->slots[i] = slot;
    wf->nids++;
  }
}

/* See workflow_int.h. The ids of part keep their hashes; its dependencies
 * found in part are renumbered, those left to validation stay so. */
int fc__workflow_append(fc_workflow_t *wf, fc_workflow_t *part, int *known) {
  size_t off = wf->nnodes, k;
  append_ids_t ids = {wf, part, 0};
  renumber_t to_wf = {wf, part, (uint32_t)off, known != NULL, 0, NULL, 0, 0};
  if (wf->frozen || part->frozen || part->dup != 0)
    return FC_EINVAL;
  if (part->nnodes > FC__MAX_NODES - off ||
      fc__grow((void **)&wf->nodes, &wf->cap_nodes, off + part->nnodes, sizeof *wf->nodes) != 0)
    return FC_ENOMEM;
  if (table_reserve(wf, part->nids) != 0)
    return FC_ENOMEM;
  /* The two steps touch different memory: wf's table and the part's
   * nodes (whose ids append_ids reads, and renumber does not write). */
  if (part->nnodes >= fc__workflow_thread_min) {
    fc__run_both(append_ids, &ids, renumber, &to_wf);
    if (ids.rc != 0) { /* as it was */
      renumber_t back = {part, part, (uint32_t)0 - (uint32_t)off, 0, 0, NULL, 0, 0};
      renumber(&back);
    }
  } else {
    append_ids(&ids);
    if (ids.rc == 0)
      renumber(&to_wf);
  }
  if (ids.rc != 0) {
    fc__free(to_wf.open);
    return ids.rc;
  }
  for (k = 0; k < part->nnodes; k++)
    wf->nodes[wf->nnodes++] = part->nodes[k];
  if (known != NULL) { /* now that wf has every id */
    *known = 1;
    for (k = 0; k < (to_wf.lost ? part->nnodes : to_wf.nopen) && *known; k++)
      *known = refs_known(wf, to_wf.lost ? part->nodes[k] : to_wf.open[k]);
  }
  fc__free(to_wf.open);
  wf->suspect |= part->suspect;
  wf->routes |= part->routes;
  wf->split_at = off;
  wf->split_deps = wf->ndeps;
  wf->ndeps += part->ndeps;
  if (part->slabs != NULL) { /* the nodes' slabs go with them */
    fc__slab_t *last = part->slabs;
    while (last->next != NULL)
      last = last->next;
    last->next = wf->slabs;
    wf->slabs = part->slabs;
    part->slabs = NULL;
  }
  part->nnodes = 0;
  fc_workflow_free(part);
  return 0;
}

void fc__workflow_prefetch_text(const fc_workflow_t *wf, const char *id, size_t len) {
#if defined(__GNUC__)
  if (wf->nslots != 0)
    __builtin_prefetch(&wf->slots[slot_of(wf, fold(fc__mem_hash(id, len)))]);
#else
  (void)wf;
  (void)id;
  (void)len;
#endif
}

void fc__workflow_prefetch_id(fc_workflow_t *wf, const char *id) {
  wf->hint_id = id;
  if (id == NULL)
    return;
  wf->hint_hash = id_hash(id);
#if defined(__GNUC__)
  if (wf->nslots != 0)
    __builtin_prefetch(&wf->slots[slot_of(wf, wf->hint_hash)]);
#endif
}

int fc__workflow_reserve(fc_workflow_t *wf, size_t nodes) {
  if (wf->frozen || nodes > FC__MAX_NODES - wf->nnodes)
    return 0;
  if (fc__grow((void **)&wf->nodes, &wf->cap_nodes, wf->nnodes + nodes, sizeof *wf->nodes) != 0)
    return FC_ENOMEM;
  return table_reserve(wf, nodes);
}

int fc_workflow_set_max_parallel(fc_workflow_t *wf, int max_parallel) {
  if (wf == NULL || max_parallel < 0)
    return FC_EINVAL;
  if (wf->frozen)
    return FC_EFROZEN;
  wf->max_parallel = max_parallel;
  return 0;
}

static int node_check(const fc_node_t *n) {
  if (n == NULL)
    return FC_EINVAL;
  if (n->wf->frozen)
    return FC_EFROZEN;
  return 0;
}

int fc_node_set_type(fc_node_t *n, const char *type) {
  char *copy;
  int rc = node_check(n);
  if (rc != 0)
    return rc;
  if (type == NULL)
    return FC_EINVAL;
  copy = fc__strdup(type);
  if (copy == NULL)
    return FC_ENOMEM;
  if (n->type_owned)
    fc__free((char *)n->type);
  n->type = copy;
  n->type_owned = 1;
  return 0;
}

static int str_array_push(char ***a, size_t *n, size_t *cap, const char *s) {
  char *copy;
  if (fc__grow_small((void **)a, cap, *n + 1, sizeof **a) != 0)
    return FC_ENOMEM;
  copy = fc__strdup(s);
  if (copy == NULL)
    return FC_ENOMEM;
  (*a)[(*n)++] = copy;
  return 0;
}

/* Makes room for one more item after the n of *items (whose capacity *cap
 * is 32-bit, as a node's counts are) with grow (fc__grow or
 * fc__grow_small). 0 or FC_ENOMEM. */
static int grow_u32(void **items, uint32_t *cap, uint32_t n, size_t elem_size,
                    int (*grow)(void **, size_t *, size_t, size_t)) {
  size_t c = *cap;
  if (n == UINT32_MAX || grow(items, &c, (size_t)n + 1, elem_size) != 0)
    return FC_ENOMEM;
  *cap = c > UINT32_MAX ? UINT32_MAX : (uint32_t)c;
  return 0;
}

/* The node called id, as table_find, looking first at the node added
 * just before n: a file most often lists a node right after the one it
 * depends on (without duplicate ids, that node is the one the table
 * has). */
static long find_dep(const fc_workflow_t *wf, const fc_node_t *n, const char *id) {
  if (wf->dup == 0 && n->index > 0 && fc__streq(wf->nodes[n->index - 1]->id, id))
    return (long)(n->index - 1);
  return table_find(wf, id);
}

int fc_node_add_dep(fc_node_t *n, const char *dep_id) {
  fc__dep_t *d;
  int rc = node_check(n);
  if (rc != 0)
    return rc;
  if (dep_id == NULL)
    return FC_EINVAL;
  if (n->wf->ndeps >= UINT32_MAX - 1)
    return FC_ENOMEM; /* predecessor lists are indexed by 32 bits (in) */
  if ((n->ndeps & (n->ndeps - 1)) == 0) { /* none yet, or full: a power of two */
    d = fc__realloc(n->deps, (n->ndeps != 0 ? 2 * (size_t)n->ndeps : 1) * sizeof *d);
    if (d == NULL)
      return FC_ENOMEM;
    n->deps = d;
  }
  d = &n->deps[n->ndeps];
  d->node = (uint32_t)(find_dep(n->wf, n, dep_id) + 1);
  d->id = NULL;
  if (d->node == 0 && (d->id = fc__strdup(dep_id)) == NULL)
    return FC_ENOMEM;
  n->ndeps++;
  n->wf->ndeps++;
  if (n->index < n->wf->split_at) /* the first half has one more */
    n->wf->split_at = 0;
  return 0;
}

/* The node's extra, made (in a slab: no routes, retries or timeout) if it
 * has none; NULL when out of memory. */
static fc__node_extra_t *node_extra(fc_node_t *n) {
  if (n->extra == NULL && (n->extra = slab_alloc(n->wf, sizeof *n->extra)) != NULL)
    n->extra->default_route = -1;
  return n->extra;
}

int fc_node_add_route(fc_node_t *n, const char *route, const char *target_id) {
  size_t r;
  fc__route_t *rt;
  fc__node_extra_t *x;
  int rc = node_check(n);
  if (rc != 0)
    return rc;
  if (route == NULL || target_id == NULL || route[0] == '\0')
    return FC_EINVAL;
  if ((x = node_extra(n)) == NULL)
    return FC_ENOMEM;
  n->wf->suspect = 1; /* check_names checks the route names */
  n->wf->routes = 1;
  for (r = 0; r < x->nroutes; r++)
    if (strcmp(x->routes[r].name, route) == 0)
      break;
  if (r == x->nroutes) {
    if (grow_u32((void **)&x->routes, &x->cap_routes, x->nroutes, sizeof *x->routes, fc__grow) != 0)
      return FC_ENOMEM;
    rt = &x->routes[r];
    memset(rt, 0, sizeof *rt);
    rt->name = fc__strdup(route);
    if (rt->name == NULL)
      return FC_ENOMEM;
    x->nroutes++;
  }
  rt = &x->routes[r];
  return str_array_push(&rt->targets, &rt->ntargets, &rt->cap, target_id);
}

int fc_node_set_retries(fc_node_t *n, int retries, uint64_t base_ms, uint64_t max_ms) {
  fc__node_policy_t *p;
  int rc = node_check(n);
  if (rc != 0)
    return rc;
  if (retries < 0)
    return FC_EINVAL;
  if (retries == 0 && n->extra == NULL)
    return 0; /* the default: nothing to keep */
  if (node_extra(n) == NULL)
    return FC_ENOMEM;
  p = &n->extra->policy;
  p->retries = retries;
  p->backoff_base_ms = base_ms;
  p->backoff_max_ms = max_ms < base_ms ? base_ms : max_ms;
  return 0;
}

int fc_node_set_timeout(fc_node_t *n, uint64_t timeout_ms) {
  fc__node_policy_t *p;
  int rc = node_check(n);
  if (rc != 0)
    return rc;
  if (timeout_ms == 0 && n->extra == NULL)
    return 0; /* the default */
  if (node_extra(n) == NULL)
    return FC_ENOMEM;
  p = &n->extra->policy;
  p->timeout_ms = timeout_ms;
  return 0;
}

int fc_node_set_data_free(fc_node_t *n, void (*free_fn)(void *)) {
  int rc = node_check(n);
  if (rc != 0)
    return rc;
  n->data_free = free_fn;
  return 0;
}

/* ---- validation ---------------------------------------------------------- */

/* Appends an edge to src's successors. A list holds a power of two of
 * edges (or none), so its room follows from nout: no array of capacities
 * (1.6 MB for 200,000 nodes, each page of it a fault). */
static int out_push(fc_node_t *src, uint32_t to, uint64_t mask) {
  uint32_t n = src->nout;
  if ((n & (n - 1)) == 0) { /* none yet, or full */
    fc__edge_t *p = fc__realloc(src->out, (n != 0 ? 2 * (size_t)n : 1) * sizeof *p);
    if (p == NULL)
      return FC_ENOMEM;
    src->out = p;
  }
  src->out[n].to = to;
  src->out[n].route_mask = mask;
  src->nout = n + 1;
  return 0;
}

/* Adds an edge from -> to in a workflow with routes, merging duplicates
 * (route masks are or-ed). The `mark` array remembers, per target, the
 * last source that added an edge, plus one; it lets us merge in O(1). */
static int edge_add(fc_workflow_t *wf, uint32_t from, uint32_t to, uint64_t mask,
                    uint32_t *mark) {
  fc_node_t *src = wf->nodes[from];
  size_t i;
  if (mark[to] == from + 1) {
    for (i = 0; i < src->nout; i++)
      if (src->out[i].to == to) {
        src->out[i].route_mask |= mask;
        return 0;
      }
  }
  mark[to] = from + 1;
  if (out_push(src, to, mask) != 0)
    return FC_ENOMEM;
  wf->nodes[to]->nin++; /* counted now, filled in a second pass */
  return 0;
}

/* Names a cycle among the nodes left with unresolved predecessors after
 * Kahn's algorithm. Every such node has a predecessor among them, so walking
 * predecessors must revisit a node: the walk from that node is a cycle. */
static int report_cycle(fc_workflow_t *wf, const uint32_t *indeg, fc_error_t *err) {
  size_t n = wf->nnodes, i, len = 0;
  uint32_t *seen = fc__calloc(n, sizeof *seen); /* step + 1 of first visit */
  uint32_t *path = fc__malloc(n * sizeof *path);
  uint32_t cur = 0, start;
  char text[FC_ERROR_TEXT_LENGTH];
  size_t used = 0;
  int truncated = 0;
  if (seen == NULL || path == NULL) {
    fc__free(seen);
    fc__free(path);
    return fc__error_set(err, FC_ECYCLE, "", "dependency cycle (out of memory naming it)");
  }
  for (i = 0; i < n; i++)
    if (indeg[i] > 0) {
      cur = (uint32_t)i;
      break;
    }
  while (seen[cur] == 0) {
    const fc_node_t *node = wf->nodes[cur];
    const uint32_t *in = fc__node_in(node);
    seen[cur] = (uint32_t)(++len);
    path[len - 1] = cur;
    for (i = 0; i < node->nin; i++)
      if (indeg[in[i]] > 0) {
        cur = in[i];
        break;
      }
  }
  /* path[seen[cur]-1 .. len-1] walks predecessors from cur back to cur.
   * Print it in execution order: reversed. */
  start = seen[cur] - 1;
  for (i = len; i > start; i--) {
    const char *id = wf->nodes[path[i - 1]]->id;
    int w;
    if (used + strlen(id) + 16 >= sizeof text - 32) {
      truncated = 1;
      break;
    }
    w = snprintf(text + used, sizeof text - used, "%s -> ", id);
    used += (size_t)w;
  }
  if (truncated)
    snprintf(text + used, sizeof text - used, "... -> %s", wf->nodes[cur]->id);
  else
    snprintf(text + used, sizeof text - used, "%s", wf->nodes[path[len - 1]]->id);
  fc__error_set(err, FC_ECYCLE, wf->nodes[cur]->id, "dependency cycle of %zu node%s: %s",
                len - start, len - start == 1 ? "" : "s", text);
  fc__free(seen);
  fc__free(path);
  return FC_ECYCLE;
}

static int check_names(fc_workflow_t *wf, fc_error_t *err) {
  size_t i, r;
  if (!fc__name_valid(wf->name, FC_WORKFLOW_NAME_MAX, 1))
    return fc__error_set(err, FC_EBADNAME, "name",
                         "invalid workflow name \"%.64s%s\": use 1-%d characters of "
                         "A-Z a-z 0-9 _ . : - (and inner spaces)",
                         wf->name, strlen(wf->name) > 64 ? "..." : "", FC_WORKFLOW_NAME_MAX);
  if (!wf->suspect)
    return 0; /* every id passed when its node was added, and no node has routes */
  for (i = 0; i < wf->nnodes; i++) {
    fc_node_t *n = wf->nodes[i];
    if (!fc__name_valid(n->id, FC_NAME_MAX, 0))
      return fc__error_set(err, FC_EBADNAME, n->id,
                           "node #%zu: invalid id \"%.64s%s\": use 1-%d characters of "
                           "A-Z a-z 0-9 _ . : -",
                           i, n->id, strlen(n->id) > 64 ? "..." : "", FC_NAME_MAX);
    if (strcmp(n->id, "input") == 0)
      return fc__error_set(err, FC_EBADNAME, n->id,
                           "node #%zu: the id \"input\" is reserved (a node's input holds "
                           "the workflow input under that key)",
                           i);
    if (n->fn == NULL)
      return fc__error_set(err, FC_ENOFN, n->id, "node \"%s\": no function", n->id);
    if (fc__node_nroutes(n) > FC__MAX_ROUTES)
      return fc__error_set(err, FC_EDEFINITION, n->id, "node \"%s\": more than %d routes",
                           n->id, FC__MAX_ROUTES);
    for (r = 0; r < fc__node_nroutes(n); r++)
      if (!fc__name_valid(n->extra->routes[r].name, FC_NAME_MAX, 0))
        return fc__error_set(err, FC_EBADNAME, n->id, "node \"%s\": invalid route name \"%.64s\"",
                             n->id, n->extra->routes[r].name);
  }
  return 0;
}

/* Enters predecessor d in in[0..n) (sorted, as the general fill below
 * makes it: by index). */
static void in_insert(uint32_t *in, size_t n, uint32_t d) {
  while (n > 0 && in[n - 1] > d) {
    in[n] = in[n - 1];
    n--;
  }
  in[n] = d;
}

/* Forgets what validation filled in a node (its edges and route choice). */
static void node_edges_clear(fc_node_t *n) {
  fc__free(n->out);
  n->in = 0;
  n->out = NULL;
  n->nin = n->nout = 0;
  if (n->extra != NULL)
    n->extra->default_route = -1;
}

/* An edge a range of nodes found but may not add (deps_range). */
typedef struct {
  uint32_t from, to;
} late_edge_t;

/* The edges from the dependencies of nodes [lo, hi) of a workflow without
 * routes, in one pass over these nodes: each one's predecessor list is
 * filled as its dependencies are found (the lists follow each other from
 * `in` on), a dependency repeated right after itself is one edge, and a
 * node without predecessors goes to `roots`. An edge from a node outside
 * [own_lo, own_hi) is not added to that node's successors (another thread
 * may be adding to them) but noted in `late`, in order. Stops at the first
 * unknown dependency (rc FC_EUNKNOWNDEP, failed, failed_dep) or lack of
 * memory (FC_ENOMEM). */
typedef struct {
  fc_workflow_t *wf;
  size_t lo, hi, own_lo, own_hi;
  uint32_t *in, *roots;
  size_t nroots;
  int backward; /* an edge from a node to itself or to one before it */
  int rc;
  size_t failed, failed_dep;
  late_edge_t *late;
  size_t nlate, cap_late;
} deps_range_t;

static void deps_range(void *arg) {
  deps_range_t *r = arg;
  fc_workflow_t *wf = r->wf;
  uint32_t *in = r->in;
  size_t i, j;
  for (i = r->lo; i < r->hi && r->rc == 0; i++) {
    fc_node_t *node = wf->nodes[i];
    long prev = -1;
    node->in = (uint32_t)(in - wf->in_all);
    for (j = 0; j < node->ndeps && r->rc == 0; j++) {
      const fc__dep_t *dep = &node->deps[j];
      long d = dep->node != 0 ? (long)dep->node - 1 : table_find(wf, dep->id);
      if (d < 0) {
        r->rc = FC_EUNKNOWNDEP;
        r->failed = i;
        r->failed_dep = j;
        break;
      }
      if (d == prev)
        continue;
      prev = d;
      r->backward |= (size_t)d >= i;
      if ((size_t)d >= r->own_lo && (size_t)d < r->own_hi) {
        if (out_push(wf->nodes[d], (uint32_t)i, 0) != 0)
          r->rc = FC_ENOMEM;
      } else if (fc__grow((void **)&r->late, &r->cap_late, r->nlate + 1, sizeof *r->late) != 0) {
        r->rc = FC_ENOMEM;
      } else {
        r->late[r->nlate].from = (uint32_t)d;
        r->late[r->nlate++].to = (uint32_t)i;
      }
      if (r->rc == 0)
        in_insert(in, node->nin++, (uint32_t)d);
    }
    in += node->nin;
    if (node->nin == 0)
      r->roots[r->nroots++] = (uint32_t)i;
  }
}

/* The edges of a workflow without routes into wf->in_all and wf->roots
 * (made by the caller). A workflow appended in two parts (split_at, from
 * fc__workflow_append) of at least fc__workflow_thread_min nodes
 * each has its halves done at once, each adding the edges whose source is
 * its own; the edges from the first half to the second are added after
 * (to the end of their sources' lists, where one pass would have put
 * them). Dependencies from the first half on the second (rare: a file
 * lists a node after those it depends on) would belong before edges the
 * second half added: such a workflow is done again in one pass. */
static int deps_edges(fc_workflow_t *wf, int *backward, fc_error_t *err) {
  size_t n = wf->nnodes, m = wf->split_at, k;
  const deps_range_t all = {wf, 0, n, 0, n, wf->in_all, wf->roots, 0, 0, 0, 0, 0, NULL, 0, 0};
  deps_range_t a = all, b = all;
  const deps_range_t *f;
  if (m > 0 && m >= fc__workflow_thread_min && n - m >= fc__workflow_thread_min &&
      wf->split_deps <= wf->ndeps) {
    a.hi = a.own_hi = m;
    b.lo = b.own_lo = m;
    b.in = wf->in_all + wf->split_deps;
    b.roots = wf->roots + m;
    fc__run_both(deps_range, &a, deps_range, &b);
    if (a.nlate == 0 && (a.rc != 0 || b.rc != 0)) {
      f = a.rc != 0 ? &a : &b;
      goto fail;
    }
    if (a.nlate == 0) {
      for (k = 0; k < b.nlate && b.rc == 0; k++)
        if (out_push(wf->nodes[b.late[k].from], b.late[k].to, 0) != 0)
          b.rc = FC_ENOMEM;
      memmove(wf->roots + a.nroots, b.roots, b.nroots * sizeof *wf->roots);
      wf->nroots = a.nroots + b.nroots;
      *backward = a.backward || b.backward;
      f = &b;
      if (b.rc != 0)
        goto fail;
      fc__free(b.late);
      return 0;
    }
    fc__free(a.late); /* again in one pass */
    fc__free(b.late);
    for (k = 0; k < n; k++)
      node_edges_clear(wf->nodes[k]);
    a = b = all;
  }
  deps_range(&a);
  wf->nroots = a.nroots;
  *backward = a.backward;
  if (a.rc == 0)
    return 0;
  f = &a;
fail:
  fc__free(a.late);
  fc__free(b.late);
  if (f->rc == FC_EUNKNOWNDEP) {
    const fc_node_t *node = wf->nodes[f->failed];
    return fc__error_set(err, FC_EUNKNOWNDEP, node->id,
                         "node \"%s\": depends on unknown node \"%.128s\"", node->id,
                         node->deps[f->failed_dep].id);
  }
  return fc__error_set(err, FC_ENOMEM, "", "out of memory");
}

/* Sets *backward when an edge goes from a node to itself or to one added
 * before it: without such an edge the index order is a topological order,
 * so the graph has no cycle. */
static int build_edges(fc_workflow_t *wf, int *backward, fc_error_t *err) {
  size_t n = wf->nnodes, i, j, r;
  uint32_t *mark = NULL;
  int rc = 0;
  wf->roots = fc__malloc((n > 0 ? n : 1) * sizeof *wf->roots);
  if (wf->roots == NULL)
    return fc__error_set(err, FC_ENOMEM, "", "out of memory");
  /* Without routes a node's predecessors are its dependencies: their
   * lists are filled as they are found, in one pass over the nodes (the
   * passes below each read every node again, 40 MB for 200,000 nodes). */
  if (!wf->routes) {
    wf->in_all = fc__malloc((wf->ndeps > 0 ? wf->ndeps : 1) * sizeof *wf->in_all);
    if (wf->in_all == NULL)
      return fc__error_set(err, FC_ENOMEM, "", "out of memory");
    return deps_edges(wf, backward, err);
  }
  /* With routes, a route edge merges into a dependency edge from the same
   * node: the marks remember each target's last source (edge_add). */
  mark = fc__calloc(n, sizeof *mark);
  if (mark == NULL) {
    rc = fc__error_set(err, FC_ENOMEM, "", "out of memory");
    goto done;
  }
  for (i = 0; i < n && rc == 0; i++) {
    fc_node_t *node = wf->nodes[i];
    for (j = 0; j < node->ndeps && rc == 0; j++) {
      const fc__dep_t *dep = &node->deps[j];
      long d = dep->node != 0 ? (long)dep->node - 1 : table_find(wf, dep->id);
      if (d < 0) {
        rc = fc__error_set(err, FC_EUNKNOWNDEP, node->id,
                           "node \"%s\": depends on unknown node \"%.128s\"", node->id,
                           dep->id);
      } else {
        *backward |= (size_t)d >= i;
        rc = edge_add(wf, (uint32_t)d, (uint32_t)i, 0, mark);
      }
    }
  }
  for (i = 0; i < n && rc == 0; i++) {
    fc_node_t *node = wf->nodes[i];
    for (r = 0; r < fc__node_nroutes(node) && rc == 0; r++) {
      fc__route_t *rt = &node->extra->routes[r];
      if (strcmp(rt->name, "default") == 0)
        node->extra->default_route = (int16_t)r; /* < FC__MAX_ROUTES */
      for (j = 0; j < rt->ntargets && rc == 0; j++) {
        long t = table_find(wf, rt->targets[j]);
        if (t < 0)
          rc = fc__error_set(err, FC_EUNKNOWNDEP, node->id,
                             "node \"%s\": route \"%s\" targets unknown node \"%.128s\"",
                             node->id, rt->name, rt->targets[j]);
        else {
          *backward |= i >= (size_t)t;
          rc = edge_add(wf, (uint32_t)i, (uint32_t)t, (uint64_t)1 << r, mark);
        }
      }
    }
  }
  if (rc != 0)
    goto done;
  /* Fill the predecessor lists, all in one block. */
  for (i = 0, j = 0; i < n; i++)
    j += wf->nodes[i]->nin;
  wf->in_all = j < UINT32_MAX ? fc__malloc((j > 0 ? j : 1) * sizeof *wf->in_all) : NULL;
  if (wf->in_all == NULL) {
    rc = fc__error_set(err, FC_ENOMEM, "", "out of memory");
    goto done;
  }
  for (i = 0, j = 0; i < n; i++) {
    fc_node_t *node = wf->nodes[i];
    node->in = (uint32_t)j;
    j += node->nin;
    mark[i] = 0; /* reused as the fill count */
    if (node->nin == 0)
      wf->roots[wf->nroots++] = (uint32_t)i;
  }
  for (i = 0; i < n; i++) {
    fc_node_t *node = wf->nodes[i];
    for (j = 0; j < node->nout; j++) {
      const fc_node_t *dst = wf->nodes[node->out[j].to];
      wf->in_all[dst->in + mark[node->out[j].to]++] = (uint32_t)i;
    }
  }
done:
  fc__free(mark);
  return rc;
}

static int check_acyclic(fc_workflow_t *wf, fc_error_t *err) {
  size_t n = wf->nnodes, i, j, head = 0, tail = 0;
  uint32_t *indeg = fc__malloc(n * sizeof *indeg);
  uint32_t *queue = fc__malloc(n * sizeof *queue);
  int rc = 0;
  if (indeg == NULL || queue == NULL) {
    rc = fc__error_set(err, FC_ENOMEM, "", "out of memory");
    goto done;
  }
  for (i = 0; i < n; i++) {
    indeg[i] = (uint32_t)wf->nodes[i]->nin;
    if (indeg[i] == 0)
      queue[tail++] = (uint32_t)i;
  }
  while (head < tail) {
    fc_node_t *node = wf->nodes[queue[head++]];
    for (j = 0; j < node->nout; j++)
      if (--indeg[node->out[j].to] == 0)
        queue[tail++] = node->out[j].to;
  }
  if (tail < n)
    rc = report_cycle(wf, indeg, err);
done:
  fc__free(indeg);
  fc__free(queue);
  return rc;
}

static void reset_edges(fc_workflow_t *wf) {
  size_t i;
  for (i = 0; i < wf->nnodes; i++)
    node_edges_clear(wf->nodes[i]);
  fc__free(wf->in_all);
  fc__free(wf->roots);
  wf->in_all = NULL;
  wf->roots = NULL;
  wf->nroots = 0;
}

int fc_workflow_validate(fc_workflow_t *wf, fc_error_t *err) {
  int rc, backward = 0;
  if (wf == NULL)
    return fc__error_set(err, FC_EINVAL, "", "no workflow");
  if (wf->frozen)
    return 0;
  rc = check_names(wf, err);
  if (rc == 0 && wf->dup != 0)
    rc = fc__error_set(err, FC_EDUPLICATE, wf->nodes[wf->dup - 1]->id,
                       "node \"%s\" (#%u): duplicate id, already used by node #%u",
                       wf->nodes[wf->dup - 1]->id, wf->dup - 1, wf->dup_of - 1);
  if (rc == 0)
    rc = build_edges(wf, &backward, err);
  if (rc == 0 && backward)
    rc = check_acyclic(wf, err);
  if (rc != 0) {
    reset_edges(wf);
    return rc;
  }
  wf->frozen = 1;
  return 0;
}

/* ---- accessors ----------------------------------------------------------- */

const char *fc_workflow_name(const fc_workflow_t *wf) { return wf->name; }

size_t fc_workflow_node_count(const fc_workflow_t *wf) { return wf->nnodes; }

int fc_workflow_max_parallel(const fc_workflow_t *wf) { return wf->max_parallel; }

fc_node_t *fc_workflow_node_at(const fc_workflow_t *wf, size_t index) {
  return index < wf->nnodes ? wf->nodes[index] : NULL;
}

fc_node_t *fc_workflow_find_node(const fc_workflow_t *wf, const char *id) {
  long k;
  if (id == NULL)
    return NULL;
  k = table_find(wf, id);
  return k < 0 ? NULL : wf->nodes[k];
}

const char *fc_node_id(const fc_node_t *n) { return n->id; }

const char *fc_node_type(const fc_node_t *n) { return n->type; }
