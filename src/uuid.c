/* UUIDv7 (RFC 9562): 48-bit Unix milliseconds, version 7, a 12-bit
 * sub-millisecond fraction in rand_a (method 3 of §6.2), variant 10 and 62
 * random bits in rand_b.
 *
 * Ids are monotonic within the process: the 60-bit (milliseconds, fraction)
 * timestamp of a new id is strictly greater than the previous one; when the
 * clock has not advanced (or went backwards) the previous timestamp plus one
 * is used, so ids sort in creation order.
 *
 * Random bits come from xoshiro256** seeded once per process (and again in
 * a forked child, so parent and child never share a stream) from the
 * system's CSPRNG through uv_random(). Everything is under one mutex. */
#define _POSIX_C_SOURCE 200809L

#include <pthread.h>
#include <time.h>

#include <uv.h>

#include "internal.h"

static pthread_mutex_t uuid_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t uuid_once = PTHREAD_ONCE_INIT;
/* Guarded by uuid_lock. */
static int uuid_seeded;
static uint64_t uuid_rng[4];
static uint64_t uuid_last; /* (ms << 12) | fraction of the last id */

static void uuid_atfork_prepare(void) { pthread_mutex_lock(&uuid_lock); }

static void uuid_atfork_parent(void) { pthread_mutex_unlock(&uuid_lock); }

static void uuid_atfork_child(void) {
  uuid_seeded = 0; /* the child draws its own seed */
  pthread_mutex_unlock(&uuid_lock);
}

static void uuid_init_once(void) {
  /* If this fails a forked child would repeat the parent's random stream;
   * its ids still differ from the parent's by the timestamp in most cases. */
  (void)pthread_atfork(uuid_atfork_prepare, uuid_atfork_parent, uuid_atfork_child);
}

static uint64_t rotl64(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

/* xoshiro256** (Blackman and Vigna). Called with uuid_lock held. */
static uint64_t uuid_rng_next(void) {
  uint64_t *s = uuid_rng;
  uint64_t result = rotl64(s[1] * 5, 7) * 9;
  uint64_t t = s[1] << 17;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = rotl64(s[3], 45);
  return result;
}

/* Called with uuid_lock held. Returns 0 or a libuv error. */
static int uuid_seed(void) {
  int rc = uv_random(NULL, NULL, uuid_rng, sizeof uuid_rng, 0, NULL);
  if (rc != 0)
    return rc;
  if ((uuid_rng[0] | uuid_rng[1] | uuid_rng[2] | uuid_rng[3]) == 0)
    uuid_rng[0] = 1; /* the all-zero state is a fixed point */
  uuid_seeded = 1;
  return 0;
}

int fc_uuid7(uint8_t out[16]) {
  struct timespec ts;
  uint64_t now, stamp, ms, rnd;
  unsigned frac;
  int rc, i;

  if (out == NULL)
    return FC_EINVAL;
  pthread_once(&uuid_once, uuid_init_once);
  clock_gettime(CLOCK_REALTIME, &ts);
  ms = (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
  frac = (unsigned)(((uint64_t)ts.tv_nsec % 1000000u) * 4096u / 1000000u);
  now = (ms << 12) | frac;

  pthread_mutex_lock(&uuid_lock);
  if (!uuid_seeded && (rc = uuid_seed()) != 0) {
    pthread_mutex_unlock(&uuid_lock);
    return rc;
  }
  stamp = now > uuid_last ? now : uuid_last + 1;
  uuid_last = stamp;
  rnd = uuid_rng_next();
  pthread_mutex_unlock(&uuid_lock);

  ms = stamp >> 12;
  frac = (unsigned)(stamp & 0xfffu);
  for (i = 0; i < 6; i++)
    out[i] = (uint8_t)(ms >> (8 * (5 - i)));
  out[6] = (uint8_t)(0x70u | (frac >> 8));
  out[7] = (uint8_t)(frac & 0xffu);
  out[8] = (uint8_t)(0x80u | ((rnd >> 56) & 0x3fu));
  for (i = 9; i < 16; i++)
    out[i] = (uint8_t)(rnd >> (8 * (15 - i)));
  return 0;
}

void fc_uuid_format(const uint8_t uuid[16], char text[37]) {
  static const char hex[] = "0123456789abcdef";
  int i;
  char *p = text;
  for (i = 0; i < 16; i++) {
    if (i == 4 || i == 6 || i == 8 || i == 10)
      *p++ = '-';
    *p++ = hex[uuid[i] >> 4];
    *p++ = hex[uuid[i] & 0x0f];
  }
  *p = '\0';
}

static int hex_value(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

/* Accepts exactly the 8-4-4-4-12 hex form (either letter case); out is
 * written only on success. */
int fc_uuid_parse(const char *text, uint8_t out[16]) {
  uint8_t buf[16];
  size_t pos = 0;
  int i;
  if (text == NULL || out == NULL)
    return FC_EINVAL;
  for (i = 0; i < 16; i++) {
    int hi, lo;
    if (i == 4 || i == 6 || i == 8 || i == 10) {
      if (text[pos] != '-')
        return FC_EINVAL;
      pos++;
    }
    hi = hex_value(text[pos]);
    if (hi < 0)
      return FC_EINVAL;
    lo = hex_value(text[pos + 1]);
    if (lo < 0)
      return FC_EINVAL;
    buf[i] = (uint8_t)(hi << 4 | lo);
    pos += 2;
  }
  if (text[pos] != '\0')
    return FC_EINVAL;
  memcpy(out, buf, sizeof buf);
  return 0;
}
