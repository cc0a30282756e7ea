/* The one growable byte buffer of flowcore: COPY batches, log lines,
 * sanitized text. Appends never fail loudly: an allocation failure is
 * sticky (b->oom) and further appends are ignored, so a writer checks once
 * at the end. fc__buf_append, _puts and _printf leave the bytes followed by
 * a NUL (not counted in len), so text can be used as a C string. */
#ifndef FLOWCORE_BUF_H
#define FLOWCORE_BUF_H

#include <stddef.h>
#include <string.h>

typedef struct {
  char *data; /* NULL until the first append */
  size_t len, cap;
  int oom; /* set when a growth failed; further appends are ignored */
} fc__buf_t;

void fc__buf_init(fc__buf_t *b);
void fc__buf_free(fc__buf_t *b);  /* frees the memory; b is empty again */
void fc__buf_reset(fc__buf_t *b); /* len = 0, keeps memory, clears oom */
/* Makes room for `extra` more bytes (and the NUL). Returns 0, or -1 and
 * sets oom. */
int fc__buf_reserve(fc__buf_t *b, size_t extra);
/* The slow path of fc__buf_append: grows, then appends. */
void fc__buf_append_grow(fc__buf_t *b, const void *p, size_t n);

/* Appends p[0..n). Inline: the COPY encoder calls it per field. */
static inline void fc__buf_append(fc__buf_t *b, const void *p, size_t n) {
  if (n == 0)
    return; /* p may be NULL then; memcpy must not see it */
  if (!b->oom && b->cap > b->len && n < b->cap - b->len) {
    memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
  } else {
    fc__buf_append_grow(b, p, n);
  }
}
void fc__buf_puts(fc__buf_t *b, const char *s);
void fc__buf_printf(fc__buf_t *b, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

#endif
