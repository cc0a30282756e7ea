/* History records: what the database handler makes from an event (on the
 * engine's thread) and the writer turns into rows (on its own thread).
 *
 * A record is a small fixed-size struct. Strings that every record of a run
 * shares (workflow name, node ids and types) live once in a refcounted
 * fc__hrun_t; JSON payloads are held by reference (jansson's refcounts are
 * atomic; payloads are immutable once handed to the engine), so making a
 * record copies no payload and serializes nothing: that is the writer's
 * work. */
#ifndef FLOWCORE_HISTORY_RECORD_H
#define FLOWCORE_HISTORY_RECORD_H

#include <stdatomic.h>

#include "internal.h"

/* Per-run data shared by the run's records. */
typedef struct fc__hrun_s {
  atomic_int refs;
  /* refs is changed by the writer's thread for every record it is done
   * with, while the engine's thread reads uuid for every event: the
   * padding keeps them on different cache lines. */
  char pad_[64];
  uint8_t uuid[16];
  int node_count;
  char *name;
  char **node_ids;   /* node_count entries */
  char **node_types; /* idem; equal types may share one string */
  /* 0: the strings live in `strings`, one block (the database handler's);
   * 1: each node id and type is its own allocation, NULL until seen, and
   * `strings` is NULL (the spool's replay). */
  int owns_strings;
  char *strings;
} fc__hrun_t;

/* Makes the run data from a workflow_start event (copies what it needs from
 * ev->workflow). Returns a new reference (refs = 1) or NULL. */
fc__hrun_t *fc__hrun_new(const fc_event_t *ev);
void fc__hrun_incref(fc__hrun_t *r);
/* Adds n references (n < 0 drops -n of them: the caller must hold one
 * more, which it drops with fc__hrun_decref). */
void fc__hrun_addref(fc__hrun_t *r, int n);
void fc__hrun_decref(fc__hrun_t *r);

typedef struct {
  uint8_t kind;     /* fc_event_kind_t */
  uint8_t status;   /* node or workflow status of end events */
  uint8_t severity; /* errors */
  int32_t attempt;
  int32_t node;  /* node index, -1 for workflow records and workflow errors */
  int32_t count; /* workflow start: node count; workflow end: error count */
  fc__hrun_t *run; /* counted reference */
  int64_t t_us;       /* event time (wall, µs) */
  int64_t started_us; /* end events: start of the attempt / run (0: none) */
  int64_t duration_us;
  json_t *payload; /* start: input; end: output; error: details. Counted. */
  /* Node starts (of the input) and workflow ends (of the output): the
   * members stored as references (compact storage, docs/history.md):
   * {"<key>": "run" | n}, n the attempt of node <key>; counted, or NULL;
   * payload then holds only the other members. */
  json_t *refs;
  /* Node ends: 1 when the output is the very input of the attempt (a
   * `pass`): payload is then NULL and the row says output_is_input. */
  uint8_t output_is_input;
  /* 1: refs is a JSON string holding the refs object's compact JSON text
   * (as the handler makes them: one string instead of an object and a
   * pair per member); 0: refs is the object (read back from a spool). */
  uint8_t refs_text;
  uint32_t bytes; /* size for the writer's byte budget (fc__hrec_estimate) */
  char *err;       /* errors: "type\0message\0stack_trace\0", owned */
  uint8_t error_id[16];
} fc__hrec_t;

/* The size a record counts for in the writer's byte budget: 64, plus the
 * error text, plus for payload and refs an estimate of their compact JSON
 * text (string and key lengths plus 2, 8 per number or literal, 2 per
 * container and 1 per member) from a walk of at most FC__ESTIMATE_VALUES
 * values and FC__ESTIMATE_DEPTH levels; what lies beyond is not counted. */
#define FC__ESTIMATE_VALUES 4096
#define FC__ESTIMATE_DEPTH 32
uint32_t fc__hrec_estimate(const fc__hrec_t *rec);

/* Releases what a record holds (run reference, payload, error text). */
void fc__hrec_clear(fc__hrec_t *rec);

/* The fc_record_kind_t of a record. */
static inline int fc__hrec_kind(const fc__hrec_t *rec) {
  switch (rec->kind) {
  case FC_EVENT_WORKFLOW_START:
  case FC_EVENT_WORKFLOW_END:
    return FC_REC_WORKFLOW;
  case FC_EVENT_ERROR:
    return FC_REC_ERROR;
  default:
    return FC_REC_NODE;
  }
}

/* A block of records handed from a producer to the writer in one step. */
#define FC__HBLOCK_SIZE 512
typedef struct fc__hblock_s {
  struct fc__hblock_s *next;
  size_t n;
  fc__hrec_t recs[FC__HBLOCK_SIZE];
} fc__hblock_t;

/* Writer side of the handoff (writer.c). Takes ownership of the block
 * (even on failure: dropped records are counted and released). May block
 * the caller under FC_QUEUE_BLOCK while the writer is at capacity. */
struct fc_history_writer_s;
void fc__writer_submit(struct fc_history_writer_s *w, fc__hblock_t *b);

#endif
