-- Retiring a master key version (issue 4) deletes its row once no tenant key
-- refers to it: the foreign key from tenant_keys.master_version refuses the
-- delete (23503) while one still does, so the database itself keeps a master
-- key that some wrapped key needs. The row goes before the key is destroyed
-- in the token, so a crash in between leaves an unused key in the token
-- (destroyed by the next `credvault master retire`), never a row whose key
-- is gone (which would stop every instance at its start-up canary check).
GRANT DELETE ON master_keys TO credvault_app;
