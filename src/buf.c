/* The growable byte buffer (see buf.h). */
#include <stdarg.h>
#include <stdio.h>

#include "buf.h"
#include "internal.h"

void fc__buf_init(fc__buf_t *b) {
  b->data = NULL;
  b->len = 0;
  b->cap = 0;
  b->oom = 0;
}

void fc__buf_free(fc__buf_t *b) {
  fc__free(b->data);
  fc__buf_init(b);
}

void fc__buf_reset(fc__buf_t *b) {
  b->len = 0;
  b->oom = 0;
  if (b->data != NULL)
    b->data[0] = '\0';
}

int fc__buf_reserve(fc__buf_t *b, size_t extra) {
  size_t need, ncap;
  char *p;
  if (b->oom)
    return -1;
  if (b->cap > b->len && extra < b->cap - b->len)
    return 0;
  if (extra >= SIZE_MAX - b->len) {
    b->oom = 1;
    return -1;
  }
  need = b->len + extra + 1;
  ncap = b->cap < 256 ? 256 : b->cap;
  while (ncap < need) {
    if (ncap > SIZE_MAX / 2) {
      ncap = need;
      break;
    }
    ncap *= 2;
  }
  p = fc__realloc(b->data, ncap);
  if (p == NULL) {
    b->oom = 1;
    return -1;
  }
  b->data = p;
  b->cap = ncap;
  return 0;
}

void fc__buf_append_grow(fc__buf_t *b, const void *p, size_t n) {
  if (n == 0 || fc__buf_reserve(b, n) != 0)
    return;
  memcpy(b->data + b->len, p, n);
  b->len += n;
  b->data[b->len] = '\0';
}

void fc__buf_puts(fc__buf_t *b, const char *s) { fc__buf_append(b, s, strlen(s)); }

void fc__buf_printf(fc__buf_t *b, const char *fmt, ...) {
  va_list ap;
  int n;
  char small[128];
  va_start(ap, fmt);
  n = vsnprintf(small, sizeof small, fmt, ap);
  va_end(ap);
  if (n < 0)
    return;
  if ((size_t)n < sizeof small) {
    fc__buf_append(b, small, (size_t)n);
    return;
  }
  if (fc__buf_reserve(b, (size_t)n) != 0)
    return;
  va_start(ap, fmt);
  vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
  va_end(ap);
  b->len += (size_t)n;
}
