-- Background re-encryption jobs of the key lifecycle (issue 4): a master
-- rewrap moves every tenant key under the newest master key (O(tenants));
-- a record rewrap moves one tenant's records to its newest key version
-- (O(records)). The job row is the only state a job has: the remaining work
-- is always recomputed from the rows themselves (master_version or
-- key_version below the target), so a job survives kill -9 and resumes on
-- any instance. Batches lock their rows with FOR NO KEY UPDATE SKIP LOCKED, so
-- several instances share one job without doing a row twice.

CREATE TABLE key_jobs (
    id             bigserial PRIMARY KEY,
    kind           text NOT NULL CHECK (kind IN ('master_rewrap', 'record_rewrap')),
    -- NULL for master rewraps, which belong to the platform
    tenant_id      text REFERENCES tenants (id) ON DELETE CASCADE,
    -- master version (master_rewrap) or tenant key version (record_rewrap)
    target_version integer NOT NULL CHECK (target_version >= 1),
    state          text NOT NULL DEFAULT 'running'
                   CHECK (state IN ('running', 'done', 'failed', 'superseded')),
    total          bigint NOT NULL DEFAULT 0 CHECK (total >= 0),
    done           bigint NOT NULL DEFAULT 0 CHECK (done >= 0),
    -- rows left behind because they do not decrypt (tampered): the job
    -- ends 'failed' when only those remain, and names them in the log
    failed         bigint NOT NULL DEFAULT 0 CHECK (failed >= 0),
    batches        bigint NOT NULL DEFAULT 0 CHECK (batches >= 0),
    created_at     timestamptz NOT NULL DEFAULT now(),
    created_by     text NOT NULL CHECK (octet_length(created_by) <= 128),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    finished_at    timestamptz,
    CONSTRAINT key_jobs_kind_tenant_check CHECK ((kind = 'master_rewrap') = (tenant_id IS NULL)),
    CONSTRAINT key_jobs_finished_check CHECK ((state = 'running') = (finished_at IS NULL))
);
-- At most one running job per kind and tenant: starting a second one finds
-- the first (23505) instead of racing it.
CREATE UNIQUE INDEX key_jobs_one_running_idx ON key_jobs (kind, coalesce(tenant_id, ''))
    WHERE state = 'running';
CREATE INDEX key_jobs_tenant_idx ON key_jobs (tenant_id, id);

-- Platform rows (master rewraps) are visible in platform scope only.
ALTER TABLE key_jobs ENABLE ROW LEVEL SECURITY;
ALTER TABLE key_jobs FORCE ROW LEVEL SECURITY;
CREATE POLICY key_jobs_isolation ON key_jobs
    USING (tenant_id = current_setting('credvault.tenant_id', true)
           OR current_setting('credvault.scope', true) = 'platform')
    WITH CHECK (tenant_id = current_setting('credvault.tenant_id', true)
                OR current_setting('credvault.scope', true) = 'platform');

GRANT SELECT, INSERT, UPDATE ON key_jobs TO credvault_app;
GRANT USAGE ON SEQUENCE key_jobs_id_seq TO credvault_app;
