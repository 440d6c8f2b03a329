-- Days retention began to drop and has not finished.
SELECT day FROM eventlog.retiring_days ORDER BY day
