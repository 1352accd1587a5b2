-- rapport cloud, schema 2: what the stored fleet was computed with. `layers` holds the
-- `[layers]` thresholds (as JSON text) every driver was last placed with; an instance that
-- starts with other thresholds re-places every driver in the background and writes its own
-- (docs/scale.md, "Changing the layer thresholds").
CREATE TABLE fleet_settings (
    key   text COLLATE "C" PRIMARY KEY,
    value text NOT NULL
);
