/* Loading workflow files: JSON -> fc_workflow_t (see include/flowcore/loader.h).
 *
 * The loader checks everything it can and records every error (up to
 * FC_LOAD_MAX_ERRORS kept), so `flowcore validate` can list them all:
 *   1. the top level (fields, name, max_parallel, nodes);
 *   2. every node on its own: the fields every node has here, then its
 *      type's own fields by its type (src/nodes/node_type.h, one file per
 *      type, listed in src/nodes/registry.c); adding it to the workflow
 *      when its id is valid (with a placeholder function when the rest of
 *      it is not, so the graph checks still see it);
 *   3. the graph: duplicate ids and references to unknown nodes, all of them;
 *   4. if neither names nor references were wrong: fc_workflow_validate()
 *      for what only the whole graph shows (cycles), adding its error. */
#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/stat.h>

#include "internal.h"
#include "nodes/node_type.h"
#include "workflow_int.h"

/* ---- the error list -------------------------------------------------------- */

void fc_load_errors_init(fc_load_errors_t *errors) {
  if (errors != NULL)
    memset(errors, 0, sizeof *errors);
}

void fc_load_errors_free(fc_load_errors_t *errors) {
  if (errors == NULL)
    return;
  fc__free(errors->items);
  memset(errors, 0, sizeof *errors);
}

size_t fc_load_errors_total(const fc_load_errors_t *errors) {
  return errors == NULL ? 0 : errors->count + errors->omitted;
}

/* Strings the loader keeps past the node they came from (ids, pending
 * references): appended to blocks, freed all at once. */
typedef struct arena_block {
  struct arena_block *next;
  size_t used, cap;
  char data[];
} arena_block_t;

/* A reference (after[k] or routes.R[k]) to an id not seen when its node was
 * loaded; checked once every id is known. */
typedef struct {
  size_t index;
  const char *node_id; /* for messages, or NULL */
  const char *sub;
  const char *target;
  int route;
} pending_ref_t;

typedef struct {
  fc_load_errors_t *errors; /* may be NULL */
  size_t found;             /* errors of this load */
  int first_code;
  int structural; /* a bad name, a duplicate id or an unknown reference */
  int incomplete; /* some node could not be added to the workflow */
  int oom;
  int consume; /* the loader owns the tree: each node is freed once loaded */
  int defer_refs; /* a part's loader: references are checked after the merge */
  fc_workflow_t *wf;
  /* Of each node of the workflow (the first `noted`): its index in
   * "nodes"; NULL while node k is nodes[k] (json_index_of), so that a file
   * without errors needs no array of its size. */
  uint32_t *json_index;
  size_t cap_json_index, noted;
  pending_ref_t *pending;
  size_t npending, cap_pending;
  arena_block_t *arena;
  int lazy; /* FC_LOAD_LAZY_CONSTANTS */
  /* The text of the node being loaded, when it was parsed alone from the
   * file's text (scan_node) of a lazy load, else NULL:
   * fc__load_field_text reads it. */
  const char *node_text;
  size_t node_len;
} loader_t;

static void add_errorv(loader_t *L, int code, const char *where, const char *fmt, va_list ap) {
  fc_load_errors_t *e = L->errors;
  fc_error_t *item;
  L->found++;
  if (L->first_code == 0)
    L->first_code = code;
  if (e == NULL)
    return;
  if (e->count >= FC_LOAD_MAX_ERRORS ||
      fc__grow((void **)&e->items, &e->cap, e->count + 1, sizeof *e->items) != 0) {
    e->omitted++;
    return;
  }
  item = &e->items[e->count++];
  item->code = code;
  snprintf(item->where, sizeof item->where, "%s", where != NULL ? where : "");
  vsnprintf(item->text, sizeof item->text, fmt, ap);
}

static void add_error(loader_t *L, int code, const char *where, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;

static void add_error(loader_t *L, int code, const char *where, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  add_errorv(L, code, where, fmt, ap);
  va_end(ap);
}

static void add_oom(loader_t *L) {
  if (!L->oom)
    add_error(L, FC_ENOMEM, "", "out of memory");
  L->oom = 1;
}

/* ---- ids and pending references ---------------------------------------------- */

static const char *arena_dup(loader_t *L, const char *s) {
  size_t n = strlen(s) + 1;
  arena_block_t *b = L->arena;
  char *out;
  if (b == NULL || b->cap - b->used < n) {
    size_t cap = n > 65536 ? n : 65536;
    b = fc__malloc(sizeof *b + cap);
    if (b == NULL) {
      add_oom(L);
      return NULL;
    }
    b->next = L->arena;
    b->used = 0;
    b->cap = cap;
    L->arena = b;
  }
  out = b->data + b->used;
  memcpy(out, s, n);
  b->used += n;
  return out;
}

static void loader_free(loader_t *L) {
  while (L->arena != NULL) {
    arena_block_t *next = L->arena->next;
    fc__free(L->arena);
    L->arena = next;
  }
  fc__free(L->json_index);
  fc__free(L->pending);
  L->json_index = NULL;
  L->pending = NULL;
  L->cap_json_index = L->noted = L->npending = L->cap_pending = 0;
}

/* The index in "nodes" of workflow node k (< L->noted). */
static size_t json_index_of(const loader_t *L, size_t k) {
  return L->json_index != NULL ? L->json_index[k] : k;
}

/* Makes room in json_index for n nodes, with the indexes so far written
 * out when they were node k -> nodes[k]. 0 or -1 (out of memory). */
static int json_index_reserve(loader_t *L, size_t n) {
  size_t k;
  int was_null = L->json_index == NULL;
  if (fc__grow((void **)&L->json_index, &L->cap_json_index, n > 0 ? n : 1,
               sizeof *L->json_index) != 0)
    return -1;
  for (k = 0; was_null && k < L->noted; k++)
    L->json_index[k] = (uint32_t)k;
  return 0;
}

/* The index in "nodes" of the node called id, or -1. The workflow's own
 * table finds it: every node with a usable id that is not a duplicate is
 * in the workflow (as a placeholder when it has errors). */
static long ids_find(const loader_t *L, const char *id) {
  fc_node_t *n = L->wf != NULL ? fc_workflow_find_node(L->wf, id) : NULL;
  return n != NULL && n->index < L->noted ? (long)json_index_of(L, n->index) : -1;
}

/* Whether id names a node loaded so far: first the last one (a file most
 * often lists a node right after the one it depends on), then the table. */
static int ref_known(const loader_t *L, const char *id) {
  size_t n = L->wf != NULL ? fc_workflow_node_count(L->wf) : 0;
  if (n > 0 && n <= L->noted && fc__streq(fc_node_id(fc_workflow_node_at(L->wf, n - 1)), id))
    return 1;
  return ids_find(L, id) >= 0;
}

/* Remembers a reference (after[k], or routes.<route>[k] when route is not
 * NULL) to check once every id is known, unless its target is known now. */
static void note_ref(loader_t *L, size_t index, const char *node_id, const char *route, size_t k,
                     const json_t *v) {
  pending_ref_t *p;
  char sub[160], rshown[80];
  if (!json_is_string(v) || json_string_length(v) == 0 || ref_known(L, json_string_value(v)))
    return;
  if (fc__grow((void **)&L->pending, &L->cap_pending, L->npending + 1, sizeof *L->pending) != 0) {
    add_oom(L);
    return;
  }
  if (route != NULL)
    snprintf(sub, sizeof sub, "routes.%s[%zu]", fc__load_show(rshown, sizeof rshown, route, 64), k);
  else
    snprintf(sub, sizeof sub, "after[%zu]", k);
  p = &L->pending[L->npending];
  p->index = index;
  p->route = route != NULL;
  p->node_id = node_id != NULL ? arena_dup(L, node_id) : NULL;
  p->sub = arena_dup(L, sub);
  p->target = arena_dup(L, json_string_value(v));
  if (p->sub != NULL && p->target != NULL)
    L->npending++;
}

/* ---- text helpers ------------------------------------------------------------ */

/* Copies up to `max` bytes of s into buf for a message: printable ASCII as
 * is, anything else as '?', "..." appended when s is longer. Hostile names
 * (10 MB, control characters) stay short and harmless. */
const char *fc__load_show(char *buf, size_t size, const char *s, size_t max) {
  size_t i;
  if (max + 4 > size)
    max = size - 4;
  for (i = 0; s[i] != '\0' && i < max; i++) {
    unsigned char c = (unsigned char)s[i];
    buf[i] = (c >= 0x20 && c < 0x7F) ? (char)c : '?';
  }
  if (s[i] != '\0') {
    memcpy(buf + i, "...", 3);
    i += 3;
  }
  buf[i] = '\0';
  return buf;
}

/* Edit distance, capped: returns > cap as soon as it is clear. */
static size_t edit_distance(const char *a, const char *b) {
  size_t la = strlen(a), lb = strlen(b), i, j;
  size_t row[33], prev;
  if (la > 32 || lb > 32)
    return 99;
  for (j = 0; j <= lb; j++)
    row[j] = j;
  for (i = 1; i <= la; i++) {
    prev = row[0];
    row[0] = i;
    for (j = 1; j <= lb; j++) {
      size_t cur = row[j];
      size_t best = prev + (a[i - 1] == b[j - 1] ? 0 : 1);
      if (row[j] + 1 < best)
        best = row[j] + 1;
      if (row[j - 1] + 1 < best)
        best = row[j - 1] + 1;
      row[j] = best;
      prev = cur;
    }
  }
  return row[lb];
}

/* The closest of some known names to `name`, for a "did you mean" hint. */
typedef struct {
  const char *name;
  const char *best;
  size_t distance;
} closest_t;

static void closest_init(closest_t *c, const char *name) {
  c->name = name;
  c->best = NULL;
  c->distance = 3;
}

static void closest_add(closest_t *c, const char *known) {
  size_t d = edit_distance(c->name, known);
  if (d < c->distance) {
    c->distance = d;
    c->best = known;
  }
}

/* " (did you mean \"x\"?)" for the closest name when it is close enough,
 * or "". */
static const char *closest_hint(const closest_t *c, char *buf, size_t size) {
  buf[0] = '\0';
  if (c->best != NULL && c->distance <= (strlen(c->best) > 4 ? 2u : 1u))
    snprintf(buf, size, " (did you mean \"%s\"?)", c->best);
  return buf;
}

/* The hint for `name` among the n names of `known`. */
static const char *suggest(char *buf, size_t size, const char *name, const char *const *known,
                           size_t n) {
  closest_t c;
  size_t i;
  closest_init(&c, name);
  for (i = 0; i < n; i++)
    closest_add(&c, known[i]);
  return closest_hint(&c, buf, size);
}

static int has_nul(const json_t *s) {
  return strlen(json_string_value(s)) != json_string_length(s);
}

/* ---- node errors ----------------------------------------------------------- */

struct fc__load_node {
  loader_t *L;
  size_t index;
  const char *id; /* valid id for messages, else NULL */
  int errors;     /* errors in this node */
};

void fc__load_error(fc__load_node_t *N, int code, const char *sub, const char *fmt, ...) {
  char where[FC_ERROR_WHERE_LENGTH], idpart[FC_NAME_MAX + 16] = "", msg[FC_ERROR_TEXT_LENGTH];
  va_list ap;
  snprintf(where, sizeof where, "nodes[%zu]%s%s", N->index, sub != NULL ? "." : "",
           sub != NULL ? sub : "");
  if (N->id != NULL)
    snprintf(idpart, sizeof idpart, " (id \"%s\")", N->id);
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  N->errors++;
  add_error(N->L, code, where, "%s%s: %s", where, idpart, msg);
}

/* ---- value checks -------------------------------------------------------------- */

/* fc__load_uint for the value v of node[key] (NULL: absent). */
static int load_uint_value(fc__load_node_t *N, const json_t *v, const char *key, uint64_t min,
                           uint64_t max, uint64_t *out) {
  json_int_t x;
  if (v == NULL)
    return 0;
  x = json_is_integer(v) ? json_integer_value(v) : -1;
  if (x < 0) {
    fc__load_error(N, FC_EDEFINITION, key, "expected a non-negative integer");
    return 0;
  }
  if ((uint64_t)x < min || (uint64_t)x > max) {
    fc__load_error(N, FC_EDEFINITION, key, "expected an integer from %llu to %llu, got %lld",
                   (unsigned long long)min, (unsigned long long)max, (long long)x);
    return 0;
  }
  *out = (uint64_t)x;
  return 1;
}

int fc__load_uint(fc__load_node_t *N, json_t *node, const char *key, uint64_t min, uint64_t max,
                  uint64_t *out) {
  return load_uint_value(N, json_object_get(node, key), key, min, max, out);
}

int fc__load_string(fc__load_node_t *N, json_t *v, const char *sub, int non_empty) {
  if (!json_is_string(v)) {
    fc__load_error(N, FC_EDEFINITION, sub, "expected a string");
    return 0;
  }
  if (has_nul(v)) {
    fc__load_error(N, FC_EDEFINITION, sub, "contains a NUL character");
    return 0;
  }
  if (non_empty && json_string_length(v) == 0) {
    fc__load_error(N, FC_EDEFINITION, sub, "must not be empty");
    return 0;
  }
  return 1;
}

/* Whether fc__load_string(N, v, sub, 1) would pass: lets a caller format the
 * sub-path only for a value it reports. */
static int good_id_string(const json_t *v) {
  return json_is_string(v) && json_string_length(v) != 0 && !has_nul(v);
}

/* ---- node fields ----------------------------------------------------------------- */

/* The fields of every node; each type adds its own (src/nodes/node_type.h). */
static const char *const common_fields[] = {
    "id",         "type",    "description",      "after",
    "routes",     "retries", "retry_backoff_ms", "retry_backoff_max_ms",
    "timeout_ms", NULL};

/* Their indexes in common_fields. */
enum { F_ID, F_TYPE, F_DESCRIPTION, F_AFTER, F_ROUTES, F_RETRIES, F_BACKOFF, F_BACKOFF_MAX,
       F_TIMEOUT, F_COUNT };

/* The index of key in common_fields, or -1: one look at the node's keys
 * finds every common field (json_object_get hashes the key each time). */
static int common_field(const char *key) {
  int i;
  for (i = 0; i < F_COUNT; i++)
    if (fc__streq(key, common_fields[i]))
      return i;
  return -1;
}

/* A node's common fields (NULL: absent), how many other keys it has and
 * the first NODE_OTHERS of those, in the node's order. */
#define NODE_OTHERS 8
typedef struct {
  json_t *f[F_COUNT];
  size_t others;
  const char *other[NODE_OTHERS];
} node_fields_t;

static void node_fields(json_t *node, node_fields_t *nf) {
  const char *key;
  json_t *v;
  memset(nf->f, 0, sizeof nf->f);
  nf->others = 0;
  json_object_foreach (node, key, v) {
    int i = common_field(key);
    if (i >= 0)
      nf->f[i] = v;
    else if (nf->others++ < NODE_OTHERS)
      nf->other[nf->others - 1] = key;
  }
}

static int has_field(const char *const *fields, const char *key) {
  size_t i;
  for (i = 0; fields != NULL && fields[i] != NULL; i++)
    if (fc__streq(fields[i], key))
      return 1;
  return 0;
}

/* The names of the types that have `field` among their own fields (every
 * type when field is NULL) as "a", "a or b", "a, b or c"; "" for none. */
static const char *type_names(char *buf, size_t size, const char *field) {
  size_t i, n = 0, at = 0, used = 0;
  for (i = 0; i < fc__node_type_count; i++)
    if (field == NULL || has_field(fc__node_types[i]->fields, field))
      n++;
  buf[0] = '\0';
  for (i = 0; i < fc__node_type_count; i++) {
    int w;
    if (field != NULL && !has_field(fc__node_types[i]->fields, field))
      continue;
    at++;
    w = snprintf(buf + used, size - used, "%s%s",
                 at == 1   ? ""
                 : at == n ? " or "
                           : ", ",
                 fc__node_types[i]->name);
    if (w < 0 || (size_t)w >= size - used)
      break;
    used += (size_t)w;
  }
  return buf;
}

/* A key that is not a common field must be one of the node's type; when
 * the type is unknown (NULL), any type's field is accepted. */
static void check_node_key(fc__load_node_t *N, const char *key, const fc__node_type_t *type) {
  char shown[80], hint[64], owners[128];
  size_t i, k;
  if (type != NULL && has_field(type->fields, key))
    return;
  type_names(owners, sizeof owners, key);
  if (owners[0] == '\0') {
    closest_t c;
    closest_init(&c, key);
    for (k = 0; common_fields[k] != NULL; k++)
      closest_add(&c, common_fields[k]);
    for (i = 0; i < fc__node_type_count; i++)
      for (k = 0; fc__node_types[i]->fields != NULL && fc__node_types[i]->fields[k] != NULL; k++)
        closest_add(&c, fc__node_types[i]->fields[k]);
    fc__load_error(N, FC_EDEFINITION, NULL, "unknown field \"%s\"%s",
                   fc__load_show(shown, sizeof shown, key, 64),
                   closest_hint(&c, hint, sizeof hint));
  } else if (type != NULL) {
    fc__load_error(N, FC_EDEFINITION, NULL,
                   "field \"%s\" does not apply to type \"%s\" (it belongs to %s nodes)", key,
                   type->name, owners);
  }
}

/* The keys of the node that are not common fields (nf->others of them),
 * in the node's order. */
static void check_node_keys(fc__load_node_t *N, json_t *node, const node_fields_t *nf,
                            const fc__node_type_t *type) {
  const char *key;
  json_t *v;
  size_t i;
  if (nf->others <= NODE_OTHERS) {
    for (i = 0; i < nf->others; i++)
      check_node_key(N, nf->other[i], type);
    return;
  }
  json_object_foreach (node, key, v) {
    (void)v;
    if (common_field(key) < 0)
      check_node_key(N, key, type);
  }
}

/* Checks "after" (an array of strings); ids are resolved later. */
static void check_after(fc__load_node_t *N, json_t *after) {
  json_t *v;
  size_t k;
  if (after == NULL)
    return;
  if (!json_is_array(after)) {
    fc__load_error(N, FC_EDEFINITION, "after", "expected an array of node ids");
    return;
  }
  json_array_foreach (after, k, v) {
    char sub[32];
    if (good_id_string(v))
      continue;
    snprintf(sub, sizeof sub, "after[%zu]", k);
    fc__load_string(N, v, sub, 1);
  }
}

static void check_routes(fc__load_node_t *N, json_t *routes) {
  json_t *targets, *v;
  const char *route;
  size_t k;
  if (routes == NULL)
    return;
  if (!json_is_object(routes)) {
    fc__load_error(N, FC_EDEFINITION, "routes",
                   "expected an object mapping route names to arrays of node ids");
    return;
  }
  if (json_object_size(routes) == 0)
    fc__load_error(N, FC_EDEFINITION, "routes", "must name at least one route");
  if (json_object_size(routes) > 64)
    fc__load_error(N, FC_EDEFINITION, "routes", "more than 64 routes");
  json_object_foreach (routes, route, targets) {
    char sub[FC_NAME_MAX + 48], shown[80];
    fc__load_show(shown, sizeof shown, route, 64);
    snprintf(sub, sizeof sub, "routes.%s", shown);
    if (!fc__name_valid(route, FC_NAME_MAX, 0)) {
      fc__load_error(N, FC_EBADNAME, sub,
                     "invalid route name: use 1-%d characters of A-Z a-z 0-9 _ . : -", FC_NAME_MAX);
      N->L->structural = 1;
    }
    if (!json_is_array(targets) || json_array_size(targets) == 0) {
      fc__load_error(N, FC_EDEFINITION, sub, "expected a non-empty array of node ids");
      continue;
    }
    json_array_foreach (targets, k, v) {
      char item[FC_NAME_MAX + 80];
      if (good_id_string(v))
        continue;
      snprintf(item, sizeof item, "%s[%zu]", sub, k);
      fc__load_string(N, v, item, 1);
    }
  }
}

/* The node's id, or NULL after an error. */
static const char *check_id(fc__load_node_t *N, json_t *jid) {
  if (jid == NULL) {
    fc__load_error(N, FC_EDEFINITION, NULL, "missing required field \"id\"");
  } else if (!json_is_string(jid)) {
    fc__load_error(N, FC_EDEFINITION, "id", "expected a string");
  } else if (!fc__name_valid(json_string_value(jid), FC_NAME_MAX, 0) || has_nul(jid)) {
    char shown[80];
    fc__load_error(N, FC_EBADNAME, "id",
                   "invalid id \"%s\" (%zu bytes): use 1-%d characters of A-Z a-z 0-9 _ . : -",
                   fc__load_show(shown, sizeof shown, json_string_value(jid), 64),
                   json_string_length(jid), FC_NAME_MAX);
    N->L->structural = 1;
  } else if (fc__streq(json_string_value(jid), "input")) {
    fc__load_error(N, FC_EBADNAME, "id",
                   "the id \"input\" is reserved (a node's input holds the workflow input under "
                   "that key)");
    N->L->structural = 1;
  } else {
    return json_string_value(jid);
  }
  return NULL;
}

/* The node's type (src/nodes/registry.c), or NULL after an error. */
static const fc__node_type_t *check_type(fc__load_node_t *N, json_t *jtype) {
  const fc__node_type_t *type;
  char names[256];
  if (jtype == NULL) {
    fc__load_error(N, FC_EDEFINITION, NULL, "missing required field \"type\" (%s)",
                   type_names(names, sizeof names, NULL));
    return NULL;
  }
  if (!json_is_string(jtype)) {
    fc__load_error(N, FC_EDEFINITION, "type", "expected a string");
    return NULL;
  }
  type = fc__node_type_find(json_string_value(jtype));
  if (type == NULL) {
    char shown[80], hint[64];
    closest_t c;
    size_t i;
    closest_init(&c, json_string_value(jtype));
    for (i = 0; i < fc__node_type_count; i++)
      closest_add(&c, fc__node_types[i]->name);
    fc__load_error(N, FC_EDEFINITION, "type", "unknown type \"%s\"%s: expected %s",
                   fc__load_show(shown, sizeof shown, json_string_value(jtype), 64),
                   closest_hint(&c, hint, sizeof hint), type_names(names, sizeof names, NULL));
  }
  return type;
}

/* What the engine does on failure and how long an attempt may take. */
typedef struct {
  uint64_t retries, backoff, backoff_max, timeout;
} retry_t;

static void check_retry(fc__load_node_t *N, const node_fields_t *nf, retry_t *r) {
  int have_backoff_max;
  memset(r, 0, sizeof *r);
  load_uint_value(N, nf->f[F_RETRIES], "retries", 0, 1000000, &r->retries);
  load_uint_value(N, nf->f[F_BACKOFF], "retry_backoff_ms", 0, (uint64_t)1 << 40, &r->backoff);
  have_backoff_max = load_uint_value(N, nf->f[F_BACKOFF_MAX], "retry_backoff_max_ms", 0,
                                     (uint64_t)1 << 40, &r->backoff_max);
  if (have_backoff_max && r->backoff_max < r->backoff)
    fc__load_error(N, FC_EDEFINITION, "retry_backoff_max_ms",
                   "must not be less than retry_backoff_ms (%llu)", (unsigned long long)r->backoff);
  load_uint_value(N, nf->f[F_TIMEOUT], "timeout_ms", 0, (uint64_t)1 << 40, &r->timeout);
  if (!have_backoff_max)
    r->backoff_max = r->backoff > 60000 ? r->backoff : 60000;
}

/* Notes `index` as the place in "nodes" of the workflow's nodes added
 * since the last call (one, or none when adding failed). 0 or -1 (out of
 * memory). */
static int note_json_index(loader_t *L, size_t index) {
  size_t k, n = fc_workflow_node_count(L->wf);
  if (L->json_index == NULL && (n == L->noted || (n == L->noted + 1 && index == L->noted))) {
    L->noted = n; /* node k is still nodes[k] */
    return 0;
  }
  if (json_index_reserve(L, n) != 0) {
    add_oom(L);
    return -1;
  }
  for (k = L->noted; k < n; k++)
    L->json_index[k] = (uint32_t)index;
  L->noted = n;
  return 0;
}

/* Adds the checked node `id`: its type's node when it had no error,
 * otherwise a placeholder that still takes part in the graph checks; then
 * its well-formed dependencies and routes (unknown ids are reported by the
 * graph pass), retries and timeout. */
static void add_node(fc__load_node_t *N, json_t *node, const node_fields_t *nf, const char *id,
                     const fc__node_type_t *type, const retry_t *r) {
  loader_t *L = N->L;
  fc_node_t *n = NULL;
  json_t *v;
  size_t k;
  int rc = 0;
  if (N->errors == 0 && type != NULL) {
    rc = L->consume && type->add_owned != NULL ? type->add_owned(N, L->wf, id, node, &n)
                                                : type->add(L->wf, id, node, &n);
    if (rc != 0 && rc != FC_ENOMEM) {
      fc__load_error(N, rc, NULL, "cannot add the node: %s", fc_strerror(rc));
      L->incomplete = 1;
      n = NULL;
    }
  }
  if (n == NULL && rc != FC_ENOMEM)
    rc = fc_workflow_add_pass_node(L->wf, id, &n); /* placeholder, never run */
  if (note_json_index(L, N->index) != 0 || rc != 0 || n == NULL) {
    if (rc == FC_ENOMEM || L->oom)
      add_oom(L);
    else
      fc__load_error(N, rc, NULL, "cannot add the node: %s", fc_strerror(rc));
    L->incomplete = 1;
    return;
  }
  v = nf->f[F_AFTER];
  if (json_is_array(v)) {
    json_t *d;
    json_array_foreach (v, k, d)
      if (json_is_string(d) && fc_node_add_dep(n, json_string_value(d)) == FC_ENOMEM)
        add_oom(L);
  }
  v = nf->f[F_ROUTES];
  if (json_is_object(v)) {
    const char *route;
    json_t *targets, *d;
    json_object_foreach (v, route, targets) {
      if (!json_is_array(targets) || route[0] == '\0')
        continue;
      json_array_foreach (targets, k, d)
        if (json_is_string(d) && fc_node_add_route(n, route, json_string_value(d)) == FC_ENOMEM)
          add_oom(L);
    }
  }
  if (fc_node_set_retries(n, (int)r->retries, r->backoff, r->backoff_max) != 0 ||
      fc_node_set_timeout(n, r->timeout) != 0)
    add_oom(L);
}

/* Notes the references of one node (after[] and routes) that name no node
 * seen so far; report_refs() reports those that name no node at all. */
static void collect_refs(loader_t *L, size_t index, const node_fields_t *nf) {
  json_t *jid = nf->f[F_ID], *after, *routes, *targets, *v;
  const char *route, *id = NULL;
  size_t k;
  if (json_is_string(jid) && fc__name_valid(json_string_value(jid), FC_NAME_MAX, 0))
    id = json_string_value(jid);
  after = nf->f[F_AFTER];
  json_array_foreach (after, k, v)
    note_ref(L, index, id, NULL, k, v);
  routes = nf->f[F_ROUTES];
  json_object_foreach (routes, route, targets)
    json_array_foreach (targets, k, v)
      note_ref(L, index, id, route, k, v);
}

/* Reports every reference to an unknown node, in the order of the file. */
static void report_refs(loader_t *L) {
  size_t i;
  for (i = 0; i < L->npending; i++) {
    const pending_ref_t *p = &L->pending[i];
    fc__load_node_t N = {L, p->index, p->node_id, 0};
    char shown[80];
    if (ids_find(L, p->target) >= 0)
      continue;
    fc__load_error(&N, FC_EUNKNOWNDEP, p->sub,
                   p->route ? "route targets unknown node \"%s\""
                            : "depends on unknown node \"%s\"",
                   fc__load_show(shown, sizeof shown, p->target, 64));
    L->structural = 1;
  }
}

/* Validates one node and, when its id is usable, adds it to the workflow. */
static void load_node_checked(loader_t *L, size_t index, json_t *node) {
  fc__load_node_t N = {L, index, NULL, 0};
  const fc__node_type_t *type;
  const char *id;
  retry_t retry;
  node_fields_t nf;
  long first;

  if (!json_is_object(node)) {
    fc__load_error(&N, FC_EDEFINITION, NULL, "expected an object");
    L->incomplete = 1;
    return;
  }
  node_fields(node, &nf);
  if (L->wf != NULL && json_is_string(nf.f[F_ID]))
    fc__workflow_prefetch_id(L->wf, json_string_value(nf.f[F_ID]));
  id = check_id(&N, nf.f[F_ID]);
  N.id = id;
  if (id == NULL)
    L->incomplete = 1;
  type = check_type(&N, nf.f[F_TYPE]);
  if (nf.others > 0)
    check_node_keys(&N, node, &nf, type);
  if (nf.f[F_DESCRIPTION] != NULL && !json_is_string(nf.f[F_DESCRIPTION]))
    fc__load_error(&N, FC_EDEFINITION, "description", "expected a string");
  check_after(&N, nf.f[F_AFTER]);
  check_routes(&N, nf.f[F_ROUTES]);
  check_retry(&N, &nf, &retry);
  if (type != NULL && type->check != NULL)
    type->check(&N, node);

  if (!L->defer_refs)
    collect_refs(L, index, &nf);
  if (id == NULL)
    return;
  /* Duplicate ids: the node is not added (the first one stays). */
  if ((first = ids_find(L, id)) >= 0) {
    fc__load_error(&N, FC_EDUPLICATE, "id", "duplicate id, already used by nodes[%ld]", first);
    L->structural = 1;
    return;
  }
  if (L->oom)
    return;
  add_node(&N, node, &nf, id, type, &retry);
}

/* The same; the workflow forgets the id it was told of (its string is
 * freed with the node's JSON). */
static void load_node(loader_t *L, size_t index, json_t *node) {
  load_node_checked(L, index, node);
  if (L->wf != NULL)
    fc__workflow_prefetch_id(L->wf, NULL);
  L->node_text = NULL;
}

/* ---- the document ------------------------------------------------------------------ */

static const char *const top_fields[] = {"name", "description", "max_parallel", "input", "nodes"};

/* The top level but its nodes: every field known, name, description,
 * max_parallel. Returns the name the workflow gets and sets *jmax to a
 * valid max_parallel or NULL. */
static const char *check_top(loader_t *L, json_t *root, json_t **jmax) {
  json_t *jname, *v;
  const char *key, *name = "workflow";
  size_t i;

  json_object_foreach (root, key, v) {
    char shown[80], hint[64];
    for (i = 0; i < FC__ARRAY_SIZE(top_fields); i++)
      if (strcmp(top_fields[i], key) == 0)
        break;
    if (i == FC__ARRAY_SIZE(top_fields))
      add_error(L, FC_EDEFINITION, fc__load_show(shown, sizeof shown, key, 64),
                "unknown top-level field \"%s\"%s", shown,
                suggest(hint, sizeof hint, key, top_fields, FC__ARRAY_SIZE(top_fields)));
  }
  jname = json_object_get(root, "name");
  if (jname == NULL) {
    add_error(L, FC_EDEFINITION, "name", "missing required field \"name\" (the workflow name)");
    L->structural = 1;
  } else if (!json_is_string(jname)) {
    add_error(L, FC_EDEFINITION, "name", "name: expected a string");
    L->structural = 1;
  } else if (has_nul(jname) || !fc__name_valid(json_string_value(jname), FC_WORKFLOW_NAME_MAX, 1)) {
    char shown[80];
    add_error(L, FC_EBADNAME, "name",
              "name: invalid workflow name \"%s\": use 1-%d characters of A-Z a-z 0-9 _ . : - "
              "(and inner spaces)",
              fc__load_show(shown, sizeof shown, json_string_value(jname), 64),
              FC_WORKFLOW_NAME_MAX);
    L->structural = 1;
  } else {
    name = json_string_value(jname);
  }
  if ((v = json_object_get(root, "description")) != NULL && !json_is_string(v))
    add_error(L, FC_EDEFINITION, "description", "description: expected a string");
  *jmax = json_object_get(root, "max_parallel");
  if (*jmax != NULL && (!json_is_integer(*jmax) || json_integer_value(*jmax) < 0 ||
                        json_integer_value(*jmax) > 1000000)) {
    add_error(L, FC_EDEFINITION, "max_parallel",
              "max_parallel: expected an integer from 0 (unlimited) to 1000000");
    *jmax = NULL;
  }
  return name;
}

/* Makes the workflow the nodes are added to; 0 or -1 (out of memory). */
static int start_workflow(loader_t *L, const char *name, const json_t *jmax) {
  if (fc_workflow_new(&L->wf, name) != 0) {
    add_oom(L);
    return -1;
  }
  if (jmax != NULL)
    (void)fc_workflow_set_max_parallel(L->wf, (int)json_integer_value(jmax));
  return 0;
}

/* Once every node is loaded: unknown references, then what only the whole
 * graph shows, then the input when all is well. */
static void finish_workflow(loader_t *L, json_t *root, json_t **input_out) {
  json_t *v;
  int rc;
  report_refs(L);
  loader_free(L); /* the references */
  if (!L->structural && !L->incomplete) {
    fc_error_t err;
    fc_error_clear(&err);
    rc = fc_workflow_validate(L->wf, &err);
    if (rc != 0)
      add_error(L, rc, err.where, "%s", err.text[0] != '\0' ? err.text : fc_strerror(rc));
  }
  if (L->found == 0 && input_out != NULL) {
    v = json_object_get(root, "input");
    *input_out = v != NULL ? json_incref(v) : NULL;
  }
}

static void load_root(loader_t *L, json_t *root, json_t **input_out) {
  json_t *jmax, *nodes, *node;
  const char *name;
  size_t i;

  if (!json_is_object(root)) {
    add_error(L, FC_EDEFINITION, "", "expected a JSON object at the top level");
    return;
  }
  name = check_top(L, root, &jmax);
  nodes = json_object_get(root, "nodes");
  if (nodes == NULL) {
    add_error(L, FC_EDEFINITION, "nodes", "missing required field \"nodes\" (an array of nodes)");
    return;
  }
  if (!json_is_array(nodes) || json_array_size(nodes) == 0) {
    add_error(L, FC_EDEFINITION, "nodes", "nodes: expected a non-empty array of nodes");
    return;
  }
  if (json_array_size(nodes) > FC_LOAD_MAX_NODES) {
    add_error(L, FC_EDEFINITION, "nodes", "nodes: %zu nodes, more than the limit of %d",
              json_array_size(nodes), FC_LOAD_MAX_NODES);
    return;
  }
  if (start_workflow(L, name, jmax) != 0)
    return;
  json_array_foreach (nodes, i, node) {
    load_node(L, i, node);
    if (L->consume) /* what the node needs is in the workflow now */
      (void)json_array_set_new(nodes, i, json_null());
    if (L->oom)
      return;
  }
  finish_workflow(L, root, input_out);
}

/* Frees the loader; hands the workflow over when the load found no error,
 * otherwise frees it (and the input) and returns the first error's code. */
static int loader_end(loader_t *L, fc_workflow_t **wf_out, json_t **input_out) {
  loader_free(L);
  if (L->found > 0) {
    fc_workflow_free(L->wf);
    if (input_out != NULL && *input_out != NULL) {
      json_decref(*input_out);
      *input_out = NULL;
    }
    return L->first_code;
  }
  *wf_out = L->wf;
  return 0;
}

/* Loads root; `consume`: root is the loader's own tree (one reference),
 * taken apart as it is read so that the tree and the workflow are not both
 * whole in memory at once. */
static int load_json(json_t *root, int consume, fc_workflow_t **wf_out, json_t **input_out,
                     fc_load_errors_t *errors) {
  loader_t L;
  if (wf_out != NULL)
    *wf_out = NULL;
  if (input_out != NULL)
    *input_out = NULL;
  memset(&L, 0, sizeof L);
  L.errors = errors;
  L.consume = consume;
  if (wf_out == NULL) {
    add_error(&L, FC_EINVAL, "", "no output pointer for the workflow");
    return FC_EINVAL;
  }
  load_root(&L, root, input_out);
  return loader_end(&L, wf_out, input_out);
}

int fc_workflow_load_json(json_t *root, fc_workflow_t **wf_out, json_t **input_out,
                          fc_load_errors_t *errors) {
  return load_json(root, 0, wf_out, input_out, errors);
}

/* ---- one node at a time ------------------------------------------------------------------ */

/* A file is loaded without its whole JSON tree when it has the usual shape:
 * an object whose last field is "nodes", an array. A small scanner walks
 * the top level (whitespace, '{', ':', ',', '[', ']', '}') and hands each
 * key, each other field's value and each element of "nodes" to jansson
 * (json_loadb with JSON_DISABLE_EOF_CHECK, which parses one value and says
 * in error.position how many bytes it used); each node is checked, added
 * and freed before the next is parsed. The other fields come before
 * "nodes", so the top level is checked first, as for a whole tree. When
 * the text has another shape, or jansson rejects any part of it, or a part
 * would be deeper than jansson allows in the whole document, or there are
 * more nodes than the limit, what was loaded is dropped and the text is
 * parsed whole as before: syntax errors, their line:column and every other
 * message stay exactly those of the whole parse. */

typedef struct {
  const char *text;
  size_t len, pos;
} scan_t;

static int is_ws(char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; }

static void scan_ws(scan_t *s) {
  while (s->pos < s->len && is_ws(s->text[s->pos]))
    s->pos++;
}

/* A hint, not a parse: when the next value's text begins {"id":"...", with
 * a plain string (no escape) of at most FC_NAME_MAX bytes, asks the CPU
 * to fetch that id's slot of the id table while jansson parses the node.
 * The slot is a cache miss in a table of megabytes, which the look-up
 * for duplicates otherwise waited for (5% of a 200,000-node file's load).
 * Whatever the text is, the node is then parsed and checked as ever. */
static void peek_id(const fc_workflow_t *wf, const scan_t *s) {
  static const char key[] = "\"id\"";
  const char *t = s->text;
  size_t p = s->pos, n;
  if (wf == NULL || p >= s->len || t[p] != '{')
    return;
  for (p++; p < s->len && is_ws(t[p]); p++)
    ;
  if (s->len - p < sizeof key - 1 || memcmp(t + p, key, sizeof key - 1) != 0)
    return;
  for (p += sizeof key - 1; p < s->len && is_ws(t[p]); p++)
    ;
  if (p >= s->len || t[p] != ':')
    return;
  for (p++; p < s->len && is_ws(t[p]); p++)
    ;
  if (p >= s->len || t[p] != '"')
    return;
  p++;
  for (n = 0; n <= FC_NAME_MAX && p + n < s->len; n++) {
    if (t[p + n] == '"') {
      fc__workflow_prefetch_text(wf, t + p, n);
      return;
    }
    if (t[p + n] == '\\')
      return;
  }
}

/* Skips JSON whitespace, then takes `c` if it is next. */
static int scan_char(scan_t *s, char c) {
  scan_ws(s);
  if (s->pos < s->len && s->text[s->pos] == c) {
    s->pos++;
    return 1;
  }
  return 0;
}

/* The deepest nesting of arrays and objects in t[0..n), valid JSON. */
static size_t nesting(const char *t, size_t n) {
  size_t i, depth = 0, max = 0;
  int in_string = 0;
  for (i = 0; i < n; i++) {
    if (in_string) {
      if (t[i] == '\\')
        i++;
      else if (t[i] == '"')
        in_string = 0;
    } else if (t[i] == '"') {
      in_string = 1;
    } else if (t[i] == '[' || t[i] == '{') {
      if (++depth > max)
        max = depth;
    } else if (t[i] == ']' || t[i] == '}') {
      depth--;
    }
  }
  return max;
}

/* The value after s->pos (and whitespace), `depth` values deep in the
 * document (1: a top-level field's), parsed by jansson; NULL when jansson
 * rejects it or, within the whole document, would reach its depth limit. */
static json_t *scan_value(scan_t *s, size_t depth) {
  json_error_t jerr;
  size_t used;
  json_t *v;
  scan_ws(s);
  v = json_loadb(s->text + s->pos, s->len - s->pos,
                 JSON_DECODE_ANY | JSON_DISABLE_EOF_CHECK | JSON_REJECT_DUPLICATES, &jerr);
  if (v == NULL)
    return NULL;
  used = jerr.position > 0 ? (size_t)jerr.position : 0;
  /* jansson counts every value's level; a value of `used` bytes has at
   * most `used` levels of arrays and objects plus one of scalars. */
  if (used == 0 || used > s->len - s->pos ||
      (depth + used + 1 > JSON_PARSER_MAX_DEPTH &&
       depth + nesting(s->text + s->pos, used) + 1 > JSON_PARSER_MAX_DEPTH)) {
    json_decref(v);
    return NULL;
  }
  s->pos += used;
  return v;
}

/* The next element of "nodes" (scan_value), its id's slot fetched first;
 * in a lazy load, its text is noted for fc__load_field_text. */
static json_t *scan_node(loader_t *L, scan_t *s) {
  size_t start;
  json_t *node;
  scan_ws(s);
  peek_id(L->wf, s);
  start = s->pos;
  node = scan_value(s, 2);
  if (L->lazy) {
    L->node_text = s->text + start;
    L->node_len = s->pos - start;
  }
  return node;
}

/* ---- a field's text ----
 * The text of a node's field as the file wrote it, found in the text of a
 * node that jansson has just parsed (so it is valid JSON: these walks need
 * not check it). */

/* The index just after the string that begins at t[i] ('"'). */
static size_t skip_string(const char *t, size_t n, size_t i) {
  for (i++; i < n; i++) {
    if (t[i] == '\\')
      i++;
    else if (t[i] == '"')
      return i + 1;
  }
  return n;
}

/* The index just after the value that begins at t[i]. */
static size_t skip_value(const char *t, size_t n, size_t i) {
  size_t depth = 0;
  if (i < n && t[i] == '"')
    return skip_string(t, n, i);
  for (; i < n; i++) {
    char c = t[i];
    if (c == '"')
      i = skip_string(t, n, i) - 1;
    else if (c == '{' || c == '[')
      depth++;
    else if (c == '}' || c == ']') {
      if (depth == 0) /* a scalar's end */
        return i;
      if (--depth == 0)
        return i + 1;
    } else if (depth == 0 && (c == ',' || is_ws(c)))
      return i;
  }
  return n;
}

const char *fc__load_field_text(const fc__load_node_t *N, const char *key, size_t *len) {
  const char *t = N->L->node_text;
  size_t n = N->L->node_len, klen = strlen(key), i = 0;
  if (t == NULL)
    return NULL;
  while (i < n && is_ws(t[i]))
    i++;
  if (i >= n || t[i] != '{')
    return NULL;
  for (i++;;) {
    size_t k, v, end;
    int match;
    while (i < n && is_ws(t[i]))
      i++;
    if (i >= n || t[i] != '"')
      return NULL; /* the object's end */
    k = i + 1;
    i = skip_string(t, n, i);
    /* A key written with an escape is not found: the caller then uses
     * the parsed value. */
    match = i - k == klen + 1 && memcmp(t + k, key, klen) == 0;
    while (i < n && (is_ws(t[i]) || t[i] == ':'))
      i++;
    v = i;
    end = skip_value(t, n, v);
    if (match && end > v) {
      *len = end - v;
      return t + v;
    }
    i = end;
    while (i < n && is_ws(t[i]))
      i++;
    if (i >= n || t[i] != ',')
      return NULL;
    i++;
  }
}

/* ---- two parts at once ----
 * A big "nodes" array is loaded by two threads: a second one loads the
 * nodes from a guessed node boundary near the middle of the text into a
 * workflow of its own while this one loads those before it. The guess is
 * the first "}" "," "{" (whitespace between allowed) after the middle. It
 * is kept only if this thread, loading node after node, arrives exactly
 * there: then the text from there on is what the second thread parsed as
 * nodes of "nodes", and its workflow is appended to this one. Anything
 * else drops the second part and this thread goes on alone: a guess inside
 * a string or an inner array, a part that ends anywhere but at the end of
 * "nodes" and of the document, any error in that part (so that every
 * message is made with its true index, in order), an id of the part
 * already used before it, out of memory. The part's references to nodes
 * before it are checked after the merge; if one names no node, the whole
 * text is loaded again on one thread for the messages. So the result, the
 * errors and their order are always those of one thread. */

size_t fc__load_split_min = (size_t)512 << 10;

/* The id table of a workflow loaded from n bytes of "nodes" text is made
 * for n / NODE_BYTES_GUESS ids at once (at most FC_LOAD_MAX_NODES): a
 * 200,000-node chain's table was otherwise rehashed 15 times on each
 * thread (each time a new mmap'd table, page faults, and an munmap that
 * interrupts the other core). A file of smaller nodes still grows it as
 * before; the table made ahead is at most half the text's size, and at
 * most 16 MiB. */
#define NODE_BYTES_GUESS 64

static size_t ids_guess(size_t text_bytes) {
  size_t n = text_bytes / NODE_BYTES_GUESS;
  return n < FC_LOAD_MAX_NODES ? n : FC_LOAD_MAX_NODES;
}
atomic_size_t fc__load_parts_merged;

typedef struct {
  const char *text;
  size_t len;
  size_t start;  /* where the part's first node begins */
  size_t end;    /* where the text after "nodes" begins, when ok */
  size_t count;  /* nodes of the part, when ok */
  int ok, joined;
  atomic_int stop; /* set when the part is not wanted any more */
  loader_t L;      /* the part's own loader and workflow */
  uv_thread_t tid;
} part_t;

/* The part's thread: nodes from p->start to the end of "nodes", then the
 * end of the document. */
static void part_load(void *arg) {
  part_t *p = arg;
  loader_t *L = &p->L;
  scan_t s = {p->text, p->len, p->start};
  size_t i;
  if (fc_workflow_new(&L->wf, "part") != 0)
    return;
  (void)fc__workflow_reserve(L->wf, ids_guess(p->len - p->start));
  for (i = 0;; i++) {
    json_t *node;
    if (atomic_load_explicit(&p->stop, memory_order_relaxed) || i == FC_LOAD_MAX_NODES ||
        (node = scan_node(L, &s)) == NULL)
      return;
    load_node(L, i, node);
    json_decref(node);
    if (L->found > 0 || L->incomplete || L->structural || L->oom)
      return;
    if (scan_char(&s, ']'))
      break;
    if (!scan_char(&s, ','))
      return;
  }
  p->end = s.pos;
  if (!scan_char(&s, '}'))
    return;
  scan_ws(&s);
  if (s.pos != s.len)
    return;
  p->count = i + 1;
  p->ok = 1;
}

/* Starts a part for the nodes of text[pos...], or returns NULL when the
 * text is too short for it to pay, or no boundary is found. */
static part_t *part_start(const char *text, size_t len, size_t pos, int lazy) {
  size_t i, j;
  part_t *p;
  if (len - pos < fc__load_split_min || len - pos < 2)
    return NULL;
  for (i = pos + (len - pos) / 2;; i++) {
    const char *c = memchr(text + i, '}', len - i);
    if (c == NULL)
      return NULL;
    i = (size_t)(c - text);
    for (j = i + 1; j < len && is_ws(text[j]); j++)
      ;
    if (j == len || text[j] != ',')
      continue;
    for (j++; j < len && is_ws(text[j]); j++)
      ;
    if (j < len && text[j] == '{')
      break;
  }
  p = fc__calloc(1, sizeof *p);
  if (p == NULL)
    return NULL;
  p->text = text;
  p->len = len;
  p->start = j;
  p->L.consume = 1;
  p->L.defer_refs = 1;
  p->L.lazy = lazy;
  atomic_init(&p->stop, 0);
  if (fc__thread_create(&p->tid, part_load, p) != 0) {
    fc__free(p);
    return NULL;
  }
  return p;
}

static void part_join(part_t *p) {
  if (!p->joined)
    (void)uv_thread_join(&p->tid);
  p->joined = 1;
}

/* Stops and waits for the part, then frees it (and its workflow, unless
 * merged). */
static void part_end(part_t *p) {
  if (p == NULL)
    return;
  atomic_store(&p->stop, 1);
  part_join(p);
  fc_workflow_free(p->L.wf);
  loader_free(&p->L);
  fc__free(p);
}

/* This thread has loaded nodes[0..first) and is at the part's start:
 * appends the part to L's workflow. 0, or -1 when the part is dropped;
 * *known as fc__workflow_append sets it. */
static int part_merge(loader_t *L, part_t *p, size_t first, int *known) {
  size_t k, n0 = fc_workflow_node_count(L->wf), n1;
  int identity;
  part_join(p);
  if (!p->ok || p->count > FC_LOAD_MAX_NODES - first)
    return -1;
  n1 = fc_workflow_node_count(p->L.wf);
  /* node k -> nodes[k] on both sides (no errors): it stays so */
  identity = L->json_index == NULL && p->L.json_index == NULL && L->noted == n0 && n0 == first &&
             p->L.noted == n1;
  if ((!identity && json_index_reserve(L, n0 + n1) != 0) ||
      fc__workflow_append(L->wf, p->L.wf, known) != 0)
    return -1;
  p->L.wf = NULL;
  for (k = 0; !identity && k < n1; k++)
    L->json_index[n0 + k] = (uint32_t)(json_index_of(&p->L, k) + first);
  L->noted = n0 + n1;
  atomic_fetch_add(&fc__load_parts_merged, 1);
  return 0;
}

/* Loads text of the usual shape one node at a time (a big "nodes" array
 * in two parts at once when `split`). Returns 1 when the caller must parse
 * the text whole instead, 2 when it must load it again without split
 * (nothing was kept: errors are as before the call), else what load_json
 * returns. */
static int load_stream_once(const char *text, size_t len, unsigned flags, int split,
                            fc_workflow_t **wf_out, json_t **input_out, fc_load_errors_t *errors) {
  loader_t L;
  scan_t s = {text, len, 0};
  json_t *root, *key = NULL, *v, *jmax;
  size_t count0 = errors != NULL ? errors->count : 0;
  size_t omitted0 = errors != NULL ? errors->omitted : 0, i;
  const char *name;
  part_t *part = NULL;
  int rc = 1, known = 1; /* the part's references, once appended */

  /* jansson passes over a NUL byte outside strings without counting it in
   * error.position, so the offsets of the parts would drift from the text
   * (fuzz/regress/loader/crash-db8a2c27...): such text is parsed whole. */
  if (wf_out == NULL || memchr(text, '\0', len) != NULL || !scan_char(&s, '{') ||
      (root = json_object()) == NULL)
    return 1;
  memset(&L, 0, sizeof L);
  L.errors = errors;
  L.consume = 1;
  L.lazy = (flags & FC_LOAD_LAZY_CONSTANTS) != 0;
  /* The fields before "nodes". */
  for (;;) {
    key = scan_value(&s, 1);
    if (!json_is_string(key) || !scan_char(&s, ':'))
      goto fall_back;
    if (strcmp(json_string_value(key), "nodes") == 0)
      break;
    if (json_object_get(root, json_string_value(key)) != NULL ||
        (v = scan_value(&s, 1)) == NULL || json_object_set_new(root, json_string_value(key), v) != 0 ||
        !scan_char(&s, ','))
      goto fall_back;
    json_decref(key);
  }
  json_decref(key);
  key = NULL;
  if (!scan_char(&s, '[') || scan_char(&s, ']'))
    goto fall_back;
  name = check_top(&L, root, &jmax);
  if (start_workflow(&L, name, jmax) != 0)
    goto end;
  (void)fc__workflow_reserve(L.wf, ids_guess(len - s.pos));
  if (split)
    part = part_start(text, len, s.pos, L.lazy);
  for (i = 0;; i++) {
    json_t *node;
    if (part != NULL) {
      scan_ws(&s);
      if (s.pos == part->start && part_merge(&L, part, i, &known) == 0) {
        s.pos = part->end;
        break;
      }
      if (s.pos >= part->start) {
        part_end(part);
        part = NULL;
      }
    }
    if (i == FC_LOAD_MAX_NODES || (node = scan_node(&L, &s)) == NULL)
      goto fall_back;
    load_node(&L, i, node);
    json_decref(node);
    if (L.oom)
      goto end;
    if (scan_char(&s, ']'))
      break;
    if (!scan_char(&s, ','))
      goto fall_back;
  }
  part_end(part);
  part = NULL;
  if (!scan_char(&s, '}'))
    goto fall_back;
  scan_ws(&s);
  if (s.pos != s.len)
    goto fall_back;
  if (!known) { /* a reference of the part names no node: again on one thread, for the messages */
    rc = 2;
    goto fall_back;
  }
  finish_workflow(&L, root, input_out);
end:
  part_end(part);
  json_decref(root);
  return loader_end(&L, wf_out, input_out);

fall_back:
  part_end(part);
  json_decref(key);
  json_decref(root);
  fc_workflow_free(L.wf);
  loader_free(&L);
  if (errors != NULL) {
    errors->count = count0;
    errors->omitted = omitted0;
  }
  return rc;
}

static int load_stream(const char *text, size_t len, unsigned flags, fc_workflow_t **wf_out,
                       json_t **input_out, fc_load_errors_t *errors) {
  int rc = load_stream_once(text, len, flags, 1, wf_out, input_out, errors);
  return rc == 2 ? load_stream_once(text, len, flags, 0, wf_out, input_out, errors) : rc;
}

/* ---- text and files --------------------------------------------------------------------- */

/* Parses JSON text; on a syntax error records "line:column: ..." (with
 * `what` before it when given), when jansson runs out of memory "out of
 * memory" (FC_ENOMEM). */
static json_t *parse_text(const char *text, size_t len, size_t flags, loader_t *L,
                          const char *what) {
  json_error_t jerr;
  json_t *root = json_loadb(text, len, flags, &jerr);
  /* jansson leaves the error empty (and its code unset) when it cannot
   * even start (lex_init). */
  if (root == NULL &&
      (jerr.text[0] == '\0' || json_error_code(&jerr) == json_error_out_of_memory)) {
    add_oom(L);
  } else if (root == NULL) {
    char where[48];
    snprintf(where, sizeof where, "%d:%d", jerr.line, jerr.column);
    add_error(L, FC_EDEFINITION, where, "%s%s%s: invalid JSON: %s", what ? what : "",
              what ? " " : "", where, jerr.text);
  }
  return root;
}

int fc_workflow_load_buffer(const char *text, size_t len, fc_workflow_t **wf_out,
                            json_t **input_out, fc_load_errors_t *errors) {
  return fc_workflow_load_buffer_ex(text, len, 0, wf_out, input_out, errors);
}

int fc_workflow_load_buffer_ex(const char *text, size_t len, unsigned flags,
                               fc_workflow_t **wf_out, json_t **input_out,
                               fc_load_errors_t *errors) {
  loader_t L;
  json_t *root;
  int rc;
  if (wf_out != NULL)
    *wf_out = NULL;
  if (input_out != NULL)
    *input_out = NULL;
  memset(&L, 0, sizeof L);
  L.errors = errors;
  if (text == NULL) {
    add_error(&L, FC_EINVAL, "", "no text");
    return FC_EINVAL;
  }
  if (len > FC_LOAD_MAX_FILE_BYTES) {
    add_error(&L, FC_EDEFINITION, "", "the workflow is %zu bytes, more than the limit of %zu", len,
              FC_LOAD_MAX_FILE_BYTES);
    return FC_EDEFINITION;
  }
  rc = load_stream(text, len, flags, wf_out, input_out, errors);
  if (rc != 1)
    return rc;
  root = parse_text(text, len, JSON_REJECT_DUPLICATES, &L, NULL);
  if (root == NULL)
    return L.first_code;
  rc = load_json(root, 1, wf_out, input_out, errors);
  json_decref(root);
  return rc;
}

/* Reads a whole file ("-": stdin) of at most `limit` bytes into a new
 * buffer. Returns 0, or a libuv error code / FC_EDEFINITION (too large) /
 * FC_ENOMEM with a message in msg. */
static int read_all(const char *path, size_t limit, char **out, size_t *out_len, char *msg,
                    size_t msg_size) {
  FILE *f;
  char *buf = NULL;
  size_t len = 0, cap = 0;
  int use_stdin = strcmp(path, "-") == 0, rc = 0;
  char shown[200];
  struct stat st;
  fc__load_show(shown, sizeof shown, path, 160);
  f = use_stdin ? stdin : fopen(path, "rb");
  if (f == NULL) {
    int e = errno;
    snprintf(msg, msg_size, "cannot open \"%s\": %s", shown, strerror(e));
    return uv_translate_sys_error(e);
  }
  /* A regular file is read into one buffer of its size (and a little
   * more, to see the end): growing it by doubling copied a 16 MB file's
   * text 8 times over. A file that grows meanwhile still grows the buffer. */
  if (fstat(fileno(f), &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0 &&
      (uint64_t)st.st_size <= limit)
    cap = (size_t)st.st_size + 1;
  if (cap > 0 && (buf = fc__malloc(cap)) == NULL)
    cap = 0;
  for (;;) {
    size_t n;
    if (cap == len) {
      size_t ncap = cap > 0 ? cap * 2 : 65536;
      char *p;
      if (ncap > limit + 65536)
        ncap = limit + 65536;
      p = fc__realloc(buf, ncap);
      if (p == NULL) {
        snprintf(msg, msg_size, "out of memory reading \"%s\"", shown);
        rc = FC_ENOMEM;
        break;
      }
      buf = p;
      cap = ncap;
    }
    n = fread(buf + len, 1, cap - len, f);
    len += n;
    if (len > limit) {
      snprintf(msg, msg_size, "\"%s\" is larger than the limit of %zu bytes", shown, limit);
      rc = FC_EDEFINITION;
      break;
    }
    if (n == 0) {
      if (ferror(f)) {
        int e = errno;
        snprintf(msg, msg_size, "cannot read \"%s\": %s", shown, strerror(e));
        rc = e != 0 ? uv_translate_sys_error(e) : UV_EIO;
      }
      break;
    }
  }
  if (!use_stdin)
    fclose(f);
  if (rc != 0) {
    fc__free(buf);
    return rc;
  }
  *out = buf;
  *out_len = len;
  return 0;
}

int fc_workflow_load_file(const char *path, fc_workflow_t **wf_out, json_t **input_out,
                          fc_load_errors_t *errors) {
  return fc_workflow_load_file_ex(path, 0, wf_out, input_out, errors);
}

int fc_workflow_load_file_ex(const char *path, unsigned flags, fc_workflow_t **wf_out,
                             json_t **input_out, fc_load_errors_t *errors) {
  loader_t L;
  char msg[FC_ERROR_TEXT_LENGTH], where[FC_ERROR_WHERE_LENGTH];
  char *text = NULL;
  size_t len = 0;
  json_t *root;
  int rc;
  if (wf_out != NULL)
    *wf_out = NULL;
  if (input_out != NULL)
    *input_out = NULL;
  memset(&L, 0, sizeof L);
  L.errors = errors;
  if (path == NULL || wf_out == NULL) {
    add_error(&L, FC_EINVAL, "", "no path or output pointer");
    return FC_EINVAL;
  }
  rc = read_all(path, FC_LOAD_MAX_FILE_BYTES, &text, &len, msg, sizeof msg);
  if (rc != 0) {
    fc__load_show(where, sizeof where, path, 200);
    add_error(&L, rc, where, "%s", msg);
    return rc;
  }
  rc = load_stream(text, len, flags, wf_out, input_out, errors);
  if (rc != 1) {
    fc__free(text);
    return rc;
  }
  root = parse_text(text, len, JSON_REJECT_DUPLICATES, &L, NULL);
  fc__free(text); /* before the workflow is built: it is not needed again */
  if (root == NULL)
    return L.first_code;
  rc = load_json(root, 1, wf_out, input_out, errors);
  json_decref(root);
  return rc;
}

int fc_workflow_load_input(const char *arg, json_t **out, fc_error_t *err) {
  fc_load_errors_t errors;
  loader_t L;
  json_t *v;
  char *text = NULL, msg[FC_ERROR_TEXT_LENGTH], what[220];
  size_t len;
  int rc;
  if (out != NULL)
    *out = NULL;
  if (arg == NULL || out == NULL)
    return fc__error_set(err, FC_EINVAL, "", "no input argument");
  if (arg[0] == '@') {
    char shown[200];
    rc = read_all(arg + 1, FC_LOAD_MAX_FILE_BYTES, &text, &len, msg, sizeof msg);
    if (rc != 0)
      return fc__error_set(err, rc, arg + 1, "input: %s", msg);
    snprintf(what, sizeof what,
             "input file \"%s\":", fc__load_show(shown, sizeof shown, arg + 1, 160));
  } else {
    len = strlen(arg);
    snprintf(what, sizeof what, "input:");
  }
  fc_load_errors_init(&errors);
  memset(&L, 0, sizeof L);
  L.errors = &errors;
  v = parse_text(text != NULL ? text : arg, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &L,
                 what);
  fc__free(text);
  if (v == NULL) {
    if (errors.count > 0)
      fc__error_set(err, FC_EINVAL, errors.items[0].where, "%s", errors.items[0].text);
    else
      fc__error_set(err, FC_EINVAL, "", "input: invalid JSON");
    fc_load_errors_free(&errors);
    return FC_EINVAL;
  }
  fc_load_errors_free(&errors);
  *out = v;
  return 0;
}
