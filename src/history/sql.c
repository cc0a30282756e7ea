/* The SQL the history writer sends: session setup, COPY targets, upserts. */
#include "history/writer_int.h"

#define NODE_COLS                                                                                  \
  "workflow_id, node_id, attempt, node_type, status, input_data, output_data, started_at, "        \
  "completed_at, duration_ms, input_refs, output_is_input"

#define WF_COLS                                                                                    \
  "workflow_id, workflow_name, status, input_data, output_data, started_at, completed_at, "        \
  "node_count, error_count, duration_ms, updated_at, host, pid, output_refs"

#define ERR_COLS                                                                                   \
  "workflow_id, error_id, node_id, node_type, attempt, error_type, error_message, "                \
  "stack_trace, severity, occurred_at"

const char fc__sql_setup[] =
    /* The schema must read what this writer writes (short references,
     * migration 0011): older databases fail here, and the writer retries. */
    "SELECT flowcore_require_schema(11);"
    "SET client_encoding = 'UTF8';"
    /* A backend blocked (on a lock, say) notices within a second that the
     * writer closed its connection, and frees its locks and slot. */
    "SET client_connection_check_interval = '1s';"
    "CREATE TEMP TABLE IF NOT EXISTS fc_stage_nodes (LIKE node_executions) ON COMMIT DELETE ROWS;"
    "CREATE TEMP TABLE IF NOT EXISTS fc_stage_wf (LIKE workflow_executions) ON COMMIT DELETE ROWS;"
    "CREATE TEMP TABLE IF NOT EXISTS fc_stage_err (LIKE execution_errors) ON COMMIT DELETE ROWS;";

const char fc__sql_copy_nodes[] = "COPY node_executions (" NODE_COLS ") FROM STDIN (FORMAT binary)";

const char fc__sql_copy_stage_nodes[] =
    "COPY fc_stage_nodes (" NODE_COLS ") FROM STDIN (FORMAT binary)";

const char fc__sql_copy_stage_wf[] = "COPY fc_stage_wf (" WF_COLS ") FROM STDIN (FORMAT binary)";

const char fc__sql_copy_stage_err[] = "COPY fc_stage_err (" ERR_COLS ") FROM STDIN (FORMAT binary)";

/* Ends fill what starts lack in a running row. A finished row keeps every
 * value it has (the history is append-only: migration 0005's trigger
 * refuses changes to finished rows); only what its start carries, if
 * missing, is filled in (a replay may bring a start after its end). The
 * WHERE makes a replay that meets a finished row with nothing to fill a
 * no-op, never an error. */
#define RUNNING_THEN(a, b) "CASE WHEN t.status = 'running' THEN " a " ELSE " b " END"

const char fc__sql_upsert_nodes[] =
    "INSERT INTO node_executions AS t (" NODE_COLS ") SELECT " NODE_COLS " FROM fc_stage_nodes "
    "ON CONFLICT (workflow_id, node_id, attempt) DO UPDATE SET "
    "status = " RUNNING_THEN(
        "EXCLUDED.status",
        "t.status") ", "
                    "node_type = COALESCE(t.node_type, EXCLUDED.node_type), "
                    "input_data = COALESCE(t.input_data, EXCLUDED.input_data), "
                    "input_refs = CASE WHEN t.input_data IS NULL THEN EXCLUDED.input_refs "
                    "ELSE t.input_refs END, "
                    "output_is_input = " RUNNING_THEN(
                        "EXCLUDED.output_is_input OR (EXCLUDED.output_data IS NULL AND "
                        "t.output_is_input)",
                        "t.output_is_input") ", "
                    "output_data = " RUNNING_THEN(
                        "COALESCE(EXCLUDED.output_data, t.output_data)",
                        "t.output_data") ", "
                                         "started_at = COALESCE(t.started_at, "
                                         "EXCLUDED.started_at), "
                                         "completed_at = " RUNNING_THEN(
                                             "COALESCE(EXCLUDED.completed_at, t.completed_at)",
                                             "t.completed_at") ", "
                                                               "duration_ms = " RUNNING_THEN(
                                                                   "COALESCE(EXCLUDED.duration_ms, "
                                                                   "t.duration_ms)",
                                                                   "t.duration_ms") " "
                                                                                    "WHERE "
                                                                                    "t.status = "
                                                                                    "'running' "
                                                                                    "OR "
                                                                                    "(t.input_data "
                                                                                    "IS NULL AND "
                                                                                    "EXCLUDED."
                                                                                    "input_data IS "
                                                                                    "NOT NULL) "
                                                                                    "OR "
                                                                                    "(t.started_at "
                                                                                    "IS NULL AND "
                                                                                    "EXCLUDED."
                                                                                    "started_at IS "
                                                                                    "NOT NULL) "
                                                                                    "OR "
                                                                                    "(t.node_type "
                                                                                    "IS NULL AND "
                                                                                    "EXCLUDED.node_"
                                                                                    "type IS NOT "
                                                                                    "NULL);";

const char fc__sql_upsert_wf[] =
    "INSERT INTO workflow_executions AS t (" WF_COLS ") SELECT " WF_COLS " FROM fc_stage_wf "
    "ON CONFLICT (workflow_id) DO UPDATE SET "
    "status = " RUNNING_THEN(
        "EXCLUDED.status",
        "t.status") ", "
                    "input_data = COALESCE(t.input_data, EXCLUDED.input_data), "
                    "output_refs = CASE WHEN t.status = 'running' AND EXCLUDED.output_data IS "
                    "NOT NULL THEN EXCLUDED.output_refs ELSE t.output_refs END, "
                    "output_data = " RUNNING_THEN(
                        "COALESCE(EXCLUDED.output_data, t.output_data)",
                        "t.output_data") ", "
                                         "started_at = " RUNNING_THEN(
                                             "LEAST(t.started_at, EXCLUDED.started_at)",
                                             "t.started_at") ", "
                                                             "completed_at = " RUNNING_THEN(
                                                                 "COALESCE(EXCLUDED.completed_at, "
                                                                 "t.completed_at)",
                                                                 "t.completed_at") ", "
                                                                                   "node_count "
                                                                                   "="
                                                                                   " " RUNNING_THEN(
                                                                                       "GREATEST(t."
                                                                                       "node_count,"
                                                                                       " EXCLUDED."
                                                                                       "node_"
                                                                                       "count)",
                                                                                       "t.node_"
                                                                                       "count") ", "
                                                                                                "er"
                                                                                                "ro"
                                                                                                "r_"
                                                                                                "co"
                                                                                                "un"
                                                                                                "t "
                                                                                                "="
                                                                                                " " RUNNING_THEN(
                                                                                                    "GREATEST(t.error_count, EXCLUDED.error_count)",
                                                                                                    "t.error_count") ", "
                                                                                                                     "duration_ms = " RUNNING_THEN(
                                                                                                                         "COALESCE(EXCLUDED.duration_ms, t.duration_ms)",
                                                                                                                         "t.duration_ms") ", "
                                                                                                                                          "updated_at = " RUNNING_THEN(
                                                                                                                                              "GREATEST(t.updated_at, EXCLUDED.updated_at)",
                                                                                                                                              "t.updated_at") ", "
                                                                                                                                                              "host = COALESCE(t.host, EXCLUDED.host), "
                                                                                                                                                              "pid = CASE WHEN t.host IS NULL THEN EXCLUDED.pid ELSE t.pid END "
                                                                                                                                                              "WHERE t.status = 'running' "
                                                                                                                                                              "OR (t.input_data IS NULL AND EXCLUDED.input_data IS NOT NULL) "
                                                                                                                                                              "OR (t.host IS NULL AND EXCLUDED.host IS NOT NULL);";

const char fc__sql_insert_err[] =
    "INSERT INTO execution_errors (" ERR_COLS ") SELECT " ERR_COLS " FROM fc_stage_err "
    "ON CONFLICT (workflow_id, error_id) DO NOTHING;";

_Static_assert(sizeof fc__sql_upsert_nodes + sizeof fc__sql_upsert_wf + sizeof fc__sql_insert_err <=
                   sizeof((batch_t *)0)->upsert_sql,
               "batch_t.upsert_sql holds the three statements");
