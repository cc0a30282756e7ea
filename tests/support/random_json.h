/* Random hostile JSON for the record encoder's tests: strings and keys with
 * NUL, invalid UTF-8, quotes, backslashes, control characters and "\u0000"
 * as text. Deterministic: the caller owns the generator's state, so a
 * failure is reproduced from its seed. */
#ifndef FC_TEST_RANDOM_JSON_H
#define FC_TEST_RANDOM_JSON_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

typedef struct {
  uint32_t state; /* the seed, then the generator's state */
} fc_test_rng_t;

/* A number in [0, n), n > 0. */
uint32_t fc_test_rnd(fc_test_rng_t *r, uint32_t n);

/* Fills s with n hostile bytes (not NUL-terminated). */
void fc_test_random_bytes(fc_test_rng_t *r, char *s, size_t n);

/* A random value nested up to 5 deep. Returns a new reference. */
json_t *fc_test_random_json(fc_test_rng_t *r);

#endif
