-- Tokens bound by the HSM. A row's verifier is an HMAC, made by the token's
-- binding key, over the token's SHA-256 and everything that gives it power
-- (id, role, tenant, server, expiry): someone who can write the table (or
-- call credvault_token_insert) but not use the HSM key cannot make a row that
-- authenticates. The service checks the verifier on every lookup.
--
-- Rows minted before this migration have no verifier. They are bound once,
-- by the first `credvault` command that opens the HSM after it, while the
-- pending row below exists; the bind removes it in the transaction that
-- writes the verifiers, so a row with no verifier inserted later never gets
-- one and never authenticates.

ALTER TABLE api_tokens ADD COLUMN verifier bytea CHECK (octet_length(verifier) = 32);

-- Names are printable and unique per tenant and role. Earlier duplicates keep
-- working under a name made unique with the start of their id (the first
-- minted keeps its name); earlier names with control characters stay as they
-- are (NOT VALID: the check binds new rows only).
UPDATE api_tokens t SET name = left(t.name, 117) || ' (' || left(t.id::text, 8) || ')'
WHERE EXISTS (SELECT 1 FROM api_tokens o
              WHERE o.role = t.role AND o.tenant_id IS NOT DISTINCT FROM t.tenant_id AND o.name = t.name
                AND (o.created_at, o.id::text) < (t.created_at, t.id::text));
CREATE UNIQUE INDEX api_tokens_name_key ON api_tokens (coalesce(tenant_id, ''), role, name);
ALTER TABLE api_tokens ADD CONSTRAINT api_tokens_name_printable_check
    CHECK (name !~ '[[:cntrl:]]') NOT VALID;

CREATE TABLE api_tokens_bind_pending (
    pending boolean PRIMARY KEY DEFAULT true CHECK (pending)
);
INSERT INTO api_tokens_bind_pending VALUES (true);
REVOKE ALL ON api_tokens_bind_pending FROM PUBLIC;

DROP FUNCTION credvault_token_by_hash(bytea);
DROP FUNCTION credvault_token_insert(uuid, text, text, text, text, bytea, text, timestamptz);

-- As in 0004, with the verifier (NULL for a row never bound).
CREATE FUNCTION credvault_token_by_hash(p_hash bytea)
RETURNS TABLE (id uuid, tenant_id text, server_id text, name text, role text,
               created_at timestamptz, created_by text, expires_at timestamptz,
               revoked_at timestamptz, verifier bytea)
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
               t.created_by, t.expires_at, t.revoked_at, t.verifier
        FROM api_tokens t
        WHERE t.token_hash = p_hash;
    PERFORM set_config('credvault.scope', coalesce(v_scope, ''), true);
END
$$;

-- The id is the caller's: the verifier covers it.
CREATE FUNCTION credvault_token_insert(p_id uuid, p_tenant_id text, p_server_id text, p_name text,
                                       p_role text, p_hash bytea, p_created_by text,
                                       p_expires_at timestamptz, p_verifier bytea)
RETURNS TABLE (id uuid, created_at timestamptz)
LANGUAGE sql VOLATILE SECURITY DEFINER
AS $$
    INSERT INTO api_tokens AS t (id, tenant_id, server_id, name, role, token_hash, created_by, expires_at,
                                 verifier)
    VALUES (p_id, p_tenant_id, p_server_id, p_name, p_role, p_hash, p_created_by, p_expires_at, p_verifier)
    RETURNING t.id, t.created_at;
$$;

-- The rows to bind, only while the bind is pending: what each verifier
-- covers. Platform scope for the read, then the caller's again.
CREATE FUNCTION credvault_token_bind_pending()
RETURNS TABLE (id uuid, tenant_id text, server_id text, role text, expires_at timestamptz, token_hash bytea)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
AS $$
DECLARE
    v_scope text := current_setting('credvault.scope', true);
BEGIN
    IF NOT EXISTS (SELECT 1 FROM api_tokens_bind_pending) THEN
        RETURN;
    END IF;
    PERFORM set_config('credvault.scope', 'platform', true);
    RETURN QUERY
        SELECT t.id, t.tenant_id, t.server_id, t.role, t.expires_at, t.token_hash
        FROM api_tokens t
        WHERE t.verifier IS NULL
        ORDER BY t.id;
    PERFORM set_config('credvault.scope', coalesce(v_scope, ''), true);
END
$$;

-- Writes the verifiers and ends the pending state, once: a second caller (or
-- one after the end) changes nothing and gets -1. Otherwise the number bound.
CREATE FUNCTION credvault_token_bind_finish(p_ids uuid[], p_verifiers bytea[])
RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
AS $$
DECLARE
    v_scope text := current_setting('credvault.scope', true);
    v_n integer;
BEGIN
    DELETE FROM api_tokens_bind_pending;
    IF NOT FOUND THEN
        RETURN -1;
    END IF;
    PERFORM set_config('credvault.scope', 'platform', true);
    UPDATE api_tokens t SET verifier = v.verifier
    FROM unnest(p_ids, p_verifiers) AS v (id, verifier)
    WHERE t.id = v.id AND t.verifier IS NULL;
    GET DIAGNOSTICS v_n = ROW_COUNT;
    PERFORM set_config('credvault.scope', coalesce(v_scope, ''), true);
    RETURN v_n;
END
$$;

DO $$
DECLARE
    f text;
BEGIN
    FOREACH f IN ARRAY ARRAY['credvault_token_by_hash(bytea)',
                             'credvault_token_insert(uuid, text, text, text, text, bytea, text, timestamptz, bytea)',
                             'credvault_token_bind_pending()',
                             'credvault_token_bind_finish(uuid[], bytea[])'] LOOP
        EXECUTE format('ALTER FUNCTION %s SET search_path = pg_catalog, %I, pg_temp', f, current_schema());
        EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', f);
        EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO credvault_app', f);
    END LOOP;
END
$$;
