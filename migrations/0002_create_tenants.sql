-- Tenants, the platform's master key versions and each tenant's wrapped keys.
-- Row-level security: a tenant row is visible only in its own tenant's scope
-- or in platform scope, both set per transaction by the store with
-- set_config(..., true). FORCE makes the owner obey the policies too.

CREATE TABLE tenants (
    id                  text PRIMARY KEY CHECK (id ~ '^[a-z0-9][a-z0-9-]{0,63}$'),
    name                text NOT NULL CHECK (octet_length(name) BETWEEN 1 AND 256),
    created_at          timestamptz NOT NULL DEFAULT now(),
    created_by          text NOT NULL CHECK (octet_length(created_by) <= 128),
    min_decrypt_version integer NOT NULL DEFAULT 1 CHECK (min_decrypt_version >= 1)
);

-- Platform-owned: no tenant_id, no row-level security. The canary is a key
-- wrapped under this master; its tenant label and version are kept so that
-- the binding (an HMAC over label, version, master version and wrapped bytes)
-- can be checked again at start.
CREATE TABLE master_keys (
    version          integer PRIMARY KEY CHECK (version >= 1),
    state            text NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'retired')),
    created_at       timestamptz NOT NULL DEFAULT now(),
    canary_wrapped   bytea NOT NULL CHECK (octet_length(canary_wrapped) BETWEEN 1 AND 64),
    canary_binding   bytea NOT NULL CHECK (octet_length(canary_binding) = 32),
    canary_tenant_id text NOT NULL CHECK (octet_length(canary_tenant_id) <= 64),
    canary_version   integer NOT NULL CHECK (canary_version >= 0)
);

-- A destroyed version keeps its row (records name it) but loses its wrapped
-- bytes: crypto-shredding.
CREATE TABLE tenant_keys (
    tenant_id      text NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    version        integer NOT NULL CHECK (version >= 1),
    master_version integer NOT NULL REFERENCES master_keys (version),
    wrapped_key    bytea CHECK (octet_length(wrapped_key) BETWEEN 1 AND 64),
    binding        bytea CHECK (octet_length(binding) = 32),
    state          text NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'retired', 'destroyed')),
    created_at     timestamptz NOT NULL DEFAULT now(),
    encryptions    bigint NOT NULL DEFAULT 0 CHECK (encryptions >= 0),
    PRIMARY KEY (tenant_id, version),
    CHECK (state = 'destroyed' OR (wrapped_key IS NOT NULL AND binding IS NOT NULL))
);
CREATE INDEX tenant_keys_master_version_idx ON tenant_keys (master_version);

-- GCM with random IVs allows at most 2^32 encryptions per key, so every
-- write counts one. A single counter row per key would serialize a tenant's
-- concurrent writers on its row lock until commit (and pile up dead row
-- versions), so writers add to one of 16 shards picked by backend pid. A
-- key version's count is tenant_keys.encryptions plus its shards.
CREATE TABLE tenant_key_usage (
    tenant_id   text NOT NULL,
    version     integer NOT NULL,
    shard       smallint NOT NULL CHECK (shard BETWEEN 0 AND 15),
    encryptions bigint NOT NULL DEFAULT 0 CHECK (encryptions >= 0),
    PRIMARY KEY (tenant_id, version, shard),
    FOREIGN KEY (tenant_id, version) REFERENCES tenant_keys (tenant_id, version) ON DELETE CASCADE
);

ALTER TABLE tenants ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenants FORCE ROW LEVEL SECURITY;
CREATE POLICY tenants_isolation ON tenants
    USING (id = current_setting('credvault.tenant_id', true)
           OR current_setting('credvault.scope', true) = 'platform')
    WITH CHECK (id = current_setting('credvault.tenant_id', true)
                OR current_setting('credvault.scope', true) = 'platform');

ALTER TABLE tenant_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenant_keys FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_keys_isolation ON tenant_keys
    USING (tenant_id = current_setting('credvault.tenant_id', true)
           OR current_setting('credvault.scope', true) = 'platform')
    WITH CHECK (tenant_id = current_setting('credvault.tenant_id', true)
                OR current_setting('credvault.scope', true) = 'platform');

ALTER TABLE tenant_key_usage ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenant_key_usage FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_key_usage_isolation ON tenant_key_usage
    USING (tenant_id = current_setting('credvault.tenant_id', true)
           OR current_setting('credvault.scope', true) = 'platform')
    WITH CHECK (tenant_id = current_setting('credvault.tenant_id', true)
                OR current_setting('credvault.scope', true) = 'platform');

GRANT SELECT, INSERT, UPDATE, DELETE ON tenants TO credvault_app;
GRANT SELECT, INSERT, UPDATE ON master_keys TO credvault_app;
GRANT SELECT, INSERT, UPDATE ON tenant_keys TO credvault_app;
GRANT SELECT, INSERT, UPDATE ON tenant_key_usage TO credvault_app;
