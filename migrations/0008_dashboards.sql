-- PLACEHOLDER from branch i11-compact so that 0009 applies without a gap.
-- The real 0008_dashboards.sql is on its own branch: on merge, take that one.
SELECT 1;
