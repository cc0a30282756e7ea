/* Binary COPY encoding for the history writer, and the sanitizing that
 * keeps one bad payload from poisoning a batch.
 *
 * Format: PostgreSQL's binary COPY (signature, flags, header extension,
 * then per row an int16 field count and per field an int32 length (-1 for
 * NULL) plus the bytes, then the int16 -1 trailer). Binary COPY needs no
 * escaping, so no byte of event data can ever be read as syntax.
 *
 * Buffers grow as needed; an allocation failure is sticky (buf->oom) and
 * checked once at the end of a batch, so encoders need not check each call.
 */
#ifndef FLOWCORE_HISTORY_COPY_H
#define FLOWCORE_HISTORY_COPY_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "buf.h"
#include "utf8.h"

/* What sanitizing changed, as bits (also written into the JSON marker). */
#define FC__CHANGED_NUL FC__UTF8_FIXED_NUL              /* NUL / \u0000 replaced */
#define FC__CHANGED_INVALID_UTF8 FC__UTF8_FIXED_INVALID /* invalid UTF-8 replaced */
#define FC__CHANGED_TRUNCATED 4u                        /* over the size limit */

/* Serializes v (compact) into b in a form jsonb accepts. When v needs
 * changes (a \u0000 in a string or key, invalid UTF-8 in a string or key
 * made with a _nocheck call) or its text is larger than max_bytes (0: no
 * limit), what is appended is
 *   {"$flowcore": {"changed": ["nul", "invalid_utf8", "truncated"],
 *                  "original_bytes": N},
 *    "value": <the sanitized value, or for "truncated" the first
 *              FC__JSON_PREVIEW_BYTES bytes of the text (cut on a character
 *              boundary) as a string>}
 * with only the applicable entries in "changed", in this order, and no
 * whitespace. N is the byte length of v's compact JSON text; when v has
 * no such text (invalid UTF-8), of the sanitized value's text.
 * Each NUL and each invalid sequence becomes U+FFFD; two keys that become
 * equal keep the later value. A reference cycle (or nesting deeper than
 * 2048 on this rare path) is cut and stored as null, flagged "truncated".
 * v NULL appends "null" (JSON null, not SQL NULL). v is only read.
 * Returns the FC__CHANGED_* bits (0 when stored verbatim). "truncated"
 * is decided first: a truncated value lists "invalid_utf8" if it had to be
 * rebuilt to be dumped, never "nul" (the preview is a string). The common
 * path is a single dump, checked as it is written; beyond the limit, bytes
 * are counted but not stored.
 *
 * Whatever v is, the text appended is valid JSON and valid UTF-8 without
 * NUL or \u0000 (or b->oom is set). Note that jsonb does not keep key
 * order; the text does. */
#define FC__JSON_PREVIEW_BYTES 1024
unsigned fc__json_encode(fc__buf_t *b, json_t *v, size_t max_bytes);

/* ---- binary COPY ----
 * A buffer is header, then per row fc__copy_row(nfields) and exactly that
 * many field calls, then the trailer. text and jsonb are sent as UTF-8:
 * the connection's client_encoding must be UTF8 (the server converts them
 * from the client encoding). */
void fc__copy_header(fc__buf_t *b);
void fc__copy_trailer(fc__buf_t *b);
void fc__copy_row(fc__buf_t *b, int nfields);
void fc__copy_null(fc__buf_t *b);
void fc__copy_int4(fc__buf_t *b, int32_t v);
void fc__copy_bool(fc__buf_t *b, int v);
void fc__copy_int8(fc__buf_t *b, int64_t v);
void fc__copy_float8(fc__buf_t *b, double v);
void fc__copy_uuid(fc__buf_t *b, const uint8_t uuid[16]);
/* timestamptz from µs since the Unix epoch (minus 946684800000000 for
 * PostgreSQL's 2000-01-01 epoch). A time before PostgreSQL's smallest
 * timestamptz (4714 BC), which the server would reject, is written as
 * -infinity. */
void fc__copy_timestamptz(fc__buf_t *b, int64_t unix_us);
/* text: sanitized with fc__utf8_sanitize; s NULL writes NULL. Returns the
 * FC__CHANGED_* bits. */
unsigned fc__copy_text(fc__buf_t *b, const char *s);
/* jsonb: version byte 1 + fc__json_encode(v, max_bytes); v NULL writes
 * SQL NULL. Returns the FC__CHANGED_* bits. */
unsigned fc__copy_jsonb(fc__buf_t *b, json_t *v, size_t max_bytes);
/* jsonb from JSON text the caller vouches for (valid, UTF-8). */
void fc__copy_jsonb_text(fc__buf_t *b, const char *text, size_t len);

#endif
