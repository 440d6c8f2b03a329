INSERT INTO access.credentials (id, secret_sha256, role, plants, label) VALUES ($1, $2, $3, $4, $5)
RETURNING created_at
