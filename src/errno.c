/* Error codes: messages and names for flowcore's codes (FC_ERRNO_MAP) and,
 * through libuv, for every libuv code. */
#define _POSIX_C_SOURCE 200809L

#include <uv.h>

#include "internal.h"

/* libuv returns a freshly allocated string (never freed) for a code it does
 * not know, so only codes of its own table are handed to it. */
static int uv_code_known(int err) {
  static const int codes[] = {
#define FC__UV_CODE(name, msg) UV_##name,
      UV_ERRNO_MAP(FC__UV_CODE)
#undef FC__UV_CODE
  };
  size_t i;
  for (i = 0; i < FC__ARRAY_SIZE(codes); i++)
    if (codes[i] == err)
      return 1;
  return 0;
}

const char *fc_strerror(int err) {
  switch (err) {
#define FC__STRERROR_CASE(name, code, msg)                                                         \
  case code:                                                                                       \
    return msg;
    FC_ERRNO_MAP(FC__STRERROR_CASE)
#undef FC__STRERROR_CASE
  case 0:
    return "success";
  default:
    break;
  }
  if (err <= FC_ERRNO_MAX && err > FC_ERRNO_MAX - 100)
    return "unknown flowcore error";
  if (uv_code_known(err))
    return uv_strerror(err);
  return "unknown error";
}

const char *fc_err_name(int err) {
  switch (err) {
#define FC__ERR_NAME_CASE(name, code, msg)                                                         \
  case code:                                                                                       \
    return "FC_" #name;
    FC_ERRNO_MAP(FC__ERR_NAME_CASE)
#undef FC__ERR_NAME_CASE
  case 0:
    return "OK";
  default:
    break;
  }
  if (err <= FC_ERRNO_MAX && err > FC_ERRNO_MAX - 100)
    return "FC_EUNKNOWN";
  if (uv_code_known(err))
    return uv_err_name(err);
  return "UNKNOWN";
}
