-- flowcore 0009: compact payloads. A node row no longer copies what is
-- stored elsewhere (docs/history.md "Compact payloads").
--
-- node_executions gets two columns:
--   input_refs       jsonb: the members of the node's input that the writer
--                    stored as references, {"<key>": "run" | {"node": "<id>",
--                    "attempt": n}}: "run" is the run's input
--                    (workflow_executions.input_data), {"node", "attempt"}
--                    the output of that node attempt of the same run. NULL:
--                    no reference. input_data then holds only the other
--                    members, so a user payload is never read as a
--                    reference (references live only in this column).
--   output_is_input  boolean: the output is the attempt's input itself (a
--                    `pass`); output_data is then NULL.
-- A reference is made only when the member is the very same value as the
-- run's input or as the latest output of the node of that key (pointer
-- identity in the engine), so the rebuilt input equals the one the engine
-- passed. Rows written before this migration have input_refs NULL and
-- output_is_input false: they read as before.
--
-- flowcore_node_input(workflow_id, node_id, attempt) returns the full input
-- (what input_data held before), flowcore_node_output(...) the full output;
-- the _text variants return the same as JSON text, built iteratively
-- whatever the depth (a chain of 20,000 `pass` nodes nests 20,000 deep,
-- deeper than PostgreSQL's jsonb parser accepts with the default
-- max_stack_depth: the jsonb variants then fail with "stack depth limit
-- exceeded", the _text ones do not). A reference to a row that is missing
-- (a record dropped and counted) rebuilds as JSON null.
--
-- Instant: ADD COLUMN with a constant default rewrites nothing.

ALTER TABLE node_executions ADD COLUMN input_refs jsonb;
-- The run's output ({"<sink>": <its output>, ...}) the same way: its
-- members that are a node's output are references in output_refs.
ALTER TABLE workflow_executions ADD COLUMN output_refs jsonb;
ALTER TABLE node_executions ADD COLUMN output_is_input boolean NOT NULL DEFAULT false;

-- The append-only trigger (0005, made partition-aware by 0007): input_refs
-- is part of what a start carries, so it may be filled in with input_data,
-- once.
CREATE OR REPLACE FUNCTION flowcore_refuse_finished_update() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    w workflow_executions;
    n node_executions;
    tname text := TG_TABLE_NAME;
    root regclass := pg_partition_root(TG_RELID);
BEGIN
    -- A partition reports its own name: use its partitioned table's.
    IF root IS NOT NULL THEN
        SELECT relname INTO tname FROM pg_class WHERE oid = root;
    END IF;
    -- The new row with the start columns that were missing put back to
    -- NULL must equal the old row: only NULL -> value there.
    IF tname = 'workflow_executions' THEN
        w := NEW;
        IF OLD.input_data IS NULL THEN w.input_data := NULL; END IF;
        IF OLD.host IS NULL AND OLD.pid IS NULL THEN w.host := NULL; w.pid := NULL; END IF;
        IF w IS NOT DISTINCT FROM OLD THEN RETURN NEW; END IF;
    ELSIF tname = 'node_executions' THEN
        n := NEW;
        IF OLD.input_data IS NULL THEN n.input_data := NULL; n.input_refs := OLD.input_refs; END IF;
        IF OLD.started_at IS NULL THEN n.started_at := NULL; END IF;
        IF OLD.node_type IS NULL THEN n.node_type := NULL; END IF;
        IF n IS NOT DISTINCT FROM OLD THEN RETURN NEW; END IF;
    END IF;
    IF tname IN ('execution_errors', 'flowcore_reaps') THEN
        RAISE EXCEPTION 'flowcore: % rows cannot be changed (the history is append-only)',
                        tname
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RAISE EXCEPTION 'flowcore: this % row is finished (status %) and cannot be changed '
                    '(the history is append-only)', tname, OLD.status
        USING ERRCODE = 'integrity_constraint_violation';
END
$$;

-- The resolver. what: 'in' (a node attempt's input), 'out' (its output) or
-- 'wout' (the run's output).
-- An explicit stack of pending items (literal text, or a value to
-- resolve: 'in', 'out', 'run') replaces recursion; pieces are appended in
-- order and joined once, so the work is linear in the size of the result.
CREATE FUNCTION flowcore__payload_text(p_workflow_id uuid, p_what text, p_node_id text,
                                       p_attempt int) RETURNS text
LANGUAGE plpgsql STABLE AS $$
DECLARE
    kinds text[] := ARRAY[p_what];
    args text[] := ARRAY[p_node_id];
    atts int[] := ARRAY[p_attempt];
    top int := 1;
    pieces text[] := '{}';
    np int := 0;
    k text; a text; t int;
    r node_executions;
    run_text text;
    run_loaded boolean := false;
    ik text[]; ia text[]; it int[]; ni int; i int;
    m record;
    first boolean;
BEGIN
    WHILE top > 0 LOOP
        k := kinds[top]; a := args[top]; t := atts[top];
        top := top - 1;
        IF k = 'lit' THEN
            np := np + 1; pieces[np] := a;
            CONTINUE;
        END IF;
        IF k = 'wout' THEN
            SELECT w.output_data, w.output_refs INTO m FROM workflow_executions w
             WHERE w.workflow_id = p_workflow_id;
            IF NOT FOUND THEN
                np := np + 1; pieces[np] := 'null';
                CONTINUE;
            END IF;
            r.input_data := m.output_data;
            r.input_refs := m.output_refs;
            k := 'in';
        ELSIF k = 'run' THEN
            IF NOT run_loaded THEN
                SELECT input_data::text INTO run_text FROM workflow_executions
                 WHERE workflow_id = p_workflow_id;
                run_loaded := true;
            END IF;
            np := np + 1; pieces[np] := COALESCE(run_text, 'null');
            CONTINUE;
        ELSE
            SELECT * INTO r FROM node_executions
             WHERE workflow_id = p_workflow_id AND node_id = a AND attempt = t;
            IF NOT FOUND THEN
                np := np + 1; pieces[np] := 'null';
                CONTINUE;
            END IF;
        END IF;
        IF k = 'out' THEN
            IF r.output_is_input THEN
                top := top + 1; kinds[top] := 'in'; args[top] := a; atts[top] := t;
            ELSE
                np := np + 1; pieces[np] := COALESCE(r.output_data::text, 'null');
            END IF;
            CONTINUE;
        END IF;
        -- k = 'in'
        IF r.input_refs IS NULL OR jsonb_typeof(r.input_data) IS DISTINCT FROM 'object' THEN
            np := np + 1; pieces[np] := COALESCE(r.input_data::text, 'null');
            CONTINUE;
        END IF;
        -- The items of this object in order, then pushed in reverse.
        ik := ARRAY['lit']; ia := ARRAY['{']; it := ARRAY[0]; ni := 1;
        first := true;
        FOR m IN SELECT e.key, e.value FROM jsonb_each(r.input_data) e LOOP
            ni := ni + 1; ik[ni] := 'lit';
            ia[ni] := CASE WHEN first THEN '' ELSE ',' END || to_json(m.key)::text || ':'
                      || m.value::text;
            first := false;
        END LOOP;
        FOR m IN SELECT e.key, e.value FROM jsonb_each(r.input_refs) e LOOP
            ni := ni + 1; ik[ni] := 'lit';
            ia[ni] := CASE WHEN first THEN '' ELSE ',' END || to_json(m.key)::text || ':';
            first := false;
            ni := ni + 1;
            IF jsonb_typeof(m.value) = 'object' THEN
                ik[ni] := 'out'; ia[ni] := m.value->>'node'; it[ni] := (m.value->>'attempt')::int;
            ELSE
                ik[ni] := 'run'; ia[ni] := NULL; it[ni] := 0;
            END IF;
        END LOOP;
        ni := ni + 1; ik[ni] := 'lit'; ia[ni] := '}';
        FOR i IN REVERSE ni..1 LOOP
            top := top + 1; kinds[top] := ik[i]; args[top] := ia[i]; atts[top] := it[i];
        END LOOP;
    END LOOP;
    RETURN array_to_string(pieces, '');
END
$$;

CREATE FUNCTION flowcore_node_input_text(workflow_id uuid, node_id text, attempt int)
RETURNS text LANGUAGE sql STABLE AS
$$ SELECT flowcore__payload_text($1, 'in', $2, $3) $$;

CREATE FUNCTION flowcore_node_output_text(workflow_id uuid, node_id text, attempt int)
RETURNS text LANGUAGE sql STABLE AS
$$ SELECT flowcore__payload_text($1, 'out', $2, $3) $$;

CREATE FUNCTION flowcore_run_output_text(workflow_id uuid)
RETURNS text LANGUAGE sql STABLE AS
$$ SELECT flowcore__payload_text($1, 'wout', NULL, 0) $$;

CREATE FUNCTION flowcore_run_output(workflow_id uuid)
RETURNS jsonb LANGUAGE sql STABLE AS
$$ SELECT CASE WHEN EXISTS (SELECT 1 FROM workflow_executions w WHERE w.workflow_id = $1)
               THEN flowcore__payload_text($1, 'wout', NULL, 0)::jsonb END $$;

-- NULL when the row does not exist.
CREATE FUNCTION flowcore_node_input(workflow_id uuid, node_id text, attempt int)
RETURNS jsonb LANGUAGE sql STABLE AS
$$ SELECT CASE WHEN EXISTS (SELECT 1 FROM node_executions n WHERE n.workflow_id = $1
                             AND n.node_id = $2 AND n.attempt = $3)
               THEN flowcore__payload_text($1, 'in', $2, $3)::jsonb END $$;

CREATE FUNCTION flowcore_node_output(workflow_id uuid, node_id text, attempt int)
RETURNS jsonb LANGUAGE sql STABLE AS
$$ SELECT CASE WHEN EXISTS (SELECT 1 FROM node_executions n WHERE n.workflow_id = $1
                             AND n.node_id = $2 AND n.attempt = $3)
               THEN flowcore__payload_text($1, 'out', $2, $3)::jsonb END $$;

REVOKE ALL ON FUNCTION flowcore__payload_text(uuid, text, text, int),
    flowcore_node_input_text(uuid, text, int), flowcore_node_output_text(uuid, text, int),
    flowcore_node_input(uuid, text, int), flowcore_node_output(uuid, text, int),
    flowcore_run_output_text(uuid), flowcore_run_output(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION flowcore__payload_text(uuid, text, text, int),
    flowcore_node_input_text(uuid, text, int), flowcore_node_output_text(uuid, text, int),
    flowcore_node_input(uuid, text, int), flowcore_node_output(uuid, text, int),
    flowcore_run_output_text(uuid), flowcore_run_output(uuid) TO flowcore_reader;

COMMENT ON COLUMN node_executions.input_data IS
    'flowcore: the input''s members not stored as references (see input_refs; '
    'flowcore_node_input() rebuilds the full input)';
COMMENT ON COLUMN node_executions.input_refs IS
    'flowcore: members of the input stored as references: "run" or {"node", "attempt"}';
COMMENT ON COLUMN workflow_executions.output_refs IS
    'flowcore: members of the output stored as references: {"node", "attempt"} '
    '(flowcore_run_output() rebuilds the full output)';
COMMENT ON COLUMN node_executions.output_is_input IS
    'flowcore: the output is the input itself (output_data NULL)';
