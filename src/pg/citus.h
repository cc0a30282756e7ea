/* The history on a Citus cluster: the step of `flowcore migrate` that
 * distributes it (docs/scaling.md, "Past one server"). Internal; blocking
 * libpq. */
#ifndef FLOWCORE_PG_CITUS_H
#define FLOWCORE_PG_CITUS_H

#include "pg/pq.h"

#include "flowcore/common.h"

/* Run by fc_migrate_run() after the migration files, under the migration
 * lock, on its connection (idle, no transaction open). Without the citus
 * extension in the database it does nothing and returns 0. With it, in one
 * transaction: the history tables (workflow_executions, node_executions,
 * execution_errors, flowcore_reaps) become distributed tables by
 * workflow_id, co-located; the small tables (flowcore_partitioning,
 * flowcore_retention, flowcore_prunes, flowcore_writer_losses) reference
 * tables; whatever it changed is recorded as one row of
 * flowcore_distribution. Tables already distributed are left alone, so a
 * second run changes nothing. Refuses (FC_EDB, the server's message) on a
 * Citus worker and on a coordinator without workers. 0 or a negative error
 * code; err (may be NULL) says why. */
int fc__citus_distribute(PGconn *conn, fc_error_t *err);

#endif
