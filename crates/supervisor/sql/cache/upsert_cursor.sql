INSERT INTO cursors (model, position) VALUES (?1, ?2)
ON CONFLICT (model) DO UPDATE SET position = max(cursors.position, excluded.position)
