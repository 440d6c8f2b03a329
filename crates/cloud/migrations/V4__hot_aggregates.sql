-- A sensor's hour row is rewritten with each of its minutes, its day row with each batch.
-- Pages kept half empty let PostgreSQL write each new version beside the old one
-- (a heap-only update: no new index entry, and the page's dead versions are pruned by
-- the next reader or writer of that page). Full pages sent every update to another page
-- and a new index entry, so a trend read walked past dozens of dead versions a row until
-- vacuum came. Pages written from now on keep the room; older ones are not rewritten.
ALTER TABLE cloud.sensor_hour SET (fillfactor = 50);
ALTER TABLE cloud.sensor_day SET (fillfactor = 50);
