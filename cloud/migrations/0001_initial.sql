-- rapport cloud, schema 1: the store port's tables in PostgreSQL (docs/architecture.md,
-- "The store port"). Values the cloud decodes itself are kept in the sled store's encodings
-- (bytea: a version byte, then postcard; jsonb: the same JSON), so `import-sled` copies them.
-- Times are unix milliseconds (bigint), as everywhere in the cloud. Text keys sort by bytes
-- (COLLATE "C"), as sled's keys do, so pages read alike on both backends.

-- One row per vehicle the cloud knows (seen by the ingest, registered, or both). Its row is
-- the lock every change of the vehicle takes (SELECT … FOR UPDATE, in VIN order).
CREATE TABLE vehicles (
    id           integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    vin          text COLLATE "C" NOT NULL UNIQUE CHECK (length(vin) = 17),
    -- the ingest's state (applied seqs, odometer, DTCs …); NULL: never seen
    state        bytea,
    -- the fleet: driver (NULL before its first record), registry entry, contact history
    driver       bytea,
    registration jsonb,
    contacts     jsonb,
    -- where the driver sits (NULL: not placed), as the enums' indexes
    category     smallint,
    car          smallint,
    service      smallint,
    activity     smallint,
    lifecycle    smallint,
    -- time-driven work: the next layer change, the next in-cell re-offer, the earliest
    -- send or SLA of its open alerts (ms); `due_at` is the earliest of the three
    layer_due    bigint,
    in_cell_due  bigint,
    alert_due    bigint,
    due_at       bigint GENERATED ALWAYS AS (LEAST(layer_due, in_cell_due, alert_due)) STORED
);
-- Due vehicles, claimed with FOR UPDATE SKIP LOCKED by the tick.
CREATE INDEX vehicles_due ON vehicles (due_at) WHERE due_at IS NOT NULL;
-- The layer matrix: a GROUP BY over this index alone.
CREATE INDEX vehicles_cells ON vehicles (category, service, car, activity)
    WHERE category IS NOT NULL;

-- The record log: each applied record once, keyed (vehicle, seq) in one bigint — the
-- vehicle's row id times 2^36 plus the seq (seqs below 2^36, ids below 2^27) — in partitions
-- by the day the cloud received it (retention drops whole partitions). One 8-byte key instead
-- of two columns keeps a row and its index entry small (the columns in this order leave no
-- alignment padding). Uniqueness of (vehicle, seq) is the applied-seq set's, in the vehicle's
-- locked row.
CREATE TABLE records (
    key      bigint NOT NULL,
    received date   NOT NULL,
    body     bytea  NOT NULL
) PARTITION BY RANGE (received);
CREATE INDEX records_key ON records (key);

-- The fleet's timeline entries of a vehicle, in (time, number) order.
CREATE TABLE timeline (
    vehicle integer NOT NULL,
    at      bigint  NOT NULL,
    n       bigint  GENERATED ALWAYS AS IDENTITY,
    entry   jsonb   NOT NULL,
    PRIMARY KEY (vehicle, at, n)
);

-- Partner alerts; `state`: 0 open, 1 acknowledged, 2 resolved. `send_due`: when its webhook
-- goes to the outbox; `sla_due`: when it escalates.
CREATE SEQUENCE alert_ids;
CREATE TABLE alerts (
    id       bigint PRIMARY KEY,
    vin      text COLLATE "C" NOT NULL,
    state    smallint NOT NULL,
    body     jsonb    NOT NULL,
    send_due bigint,
    sla_due  bigint
);
CREATE INDEX alerts_vin ON alerts (vin);
CREATE INDEX alerts_unresolved ON alerts (id) WHERE state <> 2;

-- The webhook outbox; `status`: 0 pending, 1 delivered, 2 dead. `message` is the pending
-- message (or the dead letter's), `marker` the delivered marker. `claimed_by`/`lease_until`:
-- an instance's claim on a pending message while it sends it (lapses when it dies).
CREATE TABLE webhooks (
    id          text COLLATE "C" PRIMARY KEY,
    status      smallint NOT NULL,
    next_at     bigint,
    done_at     bigint,
    message     bytea,
    marker      bytea,
    dead        bytea,
    claimed_by  text,
    lease_until bigint
);
CREATE INDEX webhooks_due ON webhooks (next_at) WHERE status = 0;
CREATE INDEX webhooks_delivered ON webhooks (done_at) WHERE status = 1;
CREATE INDEX webhooks_dead ON webhooks (id) WHERE status = 2;

-- Downlinks decided but not yet handed to MQTT (with the same claim columns).
CREATE SEQUENCE downlink_ids;
CREATE TABLE downlinks (
    id          bigint PRIMARY KEY,
    vin         text COLLATE "C" NOT NULL,
    envelope    bytea  NOT NULL,
    claimed_by  text,
    lease_until bigint
);

-- Partners added through the API.
CREATE TABLE partners (
    id   text COLLATE "C" PRIMARY KEY,
    body jsonb NOT NULL
);
