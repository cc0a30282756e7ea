/* A quick reader for the plain JSON of big workflow files: see json_scan.h.
 *
 * Recursive descent over the text in memory. Every check that jansson
 * makes and that this reader does not repeat exactly makes it give up
 * (return NULL) instead: an escape, a control character, a fraction or an
 * exponent, a long integer, a repeated key, a literal followed by a letter
 * (jansson reads "truex" as one bad token). What it accepts, jansson
 * accepts with the same value. */
#include "json_scan.h"

#include "utf8.h"

typedef struct {
  const char *p, *end;
} scan_t;

static void skip_ws(scan_t *s) {
  while (s->p < s->end && (*s->p == ' ' || *s->p == '\n' || *s->p == '\r' || *s->p == '\t'))
    s->p++;
}

static int is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

/* A string at s->p ('"' there): its bytes, without the quotes. */
static int scan_string(scan_t *s, const char **out, size_t *n) {
  const char *start;
  if (s->p >= s->end || *s->p != '"')
    return -1;
  start = ++s->p;
  while (s->p < s->end) {
    unsigned char c = (unsigned char)*s->p;
    if (c == '"') {
      *out = start;
      *n = (size_t)(s->p - start);
      s->p++;
      return 0;
    }
    if (c == '\\' || c < 0x20)
      return -1;
    if (c < 0x80) {
      s->p++;
    } else {
      size_t k = fc__utf8_seq((const unsigned char *)s->p, (size_t)(s->end - s->p), NULL);
      if (k == 0)
        return -1;
      s->p += k;
    }
  }
  return -1;
}

/* An integer at s->p: '-'? then 1 to 18 digits, no leading zero, and no
 * '.', 'e' or 'E' after (jansson would read a real). */
static json_t *scan_integer(scan_t *s) {
  json_int_t x = 0;
  const char *digits;
  int neg = 0;
  if (*s->p == '-') {
    neg = 1;
    s->p++;
  }
  digits = s->p;
  while (s->p < s->end && *s->p >= '0' && *s->p <= '9' && s->p - digits < 18) {
    x = x * 10 + (*s->p - '0');
    s->p++;
  }
  /* A 19th digit, a fraction or an exponent next: jansson's to read. */
  if (s->p == digits || (*digits == '0' && s->p - digits > 1))
    return NULL;
  if (s->p < s->end &&
      (*s->p == '.' || *s->p == 'e' || *s->p == 'E' || (*s->p >= '0' && *s->p <= '9')))
    return NULL;
  return json_integer(neg ? -x : x);
}

/* "true", "false" or "null" at s->p, not followed by a letter. */
static json_t *scan_literal(scan_t *s) {
  static const struct {
    const char *word;
    size_t len;
  } words[] = {{"true", 4}, {"false", 5}, {"null", 4}};
  size_t i;
  for (i = 0; i < 3; i++) {
    size_t n = words[i].len;
    if ((size_t)(s->end - s->p) >= n && memcmp(s->p, words[i].word, n) == 0 &&
        ((size_t)(s->end - s->p) == n || !is_alpha(s->p[n]))) {
      s->p += n;
      return i == 0 ? json_true() : i == 1 ? json_false() : json_null();
    }
  }
  return NULL;
}

static json_t *scan_value(scan_t *s, int depth);

static json_t *scan_object(scan_t *s, int depth) {
  json_t *obj = json_object();
  char key[FC__JSON_SCAN_KEY];
  if (obj == NULL)
    return NULL;
  s->p++; /* '{' */
  skip_ws(s);
  if (s->p < s->end && *s->p == '}') {
    s->p++;
    return obj;
  }
  for (;;) {
    const char *k;
    size_t n;
    json_t *v;
    skip_ws(s);
    if (scan_string(s, &k, &n) != 0 || n >= sizeof key)
      break;
    memcpy(key, k, n);
    key[n] = '\0';
    skip_ws(s);
    if (s->p >= s->end || *s->p != ':')
      break;
    s->p++;
    if ((v = scan_value(s, depth + 1)) == NULL)
      break;
    if (json_object_get(obj, key) != NULL) {
      json_decref(v);
      break;
    }
    if (json_object_set_new_nocheck(obj, key, v) != 0) /* takes v even on failure */
      break;
    skip_ws(s);
    if (s->p < s->end && *s->p == ',') {
      s->p++;
      continue;
    }
    if (s->p < s->end && *s->p == '}') {
      s->p++;
      return obj;
    }
    break;
  }
  json_decref(obj);
  return NULL;
}

static json_t *scan_array(scan_t *s, int depth) {
  json_t *arr = json_array();
  if (arr == NULL)
    return NULL;
  s->p++; /* '[' */
  skip_ws(s);
  if (s->p < s->end && *s->p == ']') {
    s->p++;
    return arr;
  }
  for (;;) {
    json_t *v = scan_value(s, depth + 1);
    if (v == NULL || json_array_append_new(arr, v) != 0)
      break;
    skip_ws(s);
    if (s->p < s->end && *s->p == ',') {
      s->p++;
      continue;
    }
    if (s->p < s->end && *s->p == ']') {
      s->p++;
      return arr;
    }
    break;
  }
  json_decref(arr);
  return NULL;
}

static json_t *scan_value(scan_t *s, int depth) {
  const char *str;
  size_t n;
  skip_ws(s);
  if (s->p >= s->end || depth > FC__JSON_SCAN_DEPTH)
    return NULL;
  switch (*s->p) {
  case '{':
    return scan_object(s, depth);
  case '[':
    return scan_array(s, depth);
  case '"':
    return scan_string(s, &str, &n) == 0 ? json_stringn_nocheck(str, n) : NULL;
  case 't':
  case 'f':
  case 'n':
    return scan_literal(s);
  default:
    return *s->p == '-' || (*s->p >= '0' && *s->p <= '9') ? scan_integer(s) : NULL;
  }
}

json_t *fc__json_scan(const char *text, size_t len, size_t *used) {
  scan_t s = {text, text + len};
  json_t *v = scan_value(&s, 1);
  if (v != NULL)
    *used = (size_t)(s.p - text);
  return v;
}
