-- New tenant keys are wrapped only under an active master version. An
-- instance that has not yet heard of a master rotation still wraps under
-- the version before it; without this check such a key could be written
-- after the master rewrap counted its rows (or after it ended 'done'), and
-- stay under the old master for good.
--
-- The check locks the master row FOR SHARE, and a rotation retires the
-- older versions with an UPDATE of that row, so the two serialise: a key
-- that commits first is counted by the rewrap the rotation starts (its
-- count runs after the retirement waited for the key), and a key that comes
-- second finds the version retired and fails with 23503, on which the
-- service re-reads the newest master version and wraps again.

CREATE FUNCTION credvault_tenant_key_master_check() RETURNS trigger
LANGUAGE plpgsql
AS $$
DECLARE
    v_state text;
BEGIN
    SELECT m.state INTO v_state FROM master_keys m WHERE m.version = NEW.master_version FOR SHARE;
    -- a missing version is the foreign key's to report
    IF v_state IS NOT NULL AND v_state <> 'active' AND NEW.state <> 'destroyed' THEN
        RAISE EXCEPTION 'master key version % is %: new tenant keys are wrapped under the newest',
            NEW.master_version, v_state
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER tenant_keys_master_check
    BEFORE INSERT ON tenant_keys
    FOR EACH ROW EXECUTE FUNCTION credvault_tenant_key_master_check();

DO $$
BEGIN
    EXECUTE format('ALTER FUNCTION credvault_tenant_key_master_check() SET search_path = pg_catalog, %I, pg_temp',
                   current_schema());
END
$$;
