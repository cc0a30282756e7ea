/* SHA-256 (FIPS 180-4), internal. Used for migration checksums: computed on
 * the client from the file's bytes, so `migrate --status` can compare files
 * with the database without sending them, and no server function (md5() is
 * refused on FIPS-mode servers) is needed. Not a general crypto API. */
#ifndef FLOWCORE_PG_SHA256_H
#define FLOWCORE_PG_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define FC__SHA256_DIGEST_LENGTH 32
#define FC__SHA256_HEX_LENGTH 65 /* 64 hex digits + NUL */

typedef struct {
  uint32_t state[8];
  uint64_t total; /* bytes hashed so far */
  uint8_t block[64];
  size_t used; /* bytes waiting in block */
} fc__sha256_t;

void fc__sha256_init(fc__sha256_t *ctx);
void fc__sha256_update(fc__sha256_t *ctx, const void *data, size_t len);
/* Writes the digest; ctx must be initialized again before reuse. */
void fc__sha256_final(fc__sha256_t *ctx, uint8_t digest[FC__SHA256_DIGEST_LENGTH]);
/* One-shot: lowercase hex digest of data[0..len) into hex (NUL-terminated). */
void fc__sha256_hex(const void *data, size_t len, char hex[FC__SHA256_HEX_LENGTH]);

#endif
