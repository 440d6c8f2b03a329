SELECT id, secret_sha256, role, plants, label, created_at, revoked_at FROM access.credentials WHERE id = $1
