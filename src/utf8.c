/* The one UTF-8 decoder and U+FFFD sanitizer: strict RFC 3629 checks (see utf8.h). */
#include "internal.h"
#include "utf8.h"

#define ONES UINT64_C(0x0101010101010101)
#define HIGHS UINT64_C(0x8080808080808080)

size_t fc__utf8_seq(const unsigned char *s, size_t n, size_t *bad) {
  unsigned char c = s[0], lo = 0x80, hi = 0xBF; /* range of the 2nd byte */
  size_t need, i;
  if (c < 0x80)
    return 1;
  if (c >= 0xC2 && c <= 0xDF) {
    need = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    need = 3;
    if (c == 0xE0)
      lo = 0xA0; /* E0 80..9F: overlong */
    else if (c == 0xED)
      hi = 0x9F; /* ED A0..BF: surrogates */
  } else if (c >= 0xF0 && c <= 0xF4) {
    need = 4;
    if (c == 0xF0)
      lo = 0x90; /* F0 80..8F: overlong */
    else if (c == 0xF4)
      hi = 0x8F; /* F4 90..BF: past U+10FFFF */
  } else {
    /* 80..BF: a lone continuation byte; C0, C1: overlong 2-byte forms;
     * F5..FF: past U+10FFFF or never valid. */
    if (bad != NULL)
      *bad = 1;
    return 0;
  }
  for (i = 1; i < need; i++) {
    if (i >= n || s[i] < lo || s[i] > hi) {
      if (bad != NULL)
        *bad = i;
      return 0;
    }
    lo = 0x80;
    hi = 0xBF;
  }
  return need;
}

size_t fc__utf8_prefix(const char *s, size_t n, size_t *bad) {
  const unsigned char *u = (const unsigned char *)s;
  size_t i = 0;
  while (i < n) {
    size_t len, skip = 1;
    /* Eight plain ASCII bytes (1..0x7F) at a time: a byte that is 0 or has
     * its high bit set makes the test non-zero (a borrow only starts at a
     * zero byte, so there are no false positives without a true one). */
    if (n - i >= 8) {
      uint64_t w;
      memcpy(&w, u + i, 8);
      if ((((w - ONES) | w) & HIGHS) == 0) {
        i += 8;
        continue;
      }
    }
    if (u[i] != 0 && u[i] < 0x80) {
      i++;
      continue;
    }
    len = u[i] != 0 ? fc__utf8_seq(u + i, n - i, &skip) : 0;
    if (len == 0) {
      if (bad != NULL)
        *bad = skip;
      return i;
    }
    i += len;
  }
  return n;
}

int fc__utf8_valid(const char *s, size_t n) { return fc__utf8_prefix(s, n, NULL) == n; }

size_t fc__utf8_cut(const char *s, size_t n) {
  size_t back = 0;
  unsigned char lead;
  size_t want;
  while (back < 3 && back < n && ((unsigned char)s[n - back - 1] & 0xC0) == 0x80)
    back++;
  if (back == n)
    return n;
  lead = (unsigned char)s[n - back - 1];
  want = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
  return want > back + 1 ? n - back - 1 : n;
}

unsigned fc__utf8_sanitize(fc__buf_t *b, const char *s, size_t n) {
  unsigned fixed = 0;
  if (n == 0 || fc__buf_reserve(b, n) != 0)
    return 0;
  for (;;) {
    size_t bad = 1, ok = fc__utf8_prefix(s, n, &bad);
    fc__buf_append(b, s, ok);
    if (ok == n)
      break;
    fixed |= s[ok] == '\0' ? FC__UTF8_FIXED_NUL : FC__UTF8_FIXED_INVALID;
    fc__buf_append(b, FC__UTF8_REPLACEMENT, 3);
    s += ok + bad;
    n -= ok + bad;
  }
  return fixed;
}
