SELECT position FROM eventlog.head
