-- Revoking a token as a tenant-admin: only auditor and workload tokens of
-- its own tenant (docs/api.md). The role of the target is read and checked
-- in the same statement that revokes it, inside the caller's row-level
-- scope, so a token of another tenant stays "not found" and a peer
-- tenant-admin is "forbidden" without a window in between. NULL roles: any
-- (platform admins). Revoking twice keeps the first time.
CREATE FUNCTION credvault_token_revoke_roles(p_id uuid, p_roles text[])
RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
AS $$
DECLARE
    v_role text;
BEGIN
    SELECT t.role INTO v_role FROM api_tokens t WHERE t.id = p_id FOR UPDATE;
    IF NOT FOUND THEN
        RETURN 'not_found';
    END IF;
    IF p_roles IS NOT NULL AND NOT (v_role = ANY (p_roles)) THEN
        RETURN 'forbidden';
    END IF;
    UPDATE api_tokens SET revoked_at = coalesce(revoked_at, now()) WHERE id = p_id;
    RETURN 'revoked';
END
$$;

DO $$
BEGIN
    EXECUTE format('ALTER FUNCTION credvault_token_revoke_roles(uuid, text[]) SET search_path = pg_catalog, %I, pg_temp',
                   current_schema());
END
$$;
REVOKE ALL ON FUNCTION credvault_token_revoke_roles(uuid, text[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION credvault_token_revoke_roles(uuid, text[]) TO credvault_app;
