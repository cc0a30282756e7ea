-- flowcore 0013: a change of partition period no longer collides with the
-- partitions that exist.
--
-- flowcore_partitioning.period ('day' or 'week') applies to partitions made
-- after the change. Until this version flowcore__create_partition made the
-- partition of the whole period holding a day and failed ("would overlap
-- partition ...") when partitions of the other period already covered
-- part of it: after switching to weeks, the day partitions that migrate
-- had made ahead broke every flowcore_ensure_partitions call on their
-- weeks (the writer counted partition_failures, the rows beyond went to
-- the default partition), and a day whose week started with an existing
-- day partition got none (its name was taken).
--
-- Now the partition made for a day is the part of the day's period that no
-- partition covers, around that day: from the end of the last partition
-- before the day (or the period's start) to the start of the next one (or
-- the period's end). Its name is <table>_pYYYYMMDD of its own first day,
-- as before for a whole period. A day already covered by a partition gets
-- none. Nothing else changes: bounds are still whole UTC days, pruning
-- reads each partition's bounds (flowcore_prune_partitions), and a database
-- that never changes its period makes exactly the partitions it made
-- before.
--
-- On Citus (src/pg/citus.c) new partitions need citus.enable_unsafe_triggers
-- (they get the append-only trigger): the function sets it for its
-- transaction when the citus extension is there, since CREATE OR REPLACE
-- drops the SET that `flowcore migrate` gave the old definition. It also
-- sets citus.multi_shard_modify_mode = 'sequential' for the transaction:
-- with one connection per shard, ATTACH PARTITION on two shards of the
-- same worker could wait on each other inside the one distributed
-- transaction, which Citus cancels as a distributed deadlock (seen once in
-- CI's Citus stage, at flowcore_ensure_partitions; Citus's own advice for
-- partition DDL in a transaction is this setting). One connection per
-- worker costs little: a partition is made once a day (or week).

CREATE OR REPLACE FUNCTION flowcore__create_partition(day date) RETURNS int
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    t text;
    part text;
    b record;
    at uuid := flowcore_uuid_floor((day::timestamp AT TIME ZONE 'UTC'));
    lo uuid;
    hi uuid;
    covered boolean;
    made int := 0;
BEGIN
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus') THEN
        PERFORM set_config('citus.enable_unsafe_triggers', 'on', true);
        PERFORM set_config('citus.multi_shard_modify_mode', 'sequential', true);
    END IF;
    SELECT * INTO b FROM flowcore_partition_bounds(day);
    FOREACH t IN ARRAY ARRAY['workflow_executions', 'node_executions', 'execution_errors'] LOOP
        -- The bounds of t's partitions (the default partition has none;
        -- PostgreSQL 15 has no max(uuid), hence ORDER BY ... LIMIT 1).
        WITH parts AS (
            SELECT m[1]::uuid AS plo, m[2]::uuid AS phi
              FROM (SELECT regexp_match(pg_get_expr(c.relpartbound, c.oid),
                                        'FROM \(''([^'']+)''\) TO \(''([^'']+)''\)') AS m
                      FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
                     WHERE i.inhparent = t::regclass) x
             WHERE m IS NOT NULL)
        SELECT EXISTS (SELECT 1 FROM parts WHERE plo <= at AND at < phi),
               greatest(b.lower, (SELECT phi FROM parts WHERE phi <= at ORDER BY phi DESC LIMIT 1)),
               least(b.upper, (SELECT plo FROM parts WHERE plo > at ORDER BY plo LIMIT 1))
          INTO covered, lo, hi;
        CONTINUE WHEN covered OR lo >= hi;
        part := format('%s_p%s', t, to_char(flowcore_uuid_time(lo) AT TIME ZONE 'UTC', 'YYYYMMDD'));
        -- Created apart, filled from the default partition, then attached:
        -- attaching checks that the default holds no row of the range.
        EXECUTE format('CREATE TABLE %I (LIKE %I INCLUDING DEFAULTS INCLUDING CONSTRAINTS)',
                       part, t);
        EXECUTE format('WITH moved AS (DELETE FROM %I WHERE workflow_id >= $1 AND workflow_id < $2'
                       ' RETURNING *) INSERT INTO %I SELECT * FROM moved',
                       t || '_default', part) USING lo, hi;
        EXECUTE format('ALTER TABLE %I ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)',
                       t, part, lo, hi);
        EXECUTE format('ANALYZE %I', part);
        made := made + 1;
    END LOOP;
    RETURN made;
END
$$;
