-- Idempotency-Key of deploys and credential updates: a client that lost an
-- answer (a timeout, a dropped connection, the server killed between commit
-- and answer) sends the same request with the same key and gets the first
-- answer instead of a second write. The row commits in the same transaction
-- as the write it names, so "written" and "remembered" cannot part.
-- Scoped to the tenant and the token that sent it. Holds the SHA-256 of the
-- request (method, route and body) to tell a retry from a different request
-- reusing the key, and the server id the answer is rebuilt from; never the
-- body, never an answer (which could hold a secret). Kept 24 hours: each
-- write of the tenant deletes its expired keys.

CREATE TABLE idempotency_keys (
    tenant_id    text NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    principal    text NOT NULL CHECK (octet_length(principal) BETWEEN 1 AND 128),
    idem_key     text NOT NULL CHECK (octet_length(idem_key) BETWEEN 1 AND 255),
    request_hash bytea NOT NULL CHECK (octet_length(request_hash) = 32),
    server_id    text NOT NULL CHECK (octet_length(server_id) BETWEEN 1 AND 128),
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, principal, idem_key)
);
CREATE INDEX idempotency_keys_created_idx ON idempotency_keys (tenant_id, created_at);

ALTER TABLE idempotency_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE idempotency_keys FORCE ROW LEVEL SECURITY;
CREATE POLICY idempotency_keys_isolation ON idempotency_keys
    USING (tenant_id = current_setting('credvault.tenant_id', true)
           OR current_setting('credvault.scope', true) = 'platform')
    WITH CHECK (tenant_id = current_setting('credvault.tenant_id', true)
                OR current_setting('credvault.scope', true) = 'platform');

GRANT SELECT, INSERT, DELETE ON idempotency_keys TO credvault_app;
