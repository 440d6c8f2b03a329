UPDATE eventlog.head SET position = $1
