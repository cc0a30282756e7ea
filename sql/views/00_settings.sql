-- Settings of the flowcore database for the views and dashboards.
--
-- jit = off for the database (new sessions; a role or session may still
-- turn it on). PostgreSQL compiles a query's expressions to machine code
-- when its estimated cost passes jit_above_cost, and it does so for every
-- partition the plan touches. The history tables have a partition per day,
-- so a dashboard query over the last hour of a history kept 100 days
-- compiled about 100 scans: at 10^7 node rows "p95 node duration per
-- minute" over 1 h took 525 ms, 2.7 s of it spent emitting code, against
-- 20 ms with jit off (docs/performance.md). The queries of sql/views/ are
-- index range scans and small aggregates, which JIT does not speed up.
--
-- Changing a database's settings needs its owner or a superuser: a
-- migrating role that is neither (or a server that refuses the statement
-- for another reason, e.g. a cluster extension) gets a NOTICE saying why,
-- the migration goes on, and the owner can run the same statement:
--   ALTER DATABASE <name> SET jit = off;
DO $settings$
BEGIN
    EXECUTE format('ALTER DATABASE %I SET jit = off', current_database());
EXCEPTION WHEN OTHERS THEN
    RAISE NOTICE 'flowcore: could not set jit = off for database % (%); dashboards over many partitions are slower with JIT: ALTER DATABASE % SET jit = off',
        current_database(), SQLERRM, current_database();
END
$settings$;
