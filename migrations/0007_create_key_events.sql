-- Key-state changes, for the other instances (issue 4). Every lifecycle
-- change inserts one row here in its own transaction and sends
-- NOTIFY credvault_keys with the row's id. A listening instance reads the
-- rows it has not seen yet and drops its cached unwrapped keys of that
-- tenant, or picks up a new master version. The table, not the
-- notification, is the truth: an instance whose LISTEN connection dropped
-- catches up from here on its periodic re-check. Never holds key material.

CREATE TABLE key_events (
    id        bigserial PRIMARY KEY,
    at        timestamptz NOT NULL DEFAULT now(),
    kind      text NOT NULL CHECK (kind IN ('master_rotated', 'master_retired', 'tenant_key_rotated',
                                            'tenant_keys_retired', 'tenant_keys_destroyed',
                                            'tenant_shredded', 'job_started')),
    -- no foreign key: the event of a shredded tenant outlives the tenant
    tenant_id text CHECK (tenant_id IS NULL OR tenant_id ~ '^[a-z0-9][a-z0-9-]{0,63}$'),
    version   integer CHECK (version IS NULL OR version >= 1)
);
CREATE INDEX key_events_at_idx ON key_events (at);

ALTER TABLE key_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE key_events FORCE ROW LEVEL SECURITY;
CREATE POLICY key_events_isolation ON key_events
    USING (tenant_id = current_setting('credvault.tenant_id', true)
           OR current_setting('credvault.scope', true) = 'platform')
    WITH CHECK (tenant_id = current_setting('credvault.tenant_id', true)
                OR current_setting('credvault.scope', true) = 'platform');

-- DELETE: instances prune events older than a day (every instance has seen
-- them by then, or catches up by dropping its whole cache).
GRANT SELECT, INSERT, DELETE ON key_events TO credvault_app;
GRANT USAGE ON SEQUENCE key_events_id_seq TO credvault_app;
