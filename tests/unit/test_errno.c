/* Error codes: flowcore's own table, libuv passthrough, unknown codes. */
#define _POSIX_C_SOURCE 200809L

#include <string.h>

#include "fc_test.h"

static void test_flowcore_codes(void **state) {
  (void)state;
  assert_string_equal(fc_strerror(FC_EINVAL), "invalid argument");
  assert_string_equal(fc_err_name(FC_EINVAL), "FC_EINVAL");
  assert_string_equal(fc_strerror(FC_ECYCLE), "dependency cycle");
  assert_string_equal(fc_err_name(FC_ECYCLE), "FC_ECYCLE");
  assert_string_equal(fc_strerror(FC_ENOFN), "node has no function");
  assert_string_equal(fc_err_name(FC_ENOFN), "FC_ENOFN");
  assert_string_equal(fc_err_name(FC_ETIMEDOUT), "FC_ETIMEDOUT");
  assert_int_equal(FC_EINVAL, -5001);
  assert_int_equal(FC_ENOFN, -5015);
}

/* Every entry of the map: message and name as declared, in range, and
 * unknown to libuv (so the ranges cannot collide). */
static void test_whole_map(void **state) {
  static const struct {
    int code;
    const char *name;
    const char *msg;
  } map[] = {
#define XX(name, code, msg) {code, "FC_" #name, msg},
      FC_ERRNO_MAP(XX)
#undef XX
  };
  size_t i, j;
  char buf[128];
  (void)state;
  assert_true(sizeof map / sizeof map[0] >= 15);
  for (i = 0; i < sizeof map / sizeof map[0]; i++) {
    assert_true(map[i].code < FC_ERRNO_MAX);
    assert_true(map[i].code > FC_ERRNO_MAX - 100);
    assert_string_equal(fc_strerror(map[i].code), map[i].msg);
    assert_string_equal(fc_err_name(map[i].code), map[i].name);
    uv_err_name_r(map[i].code, buf, sizeof buf);
    assert_non_null(strstr(buf, "Unknown"));
    for (j = 0; j < i; j++)
      assert_int_not_equal(map[i].code, map[j].code);
  }
}

static void test_libuv_passthrough(void **state) {
  static const int codes[] = {UV_EINVAL,    UV_ENOMEM,    UV_ENOENT,     UV_EOF,
                              UV_ECANCELED, UV_ETIMEDOUT, UV_EAI_NONAME, UV_EIO};
  size_t i;
  (void)state;
  for (i = 0; i < sizeof codes / sizeof codes[0]; i++) {
    assert_string_equal(fc_strerror(codes[i]), uv_strerror(codes[i]));
    assert_string_equal(fc_err_name(codes[i]), uv_err_name(codes[i]));
  }
  assert_string_equal(fc_err_name(UV_EINVAL), "EINVAL");
  assert_string_equal(fc_err_name(UV_EOF), "EOF");
  assert_string_equal(fc_strerror(UV_EOF), "end of file");
  /* flowcore's ECANCELED is not libuv's */
  assert_int_not_equal(FC_ECANCELED, UV_ECANCELED);
  assert_string_equal(fc_err_name(FC_ECANCELED), "FC_ECANCELED");
  assert_string_equal(fc_err_name(UV_ECANCELED), "ECANCELED");
}

static void test_unknown_codes(void **state) {
  (void)state;
  assert_string_equal(fc_strerror(0), "success");
  assert_string_equal(fc_err_name(0), "OK");
  /* inside flowcore's range but not defined */
  assert_string_equal(fc_strerror(-5099), "unknown flowcore error");
  assert_string_equal(fc_err_name(-5099), "FC_EUNKNOWN");
  assert_string_equal(fc_err_name(FC_ERRNO_MAX), "FC_EUNKNOWN");
  /* neither ours nor libuv's: a static string, no allocation */
  assert_string_equal(fc_strerror(-123456), "unknown error");
  assert_string_equal(fc_err_name(-123456), "UNKNOWN");
  assert_string_equal(fc_err_name(42), "UNKNOWN");
  assert_string_equal(fc_err_name(-5100), "UNKNOWN");
}

static void test_error_clear(void **state) {
  fc_error_t err;
  (void)state;
  memset(&err, 'x', sizeof err);
  fc_error_clear(&err);
  assert_int_equal(err.code, 0);
  assert_string_equal(err.text, "");
  assert_string_equal(err.where, "");
  fc_error_clear(NULL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_flowcore_codes),    cmocka_unit_test(test_whole_map),
      cmocka_unit_test(test_libuv_passthrough), cmocka_unit_test(test_unknown_codes),
      cmocka_unit_test(test_error_clear),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
