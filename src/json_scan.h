/* A quick reader for the plain JSON of big workflow files (src/json_scan.c).
 *
 * jansson reads a file character by character through a stream with a
 * growing buffer per token; for the generated files of tens of megabytes
 * that `flowcore run` loads (ids, types, small objects, integers) that is
 * most of the load. fc__json_scan reads one value of a plain subset of JSON
 * directly from the text and builds the same jansson values. It never
 * decides what JSON is valid: for any text it either returns exactly what
 *   json_loadb(text, len,
 *              JSON_DECODE_ANY | JSON_DISABLE_EOF_CHECK | JSON_REJECT_DUPLICATES, &err)
 * returns (an equal value, with the same keys in the same order, and
 * err.position bytes used), or NULL, and then the caller asks jansson,
 * whose answer (a value, or an error with its line and column) stands.
 *
 * The subset: objects, arrays, strings of well-formed UTF-8 without escapes
 * or control characters, integers of at most 18 digits, true, false, null,
 * nested at most FC__JSON_SCAN_DEPTH deep, keys shorter than
 * FC__JSON_SCAN_KEY bytes and never repeated in one object. Whitespace
 * before the value is skipped. fuzz/fuzz_json_scan.c holds the reader to
 * jansson's answers on any bytes. */
#ifndef FLOWCORE_JSON_SCAN_H
#define FLOWCORE_JSON_SCAN_H

#include <jansson.h>
#include <stddef.h>

#define FC__JSON_SCAN_DEPTH 64
#define FC__JSON_SCAN_KEY 256

/* The value at text[0..len) (after whitespace): a new reference, with
 * *used set to the bytes it took (whitespace before it included); or NULL
 * (nothing allocated is kept, *used untouched) when the text there is not
 * in the subset, is not JSON, or memory ran out. */
json_t *fc__json_scan(const char *text, size_t len, size_t *used);

#endif
