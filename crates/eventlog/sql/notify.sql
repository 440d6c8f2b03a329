SELECT pg_notify('floorwatch_log', $1::text)
