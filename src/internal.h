/* flowcore internal helpers. Not installed; not part of the API.
 * Internal non-static functions are named fc__<module>_<verb>. */
#ifndef FLOWCORE_INTERNAL_H
#define FLOWCORE_INTERNAL_H

#include <dirent.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "flowcore.h"

#define FC__CONTAINER_OF(ptr, type, member)                                    \
  ((type *)((char *)(ptr) - offsetof(type, member)))

#define FC__ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Whether two NUL-terminated strings are equal: for the short names the
 * loader compares a few times for every node (field names, type names,
 * ids), where the call to strcmp cost more than the comparison. */
static inline int fc__streq(const char *a, const char *b) {
  while (*a != '\0' && *a == *b) {
    a++;
    b++;
  }
  return *a == *b;
}

/* The index of the lowest set bit of x, which must not be 0. */
static inline unsigned fc__ctz64(uint64_t x) {
#if defined(__GNUC__)
  return (unsigned)__builtin_ctzll(x);
#else
  unsigned n = 0;
  while ((x & 1) == 0) {
    x >>= 1;
    n++;
  }
  return n;
#endif
}

/* Allocation goes through these so tests can inject failures. */
void *fc__malloc(size_t size);
void *fc__calloc(size_t n, size_t size);
void *fc__realloc(void *ptr, size_t size);
void fc__free(void *ptr);
char *fc__strdup(const char *s);
/* opendir(3) through open(O_DIRECTORY) + fdopendir(3): the same DIR, but the
 * descriptor is created by a call ThreadSanitizer sees. libuv closes its
 * descriptors with a raw close syscall that TSan cannot see, and TSan does not
 * treat opendir as creating a descriptor, so a directory stream that reuses
 * such a number on another thread is reported as a race on closedir. */
DIR *fc__opendir(const char *path);

/* uv_thread_create(3) for flowcore's own threads (the history writer, the
 * async handler's worker, the command's closer): the thread starts with
 * every signal blocked, so a signal meant for the application (SIGINT,
 * SIGTERM, the SIGCHLD libuv reaps an exec node's child on) is delivered to
 * one of the application's threads, never to a library thread that does not
 * handle it. Returns 0 or a libuv error. */
int fc__thread_create(uv_thread_t *tid, void (*entry)(void *arg), void *arg);

/* Runs a(arg_a) on this thread and b(arg_b) on a thread of its own
 * (fc__thread_create) at the same time, and returns when both have
 * returned; one after the other on this thread when no thread can be
 * started. For two independent halves of a step over a big workflow. */
void fc__run_both(void (*a)(void *), void *arg_a, void (*b)(void *), void *arg_b);

/* Grows *items (of elem_size bytes each) so it holds at least `need`
 * elements; *cap is updated. Returns 0 or FC_ENOMEM (then unchanged). */
int fc__grow(void **items, size_t *cap, size_t need, size_t elem_size);
/* The same starting from one element (then doubling): for the many short
 * arrays of a big workflow (a node's dependencies, its successors). */
int fc__grow_small(void **items, size_t *cap, size_t need, size_t elem_size);

/* FNV-1a of a NUL-terminated string, for the id tables; of n bytes. */
uint64_t fc__str_hash(const char *s);
uint64_t fc__mem_hash(const char *s, size_t n);

/* The handler view of one callback: sets *out to a handler named `name`
 * whose five callbacks (every event kind) all call cb(self, ev) and whose
 * destroy is `destroy` (NULL: the view borrows self). The building block of
 * every handler constructor. Returns 0, or FC_EINVAL when self or out is
 * NULL: then *out (if any) is zeroed and destroy(self) has been called when
 * both are set (an owning constructor owns self even on failure). */
int fc__handler_of(fc_handler_t *out, const char *name, void *self, fc_handler_cb cb,
                   void (*destroy)(void *self));
/* Sets the callback of h for `kind` (the mirror of fc_handler_get_cb); a
 * kind out of range is ignored. For the wrappers that handle only some
 * kinds. */
void fc__handler_set_cb(fc_handler_t *h, fc_event_kind_t kind, fc_handler_cb cb);
/* 1 when a handler of m (NULL: none) has a callback for `kind` now, so
 * that the engine builds a payload only one handler will see. */
int fc__manager_listens(const fc_manager_t *m, fc_event_kind_t kind);

/* Clocks. fc__wall_us: µs since the epoch. fc__mono_ns: monotonic ns. */
int64_t fc__wall_us(void);
uint64_t fc__mono_ns(void);

/* Checks a node id (allow_space 0) or workflow name (allow_space 1):
 * 1..max bytes of [A-Za-z0-9_.:-] (and ' '). Returns 1 if valid. */
int fc__name_valid(const char *s, size_t max, int allow_space);

/* Records an error into err (if not NULL and no error recorded yet).
 * Returns code, so `return fc__error_set(err, FC_ECYCLE, id, "...")` works. */
int fc__error_set(fc_error_t *err, int code, const char *where, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;

#endif
