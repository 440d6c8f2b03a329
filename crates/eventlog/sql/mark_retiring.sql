INSERT INTO eventlog.retiring_days (day) VALUES ($1) ON CONFLICT (day) DO NOTHING
