DELETE FROM ingest.dead_letters WHERE received_at < $1
