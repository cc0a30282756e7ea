/* Unit tests for src/utf8.c, the one UTF-8 decoder: every boundary of
 * RFC 3629, overlong forms, surrogates, past U+10FFFF, truncated sequences
 * and lone continuation bytes, the maximal-subpart lengths, and an
 * exhaustive comparison with a decoder written from the code point rules. */
#include <stdio.h>
#include <string.h>

#include "fc_test.h"
#include "utf8.h"

typedef struct {
  const char *name;
  const char *in;
  size_t n;
  size_t len; /* what fc__utf8_seq returns */
  size_t bad; /* *bad when len is 0 */
} seq_case_t;

#define C(name, s, len, bad)                                                                       \
  { name, s, sizeof s - 1, len, bad }

static const seq_case_t seq_cases[] = {
    C("NUL is a character", "\x00", 1, 0),
    C("U+007F", "\x7F", 1, 0),
    C("U+0080", "\xC2\x80", 2, 0),
    C("U+07FF", "\xDF\xBF", 2, 0),
    C("U+0800", "\xE0\xA0\x80", 3, 0),
    C("U+D7FF", "\xED\x9F\xBF", 3, 0),
    C("U+E000", "\xEE\x80\x80", 3, 0),
    C("U+FFFD", "\xEF\xBF\xBD", 3, 0),
    C("U+FFFF", "\xEF\xBF\xBF", 3, 0),
    C("U+10000", "\xF0\x90\x80\x80", 4, 0),
    C("U+10FFFF", "\xF4\x8F\xBF\xBF", 4, 0),
    /* past U+10FFFF */
    C("U+110000", "\xF4\x90\x80\x80", 0, 1),
    C("U+13FFFF", "\xF4\xBF\xBF\xBF", 0, 1),
    C("F5 lead", "\xF5\x80\x80\x80", 0, 1),
    C("F7 lead (U+1FFFFF)", "\xF7\xBF\xBF\xBF", 0, 1),
    C("5-byte form", "\xF8\x88\x80\x80\x80", 0, 1),
    C("6-byte form", "\xFC\x84\x80\x80\x80\x80", 0, 1),
    C("FE", "\xFE", 0, 1),
    C("FF", "\xFF", 0, 1),
    /* surrogates */
    C("U+D800", "\xED\xA0\x80", 0, 1),
    C("U+DBFF", "\xED\xAF\xBF", 0, 1),
    C("U+DC00", "\xED\xB0\x80", 0, 1),
    C("U+DFFF", "\xED\xBF\xBF", 0, 1),
    C("CESU-8 pair", "\xED\xA0\xBD\xED\xB8\x80", 0, 1),
    /* overlong forms */
    C("overlong NUL", "\xC0\x80", 0, 1),
    C("overlong U+007F (2)", "\xC1\xBF", 0, 1),
    C("overlong U+0000 (3)", "\xE0\x80\x80", 0, 1),
    C("overlong U+07FF (3)", "\xE0\x9F\xBF", 0, 1),
    C("overlong U+0000 (4)", "\xF0\x80\x80\x80", 0, 1),
    C("overlong U+FFFF (4)", "\xF0\x8F\xBF\xBF", 0, 1),
    /* lone continuation bytes */
    C("80", "\x80", 0, 1),
    C("BF", "\xBF", 0, 1),
    C("80 80", "\x80\x80", 0, 1),
    /* truncated at the end of the buffer */
    C("C2 at end", "\xC2", 0, 1),
    C("E2 at end", "\xE2", 0, 1),
    C("E2 82 at end", "\xE2\x82", 0, 2),
    C("F0 at end", "\xF0", 0, 1),
    C("F0 9F at end", "\xF0\x9F", 0, 2),
    C("F0 9F 98 at end", "\xF0\x9F\x98", 0, 3),
    C("F4 8F BF at end", "\xF4\x8F\xBF", 0, 3),
    /* truncated by another byte */
    C("C2 then ASCII", "\xC2\x41", 0, 1),
    C("E2 82 then ASCII", "\xE2\x82\x41", 0, 2),
    C("F0 9F 98 then ASCII", "\xF0\x9F\x98\x41", 0, 3),
    C("E2 then a new lead", "\xE2\xC3\xA9", 0, 1),
    C("F0 9F then a new lead", "\xF0\x9F\xE2\x82\xAC", 0, 2),
};

static void test_seq_table(void **state) {
  size_t i;
  (void)state;
  for (i = 0; i < sizeof seq_cases / sizeof seq_cases[0]; i++) {
    const seq_case_t *c = &seq_cases[i];
    size_t bad = 99, len = fc__utf8_seq((const unsigned char *)c->in, c->n, &bad);
    if (len != c->len || (len == 0 && bad != c->bad) || (len != 0 && bad != 99))
      fail_msg("%s: length %zu bad %zu, want %zu bad %zu", c->name, len, bad, c->len,
               c->len == 0 ? c->bad : (size_t)99);
    /* The validity of the whole input (without NUL) agrees. */
    if (fc__utf8_valid(c->in, c->n) != (c->len == c->n && c->in[0] != '\0'))
      fail_msg("%s: fc__utf8_valid disagrees", c->name);
  }
}

/* The code point rules, written independently of utf8.c: the expected
 * length of the character at s[0..n), 0 when it is not one. */
static size_t ref_seq(const unsigned char *s, size_t n) {
  size_t len, i;
  uint32_t cp, min;
  if (s[0] < 0x80)
    return 1;
  if ((s[0] & 0xE0) == 0xC0) {
    len = 2, cp = s[0] & 0x1Fu, min = 0x80;
  } else if ((s[0] & 0xF0) == 0xE0) {
    len = 3, cp = s[0] & 0x0Fu, min = 0x800;
  } else if ((s[0] & 0xF8) == 0xF0) {
    len = 4, cp = s[0] & 0x07u, min = 0x10000;
  } else {
    return 0;
  }
  if (n < len)
    return 0;
  for (i = 1; i < len; i++) {
    if ((s[i] & 0xC0) != 0x80)
      return 0;
    cp = cp << 6 | (s[i] & 0x3Fu);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
    return 0;
  return len;
}

/* 1 when s[0..k) (1 <= k <= 3) is a proper prefix of some well-formed
 * character: only the second byte has a range that depends on the lead,
 * so later bytes can be filled with 80. */
static int is_prefix(const unsigned char *s, size_t k) {
  unsigned char t[4] = {0x80, 0x80, 0x80, 0x80};
  memcpy(t, s, k);
  return ref_seq(t, 4) > k;
}

/* The length of the maximal ill-formed subpart at s[0..n) (not a
 * character): the longest prefix that could still begin one, at least 1. */
static size_t ref_bad(const unsigned char *s, size_t n) {
  size_t k;
  for (k = n < 3 ? n : 3; k >= 2; k--)
    if (is_prefix(s, k))
      return k;
  return 1;
}

static void check_one(const unsigned char *s, size_t n) {
  size_t bad = 0, len = fc__utf8_seq(s, n, &bad), want = ref_seq(s, n);
  if (len != want || (len == 0 && bad != ref_bad(s, n)))
    fail_msg("%02x %02x %02x %02x (n %zu): length %zu bad %zu, want %zu bad %zu", s[0],
             n > 1 ? s[1] : 0, n > 2 ? s[2] : 0, n > 3 ? s[3] : 0, n, len, bad, want,
             want == 0 ? ref_bad(s, n) : 0);
}

/* Every 1-, 2- and 3-byte input, and every 4-byte input with the last two
 * bytes drawn from the edges of the continuation range and just outside. */
static void test_seq_exhaustive(void **state) {
  static const unsigned char edges[] = {0x00, 0x41, 0x7F, 0x80, 0x8F, 0x90,
                                        0x9F, 0xA0, 0xBF, 0xC0, 0xF4, 0xFF};
  unsigned a, b, c;
  size_t i, j;
  (void)state;
  for (a = 0; a < 256; a++) {
    unsigned char s[4] = {(unsigned char)a, 0, 0, 0};
    check_one(s, 1);
    for (b = 0; b < 256; b++) {
      s[1] = (unsigned char)b;
      check_one(s, 2);
      for (c = 0; c < 256; c++) {
        s[2] = (unsigned char)c;
        check_one(s, 3);
      }
      if (a >= 0xF0) {
        for (i = 0; i < sizeof edges; i++) {
          for (j = 0; j < sizeof edges; j++) {
            s[2] = edges[i];
            s[3] = edges[j];
            check_one(s, 4);
          }
        }
      }
    }
  }
}

/* The valid prefix: where the first problem starts and how long it is;
 * ASCII runs longer than eight bytes (the word-at-a-time path) with the
 * problem at every offset. */
static void test_prefix(void **state) {
  char buf[40];
  size_t at, bad;
  (void)state;
  bad = 7;
  assert_int_equal(fc__utf8_prefix("", 0, &bad), 0);
  assert_int_equal(bad, 7); /* untouched */
  assert_int_equal(fc__utf8_prefix("h\xC3\xA9llo \xE2\x82\xAC \xF0\x9F\x98\x80", 15, &bad), 15);
  assert_int_equal(bad, 7);
  assert_int_equal(fc__utf8_prefix("abc\0def", 7, &bad), 3);
  assert_int_equal(bad, 1);
  assert_int_equal(fc__utf8_prefix("ab\xE2\x82", 4, &bad), 2);
  assert_int_equal(bad, 2);
  assert_int_equal(fc__utf8_prefix("\xC3\xA9\xED\xA0\x80", 5, &bad), 2);
  assert_int_equal(bad, 1);
  assert_int_equal(fc__utf8_prefix("abc\x80", 4, NULL), 3);
  for (at = 0; at < 32; at++) {
    memset(buf, 'x', sizeof buf);
    buf[at] = '\0';
    bad = 0;
    assert_int_equal(fc__utf8_prefix(buf, sizeof buf, &bad), at);
    assert_int_equal(bad, 1);
    memcpy(buf + at, "\xF0\x9F\x98", 3);
    assert_int_equal(fc__utf8_prefix(buf, sizeof buf, &bad), at);
    assert_int_equal(bad, 3);
    assert_int_equal(fc__utf8_prefix(buf, at + 3, &bad), at);
    assert_int_equal(bad, 3);
    memcpy(buf + at, "\xF0\x9F\x98\x80", 4);
    assert_int_equal(fc__utf8_prefix(buf, sizeof buf, &bad), sizeof buf);
    assert_true(fc__utf8_valid(buf, sizeof buf));
    buf[sizeof buf - 1] = '\xC0';
    assert_false(fc__utf8_valid(buf, sizeof buf));
  }
}

/* Unicode's own example of replacement by maximal subparts (chapter 3,
 * "U+FFFD Substitution of Maximal Subparts"): 61 F1 80 80 E1 80 C2 62 80
 * 63 80 BF 64 gives a, 3 x U+FFFD, b, U+FFFD, c, 2 x U+FFFD, d. */
static void test_maximal_subparts(void **state) {
  const char in[] = "\x61\xF1\x80\x80\xE1\x80\xC2\x62\x80\x63\x80\xBF\x64";
  char out[64];
  size_t n = sizeof in - 1, o = 0;
  const char *s = in;
  (void)state;
  for (;;) {
    size_t bad = 0, ok = fc__utf8_prefix(s, n, &bad);
    memcpy(out + o, s, ok);
    o += ok;
    if (ok == n)
      break;
    out[o++] = '?';
    s += ok + bad;
    n -= ok + bad;
  }
  out[o] = '\0';
  assert_string_equal(out, "a???b?c??d");
}

static void test_cut(void **state) {
  (void)state;
  assert_int_equal(fc__utf8_cut("", 0), 0);
  assert_int_equal(fc__utf8_cut("abc", 3), 3);
  assert_int_equal(fc__utf8_cut("a\xC3", 2), 1);
  assert_int_equal(fc__utf8_cut("a\xC3\xA9", 3), 3);
  assert_int_equal(fc__utf8_cut("a\xE2", 2), 1);
  assert_int_equal(fc__utf8_cut("a\xE2\x82", 3), 1);
  assert_int_equal(fc__utf8_cut("a\xE2\x82\xAC", 4), 4);
  assert_int_equal(fc__utf8_cut("a\xF0\x9F\x98", 4), 1);
  assert_int_equal(fc__utf8_cut("a\xF0\x9F\x98\x80", 5), 5);
  assert_int_equal(fc__utf8_cut("\xF0\x9F\x98", 3), 0);
  /* Not a partial character: kept (cutting does not validate). */
  assert_int_equal(fc__utf8_cut("\x80\x80\x80\x80", 4), 4);
  assert_int_equal(fc__utf8_cut("a\x80", 2), 2);
}

/* fc__utf8_sanitize: each NUL and each maximal ill-formed subpart becomes
 * one U+FFFD, the bits say which kinds were replaced, valid text is
 * appended verbatim after what the buffer already holds. */
static void test_sanitize(void **state) {
  fc__buf_t b;
  (void)state;
  fc__buf_init(&b);
  fc__buf_puts(&b, "<");
  assert_int_equal(fc__utf8_sanitize(&b, "h\xC3\xA9llo", 6), 0);
  assert_int_equal(b.len, 7);
  assert_string_equal(b.data, "<h\xC3\xA9llo");

  fc__buf_reset(&b);
  assert_int_equal(fc__utf8_sanitize(&b, "a\0b", 3), FC__UTF8_FIXED_NUL);
  assert_string_equal(b.data, "a" FC__UTF8_REPLACEMENT "b");

  fc__buf_reset(&b);
  /* E0 80 is an overlong prefix: two subparts; F0 9F 98 cut short: one. */
  assert_int_equal(fc__utf8_sanitize(&b, "\xE0\x80x\0\xF0\x9F\x98", 7),
                   FC__UTF8_FIXED_NUL | FC__UTF8_FIXED_INVALID);
  assert_string_equal(b.data, FC__UTF8_REPLACEMENT FC__UTF8_REPLACEMENT "x" FC__UTF8_REPLACEMENT
                                                                      FC__UTF8_REPLACEMENT);
  assert_int_equal(b.oom, 0);

  /* An exhausted buffer appends nothing and reports nothing. */
  b.oom = 1;
  assert_int_equal(fc__utf8_sanitize(&b, "\xFF", 1), 0);
  fc__buf_free(&b);
  assert_null(b.data);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_seq_table), cmocka_unit_test(test_seq_exhaustive),
      cmocka_unit_test(test_prefix),    cmocka_unit_test(test_maximal_subparts),
      cmocka_unit_test(test_cut),       cmocka_unit_test(test_sanitize),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
