-- A plant's layout rows, before its new layout is written.
WITH s AS (DELETE FROM cloud.sensors WHERE plant = $1),
     m AS (DELETE FROM cloud.machines WHERE plant = $1),
     l AS (DELETE FROM cloud.lines WHERE plant = $1),
     g AS (DELETE FROM cloud.groups WHERE plant = $1)
DELETE FROM cloud.plants WHERE plant = $1
