/* libFuzzer target: the quick JSON reader (src/json_scan.c) against jansson.
 * For any bytes, when fc__json_scan gives a value, jansson's json_loadb
 * (JSON_DECODE_ANY | JSON_DISABLE_EOF_CHECK | JSON_REJECT_DUPLICATES) must
 * give an equal one, with the same keys in the same order, after the same
 * number of bytes. (When the reader gives up, jansson decides: nothing to
 * compare.) */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "json_scan.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* json_equal, and the same key order in every object. */
static int same(json_t *a, json_t *b) {
  if (!json_equal(a, b))
    return 0;
  if (json_is_object(a)) {
    void *ia = json_object_iter(a), *ib = json_object_iter(b);
    for (; ia != NULL && ib != NULL;
         ia = json_object_iter_next(a, ia), ib = json_object_iter_next(b, ib))
      if (strcmp(json_object_iter_key(ia), json_object_iter_key(ib)) != 0 ||
          !same(json_object_iter_value(ia), json_object_iter_value(ib)))
        return 0;
    return ia == NULL && ib == NULL;
  }
  if (json_is_array(a)) {
    size_t i;
    for (i = 0; i < json_array_size(a); i++)
      if (!same(json_array_get(a, i), json_array_get(b, i)))
        return 0;
  }
  return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  json_error_t jerr;
  size_t used = 0;
  json_t *quick = fc__json_scan((const char *)data, size, &used), *ref;
  if (quick == NULL)
    return 0;
  ref = json_loadb((const char *)data, size,
                   JSON_DECODE_ANY | JSON_DISABLE_EOF_CHECK | JSON_REJECT_DUPLICATES, &jerr);
  if (ref == NULL || !same(quick, ref) || jerr.position < 0 || (size_t)jerr.position != used)
    __builtin_trap();
  json_decref(ref);
  json_decref(quick);
  return 0;
}
