/* Unit tests for src/history/copy.c: the buffer, UTF-8 sanitizing, the JSON
 * encoding with its marker, and the binary COPY field encoders. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fc_test.h"
#include "random_json.h"
#include "history/copy.h"

#define FFFD "\xEF\xBF\xBD"

/* ---- helpers ----------------------------------------------------------- */

static void assert_bytes(const fc__buf_t *b, size_t from, const void *want, size_t n) {
  assert_false(b->oom);
  if (b->len - from != n || memcmp(b->data + from, want, n) != 0) {
    size_t i;
    fprintf(stderr, "got %zu bytes:", b->len - from);
    for (i = from; i < b->len && i < from + 64; i++)
      fprintf(stderr, " %02x", (unsigned char)b->data[i]);
    fprintf(stderr, "\nwant %zu bytes:", n);
    for (i = 0; i < n && i < 64; i++)
      fprintf(stderr, " %02x", ((const unsigned char *)want)[i]);
    fprintf(stderr, "\n");
    fail_msg("bytes differ");
  }
}

/* Encodes v and returns the text as a new NUL-terminated string. */
static char *encode(json_t *v, size_t max_bytes, unsigned *changed) {
  fc__buf_t b;
  char *s;
  fc__buf_init(&b);
  *changed = fc__json_encode(&b, v, max_bytes);
  assert_false(b.oom);
  s = malloc(b.len + 1);
  assert_non_null(s);
  memcpy(s, b.data, b.len);
  s[b.len] = '\0';
  assert_int_equal(strlen(s), b.len); /* no NUL byte inside */
  fc__buf_free(&b);
  return s;
}

static void assert_no_nul(json_t *v) {
  size_t i;
  const char *key;
  json_t *item;
  void *tmp;
  switch (json_typeof(v)) {
  case JSON_STRING:
    assert_int_equal(strlen(json_string_value(v)), json_string_length(v));
    break;
  case JSON_ARRAY:
    json_array_foreach(v, i, item) assert_no_nul(item);
    break;
  case JSON_OBJECT:
    json_object_foreach_safe(v, tmp, key, item) {
      assert_int_equal(strlen(key), json_object_iter_key_len(json_object_key_to_iter(key)));
      assert_no_nul(item);
    }
    break;
  default:
    break;
  }
}

/* Everything fc__json_encode appends parses back and holds no NUL (which
 * jsonb would refuse as \u0000). */
static json_t *parse_back(const char *text) {
  json_error_t err;
  json_t *v = json_loads(text, JSON_DECODE_ANY, &err);
  if (v == NULL)
    fail_msg("does not parse (%s): %s", err.text, text);
  assert_no_nul(v);
  return v;
}

static void assert_encodes_verbatim(json_t *v, const char *want) {
  unsigned changed = 99;
  char *s = encode(v, 0, &changed);
  assert_int_equal(changed, 0);
  assert_string_equal(s, want);
  json_decref(parse_back(s));
  free(s);
}

/* Checks the marker of a changed value: "changed" lists exactly `names`
 * (comma-separated JSON strings), original_bytes; returns the "value"
 * (borrowed from *root, which the caller frees). */
static json_t *assert_marker(const char *text, const char *names, size_t original_bytes,
                             json_t **root) {
  char prefix[256];
  json_t *v = parse_back(text), *meta;
  snprintf(prefix, sizeof prefix,
           "{\"$flowcore\":{\"changed\":[%s],\"original_bytes\":%zu},\"value\":", names,
           original_bytes);
  if (strncmp(text, prefix, strlen(prefix)) != 0)
    fail_msg("marker prefix: %s", text);
  assert_int_equal(json_object_size(v), 2);
  meta = json_object_get(v, "$flowcore");
  assert_non_null(meta);
  assert_int_equal(json_integer_value(json_object_get(meta, "original_bytes")),
                   (json_int_t)original_bytes);
  *root = v;
  assert_non_null(json_object_get(v, "value"));
  return json_object_get(v, "value");
}

/* ---- buffer ------------------------------------------------------------ */

static void test_buf(void **state) {
  fc__buf_t b;
  char big[5000];
  (void)state;
  fc__buf_init(&b);
  assert_null(b.data);
  fc__buf_append(&b, "abc", 3);
  fc__buf_append(&b, NULL, 0);
  assert_bytes(&b, 0, "abc", 3);
  memset(big, 'z', sizeof big);
  fc__buf_append(&b, big, sizeof big);
  assert_int_equal(b.len, 3 + sizeof big);
  assert_true(b.cap >= b.len);

  /* oom is sticky: appends are ignored until reset. */
  b.oom = 1;
  fc__buf_append(&b, "x", 1);
  assert_int_equal(b.len, 3 + sizeof big);
  assert_int_equal(fc__copy_text(&b, "hello"), 0);
  fc__copy_int8(&b, 1);
  assert_int_equal(b.len, 3 + sizeof big);

  fc__buf_reset(&b);
  assert_int_equal(b.len, 0);
  assert_int_equal(b.oom, 0);
  assert_non_null(b.data); /* memory kept */
  fc__buf_append(&b, "q", 1);
  assert_bytes(&b, 0, "q", 1);
  fc__buf_free(&b);
  assert_null(b.data);
  assert_int_equal(b.len, 0);
  fc__buf_free(&b); /* twice is fine */
}

/* ---- UTF-8 ------------------------------------------------------------- */

typedef struct {
  const char *name;
  const char *in;
  size_t n;
  const char *out; /* NUL-free */
  unsigned changed;
} utf8_case_t;

#define IN(s) s, sizeof(s) - 1

static const utf8_case_t utf8_cases[] = {
    {"empty", IN(""), "", 0},
    {"ascii", IN("hello, world"), "hello, world", 0},
    {"2-3-4 byte", IN("\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80"),
     "\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80", 0},
    {"U+FFFF", IN("\xEF\xBF\xBF"), "\xEF\xBF\xBF", 0},
    {"U+10FFFF", IN("\xF4\x8F\xBF\xBF"), "\xF4\x8F\xBF\xBF", 0},
    {"U+D7FF", IN("\xED\x9F\xBF"), "\xED\x9F\xBF", 0},
    {"U+E000", IN("\xEE\x80\x80"), "\xEE\x80\x80", 0},
    {"overlong 2 (NUL)", IN("\xC0\x80"), FFFD FFFD, FC__CHANGED_INVALID_UTF8},
    {"overlong 2 (C1)", IN("a\xC1\xBFz"), "a" FFFD FFFD "z", FC__CHANGED_INVALID_UTF8},
    {"overlong 3", IN("\xE0\x80\x80"), FFFD FFFD FFFD, FC__CHANGED_INVALID_UTF8},
    {"overlong 3 (U+07FF)", IN("\xE0\x9F\xBF"), FFFD FFFD FFFD, FC__CHANGED_INVALID_UTF8},
    {"overlong 4", IN("\xF0\x80\x80\x80"), FFFD FFFD FFFD FFFD, FC__CHANGED_INVALID_UTF8},
    {"surrogate D800", IN("\xED\xA0\x80"), FFFD FFFD FFFD, FC__CHANGED_INVALID_UTF8},
    {"surrogate DFFF", IN("x\xED\xBF\xBFy"), "x" FFFD FFFD FFFD "y", FC__CHANGED_INVALID_UTF8},
    {"too large F4 90", IN("\xF4\x90\x80\x80"), FFFD FFFD FFFD FFFD, FC__CHANGED_INVALID_UTF8},
    {"too large F5", IN("\xF5\x80"), FFFD FFFD, FC__CHANGED_INVALID_UTF8},
    {"byte FF", IN("\xFF"), FFFD, FC__CHANGED_INVALID_UTF8},
    {"truncated 2 at end", IN("ab\xC3"), "ab" FFFD, FC__CHANGED_INVALID_UTF8},
    {"truncated 3 at end", IN("a\xE2\x82"), "a" FFFD, FC__CHANGED_INVALID_UTF8},
    {"truncated 4 at end", IN("a\xF0\x9F\x98"), "a" FFFD, FC__CHANGED_INVALID_UTF8},
    {"truncated 3 inside", IN("\xE2\x82" "a"), FFFD "a", FC__CHANGED_INVALID_UTF8},
    {"lone continuation", IN("\x80"), FFFD, FC__CHANGED_INVALID_UTF8},
    {"two continuations", IN("a\x80\xBF" "b"), "a" FFFD FFFD "b", FC__CHANGED_INVALID_UTF8},
    {"NUL", IN("a\0b"), "a" FFFD "b", FC__CHANGED_NUL},
    {"NUL only", IN("\0"), FFFD, FC__CHANGED_NUL},
    {"NUL and invalid", IN("\0\xFF"), FFFD FFFD, FC__CHANGED_NUL | FC__CHANGED_INVALID_UTF8},
    /* Long enough for the eight-bytes-at-a-time path on both sides. */
    {"long", IN("0123456789abcdef\xFF" "0123456789abcdef\0" "0123456789\xC3\xA9" "0123456"),
     "0123456789abcdef" FFFD "0123456789abcdef" FFFD "0123456789\xC3\xA9" "0123456",
     FC__CHANGED_NUL | FC__CHANGED_INVALID_UTF8},
};

static void test_utf8_table(void **state) {
  size_t i;
  fc__buf_t b;
  (void)state;
  fc__buf_init(&b);
  for (i = 0; i < sizeof utf8_cases / sizeof utf8_cases[0]; i++) {
    const utf8_case_t *c = &utf8_cases[i];
    unsigned changed;
    fc__buf_reset(&b);
    fc__buf_append(&b, "<", 1); /* appends after what is there */
    changed = fc__utf8_sanitize(&b, c->in, c->n);
    if (changed != c->changed)
      fail_msg("%s: changed %u, want %u", c->name, changed, c->changed);
    assert_true(b.len >= 1 && b.data[0] == '<');
    if (b.len - 1 != strlen(c->out) || memcmp(b.data + 1, c->out, b.len - 1) != 0) {
      fprintf(stderr, "case %s\n", c->name);
      assert_bytes(&b, 1, c->out, strlen(c->out));
    }
  }
  fc__buf_free(&b);
}

/* Every byte value at every position of a 2-byte prefix: the result is
 * always valid UTF-8 (jansson agrees) and never holds NUL. */
static void test_utf8_exhaustive_pairs(void **state) {
  fc__buf_t b;
  unsigned x, y;
  (void)state;
  fc__buf_init(&b);
  for (x = 0; x < 256; x++) {
    for (y = 0; y < 256; y++) {
      char in[4] = {(char)x, (char)y, '\xBF', 'a'};
      json_t *s;
      fc__buf_reset(&b);
      fc__utf8_sanitize(&b, in, sizeof in);
      assert_null(memchr(b.data, 0, b.len));
      s = json_stringn(b.data, b.len);
      if (s == NULL)
        fail_msg("not valid UTF-8 after sanitizing %02x %02x", x, y);
      json_decref(s);
    }
  }
  fc__buf_free(&b);
}

/* ---- JSON -------------------------------------------------------------- */

static void test_json_plain(void **state) {
  json_t *v;
  (void)state;
  assert_encodes_verbatim(NULL, "null");
  v = json_pack("{s:i, s:[b, b, n, f, s], s:{}, s:[]}", "b", 1, "a", 1, 0, 1.5, "x", "o", "e");
  assert_non_null(v);
  assert_encodes_verbatim(v, "{\"b\":1,\"a\":[true,false,null,1.5,\"x\"],\"o\":{},\"e\":[]}");
  json_decref(v);

  v = json_string("q\"\\\n\t/\xC3\xA9\x01 \xF0\x9F\x98\x80");
  assert_encodes_verbatim(v, "\"q\\\"\\\\\\n\\t/\xC3\xA9\\u0001 \xF0\x9F\x98\x80\"");
  json_decref(v);

  v = json_integer(-42);
  assert_encodes_verbatim(v, "-42");
  json_decref(v);
  v = json_integer(INT64_MIN);
  assert_encodes_verbatim(v, "-9223372036854775808");
  json_decref(v);
  v = json_real(0.25);
  assert_encodes_verbatim(v, "0.25");
  json_decref(v);
  v = json_real(1e300);
  assert_encodes_verbatim(v, "1.0000000000000001e300");
  json_decref(v);
  v = json_true();
  assert_encodes_verbatim(v, "true");

  /* A literal backslash followed by "u0000" is text, not a NUL: the dump
   * is "\\u0000" (escaped backslash) and stays as it is. */
  v = json_pack("{s:s}", "k\\u0000", "\\u0000 and \\\\u0000");
  assert_encodes_verbatim(v, "{\"k\\\\u0000\":\"\\\\u0000 and \\\\\\\\u0000\"}");
  json_decref(v);

  /* Deeply nested: beyond the scanner's small stack (512 levels), within
   * jansson's parser limit (2048). */
  {
    json_t *root = json_array(), *cur = root;
    char *want = malloc(2 * 1500 + 1);
    int i;
    for (i = 0; i < 1499; i++) {
      json_t *next = json_array();
      json_array_append_new(cur, next);
      cur = next;
    }
    memset(want, '[', 1500);
    memset(want + 1500, ']', 1500);
    want[3000] = '\0';
    assert_encodes_verbatim(root, want);
    free(want);
    json_decref(root);
  }
}

static void test_json_appends(void **state) {
  fc__buf_t b;
  json_t *v = json_pack("[i]", 7);
  (void)state;
  fc__buf_init(&b);
  fc__buf_append(&b, "xyz", 3);
  assert_int_equal(fc__json_encode(&b, v, 0), 0);
  assert_bytes(&b, 0, "xyz[7]", 6);
  json_decref(v);
  /* A NUL case after existing content keeps the content. */
  v = json_stringn("\0", 1);
  assert_int_equal(fc__json_encode(&b, v, 0), FC__CHANGED_NUL);
  assert_true(b.len > 6 && memcmp(b.data, "xyz[7]{", 7) == 0);
  json_decref(v);
  fc__buf_free(&b);
}

static void test_json_nul(void **state) {
  unsigned changed;
  json_t *v, *root, *val;
  char *s;
  const char *plain = "{\"k\":\"a\\u0000b\",\"n\":1}";
  (void)state;

  v = json_pack("{s:s%,s:i}", "k", "a\0b", (size_t)3, "n", 1);
  assert_non_null(v);
  s = encode(v, 0, &changed);
  assert_int_equal(changed, FC__CHANGED_NUL);
  assert_string_equal(s, "{\"$flowcore\":{\"changed\":[\"nul\"],\"original_bytes\":22},"
                         "\"value\":{\"k\":\"a" FFFD "b\",\"n\":1}}");
  assert_int_equal(strlen(plain), 22);
  val = assert_marker(s, "\"nul\"", strlen(plain), &root);
  assert_string_equal(json_string_value(json_object_get(val, "k")), "a" FFFD "b");
  json_decref(root);
  free(s);
  json_decref(v);

  /* An escaped backslash then a real NUL: "\\\u0000" is a NUL. */
  v = json_stringn("\\\0", 2);
  s = encode(v, 0, &changed);
  assert_int_equal(changed, FC__CHANGED_NUL);
  val = assert_marker(s, "\"nul\"", strlen("\"\\\\\\u0000\""), &root);
  assert_string_equal(json_string_value(val), "\\" FFFD);
  json_decref(root);
  free(s);
  json_decref(v);

  /* A NUL in a key, deep inside. */
  v = json_pack("[{s:[{}]}]", "x");
  json_object_setn_new(json_array_get(json_object_get(json_array_get(v, 0), "x"), 0), "k\0",
                       2, json_string("v"));
  s = encode(v, 0, &changed);
  assert_int_equal(changed, FC__CHANGED_NUL);
  val = assert_marker(s, "\"nul\"", strlen("[{\"x\":[{\"k\\u0000\":\"v\"}]}]"), &root);
  assert_string_equal(
      json_string_value(json_object_get(
          json_array_get(json_object_get(json_array_get(val, 0), "x"), 0), "k" FFFD)),
      "v");
  json_decref(root);
  free(s);
  json_decref(v);
}

static void test_json_invalid_utf8(void **state) {
  unsigned changed;
  json_t *v, *root, *val;
  char *s;
  (void)state;

  /* jansson refuses to dump it. */
  v = json_array();
  json_array_append_new(v, json_stringn_nocheck("a\xFF" "b", 3));
  json_array_append_new(v, json_string("ok"));
  s = encode(v, 0, &changed);
  assert_int_equal(changed, FC__CHANGED_INVALID_UTF8);
  assert_string_equal(s, "{\"$flowcore\":{\"changed\":[\"invalid_utf8\"],\"original_bytes\":"
                         "14},\"value\":[\"a" FFFD "b\",\"ok\"]}");
  val = assert_marker(s, "\"invalid_utf8\"", 14, &root);
  assert_string_equal(json_string_value(json_array_get(val, 0)), "a" FFFD "b");
  json_decref(root);
  free(s);
  json_decref(v);

  /* In a key: jansson 2.14 "succeeds" with broken JSON ({":1,...}). */
  v = json_object();
  json_object_set_new_nocheck(v, "k\xC0", json_integer(1));
  json_object_set_new(v, "b", json_integer(2));
  s = encode(v, 0, &changed);
  assert_int_equal(changed, FC__CHANGED_INVALID_UTF8);
  val = assert_marker(s, "\"invalid_utf8\"", strlen("{\"k" FFFD "\":1,\"b\":2}"), &root);
  assert_int_equal(json_integer_value(json_object_get(val, "k" FFFD)), 1);
  assert_int_equal(json_integer_value(json_object_get(val, "b")), 2);
  json_decref(root);
  free(s);
  json_decref(v);

  /* Two bad keys with scalars: jansson's text {":1,":2} even parses. */
  v = json_object();
  json_object_set_new_nocheck(v, "\xFF", json_integer(1));
  json_object_set_new_nocheck(v, "\xFE", json_integer(2));
  s = encode(v, 0, &changed);
  assert_int_equal(changed, FC__CHANGED_INVALID_UTF8);
  val = assert_marker(s, "\"invalid_utf8\"", strlen("{\"" FFFD "\":2}"), &root);
  assert_int_equal(json_integer_value(json_object_get(val, FFFD)), 2); /* the later wins */
  json_decref(root);
  free(s);
  json_decref(v);

  /* Bad keys next to strings that look like JSON punctuation. */
  v = json_object();
  json_object_set_new_nocheck(v, "\xFF", json_string(":"));
  json_object_set_new(v, ",", json_string(","));
  json_object_set_new_nocheck(v, "\n\xFE", json_string(":"));
  json_object_set_new(v, "z", json_pack("[s,s,i]", ":", ",", 1));
  s = encode(v, 0, &changed);
  assert_int_equal(changed, FC__CHANGED_INVALID_UTF8);
  val = assert_marker(s, "\"invalid_utf8\"",
                      strlen("{\"" FFFD "\":\":\",\",\":\",\",\"\\n" FFFD
                             "\":\":\",\"z\":[\":\",\",\",1]}"),
                      &root);
  assert_string_equal(json_string_value(json_object_get(val, "\n" FFFD)), ":");
  json_decref(root);
  free(s);
  json_decref(v);

  /* Good keys that end in ':' are stored verbatim. */
  v = json_object();
  json_object_set_new(v, ":", json_string(":"));
  json_object_set_new(v, "a\n:", json_integer(1));
  json_object_set_new(v, "b:", json_integer(2));
  assert_encodes_verbatim(v, "{\":\":\":\",\"a\\n:\":1,\"b:\":2}");
  json_decref(v);

  /* Both at once, as a top-level string. */
  v = json_stringn_nocheck("\0\xED\xA0\x80", 4);
  s = encode(v, 0, &changed);
  assert_int_equal(changed, FC__CHANGED_NUL | FC__CHANGED_INVALID_UTF8);
  val = assert_marker(s, "\"nul\",\"invalid_utf8\"", 14, &root);
  assert_string_equal(json_string_value(val), FFFD FFFD FFFD FFFD);
  json_decref(root);
  free(s);
  json_decref(v);
}

static void test_json_truncated(void **state) {
  unsigned changed;
  json_t *v, *root, *val;
  char *s, *big;
  size_t i;
  (void)state;

  big = malloc(3001);
  memset(big, 'x', 3000);
  big[3000] = '\0';
  v = json_pack("{s:s}", "k", big);
  /* text: {"k":"xxx...x"} = 3000 + 8 bytes */
  s = encode(v, 3008, &changed); /* exactly at the limit: verbatim */
  assert_int_equal(changed, 0);
  assert_int_equal(strlen(s), 3008);
  free(s);
  s = encode(v, 3007, &changed);
  assert_int_equal(changed, FC__CHANGED_TRUNCATED);
  val = assert_marker(s, "\"truncated\"", 3008, &root);
  assert_int_equal(json_string_length(val), FC__JSON_PREVIEW_BYTES);
  assert_memory_equal(json_string_value(val), "{\"k\":\"xxx", 9);
  json_decref(root);
  free(s);
  json_decref(v);
  free(big);

  /* Cut on a character boundary: "é" * 1000 -> text '"' + 2000 bytes + '"';
   * byte 1024 is a continuation byte, so 1023 bytes are kept. */
  big = malloc(2001);
  for (i = 0; i < 2000; i += 2) {
    big[i] = '\xC3';
    big[i + 1] = '\xA9';
  }
  big[2000] = '\0';
  v = json_string(big);
  s = encode(v, 100, &changed);
  assert_int_equal(changed, FC__CHANGED_TRUNCATED);
  val = assert_marker(s, "\"truncated\"", 2002, &root);
  assert_int_equal(json_string_length(val), 1023);
  assert_memory_equal(json_string_value(val), "\"\xC3\xA9", 3);
  json_decref(root);
  free(s);
  json_decref(v);
  free(big);

  /* Smaller than the preview but over the limit: the whole text, escaped;
   * a \u0000 in it stays text (the preview is a string). */
  v = json_pack("{s:s%}", "a\"b", "\0\n", (size_t)2);
  s = encode(v, 5, &changed);
  assert_int_equal(changed, FC__CHANGED_TRUNCATED);
  val = assert_marker(s, "\"truncated\"", strlen("{\"a\\\"b\":\"\\u0000\\n\"}"), &root);
  assert_string_equal(json_string_value(val), "{\"a\\\"b\":\"\\u0000\\n\"}");
  json_decref(root);
  free(s);
  json_decref(v);

  /* Invalid UTF-8 and oversized: both listed. */
  v = json_stringn_nocheck("\xFF\xFF\xFF\xFF", 4);
  s = encode(v, 10, &changed);
  assert_int_equal(changed, FC__CHANGED_INVALID_UTF8 | FC__CHANGED_TRUNCATED);
  val = assert_marker(s, "\"invalid_utf8\",\"truncated\"", 14, &root);
  assert_string_equal(json_string_value(val), "\"" FFFD FFFD FFFD FFFD "\"");
  json_decref(root);
  free(s);
  json_decref(v);
}

static void test_json_cycle(void **state) {
  unsigned changed;
  json_t *a = json_array(), *b = json_array(), *root;
  char *s;
  (void)state;
  json_array_append_new(a, json_integer(1));
  json_array_append(a, b);
  json_array_append(b, a); /* a -> b -> a */
  s = encode(a, 0, &changed);
  assert_int_equal(changed, FC__CHANGED_TRUNCATED);
  assert_marker(s, "\"truncated\"", strlen("[1,[null]]"), &root);
  json_decref(root);
  assert_non_null(strstr(s, "\"value\":[1,[null]]}"));
  free(s);
  json_array_clear(b);
  json_decref(b);
  json_decref(a);
}

/* Random values with random bytes in strings and keys: whatever comes in,
 * the text parses back without NUL; unchanged values are exactly jansson's
 * dump; changed ones carry the marker. */
static fc_test_rng_t rng = {12345};

static uint32_t rnd(uint32_t n) { return fc_test_rnd(&rng, n); }

/* The test's own idea of what sanitizing must do: the expected bits and
 * the expected value (strings and keys through fc__utf8_sanitize, which
 * the table tests pin down). */
static json_t *expected_copy(json_t *v, unsigned *bits) {
  fc__buf_t t;
  json_t *out = NULL, *item;
  const char *key;
  size_t i;
  fc__buf_init(&t);
  switch (json_typeof(v)) {
  case JSON_STRING:
    *bits |= fc__utf8_sanitize(&t, json_string_value(v), json_string_length(v));
    out = json_stringn(t.len ? t.data : "", t.len);
    break;
  case JSON_ARRAY:
    out = json_array();
    json_array_foreach(v, i, item) json_array_append_new(out, expected_copy(item, bits));
    break;
  case JSON_OBJECT:
    out = json_object();
    json_object_foreach(v, key, item) {
      size_t klen = json_object_iter_key_len(json_object_key_to_iter(key));
      json_t *val = expected_copy(item, bits);
      fc__buf_reset(&t);
      *bits |= fc__utf8_sanitize(&t, key, klen);
      assert_int_equal(json_object_setn_new(out, t.len ? t.data : "", t.len, val), 0);
    }
    break;
  default:
    out = json_deep_copy(v);
    break;
  }
  assert_non_null(out);
  fc__buf_free(&t);
  return out;
}

static void test_json_random(void **state) {
  int round;
  (void)state;
  for (round = 0; round < 30000; round++) {
    json_t *v = fc_test_random_json(&rng), *back;
    size_t max = rnd(4) == 0 ? rnd(64) + 1 : 0;
    unsigned changed;
    char *s = encode(v, max, &changed);
    back = parse_back(s);
    if (changed == 0) {
      char *want = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
      assert_non_null(want);
      assert_string_equal(s, want);
      if (!json_equal(back, v))
        fail_msg("not equal after parsing: %s", s);
      assert_true(max == 0 || strlen(s) <= max);
      free(want);
    } else {
      unsigned want = 0;
      json_t *expected = expected_copy(v, &want);
      if (changed & FC__CHANGED_TRUNCATED) {
        /* The common path does not look for NULs in what it truncates. */
        assert_int_equal(changed & FC__CHANGED_INVALID_UTF8, want & FC__CHANGED_INVALID_UTF8);
      } else {
        if (changed != want)
          fail_msg("changed %u, want %u: %s", changed, want, s);
        if (!json_equal(json_object_get(back, "value"), expected))
          fail_msg("unexpected value: %s", s);
      }
      json_decref(expected);
      assert_true(strncmp(s, "{\"$flowcore\":{\"changed\":[", 25) == 0);
      assert_true(json_is_integer(json_object_get(json_object_get(back, "$flowcore"),
                                                  "original_bytes")));
      if (changed & FC__CHANGED_TRUNCATED)
        assert_true(json_is_string(json_object_get(back, "value")));
    }
    json_decref(back);
    json_decref(v);
    free(s);
  }
}

/* ---- binary COPY ------------------------------------------------------- */

static void test_copy_fields(void **state) {
  fc__buf_t b;
  size_t at;
  static const uint8_t uuid[16] = {0x01, 0x8f, 0x2a, 0x3b, 0x4c, 0x5d, 0x7e, 0x6f,
                                   0x80, 0x91, 0xa2, 0xb3, 0xc4, 0xd5, 0xe6, 0xf7};
  json_t *v;
  (void)state;
  fc__buf_init(&b);

  fc__copy_header(&b);
  assert_bytes(&b, 0, "PGCOPY\n\377\r\n\0\0\0\0\0\0\0\0\0", 19);
  at = b.len;
  fc__copy_trailer(&b);
  assert_bytes(&b, at, "\xFF\xFF", 2);
  at = b.len;
  fc__copy_row(&b, 12);
  assert_bytes(&b, at, "\0\x0C", 2);
  at = b.len;
  fc__copy_null(&b);
  assert_bytes(&b, at, "\xFF\xFF\xFF\xFF", 4);

  fc__buf_reset(&b);
  fc__copy_int4(&b, -2);
  assert_bytes(&b, 0, "\0\0\0\4\xFF\xFF\xFF\xFE", 8);
  fc__buf_reset(&b);
  fc__copy_int4(&b, 0x01020304);
  assert_bytes(&b, 0, "\0\0\0\4\1\2\3\4", 8);
  fc__buf_reset(&b);
  fc__copy_int8(&b, INT64_C(0x0102030405060708));
  assert_bytes(&b, 0, "\0\0\0\x08\1\2\3\4\5\6\7\x08", 12);
  fc__buf_reset(&b);
  fc__copy_float8(&b, 1.5);
  assert_bytes(&b, 0, "\0\0\0\x08\x3F\xF8\0\0\0\0\0\0", 12);
  fc__buf_reset(&b);
  fc__copy_float8(&b, -0.0);
  assert_bytes(&b, 0, "\0\0\0\x08\x80\0\0\0\0\0\0\0", 12);
  fc__buf_reset(&b);
  fc__copy_uuid(&b, uuid);
  assert_bytes(&b, 0,
               "\0\0\0\x10\x01\x8f\x2a\x3b\x4c\x5d\x7e\x6f\x80\x91\xa2\xb3\xc4\xd5\xe6\xf7", 20);

  /* timestamptz: µs since 2000-01-01 UTC. */
  fc__buf_reset(&b);
  fc__copy_timestamptz(&b, 0); /* the Unix epoch = -946684800000000 */
  assert_bytes(&b, 0, "\0\0\0\x08\xFF\xFC\xA2\xFE\xC4\xC8\x20\x00", 12);
  fc__buf_reset(&b);
  fc__copy_timestamptz(&b, INT64_C(946684800000000));
  assert_bytes(&b, 0, "\0\0\0\x08\0\0\0\0\0\0\0\0", 12);
  fc__buf_reset(&b);
  fc__copy_timestamptz(&b, INT64_C(1700000000123456));
  assert_bytes(&b, 0, "\0\0\0\x08\x00\x02\xAD\x22\xDC\xE8\x42\x40", 12);
  fc__buf_reset(&b);
  fc__copy_timestamptz(&b, INT64_MIN); /* out of PostgreSQL's range: -infinity */
  assert_bytes(&b, 0, "\0\0\0\x08\x80\0\0\0\0\0\0\0", 12);
  fc__buf_reset(&b);
  fc__copy_timestamptz(&b, INT64_MAX);
  assert_int_equal(b.len, 12);

  /* text */
  fc__buf_reset(&b);
  assert_int_equal(fc__copy_text(&b, "a\tb"), 0);
  assert_bytes(&b, 0, "\0\0\0\3a\tb", 7);
  fc__buf_reset(&b);
  assert_int_equal(fc__copy_text(&b, ""), 0);
  assert_bytes(&b, 0, "\0\0\0\0", 4);
  fc__buf_reset(&b);
  assert_int_equal(fc__copy_text(&b, NULL), 0);
  assert_bytes(&b, 0, "\xFF\xFF\xFF\xFF", 4);
  fc__buf_reset(&b);
  assert_int_equal(fc__copy_text(&b, "x\xFF"), FC__CHANGED_INVALID_UTF8);
  assert_bytes(&b, 0, "\0\0\0\4x" FFFD, 8);

  /* jsonb: version 1 + text */
  fc__buf_reset(&b);
  v = json_pack("{s:i}", "a", 1);
  assert_int_equal(fc__copy_jsonb(&b, v, 0), 0);
  assert_bytes(&b, 0, "\0\0\0\x08\x01{\"a\":1}", 12);
  json_decref(v);
  fc__buf_reset(&b);
  assert_int_equal(fc__copy_jsonb(&b, NULL, 0), 0);
  assert_bytes(&b, 0, "\xFF\xFF\xFF\xFF", 4);
  fc__buf_reset(&b);
  v = json_stringn("\0", 1);
  assert_int_equal(fc__copy_jsonb(&b, v, 0), FC__CHANGED_NUL);
  {
    const char *want = "{\"$flowcore\":{\"changed\":[\"nul\"],\"original_bytes\":8},"
                       "\"value\":\"" FFFD "\"}";
    size_t n = strlen(want);
    assert_int_equal(b.len, 5 + n);
    assert_int_equal((unsigned char)b.data[3], (unsigned char)(n + 1));
    assert_int_equal(b.data[4], 1);
    assert_memory_equal(b.data + 5, want, n);
  }
  json_decref(v);
  fc__buf_free(&b);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_buf),
      cmocka_unit_test(test_utf8_table),
      cmocka_unit_test(test_utf8_exhaustive_pairs),
      cmocka_unit_test(test_json_plain),
      cmocka_unit_test(test_json_appends),
      cmocka_unit_test(test_json_nul),
      cmocka_unit_test(test_json_invalid_utf8),
      cmocka_unit_test(test_json_truncated),
      cmocka_unit_test(test_json_cycle),
      cmocka_unit_test(test_json_random),
      cmocka_unit_test(test_copy_fields),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
