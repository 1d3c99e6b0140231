-- Audit chains per writer. Until now every event of a tenant was appended
-- to one chain under its head's row lock, and the database computed the
-- hash: all requests of a tenant waited on one row, and each paid for the
-- hash in SQL. From here on a chain is one per (tenant or '_platform',
-- writer slot), named '<tenant>:<k>' or '_platform:<k>'. A slot k is a
-- session-level advisory lock (class 1668702551, "cvaW", key k) that one
-- database connection of the service claims, the lowest free one, on its
-- first append, and that ends with the session: slot numbers are reused
-- after restarts, so the number of chains follows the number of connections
-- that ever wrote at once, not the number of restarts.
--
-- Only the holder of a slot appends to its chains, so the service keeps
-- each chain's head in memory and computes the hash itself (the canonical
-- bytes of 0010 / 0016, unchanged). credvault_audit_append_batch() still
-- guards the trail: the caller must hold the slot, the batch must continue
-- the head (its first seq the head's seq + 1, its first prev the head's
-- hash; each later event's prev is the hash before it, set here), and the
-- head moves with it. It does not recompute hashes: `credvault audit
-- verify` does, and the HSM anchor (0016) still makes an SQL-made event
-- fail there.
--
-- The chains named by the bare tenant id ('acme', '_platform') stay as
-- they are: valid history, verified, exported and checkpointed like the
-- others; nothing appends to them any more.

CREATE FUNCTION credvault_audit_chain_of(p_chain text, p_tenant_id text)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT p_chain = coalesce(p_tenant_id, '_platform')
        OR coalesce(p_chain ~ '^(_platform|[a-z0-9][a-z0-9-]{0,63}):[1-9][0-9]{0,8}$'
                    AND split_part(p_chain, ':', 1) = coalesce(p_tenant_id, '_platform'), false);
$$;

-- every check that ties a chain's name to its tenant gives way to one
DO $$
DECLARE
    r record;
BEGIN
    FOR r IN SELECT c.conrelid::regclass AS t, c.conname FROM pg_constraint c
              WHERE c.contype = 'c'
                AND c.conrelid IN ('audit_events'::regclass, 'audit_heads'::regclass,
                                   'audit_checkpoint_heads'::regclass)
                AND pg_get_constraintdef(c.oid) ~ '\mchain\M' LOOP
        EXECUTE format('ALTER TABLE %s DROP CONSTRAINT %I', r.t, r.conname);
    END LOOP;
END
$$;
ALTER TABLE audit_events ADD CONSTRAINT audit_events_chain_check CHECK (credvault_audit_chain_of(chain, tenant_id));
ALTER TABLE audit_heads ADD CONSTRAINT audit_heads_chain_check CHECK (credvault_audit_chain_of(chain, tenant_id));
ALTER TABLE audit_checkpoint_heads ADD CONSTRAINT audit_checkpoint_heads_chain_check
    CHECK (credvault_audit_chain_of(chain, tenant_id));

-- the chains of one tenant, for verify and export
CREATE INDEX audit_heads_tenant_idx ON audit_heads (tenant_id);

-- Claims the lowest free writer slot for this session (held until the
-- session ends; claiming again returns the slot already held).
CREATE FUNCTION credvault_audit_claim_slot()
RETURNS integer
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    k integer;
BEGIN
    SELECT l.objid::integer INTO k FROM pg_catalog.pg_locks l
     WHERE l.locktype = 'advisory' AND l.pid = pg_backend_pid() AND l.classid = 1668702551 AND l.objsubid = 2
       AND l.granted ORDER BY l.objid LIMIT 1;
    IF FOUND THEN
        RETURN k;
    END IF;
    FOR k IN 1..100000 LOOP
        IF pg_try_advisory_lock(1668702551, k) THEN
            RETURN k;
        END IF;
    END LOOP;
    RAISE EXCEPTION 'no free audit writer slot' USING ERRCODE = '53000';
END
$$;

-- Appends events to one writer chain: all of them the same tenant's (NULL:
-- the platform's), in order, the first at p_seq after p_prev. p_durable and
-- p_after_change as for credvault_audit_append() (0010). Returns the new
-- head's seq, or no row when p_after_change found nothing changed.
CREATE FUNCTION credvault_audit_append_batch(p_chain text, p_tenant_id text, p_durable boolean,
                                             p_after_change boolean, p_seq bigint, p_prev bytea,
                                             p_at timestamptz[], p_actor text[], p_role text[], p_action text[],
                                             p_target text[], p_outcome text[], p_request_id text[],
                                             p_detail text[], p_mac bytea[], p_hash bytea[])
RETURNS TABLE (head_seq bigint)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
AS $$
DECLARE
    v_n integer := coalesce(cardinality(p_hash), 0);
    v_slot integer;
    v_seq bigint;
    v_prev bytea;
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
    IF v_n < 1 OR v_n > 1000 OR coalesce(cardinality(p_at), 0) <> v_n OR coalesce(cardinality(p_actor), 0) <> v_n
       OR coalesce(cardinality(p_role), 0) <> v_n OR coalesce(cardinality(p_action), 0) <> v_n
       OR coalesce(cardinality(p_target), 0) <> v_n OR coalesce(cardinality(p_outcome), 0) <> v_n
       OR coalesce(cardinality(p_request_id), 0) <> v_n OR coalesce(cardinality(p_detail), 0) <> v_n
       OR coalesce(cardinality(p_mac), 0) <> v_n THEN
        RAISE EXCEPTION 'an audit batch needs 1 to 1000 events and one value of each field per event'
            USING ERRCODE = '22023';
    END IF;
    IF NOT credvault_audit_chain_of(p_chain, p_tenant_id) OR p_chain NOT LIKE '%:%' THEN
        RAISE EXCEPTION 'audit chain % is not a writer chain of this tenant', p_chain USING ERRCODE = '22023';
    END IF;
    v_slot := split_part(p_chain, ':', 2)::integer;
    -- true when this session holds the slot (or it is free and now held
    -- until commit); false when another session holds it
    IF NOT pg_try_advisory_xact_lock(1668702551, v_slot) THEN
        RAISE EXCEPTION 'audit writer slot % is held by another session', v_slot USING ERRCODE = '42501';
    END IF;
    IF NOT p_durable THEN
        PERFORM set_config('synchronous_commit', 'off', true);
    END IF;
    SELECT h.seq, h.hash INTO v_seq, v_prev FROM audit_heads h WHERE h.chain = p_chain FOR UPDATE;
    IF NOT FOUND THEN
        v_seq := 0;
        v_prev := decode(repeat('00', 32), 'hex');
        INSERT INTO audit_heads AS h (chain, tenant_id, seq, hash) VALUES (p_chain, p_tenant_id, 0, v_prev);
    END IF;
    IF p_seq IS DISTINCT FROM v_seq + 1 OR p_prev IS DISTINCT FROM v_prev THEN
        RAISE EXCEPTION 'audit batch does not continue chain % at event %', p_chain, v_seq + 1
            USING ERRCODE = '40001';
    END IF;
    INSERT INTO audit_events AS e (at, tenant_id, actor, role, action, target, outcome, request_id, detail_text,
                                   chain, seq, prev_hash, hash, mac)
    SELECT x.at, p_tenant_id, x.actor, x.role, x.action, x.target, x.outcome, x.request_id, x.detail, p_chain,
           v_seq + x.i, CASE WHEN x.i = 1 THEN v_prev ELSE p_hash[x.i - 1] END, x.hash, x.mac
      FROM unnest(p_at, p_actor, p_role, p_action, p_target, p_outcome, p_request_id, p_detail, p_mac, p_hash)
           WITH ORDINALITY AS x (at, actor, role, action, target, outcome, request_id, detail, mac, hash, i)
     ORDER BY x.i;
    UPDATE audit_heads AS h SET seq = v_seq + v_n, hash = p_hash[v_n], updated_at = p_at[v_n]
     WHERE h.chain = p_chain;
    RETURN QUERY SELECT v_seq + v_n;
END
$$;

DO $$
BEGIN
    EXECUTE format('ALTER FUNCTION credvault_audit_append_batch(text, text, boolean, boolean, bigint, bytea, '
                   'timestamptz[], text[], text[], text[], text[], text[], text[], text[], bytea[], bytea[]) '
                   'SET search_path = pg_catalog, %I, pg_temp', current_schema());
    EXECUTE format('ALTER FUNCTION credvault_audit_claim_slot() SET search_path = pg_catalog, %I, pg_temp',
                   current_schema());
    REVOKE ALL ON FUNCTION credvault_audit_append_batch(text, text, boolean, boolean, bigint, bytea, timestamptz[],
                                                        text[], text[], text[], text[], text[], text[], text[],
                                                        bytea[], bytea[]) FROM PUBLIC;
    REVOKE ALL ON FUNCTION credvault_audit_claim_slot() FROM PUBLIC;
END
$$;
GRANT EXECUTE ON FUNCTION credvault_audit_append_batch(text, text, boolean, boolean, bigint, bytea, timestamptz[],
                                                       text[], text[], text[], text[], text[], text[], text[],
                                                       bytea[], bytea[]) TO credvault_app;
GRANT EXECUTE ON FUNCTION credvault_audit_claim_slot() TO credvault_app;
