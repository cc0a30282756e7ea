/* Internal to the handlers in src/handlers/ (and their tests). Not
 * installed; not part of the API.
 *
 * Deep copies of events, for handlers that keep events past the call that
 * delivered them (the async and batch handlers).
 *
 * A copy is one allocation holding the fc_event_t, its error info, its
 * status counts, its binary UUID and every string, plus jansson deep copies
 * of the payloads (input, output, error details): nothing in a copy is
 * shared with the engine, so a copy may be handed to another thread.
 * `workflow` is NULL in a copy: the definition is borrowed by the engine
 * and may be freed before the copy is delivered. */
#ifndef FLOWCORE_HANDLERS_INT_H
#define FLOWCORE_HANDLERS_INT_H

#include "internal.h"

/* Returns a new deep copy of ev, or NULL when out of memory. */
fc_event_t *fc__event_copy(const fc_event_t *ev);

/* Frees a copy made by fc__event_copy. NULL ok. */
void fc__event_copy_free(fc_event_t *copy);

/* Allocation failure injection (tests only; not thread-safe: use it while
 * allocations happen on one thread). While fc__handlers_fail_countdown is
 * > 0, each allocation made through these functions decrements it, and the
 * one that brings it to 0 fails. Used by the composite handlers'
 * constructors, the async and batch constructors and fc__event_copy (not by
 * jansson's copies of the payloads). */
extern long fc__handlers_fail_countdown;
void *fc__handlers_malloc(size_t size);
void *fc__handlers_calloc(size_t n, size_t size);
char *fc__handlers_strdup(const char *s);

#endif
