/* The use cases: tenants, tokens, keys, templates and credentials. Both front
 * ends (http, cli) call these; results are jansson documents in the API's
 * shapes, so the two never disagree. Authorisation is decided here, from the
 * authenticated principal, never from a request body. */
#ifndef CREDVAULT_DOMAIN_H
#define CREDVAULT_DOMAIN_H

#include <jansson.h>
#include <stdint.h>

#include "credvault/config.h"
#include "credvault/hsm.h"
#include "credvault/json_alloc.h"
#include "credvault/ids.h"
#include "credvault/isotime.h"
#include "credvault/result.h"
#include "credvault/store.h"

#define CV_TOKEN_PREFIX "cvt_"
#define CV_TOKEN_RANDOM_BYTES 32
#define CV_TOKEN_MAX_BYTES 128
#define CV_TOKEN_MAX_DAYS 3650
#define CV_LIST_MAX_LIMIT 200
#define CV_LIST_DEFAULT_LIMIT 50
#define CV_VALIDATE_MAX_KEYS 256

enum cv_role { CV_ROLE_ADMIN = 0, CV_ROLE_TENANT_ADMIN, CV_ROLE_AUDITOR, CV_ROLE_WORKLOAD, CV_ROLE__COUNT };
const char *cv_role_name(enum cv_role r);
int cv_role_parse(const char *s, enum cv_role *out); /* 0 on success */

struct cv_principal {
    char token_id[CV_STORE_UUID_BYTES + 1];
    char name[CV_STORE_PRINCIPAL_MAX_BYTES + 1];
    enum cv_role role;
    char tenant_id[CV_TENANT_ID_MAX_BYTES + 1]; /* "" for admin */
    char server_id[CV_SERVER_ID_MAX_BYTES + 1];
    const char *request_id;
};

/* The principal for local administration from the command line: an admin
 * whose actions are recorded as done by "cli". */
void cv_principal_cli(struct cv_principal *p);

struct cv_catalog;
struct cv_audit_sealer;
struct cv_ratelimit;
struct cv_oidc;

/* The service object: everything a running service holds lives here (or in
 * the front end's own object), never in a global, so two in one process
 * share nothing. */
struct cv_app {
    const struct cv_config *cfg;
    struct cv_hsm *hsm;
    struct cv_store *store;
    struct cv_catalog *catalog;
    struct cv_audit_sealer *sealer; /* while serve runs */
    struct cv_ratelimit *limiter;   /* the HTTP front end's, opaque here */
    struct cv_metrics *metrics;     /* this service's registry */
    struct cv_oidc *oidc;           /* NULL unless CREDVAULT_OIDC_ISSUER is set (serve opens it) */
    uint32_t master_version;        /* current master key version */
    struct cv_readiness *readiness; /* /readyz's probe thread, started on first use */
    struct cv_token_memo *token_memo; /* token rows the HSM matched (token_verify.c) */
    struct cv_token_cache *token_cache; /* tokens verified moments ago (token_cache.c) */
    unsigned id_slot, id_slots; /* server ids this process makes: ≡ id_slot mod id_slots (0, 0: any) */
};

enum { CV_APP_HSM = 1, CV_APP_STORE = 2, CV_APP_CATALOG = 4, CV_APP_ALL = 7,
       CV_APP_HSM_INSPECT = 8 /* with CV_APP_HSM: open a token that lacks mechanisms, to report them */ };

CV_RESULT cv_app_open(const struct cv_config *cfg, unsigned parts, struct cv_app **out);
void cv_app_close(struct cv_app *app);
/* Why the database was last unreachable (host, port and libpq's reason, never
 * the password), or "": for the commands' messages, never for a client. */
void cv_app_database_failure(char *buf, size_t n);

/* ---- keys ---- */
/* Creates master key 1 and the binding key if absent; `created` counts new keys.
 * `hsm_only` marks a new master key so that the token refuses memory residency;
 * with a master key that exists unmarked it is CV_ERR_CONFLICT. */
CV_RESULT cv_keys_init(struct cv_hsm *hsm, int hsm_only, unsigned *created);
/* At start: registers master 1 in an empty database (with a canary), then
 * proves that the token's master keys open this database's canaries. */
CV_RESULT cv_keys_check_database(struct cv_app *app);
/* At `serve` start with CREDVAULT_KEY_RESIDENCY=memory: CV_ERR_CONFLICT with
 * a message naming the mark when the token's master key is hsm-only. */
CV_RESULT cv_keys_check_residency(struct cv_app *app);
/* 1 when tenant keys are held in process memory (CREDVAULT_KEY_RESIDENCY=memory). */
static inline int cv_keys_memory_residency(const struct cv_app *app)
{
    return app && app->cfg && app->cfg->key_residency && app->cfg->key_residency[0] == 'm'; /* checked by config */
}
/* For `hsm init` with a migrated database: writes the database's
 * installation id (into id) into a token that has none (*written), once its
 * master keys have proved it is this database's token (a database without
 * master keys yet takes any). CV_ERR_CONFLICT, naming both, when they differ. */
CV_RESULT cv_keys_bind_installation(struct cv_app *app, char id[37], int *written);

/* ---- authentication ---- */
/* From an Authorization header value: "Bearer <token>": a credvault token
 * (cvt_…), or a JWT of the configured OIDC issuer. CV_ERR_AUTH when missing,
 * malformed, unknown, revoked, expired or not mapped (one message for all). */
CV_RESULT cv_auth_bearer(struct cv_app *app, const char *authorization, struct cv_principal *out);

/* ---- OIDC (domain/oidc.c) ---- */
/* Fetches a URL into *body (malloc'ed, at most max_bytes): how the JWKS of
 * CREDVAULT_OIDC_JWKS_URL is read. The front end provides it (src/cli). */
typedef CV_RESULT (*cv_oidc_fetch_fn)(void *arg, const char *url, size_t max_bytes, char **body, size_t *len);
/* *out stays NULL when CREDVAULT_OIDC_ISSUER is unset. Checks the settings
 * and loads the issuer's keys (a JWKS file that cannot be read stops start;
 * an unreachable URL is retried on use). */
CV_RESULT cv_oidc_open(const struct cv_config *cfg, cv_oidc_fetch_fn fetch, void *arg, struct cv_oidc **out);
void cv_oidc_close(struct cv_oidc *o);
/* A principal from a JWT: signature, iss, aud, exp/nbf/iat, tenant and role
 * claims; CV_ERR_AUTH for any refusal (the reason is logged, not returned). */
CV_RESULT cv_oidc_authenticate(struct cv_oidc *o, const char *jwt, struct cv_principal *out);

/* ---- tenants (admin) ---- */
CV_RESULT cv_tenant_create(struct cv_app *app, const struct cv_principal *p, json_t *body, json_t **data);
CV_RESULT cv_tenant_list(struct cv_app *app, const struct cv_principal *p, const char *limit,
                         const char *offset, json_t **data);
CV_RESULT cv_tenant_get(struct cv_app *app, const struct cv_principal *p, const char *tenant_id, json_t **data);

/* ---- tokens ---- */
CV_RESULT cv_token_mint(struct cv_app *app, const struct cv_principal *p, json_t *body, json_t **data);
CV_RESULT cv_token_revoke(struct cv_app *app, const struct cv_principal *p, const char *token_id);

/* ---- templates ---- */
CV_RESULT cv_catalog_load(const char *file, struct cv_catalog **out); /* NULL: the built-in one */
void cv_catalog_free(struct cv_catalog *c);
/* The templates as an array (items) and the list's paging (meta). */
CV_RESULT cv_templates_list(struct cv_app *app, const struct cv_principal *p, json_t **items, json_t **meta);
/* Borrowed references into the catalog; NULL when unknown. */
json_t *cv_catalog_template(const struct cv_catalog *c, const char *template_id);
/* Integration names with at least one route whose keys all have non-empty
 * values (plain or file-shaped) in `env`, in catalog order. */
json_t *cv_catalog_configured_integrations(const struct cv_catalog *c, json_t *env);
/* Whether a template accepts `name`: one of its requiredEnv or optionalEnv,
 * or a match of one of its customEnv patterns ("ACME_*"). Names that
 * cv_env_name_forbidden refuses are refused before this is asked. */
int cv_catalog_allows_name(json_t *tmpl, const char *name);

/* ---- credentials (tenant-admin; auditor reads) ---- */
CV_RESULT cv_credentials_deploy(struct cv_app *app, const struct cv_principal *p, const char *template_id,
                                json_t *body, json_t **data);
/* With an Idempotency-Key (NULL: none): a retry of the same request gets
 * the first answer (the same server), another request with that key
 * CV_ERR_CONFLICT "idempotency_key_reused". */
CV_RESULT cv_credentials_deploy_idem(struct cv_app *app, const struct cv_principal *p, const char *template_id,
                                     json_t *body, const char *idem_key, json_t **data);
CV_RESULT cv_credentials_update_idem(struct cv_app *app, const struct cv_principal *p, const char *server_id,
                                     json_t *body, int merge, const char *if_match, const char *idem_key,
                                     json_t **data);
CV_RESULT cv_credentials_masked(struct cv_app *app, const struct cv_principal *p, const char *server_id,
                                json_t **data);
CV_RESULT cv_credentials_validate(struct cv_app *app, const struct cv_principal *p, const char *server_id,
                                  json_t *body, json_t **data);
/* if_match: the If-Match header or NULL; merge: keep keys not named in env
 * (a null value removes one). data gets the server document; *revision the new one. */
CV_RESULT cv_credentials_update(struct cv_app *app, const struct cv_principal *p, const char *server_id,
                                json_t *body, int merge, const char *if_match, json_t **data);
/* The tenant's servers as an array (items) and the list's paging (meta). */
CV_RESULT cv_server_list(struct cv_app *app, const struct cv_principal *p, const char *limit,
                         const char *offset, json_t **items, json_t **meta);
CV_RESULT cv_server_get(struct cv_app *app, const struct cv_principal *p, const char *server_id, json_t **data);
CV_RESULT cv_server_delete(struct cv_app *app, const struct cv_principal *p, const char *server_id);

/* ---- helpers shared by the use cases ---- */
/* json_dumps(j, JSON_COMPACT) copied into malloc memory; consumes j. */
char *cv_json_dump_malloc(json_t *j);
/* Now, in epoch milliseconds (cv_time_iso8601 of credvault/isotime.h writes it). */
int64_t cv_time_now_ms(void);
/* Parses a list paging parameter; NULL gives the default. */
CV_RESULT cv_parse_uint_param(const char *s, unsigned def, unsigned max, const char *name, unsigned *out);
/* ?limit= and ?offset= of a list, with the API's defaults and maxima. */
CV_RESULT cv_page_params(const char *limit, const char *offset, unsigned *lim, unsigned *off);
/* {"<key>":items,"total","limit","offset"}; consumes items. */
CV_RESULT cv_page_doc(const char *key, json_t *items, uint64_t total, unsigned lim, unsigned off, json_t **out);
/* A list answered as an array with its paging beside it: *items_out = items
 * and *meta = {"total","limit","offset"}; consumes items (freed on failure). */
CV_RESULT cv_page_meta(json_t *items, uint64_t total, unsigned lim, unsigned off, json_t **items_out,
                       json_t **meta);
/* The text of a credential value, plain ("…") or file-shaped ({"file":"…"});
 * NULL for anything else. *is_file (may be NULL) says which. */
const char *cv_env_value(json_t *v, size_t *len, int *is_file);
/* Refuses a body member not in `known`, so a misspelt field never passes silently. */
CV_RESULT cv_check_fields(json_t *body, const char *const *known, size_t n);
/* Writes an audit event; failures are returned (callers fail closed). */
CV_RESULT cv_audit(struct cv_app *app, const struct cv_principal *p, const char *tenant_id,
                   const char *action, const char *target, const char *outcome);

#endif
