-- The migration ledger, and the ground rules for the service role.
-- credvault_app is created by the operator (docs/database.md), not here: roles
-- are cluster-wide, and managed databases rarely give the schema owner
-- CREATEROLE. The service role owns nothing and is granted table by table.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'credvault_app') THEN
        RAISE EXCEPTION 'role credvault_app does not exist'
            USING HINT = 'Create it before migrating: CREATE ROLE credvault_app LOGIN NOSUPERUSER NOBYPASSRLS; (see docs/database.md)';
    END IF;
END
$$;

-- PostgreSQL 15 already withholds CREATE on public; older servers do not.
-- Only the schema's owner can revoke it, which may not be this role: a
-- warning, never an error.
REVOKE CREATE ON SCHEMA public FROM PUBLIC;

CREATE TABLE schema_migrations (
    version    integer PRIMARY KEY CHECK (version > 0),
    name       text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);

GRANT SELECT ON schema_migrations TO credvault_app;
