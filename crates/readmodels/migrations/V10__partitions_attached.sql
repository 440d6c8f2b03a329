-- A day partition of the history no longer waits for the readers of the read models, nor
-- makes them wait. `CREATE TABLE … PARTITION OF` takes ACCESS EXCLUSIVE on the parent:
-- it queues behind every open transaction that has read it (a long report, a client's
-- query) and every reader that comes after queues behind it. Instead the day's table is
-- created on its own, with a CHECK that states its range (so attaching it need not scan
-- it), and then attached, which takes only SHARE UPDATE EXCLUSIVE on the parent. Attaching
-- gives the table the parent's indexes, as creating it as a partition did; the CHECK is
-- dropped again once the partition bound holds, and the table is created by the same
-- owner as before, so the reader role's default SELECT grant applies as it did.
-- Creators of one parent's partitions are serialised by taking that SHARE UPDATE EXCLUSIVE
-- lock first (it conflicts with itself, not with readers or writers), so two of them
-- never create the same day. Only the two tables of day partitions are accepted:
-- the function runs with the owner's rights.
CREATE OR REPLACE FUNCTION readmodel.ensure_day_partition(parent text, d date) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    name text := format('%s_%s', parent, to_char(d, 'YYYYMMDD'));
    bound text := format('%s_%s_bound', parent, to_char(d, 'YYYYMMDD'));
    low timestamptz := d::timestamptz;
    high timestamptz := (d + 1)::timestamptz;
BEGIN
    IF parent NOT IN ('sensor_history', 'sensor_minute') THEN
        RAISE EXCEPTION 'readmodel.% is not a table of day partitions', parent USING ERRCODE = '22023';
    END IF;
    IF to_regclass(format('readmodel.%I', name)) IS NOT NULL THEN
        RETURN false;
    END IF;
    EXECUTE format('LOCK TABLE readmodel.%I IN SHARE UPDATE EXCLUSIVE MODE', parent);
    -- Another creator may have made it while this one waited for the lock. Taking a
    -- table's lock also reads what other sessions committed to the catalog since; an
    -- advisory lock does not, and the name would still look free here.
    IF to_regclass(format('readmodel.%I', name)) IS NOT NULL THEN
        RETURN false;
    END IF;
    EXECUTE format(
        'CREATE TABLE readmodel.%I (LIKE readmodel.%I INCLUDING DEFAULTS INCLUDING CONSTRAINTS'
        ' INCLUDING GENERATED INCLUDING COMPRESSION INCLUDING STORAGE,'
        ' CONSTRAINT %I CHECK (minute >= %L AND minute < %L))',
        name, parent, bound, low, high);
    EXECUTE format('ALTER TABLE readmodel.%I ATTACH PARTITION readmodel.%I FOR VALUES FROM (%L) TO (%L)',
        parent, name, low, high);
    EXECUTE format('ALTER TABLE readmodel.%I DROP CONSTRAINT %I', name, bound);
    RETURN true;
END
$$;
