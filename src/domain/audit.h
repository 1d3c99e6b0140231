/* The audit trail's use cases (issue 5): writing events (fail closed),
 * the canonical bytes that chain them, signed checkpoints and the sealer
 * that makes them, verification, export for offline checks, the audit API;
 * and the operations reports (stale credentials, /metrics gauges). Events
 * name actors, roles, actions and ids: never a secret value. */
#ifndef CREDVAULT_DOMAIN_AUDIT_H
#define CREDVAULT_DOMAIN_AUDIT_H

#include <stddef.h>
#include <stdint.h>

#include "credvault/buf.h"
#include "credvault/store_audit.h"
#include "domain/domain.h"

#define CV_AUDIT_ANONYMOUS "anonymous"
#define CV_AUDIT_EVENT_VERSION "credvault.audit.event.v1"
#define CV_AUDIT_EVENT_VERSION_ANCHORED "credvault.audit.event.v2" /* v1 and the HSM anchor (audit_anchor.c) */
#define CV_AUDIT_HEAD_VERSION "credvault.audit.head.v1"
#define CV_AUDIT_CHECKPOINT_VERSION "credvault.audit.checkpoint.v2"
#define CV_AUDIT_CANON_MAX_BYTES (CV_AUDIT_DETAIL_MAX_BYTES + 2048)
#define CV_AUDIT_LIST_MAX_LIMIT 200
#define CV_AUDIT_LIST_DEFAULT_LIMIT 50
#define CV_STALE_MAX_DAYS 3650
#define CV_STALE_DEFAULT_DAYS 90

/* ---- writing events ---- */

/* cv_audit (domain.h) writes one event in its own transaction, and the
 * caller fails when it cannot be written. Events that record no change
 * (reads, validation, refusals: the table in audit.c) commit without waiting
 * for the WAL flush unless CREDVAULT_AUDIT_DURABILITY=all; every other event
 * is durable before cv_audit returns. */
CV_RESULT cv_audit_read(struct cv_app *app, const struct cv_principal *p, const char *tenant_id, const char *action,
                        const char *target, const char *outcome);

/* For a state change: build the event with cv_audit_event_init and pass it
 * to the store call that makes the change; the event commits in the
 * change's own transaction, or neither does. A transaction that changed no
 * row (the object was not there, the revision had moved) writes no event,
 * so none claims a change that did not happen. cv_audit_change counts the
 * `events` such a call committed when it succeeded, and returns its result;
 * cv_audit_committed counts events a successful call committed. */
void cv_audit_event_init(struct cv_audit_event *ev, const struct cv_principal *p, const char *tenant_id,
                         const char *action, const char *target, const char *outcome);
CV_RESULT cv_audit_change(struct cv_app *app, cv_result change, unsigned events);
void cv_audit_committed(struct cv_app *app, unsigned events);

/* Failed authentication: actor "anonymous", the client address in detail,
 * in the platform chain. Fails when the event cannot be written. */
CV_RESULT cv_audit_auth_failed(struct cv_app *app, const char *client, const char *request_id, const char *route);
/* A record that did not decrypt: counts it, and writes an event when it
 * happened on a request (p not NULL). Never fails (the caller is failing
 * already) and may overwrite the thread's last error: record yours after. */
void cv_audit_decrypt_failure(struct cv_app *app, const struct cv_principal *p, const char *tenant_id,
                              const char *server_id, uint32_t key_version);

/* A random UUID (version 4) for an object whose event is attached before
 * the store would have named it. */
CV_RESULT cv_audit_uuid(char out[CV_STORE_UUID_BYTES + 1]);

/* ---- canonical bytes (audit_chain.c; the SQL of migration 0010 agrees) ---- */

/* One event: "credvault.audit.event.v1\n" then `name:<bytes>:<value>\n` for
 * chain, seq, prev, at, tenant, actor, role, action, target, outcome,
 * request_id, detail. Appends to out. */
CV_RESULT cv_audit_canon_event(const struct cv_audit_row *row, struct cv_buf *out);
/* "2026-01-02T03:04:05.123456Z" from microseconds since the epoch. */
void cv_audit_time_text(int64_t at_us, char out[32]);
/* A head line: version, chain, seq, hash; a checkpoint lists its SHA-256. */
CV_RESULT cv_audit_canon_head(const struct cv_audit_head *head, struct cv_buf *out);
/* The payload a checkpoint signs: version, time, key label, installation id,
 * the signing key's fingerprint (hex SHA-256 of its DER public key), the
 * previous payload's hash, the heads. `digests` are the hex SHA-256 of each
 * head line, sorted; heads_digest gets SHA-256 of their concatenation. */
CV_RESULT cv_audit_canon_checkpoint(int64_t at_ms, const char *key_label, const char *installation,
                                    const char *key_sha256, const uint8_t prev[CV_AUDIT_HASH_BYTES],
                                    char (*digests)[2 * CV_AUDIT_HASH_BYTES + 1], size_t n, struct cv_buf *out,
                                    uint8_t heads_digest[CV_AUDIT_HASH_BYTES]);

/* ---- anchors (audit_anchor.c) ---- */

#define CV_AUDIT_ANCHOR_CONTEXT "credvault.audit.anchor.v1"
/* The anchor of an event as stored: HMAC in the token over chain, tenant,
 * actor, role, action, target, outcome, request id and detail. */
CV_RESULT cv_audit_anchor_make(struct cv_hsm *hsm, const struct cv_audit_event *ev, uint8_t mac[CV_AUDIT_HASH_BYTES]);
/* The store's chain hash (cv_store_set_audit_hash): SHA-256 of the row's
 * canonical bytes; `arg` is unused. */
CV_RESULT cv_audit_hash_hook(void *arg, const struct cv_audit_row *row, uint8_t hash[CV_AUDIT_HASH_BYTES]);
/* The store's hook (cv_store_set_audit_mac): `arg` is the app. */
CV_RESULT cv_audit_anchor_hook(void *arg, const struct cv_audit_event *ev, uint8_t mac[32]);
/* Whether a stored row's anchor is the one the token makes for its content:
 * CV_OK, CV_ERR_CRYPTO when it differs, or the HSM's error. */
CV_RESULT cv_audit_anchor_check(struct cv_hsm *hsm, const struct cv_audit_row *row);

/* Walks one chain, event by event, and finds its first broken link. */
struct cv_audit_walk {
    char chain[CV_AUDIT_CHAIN_MAX_BYTES + 1];
    int64_t seq;                       /* of the last event accepted */
    uint8_t hash[CV_AUDIT_HASH_BYTES]; /* of the last event accepted (zeros before the first) */
    int broken;
    int64_t broken_seq;
    int64_t broken_id;
    char reason[256];
};
void cv_audit_walk_init(struct cv_audit_walk *w, const char *chain);
/* Feeds the next row in sequence order; 0 while intact, -1 at (and after)
 * the first broken link, whose place and reason stay in w. */
int cv_audit_walk_next(struct cv_audit_walk *w, const struct cv_audit_row *row);
/* After the last row: the chain must end where its head says. */
int cv_audit_walk_end(struct cv_audit_walk *w, const struct cv_audit_head *head);

/* ---- checkpoints ---- */

/* Signs the current heads when they moved since the last checkpoint;
 * *made = 1 when it wrote one (0: nothing new, or another instance wrote
 * the same one first). Needs the HSM and the store. */
CV_RESULT cv_audit_checkpoint(struct cv_app *app, int *made);
/* The sealer: a thread that checkpoints every CREDVAULT_AUDIT_CHECKPOINT_S
 * seconds, or as soon as CREDVAULT_AUDIT_CHECKPOINT_EVENTS events were
 * written by this process since the last one, and once more when stopped. */
CV_RESULT cv_audit_sealer_start(struct cv_app *app);
void cv_audit_sealer_stop(struct cv_app *app);
/* Called for the events written (wakes the sealer at the threshold). */
void cv_audit_sealer_count(struct cv_app *app, unsigned n);

/* ---- verify and export ---- */

#define CV_AUDIT_PROBLEMS_MAX 64
#define CV_AUDIT_SIGNERS_MAX 8
struct cv_audit_report {
    uint64_t chains, events, checkpoints;
    size_t nproblems;
    struct {
        char chain[CV_AUDIT_CHAIN_MAX_BYTES + 1]; /* "" for the checkpoints' own chain */
        int64_t seq;                              /* first broken event, or 0 */
        int64_t event_id;                         /* its row id, or 0 */
        int64_t checkpoint_id;                    /* the checkpoint concerned, or 0 */
        char reason[256];
    } problems[CV_AUDIT_PROBLEMS_MAX];
    size_t problems_dropped;
    char key_fingerprint[2 * 32 + 1]; /* this installation's audit key */
    char installation[36 + 1];        /* this installation's id */
    /* which key signed the checkpoints, as each payload names it (a v1
     * payload names none: its signer is the key its signature verifies with) */
    size_t nsigners;
    struct {
        char key_fingerprint[2 * 32 + 1];
        char installation[36 + 1]; /* "" when the payload names none */
        int foreign;               /* not this installation's key or id */
        uint64_t checkpoints;
        int64_t first_id, last_id;
    } signers[CV_AUDIT_SIGNERS_MAX];
    size_t signers_dropped; /* checkpoints whose signer did not fit the list */
};
/* Checks every chain (or one tenant's), the heads, and every checkpoint's
 * signature, link and heads. The result is CV_OK when the check ran; the
 * report says whether it found a problem. */
CV_RESULT cv_audit_verify(struct cv_app *app, const char *tenant_id, struct cv_audit_report *report);
json_t *cv_audit_report_json(const struct cv_audit_report *report);

/* Where an export goes: one call per file, paths relative and made of
 * [a-z0-9._/-] only. */
struct cv_audit_sink {
    void *arg;
    CV_RESULT (*file)(void *arg, const char *path, const void *data, size_t len);
};
/* Writes a tenant's chain (one canonical file per event), every checkpoint
 * that signed it (payload, signature, the tenant's head line), the public
 * key and instructions. Makes a fresh checkpoint first, so every event is
 * covered. */
CV_RESULT cv_audit_export(struct cv_app *app, const char *tenant_id, const struct cv_audit_sink *sink, uint64_t *events,
                          uint64_t *checkpoints);

/* ---- the API ---- */

/* GET /api/audit: admin all (or ?tenant=, ?tenant=_platform), tenant-admin
 * and auditor their own tenant; filters from, to (ISO 8601), action, actor;
 * newest first, `limit` and the `before` cursor. */
struct cv_audit_query {
    const char *tenant, *from, *to, *action, *actor, *limit, *before;
};
CV_RESULT cv_audit_list(struct cv_app *app, const struct cv_principal *p, const struct cv_audit_query *q,
                        json_t **data);

/* ---- operations reports (metrics_reports.c) ---- */

/* GET /api/mcp/credentials/stale?olderThanDays=N (tenant-admin, auditor). */
CV_RESULT cv_credentials_stale(struct cv_app *app, const struct cv_principal *p, const char *older_than_days,
                               const char *limit, const char *offset, json_t **data);
/* Whether an Authorization header carries CREDVAULT_METRICS_TOKEN_FILE's token. */
int cv_metrics_token_ok(const struct cv_app *app, const char *authorization);
/* Renders every metric: the registry, then gauges read from the database
 * (credentials past expiry or age, key versions by state, encryptions of
 * the most used key versions). A database failure shows as
 * credvault_db_up 0 rather than failing the scrape. */
CV_RESULT cv_metrics_collect(struct cv_app *app, struct cv_buf *out);

#endif
