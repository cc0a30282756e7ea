/* Binary COPY encoding and payload sanitizing for the history writer
 * (see copy.h for the contract).
 *
 * The common path of fc__json_encode is one json_dump_callback() straight
 * into the batch buffer, checked token by token as it is written (see
 * "JSON encoding" below). Only a value that needs changing (a \u0000,
 * invalid UTF-8, a reference cycle) is walked and rebuilt. */
#include <stdio.h>

#include "utf8.h"
#include "internal.h"
#include "history/copy.h"

/* The dump flags. Jansson (>= 2.8) always keeps insertion order, so
 * JSON_PRESERVE_ORDER is a no-op there and not needed. */
#define DUMP_FLAGS (JSON_COMPACT | JSON_ENCODE_ANY)

/* Recursion limit of the sanitizing rebuild (the parser limit of jansson:
 * anything json_loads() made fits). */
#define REBUILD_MAX_DEPTH 2048

/* PostgreSQL's epoch (2000-01-01 00:00:00 UTC) in µs since the Unix epoch,
 * and the smallest valid timestamptz (4714-11-24 00:00:00 UTC BC) in µs
 * since the PostgreSQL epoch. */
#define PG_EPOCH_UNIX_US INT64_C(946684800000000)
#define PG_MIN_TIMESTAMP INT64_C(-211813488000000000)

#define ONES UINT64_C(0x0101010101010101)
#define HIGHS UINT64_C(0x8080808080808080)

static void put_be16(fc__buf_t *b, uint16_t v) {
  unsigned char x[2];
  x[0] = (unsigned char)(v >> 8);
  x[1] = (unsigned char)v;
  fc__buf_append(b, x, sizeof x);
}

static void put_be32(fc__buf_t *b, uint32_t v) {
  unsigned char x[4];
  x[0] = (unsigned char)(v >> 24);
  x[1] = (unsigned char)(v >> 16);
  x[2] = (unsigned char)(v >> 8);
  x[3] = (unsigned char)v;
  fc__buf_append(b, x, sizeof x);
}

static void put_be64(fc__buf_t *b, uint64_t v) {
  unsigned char x[8];
  int i;
  for (i = 7; i >= 0; i--) {
    x[i] = (unsigned char)v;
    v >>= 8;
  }
  fc__buf_append(b, x, sizeof x);
}

/* ---- JSON text scan ---------------------------------------------------- */

enum { SCAN_OK = 0, SCAN_NUL = 1, SCAN_BAD = 2, SCAN_NOMEM = 3 };

/* Parser states, shared by scan_json and the checked dump. */
enum { ST_VALUE, ST_VALUE_OR_CLOSE, ST_KEY, ST_KEY_OR_CLOSE, ST_COLON, ST_AFTER, ST_STRING };

/* A stack of bits (1 = object, 0 = array); heap only when deep. */
typedef struct {
  unsigned char small[64];
  unsigned char *bits;
  size_t cap; /* in bits */
} bitstack_t;

static int bitstack_set(bitstack_t *st, size_t depth, int obj) {
  if (depth >= st->cap) {
    size_t nbytes = st->cap / 4; /* double */
    unsigned char *p = fc__malloc(nbytes);
    if (p == NULL)
      return -1;
    memcpy(p, st->bits, st->cap / 8);
    if (st->bits != st->small)
      fc__free(st->bits);
    st->bits = p;
    st->cap = nbytes * 8;
  }
  if (obj)
    st->bits[depth / 8] = (unsigned char)(st->bits[depth / 8] | (1u << (depth % 8)));
  else
    st->bits[depth / 8] = (unsigned char)(st->bits[depth / 8] & ~(1u << (depth % 8)));
  return 0;
}

static int bitstack_get(const bitstack_t *st, size_t depth) {
  return (st->bits[depth / 8] >> (depth % 8)) & 1;
}

static int is_digit(unsigned char c) { return c >= '0' && c <= '9'; }

static int is_hex(unsigned char c) {
  return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* s[*i] is the opening quote. Moves *i past the closing quote. Returns
 * SCAN_OK, SCAN_NUL (a \u0000 inside) or SCAN_BAD. */
static int scan_string(const unsigned char *s, size_t n, size_t *pi) {
  size_t i = *pi + 1;
  int r = SCAN_OK;
  for (;;) {
    unsigned char c;
    /* Skip eight bytes at a time while none is '"', '\\' or < 0x20. */
    while (n - i >= 8) {
      uint64_t w, q, e;
      memcpy(&w, s + i, 8);
      q = w ^ (ONES * '"');
      e = w ^ (ONES * '\\');
      if ((((q - ONES) & ~q) | ((e - ONES) & ~e) | ((w - ONES * 0x20) & ~w)) & HIGHS)
        break;
      i += 8;
    }
    if (i >= n)
      return SCAN_BAD;
    c = s[i];
    if (c == '"') {
      *pi = i + 1;
      return r;
    }
    if (c == '\\') {
      if (n - i < 2)
        return SCAN_BAD;
      switch (s[i + 1]) {
      case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
        i += 2;
        break;
      case 'u':
        if (n - i < 6 || !is_hex(s[i + 2]) || !is_hex(s[i + 3]) || !is_hex(s[i + 4]) ||
            !is_hex(s[i + 5]))
          return SCAN_BAD;
        if (memcmp(s + i + 2, "0000", 4) == 0)
          r = SCAN_NUL;
        i += 6;
        break;
      default:
        return SCAN_BAD;
      }
      continue;
    }
    if (c < 0x20)
      return SCAN_BAD;
    i++;
  }
}

static int scan_number(const unsigned char *s, size_t n, size_t *pi) {
  size_t i = *pi;
  if (s[i] == '-')
    i++;
  if (i < n && s[i] == '0') {
    i++;
  } else if (i < n && s[i] >= '1' && s[i] <= '9') {
    while (i < n && is_digit(s[i]))
      i++;
  } else {
    return SCAN_BAD;
  }
  if (i < n && s[i] == '.') {
    i++;
    if (i >= n || !is_digit(s[i]))
      return SCAN_BAD;
    while (i < n && is_digit(s[i]))
      i++;
  }
  if (i < n && (s[i] == 'e' || s[i] == 'E')) {
    i++;
    if (i < n && (s[i] == '+' || s[i] == '-'))
      i++;
    if (i >= n || !is_digit(s[i]))
      return SCAN_BAD;
    while (i < n && is_digit(s[i]))
      i++;
  }
  *pi = i;
  return SCAN_OK;
}

static int scan_literal(const unsigned char *s, size_t n, size_t *pi, const char *lit) {
  size_t len = strlen(lit);
  if (n - *pi < len || memcmp(s + *pi, lit, len) != 0)
    return SCAN_BAD;
  *pi += len;
  return SCAN_OK;
}

/* Checks that text is one JSON value without whitespace (what a compact
 * dump produces) and whether a string or key holds \u0000. Used on the
 * rare path only, as the last guard before text goes to the server. */
static int scan_json(const char *text, size_t n) {
  int state = ST_VALUE;
  const unsigned char *s = (const unsigned char *)text;
  bitstack_t st;
  size_t i = 0, depth = 0;
  int r = SCAN_OK, sub;
  st.bits = st.small;
  st.cap = sizeof st.small * 8;
  while (i < n) {
    unsigned char c = s[i];
    switch (state) {
    case ST_VALUE:
    case ST_VALUE_OR_CLOSE:
      if (c == ']' && state == ST_VALUE_OR_CLOSE) {
        depth--;
        i++;
        state = ST_AFTER;
        break;
      }
      sub = SCAN_OK;
      state = ST_AFTER;
      if (c == '"') {
        sub = scan_string(s, n, &i);
      } else if (c == '{' || c == '[') {
        if (bitstack_set(&st, depth, c == '{') != 0) {
          r = SCAN_NOMEM;
          goto out;
        }
        depth++;
        i++;
        state = c == '{' ? ST_KEY_OR_CLOSE : ST_VALUE_OR_CLOSE;
      } else if (c == '-' || is_digit(c)) {
        sub = scan_number(s, n, &i);
      } else if (c == 't') {
        sub = scan_literal(s, n, &i, "true");
      } else if (c == 'f') {
        sub = scan_literal(s, n, &i, "false");
      } else if (c == 'n') {
        sub = scan_literal(s, n, &i, "null");
      } else {
        sub = SCAN_BAD;
      }
      if (sub == SCAN_BAD) {
        r = SCAN_BAD;
        goto out;
      }
      if (sub == SCAN_NUL)
        r = SCAN_NUL;
      break;
    case ST_KEY:
    case ST_KEY_OR_CLOSE:
      if (c == '}' && state == ST_KEY_OR_CLOSE) {
        depth--;
        i++;
        state = ST_AFTER;
        break;
      }
      if (c != '"') {
        r = SCAN_BAD;
        goto out;
      }
      sub = scan_string(s, n, &i);
      if (sub == SCAN_BAD) {
        r = SCAN_BAD;
        goto out;
      }
      if (sub == SCAN_NUL)
        r = SCAN_NUL;
      state = ST_COLON;
      break;
    case ST_COLON:
      if (c != ':') {
        r = SCAN_BAD;
        goto out;
      }
      i++;
      state = ST_VALUE;
      break;
    case ST_AFTER: {
      int obj;
      if (depth == 0) {
        r = SCAN_BAD; /* text after the value */
        goto out;
      }
      obj = bitstack_get(&st, depth - 1);
      if (c == ',') {
        state = obj ? ST_KEY : ST_VALUE;
      } else if (c == (obj ? '}' : ']')) {
        depth--;
      } else {
        r = SCAN_BAD;
        goto out;
      }
      i++;
      break;
    }
    }
  }
  if (state != ST_AFTER || depth != 0)
    r = SCAN_BAD;
out:
  if (st.bits != st.small)
    fc__free(st.bits);
  return r;
}

/* ---- JSON encoding ----------------------------------------------------- */

/* The common path dumps straight into the batch buffer through a callback
 * that follows the dump token by token. Jansson calls it once per token:
 * "{", "[", ",", ":", "}", "]", a number or literal, and for a string the
 * opening quote, then raw runs (never two in a row: a run is flushed only
 * before an escape or the closing quote) and escapes ("\n", "\u0000"),
 * then the closing quote. Checking that grammar per call is what lets the
 * common path skip a tree walk:
 *  - \u0000 is an escape call of exactly those six bytes;
 *  - jansson 2.14 ignores the failure of dumping an object key with
 *    invalid UTF-8 (json_object_set_nocheck) and carries on, emitting
 *    broken text such as {":1,":2} (a key opened but never closed) while
 *    reporting success; the grammar no longer fits from there on. The text
 *    itself may even parse, so checking bytes afterwards would not do. The
 *    one way such a dump can fit for a while is a key whose content seems
 *    to end in a raw ":" call (the separator): such a key is treated as
 *    suspect, and so is a legitimate key ending in ':' after an escape or
 *    equal to ":" (rare; the rebuild then finds nothing to change).
 * A dump that does not fit takes the rebuild path, whose output is then
 * checked byte by byte (scan_json): if a future jansson calls back
 * differently, the result stays correct, only slower.
 *
 * With a size limit, bytes beyond max(limit, preview + 1) are counted, not
 * stored. */
typedef struct {
  fc__buf_t *b;
  size_t limit; /* bytes kept in b; the rest is only counted */
  size_t total; /* length of the whole text */
  bitstack_t st;
  size_t depth;
  int state; /* ST_* */
  int in_key, last_raw, last_colon, nul;
} dumpst_t;

/* One call outside a string. Returns 0, or -1 when it does not fit. */
static int dump_token(dumpst_t *d, const char *p, size_t size) {
  unsigned char c = (unsigned char)p[0];
  size_t i = 0;
  switch (d->state) {
  case ST_VALUE:
  case ST_VALUE_OR_CLOSE:
    if (c == '-' || is_digit(c)) {
      if (scan_number((const unsigned char *)p, size, &i) != SCAN_OK || i != size)
        return -1;
      d->state = ST_AFTER;
    } else if ((size == 4 && (memcmp(p, "true", 4) == 0 || memcmp(p, "null", 4) == 0)) ||
               (size == 5 && memcmp(p, "false", 5) == 0)) {
      d->state = ST_AFTER;
    } else if (size != 1) {
      return -1;
    } else if (c == '"') {
      d->state = ST_STRING;
      d->in_key = d->last_raw = d->last_colon = 0;
    } else if (c == '{' || c == '[') {
      if (bitstack_set(&d->st, d->depth, c == '{') != 0) {
        d->b->oom = 1;
        return -1;
      }
      d->depth++;
      d->state = c == '{' ? ST_KEY_OR_CLOSE : ST_VALUE_OR_CLOSE;
    } else if (c == ']' && d->state == ST_VALUE_OR_CLOSE) {
      d->depth--;
      d->state = ST_AFTER;
    } else {
      return -1;
    }
    return 0;
  case ST_KEY:
  case ST_KEY_OR_CLOSE:
    if (size != 1)
      return -1;
    if (c == '"') {
      d->state = ST_STRING;
      d->in_key = 1;
      d->last_raw = d->last_colon = 0;
    } else if (c == '}' && d->state == ST_KEY_OR_CLOSE) {
      d->depth--;
      d->state = ST_AFTER;
    } else {
      return -1;
    }
    return 0;
  case ST_COLON:
    if (size != 1 || c != ':')
      return -1;
    d->state = ST_VALUE;
    return 0;
  default: /* ST_AFTER */
    if (d->depth == 0 || size != 1)
      return -1;
    if (c == ',') {
      d->state = bitstack_get(&d->st, d->depth - 1) ? ST_KEY : ST_VALUE;
    } else if (c == (bitstack_get(&d->st, d->depth - 1) ? '}' : ']')) {
      d->depth--;
    } else {
      return -1;
    }
    return 0;
  }
}

static int dump_checked_cb(const char *p, size_t size, void *data) {
  dumpst_t *d = data;
  fc__buf_t *b = d->b;
  size_t keep;
  if (size == 0)
    return 0;
  if (d->state == ST_STRING) {
    if (size == 1 && p[0] == '"') {
      if (d->in_key && d->last_colon)
        return -1;
      d->state = d->in_key ? ST_COLON : ST_AFTER;
    } else if (p[0] == '\\') {
      if (size == 6 && memcmp(p, "\\u0000", 6) == 0)
        d->nul = 1;
      else if (size != 2 && size != 6 && size != 12)
        return -1;
      d->last_raw = d->last_colon = 0;
    } else {
      if (d->last_raw)
        return -1;
      d->last_raw = 1;
      d->last_colon = size == 1 && p[0] == ':';
    }
  } else if (dump_token(d, p, size) != 0) {
    return -1;
  }
  keep = d->total >= d->limit ? 0 : d->limit - d->total < size ? d->limit - d->total : size;
  d->total += size;
  if (keep <= b->cap - b->len) { /* the usual case: no call */
    memcpy(b->data + b->len, p, keep);
    b->len += keep;
    return 0;
  }
  fc__buf_append(b, p, keep);
  return b->oom ? -1 : 0;
}

/* A plain dump into b, for the rare path. Returns 0 or -1 (b is then back
 * at its old length). */
static int dump_cb(const char *p, size_t size, void *data) {
  fc__buf_t *b = data;
  fc__buf_append(b, p, size);
  return b->oom ? -1 : 0;
}

static int dump_into(fc__buf_t *b, const json_t *v) {
  size_t start = b->len;
  if (json_dump_callback(v, dump_cb, b, DUMP_FLAGS) != 0) {
    b->len = start;
    return -1;
  }
  return 0;
}

typedef struct {
  fc__buf_t scratch; /* sanitized string bytes */
  const json_t **path; /* containers from the root to the current one */
  size_t depth, path_cap;
  unsigned changed;
  int nomem;
} rebuild_t;

static json_t *sanitized_string(rebuild_t *rb, const char *s, size_t n) {
  fc__buf_reset(&rb->scratch);
  rb->changed |= fc__utf8_sanitize(&rb->scratch, s, n);
  if (rb->scratch.oom)
    return NULL;
  return json_stringn_nocheck(rb->scratch.len ? rb->scratch.data : "", rb->scratch.len);
}

/* A deep copy of v with every string and key made valid UTF-8 without NUL.
 * A reference cycle or nesting beyond REBUILD_MAX_DEPTH becomes null
 * (FC__CHANGED_TRUNCATED). Returns a new reference, or NULL (rb->nomem). */
static json_t *rebuild(rebuild_t *rb, const json_t *v) {
  json_t *out = NULL;
  size_t i;
  switch (json_typeof(v)) {
  case JSON_OBJECT:
  case JSON_ARRAY:
    for (i = 0; i < rb->depth; i++) {
      if (rb->path[i] == v)
        break;
    }
    if (i < rb->depth || rb->depth >= REBUILD_MAX_DEPTH) {
      rb->changed |= FC__CHANGED_TRUNCATED;
      out = json_null();
      break;
    }
    if (rb->depth == rb->path_cap) {
      size_t ncap = rb->path_cap ? rb->path_cap * 2 : 32;
      const json_t **p = fc__realloc((void *)rb->path, ncap * sizeof *p);
      if (p == NULL)
        break;
      rb->path = p;
      rb->path_cap = ncap;
    }
    rb->path[rb->depth++] = v;
    if (json_is_array(v)) {
      out = json_array();
      for (i = 0; out != NULL && i < json_array_size(v); i++) {
        json_t *item = rebuild(rb, json_array_get(v, i));
        if (item == NULL || json_array_append_new(out, item) != 0) {
          json_decref(out);
          out = NULL;
        }
      }
    } else {
      void *it;
      out = json_object();
      for (it = json_object_iter((json_t *)v); out != NULL && it != NULL;
           it = json_object_iter_next((json_t *)v, it)) {
        json_t *item = rebuild(rb, json_object_iter_value(it));
        json_t *key = item ? sanitized_string(rb, json_object_iter_key(it),
                                              json_object_iter_key_len(it))
                           : NULL;
        /* Two keys that differ only in their invalid bytes become equal:
         * the later one wins, as it would in jsonb. */
        if (key == NULL || json_object_setn_new_nocheck(out, json_string_value(key),
                                                        json_string_length(key), item) != 0) {
          if (key == NULL)
            json_decref(item);
          json_decref(out);
          out = NULL;
        }
        json_decref(key);
      }
    }
    rb->depth--;
    break;
  case JSON_STRING:
    out = sanitized_string(rb, json_string_value(v), json_string_length(v));
    break;
  case JSON_INTEGER:
    out = json_integer(json_integer_value(v));
    break;
  case JSON_REAL:
    out = json_real(json_real_value(v));
    break;
  case JSON_TRUE:
    out = json_true();
    break;
  case JSON_FALSE:
    out = json_false();
    break;
  case JSON_NULL:
    out = json_null();
    break;
  }
  if (out == NULL)
    rb->nomem = 1;
  return out;
}

static void append_changed(fc__buf_t *b, unsigned changed, size_t original_bytes) {
  char num[32];
  const char *sep = "";
  fc__buf_puts(b, "{\"$flowcore\":{\"changed\":[");
  if (changed & FC__CHANGED_NUL) {
    fc__buf_puts(b, "\"nul\"");
    sep = ",";
  }
  if (changed & FC__CHANGED_INVALID_UTF8) {
    fc__buf_puts(b, sep);
    fc__buf_puts(b, "\"invalid_utf8\"");
    sep = ",";
  }
  if (changed & FC__CHANGED_TRUNCATED) {
    fc__buf_puts(b, sep);
    fc__buf_puts(b, "\"truncated\"");
  }
  snprintf(num, sizeof num, "%zu", original_bytes);
  fc__buf_puts(b, "],\"original_bytes\":");
  fc__buf_puts(b, num);
  fc__buf_puts(b, "},\"value\":");
}

/* Replaces b[start..] by the marker whose value is the first
 * FC__JSON_PREVIEW_BYTES of a text of n bytes (cut on a character boundary)
 * as a JSON string; text holds its first `avail` bytes (all of them, or at
 * least FC__JSON_PREVIEW_BYTES + 1) and may point into b after start. */
static void append_truncated(fc__buf_t *b, size_t start, unsigned changed, const char *text,
                             size_t avail, size_t n) {
  static const char hex[] = "0123456789abcdef";
  size_t k = avail < FC__JSON_PREVIEW_BYTES ? avail : FC__JSON_PREVIEW_BYTES, i, run;
  fc__buf_t pre;
  while (k > 0 && k < avail && ((unsigned char)text[k] & 0xC0) == 0x80)
    k--;
  fc__buf_init(&pre);
  fc__utf8_sanitize(&pre, text, k); /* a copy (the text is valid UTF-8 already) */
  b->len = start;
  if (pre.oom) {
    b->oom = 1;
    return;
  }
  append_changed(b, changed | FC__CHANGED_TRUNCATED, n);
  fc__buf_append(b, "\"", 1);
  for (i = run = 0; i < pre.len; i++) {
    unsigned char c = (unsigned char)pre.data[i];
    char esc[6];
    if (c >= 0x20 && c != '"' && c != '\\')
      continue;
    fc__buf_append(b, pre.data + run, i - run);
    run = i + 1;
    if (c < 0x20) {
      memcpy(esc, "\\u00", 4);
      esc[4] = hex[c >> 4];
      esc[5] = hex[c & 15];
      fc__buf_append(b, esc, 6);
    } else {
      esc[0] = '\\';
      esc[1] = (char)c;
      fc__buf_append(b, esc, 2);
    }
  }
  fc__buf_append(b, pre.data + run, pre.len - run);
  fc__buf_append(b, "\"}", 2);
  fc__buf_free(&pre);
}

/* The rare path: v dumped with a \u0000 or broken text (first_len = its
 * length, have_first = 1) or did not dump at all. b is at its old length.
 * Returns the FC__CHANGED_* bits. */
static unsigned encode_rebuilt(fc__buf_t *b, const json_t *v, size_t max_bytes,
                               int have_first, size_t first_len) {
  rebuild_t rb;
  fc__buf_t text;
  json_t *copy;
  unsigned changed = 0;
  int scan = SCAN_OK;
  memset(&rb, 0, sizeof rb);
  fc__buf_init(&rb.scratch);
  fc__buf_init(&text);
  copy = rebuild(&rb, v);
  if (copy == NULL || rb.nomem) {
    b->oom = 1;
    goto out;
  }
  changed = rb.changed;
  if (dump_into(&text, copy) != 0 || (scan = scan_json(text.data, text.len)) != SCAN_OK) {
    if (text.oom || scan == SCAN_NOMEM) {
      b->oom = 1;
      goto out;
    }
    /* Not expected: store that there was a value we could not keep. */
    changed |= FC__CHANGED_TRUNCATED;
    append_changed(b, changed, have_first ? first_len : 0);
    fc__buf_puts(b, "null}");
    goto out;
  }
  if (max_bytes != 0 && text.len > max_bytes) {
    changed |= FC__CHANGED_TRUNCATED;
    append_truncated(b, b->len, changed, text.data, text.len, text.len);
  } else if (changed == 0) {
    /* Nothing to change after all (a key ending in ':', or a dump that
     * failed for a passing reason): the copy is the value, verbatim. */
    fc__buf_append(b, text.data, text.len);
  } else {
    append_changed(b, changed, have_first ? first_len : text.len);
    fc__buf_append(b, text.data, text.len);
    fc__buf_append(b, "}", 1);
  }
out:
  json_decref(copy);
  fc__free((void *)rb.path);
  fc__buf_free(&rb.scratch);
  fc__buf_free(&text);
  return changed;
}

unsigned fc__json_encode(fc__buf_t *b, json_t *v, size_t max_bytes) {
  dumpst_t d;
  size_t start = b->len;
  int rc;
  if (v == NULL) {
    fc__buf_puts(b, "null");
    return 0;
  }
  if (fc__buf_reserve(b, 64) != 0)
    return 0;
  memset(&d, 0, sizeof d);
  d.b = b;
  d.limit = max_bytes == 0 ? SIZE_MAX
            : max_bytes > FC__JSON_PREVIEW_BYTES ? max_bytes
                                                 : FC__JSON_PREVIEW_BYTES + 1;
  d.st.bits = d.st.small;
  d.st.cap = sizeof d.st.small * 8;
  d.state = ST_VALUE;
  rc = json_dump_callback(v, dump_checked_cb, &d, DUMP_FLAGS);
  if (d.st.bits != d.st.small)
    fc__free(d.st.bits);
  if (rc != 0 || d.state != ST_AFTER || d.depth != 0) {
    /* Invalid UTF-8 in a string or key, or a reference cycle. */
    b->len = start;
    if (b->oom)
      return 0;
    return encode_rebuilt(b, v, max_bytes, 0, 0);
  }
  if (max_bytes != 0 && d.total > max_bytes) {
    append_truncated(b, start, 0, b->data + start, b->len - start, d.total);
    return FC__CHANGED_TRUNCATED;
  }
  if (!d.nul)
    return 0;
  b->len = start;
  return encode_rebuilt(b, v, max_bytes, 1, d.total);
}

/* ---- binary COPY ------------------------------------------------------- */

void fc__copy_header(fc__buf_t *b) {
  static const char sig[11] = {'P', 'G', 'C', 'O', 'P', 'Y', '\n', '\377', '\r', '\n', '\0'};
  fc__buf_append(b, sig, sizeof sig);
  put_be32(b, 0); /* flags: no OIDs */
  put_be32(b, 0); /* header extension length */
}

void fc__copy_trailer(fc__buf_t *b) { put_be16(b, 0xFFFF); }

void fc__copy_row(fc__buf_t *b, int nfields) { put_be16(b, (uint16_t)nfields); }

void fc__copy_null(fc__buf_t *b) { put_be32(b, 0xFFFFFFFFu); }

void fc__copy_int4(fc__buf_t *b, int32_t v) {
  put_be32(b, 4);
  put_be32(b, (uint32_t)v);
}

void fc__copy_bool(fc__buf_t *b, int v) {
  unsigned char c = v != 0;
  put_be32(b, 1);
  fc__buf_append(b, &c, 1);
}

void fc__copy_int8(fc__buf_t *b, int64_t v) {
  put_be32(b, 8);
  put_be64(b, (uint64_t)v);
}

void fc__copy_float8(fc__buf_t *b, double v) {
  uint64_t bits;
  memcpy(&bits, &v, sizeof bits);
  put_be32(b, 8);
  put_be64(b, bits);
}

void fc__copy_uuid(fc__buf_t *b, const uint8_t uuid[16]) {
  put_be32(b, 16);
  fc__buf_append(b, uuid, 16);
}

void fc__copy_timestamptz(fc__buf_t *b, int64_t unix_us) {
  int64_t pg;
  if (unix_us < PG_MIN_TIMESTAMP + PG_EPOCH_UNIX_US)
    pg = INT64_MIN; /* -infinity: the server rejects anything earlier */
  else
    pg = unix_us - PG_EPOCH_UNIX_US; /* cannot overflow: unix_us >= min */
  put_be32(b, 8);
  put_be64(b, (uint64_t)pg);
}

/* Writes the length of the field whose 4-byte length slot is at `at`. */
static void patch_length(fc__buf_t *b, size_t at) {
  size_t n;
  if (b->oom)
    return;
  n = b->len - at - 4;
  b->data[at] = (char)(unsigned char)(n >> 24);
  b->data[at + 1] = (char)(unsigned char)(n >> 16);
  b->data[at + 2] = (char)(unsigned char)(n >> 8);
  b->data[at + 3] = (char)(unsigned char)n;
}

unsigned fc__copy_text(fc__buf_t *b, const char *s) {
  size_t at = b->len;
  unsigned changed;
  if (s == NULL) {
    fc__copy_null(b);
    return 0;
  }
  put_be32(b, 0);
  changed = fc__utf8_sanitize(b, s, strlen(s));
  patch_length(b, at);
  return changed;
}

void fc__copy_jsonb_text(fc__buf_t *b, const char *text, size_t len) {
  size_t at = b->len;
  put_be32(b, 0);
  fc__buf_append(b, "\1", 1); /* jsonb binary format version */
  fc__buf_append(b, text, len);
  patch_length(b, at);
}

unsigned fc__copy_jsonb(fc__buf_t *b, json_t *v, size_t max_bytes) {
  size_t at = b->len;
  unsigned changed;
  if (v == NULL) {
    fc__copy_null(b);
    return 0;
  }
  put_be32(b, 0);
  fc__buf_append(b, "\1", 1); /* jsonb binary format version */
  changed = fc__json_encode(b, v, max_bytes);
  patch_length(b, at);
  return changed;
}
