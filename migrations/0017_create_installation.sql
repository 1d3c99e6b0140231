-- The installation id: the same UUID in the database (this row) and in the
-- token (a data object, src/hsm/installation.c). At start, every command
-- refuses a token and a database whose ids differ, naming both; a token
-- without one (made before this migration, or fresh) gets this database's
-- at its next start. So a token cannot register its master key in an empty
-- database that was migrated for another installation, and a database
-- cannot be served with another installation's token.
CREATE TABLE installation (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    id        uuid NOT NULL DEFAULT gen_random_uuid(),
    created_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO installation DEFAULT VALUES;
REVOKE ALL ON installation FROM PUBLIC;
GRANT SELECT ON installation TO credvault_app;
