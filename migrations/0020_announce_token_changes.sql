-- Token changes, for the other instances' token caches (issue #8). Each
-- instance remembers verified tokens for a few seconds; any change to
-- api_tokens rows (a revocation, a tenant's tokens deleted with it, or an
-- edit made outside the service) inserts one 'tokens_changed' key event and
-- sends NOTIFY credvault_keys in the changing transaction itself, whichever
-- statement made it. A listening instance then forgets its cached tokens
-- within moments of the commit; one that was not listening catches up from
-- the table before it serves from its cache again. The event names no token:
-- caches are cleared whole. One event per statement, and none for a
-- statement that changed no row (a revocation of an unknown token).

ALTER TABLE key_events DROP CONSTRAINT key_events_kind_check;
ALTER TABLE key_events ADD CONSTRAINT key_events_kind_check
    CHECK (kind IN ('master_rotated', 'master_retired', 'tenant_key_rotated', 'tenant_keys_retired',
                    'tenant_keys_destroyed', 'tenant_shredded', 'job_started', 'tokens_changed'));

-- Runs in the changing statement's row-level scope: a tenant-admin's
-- revocation is its tenant's event, a platform admin's a platform event.
CREATE FUNCTION credvault_tokens_changed_event() RETURNS trigger
LANGUAGE plpgsql
AS $$
DECLARE
    v_tenant text;
    v_id bigint;
BEGIN
    IF TG_OP = 'DELETE' THEN
        SELECT o.tenant_id INTO v_tenant FROM changed_old o LIMIT 1;
    ELSE
        SELECT n.tenant_id INTO v_tenant FROM changed_new n LIMIT 1;
    END IF;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    INSERT INTO key_events (kind, tenant_id) VALUES ('tokens_changed', v_tenant) RETURNING id INTO v_id;
    PERFORM pg_notify('credvault_keys', v_id::text);
    RETURN NULL;
END
$$;

CREATE TRIGGER api_tokens_updated_event
    AFTER UPDATE ON api_tokens REFERENCING NEW TABLE AS changed_new
    FOR EACH STATEMENT EXECUTE FUNCTION credvault_tokens_changed_event();
CREATE TRIGGER api_tokens_deleted_event
    AFTER DELETE ON api_tokens REFERENCING OLD TABLE AS changed_old
    FOR EACH STATEMENT EXECUTE FUNCTION credvault_tokens_changed_event();

DO $$
BEGIN
    EXECUTE format('ALTER FUNCTION credvault_tokens_changed_event() SET search_path = pg_catalog, %I, pg_temp',
                   current_schema());
END
$$;
