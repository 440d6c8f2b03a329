SELECT pg_notify('readmodel', $1::text)
