-- A day's telemetry partition no longer waits for the readers of the log, nor makes them
-- wait. `CREATE TABLE … PARTITION OF` takes ACCESS EXCLUSIVE on eventlog.telemetry: it
-- queues behind every open transaction that has read or written the table (a projection
-- folding a long batch), and every reader and writer that comes after queues behind it.
-- Instead the day's table is created on its own, with a CHECK that states its range (so
-- attaching it need not scan it), and then attached, which takes only SHARE UPDATE
-- EXCLUSIVE on the parent: readers and writers of the log go on. Attaching gives the
-- table the parent's indexes, as creating it as a partition did; the CHECK is dropped
-- again once the partition bound holds, so the partition is the one the old way made.
-- Creators are serialised by taking that SHARE UPDATE EXCLUSIVE lock first (it conflicts
-- with itself, not with readers or writers), so two of them never create the same day.
CREATE OR REPLACE FUNCTION eventlog.ensure_telemetry_partition(d date) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    name text := format('telemetry_%s', to_char(d, 'YYYYMMDD'));
    bound text := format('telemetry_%s_bound', to_char(d, 'YYYYMMDD'));
    low timestamptz := d::timestamptz;
    high timestamptz := (d + 1)::timestamptz;
BEGIN
    IF to_regclass(format('eventlog.%I', name)) IS NOT NULL THEN
        RETURN false;
    END IF;
    LOCK TABLE eventlog.telemetry IN SHARE UPDATE EXCLUSIVE MODE;
    -- Another creator may have made it while this one waited for the lock. Taking a
    -- table's lock also reads what other sessions committed to the catalog since; an
    -- advisory lock does not, and the name would still look free here.
    IF to_regclass(format('eventlog.%I', name)) IS NOT NULL THEN
        RETURN false;
    END IF;
    EXECUTE format(
        'CREATE TABLE eventlog.%I (LIKE eventlog.telemetry INCLUDING DEFAULTS INCLUDING CONSTRAINTS'
        ' INCLUDING GENERATED INCLUDING COMPRESSION INCLUDING STORAGE,'
        ' CONSTRAINT %I CHECK (occurred_at >= %L AND occurred_at < %L))',
        name, bound, low, high);
    EXECUTE format('ALTER TABLE eventlog.telemetry ATTACH PARTITION eventlog.%I FOR VALUES FROM (%L) TO (%L)',
        name, low, high);
    EXECUTE format('ALTER TABLE eventlog.%I DROP CONSTRAINT %I', name, bound);
    RETURN true;
END
$$;
