-- Every audit event anchored by the HSM as it is appended. The service
-- computes `mac`, an HMAC by the token's binding key over the event's chain
-- and content (src/domain/audit_anchor.c), and passes it to
-- credvault_audit_append(); the event's hash then covers the mac too (event
-- format v2: the v1 lines, then `mac:64:<hex>`). Rewriting an event and
-- recomputing its hash with SQL alone leaves a mac that does not match, and
-- removing or replacing the mac changes the hash, which the next event and
-- every later checkpoint name. Events written before this migration keep
-- format v1 (no mac).

ALTER TABLE audit_events ADD COLUMN mac bytea CHECK (octet_length(mac) = 32);

-- Format v2: the v1 text with its first line swapped and the mac appended.
CREATE FUNCTION credvault_audit_canon2(p_chain text, p_seq bigint, p_prev bytea, p_at timestamptz,
                                       p_tenant_id text, p_actor text, p_role text, p_action text,
                                       p_target text, p_outcome text, p_request_id text, p_detail text,
                                       p_mac bytea)
RETURNS bytea
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT convert_to('credvault.audit.event.v2' || chr(10), 'UTF8')
        || substring(credvault_audit_canon(p_chain, p_seq, p_prev, p_at, p_tenant_id, p_actor, p_role, p_action,
                                           p_target, p_outcome, p_request_id, p_detail)
                     FROM octet_length('credvault.audit.event.v1' || chr(10)) + 1)
        || convert_to('mac:64:' || encode(p_mac, 'hex') || chr(10), 'UTF8');
$$;

DROP FUNCTION credvault_audit_append(text, text, text, text, text, text, text, text, boolean, boolean);

-- As in 0010, with the mac: given, the event is v2; absent (a caller that
-- holds no HSM), v1, which `credvault audit verify` refuses after the chain's
-- first anchored event.
CREATE FUNCTION credvault_audit_append(p_tenant_id text, p_actor text, p_role text, p_action text,
                                       p_target text, p_outcome text, p_request_id text, p_detail text,
                                       p_durable boolean, p_after_change boolean, p_mac bytea)
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
    v_at := clock_timestamp();
    v_seq := v_seq + 1;
    IF p_mac IS NULL THEN
        v_hash := sha256(credvault_audit_canon(v_chain, v_seq, v_prev, v_at, p_tenant_id, p_actor, p_role,
                                               p_action, p_target, p_outcome, p_request_id, p_detail));
    ELSE
        v_hash := sha256(credvault_audit_canon2(v_chain, v_seq, v_prev, v_at, p_tenant_id, p_actor, p_role,
                                                p_action, p_target, p_outcome, p_request_id, p_detail, p_mac));
    END IF;
    INSERT INTO audit_events AS e (at, tenant_id, actor, role, action, target, outcome, request_id, detail_text,
                                   chain, seq, prev_hash, hash, mac)
    VALUES (v_at, p_tenant_id, p_actor, p_role, p_action, p_target, p_outcome, p_request_id, p_detail,
            v_chain, v_seq, v_prev, v_hash, p_mac)
    RETURNING e.id INTO v_id;
    UPDATE audit_heads AS h SET seq = v_seq, hash = v_hash, updated_at = v_at WHERE h.chain = v_chain;
    RETURN QUERY SELECT v_id, v_chain, v_seq, v_hash;
END
$$;

DO $$
BEGIN
    EXECUTE format('ALTER FUNCTION credvault_audit_append(text, text, text, text, text, text, text, text, boolean, '
                   'boolean, bytea) SET search_path = pg_catalog, %I, pg_temp', current_schema());
    REVOKE ALL ON FUNCTION credvault_audit_append(text, text, text, text, text, text, text, text, boolean, boolean,
                                                  bytea) FROM PUBLIC;
    REVOKE ALL ON FUNCTION credvault_audit_canon2(text, bigint, bytea, timestamptz, text, text, text, text, text,
                                                  text, text, text, bytea) FROM PUBLIC;
END
$$;
GRANT EXECUTE ON FUNCTION credvault_audit_append(text, text, text, text, text, text, text, text, boolean, boolean,
                                                 bytea) TO credvault_app;
