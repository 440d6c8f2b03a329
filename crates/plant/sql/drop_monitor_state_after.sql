-- Snapshots newer than the one the monitor fell back to cannot be loaded: they go.
DELETE FROM monitor.state WHERE name = $1 AND position > $2
