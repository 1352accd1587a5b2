-- rapport cloud, schema 3: erased vehicles' tombstones (docs/data-rights.md, "Erase"). One
-- row per erased VIN: the erasure (JSON: number, time, reason, wipe downlink id, partners
-- told, what was removed counted, the car's wipe confirmation, late records dropped). The
-- ingest reads it (locked with the vehicle's row) to drop records from before the erasure.
CREATE TABLE erasures (
    vin  text COLLATE "C" PRIMARY KEY CHECK (length(vin) = 17),
    body jsonb NOT NULL
);
