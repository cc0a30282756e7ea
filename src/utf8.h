/* The one UTF-8 decoder of flowcore: strict RFC 3629 validation, shared by
 * every place that must keep text valid (exec output, COPY text and jsonb,
 * log lines). What a caller does with invalid bytes (replace them with
 * U+FFFD as raw bytes or as a \ufffd escape, and whether NUL is allowed) is
 * the caller's policy; which bytes are invalid is decided here alone.
 *
 * Well-formed means RFC 3629 (= Unicode Table 3-7): no overlong forms, no
 * surrogates (U+D800..U+DFFF), nothing past U+10FFFF, no sequence cut
 * short. On an ill-formed sequence the functions report the length of its
 * "maximal subpart" (Unicode's recommended practice, as WHATWG and Python's
 * "replace" do): a caller that replaces turns each one into one U+FFFD. */
#ifndef FLOWCORE_UTF8_H
#define FLOWCORE_UTF8_H

#include <stddef.h>

#include "buf.h"

/* U+FFFD REPLACEMENT CHARACTER in UTF-8. */
#define FC__UTF8_REPLACEMENT "\xEF\xBF\xBD"

/* s[0..n), n >= 1. Returns the length (1..4) of the well-formed character
 * at s (NUL is one, of length 1), or 0 when the bytes there are not one;
 * then *bad (if not NULL) is the length of the maximal ill-formed subpart
 * (1..3), to skip over. */
size_t fc__utf8_seq(const unsigned char *s, size_t n, size_t *bad);

/* The length of the longest prefix of s[0..n) that is well-formed UTF-8
 * without NUL. When it is shorter than n, s[result] starts the first
 * problem: a NUL (*bad = 1) or an ill-formed sequence (*bad = the length
 * of its maximal subpart); *bad (if not NULL) is left alone otherwise.
 * Plain ASCII is checked eight bytes at a time. */
size_t fc__utf8_prefix(const char *s, size_t n, size_t *bad);

/* 1 when s[0..n) is all well-formed UTF-8 without NUL, else 0. */
int fc__utf8_valid(const char *s, size_t n);

/* How many of the first n bytes of s to keep so that a multi-byte
 * character is not cut in the middle: n, or less when s ends with the
 * first bytes of a longer character (those are dropped). Only the end is
 * looked at; the bytes are not validated. */
size_t fc__utf8_cut(const char *s, size_t n);

/* Appends s[0..n) to b with each NUL and each maximal ill-formed subpart
 * replaced by one U+FFFD, so that b receives well-formed UTF-8 without NUL
 * (what PostgreSQL, C strings and HTML need). Returns the FC__UTF8_FIXED_*
 * bits of what was replaced (0: appended verbatim). */
#define FC__UTF8_FIXED_NUL 1u
#define FC__UTF8_FIXED_INVALID 2u
unsigned fc__utf8_sanitize(fc__buf_t *b, const char *s, size_t n);

#endif
