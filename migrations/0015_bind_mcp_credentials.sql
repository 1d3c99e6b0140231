-- Records bound to what decides their meaning. `binding` is an HMAC, made by
-- the token's binding key, over a row's tenant, server, revision, expiry and
-- credential names (src/domain/record_bind.c): an edit of any of them is
-- caught on read (500 integrity_error). The record itself (format 3) carries
-- the revision in its AAD, so an older encrypted_env restored into the row
-- does not open as the newer revision.
--
-- Rows written before this migration are bound once, by the first
-- `credvault` command that opens the HSM after it, while the pending row
-- below exists (as for api_tokens in 0014); after that, a row without a
-- binding is an integrity error.

ALTER TABLE mcp_credentials ADD COLUMN binding bytea CHECK (octet_length(binding) = 32);

CREATE TABLE mcp_credentials_bind_pending (
    pending boolean PRIMARY KEY DEFAULT true CHECK (pending)
);
INSERT INTO mcp_credentials_bind_pending VALUES (true);
REVOKE ALL ON mcp_credentials_bind_pending FROM PUBLIC;
-- the service reads it and ends it; it can never start it again
GRANT SELECT, DELETE ON mcp_credentials_bind_pending TO credvault_app;
