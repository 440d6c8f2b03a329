-- Drops a detached day table: it locks that table alone.
DROP TABLE IF EXISTS {partition}
