-- Signed checkpoints of the audit chains. At intervals the service reads
-- the heads of the chains that moved since they were last checkpointed,
-- builds a canonical payload that lists one SHA-256 digest per head (so a
-- tenant's export reveals no other tenant's name or number of events) and
-- the hash of the previous checkpoint's payload, and signs it with an EC
-- P-256 key that never leaves the HSM. A head that did not move is vouched
-- for by the checkpoint that last listed it, and the link between
-- checkpoints makes the whole series one signed history: the cost of a
-- checkpoint follows the chains that moved, not every chain there is. An
-- attacker who rewrites events and recomputes every hash and head still
-- cannot forge the signatures over the heads that were checkpointed.
--
-- prev_hash is unique: two instances that race to extend the checkpoints
-- from the same predecessor cannot both succeed (one gets 23505 and tries
-- again later), so the checkpoints form one line, never a fork.

CREATE TABLE audit_checkpoints (
    id           bigserial PRIMARY KEY,
    at           timestamptz NOT NULL,
    key_label    text NOT NULL CHECK (octet_length(key_label) BETWEEN 1 AND 64),
    prev_hash    bytea NOT NULL CHECK (octet_length(prev_hash) = 32),
    heads_digest bytea NOT NULL CHECK (octet_length(heads_digest) = 32),
    heads        integer NOT NULL CHECK (heads >= 1),
    payload      text NOT NULL CHECK (octet_length(payload) BETWEEN 1 AND 8388608),
    signature    bytea NOT NULL CHECK (octet_length(signature) BETWEEN 8 AND 256),
    CONSTRAINT audit_checkpoints_prev_hash_key UNIQUE (prev_hash)
);

-- The heads a checkpoint signed, one row per chain that moved, so verify and
-- export can compare them with the chains (the payload holds only digests).
CREATE TABLE audit_checkpoint_heads (
    checkpoint_id bigint NOT NULL REFERENCES audit_checkpoints (id),
    chain         text NOT NULL CHECK (chain = '_platform' OR chain ~ '^[a-z0-9][a-z0-9-]{0,63}$'),
    tenant_id     text CHECK (tenant_id IS NULL OR tenant_id = chain),
    seq           bigint NOT NULL CHECK (seq >= 1),
    hash          bytea NOT NULL CHECK (octet_length(hash) = 32),
    PRIMARY KEY (checkpoint_id, chain),
    CONSTRAINT audit_checkpoint_heads_platform_check CHECK ((chain = '_platform') = (tenant_id IS NULL))
);
-- which heads are sealed already, and a chain's checkpoints in order
CREATE INDEX audit_checkpoint_heads_chain_idx ON audit_checkpoint_heads (chain, seq);

ALTER TABLE audit_checkpoint_heads ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit_checkpoint_heads FORCE ROW LEVEL SECURITY;
CREATE POLICY audit_checkpoint_heads_isolation ON audit_checkpoint_heads
    USING (tenant_id = current_setting('credvault.tenant_id', true)
           OR current_setting('credvault.scope', true) = 'platform')
    WITH CHECK (tenant_id = current_setting('credvault.tenant_id', true)
                OR current_setting('credvault.scope', true) = 'platform');

CREATE TRIGGER audit_checkpoints_append_only BEFORE UPDATE OR DELETE ON audit_checkpoints
    FOR EACH ROW EXECUTE FUNCTION credvault_audit_append_only();
CREATE TRIGGER audit_checkpoints_no_truncate BEFORE TRUNCATE ON audit_checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION credvault_audit_append_only();
CREATE TRIGGER audit_checkpoint_heads_append_only BEFORE UPDATE OR DELETE ON audit_checkpoint_heads
    FOR EACH ROW EXECUTE FUNCTION credvault_audit_append_only();
CREATE TRIGGER audit_checkpoint_heads_no_truncate BEFORE TRUNCATE ON audit_checkpoint_heads
    FOR EACH STATEMENT EXECUTE FUNCTION credvault_audit_append_only();

GRANT SELECT, INSERT ON audit_checkpoints TO credvault_app;
GRANT SELECT, INSERT ON audit_checkpoint_heads TO credvault_app;
GRANT USAGE ON SEQUENCE audit_checkpoints_id_seq TO credvault_app;
