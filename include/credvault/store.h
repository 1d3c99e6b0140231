/* The PostgreSQL boundary. No libpq type crosses it. Every call is one
 * transaction on the calling thread's own connection, with the tenant set
 * for row-level security (`tenant_id` NULL = platform scope, admin only).
 * Stored values are ciphertext, wrapped keys, hashes and names: never a
 * plaintext credential, never a token. */
#ifndef CREDVAULT_STORE_H
#define CREDVAULT_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "credvault/hsm.h"
#include "credvault/ids.h"
#include "credvault/metrics.h"
#include "credvault/result.h"

#define CV_STORE_NAME_MAX_BYTES 256     /* tenant and server display names */
#define CV_STORE_PRINCIPAL_MAX_BYTES 128 /* token names: created_by / updated_by */
#define CV_STORE_UUID_BYTES 36
#define CV_STORE_STATE_MAX_BYTES 16
#define CV_STORE_ROLE_MAX_BYTES 16
#define CV_TOKEN_HASH_BYTES 32
#define CV_TOKEN_VERIFIER_BYTES 32
#define CV_RECORD_BINDING_BYTES 32
#define CV_STORE_TOKEN_BIND_MAX 1000000 /* rows bound at upgrade in one transaction */

struct cv_store;

struct cv_store_options {
    const char *url;      /* libpq connection string or URI */
    const char *password; /* optional; overrides the URL's */
    unsigned connect_timeout_s;   /* default 3 */
    unsigned statement_timeout_ms; /* default 5000 */
    struct cv_metrics *metrics;    /* the service's registry, or NULL */
};

/* Checks the options; connections are made lazily, one per calling thread,
 * checked before reuse and remade after the database restarts. A call during
 * an outage fails fast with CV_ERR_UNAVAILABLE; none hangs. */
CV_RESULT cv_store_open(const struct cv_store_options *opt, struct cv_store **out);
void cv_store_close(struct cv_store *st);
/* Closes this thread's connection (worker thread exit). */
void cv_store_thread_done(struct cv_store *st);

/* Migrations from `dir` (NNNN_verb_object.sql), each in a transaction,
 * recorded in schema_migrations; refuses a schema newer than it knows.
 * `applied` gets how many were applied now. Runs as the owning role. */
CV_RESULT cv_store_migrate(const struct cv_store_options *owner, const char *dir, unsigned *applied);
/* At serve start: the schema is at the newest version this binary knows, and
 * the connected role is not a superuser, has no BYPASSRLS and owns no table. */
CV_RESULT cv_store_check_ready(struct cv_store *st, const char *dir);
/* Why this process last failed to connect (libpq's reason: the host and port
 * it tried; never the password), or "" since a connection succeeded. For
 * start-up messages; clients get only "database unavailable". */
void cv_store_connect_failure(char *buf, size_t n);
CV_RESULT cv_store_ping(struct cv_store *st);

/* ---- rows ---- */

struct cv_tenant_row {
    char id[CV_TENANT_ID_MAX_BYTES + 1];
    char name[CV_STORE_NAME_MAX_BYTES + 1];
    int64_t created_at_ms;
    uint32_t current_key_version;  /* newest active version */
    uint32_t min_decrypt_version;  /* issue #4; 1 until raised */
};

struct cv_tenant_key_row {
    struct cv_key_ref ref;                     /* tenant, version, master version, wrapped, binding */
    char state[CV_STORE_STATE_MAX_BYTES + 1];  /* "active", "retired", "destroyed" */
    int64_t created_at_ms;
    uint64_t encryptions;
};

struct cv_master_key_row {
    uint32_t version;
    char state[CV_STORE_STATE_MAX_BYTES + 1];  /* "active", "retired" */
    int64_t created_at_ms;
    struct cv_key_ref canary;  /* a key wrapped under this master: proves the token matches */
    uint64_t tenant_keys;      /* tenant keys wrapped by it (list only) */
};

struct cv_token_row {
    char id[CV_STORE_UUID_BYTES + 1];
    char name[CV_STORE_PRINCIPAL_MAX_BYTES + 1];
    char role[CV_STORE_ROLE_MAX_BYTES + 1];      /* admin, tenant-admin, auditor, workload */
    char tenant_id[CV_TENANT_ID_MAX_BYTES + 1];  /* "" for admin */
    char server_id[CV_SERVER_ID_MAX_BYTES + 1]; /* workload only, else "" */
    int64_t created_at_ms;
    int64_t expires_at_ms;  /* 0 = never */
    int revoked;
    char created_by[CV_STORE_PRINCIPAL_MAX_BYTES + 1];
    uint8_t verifier[CV_TOKEN_VERIFIER_BYTES]; /* HSM HMAC over hash and powers (migration 0014) */
    int has_verifier;                          /* 0: a row never bound, which never authenticates */
};

/* One MCP server's credentials. Heap strings are owned by the row. */
struct cv_server_row {
    char id[CV_STORE_UUID_BYTES + 1];
    char tenant_id[CV_TENANT_ID_MAX_BYTES + 1];
    char server_id[CV_SERVER_ID_MAX_BYTES + 1];
    char template_id[CV_TEMPLATE_ID_MAX_BYTES + 1];
    char server_name[CV_STORE_NAME_MAX_BYTES + 1];
    char *encrypted_env;           /* record JSON; NULL when not asked for */
    char *configured_integrations; /* JSON array text */
    char *credential_names;        /* JSON array text, in stored order */
    uint32_t key_version;
    int64_t revision;              /* 1 at insert, +1 per update */
    int64_t created_at_ms;
    int64_t last_updated_ms;
    int64_t expires_at_ms;         /* 0 = none */
    char created_by[CV_STORE_PRINCIPAL_MAX_BYTES + 1];
    char updated_by[CV_STORE_PRINCIPAL_MAX_BYTES + 1];
    uint8_t binding[CV_RECORD_BINDING_BYTES]; /* HSM HMAC over ids, revision, expiry, names (migration 0015) */
    int has_binding;                          /* 0: never bound, which reads as an integrity error */
};
void cv_server_row_free(struct cv_server_row *row);

/* An Idempotency-Key (migration 0013): remembered with the write it names,
 * in the same transaction, for CV_STORE_IDEM_KEEP_S; scoped to the tenant
 * and `principal` (the token's id). */
#define CV_STORE_IDEM_KEY_MAX_BYTES 255
#define CV_STORE_IDEM_KEEP_S 86400
#define CV_STORE_IDEM_KEEP_SQL "24 hours"
struct cv_store_idem {
    const char *key;
    const char *principal;
    uint8_t request_hash[32]; /* SHA-256 of method, route and body: never the body */
};

/* An audit event. Store calls that change state take the event that
 * records the change and commit it in the same transaction, or neither. */
struct cv_audit_event {
    const char *tenant_id;  /* NULL for platform events */
    const char *actor;      /* token principal, or "anonymous" */
    const char *actor_id;   /* the token's id, or NULL; kept as detail's "actorId" */
    const char *role;
    const char *action;     /* "credentials.deploy", "auth.failed", … */
    const char *target;     /* object id, or NULL */
    const char *outcome;    /* "success", "denied", "error" */
    const char *request_id;
    const char *detail;     /* JSON object text without secrets, or NULL */
};

/* Callbacks return 0 to continue, non-zero to stop. */
typedef int (*cv_store_tenant_cb)(void *arg, const struct cv_tenant_row *row);
typedef int (*cv_store_tenant_key_cb)(void *arg, const struct cv_tenant_key_row *row);
typedef int (*cv_store_master_key_cb)(void *arg, const struct cv_master_key_row *row);
typedef int (*cv_store_server_cb)(void *arg, const struct cv_server_row *row);

/* ---- master keys (platform scope) ---- */
CV_RESULT cv_store_master_key_insert(struct cv_store *st, const struct cv_master_key_row *row);
CV_RESULT cv_store_master_key_list(struct cv_store *st, cv_store_master_key_cb cb, void *arg);
/* Newest active version; CV_ERR_NOT_FOUND when the database has none yet. */
CV_RESULT cv_store_master_key_current(struct cv_store *st, struct cv_master_key_row *row);

/* ---- tenants ---- */
/* Inserts the tenant and its first key in one transaction; CV_ERR_CONFLICT if the id exists. */
CV_RESULT cv_store_tenant_create(struct cv_store *st, const struct cv_tenant_row *tenant,
                                 const struct cv_tenant_key_row *first_key, const char *created_by,
                                 const struct cv_audit_event *ev);
CV_RESULT cv_store_tenant_get(struct cv_store *st, const char *tenant_id, struct cv_tenant_row *row);
CV_RESULT cv_store_tenant_list(struct cv_store *st, unsigned limit, unsigned offset,
                               cv_store_tenant_cb cb, void *arg, uint64_t *total);
CV_RESULT cv_store_tenant_key_list(struct cv_store *st, const char *tenant_id,
                                   cv_store_tenant_key_cb cb, void *arg);
CV_RESULT cv_store_tenant_key_get(struct cv_store *st, const char *tenant_id, uint32_t version,
                                  struct cv_tenant_key_row *row);
/* The version new writes use (newest active). */
CV_RESULT cv_store_tenant_key_current(struct cv_store *st, const char *tenant_id,
                                      struct cv_tenant_key_row *row);

/* ---- API tokens ---- */
/* row->id is a UUID chosen by the caller (the verifier covers it) and
 * row->verifier is stored with the row; created_at_ms is filled in.
 * CV_ERR_CONFLICT when the id, hash or (tenant, role, name) exists,
 * CV_ERR_NOT_FOUND when the tenant does not. */
CV_RESULT cv_store_token_insert(struct cv_store *st, struct cv_token_row *row,
                                const uint8_t hash[CV_TOKEN_HASH_BYTES], const struct cv_audit_event *ev);
/* By hash, across tenants (a SECURITY DEFINER function: the service role
 * cannot list tokens). Revoked and expired tokens are returned with their
 * flags; the caller decides. CV_ERR_NOT_FOUND when unknown. */
CV_RESULT cv_store_token_lookup(struct cv_store *st, const uint8_t hash[CV_TOKEN_HASH_BYTES],
                                struct cv_token_row *row);
/* The one-time bind of rows minted before verifiers (migration 0014): the
 * rows without one, only while the bind is pending (none after): id, role,
 * tenant, server and expiry in `row`, the stored SHA-256 in `hash`. */
typedef int (*cv_store_token_bind_cb)(void *arg, const struct cv_token_row *row,
                                      const uint8_t hash[CV_TOKEN_HASH_BYTES]);
CV_RESULT cv_store_token_bind_pending(struct cv_store *st, cv_store_token_bind_cb cb, void *arg);
/* Writes the verifiers (row id and row->verifier of each) and ends the
 * pending state with `ev`, in one transaction; *bound = -1 when another
 * process ended it first (nothing is written then). */
CV_RESULT cv_store_token_bind_finish(struct cv_store *st, const struct cv_token_row *rows, size_t n,
                                     const struct cv_audit_event *ev, int *bound);
/* Revokes in `tenant_id` (NULL: platform scope). CV_ERR_NOT_FOUND if absent there. */
CV_RESULT cv_store_token_revoke(struct cv_store *st, const char *tenant_id, const char *token_id,
                                const struct cv_audit_event *ev);
/* The same, only when the token's role is one of `roles` (a PostgreSQL
 * array literal such as "{auditor,workload}"; NULL: any): checked in the
 * statement that revokes. CV_ERR_FORBIDDEN for another role, and nothing
 * changes (no event is written). */
CV_RESULT cv_store_token_revoke_roles(struct cv_store *st, const char *tenant_id, const char *token_id,
                                      const char *roles, const struct cv_audit_event *ev);

/* ---- MCP server credentials (tenant scope) ---- */
/* Inserts revision 1 and counts one encryption on (tenant, key_version) in the
 * same transaction; CV_ERR_CONFLICT when the server id exists in the tenant.
 * row->id, created_at_ms, last_updated_ms and revision are filled in. */
CV_RESULT cv_store_server_insert(struct cv_store *st, struct cv_server_row *row, const struct cv_audit_event *ev);
/* CV_ERR_NOT_FOUND when absent in this tenant. with_env: also fetch encrypted_env. */
CV_RESULT cv_store_server_get(struct cv_store *st, const char *tenant_id, const char *server_id,
                              int with_env, struct cv_server_row *row);
/* The row and, in the same statement and round trip, the tenant key of its
 * key_version (*has_key 0 when that version is gone). */
CV_RESULT cv_store_server_get_keyed(struct cv_store *st, const char *tenant_id, const char *server_id, int with_env,
                                    struct cv_server_row *row, struct cv_tenant_key_row *key, int *has_key);
/* Newest first; encrypted_env is not fetched. */
CV_RESULT cv_store_server_list(struct cv_store *st, const char *tenant_id, unsigned limit,
                               unsigned offset, cv_store_server_cb cb, void *arg, uint64_t *total);
/* Replaces encrypted_env, key_version, credential_names, configured_integrations,
 * expires_at_ms and updated_by when the stored revision equals
 * `expected_revision`; counts one encryption. CV_ERR_NOT_FOUND when absent,
 * CV_ERR_PRECONDITION when the revision moved. row->revision and
 * last_updated_ms get the new values. */
CV_RESULT cv_store_server_update(struct cv_store *st, struct cv_server_row *row, int64_t expected_revision,
                                 const struct cv_audit_event *ev);
/* The same writes, remembering `idem` in their transaction. A key already
 * remembered fails the write with CV_ERR_CONFLICT: look it up. */
CV_RESULT cv_store_server_insert_idem(struct cv_store *st, struct cv_server_row *row, const struct cv_audit_event *ev,
                                     const struct cv_store_idem *idem);
CV_RESULT cv_store_server_update_idem(struct cv_store *st, struct cv_server_row *row, int64_t expected_revision,
                                     const struct cv_audit_event *ev, const struct cv_store_idem *idem);
/* *found when `idem` is remembered (and not expired); *same_request when its
 * request hash matches; server_id: the server its write named. */
CV_RESULT cv_store_idem_get(struct cv_store *st, const char *tenant_id, const struct cv_store_idem *idem, int *found,
                            int *same_request, char server_id[CV_SERVER_ID_MAX_BYTES + 1]);
CV_RESULT cv_store_server_delete(struct cv_store *st, const char *tenant_id, const char *server_id,
                                 const struct cv_audit_event *ev);

/* The one-time bind of rows written before bindings (migration 0015), in
 * platform scope: the rows without one, only while the bind is pending (none
 * after); encrypted_env is not read. */
CV_RESULT cv_store_server_bind_pending(struct cv_store *st, cv_store_server_cb cb, void *arg);
/* Writes each row's binding (by tenant and server id) and ends the pending
 * state with `ev`, in one transaction; *bound = -1 when another process
 * ended it first (nothing is written then). */
CV_RESULT cv_store_server_bind_finish(struct cv_store *st, const struct cv_server_row *rows, size_t n,
                                      const struct cv_audit_event *ev, int *bound);

/* ---- audit ---- */
CV_RESULT cv_store_audit_insert(struct cv_store *st, const struct cv_audit_event *ev);

#endif
