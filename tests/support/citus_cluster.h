/* Integration tests against a Citus cluster made by scripts/citus-cluster.
 *
 * FLOWCORE_TEST_CITUS names the cluster's directory (DIR of
 * `scripts/citus-cluster start DIR`); FLOWCORE_TEST_PG is then the
 * coordinator's conninfo (`scripts/citus-cluster env DIR`). With it,
 * fc_test_pg_create_db() (pg_server.h) makes each test database a Citus
 * database: the database on every worker too, the citus extension in every
 * copy, the coordinator and the workers registered in the coordinator's
 * copy. `flowcore migrate` (fc_migrate_run) then distributes the history.
 *
 * Blocking, for test code only. Return values: 0 or -1 (the reason is
 * printed on stderr). */
#ifndef FC_TEST_CITUS_CLUSTER_H
#define FC_TEST_CITUS_CLUSTER_H

#include "pg_server.h"

/* $FLOWCORE_TEST_CITUS, or NULL when it is unset or empty. */
const char *fc_test_citus_dir(void);

/* How many workers the cluster has (lines of DIR/workers), or -1. */
int fc_test_citus_worker_count(void);

/* fc_test_pg_attach() of worker i (1-based) or, for i = 0, of the
 * coordinator: restart it with fc_test_pg_restart(). */
int fc_test_citus_node(int i, fc_test_pg_t *out);

/* Makes the coordinator's new database `name` (conninfo coord_db) a Citus
 * database: `name` on every worker (dropped first if it exists), the
 * extension everywhere, the nodes registered. */
int fc_test_citus_add_db(const char *coord_db, const char *name);

/* Rolls back the prepared transactions of database `name` on the node at
 * conninfo. A node stopped mid-commit (test_citus) can leave some behind,
 * and DROP DATABASE ... WITH (FORCE) refuses a database that has any ("is
 * being used by prepared transactions"); the database is being dropped, so
 * whether they would have committed does not matter. */
int fc_test_citus_end_prepared(const char *conninfo, const char *name);

/* Drops database `name` on every worker (its prepared transactions rolled
 * back first). */
int fc_test_citus_drop_db(const char *name);

#endif
