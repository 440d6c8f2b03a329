-- Completes a concurrent detach that stopped half-way (the partition pending detach).
ALTER TABLE {parent} DETACH PARTITION {partition} FINALIZE
