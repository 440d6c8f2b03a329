SELECT pg_notify('cloud_readmodel', $1::text)
