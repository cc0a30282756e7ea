/* Internal layout of a workflow definition, shared by workflow.c (building
 * and validation) and run.c (execution). */
#ifndef FLOWCORE_WORKFLOW_INT_H
#define FLOWCORE_WORKFLOW_INT_H

#include "internal.h"

#define FC__MAX_ROUTES 64
/* Nodes in one workflow: indexes are 32-bit and the id table (twice as
 * many slots) must stay within 2^32 slots. More fail as out of memory. */
#define FC__MAX_NODES ((size_t)1 << 30)

typedef struct {
  char *name;
  char **targets; /* ids, as given */
  size_t ntargets, cap;
} fc__route_t;

/* An edge from a node to one that runs after it. route_mask is 0 for a
 * plain dependency; otherwise bit r is set when the target belongs to the
 * node's route r, and the target runs only if one of those routes is
 * chosen. */
typedef struct {
  uint32_t to;
  uint64_t route_mask;
} fc__edge_t;

/* A dependency: the node its id named when it was added (files list a
 * node after those it depends on, so most are found then, while the id
 * table's slot is still in the cache), or its id for validation to find. */
typedef struct {
  uint32_t node; /* index + 1, or 0: see id */
  char *id;      /* a copy of the id when node is 0, else NULL */
} fc__dep_t;

/* A slot of the id table: node index + 1 (0: empty) and the id's 32-bit
 * hash, so a probe compares a string only when the hashes are equal. */
typedef struct {
  uint32_t node;
  uint32_t hash;
} fc__id_slot_t;

/* What the engine does on failure and how long an attempt may take
 * (fc_node_set_retries, fc_node_set_timeout); most nodes have neither. */
typedef struct {
  int retries;
  uint64_t backoff_base_ms, backoff_max_ms; /* used only when retries > 0 */
  uint64_t timeout_ms;                      /* 0: none */
} fc__node_policy_t;

/* What few nodes have: routes, retries and a timeout (fc_node_add_route,
 * fc_node_set_retries, fc_node_set_timeout); carved from the workflow's
 * slabs when first needed. */
typedef struct {
  fc__route_t *routes;
  uint32_t nroutes, cap_routes;
  int16_t default_route; /* index of the route named "default", or -1 */
  fc__node_policy_t policy;
} fc__node_extra_t;

/* A node lives in a slab (workflow.c) with its id right after it; a big
 * workflow has millions, so the counts are 32-bit (FC__MAX_NODES), what
 * few nodes have is in an extra of their own, and the fields are ordered
 * to leave no padding: 96 bytes on 64-bit systems. */
struct fc_node_s {
  fc_workflow_t *wf;
  char *id;         /* in the node's own allocation, after the struct */
  const char *type; /* owned (type_owned) or a string with static storage */
  fc_node_fn fn;
  void *user_data;
  void (*data_free)(void *);
  fc__dep_t *deps; /* room for a power of two of them (or none) */
  /* Filled by validation: the distinct successors; the predecessors
   * (dependencies and routers) are wf->in_all[in .. in + nin). */
  fc__edge_t *out;
  fc__node_extra_t *extra; /* NULL: no routes, retries or timeout */
  uint32_t index;
  uint32_t ndeps;
  uint32_t in, nin, nout;
  uint8_t no_input : 1;   /* fn never reads its input (src/nodes/nodes_int.h) */
  uint8_t sync : 1;       /* fn ends its attempt before it returns (the same) */
  uint8_t type_owned : 1; /* type was set by fc_node_set_type: freed with the node */
};

typedef struct fc__slab_s fc__slab_t;

static inline int fc__node_retries(const fc_node_t *n) {
  return n->extra != NULL ? n->extra->policy.retries : 0;
}

static inline uint64_t fc__node_timeout_ms(const fc_node_t *n) {
  return n->extra != NULL ? n->extra->policy.timeout_ms : 0;
}

static inline uint32_t fc__node_nroutes(const fc_node_t *n) {
  return n->extra != NULL ? n->extra->nroutes : 0;
}


struct fc_workflow_s {
  char *name;
  fc_node_t **nodes;
  size_t nnodes, cap_nodes;
  int max_parallel;
  int frozen;
  /* The ids: open addressing, at most half full, filled as nodes are
   * added (workflow.c). A node whose id is taken is not entered; the first
   * such node is remembered for validation to report. */
  fc__id_slot_t *slots;
  size_t nslots, nids;
  unsigned slot_bits;   /* nslots == 1 << slot_bits */
  uint32_t dup, dup_of; /* node index + 1 of the first duplicate and of its original */
  int suspect;          /* a node's id, function or routes may fail validation */
  fc__slab_t *slabs;    /* where the nodes live (workflow.c) */
  uint32_t *in_all;     /* every node's `in`, one block */
  uint32_t *roots;      /* filled by validation: the nodes without predecessors, */
  size_t nroots;        /* in index order (they start a run) */
  size_t ndeps;         /* dependencies of all nodes */
  /* Set by fc__workflow_append: the part's first node and the dependencies
   * of the nodes before it, so that validation can do the two halves at
   * once (workflow.c, deps_edges); 0 once a dependency is added to a node
   * before it. */
  size_t split_at, split_deps;
  int routes;           /* some node has routes */
  const char *hint_id;  /* fc__workflow_prefetch_id: an id and its hash */
  uint32_t hint_hash;
};

/* Its predecessors (nin of them), once validated. */
static inline const uint32_t *fc__node_in(const fc_node_t *n) {
  return n->wf->in_all != NULL ? n->wf->in_all + n->in : NULL;
}

/* For the loader, which builds a big file's workflow in two parts at once
 * (loader.c). Moves every node of `part` to the end of wf and frees part;
 * nothing changes on failure: FC_EDUPLICATE (an id of part is in wf),
 * FC_ENOMEM, or FC_EINVAL (either is frozen, or part has a duplicate).
 * When `known` is not NULL, *known is set to 1 when every dependency and
 * route target of the part's nodes names a node of wf, else 0 (the part's
 * nodes with a reference it did not find are noted as they are
 * renumbered, and looked up once wf has every id). */
int fc__workflow_append(fc_workflow_t *wf, fc_workflow_t *part, int *known);
/* A step over a big workflow is shared with a thread of its own when each
 * of its two halves has at least this many nodes (starting the thread
 * costs as much as a few thousand nodes' work): appending a part (its
 * nodes renumbered while its ids are entered) and the validation of a
 * workflow so appended. Tests set it to 0 or SIZE_MAX. */
extern size_t fc__workflow_thread_min;
/* Makes room in the node array and the id table for `nodes` more nodes,
 * so that adding them (or appending a part of them) does not grow and copy
 * these step by step (the loader's estimate for a big file; what is not
 * used of the room is never touched). 0 or FC_ENOMEM (the node array may
 * have grown; both still grow as nodes are added). */
int fc__workflow_reserve(fc_workflow_t *wf, size_t nodes);
/* n zeroed bytes (aligned to 8 bytes) that live as long as wf: carved
 * from the slabs its nodes live in, and moved with them by
 * fc__workflow_append. NULL when out of memory. For a node's data that
 * needs no freeing of its own (a `set` node's constant text). */
void *fc__workflow_alloc(fc_workflow_t *wf, size_t n);
/* Asks the CPU to fetch the id table slot where `id` would be: the
 * loader calls it as soon as a node's id is known, so that the slot is in
 * the cache when the node's other fields have been checked. The id's hash
 * is kept for the table's look-ups and fc_workflow_add_node given this
 * same pointer, so the loader hashes a node's id once; the string must not
 * change until the next call, and NULL forgets it (the loader calls that
 * before the node's JSON is freed). */
void fc__workflow_prefetch_id(fc_workflow_t *wf, const char *id);
/* The same fetch for an id given as len bytes (not NUL-terminated): the
 * loader's guess at the next node's id, before the node is parsed. */
void fc__workflow_prefetch_text(const fc_workflow_t *wf, const char *id, size_t len);

#endif
