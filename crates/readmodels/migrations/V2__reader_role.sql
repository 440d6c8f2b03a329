-- The role desktop clients log in as: it may read the read models and LISTEN, and
-- nothing else — not the event log, not the ingest tables, no writes, no temp tables.
-- Roles belong to the whole server, and every plant database runs this migration, maybe
-- at the same time: each server-wide step tolerates another database having done it.
DO $$
BEGIN
    BEGIN
        CREATE ROLE floorwatch_reader LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT CONNECTION LIMIT 64;
    EXCEPTION WHEN duplicate_object OR unique_violation THEN
        NULL;
    END;
    BEGIN
        ALTER ROLE floorwatch_reader SET default_transaction_read_only = on;
    EXCEPTION WHEN OTHERS THEN
        -- "tuple concurrently updated": another database set the same value.
        NULL;
    END;
    EXECUTE format('REVOKE TEMPORARY ON DATABASE %I FROM PUBLIC', current_database());
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO floorwatch_reader', current_database());
END
$$;
REVOKE ALL ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA readmodel TO floorwatch_reader;
GRANT SELECT ON ALL TABLES IN SCHEMA readmodel TO floorwatch_reader;
ALTER DEFAULT PRIVILEGES IN SCHEMA readmodel GRANT SELECT ON TABLES TO floorwatch_reader;
