/* libpq, opened when first needed (see pq.h). */
#define FC__PQ_IMPLEMENTATION
#include "pg/pq.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <uv.h>

#include "internal.h"

/* The soname Debian's libpq5 (and every libpq since 8.2) installs;
 * FLOWCORE_LIBPQ in the environment names another file. */
#define PQ_LIBRARY "libpq.so.5"

fc__pq_t fc__pq;

static uv_once_t pq_once = UV_ONCE_INIT;
static int pq_rc;
static char pq_why[512];

static void pq_open(void) {
  const char *name = getenv("FLOWCORE_LIBPQ");
  void *lib;
  fc__pq_t t;
  const char *missing = NULL;
  if (name == NULL || name[0] == '\0')
    name = PQ_LIBRARY;
  lib = dlopen(name, RTLD_NOW | RTLD_LOCAL);
  if (lib == NULL) {
    const char *e = dlerror();
    snprintf(pq_why, sizeof pq_why, "cannot load libpq (%.100s): %.300s", name,
             e != NULL ? e : "unknown error");
    pq_rc = FC_EDB;
    return;
  }
  /* A data pointer from dlsym converted to a function pointer: what
   * POSIX requires dlsym to allow. */
#define FC__PQ_SYM(ret, name, params)                                                              \
  if ((*(void **)&t.name = dlsym(lib, #name)) == NULL && missing == NULL)                          \
    missing = #name;
  FC__PQ_FUNCTIONS(FC__PQ_SYM)
#undef FC__PQ_SYM
  if (missing != NULL) {
    snprintf(pq_why, sizeof pq_why, "cannot load libpq (%.100s): it has no %s", name, missing);
    pq_rc = FC_EDB;
    return; /* the library stays open: harmless, and it may be in use */
  }
  fc__pq = t;
}

int fc__pq_load(const char **why) {
  uv_once(&pq_once, pq_open);
  if (why != NULL)
    *why = pq_rc != 0 ? pq_why : "";
  return pq_rc;
}
