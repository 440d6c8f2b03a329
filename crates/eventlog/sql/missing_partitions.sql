-- The days of $1 that have no telemetry partition yet (a catalog lookup, no lock).
SELECT d FROM unnest($1::date[]) AS d
 WHERE to_regclass(format('eventlog.telemetry_%s', to_char(d, 'YYYYMMDD'))) IS NULL
 ORDER BY d
