-- Forgets the days retention has dropped (those without a table any more).
DELETE FROM eventlog.retiring_days
 WHERE to_regclass(format('eventlog.telemetry_%s', to_char(day, 'YYYYMMDD'))) IS NULL
