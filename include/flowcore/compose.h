/* flowcore: handlers made of handlers (the documented ConditionalCallback,
 * FilteringCallback and ChainedCallback).
 *
 * - Conditional: a predicate on the event decides whether the wrapped
 *   handler sees it.
 * - Filtering: the same, declared as data: which event kinds pass, a node id
 *   allow list (exact ids or "prefix*"), and an optional predicate per kind.
 * - Chained: several handlers as one; each is called in turn and isolated
 *   from the others.
 *
 * Ownership ("The handler convention" in docs/handlers.md): the plain
 * constructors BORROW the wrapped handlers: the wrapper never destroys them,
 * the caller keeps them alive while the wrapper is in use and destroys them
 * afterwards (also when the constructor fails).
 *
 * The `*_owned` variants TAKE OWNERSHIP of the wrapped handlers, even on
 * failure: the struct is copied, and the wrapper calls each wrapped
 * handler's destroy exactly once, when the wrapper itself is destroyed --
 * or before returning, when the constructor fails (then *out is left
 * zeroed; the caller must not destroy the wrapped handlers again). After a
 * successful `_owned`, only the wrapper's destroy may be called.
 *
 * A wrapper only sets the callbacks for the event kinds its wrapped handlers
 * handle, so the manager's dispatch table skips the others. Predicates and
 * wrapped handlers run on the thread that calls the wrapper (the loop thread
 * when registered with a manager). Wrappers nest: a chained handler may hold
 * filtering handlers, an async handler may hold a chained one, and so on.
 */
#ifndef FLOWCORE_COMPOSE_H
#define FLOWCORE_COMPOSE_H

#include "handler.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Bit of an event kind in a kind mask, e.g.
 * FC_EVENT_KIND_BIT(FC_EVENT_ERROR) | FC_EVENT_KIND_BIT(FC_EVENT_WORKFLOW_END). */
#define FC_EVENT_KIND_BIT(kind) (1u << (unsigned)(kind))
#define FC_EVENT_KINDS_ALL ((1u << (unsigned)FC_EVENT_KIND_COUNT) - 1u)

/* A predicate on an event: nonzero lets the event through, 0 rejects it.
 * `data` is the pointer given with the predicate (borrowed). It must not
 * keep pointers into ev after it returns (see event.h). */
typedef int (*fc_event_pred_cb)(void *data, const fc_event_t *ev);

/* ---- conditional --------------------------------------------------------- */

/* Makes a handler that calls `inner` for the events on which pred(data, ev)
 * returns nonzero; other events are skipped (the wrapper returns 0 for them
 * and `inner` never sees them). For events that pass, the wrapper returns
 * what `inner` returns. `data` is borrowed (it must outlive the wrapper).
 *
 * fc_conditional_handler_owned takes ownership of `inner`, even on failure
 * (see above); fc_conditional_handler borrows it. Returns 0 and the
 * wrapper in *out, FC_EINVAL (inner, pred or out NULL) or FC_ENOMEM. */
FC_EXTERN int fc_conditional_handler_owned(const fc_handler_t *inner, fc_event_pred_cb pred,
                                           void *data, fc_handler_t *out);

FC_EXTERN int fc_conditional_handler(const fc_handler_t *inner, fc_event_pred_cb pred, void *data,
                                     fc_handler_t *out);

/* ---- filtering ----------------------------------------------------------- */

/* What a filtering handler lets through. Zero-initialize it (memset or
 * `= {0}`): an all-zero filter passes everything. An event passes when all
 * three tests pass, in this order:
 *
 * 1. kinds: a mask of FC_EVENT_KIND_BIT(kind); 0 means every kind.
 * 2. node_ids: an allow list of node ids (n_node_ids entries; NULL or 0
 *    entries means every node). An entry ending in '*' matches every id that
 *    starts with the text before the '*' ("critical_*"); "*" alone matches
 *    every node. The list applies to events that name a node (node events,
 *    and errors raised by a node -- ev->node_id, else ev->error->node_id);
 *    workflow events and workflow-level errors are not about a node and
 *    pass it. The strings are copied.
 * 3. by_kind[kind]: a predicate for that kind, called with `data`; NULL
 *    passes every event of that kind.
 */
typedef struct {
  unsigned kinds;
  const char *const *node_ids;
  size_t n_node_ids;
  fc_event_pred_cb by_kind[FC_EVENT_KIND_COUNT];
  void *data; /* passed to the by_kind predicates; borrowed */
} fc_filter_t;

/* Makes a handler that calls `inner` for the events `filter` lets through
 * (the wrapper returns 0 for the others). `filter` is copied (node ids
 * included); `filter->data` is borrowed. A NULL filter passes everything.
 *
 * fc_filter_handler_owned takes ownership of `inner`, even on failure;
 * fc_filter_handler borrows it. Returns 0, FC_EINVAL (inner
 * or out NULL, a kind bit out of range, a NULL or empty node id, node_ids
 * NULL with n_node_ids > 0) or FC_ENOMEM. */
FC_EXTERN int fc_filter_handler_owned(const fc_handler_t *inner, const fc_filter_t *filter,
                                      fc_handler_t *out);

FC_EXTERN int fc_filter_handler(const fc_handler_t *inner, const fc_filter_t *filter,
                                fc_handler_t *out);

/* Does `filter` let ev through? (The test the filtering handler applies;
 * `filter` is used as given, not copied.) Returns 1 or 0. */
FC_EXTERN int fc_filter_match(const fc_filter_t *filter, const fc_event_t *ev);

/* ---- chained ------------------------------------------------------------- */

/* Makes one handler of the n handlers in handlers[0..n): each event is
 * given to every one of them that has a callback for its kind, in array
 * order. Each is isolated: a failure does not stop the ones after it. The
 * wrapper returns 0 when all succeeded, else the FIRST error code returned
 * (so the manager counts the chain as one failing handler); the failures of
 * each member are counted (fc_chained_handler_stats). n may be 0 (a chain
 * that handles nothing).
 *
 * fc_chained_handler_owned takes ownership of every handler in the array,
 * even on failure: the wrapper's destroy destroys them in array order;
 * fc_chained_handler borrows them. The array itself is copied. Returns 0,
 * FC_EINVAL (handlers NULL with n > 0, out NULL) or FC_ENOMEM. */
FC_EXTERN int fc_chained_handler_owned(const fc_handler_t *handlers, size_t n, fc_handler_t *out);

FC_EXTERN int fc_chained_handler(const fc_handler_t *handlers, size_t n, fc_handler_t *out);

/* Stats of member i of a chained handler `chain` (the struct made by
 * fc_chained_handler or fc_chained_handler_owned, or a copy of it, while the chain lives):
 * calls made to it and failures it returned. Returns 0, FC_EINVAL (not a
 * chained handler) or FC_ENOTFOUND (i out of range). */
FC_EXTERN int fc_chained_handler_stats(const fc_handler_t *chain, size_t i,
                                       fc_handler_stats_t *out);

#ifdef __cplusplus
}
#endif
#endif
