/* Integration tests against a Citus cluster (see citus_cluster.h). */
#define _GNU_SOURCE

#include "citus_cluster.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NODE_DIR_LENGTH 200

static void say(const char *msg, const char *arg) {
  fprintf(stderr, "fc_test_citus: %s%s\n", msg, arg);
  fflush(stderr);
}

const char *fc_test_citus_dir(void) {
  const char *dir = getenv("FLOWCORE_TEST_CITUS");
  return dir != NULL && dir[0] != '\0' ? dir : NULL;
}

/* The directory of node i (0: the coordinator, else line i of
 * DIR/workers). Returns 0, or -1 when there is no such node. */
static int node_dir(int i, char *out, size_t size) {
  const char *dir = fc_test_citus_dir();
  char path[FC_TEST_PG_PATH_LENGTH], line[NODE_DIR_LENGTH];
  FILE *f;
  int n = 0, found = -1;

  if (dir == NULL) {
    say("FLOWCORE_TEST_CITUS is not set", "");
    return -1;
  }
  if (i == 0)
    return (size_t)snprintf(out, size, "%s/coordinator", dir) < size ? 0 : -1;
  snprintf(path, sizeof path, "%s/workers", dir);
  if ((f = fopen(path, "r")) == NULL) {
    say("cannot read ", path);
    return -1;
  }
  while (found != 0 && fgets(line, sizeof line, f) != NULL) {
    line[strcspn(line, "\n")] = '\0';
    if (++n == i)
      found = (size_t)snprintf(out, size, "%s", line) < size ? 0 : -1;
  }
  fclose(f);
  return found;
}

int fc_test_citus_worker_count(void) {
  char dir[NODE_DIR_LENGTH];
  int n = 0;
  if (fc_test_citus_dir() == NULL)
    return -1;
  while (node_dir(n + 1, dir, sizeof dir) == 0)
    n++;
  return n;
}

int fc_test_citus_node(int i, fc_test_pg_t *out) {
  char dir[NODE_DIR_LENGTH];
  if (node_dir(i, dir, sizeof dir) != 0)
    return -1;
  return fc_test_pg_attach(out, dir);
}

/* Test databases are named by the tests: [a-z0-9_] only, so they need no
 * quoting. */
static int plain_name(const char *name) {
  return name[0] != '\0' && strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789_") == strlen(name);
}

int fc_test_citus_add_db(const char *coord_db, const char *name) {
  fc_test_pg_t node;
  char db[FC_TEST_PG_CONNINFO_LENGTH];
  int i, n = fc_test_citus_worker_count();

  if (!plain_name(name)) {
    say("database names must be [a-z0-9_]: ", name);
    return -1;
  }
  if (n < 1 || fc_test_pg_exec(coord_db, "CREATE EXTENSION IF NOT EXISTS citus") != 0 ||
      fc_test_citus_node(0, &node) != 0 ||
      fc_test_pg_exec(coord_db, "SELECT citus_set_coordinator_host('127.0.0.1', %d)", node.port) !=
          0)
    return -1;
  for (i = 1; i <= n; i++) {
    if (fc_test_citus_node(i, &node) != 0 ||
        fc_test_pg_exec(node.conninfo, "DROP DATABASE IF EXISTS %s WITH (FORCE)", name) != 0 ||
        fc_test_pg_exec(node.conninfo, "CREATE DATABASE %s", name) != 0 ||
        fc_test_pg_conninfo_with_db(node.conninfo, name, db, sizeof db) != 0 ||
        fc_test_pg_exec(db, "CREATE EXTENSION citus") != 0 ||
        fc_test_pg_exec(coord_db, "SELECT citus_add_node('127.0.0.1', %d)", node.port) != 0)
      return -1;
  }
  return 0;
}

int fc_test_citus_end_prepared(const char *conninfo, const char *name) {
  char db[FC_TEST_PG_CONNINFO_LENGTH];
  char *gids, *gid, *save = NULL;
  int rc = 0;

  if (!plain_name(name)) {
    say("database names must be [a-z0-9_]: ", name);
    return -1;
  }
  gids = fc_test_pg_text(conninfo,
                         "SELECT coalesce(string_agg(gid, ' '), '') FROM pg_prepared_xacts"
                         " WHERE database = '%s'",
                         name);
  if (gids == NULL)
    return -1;
  if (gids[0] != '\0')
    rc = fc_test_pg_conninfo_with_db(conninfo, name, db, sizeof db);
  for (gid = strtok_r(gids, " ", &save); rc == 0 && gid != NULL; gid = strtok_r(NULL, " ", &save))
    rc = fc_test_pg_exec(db, "ROLLBACK PREPARED '%s'", gid);
  free(gids);
  return rc;
}

int fc_test_citus_drop_db(const char *name) {
  fc_test_pg_t node;
  int i, n = fc_test_citus_worker_count();

  if (!plain_name(name)) {
    say("database names must be [a-z0-9_]: ", name);
    return -1;
  }
  for (i = 1; i <= n; i++)
    if (fc_test_citus_node(i, &node) != 0 || fc_test_citus_end_prepared(node.conninfo, name) != 0 ||
        fc_test_pg_exec(node.conninfo, "DROP DATABASE IF EXISTS %s WITH (FORCE)", name) != 0)
      return -1;
  return n < 0 ? -1 : 0;
}
