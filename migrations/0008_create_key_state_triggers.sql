-- Key-state invariants kept by the database itself (issue 4), so that
-- neither a bug in the service nor a hand-made UPDATE can break them:
--
-- 1. tenants.min_decrypt_version only grows, never past the tenant's newest
--    key version, and every key version below it is 'retired' (refuses to
--    decrypt) unless already 'destroyed'. The service reads the key's state
--    on every decrypt, so the minimum costs no extra query there.
-- 2. A record is never written under a key version that is not 'active'.
--    The check locks the key row FOR KEY SHARE (the foreign key check takes
--    the same lock), and retiring or destroying a version first locks its row
--    FOR UPDATE: a write racing the retirement either commits before it, and
--    the retirement then counts the record and refuses, or waits and fails
--    here with 40001 (the client retries and gets the newest key). So "no
--    record uses this version" stays true once checked, and destroying the
--    version cannot lose a record.

CREATE FUNCTION credvault_min_decrypt_version_check() RETURNS trigger
LANGUAGE plpgsql
AS $$
DECLARE
    v_newest integer;
BEGIN
    IF NEW.min_decrypt_version < OLD.min_decrypt_version THEN
        RAISE EXCEPTION 'min_decrypt_version of tenant % cannot decrease (% to %)',
            NEW.id, OLD.min_decrypt_version, NEW.min_decrypt_version
            USING ERRCODE = 'check_violation';
    END IF;
    SELECT max(k.version) INTO v_newest FROM tenant_keys k WHERE k.tenant_id = NEW.id;
    IF v_newest IS NULL OR NEW.min_decrypt_version > v_newest THEN
        RAISE EXCEPTION 'min_decrypt_version % of tenant % is above its newest key version',
            NEW.min_decrypt_version, NEW.id
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END
$$;

CREATE FUNCTION credvault_min_decrypt_version_apply() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    UPDATE tenant_keys SET state = 'retired'
    WHERE tenant_id = NEW.id AND version < NEW.min_decrypt_version AND state = 'active';
    RETURN NULL;
END
$$;

CREATE TRIGGER tenants_min_decrypt_version_check
    BEFORE UPDATE OF min_decrypt_version ON tenants
    FOR EACH ROW WHEN (NEW.min_decrypt_version IS DISTINCT FROM OLD.min_decrypt_version)
    EXECUTE FUNCTION credvault_min_decrypt_version_check();
CREATE TRIGGER tenants_min_decrypt_version_apply
    AFTER UPDATE OF min_decrypt_version ON tenants
    FOR EACH ROW WHEN (NEW.min_decrypt_version IS DISTINCT FROM OLD.min_decrypt_version)
    EXECUTE FUNCTION credvault_min_decrypt_version_apply();

CREATE FUNCTION credvault_record_key_check() RETURNS trigger
LANGUAGE plpgsql
AS $$
DECLARE
    v_state text;
BEGIN
    SELECT k.state INTO v_state FROM tenant_keys k
    WHERE k.tenant_id = NEW.tenant_id AND k.version = NEW.key_version
    FOR KEY SHARE;
    -- a missing version is the foreign key's to report ("tenant key not found")
    IF v_state IS NOT NULL AND v_state <> 'active' THEN
        RAISE EXCEPTION 'key version % of tenant % is %: records are written under active versions only',
            NEW.key_version, NEW.tenant_id, v_state
            USING ERRCODE = 'serialization_failure';
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER mcp_credentials_key_check
    BEFORE INSERT OR UPDATE OF key_version, encrypted_env ON mcp_credentials
    FOR EACH ROW EXECUTE FUNCTION credvault_record_key_check();

-- Same pinning as the token functions (0004): our schema, then pg_temp last.
-- (Trigger functions cannot be called directly, so EXECUTE stays as it is.)
DO $$
DECLARE
    f text;
BEGIN
    FOREACH f IN ARRAY ARRAY['credvault_min_decrypt_version_check()',
                             'credvault_min_decrypt_version_apply()',
                             'credvault_record_key_check()'] LOOP
        EXECUTE format('ALTER FUNCTION %s SET search_path = pg_catalog, %I, pg_temp', f, current_schema());
    END LOOP;
END
$$;
