/* Integration tests of the binary COPY encoding (src/history/copy.c) against a
 * real PostgreSQL started by tests/support/pg_server: hostile text and JSON
 * are stored verbatim or as the sanitizing marker, never rejected, and
 * timestamps, uuids and numbers round-trip exactly. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fc_test.h"
#include "random_json.h"
#include "pg_server.h"

#include <libpq-fe.h>

#include "flowcore/migrate.h"
#include "history/copy.h"

#define FFFD "\xEF\xBF\xBD"

static fc_test_pg_t g_pg;
static char g_db[FC_TEST_PG_CONNINFO_LENGTH];
static char g_dbname[64];
static PGconn *g_conn;

/* ---- helpers ----------------------------------------------------------- */

static void exec_ok(const char *sql) {
  PGresult *res = PQexec(g_conn, sql);
  if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK)
    fail_msg("%s: %s", sql, PQerrorMessage(g_conn));
  PQclear(res);
}

/* Sends buf with COPY ... FROM STDIN (FORMAT binary); returns rows copied. */
static long copy_in(const char *sql, const fc__buf_t *buf) {
  PGresult *res;
  size_t off = 0;
  long rows;
  assert_false(buf->oom);
  res = PQexec(g_conn, sql);
  if (PQresultStatus(res) != PGRES_COPY_IN)
    fail_msg("%s: %s", sql, PQerrorMessage(g_conn));
  PQclear(res);
  while (off < buf->len) {
    size_t n = buf->len - off < 65536 ? buf->len - off : 65536;
    assert_int_equal(PQputCopyData(g_conn, buf->data + off, (int)n), 1);
    off += n;
  }
  assert_int_equal(PQputCopyEnd(g_conn, NULL), 1);
  res = PQgetResult(g_conn);
  if (PQresultStatus(res) != PGRES_COMMAND_OK)
    fail_msg("COPY failed: %s", PQerrorMessage(g_conn));
  rows = strtol(PQcmdTuples(res), NULL, 10);
  PQclear(res);
  while ((res = PQgetResult(g_conn)) != NULL)
    PQclear(res);
  return rows;
}

/* Runs a query with text parameters that returns one row; returns column
 * `col` as a malloc'd string, or NULL for SQL NULL. */
static char *query1(const char *sql, int col, int nparams, const char *const *params) {
  PGresult *res = PQexecParams(g_conn, sql, nparams, NULL, params, NULL, NULL, 0);
  char *out = NULL;
  if (PQresultStatus(res) != PGRES_TUPLES_OK)
    fail_msg("%s: %s", sql, PQerrorMessage(g_conn));
  if (PQntuples(res) != 1)
    fail_msg("%s: %d rows", sql, PQntuples(res));
  if (!PQgetisnull(res, 0, col)) {
    out = strdup(PQgetvalue(res, 0, col));
    assert_non_null(out);
  }
  PQclear(res);
  return out;
}

/* Asserts that a query of one value, with node_id as $1, yields want. */
static void assert_node_value(const char *node_id, const char *expr, const char *want) {
  char sql[512];
  const char *params[1];
  char *got;
  params[0] = node_id;
  snprintf(sql, sizeof sql, "SELECT %s FROM node_executions WHERE node_id = $1", expr);
  got = query1(sql, 0, 1, params);
  if (want == NULL) {
    if (got != NULL)
      fail_msg("%s for %s: got '%s', want NULL", expr, node_id, got);
    return;
  }
  if (got == NULL)
    fail_msg("%s for %s: got NULL, want '%s'", expr, node_id, want);
  if (strcmp(got, want) != 0)
    fail_msg("%s for %s: got '%s', want '%s'", expr, node_id, got, want);
  free(got);
}

static void make_uuid(uint8_t u[16], unsigned seed) {
  unsigned i;
  for (i = 0; i < 16; i++)
    u[i] = (uint8_t)(seed * 31u + i * 17u);
  u[6] = (uint8_t)((u[6] & 0x0F) | 0x70); /* looks like a v7 */
  u[8] = (uint8_t)((u[8] & 0x3F) | 0x80);
}

/* One node_executions row with the columns of NODE_COLUMNS. */
#define NODE_COLUMNS                                                                     \
  "(workflow_id, node_id, attempt, node_type, status, input_data, output_data,"          \
  " started_at, completed_at, duration_ms, error_type, error_message)"

static unsigned node_row(fc__buf_t *b, unsigned seed, const char *node_id, const char *text,
                         json_t *input, json_t *output, size_t max_bytes) {
  uint8_t u[16];
  unsigned changed = 0;
  make_uuid(u, seed);
  fc__copy_row(b, 12);
  fc__copy_uuid(b, u);
  changed |= fc__copy_text(b, node_id);
  fc__copy_int4(b, (int32_t)seed);
  changed |= fc__copy_text(b, text);
  changed |= fc__copy_text(b, "completed");
  changed |= fc__copy_jsonb(b, input, max_bytes);
  changed |= fc__copy_jsonb(b, output, max_bytes);
  fc__copy_timestamptz(b, INT64_C(1700000000000000) + (int64_t)seed);
  fc__copy_timestamptz(b, INT64_C(1700000000500000) + (int64_t)seed);
  fc__copy_float8(b, 500.25);
  fc__copy_null(b);
  changed |= fc__copy_text(b, text);
  return changed;
}

/* ---- setup ------------------------------------------------------------- */

static int group_setup(void **state) {
  fc_test_pg_options_t opts;
  fc_error_t err;
  (void)state;
  memset(&opts, 0, sizeof opts);
  memset(&err, 0, sizeof err);
  opts.fsync_off = 1;
  if (fc_test_pg_start_ex(&g_pg, &opts) != 0)
    return -1;
  snprintf(g_dbname, sizeof g_dbname, "fccopy_%ld", (long)getpid());
  if (fc_test_pg_create_db(&g_pg, g_dbname, g_db, sizeof g_db) != 0)
    return -1;
  if (fc_migrate_run(g_db, FLOWCORE_SOURCE_DIR "/migrations", NULL, &err) != 0) {
    fprintf(stderr, "migrate: %s %s\n", err.where, err.text);
    return -1;
  }
  g_conn = PQconnectdb(g_db);
  if (PQstatus(g_conn) != CONNECTION_OK) {
    fprintf(stderr, "connect: %s\n", PQerrorMessage(g_conn));
    return -1;
  }
  /* text and jsonb travel in the client encoding. */
  if (PQsetClientEncoding(g_conn, "UTF8") != 0)
    return -1;
  return 0;
}

static int group_teardown(void **state) {
  (void)state;
  if (g_conn != NULL)
    PQfinish(g_conn);
  if (g_pg.external && g_dbname[0] != '\0')
    fc_test_pg_drop_db(&g_pg, g_dbname);
  return fc_test_pg_stop(&g_pg);
}

/* ---- tests ------------------------------------------------------------- */

static const char *const hostile[] = {
    "it's \"quoted\" and 'single'",
    "'); DROP TABLE node_executions; --",
    "back\\slash \\N \\. \\\\ end\\",
    "tab\there\nnewline\r\nCR\rdone",
    "emoji \xF0\x9F\x98\x80\xF0\x9F\x91\xA8\xE2\x80\x8D\xF0\x9F\x91\xA9 \xC3\xA9 \xE4\xB8\xAD\xE6\x96\x87",
    "",
    "\\u0000 is text here, and \\\\u0000 too",
    "ctl \x01\x02\x1F\x7F, comma|pipe;semi",
    "\xEF\xBB\xBF\x42OM and U+2028\xE2\x80\xA8 U+FFFF\xEF\xBF\xBF", /* \x42: B */
    "$flowcore",
};

static void test_hostile_text_verbatim(void **state) {
  fc__buf_t b;
  size_t i;
  (void)state;
  fc__buf_init(&b);
  fc__copy_header(&b);
  for (i = 0; i < sizeof hostile / sizeof hostile[0]; i++) {
    char node_id[32];
    json_t *in = json_pack("{s:s, s:[s, i], s:{s:s}}", "s", hostile[i], "list", hostile[i],
                           (int)i, hostile[i], "k", hostile[i]);
    json_t *out = json_string(hostile[i]);
    assert_non_null(in);
    snprintf(node_id, sizeof node_id, "hostile-%zu", i);
    assert_int_equal(node_row(&b, (unsigned)i, node_id, hostile[i], in, out, 1 << 20), 0);
    json_decref(in);
    json_decref(out);
  }
  fc__copy_trailer(&b);
  assert_int_equal(copy_in("COPY node_executions " NODE_COLUMNS " FROM STDIN (FORMAT binary)",
                           &b),
                   (long)(sizeof hostile / sizeof hostile[0]));
  fc__buf_free(&b);

  /* Still there, and every byte as sent. */
  {
    char *n = query1("SELECT count(*) FROM node_executions WHERE node_id LIKE 'hostile-%'", 0,
                     0, NULL);
    assert_int_equal(strtol(n, NULL, 10), (long)(sizeof hostile / sizeof hostile[0]));
    free(n);
  }
  for (i = 0; i < sizeof hostile / sizeof hostile[0]; i++) {
    char node_id[32];
    json_t *in = json_pack("{s:s, s:[s, i], s:{s:s}}", "s", hostile[i], "list", hostile[i],
                           (int)i, hostile[i], "k", hostile[i]);
    char *dump = json_dumps(in, JSON_COMPACT);
    const char *params[2];
    char *eq;
    snprintf(node_id, sizeof node_id, "hostile-%zu", i);
    assert_node_value(node_id, "node_type", hostile[i]);
    assert_node_value(node_id, "error_message", hostile[i]);
    assert_node_value(node_id, "input_data->>'s'", hostile[i]);
    assert_node_value(node_id, "input_data->'list'->>0", hostile[i]);
    assert_node_value(node_id, "output_data #>> '{}'", hostile[i]);
    /* (hostile-9 has a key "$flowcore", but it is no marker) */
    assert_node_value(node_id, "input_data->'$flowcore'->'changed' IS NULL", "t");
    /* The jsonb equals what the server makes of jansson's own text. */
    params[0] = node_id;
    params[1] = dump;
    eq = query1("SELECT (input_data = $2::jsonb)::text FROM node_executions "
                "WHERE node_id = $1",
                0, 2, params);
    assert_string_equal(eq, "true");
    free(eq);
    free(dump);
    json_decref(in);
  }
}

static void test_sanitized_payloads(void **state) {
  fc__buf_t b;
  json_t *nul, *bad, *big, *badkey, *cyc_a, *cyc_b;
  char *big_text, want[32];
  (void)state;

  nul = json_pack("{s:s%}", "s", "a\0b", (size_t)3);
  bad = json_pack("{s:o}", "s", json_stringn_nocheck("x\xC0\xAFy\xED\xA0\x80", 7));
  badkey = json_object();
  json_object_set_new_nocheck(badkey, "k\xFF", json_string("v"));
  json_object_setn_new(badkey, "n\0", 2, json_string("w"));
  big_text = malloc(100001);
  memset(big_text, 'z', 100000);
  big_text[100000] = '\0';
  big = json_pack("{s:s}", "s", big_text);
  cyc_a = json_array();
  cyc_b = json_array();
  json_array_append(cyc_a, cyc_b);
  json_array_append(cyc_b, cyc_a);

  fc__buf_init(&b);
  fc__copy_header(&b);
  assert_int_equal(node_row(&b, 100, "nul", "x", nul, NULL, 0), FC__CHANGED_NUL);
  assert_int_equal(node_row(&b, 101, "bad", "bad \xFF\xFE text", NULL, bad, 0),
                   FC__CHANGED_INVALID_UTF8);
  assert_int_equal(node_row(&b, 102, "big", "x", big, NULL, 65536), FC__CHANGED_TRUNCATED);
  assert_int_equal(node_row(&b, 103, "badkey", "x", badkey, NULL, 0),
                   FC__CHANGED_NUL | FC__CHANGED_INVALID_UTF8);
  assert_int_equal(node_row(&b, 104, "cycle", "x", cyc_a, NULL, 0), FC__CHANGED_TRUNCATED);
  {
    /* jansson alone would send {":1,":2}, which even parses. */
    json_t *two = json_object();
    json_object_set_new_nocheck(two, "\xFF", json_integer(1));
    json_object_set_new_nocheck(two, "\xFE", json_integer(2));
    assert_int_equal(node_row(&b, 105, "twokeys", "x", two, NULL, 0),
                     FC__CHANGED_INVALID_UTF8);
    json_decref(two);
  }
  fc__copy_trailer(&b);
  assert_int_equal(
      copy_in("COPY node_executions " NODE_COLUMNS " FROM STDIN (FORMAT binary)", &b), 6);
  fc__buf_free(&b);

  assert_node_value("nul", "input_data->'$flowcore'->'changed' = '[\"nul\"]'", "t");
  assert_node_value("nul", "input_data->'$flowcore'->>'original_bytes'",
                    "16"); /* {"s":"a\u0000b"} */
  assert_node_value("nul", "input_data->'value'->>'s'", "a" FFFD "b");
  assert_node_value("nul", "output_data", NULL);

  assert_node_value("bad", "output_data->'$flowcore'->'changed' = '[\"invalid_utf8\"]'", "t");
  assert_node_value("bad", "output_data->'value'->>'s'", "x" FFFD FFFD "y" FFFD FFFD FFFD);
  assert_node_value("bad", "node_type", "bad " FFFD FFFD " text");

  assert_node_value("big", "input_data->'$flowcore'->'changed' = '[\"truncated\"]'", "t");
  snprintf(want, sizeof want, "%d", 100000 + 8); /* {"s":"zzz...z"} */
  assert_node_value("big", "input_data->'$flowcore'->>'original_bytes'", want);
  assert_node_value("big", "octet_length(input_data->>'value')::text", "1024");
  assert_node_value("big", "left(input_data->>'value', 9)", "{\"s\":\"zzz");

  assert_node_value("badkey",
                    "input_data->'$flowcore'->'changed' = '[\"nul\", \"invalid_utf8\"]'", "t");
  assert_node_value("badkey", "input_data->'value'->>'k" FFFD "'", "v");
  assert_node_value("badkey", "input_data->'value'->>'n" FFFD "'", "w");

  assert_node_value("cycle", "input_data::text",
                    "{\"value\": [[null]], \"$flowcore\": {\"changed\": [\"truncated\"], "
                    "\"original_bytes\": 8}}");

  assert_node_value("twokeys", "input_data::text",
                    "{\"value\": {\"" FFFD "\": 2}, \"$flowcore\": {\"changed\": "
                    "[\"invalid_utf8\"], \"original_bytes\": 9}}");

  json_array_clear(cyc_b);
  json_decref(cyc_b);
  json_decref(cyc_a);
  json_decref(nul);
  json_decref(bad);
  json_decref(badkey);
  json_decref(big);
  free(big_text);
}

/* Random values with random bytes (NUL, invalid UTF-8, quotes,
 * backslashes, "\u0000" as text) in strings and keys: one COPY batch of
 * them is accepted whole, and exactly the changed ones carry the marker. */
static fc_test_rng_t rng = {777};

static uint32_t rnd(uint32_t n) { return fc_test_rnd(&rng, n); }

static void test_random_batch(void **state) {
  fc__buf_t b;
  int i, nchanged = 0, nrows = 3000;
  char *got, want[32];
  (void)state;
  exec_ok("CREATE TEMP TABLE rnd (i int, t text, j jsonb)");
  fc__buf_init(&b);
  fc__copy_header(&b);
  for (i = 0; i < nrows; i++) {
    json_t *v = fc_test_random_json(&rng);
    char text[16];
    size_t n = rnd(sizeof text);
    fc_test_random_bytes(&rng, text, n);
    text[n < sizeof text ? n : sizeof text - 1] = '\0';
    fc__copy_row(&b, 3);
    fc__copy_int4(&b, i);
    fc__copy_text(&b, text);
    if (fc__copy_jsonb(&b, v, rnd(4) == 0 ? 40 : 0) != 0)
      nchanged++;
    json_decref(v);
  }
  fc__copy_trailer(&b);
  assert_int_equal(copy_in("COPY rnd FROM STDIN (FORMAT binary)", &b), nrows);
  fc__buf_free(&b);
  assert_true(nchanged > 100 && nchanged < nrows - 100);
  got = query1("SELECT count(*) FROM rnd WHERE jsonb_typeof(j) = 'object' AND "
               "j->'$flowcore'->'changed' IS NOT NULL",
               0, 0, NULL);
  snprintf(want, sizeof want, "%d", nchanged);
  assert_string_equal(got, want);
  free(got);
}

typedef struct {
  int64_t unix_us;
  const char *literal; /* timestamptz, UTC */
} ts_case_t;

static const ts_case_t ts_cases[] = {
    {0, "1970-01-01 00:00:00+00"},
    {-1, "1969-12-31 23:59:59.999999+00"},
    {INT64_C(946684800000000), "2000-01-01 00:00:00+00"},
    {INT64_C(946684799999999), "1999-12-31 23:59:59.999999+00"},
    {INT64_C(1700000000123456), "2023-11-14 22:13:20.123456+00"},
    {INT64_C(253402300799999999), "9999-12-31 23:59:59.999999+00"},
    {INT64_C(-62135596800000000), "0001-01-01 00:00:00+00"},
    {INT64_C(-210866803200000000), "4714-11-24 00:00:00+00 BC"}, /* the smallest */
    {INT64_C(-210866803200000001), "-infinity"},
    {INT64_MIN, "-infinity"},
};

static void test_round_trip_types(void **state) {
  fc__buf_t b;
  size_t i;
  (void)state;
  exec_ok("CREATE TEMP TABLE rt (i int, t timestamptz, u uuid, d float8, b bigint, n int)");
  fc__buf_init(&b);
  fc__copy_header(&b);
  for (i = 0; i < sizeof ts_cases / sizeof ts_cases[0]; i++) {
    uint8_t u[16];
    make_uuid(u, (unsigned)i);
    fc__copy_row(&b, 6);
    fc__copy_int4(&b, (int32_t)i);
    fc__copy_timestamptz(&b, ts_cases[i].unix_us);
    fc__copy_uuid(&b, u);
    fc__copy_float8(&b, i == 0 ? 0.1 : -1.0 / (double)i);
    fc__copy_int8(&b, i == 0 ? INT64_MIN : (int64_t)i * INT64_C(1000000007) - 1);
    if (i == 1)
      fc__copy_null(&b);
    else
      fc__copy_int4(&b, i == 0 ? INT32_MIN : -(int32_t)i);
  }
  fc__copy_trailer(&b);
  assert_int_equal(copy_in("COPY rt FROM STDIN (FORMAT binary)", &b),
                   (long)(sizeof ts_cases / sizeof ts_cases[0]));
  fc__buf_free(&b);

  for (i = 0; i < sizeof ts_cases / sizeof ts_cases[0]; i++) {
    char idx[16], uuid_text[40], d_text[64], b_text[32], n_text[16], *eq;
    const char *params[6];
    uint8_t u[16];
    int k, pos = 0;
    make_uuid(u, (unsigned)i);
    for (k = 0; k < 16; k++) {
      if (k == 4 || k == 6 || k == 8 || k == 10)
        uuid_text[pos++] = '-';
      pos += snprintf(uuid_text + pos, sizeof uuid_text - (size_t)pos, "%02x", u[k]);
    }
    snprintf(idx, sizeof idx, "%zu", i);
    snprintf(d_text, sizeof d_text, "%.17g", i == 0 ? 0.1 : -1.0 / (double)i);
    snprintf(b_text, sizeof b_text, "%" PRId64,
             i == 0 ? INT64_MIN : (int64_t)i * INT64_C(1000000007) - 1);
    snprintf(n_text, sizeof n_text, "%" PRId32, i == 0 ? INT32_MIN : -(int32_t)i);
    params[0] = idx;
    params[1] = ts_cases[i].literal;
    params[2] = uuid_text;
    params[3] = d_text;
    params[4] = b_text;
    params[5] = n_text;
    eq = query1("SELECT concat_ws(',', (t = $2::timestamptz), (u = $3::uuid), "
                "(d = $4::float8), (b = $5::bigint), (n IS NOT DISTINCT FROM "
                "CASE WHEN i = 1 THEN NULL ELSE $6::int END))"
                " FROM rt WHERE i = $1::int",
                0, 6, params);
    if (strcmp(eq, "t,t,t,t,t") != 0)
      fail_msg("row %zu (%s, %s): %s", i, ts_cases[i].literal, uuid_text, eq);
    free(eq);
  }
  /* And the server's own rendering, for one of them. */
  {
    const char *params[1] = {"4"};
    char *t;
    exec_ok("SET TimeZone = 'UTC'");
    t = query1("SELECT t::text || ' ' || u::text FROM rt WHERE i = $1::int", 0, 1, params);
    assert_non_null(strstr(t, "2023-11-14 22:13:20.123456+00 "));
    free(t);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_hostile_text_verbatim),
      cmocka_unit_test(test_sanitized_payloads),
      cmocka_unit_test(test_round_trip_types),
      cmocka_unit_test(test_random_batch),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
