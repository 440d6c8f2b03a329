-- Partitions are created and dropped by the log's owner, whoever calls: the services that
-- append and expire run as roles that may not create or drop tables, and call these
-- functions, which run with the owner's rights (SECURITY DEFINER, with a fixed search
-- path so nothing the caller defines is picked up). Only roles granted EXECUTE may call
-- them.
ALTER FUNCTION eventlog.ensure_telemetry_partition(date) SECURITY DEFINER SET search_path = pg_catalog, pg_temp;

-- Drops the telemetry partition of day `d`, if it exists; true when it did.
CREATE FUNCTION eventlog.drop_telemetry_partition(d date) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    name text := format('telemetry_%s', to_char(d, 'YYYYMMDD'));
BEGIN
    IF to_regclass(format('eventlog.%I', name)) IS NULL THEN
        RETURN false;
    END IF;
    EXECUTE format('DROP TABLE eventlog.%I', name);
    RETURN true;
END
$$;

REVOKE EXECUTE ON FUNCTION eventlog.ensure_telemetry_partition(date) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION eventlog.drop_telemetry_partition(date) FROM PUBLIC;
