-- Serialises creators of telemetry partitions until commit, so two of them never create
-- the same day at once. Deliberately not the log's head: creating a partition waits for
-- every open reader of the telemetry table, and a reader may be waiting for the head.
SELECT pg_advisory_xact_lock(7380531526357057538)
