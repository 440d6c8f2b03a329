-- The days of $1 that have no telemetry partition yet, or whose partition retention is
-- dropping (a catalog lookup and an index probe, no lock).
SELECT d FROM unnest($1::date[]) AS d
 WHERE to_regclass(format('eventlog.telemetry_%s', to_char(d, 'YYYYMMDD'))) IS NULL
    OR EXISTS (SELECT 1 FROM eventlog.retiring_days r WHERE r.day = d)
 ORDER BY d
