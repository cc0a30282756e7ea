/* The history on a Citus cluster (see citus.h). */
#include "pg/citus.h"

#include <string.h>

#include "internal.h"

/* Kept in the database: one row per run of the step that changed
 * something. A plain table of the coordinator, like
 * flowcore_schema_migrations. */
static const char k_create_record[] =
    "CREATE TABLE IF NOT EXISTS flowcore_distribution ("
    " distributed_at timestamptz NOT NULL DEFAULT now(),"
    " distributed_by text NOT NULL DEFAULT session_user,"
    " flowcore_version text,"
    " citus_version text NOT NULL,"
    " workers int NOT NULL,"
    " changed text[] NOT NULL)";

/* The history tables are distributed now, not before: their append-only
 * trigger (migrations 0005, 0007, 0009) is about to run on the workers'
 * shards, whose names are <table>_<shard id> (a shard of a day partition
 * has the shard of its partitioned table as its root). The function of
 * 0009, with those names mapped back. A later migration that replaces the
 * function must keep the mapping (test_citus checks the rule on a
 * cluster). */
static const char k_trigger_function[] =
    "CREATE OR REPLACE FUNCTION flowcore_refuse_finished_update() RETURNS trigger\n"
    "LANGUAGE plpgsql AS $$\n"
    "DECLARE\n"
    "    w workflow_executions;\n"
    "    n node_executions;\n"
    "    tname text := TG_TABLE_NAME;\n"
    "    root regclass := pg_partition_root(TG_RELID);\n"
    "BEGIN\n"
    "    IF root IS NOT NULL THEN\n"
    "        SELECT relname INTO tname FROM pg_class WHERE oid = root;\n"
    "    END IF;\n"
    "    -- a Citus shard: <table>_<shard id>\n"
    "    IF tname NOT IN ('workflow_executions', 'node_executions', 'execution_errors',\n"
    "                     'flowcore_reaps') THEN\n"
    "        tname := regexp_replace(tname, '_[0-9]+$', '');\n"
    "    END IF;\n"
    "    IF tname = 'workflow_executions' THEN\n"
    "        w := NEW;\n"
    "        IF OLD.input_data IS NULL THEN w.input_data := NULL; END IF;\n"
    "        IF OLD.host IS NULL AND OLD.pid IS NULL THEN w.host := NULL; w.pid := NULL; END IF;\n"
    "        IF w IS NOT DISTINCT FROM OLD THEN RETURN NEW; END IF;\n"
    "    ELSIF tname = 'node_executions' THEN\n"
    "        n := NEW;\n"
    "        IF OLD.input_data IS NULL THEN n.input_data := NULL; n.input_refs := OLD.input_refs;"
    " END IF;\n"
    "        IF OLD.started_at IS NULL THEN n.started_at := NULL; END IF;\n"
    "        IF OLD.node_type IS NULL THEN n.node_type := NULL; END IF;\n"
    "        IF n IS NOT DISTINCT FROM OLD THEN RETURN NEW; END IF;\n"
    "    END IF;\n"
    "    IF tname IN ('execution_errors', 'flowcore_reaps') THEN\n"
    "        RAISE EXCEPTION 'flowcore: % rows cannot be changed (the history is append-only)',\n"
    "                        tname\n"
    "            USING ERRCODE = 'integrity_constraint_violation';\n"
    "    END IF;\n"
    "    RAISE EXCEPTION 'flowcore: this % row is finished (status %) and cannot be changed '\n"
    "                    '(the history is append-only)', tname, OLD.status\n"
    "        USING ERRCODE = 'integrity_constraint_violation';\n"
    "END\n"
    "$$";

/* citus.enable_unsafe_triggers: Citus refuses tables with triggers unless
 * it is on, because a trigger that reads other tables could see another
 * shard's state; ours only compares a row's old and new values. It is set
 * for flowcore__create_partition (0007) too, whose new day partitions get
 * the trigger. Sequential mode: one connection per worker for the DDL of
 * this transaction. */
static const char k_distribute[] =
    "DO $$\n"
    "DECLARE\n"
    "    t text;\n"
    "    changed text[] := '{}';\n"
    "    workers int;\n"
    "BEGIN\n"
    "    IF NOT citus_is_coordinator() THEN\n"
    "        RAISE EXCEPTION 'this database is on a Citus worker; run flowcore migrate against "
    "the coordinator'\n"
    "            USING ERRCODE = 'feature_not_supported';\n"
    "    END IF;\n"
    "    SELECT count(*) INTO workers FROM pg_dist_node\n"
    "     WHERE isactive AND noderole = 'primary' AND groupid <> 0;\n"
    "    IF workers = 0 THEN\n"
    "        RAISE EXCEPTION 'the database has the citus extension but the coordinator knows no "
    "worker (SELECT citus_add_node(host, port) first)'\n"
    "            USING ERRCODE = 'feature_not_supported';\n"
    "    END IF;\n"
    "    SET LOCAL citus.enable_unsafe_triggers = on;\n"
    "    SET LOCAL citus.multi_shard_modify_mode = 'sequential';\n"
    "    FOREACH t IN ARRAY ARRAY['workflow_executions', 'node_executions', 'execution_errors',\n"
    "                             'flowcore_reaps'] LOOP\n"
    "        CONTINUE WHEN to_regclass(t) IS NULL OR EXISTS\n"
    "            (SELECT 1 FROM pg_dist_partition WHERE logicalrelid = t::regclass);\n"
    "        PERFORM create_distributed_table(t, 'workflow_id', colocate_with =>\n"
    "            CASE WHEN t = 'workflow_executions' THEN 'none' ELSE 'workflow_executions' END);\n"
    "        changed := changed || (t || ': distributed by workflow_id');\n"
    "    END LOOP;\n"
    "    FOREACH t IN ARRAY ARRAY['flowcore_partitioning', 'flowcore_retention', "
    "'flowcore_prunes',\n"
    "                             'flowcore_writer_losses'] LOOP\n"
    "        CONTINUE WHEN to_regclass(t) IS NULL OR EXISTS\n"
    "            (SELECT 1 FROM pg_dist_partition WHERE logicalrelid = t::regclass);\n"
    "        PERFORM create_reference_table(t);\n"
    "        changed := changed || (t || ': reference table');\n"
    "    END LOOP;\n"
    "    IF cardinality(changed) > 0 THEN\n"
    "        IF to_regprocedure('flowcore__create_partition(date)') IS NOT NULL THEN\n"
    "            ALTER FUNCTION flowcore__create_partition(date)\n"
    "                SET citus.enable_unsafe_triggers = on;\n"
    "        END IF;\n"
    "        INSERT INTO flowcore_distribution (flowcore_version, citus_version, workers, changed)\n"
    "        VALUES (current_setting('flowcore.version', true),\n"
    "                (SELECT extversion FROM pg_extension WHERE extname = 'citus'), workers, "
    "changed);\n"
    "    END IF;\n"
    "END\n"
    "$$";

/* The functions that read the history tables, made to work on Citus; run
 * at every migrate (after later migrations, too) and changes nothing the
 * second time:
 *  - a LANGUAGE sql function with parameters whose query reads a
 *    distributed table is refused by Citus ("parameterized queries for SQL
 *    functions referencing distributed tables are not supported"; 0008's
 *    flowcore_node_stats(since, until), 0009's flowcore_node_input ...):
 *    each becomes LANGUAGE plpgsql with the same body (RETURN QUERY body,
 *    or RETURN (body) for a single value), the same signature, owner and
 *    grants;
 *  - a function called per row of a distributed table (flowcore_node_input
 *    (workflow_id, node_id, attempt) FROM node_executions) runs on the
 *    worker that holds the row, and its own query of the history is then a
 *    distributed query inside a shard's query, which Citus refuses unless
 *    citus.allow_nested_distributed_execution is on. They only read
 *    finished rows of one run, so it is set for them.
 * Trigger functions are left alone. */
static const char k_functions[] =
    "DO $$\n"
    "DECLARE\n"
    "    f record;\n"
    "BEGIN\n"
    "    FOR f IN\n"
    "        SELECT p.oid::regprocedure AS sig, p.proname, l.lanname, p.proretset,\n"
    "               p.pronargs, pg_get_function_arguments(p.oid) AS args,\n"
    "               pg_get_function_result(p.oid) AS result,\n"
    "               regexp_replace(p.prosrc, '[;[:space:]]+$', '') AS body,\n"
    "               CASE p.provolatile WHEN 'i' THEN 'IMMUTABLE' WHEN 's' THEN 'STABLE'\n"
    "                    ELSE 'VOLATILE' END AS volatility,\n"
    "               coalesce('citus.allow_nested_distributed_execution=on' = ANY (p.proconfig),\n"
    "                        false) AS nested\n"
    "          FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang\n"
    "         WHERE p.pronamespace = 'public'::regnamespace AND p.prokind = 'f'\n"
    "           AND p.proname LIKE 'flowcore%'\n"
    "           AND p.prorettype <> 'trigger'::regtype AND l.lanname IN ('sql', 'plpgsql')\n"
    "           AND p.prosrc ~ '(workflow_executions|node_executions|execution_errors)'\n"
    "    LOOP\n"
    "        IF f.lanname = 'sql' AND f.pronargs > 0 THEN\n"
    "            EXECUTE format('CREATE OR REPLACE FUNCTION %I(%s) RETURNS %s LANGUAGE plpgsql %s'\n"
    "                           ' AS %L', f.proname, f.args, f.result, f.volatility,\n"
    "                           '#variable_conflict use_column' || chr(10) || 'BEGIN' || chr(10)\n"
    "                           || CASE WHEN f.proretset THEN '    RETURN QUERY ' || f.body || ';'\n"
    "                                   ELSE '    RETURN (' || f.body || ');' END\n"
    "                           || chr(10) || 'END');\n"
    "            f.nested := false;\n"
    "        END IF;\n"
    "        IF NOT f.nested THEN\n"
    "            EXECUTE format('ALTER FUNCTION %s SET citus.allow_nested_distributed_execution = on',\n"
    "                           f.sig);\n"
    "        END IF;\n"
    "    END LOOP;\n"
    "END\n"
    "$$";

static int fail(PGconn *conn, PGresult *res, const char *what, fc_error_t *err) {
  const char *msg = res != NULL ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
  char text[FC_ERROR_TEXT_LENGTH];
  size_t n;

  snprintf(text, sizeof text, "%s", msg != NULL ? msg : PQerrorMessage(conn));
  n = strlen(text);
  while (n > 0 && (text[n - 1] == '\n' || text[n - 1] == ' '))
    text[--n] = '\0';
  PQclear(res);
  if (PQtransactionStatus(conn) != PQTRANS_IDLE)
    PQclear(PQexec(conn, "ROLLBACK"));
  return fc__error_set(err, FC_EDB, "citus", "citus: %s: %s", what, text);
}

/* Runs sql (no parameters, or the one text parameter param). */
static int run(PGconn *conn, const char *sql, const char *param, const char *what,
               fc_error_t *err) {
  PGresult *res = param != NULL ? PQexecParams(conn, sql, 1, NULL, &param, NULL, NULL, 0)
                                : PQexec(conn, sql);
  ExecStatusType st = PQresultStatus(res);
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
    return fail(conn, res, what, err);
  PQclear(res);
  return 0;
}

/* The one boolean of sql into *out. */
static int query_bool(PGconn *conn, const char *sql, int *out, const char *what,
                      fc_error_t *err) {
  PGresult *res = PQexec(conn, sql);
  if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1)
    return fail(conn, res, what, err);
  *out = PQgetvalue(res, 0, 0)[0] == 't';
  PQclear(res);
  return 0;
}

int fc__citus_distribute(PGconn *conn, fc_error_t *err) {
  int has_citus = 0, first = 0, rc;

  rc = query_bool(conn, "SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus')",
                  &has_citus, "cannot look for the citus extension", err);
  if (rc != 0 || !has_citus)
    return rc;
  rc = run(conn, "BEGIN", NULL, "cannot begin a transaction", err);
  if (rc == 0)
    rc = run(conn, "SELECT set_config('flowcore.version', $1, true)", fc_version_string(),
             "set_config failed", err);
  if (rc == 0)
    rc = run(conn, k_create_record, NULL, "cannot create flowcore_distribution", err);
  if (rc == 0)
    rc = query_bool(conn,
                    "SELECT to_regprocedure('flowcore_refuse_finished_update()') IS NOT NULL"
                    " AND to_regclass('workflow_executions') IS NOT NULL AND NOT EXISTS"
                    " (SELECT 1 FROM pg_dist_partition"
                    "   WHERE logicalrelid = 'workflow_executions'::regclass)",
                    &first, "cannot read pg_dist_partition", err);
  if (rc == 0 && first)
    rc = run(conn, k_trigger_function, NULL, "cannot replace the append-only trigger's function",
             err);
  if (rc == 0)
    rc = run(conn, k_distribute, NULL, "cannot distribute the history", err);
  if (rc == 0)
    rc = run(conn, k_functions, NULL, "cannot adapt the history's functions", err);
  if (rc == 0)
    rc = run(conn, "COMMIT", NULL, "commit failed", err);
  return rc;
}
