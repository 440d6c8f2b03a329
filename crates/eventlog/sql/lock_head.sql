-- Serialises appenders until commit (see eventlog.head).
SELECT position FROM eventlog.head FOR UPDATE
