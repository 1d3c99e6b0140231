-- API tokens, stored only as SHA-256 hashes. The service role has no
-- privilege on the table at all: it reaches it through three SECURITY
-- DEFINER functions, so it can look a token up by hash but never list or
-- read hashes. Lookup runs before any tenant is known, so that one function
-- (and only it) runs in platform scope; insert and revoke keep the caller's
-- scope, and row-level security still confines them.

CREATE TABLE api_tokens (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id  text REFERENCES tenants (id) ON DELETE CASCADE,
    server_id  text CHECK (octet_length(server_id) BETWEEN 1 AND 128),
    name       text NOT NULL CHECK (octet_length(name) BETWEEN 1 AND 128),
    role       text NOT NULL CHECK (role IN ('admin', 'tenant-admin', 'auditor', 'workload')),
    token_hash bytea NOT NULL CHECK (octet_length(token_hash) = 32),
    created_at timestamptz NOT NULL DEFAULT now(),
    created_by text NOT NULL CHECK (octet_length(created_by) <= 128),
    expires_at timestamptz,
    revoked_at timestamptz,
    CONSTRAINT api_tokens_token_hash_key UNIQUE (token_hash),
    -- platform admins belong to no tenant; everyone else to exactly one
    CONSTRAINT api_tokens_admin_tenant_check CHECK ((role = 'admin') = (tenant_id IS NULL)),
    -- a workload token is bound to one server, and only a workload token is
    CONSTRAINT api_tokens_workload_server_check CHECK ((role = 'workload') = (server_id IS NOT NULL))
);
CREATE INDEX api_tokens_tenant_idx ON api_tokens (tenant_id);

ALTER TABLE api_tokens ENABLE ROW LEVEL SECURITY;
ALTER TABLE api_tokens FORCE ROW LEVEL SECURITY;
CREATE POLICY api_tokens_isolation ON api_tokens
    USING (tenant_id = current_setting('credvault.tenant_id', true)
           OR current_setting('credvault.scope', true) = 'platform')
    WITH CHECK (tenant_id = current_setting('credvault.tenant_id', true)
                OR current_setting('credvault.scope', true) = 'platform');

REVOKE ALL ON api_tokens FROM PUBLIC;

-- One row by hash, across tenants: platform scope for this one query, then
-- the caller's scope again (a function SET clause would be neater, but PG 15
-- lets only a superuser put a custom setting there). An error aborts the
-- (sub)transaction, which undoes the change as well. plpgsql so that the plan
-- is cached per session: this is on every request's path.
CREATE FUNCTION credvault_token_by_hash(p_hash bytea)
RETURNS TABLE (id uuid, tenant_id text, server_id text, name text, role text,
               created_at timestamptz, created_by text, expires_at timestamptz,
               revoked_at timestamptz)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
AS $$
DECLARE
    v_scope text := current_setting('credvault.scope', true);
BEGIN
    IF octet_length(p_hash) IS DISTINCT FROM 32 THEN
        RETURN;
    END IF;
    PERFORM set_config('credvault.scope', 'platform', true);
    RETURN QUERY
        SELECT t.id, t.tenant_id, t.server_id, t.name, t.role, t.created_at,
               t.created_by, t.expires_at, t.revoked_at
        FROM api_tokens t
        WHERE t.token_hash = p_hash;
    PERFORM set_config('credvault.scope', coalesce(v_scope, ''), true);
END
$$;

CREATE FUNCTION credvault_token_insert(p_id uuid, p_tenant_id text, p_server_id text, p_name text,
                                       p_role text, p_hash bytea, p_created_by text,
                                       p_expires_at timestamptz)
RETURNS TABLE (id uuid, created_at timestamptz)
LANGUAGE sql VOLATILE SECURITY DEFINER
AS $$
    INSERT INTO api_tokens AS t (id, tenant_id, server_id, name, role, token_hash, created_by, expires_at)
    VALUES (coalesce(p_id, gen_random_uuid()), p_tenant_id, p_server_id, p_name, p_role, p_hash,
            p_created_by, p_expires_at)
    RETURNING t.id, t.created_at;
$$;

-- Revoking twice keeps the first time. Row-level security (the caller's
-- scope) decides which tokens this can reach.
CREATE FUNCTION credvault_token_revoke(p_id uuid)
RETURNS boolean
LANGUAGE sql VOLATILE SECURITY DEFINER
AS $$
    WITH r AS (
        UPDATE api_tokens SET revoked_at = coalesce(revoked_at, now())
        WHERE id = p_id
        RETURNING 1
    )
    SELECT count(*) > 0 FROM r;
$$;

-- Pin each function's search_path to the schema it was created in, then
-- pg_temp last, so no object of another schema can stand in for ours.
DO $$
DECLARE
    f text;
BEGIN
    FOREACH f IN ARRAY ARRAY['credvault_token_by_hash(bytea)',
                             'credvault_token_insert(uuid, text, text, text, text, bytea, text, timestamptz)',
                             'credvault_token_revoke(uuid)'] LOOP
        EXECUTE format('ALTER FUNCTION %s SET search_path = pg_catalog, %I, pg_temp', f, current_schema());
        EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', f);
        EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO credvault_app', f);
    END LOOP;
END
$$;
