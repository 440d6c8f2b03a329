-- A day partition of the minute aggregates no longer waits for the readers of
-- cloud.sensor_minute, nor makes them wait. `CREATE TABLE … PARTITION OF` takes ACCESS
-- EXCLUSIVE on the parent: it queued behind every open transaction that had read or
-- written it (an API query, the telemetry projection's batch), and every reader that
-- came after queued behind it. Instead the day's table is created on its own, with a
-- CHECK that states its range (so attaching it need not scan it), and then attached,
-- which takes only SHARE UPDATE EXCLUSIVE on the parent. Attaching gives the table the
-- parent's indexes, as creating it as a partition did; the CHECK is dropped again once
-- the partition bound holds. Creators are serialised by taking that SHARE UPDATE
-- EXCLUSIVE lock first (it conflicts with itself, not with readers or writers), so two of
-- them never create the same day.
CREATE OR REPLACE FUNCTION cloud.ensure_minute_partition(d date) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    name text := format('sensor_minute_%s', to_char(d, 'YYYYMMDD'));
    bound text := format('sensor_minute_%s_bound', to_char(d, 'YYYYMMDD'));
    low timestamptz := d::timestamptz;
    high timestamptz := (d + 1)::timestamptz;
BEGIN
    IF to_regclass(format('cloud.%I', name)) IS NOT NULL THEN
        RETURN false;
    END IF;
    LOCK TABLE cloud.sensor_minute IN SHARE UPDATE EXCLUSIVE MODE;
    -- Another creator may have made it while this one waited for the lock. Taking a
    -- table's lock also reads what other sessions committed to the catalog since; an
    -- advisory lock does not, and the name would still look free here.
    IF to_regclass(format('cloud.%I', name)) IS NOT NULL THEN
        RETURN false;
    END IF;
    EXECUTE format(
        'CREATE TABLE cloud.%I (LIKE cloud.sensor_minute INCLUDING DEFAULTS INCLUDING CONSTRAINTS'
        ' INCLUDING GENERATED INCLUDING COMPRESSION INCLUDING STORAGE,'
        ' CONSTRAINT %I CHECK (minute >= %L AND minute < %L))',
        name, bound, low, high);
    EXECUTE format('ALTER TABLE cloud.sensor_minute ATTACH PARTITION cloud.%I FOR VALUES FROM (%L) TO (%L)',
        name, low, high);
    EXECUTE format('ALTER TABLE cloud.%I DROP CONSTRAINT %I', name, bound);
    RETURN true;
END
$$;
