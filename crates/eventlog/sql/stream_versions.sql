SELECT stream, version FROM eventlog.streams WHERE stream = ANY($1)
