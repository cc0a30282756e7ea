-- flowcore 0003: two roles a deployment can use (least privilege).
--
--   flowcore_writer  what the history writer needs and nothing more:
--                    SELECT, INSERT, UPDATE on the history tables (the
--                    upserts need UPDATE; ON CONFLICT needs SELECT), INSERT
--                    on the loss table, TEMPORARY on the database (the
--                    writer's staging tables). No DELETE, no TRUNCATE, no DDL.
--   flowcore_reader  SELECT on the history tables and views: for people and
--                    dashboards.
--
-- Both are NOLOGIN group roles; give them to login roles:
--   CREATE ROLE flowcore_app LOGIN PASSWORD '...' IN ROLE flowcore_writer;
--   CREATE ROLE grafana LOGIN PASSWORD '...' IN ROLE flowcore_reader;
-- Roles belong to the whole server while this migration runs per database,
-- so they are created only when missing; the grants are per database.

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'flowcore_writer') THEN
        CREATE ROLE flowcore_writer NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'flowcore_reader') THEN
        CREATE ROLE flowcore_reader NOLOGIN;
    END IF;
    EXECUTE format('GRANT CONNECT, TEMPORARY ON DATABASE %I TO flowcore_writer',
                   current_database());
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO flowcore_reader', current_database());
END
$$;

GRANT USAGE ON SCHEMA public TO flowcore_writer, flowcore_reader;

GRANT SELECT, INSERT, UPDATE ON workflow_executions, node_executions, execution_errors
    TO flowcore_writer;
GRANT INSERT ON flowcore_writer_losses TO flowcore_writer;

GRANT SELECT ON workflow_executions, node_executions, execution_errors,
    flowcore_writer_losses TO flowcore_reader;

-- The views of 0002 (and any later view) for readers: every view in the
-- schema whose name starts with flowcore_.
DO $$
DECLARE
    v record;
BEGIN
    FOR v IN SELECT table_name FROM information_schema.views
             WHERE table_schema = 'public' AND table_name LIKE 'flowcore\_%'
    LOOP
        EXECUTE format('GRANT SELECT ON %I TO flowcore_reader', v.table_name);
    END LOOP;
END
$$;
