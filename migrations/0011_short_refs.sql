-- flowcore 0011: short references in input_refs and output_refs.
--
-- Since 0009 a node's input member that is a dependency's output is stored
-- as the reference {"node": "<id>", "attempt": n}. The writer makes such a
-- reference only when the member's key is the node's id, so the node is
-- always the key: from this version on the writer stores the reference as
-- the attempt number alone, {"<id>": n}. A run's output_refs holds one
-- member per sink: for a fan-out of 200,000 nodes the server parsed about
-- 9 MB of small objects into jsonb (about 1 s, at the end of the run); the
-- short form is 2.7 MB of flat members (about 0.2 s). "run" (the run's
-- input) is unchanged.
--
-- The resolver below reads both forms, so rows written before this version
-- (or replayed from an older writer's spool) rebuild as before. Nothing is
-- rewritten: the migration is instant (it replaces functions and comments).
--
-- flowcore_require_schema(v): the writer calls it when it connects, so a
-- writer that writes short references never writes to a database whose
-- resolver would misread them (a database at 0010 has no such function;
-- the writer then retries, and `flowcore run` says "flowcore migrate").
-- Later migrations replace it with their own number.

CREATE OR REPLACE FUNCTION flowcore_require_schema(v int) RETURNS void
LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF v > 11 THEN
        RAISE EXCEPTION 'flowcore: this writer needs history schema version %, the database has 11 (run flowcore migrate)', v
            USING HINT = 'run flowcore migrate', ERRCODE = 'undefined_object';
    END IF;
END
$$;
REVOKE ALL ON FUNCTION flowcore_require_schema(int) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION flowcore_require_schema(int) TO flowcore_writer, flowcore_reader;


-- The resolver. what: 'in' (a node attempt's input), 'out' (its output) or
-- 'wout' (the run's output).
-- An explicit stack of pending items (literal text, or a value to
-- resolve: 'in', 'out', 'run') replaces recursion; pieces are appended in
-- order and joined once, so the work is linear in the size of the result.
CREATE OR REPLACE FUNCTION flowcore__payload_text(p_workflow_id uuid, p_what text, p_node_id text,
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
            IF jsonb_typeof(m.value) = 'number' THEN
                ik[ni] := 'out'; ia[ni] := m.key; it[ni] := m.value::int;
            ELSIF jsonb_typeof(m.value) = 'object' THEN
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

COMMENT ON COLUMN node_executions.input_refs IS
    'flowcore: members of the input stored as references: "run" (the run''s input), '
    'n (attempt n of the node named by the key; before 0011 {"node", "attempt"})';
COMMENT ON COLUMN workflow_executions.output_refs IS
    'flowcore: members of the output stored as references: n (attempt n of the node '
    'named by the key; before 0011 {"node", "attempt"}); flowcore_run_output() rebuilds '
    'the full output';
