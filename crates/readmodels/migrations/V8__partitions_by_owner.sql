-- Day partitions of the history are created and dropped by the read models' owner,
-- whoever calls: the plant node runs as a role that may not create or drop tables, and
-- calls these functions, which run with the owner's rights (SECURITY DEFINER, with a
-- fixed search path). Only roles granted EXECUTE may call them.
ALTER FUNCTION readmodel.ensure_day_partition(text, date) SECURITY DEFINER SET search_path = pg_catalog, pg_temp;

-- Drops the day-`d` partition of `parent` (sensor_history or sensor_minute), if it
-- exists; true when it did.
CREATE FUNCTION readmodel.drop_day_partition(parent text, d date) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    name text := format('%s_%s', parent, to_char(d, 'YYYYMMDD'));
BEGIN
    IF parent NOT IN ('sensor_history', 'sensor_minute') THEN
        RAISE EXCEPTION 'readmodel.% is not a table of day partitions', parent USING ERRCODE = '22023';
    END IF;
    IF to_regclass(format('readmodel.%I', name)) IS NULL THEN
        RETURN false;
    END IF;
    EXECUTE format('DROP TABLE readmodel.%I', name);
    RETURN true;
END
$$;

REVOKE EXECUTE ON FUNCTION readmodel.ensure_day_partition(text, date) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION readmodel.drop_day_partition(text, date) FROM PUBLIC;
