-- The audit trail becomes tamper-evident: every event carries its chain (the
-- tenant, or '_platform' for platform events), its sequence number in that
-- chain, the hash of the event before it and its own hash, computed by the
-- database in the statement that appends it while the chain's head row is
-- locked, so the order is the commit order and no two events share a place.
--
-- The hash is SHA-256 over a canonical text (docs/operations.md, "Audit
-- trail"): one line per field, `name:<byte length>:<value>`, so no value can
-- pass for another field whatever bytes it holds. The same bytes are written
-- by `credvault audit export`, and `openssl dgst -sha256` reproduces the hash.
--
-- The service role loses INSERT on audit_events: it appends only through
-- credvault_audit_append(), which cannot skip the chain. Nobody may update,
-- delete or truncate events (a trigger, which binds the owner too); an
-- attacker with superuser rights can still edit them, and `credvault audit
-- verify` then names the first broken link.

DO $$
BEGIN
    IF current_setting('server_encoding') <> 'UTF8' THEN
        RAISE EXCEPTION 'the audit chain hashes UTF-8 text: the database must use the UTF8 encoding';
    END IF;
END
$$;

-- The detail is hashed as the exact JSON text that was written (jsonb would
-- re-serialise it, and the hash must be reproducible byte for byte): it is
-- kept in detail_text, and detail stays a jsonb column, generated from it,
-- for the queries that read it.
ALTER TABLE audit_events DROP CONSTRAINT audit_events_detail_check;
ALTER TABLE audit_events RENAME COLUMN detail TO detail_text;
ALTER TABLE audit_events ALTER COLUMN detail_text TYPE text USING detail_text::text;
ALTER TABLE audit_events ADD CONSTRAINT audit_events_detail_check
    CHECK (detail_text IS NULL
           OR (octet_length(detail_text) <= 16384 AND jsonb_typeof(detail_text::jsonb) = 'object'));
ALTER TABLE audit_events ADD COLUMN detail jsonb GENERATED ALWAYS AS (detail_text::jsonb) STORED;

ALTER TABLE audit_events
    ADD COLUMN chain text,
    ADD COLUMN seq bigint,
    ADD COLUMN prev_hash bytea,
    ADD COLUMN hash bytea;

-- One row per chain: its last sequence number and hash. The row lock taken
-- by credvault_audit_append() is what orders a chain.
CREATE TABLE audit_heads (
    chain      text PRIMARY KEY CHECK (chain = '_platform' OR chain ~ '^[a-z0-9][a-z0-9-]{0,63}$'),
    tenant_id  text CHECK (tenant_id IS NULL OR tenant_id = chain),
    seq        bigint NOT NULL CHECK (seq >= 0),
    hash       bytea NOT NULL CHECK (octet_length(hash) = 32),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT audit_heads_platform_check CHECK ((chain = '_platform') = (tenant_id IS NULL))
);

ALTER TABLE audit_heads ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit_heads FORCE ROW LEVEL SECURITY;
CREATE POLICY audit_heads_isolation ON audit_heads
    USING (tenant_id = current_setting('credvault.tenant_id', true)
           OR current_setting('credvault.scope', true) = 'platform')
    WITH CHECK (tenant_id = current_setting('credvault.tenant_id', true)
                OR current_setting('credvault.scope', true) = 'platform');

-- The canonical bytes of one event (version 1). src/domain/audit_chain.c
-- writes exactly the same bytes; a change here is a new version there. One
-- expression, no helper function: the planner inlines it into the caller
-- (a helper called twelve times per event cost a third of a millisecond).
CREATE FUNCTION credvault_audit_canon(p_chain text, p_seq bigint, p_prev bytea, p_at timestamptz,
                                      p_tenant_id text, p_actor text, p_role text, p_action text,
                                      p_target text, p_outcome text, p_request_id text, p_detail text)
RETURNS bytea
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT convert_to('credvault.audit.event.v1' || chr(10)
        || 'chain:' || octet_length(p_chain) || ':' || p_chain || chr(10)
        || 'seq:' || octet_length(p_seq::text) || ':' || p_seq::text || chr(10)
        || 'prev:64:' || encode(p_prev, 'hex') || chr(10)
        || 'at:27:' || to_char(p_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') || chr(10)
        || 'tenant:' || octet_length(coalesce(p_tenant_id, '')) || ':' || coalesce(p_tenant_id, '') || chr(10)
        || 'actor:' || octet_length(coalesce(p_actor, '')) || ':' || coalesce(p_actor, '') || chr(10)
        || 'role:' || octet_length(coalesce(p_role, '')) || ':' || coalesce(p_role, '') || chr(10)
        || 'action:' || octet_length(coalesce(p_action, '')) || ':' || coalesce(p_action, '') || chr(10)
        || 'target:' || octet_length(coalesce(p_target, '')) || ':' || coalesce(p_target, '') || chr(10)
        || 'outcome:' || octet_length(coalesce(p_outcome, '')) || ':' || coalesce(p_outcome, '') || chr(10)
        || 'request_id:' || octet_length(coalesce(p_request_id, '')) || ':' || coalesce(p_request_id, '')
        || chr(10)
        || 'detail:' || octet_length(coalesce(p_detail, '')) || ':' || coalesce(p_detail, '') || chr(10),
        'UTF8');
$$;

-- Chain the events written before this migration, in the order they were
-- written, so the trail is whole from its first event.
DO $$
DECLARE
    r record;
    v_chain text;
    v_seq bigint;
    v_prev bytea;
    v_hash bytea;
BEGIN
    FOR r IN SELECT * FROM audit_events ORDER BY id LOOP
        v_chain := coalesce(r.tenant_id, '_platform');
        SELECT h.seq, h.hash INTO v_seq, v_prev FROM audit_heads h WHERE h.chain = v_chain;
        IF NOT FOUND THEN
            v_seq := 0;
            v_prev := decode(repeat('00', 32), 'hex');
            INSERT INTO audit_heads (chain, tenant_id, seq, hash) VALUES (v_chain, r.tenant_id, 0, v_prev);
        END IF;
        v_seq := v_seq + 1;
        v_hash := sha256(credvault_audit_canon(v_chain, v_seq, v_prev, r.at, r.tenant_id, r.actor, r.role,
                                               r.action, r.target, r.outcome, r.request_id, r.detail_text));
        UPDATE audit_events SET chain = v_chain, seq = v_seq, prev_hash = v_prev, hash = v_hash WHERE id = r.id;
        UPDATE audit_heads SET seq = v_seq, hash = v_hash, updated_at = r.at WHERE chain = v_chain;
    END LOOP;
END
$$;

ALTER TABLE audit_events
    ALTER COLUMN chain SET NOT NULL,
    ALTER COLUMN seq SET NOT NULL,
    ALTER COLUMN prev_hash SET NOT NULL,
    ALTER COLUMN hash SET NOT NULL,
    ADD CONSTRAINT audit_events_chain_check CHECK (chain = coalesce(tenant_id, '_platform')),
    ADD CONSTRAINT audit_events_seq_check CHECK (seq >= 1),
    ADD CONSTRAINT audit_events_hash_check CHECK (octet_length(hash) = 32 AND octet_length(prev_hash) = 32),
    ADD CONSTRAINT audit_events_chain_seq_key UNIQUE (chain, seq);
-- GET /api/audit pages a tenant's events newest first
CREATE INDEX audit_events_tenant_id_idx ON audit_events (tenant_id, id);

-- Appends one event to its chain and returns its place. Runs as the owner
-- (the service role cannot insert into audit_events itself) but keeps the
-- caller's scope, so row-level security still confines a tenant-scoped
-- caller to its own chain. p_durable = false lets a transaction that changes
-- nothing else commit without waiting for the WAL flush (docs/operations.md).
-- p_after_change = true is for an event sent in the transaction of the
-- change it records, after the change's statements: when they changed no
-- row (the server was not there, the revision had moved), the event is not
-- written and no row is returned, so no event ever claims a change that did
-- not happen. The store notes the backend's count of changed rows
-- (pg_stat_xact_user_tables, track_counts: on by default, `serve` checks it)
-- in credvault.audit_base before the change; a count that did not grow
-- since means nothing changed. Without the note, no event is written.
CREATE FUNCTION credvault_audit_append(p_tenant_id text, p_actor text, p_role text, p_action text,
                                       p_target text, p_outcome text, p_request_id text, p_detail text,
                                       p_durable boolean, p_after_change boolean)
RETURNS TABLE (event_id bigint, event_chain text, event_seq bigint, event_hash bytea)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
AS $$
DECLARE
    v_chain text := coalesce(p_tenant_id, '_platform');
    v_seq bigint;
    v_prev bytea;
    v_at timestamptz;
    v_hash bytea;
    v_id bigint;
    v_base numeric;
    v_changed numeric;
BEGIN
    IF p_after_change THEN
        v_base := nullif(current_setting('credvault.audit_base', true), '')::numeric;
        SELECT coalesce(sum(t.n_tup_ins + t.n_tup_upd + t.n_tup_del), 0) INTO v_changed
            FROM pg_stat_xact_user_tables t;
        IF v_base IS NULL OR v_changed <= v_base THEN
            RETURN;
        END IF;
    END IF;
    IF NOT p_durable THEN
        PERFORM set_config('synchronous_commit', 'off', true);
    END IF;
    SELECT h.seq, h.hash INTO v_seq, v_prev FROM audit_heads h WHERE h.chain = v_chain FOR UPDATE;
    IF NOT FOUND THEN
        INSERT INTO audit_heads AS h (chain, tenant_id, seq, hash)
        VALUES (v_chain, p_tenant_id, 0, decode(repeat('00', 32), 'hex'))
        ON CONFLICT (chain) DO NOTHING;
        SELECT h.seq, h.hash INTO v_seq, v_prev FROM audit_heads h WHERE h.chain = v_chain FOR UPDATE;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'audit chain % is not visible in this scope', v_chain USING ERRCODE = '42501';
        END IF;
    END IF;
    -- after the lock: times follow the chain's order
    v_at := clock_timestamp();
    v_seq := v_seq + 1;
    v_hash := sha256(credvault_audit_canon(v_chain, v_seq, v_prev, v_at, p_tenant_id, p_actor, p_role,
                                           p_action, p_target, p_outcome, p_request_id, p_detail));
    INSERT INTO audit_events AS e (at, tenant_id, actor, role, action, target, outcome, request_id, detail_text,
                                   chain, seq, prev_hash, hash)
    VALUES (v_at, p_tenant_id, p_actor, p_role, p_action, p_target, p_outcome, p_request_id, p_detail,
            v_chain, v_seq, v_prev, v_hash)
    RETURNING e.id INTO v_id;
    UPDATE audit_heads AS h SET seq = v_seq, hash = v_hash, updated_at = v_at WHERE h.chain = v_chain;
    RETURN QUERY SELECT v_id, v_chain, v_seq, v_hash;
END
$$;

CREATE FUNCTION credvault_audit_append_only()
RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME USING ERRCODE = '42501';
END
$$;
CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION credvault_audit_append_only();
CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION credvault_audit_append_only();

REVOKE INSERT ON audit_events FROM credvault_app;
REVOKE USAGE ON SEQUENCE audit_events_id_seq FROM credvault_app;
GRANT SELECT ON audit_heads TO credvault_app;

DO $$
DECLARE
    f text;
BEGIN
    -- the canonical encoding refers to built-in functions only and runs with
    -- its caller's rights: no pinned search_path, so that it can be inlined
    FOREACH f IN ARRAY ARRAY['credvault_audit_append(text, text, text, text, text, text, text, text, boolean, boolean)',
                             'credvault_audit_append_only()'] LOOP
        EXECUTE format('ALTER FUNCTION %s SET search_path = pg_catalog, %I, pg_temp', f, current_schema());
        EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', f);
    END LOOP;
    REVOKE ALL ON FUNCTION credvault_audit_canon(text, bigint, bytea, timestamptz, text, text, text, text, text,
                                                 text, text, text) FROM PUBLIC;
END
$$;
GRANT EXECUTE ON FUNCTION credvault_audit_append(text, text, text, text, text, text, text, text, boolean, boolean)
    TO credvault_app;
