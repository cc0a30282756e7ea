#include "random_json.h"

uint32_t fc_test_rnd(fc_test_rng_t *r, uint32_t n) {
  r->state = r->state * 1103515245u + 12345u;
  return (r->state >> 8) % n;
}

void fc_test_random_bytes(fc_test_rng_t *r, char *s, size_t n) {
  /* Plain text, quotes and backslashes, control characters, whole UTF-8
   * sequences of 2 to 4 bytes, and bytes that are never valid UTF-8 (0xFF,
   * an overlong lead 0xC0, a surrogate half 0xED 0xA0). */
  static const char pool[] =
      "aZ '\\\"/\n\t\x01\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80\xFF\xC0\xED\xA0u0:,{]";
  size_t i;
  int nasty = fc_test_rnd(r, 3) == 0;
  for (i = 0; i < n; i++) {
    s[i] = pool[fc_test_rnd(r, sizeof pool - 1)];
    if (nasty && fc_test_rnd(r, 16) == 0)
      s[i] = fc_test_rnd(r, 2) ? '\0' : (char)fc_test_rnd(r, 256);
  }
}

static json_t *random_value(fc_test_rng_t *r, int depth) {
  char s[16];
  size_t n = fc_test_rnd(r, sizeof s), i, count;
  json_t *v;
  switch (depth > 4 ? fc_test_rnd(r, 4) : fc_test_rnd(r, 6)) {
  case 0:
    return json_integer((json_int_t)fc_test_rnd(r, 100000) - 50000);
  case 1:
    return fc_test_rnd(r, 2) ? json_null() : json_real((double)fc_test_rnd(r, 100000) / 64.0);
  case 2:
  case 3:
    fc_test_random_bytes(r, s, n);
    return json_stringn_nocheck(s, n);
  case 4:
    v = json_array();
    count = fc_test_rnd(r, 5);
    for (i = 0; i < count; i++)
      json_array_append_new(v, random_value(r, depth + 1));
    return v;
  default:
    v = json_object();
    count = fc_test_rnd(r, 5);
    for (i = 0; i < count; i++) {
      n = fc_test_rnd(r, 8);
      fc_test_random_bytes(r, s, n);
      json_object_setn_new_nocheck(v, s, n, random_value(r, depth + 1));
    }
    return v;
  }
}

json_t *fc_test_random_json(fc_test_rng_t *r) { return random_value(r, 0); }
