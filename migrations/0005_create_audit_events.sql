-- The audit trail. Append-only for the service role (INSERT and SELECT, no
-- UPDATE or DELETE), never a secret in any column, and no foreign key to
-- tenants: the trail outlives a deleted tenant.

CREATE TABLE audit_events (
    id         bigserial PRIMARY KEY,
    at         timestamptz NOT NULL DEFAULT now(),
    tenant_id  text,
    actor      text NOT NULL CHECK (octet_length(actor) <= 128),
    role       text NOT NULL CHECK (octet_length(role) <= 16),
    action     text NOT NULL CHECK (octet_length(action) BETWEEN 1 AND 64),
    target     text CHECK (octet_length(target) <= 256),
    outcome    text NOT NULL CHECK (outcome IN ('success', 'denied', 'error')),
    request_id text CHECK (octet_length(request_id) <= 128),
    detail     jsonb CHECK (detail IS NULL OR jsonb_typeof(detail) = 'object')
);
CREATE INDEX audit_events_tenant_at_idx ON audit_events (tenant_id, at);

ALTER TABLE audit_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit_events FORCE ROW LEVEL SECURITY;
CREATE POLICY audit_events_isolation ON audit_events
    USING (tenant_id = current_setting('credvault.tenant_id', true)
           OR current_setting('credvault.scope', true) = 'platform')
    WITH CHECK (tenant_id = current_setting('credvault.tenant_id', true)
                OR current_setting('credvault.scope', true) = 'platform');

GRANT SELECT, INSERT ON audit_events TO credvault_app;
GRANT USAGE ON SEQUENCE audit_events_id_seq TO credvault_app;
