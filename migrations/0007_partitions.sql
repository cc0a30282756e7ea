-- flowcore 0007: the three history tables partitioned by run start time;
-- retention by dropping whole partitions (docs/history.md, "Partitions and
-- retention").
--
-- Applied once by `flowcore migrate` inside one transaction (no BEGIN/COMMIT
-- here). Never edit it once released; add the next number instead.
--
-- 1. workflow_executions, node_executions and execution_errors become
--    tables partitioned BY RANGE (workflow_id). workflow_id is a UUIDv7
--    (src/uuid.c): its first 48 bits are the run's start in ms since the
--    epoch, so the ids of the runs started on one day form one range,
--    [uuid of the day's first ms with every other bit 0, same for the next
--    day). A partition holds whole runs (its node rows and errors are in
--    the same-day partitions of the other two tables). Every primary key
--    already starts with workflow_id, as PostgreSQL requires of a key of a
--    partitioned table. A DEFAULT partition (<table>_default) takes any
--    row no day partition covers, so no record is ever refused;
--    flowcore_rescue_default_partition() moves such rows out later.
--    Partitions are named <table>_pYYYYMMDD (the first day they cover).
--
-- 2. The conversion: for each table, the definition of its views, indexes,
--    constraints, triggers, comments and grants is read from the catalog,
--    the views are dropped, a new partitioned table is created LIKE the old
--    one, the rows are copied into it (INSERT ... SELECT, which lands them
--    in the day partitions created first for every day the ids cover), the
--    old table is dropped and the new one takes its name, and the indexes,
--    keys, triggers, comments, grants and views are created again from what
--    was read: same names, same definitions, so the views' answers do not
--    change. The whole transaction holds ACCESS EXCLUSIVE locks on the three
--    tables: writers wait (the history writer keeps its records queued and
--    retries) and readers wait too. docs/history.md gives the time measured.
--
-- 3. flowcore_partitioning: one row, the period of a partition ('day' by
--    default, or 'week'; a change applies to partitions created after it).
--
-- 4. Functions, SECURITY DEFINER (they run as the migrating role, which owns
--    the tables, because only an owner may create, attach or drop a
--    partition) with a fixed search_path:
--      flowcore_partition_bounds(day)     the [from, to) ids of day's partition
--      flowcore_ensure_partitions(ahead)  partitions for today-1 .. today+ahead
--      flowcore_rescue_default_partition() rows of the default partitions
--                                         moved into day partitions
--      flowcore_prune_partitions(horizon, dry_run)  detach + drop partitions
--                                         entirely older than horizon
--    and flowcore_prune_runs(horizon, workflow, batch, dry_run) (SECURITY
--    INVOKER: the caller needs DELETE) deleting finished runs row by row.
--
-- 5. flowcore_retention (horizons: workflow_name NULL is the default) and
--    flowcore_prunes (one row per prune: when, by whom, what).
--
-- 6. Role flowcore_maintainer (NOLOGIN, like 0003's): may prune. The writer
--    may run flowcore_ensure_partitions() but still may not DELETE.

-- The append-only trigger of 0005 fires on the partitions, whose names are
-- not the parent's: it now asks for the name of the partitioned table.
-- It is a BEFORE UPDATE trigger; deletes (prune) never reach it.
CREATE OR REPLACE FUNCTION flowcore_refuse_finished_update() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    w workflow_executions;
    n node_executions;
    tname text := TG_TABLE_NAME;
    root regclass := pg_partition_root(TG_RELID);
BEGIN
    IF root IS NOT NULL THEN
        SELECT relname INTO tname FROM pg_class WHERE oid = root;
    END IF;
    IF tname = 'workflow_executions' THEN
        w := NEW;
        IF OLD.input_data IS NULL THEN w.input_data := NULL; END IF;
        IF OLD.host IS NULL AND OLD.pid IS NULL THEN w.host := NULL; w.pid := NULL; END IF;
        IF w IS NOT DISTINCT FROM OLD THEN RETURN NEW; END IF;
    ELSIF tname = 'node_executions' THEN
        n := NEW;
        IF OLD.input_data IS NULL THEN n.input_data := NULL; END IF;
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

CREATE TABLE flowcore_partitioning (
    singleton boolean NOT NULL DEFAULT true,
    period    text    NOT NULL DEFAULT 'day',
    CONSTRAINT flowcore_partitioning_pkey PRIMARY KEY (singleton),
    CONSTRAINT flowcore_partitioning_singleton_check CHECK (singleton),
    CONSTRAINT flowcore_partitioning_period_check CHECK (period IN ('day', 'week'))
);
INSERT INTO flowcore_partitioning DEFAULT VALUES;
COMMENT ON TABLE flowcore_partitioning IS
    'flowcore: the period of a history partition (day or week), one row';

-- The smallest UUIDv7 of the millisecond at ts: 48 bits of time, all else 0.
CREATE FUNCTION flowcore_uuid_floor(ts timestamptz) RETURNS uuid
LANGUAGE sql IMMUTABLE STRICT AS $$
    SELECT (substr(h, 1, 8) || '-' || substr(h, 9, 4) || '-0000-0000-000000000000')::uuid
    FROM (SELECT lpad(to_hex(floor(extract(epoch FROM ts) * 1000)::bigint), 12, '0') AS h) s
$$;

-- The start time (ms) of a UUIDv7.
CREATE FUNCTION flowcore_uuid_time(id uuid) RETURNS timestamptz
LANGUAGE sql IMMUTABLE STRICT AS $$
    SELECT to_timestamp(('x' || lpad(substr(replace(id::text, '-', ''), 1, 12), 16, '0'))::bit(64)::bigint
                        / 1000.0)
$$;

-- The first day of the partition holding day, by the configured period.
CREATE FUNCTION flowcore_partition_start(day date) RETURNS date
LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN (SELECT period FROM flowcore_partitioning) = 'week'
                THEN date_trunc('week', day::timestamp)::date ELSE day END
$$;

-- The [lower, upper) workflow_id bounds of the partition holding day (UTC).
CREATE FUNCTION flowcore_partition_bounds(day date, OUT lower uuid, OUT upper uuid)
LANGUAGE sql STABLE AS $$
    SELECT flowcore_uuid_floor((s AT TIME ZONE 'UTC')),
           flowcore_uuid_floor(((s + CASE WHEN (SELECT period FROM flowcore_partitioning) = 'week'
                                          THEN 7 ELSE 1 END) AT TIME ZONE 'UTC'))
    FROM (SELECT flowcore_partition_start(day) AS s) p
$$;

-- Creates the partitions of the three tables holding day, if missing; rows
-- of that range waiting in a default partition are moved into them. Returns
-- how many partitions it created (0 to 3). Each new one is ANALYZEd by the
-- caller (ANALYZE cannot run inside a function called from a transaction
-- block... it can; see flowcore_ensure_partitions).
CREATE FUNCTION flowcore__create_partition(day date) RETURNS int
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    t text;
    part text;
    b record;
    made int := 0;
BEGIN
    SELECT * INTO b FROM flowcore_partition_bounds(day);
    FOREACH t IN ARRAY ARRAY['workflow_executions', 'node_executions', 'execution_errors'] LOOP
        part := format('%s_p%s', t, to_char(flowcore_partition_start(day), 'YYYYMMDD'));
        IF to_regclass(part) IS NOT NULL THEN
            CONTINUE;
        END IF;
        -- Created apart, filled from the default partition, then attached:
        -- attaching checks that the default holds no row of the range.
        EXECUTE format('CREATE TABLE %I (LIKE %I INCLUDING DEFAULTS INCLUDING CONSTRAINTS)',
                       part, t);
        EXECUTE format('WITH moved AS (DELETE FROM %I WHERE workflow_id >= $1 AND workflow_id < $2'
                       ' RETURNING *) INSERT INTO %I SELECT * FROM moved',
                       t || '_default', part) USING b.lower, b.upper;
        EXECUTE format('ALTER TABLE %I ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)',
                       t, part, b.lower, b.upper);
        EXECUTE format('ANALYZE %I', part);
        made := made + 1;
    END LOOP;
    RETURN made;
END
$$;

-- Partitions for today-1 .. today+ahead_days (UTC days); returns how many
-- partitions were created (each table counts).
CREATE FUNCTION flowcore_ensure_partitions(ahead_days int DEFAULT 7) RETURNS int
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    d date;
    today date := (now() AT TIME ZONE 'UTC')::date;
    made int := 0;
BEGIN
    IF ahead_days < 0 OR ahead_days > 366 THEN
        RAISE EXCEPTION 'flowcore_ensure_partitions: ahead_days % is not in 0..366', ahead_days
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- One creator at a time (a writer at connect and a migrate may meet).
    PERFORM pg_advisory_xact_lock(hashtext('flowcore_partitions'));
    FOR d IN SELECT generate_series(today - 1, today + ahead_days, interval '1 day')::date LOOP
        made := made + flowcore__create_partition(d);
    END LOOP;
    RETURN made;
END
$$;

-- Moves the rows of the default partitions into day partitions (creating
-- them). Rows whose id says they started more than a year from now (not
-- UUIDv7 ids, e.g. random ones written by another program) stay in the
-- default partition. Returns the rows moved (all three tables).
CREATE FUNCTION flowcore_rescue_default_partition() RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    d date;
    before bigint;
    after bigint;
    limit_id uuid := flowcore_uuid_floor(now() + interval '366 days');
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('flowcore_partitions'));
    SELECT (SELECT count(*) FROM workflow_executions_default)
         + (SELECT count(*) FROM node_executions_default)
         + (SELECT count(*) FROM execution_errors_default) INTO before;
    FOR d IN
        SELECT DISTINCT flowcore_partition_start((flowcore_uuid_time(workflow_id) AT TIME ZONE 'UTC')::date)
        FROM (SELECT workflow_id FROM workflow_executions_default
              UNION SELECT workflow_id FROM node_executions_default
              UNION SELECT workflow_id FROM execution_errors_default) ids
        WHERE workflow_id < limit_id
    LOOP
        PERFORM flowcore__create_partition(d);
    END LOOP;
    SELECT (SELECT count(*) FROM workflow_executions_default)
         + (SELECT count(*) FROM node_executions_default)
         + (SELECT count(*) FROM execution_errors_default) INTO after;
    RETURN before - after;
END
$$;

-- ---- the conversion ---------------------------------------------------------

DO $$
DECLARE
    t text;
    r record;
    d date;
    views jsonb := '[]';
    saved jsonb := '{}';
    v jsonb;
    pending jsonb;
    left_over jsonb;
BEGIN
    -- The views over the history tables (and over those views), to drop and
    -- create again unchanged.
    FOR r IN
        WITH RECURSIVE deps(oid) AS (
            SELECT DISTINCT rw.ev_class
            FROM pg_depend dp JOIN pg_rewrite rw ON rw.oid = dp.objid
            WHERE dp.refobjid IN ('workflow_executions'::regclass, 'node_executions'::regclass,
                                  'execution_errors'::regclass)
              AND rw.ev_class <> dp.refobjid
            UNION
            SELECT rw.ev_class
            FROM deps JOIN pg_depend dp ON dp.refobjid = deps.oid
                      JOIN pg_rewrite rw ON rw.oid = dp.objid
            WHERE rw.ev_class <> deps.oid)
        SELECT c.oid, c.relname, pg_get_viewdef(c.oid) AS def,
               obj_description(c.oid, 'pg_class') AS comment,
               coalesce((SELECT jsonb_agg(jsonb_build_object('grantee', a.grantee::regrole::text,
                                                             'priv', a.privilege_type))
                         FROM aclexplode(c.relacl) a
                         WHERE a.grantee <> 0 AND a.grantee <> c.relowner), '[]') AS grants
        FROM deps JOIN pg_class c ON c.oid = deps.oid
        WHERE c.relkind = 'v'
        ORDER BY c.oid
    LOOP
        views := views || jsonb_build_object('name', r.relname, 'def', r.def,
                                             'comment', r.comment, 'grants', r.grants);
    END LOOP;
    FOR v IN SELECT * FROM jsonb_array_elements(views) LOOP
        EXECUTE format('DROP VIEW IF EXISTS %I CASCADE', v->>'name');
    END LOOP;

    FOREACH t IN ARRAY ARRAY['workflow_executions', 'node_executions', 'execution_errors'] LOOP
        saved := jsonb_build_object(
            'indexes', coalesce((SELECT jsonb_agg(pg_get_indexdef(i.indexrelid) ORDER BY i.indexrelid)
                                 FROM pg_index i
                                 WHERE i.indrelid = t::regclass
                                   AND NOT EXISTS (SELECT 1 FROM pg_constraint k
                                                   WHERE k.conindid = i.indexrelid)), '[]'),
            'keys', coalesce((SELECT jsonb_agg(jsonb_build_object('name', k.conname,
                                                                  'def', pg_get_constraintdef(k.oid)))
                              FROM pg_constraint k
                              WHERE k.conrelid = t::regclass AND k.contype IN ('p', 'u')), '[]'),
            'triggers', coalesce((SELECT jsonb_agg(pg_get_triggerdef(g.oid))
                                  FROM pg_trigger g
                                  WHERE g.tgrelid = t::regclass AND NOT g.tgisinternal), '[]'),
            'comment', obj_description(t::regclass, 'pg_class'),
            'grants', coalesce((SELECT jsonb_agg(jsonb_build_object('grantee', a.grantee::regrole::text,
                                                                    'priv', a.privilege_type))
                                FROM pg_class c, aclexplode(c.relacl) a
                                WHERE c.oid = t::regclass AND a.grantee <> 0
                                  AND a.grantee <> c.relowner), '[]'));

        EXECUTE format('CREATE TABLE %I (LIKE %I INCLUDING DEFAULTS INCLUDING CONSTRAINTS'
                       ' INCLUDING COMMENTS INCLUDING STORAGE) PARTITION BY RANGE (workflow_id)',
                       t || '_partitioned', t);
        EXECUTE format('CREATE TABLE %I PARTITION OF %I DEFAULT', t || '_default', t || '_partitioned');
        EXECUTE format('ALTER TABLE %I RENAME TO %I', t, t || '_unpartitioned');
        EXECUTE format('ALTER TABLE %I RENAME TO %I', t || '_partitioned', t);
        -- The old table's keys and indexes go with it; their names are free
        -- for the new ones once it is dropped, after the copy below.
        saved := saved || jsonb_build_object('table', t);
        EXECUTE format('CREATE TEMP TABLE IF NOT EXISTS flowcore__saved (t text, s jsonb) ON COMMIT DROP');
        EXECUTE 'INSERT INTO flowcore__saved VALUES ($1, $2)' USING t, saved;
    END LOOP;

    -- Day partitions for every day the existing ids cover (and today-1 ..
    -- today+7), then the rows. Ids that are not UUIDv7 of a sane time stay
    -- in the default partition.
    FOR d IN
        SELECT DISTINCT (flowcore_uuid_time(workflow_id) AT TIME ZONE 'UTC')::date
        FROM (SELECT workflow_id FROM workflow_executions_unpartitioned
              UNION SELECT workflow_id FROM node_executions_unpartitioned
              UNION SELECT workflow_id FROM execution_errors_unpartitioned) ids
        WHERE workflow_id < flowcore_uuid_floor(now() + interval '366 days')
    LOOP
        PERFORM flowcore__create_partition(d);
    END LOOP;
    PERFORM flowcore_ensure_partitions(7);

    FOR r IN SELECT * FROM flowcore__saved LOOP
        EXECUTE format('INSERT INTO %I SELECT * FROM %I', r.t, r.t || '_unpartitioned');
        EXECUTE format('DROP TABLE %I', r.t || '_unpartitioned');
        FOR v IN SELECT * FROM jsonb_array_elements(r.s->'keys') LOOP
            EXECUTE format('ALTER TABLE %I ADD CONSTRAINT %I %s', r.t, v->>'name', v->>'def');
        END LOOP;
        FOR v IN SELECT * FROM jsonb_array_elements(r.s->'indexes') LOOP
            EXECUTE v #>> '{}';
        END LOOP;
        FOR v IN SELECT * FROM jsonb_array_elements(r.s->'triggers') LOOP
            EXECUTE v #>> '{}';
        END LOOP;
        IF r.s->>'comment' IS NOT NULL THEN
            EXECUTE format('COMMENT ON TABLE %I IS %L', r.t, r.s->>'comment');
        END IF;
        FOR v IN SELECT * FROM jsonb_array_elements(r.s->'grants') LOOP
            EXECUTE format('GRANT %s ON %I TO %I', v->>'priv', r.t, v->>'grantee');
        END LOOP;
        EXECUTE format('ANALYZE %I', r.t);
    END LOOP;

    -- The views again, each once the views it reads exist.
    pending := views;
    WHILE jsonb_array_length(pending) > 0 LOOP
        left_over := '[]';
        FOR v IN SELECT * FROM jsonb_array_elements(pending) LOOP
            BEGIN
                EXECUTE format('CREATE VIEW %I AS %s', v->>'name', v->>'def');
            EXCEPTION WHEN undefined_table THEN
                left_over := left_over || v;
                CONTINUE;
            END;
            IF v->>'comment' IS NOT NULL THEN
                EXECUTE format('COMMENT ON VIEW %I IS %L', v->>'name', v->>'comment');
            END IF;
            FOR r IN SELECT * FROM jsonb_to_recordset(v->'grants') AS g(grantee text, priv text) LOOP
                EXECUTE format('GRANT %s ON %I TO %I', r.priv, v->>'name', r.grantee);
            END LOOP;
        END LOOP;
        IF jsonb_array_length(left_over) = jsonb_array_length(pending) THEN
            RAISE EXCEPTION 'flowcore 0007: cannot create the views % again', left_over;
        END IF;
        pending := left_over;
    END LOOP;
END
$$;

-- ---- retention ----------------------------------------------------------------

CREATE TABLE flowcore_retention (
    workflow_name text,                          -- NULL: the default horizon
    horizon       interval NOT NULL,
    CONSTRAINT flowcore_retention_horizon_check CHECK (horizon > interval '0')
);
CREATE UNIQUE INDEX flowcore_retention_workflow_idx
    ON flowcore_retention (coalesce(workflow_name, ''));
COMMENT ON TABLE flowcore_retention IS
    'flowcore: how long history is kept (workflow_name NULL: default), for flowcore history prune';

CREATE TABLE flowcore_prunes (
    prune_id           bigint GENERATED ALWAYS AS IDENTITY,
    pruned_at          timestamptz NOT NULL DEFAULT now(),   -- server clock
    pruned_by          text        NOT NULL DEFAULT session_user,
    horizon            interval,                             -- NULL: from flowcore_retention
    workflow_name      text,                                 -- NULL: every workflow
    partitions_dropped text[]      NOT NULL DEFAULT '{}',
    rows_deleted       bigint      NOT NULL DEFAULT 0,
    dry_run            boolean     NOT NULL,
    CONSTRAINT flowcore_prunes_pkey PRIMARY KEY (prune_id)
);
COMMENT ON TABLE flowcore_prunes IS
    'flowcore: one row per flowcore history prune: when, by whom, what it removed';

-- Detaches and drops the day partitions (of all three tables) entirely
-- older than horizon (their upper bound <= the horizon's id) and holding no
-- running run. dry_run: drops nothing. Returns one row per partition of
-- workflow_executions dropped (or that would be), with the three tables'
-- estimated rows (pg_class.reltuples; no scan). Plain DETACH (not
-- CONCURRENTLY, which cannot run in a function): a short ACCESS EXCLUSIVE
-- lock on each parent.
CREATE FUNCTION flowcore_prune_partitions(horizon timestamptz, dry_run boolean DEFAULT false)
RETURNS TABLE (partition_name text, day date, estimated_rows bigint)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    r record;
    t text;
    part text;
    has_running boolean;
    est bigint;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('flowcore_partitions'));
    FOR r IN
        SELECT c.relname,
               (regexp_match(pg_get_expr(c.relpartbound, c.oid), 'TO \(''([^'']+)''\)'))[1]::uuid AS upper
        FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = 'workflow_executions'::regclass
          AND c.relname ~ '^workflow_executions_p[0-9]{8}$'
        ORDER BY c.relname
    LOOP
        CONTINUE WHEN r.upper IS NULL OR r.upper > flowcore_uuid_floor(horizon);
        EXECUTE format('SELECT EXISTS (SELECT 1 FROM %I WHERE status = ''running'')', r.relname)
            INTO has_running;
        CONTINUE WHEN has_running;
        SELECT sum(greatest(c.reltuples, 0))::bigint INTO est
        FROM pg_class c
        WHERE c.relname IN (r.relname, replace(r.relname, 'workflow_executions_', 'node_executions_'),
                            replace(r.relname, 'workflow_executions_', 'execution_errors_'));
        partition_name := substr(r.relname, length('workflow_executions_') + 1);
        day := to_date(substr(partition_name, 2), 'YYYYMMDD');
        estimated_rows := coalesce(est, 0);
        IF NOT dry_run THEN
            FOREACH t IN ARRAY ARRAY['workflow_executions', 'node_executions', 'execution_errors'] LOOP
                part := t || '_' || partition_name;
                IF to_regclass(part) IS NOT NULL THEN
                    EXECUTE format('ALTER TABLE %I DETACH PARTITION %I', t, part);
                    EXECUTE format('DROP TABLE %I', part);
                END IF;
            END LOOP;
        END IF;
        RETURN NEXT;
    END LOOP;
END
$$;

-- Deletes finished runs (status not running) started before horizon, of
-- workflow (NULL: every workflow, except those with their own horizon in
-- flowcore_retention when except_overridden), at most batch runs with their
-- node rows and errors per call: the caller calls it again, one
-- transaction each, until it returns 0. dry_run: counts the rows every
-- such call would delete, deletes nothing. SECURITY INVOKER: the caller
-- needs DELETE (flowcore_maintainer has it, flowcore_writer does not).
CREATE FUNCTION flowcore_prune_runs(horizon timestamptz, workflow text, batch int DEFAULT 10000,
                                    dry_run boolean DEFAULT false,
                                    except_overridden boolean DEFAULT false)
RETURNS bigint
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE
    ids uuid[];
    n bigint;
    total bigint := 0;
BEGIN
    IF batch IS NULL OR batch < 1 THEN
        RAISE EXCEPTION 'flowcore_prune_runs: batch must be at least 1'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT array_agg(workflow_id) INTO ids
    FROM (SELECT w.workflow_id FROM workflow_executions w
          WHERE w.workflow_id < flowcore_uuid_floor(horizon) AND w.started_at < horizon
            AND w.status <> 'running'
            AND (workflow IS NULL OR w.workflow_name = workflow)
            AND NOT (except_overridden AND EXISTS (SELECT 1 FROM flowcore_retention rt
                                                   WHERE rt.workflow_name = w.workflow_name))
          ORDER BY w.workflow_id
          LIMIT CASE WHEN dry_run THEN NULL ELSE batch END) s;
    IF ids IS NULL THEN
        RETURN 0;
    END IF;
    IF dry_run THEN
        SELECT (SELECT count(*) FROM node_executions WHERE workflow_id = ANY (ids))
             + (SELECT count(*) FROM execution_errors WHERE workflow_id = ANY (ids))
             + cardinality(ids) INTO total;
        RETURN total;
    END IF;
    DELETE FROM node_executions WHERE workflow_id = ANY (ids);
    GET DIAGNOSTICS n = ROW_COUNT;
    total := total + n;
    DELETE FROM execution_errors WHERE workflow_id = ANY (ids);
    GET DIAGNOSTICS n = ROW_COUNT;
    total := total + n;
    DELETE FROM workflow_executions WHERE workflow_id = ANY (ids);
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN total + n;
END
$$;

-- ---- roles --------------------------------------------------------------------

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'flowcore_maintainer') THEN
        CREATE ROLE flowcore_maintainer NOLOGIN;
    END IF;
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO flowcore_maintainer', current_database());
END
$$;
GRANT USAGE ON SCHEMA public TO flowcore_maintainer;
GRANT SELECT, DELETE ON workflow_executions, node_executions, execution_errors
    TO flowcore_maintainer;
GRANT SELECT ON flowcore_retention, flowcore_partitioning TO flowcore_maintainer,
    flowcore_reader;
GRANT SELECT, INSERT ON flowcore_prunes TO flowcore_maintainer;
GRANT SELECT ON flowcore_prunes TO flowcore_reader;

REVOKE ALL ON FUNCTION flowcore__create_partition(date), flowcore_ensure_partitions(int),
    flowcore_rescue_default_partition(), flowcore_prune_partitions(timestamptz, boolean)
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION flowcore_ensure_partitions(int) TO flowcore_writer, flowcore_maintainer;
GRANT EXECUTE ON FUNCTION flowcore_rescue_default_partition(),
    flowcore_prune_partitions(timestamptz, boolean) TO flowcore_maintainer;
