/* The audit trail in PostgreSQL (migrations 0010, 0011, 0019): hash-chained
 * events, one chain per tenant (or the platform) and writer slot, their heads, signed
 * checkpoints; and the read-only reports operations needs (stale
 * credentials, gauges for /metrics). No libpq type crosses this header.
 * Events and checkpoints are append-only; nothing here updates or deletes. */
#ifndef CREDVAULT_STORE_AUDIT_H
#define CREDVAULT_STORE_AUDIT_H

#include <stddef.h>
#include <stdint.h>

#include "credvault/store.h"

#define CV_AUDIT_HASH_BYTES 32
#define CV_AUDIT_PLATFORM_CHAIN "_platform" /* tenant ids cannot start with '_' */
#define CV_AUDIT_CHAIN_MAX_BYTES 80 /* '<tenant>:<writer slot>' (migration 0019) */
#define CV_AUDIT_ACTION_MAX_BYTES 64
#define CV_AUDIT_TARGET_MAX_BYTES 256
#define CV_AUDIT_OUTCOME_MAX_BYTES 16
#define CV_AUDIT_REQUEST_ID_MAX_BYTES 128
#define CV_AUDIT_DETAIL_MAX_BYTES (16 * 1024)
#define CV_AUDIT_PAGE_MAX 1000 /* rows per read of a chain or a list */
#define CV_AUDIT_KEY_LABEL_MAX_BYTES 64
#define CV_AUDIT_SIGNATURE_MAX_BYTES 256     /* DER ECDSA P-256 is at most 72 */
#define CV_AUDIT_CHECKPOINT_MAX_HEADS 100000 /* chains in one checkpoint */
#define CV_AUDIT_PAYLOAD_MAX_BYTES (8 * 1024 * 1024)

/* One stored event with its place in its chain. */
struct cv_audit_row {
    int64_t id;
    char chain[CV_AUDIT_CHAIN_MAX_BYTES + 1];
    int64_t seq;
    int64_t at_us;                              /* microseconds since the epoch */
    char tenant_id[CV_TENANT_ID_MAX_BYTES + 1]; /* "" for platform events */
    char actor[CV_STORE_PRINCIPAL_MAX_BYTES + 1];
    char role[CV_STORE_ROLE_MAX_BYTES + 1];
    char action[CV_AUDIT_ACTION_MAX_BYTES + 1];
    char target[CV_AUDIT_TARGET_MAX_BYTES + 1];
    char outcome[CV_AUDIT_OUTCOME_MAX_BYTES + 1];
    char request_id[CV_AUDIT_REQUEST_ID_MAX_BYTES + 1];
    char *detail; /* JSON object text, or NULL; owned by the row during the callback */
    uint8_t prev[CV_AUDIT_HASH_BYTES];
    uint8_t hash[CV_AUDIT_HASH_BYTES];
    uint8_t mac[CV_AUDIT_HASH_BYTES]; /* the HSM anchor (migration 0016): events of format v2 */
    int has_mac;                      /* 0: format v1, written before anchoring */
};

/* Appends one event in its own transaction, in the event's scope (platform
 * scope for platform events): for reads and refusals, which change nothing
 * else. durable = 0 lets the commit return before the WAL reaches disk
 * (synchronous_commit off for that transaction only). An event that records
 * a change is passed to the store call that makes it instead, and commits
 * in the same transaction or not at all. */
/* The anchor of an event (migration 0016): an HMAC the caller makes in the
 * HSM over the event's chain and content, exactly as it will be stored
 * (`ev->detail` already holding the actor id). Set once, before the store is
 * used by more than one thread; without it events are written unanchored. */
typedef CV_RESULT (*cv_store_audit_mac_fn)(void *arg, const struct cv_audit_event *ev, uint8_t mac[32]);
void cv_store_set_audit_mac(struct cv_store *st, cv_store_audit_mac_fn fn, void *arg);
/* The chain hash of an event: SHA-256 of its canonical bytes
 * (src/domain/audit_chain.c), given the row as it will be stored (chain,
 * seq, prev, at, fields, mac). The store computes no hash of its own; set
 * once, before first use, like the anchor. Without it nothing is appended. */
typedef CV_RESULT (*cv_store_audit_hash_fn)(void *arg, const struct cv_audit_row *row,
                                            uint8_t hash[CV_AUDIT_HASH_BYTES]);
void cv_store_set_audit_hash(struct cv_store *st, cv_store_audit_hash_fn fn, void *arg);
/* Appends a lone event through the store's group commit: it shares one
 * transaction with the events of concurrent callers (at most
 * CV_STORE_AUDIT_BATCH_MAX: those that queued while the previous batch was
 * written), and returns once that transaction committed; a failed batch
 * fails every caller in it. durable = 0: the batch may commit without
 * waiting for the WAL flush, unless an event in it asks to wait. */
#define CV_STORE_AUDIT_BATCH_MAX 64
CV_RESULT cv_store_audit_append(struct cv_store *st, const struct cv_audit_event *ev, int durable);
/* What conditional events rely on (a write that changed nothing writes no
 * event): PostgreSQL counts the rows a transaction changed (track_counts).
 * CV_ERR_CONFLICT, naming the setting, when it is off. */
CV_RESULT cv_store_audit_check_ready(struct cv_store *st);

/* ---- reading ---- */

typedef int (*cv_store_audit_cb)(void *arg, const struct cv_audit_row *row);

/* GET /api/audit: newest first. tenant_id NULL reads in platform scope
 * (every chain, or only `filter->tenant_id` when set); otherwise the tenant's
 * own scope, and row-level security holds it there. */
struct cv_audit_filter {
    const char *tenant_id;  /* platform scope only: one tenant's events */
    int platform_only;      /* platform scope only: the platform chain */
    int64_t from_ms, to_ms; /* 0: open */
    const char *action;     /* exact; NULL: any */
    const char *actor;      /* exact; NULL: any */
    int64_t before_id;      /* 0: from the newest */
    unsigned limit;         /* 1..CV_AUDIT_PAGE_MAX */
};
CV_RESULT cv_store_audit_list(struct cv_store *st, const char *tenant_id, const struct cv_audit_filter *f,
                              cv_store_audit_cb cb, void *arg);
/* One chain in order, from after_seq, at most `limit` rows (platform scope). */
CV_RESULT cv_store_audit_chain_read(struct cv_store *st, const char *chain, int64_t after_seq, unsigned limit,
                                    cv_store_audit_cb cb, void *arg, unsigned *rows);

struct cv_audit_head {
    char chain[CV_AUDIT_CHAIN_MAX_BYTES + 1];
    char tenant_id[CV_TENANT_ID_MAX_BYTES + 1];
    int64_t seq;
    uint8_t hash[CV_AUDIT_HASH_BYTES];
};
typedef int (*cv_store_audit_head_cb)(void *arg, const struct cv_audit_head *head);
/* The chains' heads (platform scope), by chain name; `chain` NULL for all.
 * unsealed_only: only heads that no checkpoint has signed at their seq. */
CV_RESULT cv_store_audit_heads(struct cv_store *st, const char *chain, int unsealed_only, cv_store_audit_head_cb cb,
                               void *arg);

/* ---- checkpoints (platform scope) ---- */

struct cv_audit_checkpoint {
    int64_t id;
    int64_t at_ms;
    char key_label[CV_AUDIT_KEY_LABEL_MAX_BYTES + 1];
    uint8_t prev[CV_AUDIT_HASH_BYTES];         /* SHA-256 of the previous payload, or zeros */
    uint8_t heads_digest[CV_AUDIT_HASH_BYTES]; /* SHA-256 of the payload's digest lines */
    uint32_t heads;
    char *payload; /* heap; the exact signed bytes */
    uint8_t signature[CV_AUDIT_SIGNATURE_MAX_BYTES];
    size_t signature_len;
};
void cv_audit_checkpoint_free(struct cv_audit_checkpoint *cp);

/* Inserts the checkpoint and the heads it signed in one transaction;
 * cp->id is filled in. CV_ERR_CONFLICT when another checkpoint already
 * follows cp->prev (another instance won the race). */
CV_RESULT cv_store_audit_checkpoint_insert(struct cv_store *st, struct cv_audit_checkpoint *cp,
                                           const struct cv_audit_head *heads, size_t nheads);
/* The newest checkpoint; *found = 0 when there is none. */
CV_RESULT cv_store_audit_checkpoint_last(struct cv_store *st, struct cv_audit_checkpoint *cp, int *found);
typedef int (*cv_store_audit_checkpoint_cb)(void *arg, const struct cv_audit_checkpoint *cp);
/* Checkpoints with id > after_id, oldest first, at most `limit`. */
CV_RESULT cv_store_audit_checkpoint_list(struct cv_store *st, int64_t after_id, unsigned limit,
                                         cv_store_audit_checkpoint_cb cb, void *arg, unsigned *rows);
/* The heads checkpoint `checkpoint_id` signed (chain NULL: all), by chain.
 * The callback's head->tenant_id is "" for the platform chain. */
CV_RESULT cv_store_audit_checkpoint_heads(struct cv_store *st, int64_t checkpoint_id, const char *chain,
                                          cv_store_audit_head_cb cb, void *arg);
/* For one chain: the (checkpoint id, seq, hash) of every checkpoint that
 * signed it, in sequence order, after sequence number after_seq; at most `limit`. */
typedef int (*cv_store_audit_signed_cb)(void *arg, int64_t checkpoint_id, const struct cv_audit_head *head);
CV_RESULT cv_store_audit_chain_checkpoints(struct cv_store *st, const char *chain, int64_t after_seq, unsigned limit,
                                           cv_store_audit_signed_cb cb, void *arg, unsigned *rows);

/* ---- reports ---- */

/* Servers of a tenant whose credentials were last set before `set_before_ms`
 * or expire before `expires_before_ms`, oldest first (names and dates only:
 * encrypted_env is never read). */
CV_RESULT cv_store_credentials_stale(struct cv_store *st, const char *tenant_id, int64_t set_before_ms,
                                     int64_t expires_before_ms, unsigned limit, unsigned offset, cv_store_server_cb cb,
                                     void *arg, uint64_t *total);

/* Whole-platform numbers for /metrics (platform scope, one round trip). */
struct cv_ops_counts {
    uint64_t credentials;          /* stored server credential maps */
    uint64_t credentials_expired;  /* expires_at in the past */
    uint64_t credentials_over_age; /* last set more than max_age ago */
    uint64_t key_versions[3];      /* active, retired, destroyed */
    uint64_t tenants;
};
CV_RESULT cv_store_ops_counts(struct cv_store *st, int64_t max_age_ms, struct cv_ops_counts *out);
/* The key versions with the most encryptions, most used first (platform scope). */
typedef int (*cv_store_key_usage_cb)(void *arg, const char *tenant_id, uint32_t version, const char *state,
                                     uint64_t encryptions);
CV_RESULT cv_store_key_usage_top(struct cv_store *st, unsigned limit, cv_store_key_usage_cb cb, void *arg);

#endif
