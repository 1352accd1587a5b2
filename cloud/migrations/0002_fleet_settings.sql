-- rapport cloud, schema 2: what the stored fleet was computed with, and an index for the
-- webhook sender. `fleet_settings.layers` holds the `[layers]` thresholds (JSON text) every
-- driver was last placed with; an instance that starts with other thresholds re-places every
-- driver in the background and writes its own (docs/scale.md, "Changing the layer
-- thresholds").
CREATE TABLE fleet_settings (
    key   text COLLATE "C" PRIMARY KEY,
    value text NOT NULL
);

-- The webhook sender's "when next": live claims found without a scan of every pending row.
CREATE INDEX webhooks_leased ON webhooks (lease_until) WHERE status = 0 AND lease_until IS NOT NULL;
