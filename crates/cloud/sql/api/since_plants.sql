SELECT p.plant, p.readings, p.newest_reading, p.position FROM cloud.plant_status p
 WHERE p.position > $1 AND ($2::smallint[] IS NULL OR p.plant = ANY($2)) ORDER BY p.position LIMIT $3
