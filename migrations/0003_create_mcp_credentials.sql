-- GigaChad GRC's mcp_credentials columns, plus what a key service needs:
-- the tenant, the key version that sealed encrypted_env, the credential
-- names (not secret: validation needs no decryption), an optional expiry and
-- a revision for optimistic concurrency. encrypted_env is ciphertext only.

CREATE TABLE mcp_credentials (
    id                      text PRIMARY KEY DEFAULT gen_random_uuid()::text,
    tenant_id               text NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    server_id               text NOT NULL CHECK (octet_length(server_id) BETWEEN 1 AND 128),
    template_id             text NOT NULL CHECK (octet_length(template_id) BETWEEN 1 AND 64),
    server_name             text NOT NULL CHECK (octet_length(server_name) <= 256),
    encrypted_env           text NOT NULL,
    configured_integrations jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(configured_integrations) = 'array'),
    credential_names        jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(credential_names) = 'array'),
    key_version             integer NOT NULL,
    expires_at              timestamptz,
    created_at              timestamptz NOT NULL DEFAULT now(),
    created_by              text NOT NULL CHECK (octet_length(created_by) <= 128),
    last_updated            timestamptz NOT NULL DEFAULT now(),
    updated_by              text NOT NULL CHECK (octet_length(updated_by) <= 128),
    revision                bigint NOT NULL DEFAULT 1 CHECK (revision >= 1),
    CONSTRAINT mcp_credentials_tenant_server_key UNIQUE (tenant_id, server_id),
    -- No cascade here: a key version that records still use cannot be
    -- deleted (it is destroyed by clearing its wrapped bytes instead); deleting
    -- the tenant removes both through their tenant_id cascades.
    CONSTRAINT mcp_credentials_key_fkey FOREIGN KEY (tenant_id, key_version)
        REFERENCES tenant_keys (tenant_id, version)
);
-- Listing, newest first; and finding the records of one key version (rewrap).
CREATE INDEX mcp_credentials_list_idx ON mcp_credentials (tenant_id, created_at DESC, server_id DESC);
CREATE INDEX mcp_credentials_key_idx ON mcp_credentials (tenant_id, key_version);

ALTER TABLE mcp_credentials ENABLE ROW LEVEL SECURITY;
ALTER TABLE mcp_credentials FORCE ROW LEVEL SECURITY;
CREATE POLICY mcp_credentials_isolation ON mcp_credentials
    USING (tenant_id = current_setting('credvault.tenant_id', true)
           OR current_setting('credvault.scope', true) = 'platform')
    WITH CHECK (tenant_id = current_setting('credvault.tenant_id', true)
                OR current_setting('credvault.scope', true) = 'platform');

GRANT SELECT, INSERT, UPDATE, DELETE ON mcp_credentials TO credvault_app;
