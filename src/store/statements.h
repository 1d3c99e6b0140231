/* Private to src/store: every statement the store prepares, in one list.
 * Ids and prepared-statement names both come from here, so no two files can
 * pick the same one; CV_SQL_DEF (pq.h) also fails the link if two files
 * define the same entry. Add a line here, then define it where it is used. */
#ifndef CV_STORE_STATEMENTS_H
#define CV_STORE_STATEMENTS_H

#define CV_STORE_STATEMENTS(X) \
    /* tx.c */ \
    X(SCOPE, "scope") \
    X(BEGIN, "begin") \
    X(COMMIT, "commit") \
    X(AUDIT_MARK, "audit_mark") \
    X(KEY_EVENT, "key_event") \
    /* audit_chain.c */ \
    X(AUDIT_CLAIM_SLOT, "audit_claim_slot") \
    X(AUDIT_HEAD, "audit_head") \
    X(AUDIT_APPEND_BATCH, "audit_append_batch") \
    X(AUDIT_APPEND_CHAINS, "audit_append_chains") \
    X(AUDIT_SCOPE_AGAIN, "audit_scope_again") \
    /* audit_checkpoint.c */ \
    X(AUDIT_CHECKPOINT_INSERT, "audit_checkpoint_insert") \
    X(AUDIT_CHECKPOINT_LAST, "audit_checkpoint_last") \
    X(AUDIT_CHECKPOINT_LIST, "audit_checkpoint_list") \
    X(AUDIT_CHECKPOINT_HEADS, "audit_checkpoint_heads") \
    X(AUDIT_CHAIN_CHECKPOINTS, "audit_chain_checkpoints") \
    /* audit_query.c */ \
    X(AUDIT_LIST, "audit_list") \
    X(AUDIT_CHAIN, "audit_chain") \
    X(AUDIT_HEADS, "audit_heads") \
    X(AUDIT_READY, "audit_ready") \
    /* audit_reports.c */ \
    X(CREDENTIALS_STALE, "credentials_stale") \
    X(OPS_COUNTS, "ops_counts") \
    X(KEY_USAGE_TOP, "key_usage_top") \
    /* import.c */ \
    X(SERVER_IMPORT, "server_import") \
    /* lifecycle_events.c */ \
    X(LC_EVENTS_SINCE, "lc_events_since") \
    X(LC_EVENTS_HEAD, "lc_events_head") \
    X(LC_EVENTS_PRUNE, "lc_events_prune") \
    /* lifecycle_jobs.c */ \
    X(LC_JOB_START_RECORD, "lc_job_start_record") \
    X(LC_JOB_START_MASTER, "lc_job_start_master") \
    X(LC_JOB_JOIN_RECORD, "lc_job_join_record") \
    X(LC_JOB_JOIN_MASTER, "lc_job_join_master") \
    X(LC_JOB_HAS_MASTER, "lc_job_has_master") \
    X(LC_JOB_HAS_TENANT_KEY, "lc_job_has_tenant_key") \
    X(LC_JOB_LATEST, "lc_job_latest") \
    X(LC_JOB_BY_ID, "lc_job_by_id") \
    X(LC_JOBS_RUNNING, "lc_jobs_running") \
    X(LC_JOB_END_DESTROYED, "lc_job_end_destroyed") \
    X(LC_JOB_END, "lc_job_end") \
    X(LC_RECORD_REWRAP_SELECT, "lc_record_rewrap_select") \
    X(LC_RECORD_REWRAP_UPDATE, "lc_record_rewrap_update") \
    X(LC_RECORD_REWRAP_COUNT, "lc_record_rewrap_count") \
    X(LC_RECORD_REWRAP_PROGRESS, "lc_record_rewrap_progress") \
    /* lifecycle_master.c */ \
    X(LC_MASTER_LOCK, "lc_master_lock") \
    X(LC_MASTER_NEWEST, "lc_master_newest") \
    X(LC_MASTER_INSERT, "lc_master_insert") \
    X(LC_MASTER_RETIRE_OLDER, "lc_master_retire_older") \
    X(LC_MASTER_JOB_SUPERSEDE, "lc_master_job_supersede") \
    X(LC_MASTER_JOB_INSERT, "lc_master_job_insert") \
    X(LC_MASTER_FORGET_READ, "lc_master_forget_read") \
    X(LC_MASTER_FORGET_DESTROYED, "lc_master_forget_destroyed") \
    X(LC_MASTER_FORGET_DELETE, "lc_master_forget_delete") \
    X(LC_MASTER_REWRAP_SELECT, "lc_master_rewrap_select") \
    X(LC_MASTER_REWRAP_UPDATE, "lc_master_rewrap_update") \
    X(LC_JOB_PROGRESS, "lc_job_progress") \
    /* lifecycle_tenant.c */ \
    X(LC_TENANT_LOCK, "lc_tenant_lock") \
    X(LC_TENANT_KEY_INSERT, "lc_tenant_key_insert") \
    X(LC_TENANT_LOCK_OLD_KEYS, "lc_tenant_lock_old_keys") \
    X(LC_TENANT_RECORDS_BELOW, "lc_tenant_records_below") \
    X(LC_TENANT_MIN_RAISE, "lc_tenant_min_raise") \
    X(LC_TENANT_LOCK_RETIRED, "lc_tenant_lock_retired") \
    X(LC_TENANT_RECORDS_ON_RETIRED, "lc_tenant_records_on_retired") \
    X(LC_TENANT_DESTROY_RETIRED, "lc_tenant_destroy_retired") \
    X(LC_SHRED_LOCK, "lc_shred_lock") \
    X(LC_SHRED_DELETE, "lc_shred_delete") \
    /* master_keys.c */ \
    X(MASTER_KEY_INSERT, "master_key_insert") \
    X(MASTER_KEY_LIST, "master_key_list") \
    X(MASTER_KEY_CURRENT, "master_key_current") \
    /* ready.c */ \
    X(PING, "ping") \
    X(READY_ROLE, "ready_role") \
    X(READY_VERSIONS, "ready_versions") \
    /* servers.c */ \
    X(SERVER_INSERT, "server_insert") \
    X(IDEM_PRUNE, "idem_prune") \
    X(IDEM_INSERT, "idem_insert") \
    X(IDEM_GET, "idem_get") \
    X(SERVER_GET, "server_get") \
    X(SERVER_GET_KEYED, "server_get_keyed") \
    X(SERVER_LIST, "server_list") \
    X(SERVER_UPDATE, "server_update") \
    X(SERVER_DELETE, "server_delete") \
    /* tenant_keys.c */ \
    X(TENANT_KEY_GET, "tenant_key_get") \
    X(TENANT_KEY_CURRENT, "tenant_key_current") \
    X(TENANT_KEY_LIST, "tenant_key_list") \
    /* tenants.c */ \
    X(TENANT_INSERT, "tenant_insert") \
    X(TENANT_KEY_INSERT, "tenant_key_insert") \
    X(TENANT_GET, "tenant_get") \
    X(TENANT_LIST, "tenant_list") \
    /* tokens.c */ \
    X(TOKEN_INSERT, "token_insert") \
    X(TOKEN_LOOKUP, "token_lookup") \
    X(TOKEN_REVOKE, "token_revoke") \
    X(TOKEN_REVOKE_ROLES, "token_revoke_roles") \
    X(TOKEN_BIND_PENDING, "token_bind_pending") \
    X(TOKEN_BIND_FINISH, "token_bind_finish") \
    /* servers_bind.c */ \
    X(SERVER_BIND_PENDING, "server_bind_pending") \
    X(SERVER_BIND_FINISH, "server_bind_finish") \
    /* installation.c */ \
    X(INSTALLATION_GET, "installation_get")

#endif
