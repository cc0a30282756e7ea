/* flowcore: UUIDv7 (RFC 9562), time-ordered identifiers. */
#ifndef FLOWCORE_UUID_H
#define FLOWCORE_UUID_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Makes a new UUIDv7: 48-bit Unix milliseconds, version 7, a 12-bit
 * sub-millisecond fraction (rand_a, method 3 of RFC 9562 §6.2) so ids made
 * by one process sort in creation order, variant 10, 62 random bits.
 * Thread-safe. Returns 0 or a libuv error if no randomness is available. */
FC_EXTERN int fc_uuid7(uint8_t out[16]);
/* Writes the canonical 36-character lowercase form plus NUL into text. */
FC_EXTERN void fc_uuid_format(const uint8_t uuid[16], char text[37]);
/* Parses the canonical form; returns 0 or FC_EINVAL. */
FC_EXTERN int fc_uuid_parse(const char *text, uint8_t out[16]);

#ifdef __cplusplus
}
#endif
#endif
