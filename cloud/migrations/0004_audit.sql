-- rapport cloud, schema 3: the API's audit log (docs/api-access.md). Append-only: the cloud
-- only INSERTs rows and DELETEs them by age (retention, `[audit] days`); it never UPDATEs one.
-- `seq` orders the log (newest first in answers); `at` is the cloud's clock, unix ms.
CREATE TABLE audit (
    seq     bigserial PRIMARY KEY,
    at      bigint NOT NULL,
    who     text NOT NULL,
    partner text COLLATE "C",
    vin     text COLLATE "C",
    method  text NOT NULL,
    route   text NOT NULL,
    status  integer NOT NULL
);
CREATE INDEX audit_vin ON audit (vin, seq) WHERE vin IS NOT NULL;
CREATE INDEX audit_partner ON audit (partner, seq) WHERE partner IS NOT NULL;
CREATE INDEX audit_at ON audit (at);

-- Append-only for everyone, not only for the cloud: an UPDATE of an entry is refused.
CREATE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only: entries are never changed';
END
$$;
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
    FOR EACH ROW EXECUTE FUNCTION audit_append_only();
