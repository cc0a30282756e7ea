/* libFuzzer target: the record encoder (src/history/copy.c), what turns event
 * payloads and texts into the bytes sent to PostgreSQL.
 *
 * The input drives the construction of a JSON value with arbitrary bytes
 * in strings and keys (including invalid UTF-8 and NUL, which only the
 * _nocheck constructors allow), then checks the encoder's promises: the
 * JSON text is valid JSON that jansson parses back, contains no \u0000,
 * is valid UTF-8, and respects the size limit; text fields come out as
 * valid UTF-8 without NUL. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "utf8.h"
#include "internal.h"
#include "history/copy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct {
  const uint8_t *p;
  size_t n;
} cursor;

static unsigned take(cursor *c) {
  if (c->n == 0)
    return 0;
  c->n--;
  return *c->p++;
}

static json_t *build(cursor *c, int depth) {
  unsigned op = take(c);
  size_t len, i;
  const char *s;
  json_t *v;
  switch (depth > 6 ? op % 4 : op % 7) {
  case 0:
    return json_integer((json_int_t)take(c) - 128);
  case 1:
    return json_real((double)take(c) / 7.0);
  case 2:
    return take(c) & 1 ? json_true() : json_null();
  case 3:
    len = take(c) % 40;
    if (len > c->n)
      len = c->n;
    s = (const char *)c->p;
    c->p += len;
    c->n -= len;
    return json_stringn_nocheck(s, len);
  case 4:
    v = json_array();
    for (i = take(c) % 5; i > 0; i--)
      json_array_append_new(v, build(c, depth + 1));
    return v;
  default: {
    char key[16];
    v = json_object();
    for (i = take(c) % 5; i > 0; i--) {
      size_t k, kl = take(c) % sizeof key;
      for (k = 0; k < kl; k++)
        key[k] = (char)take(c);
      json_object_setn_new_nocheck(v, key, kl, build(c, depth + 1));
    }
    return v;
  }
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  cursor c = {data, size};
  size_t max = (size_t)(take(&c) % 4) * 64; /* 0 (no limit), 64, 128, 192 */
  json_t *v = build(&c, 0), *back;
  fc__buf_t b;
  json_error_t jerr;
  fc__buf_init(&b);
  fc__json_encode(&b, v, max);
  if (b.oom)
    __builtin_trap();
  back = json_loadb(b.data, b.len, JSON_DECODE_ANY, &jerr);
  if (back == NULL)
    __builtin_trap(); /* not JSON */
  if (!fc__utf8_valid(b.data, b.len))
    __builtin_trap();
  {
    size_t i;
    for (i = 0; i + 6 <= b.len; i++)
      if (memcmp(b.data + i, "\\u0000", 6) == 0) {
        size_t k = i, bs = 0;
        while (k > 0 && b.data[k - 1] == '\\') {
          bs++;
          k--;
        }
        if (bs % 2 == 0)
          __builtin_trap(); /* an unescaped \u0000: jsonb would refuse it */
      }
  }
  json_decref(back);
  /* Text columns: the raw remaining bytes as an error message. */
  fc__buf_reset(&b);
  {
    char *copy = fc__malloc(c.n + 1);
    if (copy != NULL) {
      memcpy(copy, c.p, c.n);
      copy[c.n] = '\0';
      fc__copy_text(&b, copy);
      /* field = 4-byte length + text */
      if (b.len < 4 || !fc__utf8_valid(b.data + 4, b.len - 4) ||
          memchr(b.data + 4, '\0', b.len - 4) != NULL)
        __builtin_trap();
      fc__free(copy);
    }
  }
  fc__buf_free(&b);
  json_decref(v);
  return 0;
}
