-- The plant node's own role ($1 in floorwatch.node_role, its password in
-- floorwatch.node_password): it may log in to this database and do what running a plant
-- needs, nothing more. It appends to the log but never changes or deletes an event, reads
-- people's credentials but cannot make one, and creates or drops no table (partitions
-- are created through the owner's functions; retention connects as the owner to drop
-- them). Migrations stay with the database's owner.
-- Roles belong to the whole server: each plant database has its own node role.
DO $$
DECLARE
    r text := current_setting('floorwatch.node_role');
    pw text := current_setting('floorwatch.node_password');
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
        BEGIN
            EXECUTE format('CREATE ROLE %I LOGIN', r);
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL;
        END;
    END IF;
    EXECUTE format(
        'ALTER ROLE %I WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT NOREPLICATION NOBYPASSRLS PASSWORD %L',
        r, pw);
    EXECUTE format('REVOKE ALL ON DATABASE %I FROM %I', current_database(), r);
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO %I', current_database(), r);
    EXECUTE format('GRANT USAGE ON SCHEMA eventlog, ingest, monitor, maintenance, readmodel, access TO %I', r);

    -- The log: appended to and read; an event is never changed or removed.
    EXECUTE format('GRANT SELECT, INSERT ON eventlog.events, eventlog.telemetry TO %I', r);
    EXECUTE format('GRANT SELECT ON eventlog.all_events TO %I', r);
    EXECUTE format('GRANT SELECT, UPDATE ON eventlog.head TO %I', r);
    EXECUTE format('GRANT SELECT, INSERT, UPDATE ON eventlog.streams, eventlog.checkpoints TO %I', r);
    EXECUTE format('GRANT SELECT, INSERT, DELETE ON eventlog.idempotency_keys TO %I', r);
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON eventlog.snapshots TO %I', r);
    EXECUTE format('GRANT SELECT ON eventlog.retiring_days TO %I', r);
    EXECUTE format('GRANT EXECUTE ON FUNCTION eventlog.ensure_telemetry_partition(date) TO %I', r);

    -- What the node keeps beside the log.
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON ingest.dead_letters, monitor.state TO %I', r);
    EXECUTE format('GRANT USAGE ON SEQUENCE ingest.dead_letters_id_seq TO %I', r);
    EXECUTE format('GRANT SELECT ON maintenance.models TO %I', r);
    EXECUTE format('GRANT SELECT, INSERT, UPDATE ON maintenance.scorer TO %I', r);
    EXECUTE format('GRANT SELECT ON access.credentials TO %I', r);

    -- The read models are the node's to write (and to clear when they are folded again),
    -- its tasks' states among them (`node_tasks`, numbered from their own sequence).
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON ALL TABLES IN SCHEMA readmodel TO %I', r);
    EXECUTE format('GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA readmodel TO %I', r);
    EXECUTE format('GRANT EXECUTE ON FUNCTION readmodel.ensure_day_partition(text, date) TO %I', r);
END
$$;
