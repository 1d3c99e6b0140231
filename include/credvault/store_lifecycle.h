/* The PostgreSQL side of the key lifecycle (issue 4): master and tenant key
 * rotation, rewrap jobs and their batches, the minimum decryption version,
 * destruction of retired versions, crypto-shredding, and the key-event log
 * that other instances follow (LISTEN/NOTIFY). No libpq type crosses it.
 *
 * Unlike the rest of the store, some calls here keep one transaction open
 * across a callback (the HSM work of a rotation or a batch) so that their
 * row and advisory locks cover it. Such a callback must not call the store:
 * the transaction occupies this thread's connection. */
#ifndef CREDVAULT_STORE_LIFECYCLE_H
#define CREDVAULT_STORE_LIFECYCLE_H

#include <stddef.h>
#include <stdint.h>

#include "credvault/result.h"
#include "credvault/store.h"

#define CV_STORE_JOB_STATE_MAX_BYTES 16
#define CV_STORE_EVENT_KIND_MAX_BYTES 32
#define CV_STORE_REWRAP_SKIP_MAX 1000 /* rows a job may skip (undecryptable) before it gives up */
#define CV_STORE_REWRAP_BATCH_MAX 10000
#define CV_STORE_EVENTS_PAGE_MAX 1000
#define CV_STORE_EVENT_WINDOW_S 60 /* re-read window: events may commit out of id order */
#define CV_STORE_KEY_EVENTS_CHANNEL "credvault_keys"

enum cv_job_kind { CV_JOB_MASTER_REWRAP = 0, CV_JOB_RECORD_REWRAP = 1 };

struct cv_key_job_row {
    int64_t id;
    enum cv_job_kind kind;
    char tenant_id[CV_TENANT_ID_MAX_BYTES + 1]; /* "" for a master rewrap */
    uint32_t target_version;                    /* master version, or tenant key version */
    char state[CV_STORE_JOB_STATE_MAX_BYTES + 1]; /* running, done, failed, superseded */
    uint64_t total;     /* rows below the target when the job started */
    uint64_t done;      /* rows moved by the job's batches */
    uint64_t failed;    /* rows the job had to leave behind (they do not decrypt) */
    uint64_t batches;
    uint64_t remaining; /* rows below the target now (counted by every read) */
    int64_t created_at_ms;
    int64_t updated_at_ms;
    int64_t finished_at_ms; /* 0 while running */
    char created_by[CV_STORE_PRINCIPAL_MAX_BYTES + 1];
};

typedef int (*cv_store_job_cb)(void *arg, const struct cv_key_job_row *job);

/* ---- master keys (platform scope, under one advisory lock) ---- */

/* Makes master `version` in the token (or finds the one an interrupted
 * rotation made) and fills row->canary. Runs inside the rotation's
 * transaction; HSM calls only. */
typedef cv_result (*cv_store_master_make_cb)(void *arg, uint32_t version, struct cv_master_key_row *row);
/* Registers master newest+1 (made by `make`), marks older versions retired,
 * supersedes a running master rewrap and starts a new one (`job`), and
 * announces the change. Two rotations queue on the lock.
 *
 * Every change below commits with its audit event `ev` or not at all. Where
 * the version is chosen inside the transaction, the event's target is
 * ev->target followed by that version (pass "credvault-master-", "acme/"). */
CV_RESULT cv_store_lc_master_rotate(struct cv_store *st, const char *actor, cv_store_master_make_cb make, void *arg,
                                    const struct cv_audit_event *ev, uint32_t *new_version,
                                    struct cv_key_job_row *job);
/* Deletes master `version`'s row when no live tenant key refers to it and it
 * is not the newest (CV_ERR_CONFLICT otherwise, *wrapping = how many still
 * do). *existed = 0 when the row was already gone; *newest gets the newest
 * version either way. */
CV_RESULT cv_store_lc_master_forget(struct cv_store *st, uint32_t version, const struct cv_audit_event *ev,
                                    int *existed, uint64_t *wrapping, uint32_t *newest);

/* ---- tenant keys (tenant scope) ---- */

/* Adds `key` (its version must be expect_newest + 1) when the tenant's newest
 * version is still expect_newest; *added = 0 when another rotation won.
 * The tenant row is locked, so rotations of one tenant queue. */
CV_RESULT cv_store_lc_tenant_key_add(struct cv_store *st, const struct cv_tenant_key_row *key, uint32_t expect_newest,
                                     const struct cv_audit_event *ev, int *added);
/* Raises the tenant's minimum decryption version; the versions below it
 * become 'retired' and refuse to decrypt. Refused (CV_ERR_CONFLICT,
 * *blocking = records) while a record still uses an older version, and
 * (CV_ERR_INPUT) below the current minimum or above the newest version. */
CV_RESULT cv_store_lc_min_decrypt_raise(struct cv_store *st, const char *tenant_id, uint32_t min_version,
                                        const struct cv_audit_event *ev, uint64_t *blocking);
/* Destroys every retired version (wrapped bytes and binding cleared, state
 * 'destroyed'): crypto-shredding of what they sealed. versions[] gets up to
 * `max` of them, *n how many were destroyed; one event per version. Refused
 * (CV_ERR_CONFLICT, *blocking) while a record uses one. */
CV_RESULT cv_store_lc_keys_destroy_retired(struct cv_store *st, const char *tenant_id,
                                           const struct cv_audit_event *ev, uint32_t *versions, size_t max,
                                           size_t *n, uint64_t *blocking);

struct cv_store_shred_counts {
    uint64_t records;
    uint64_t key_versions;
};
/* Deletes the tenant with its wrapped keys, records, key counters, jobs and
 * tokens (one transaction, platform scope); audit events stay. */
CV_RESULT cv_store_lc_tenant_shred(struct cv_store *st, const char *tenant_id, const struct cv_audit_event *ev,
                                   struct cv_store_shred_counts *counts);

/* ---- rewrap jobs ---- */

/* Starts a job, or joins the running one of that kind (and tenant, NULL for
 * a master rewrap); the target is the newest active version, read in the
 * same transaction. *started = 1 when a new job began (and only then is
 * `ev` written, its target followed by the job's target version). */
CV_RESULT cv_store_lc_job_start(struct cv_store *st, enum cv_job_kind kind, const char *tenant_id, const char *actor,
                                const struct cv_audit_event *ev, struct cv_key_job_row *job, int *started);
/* The newest job of that kind (and tenant); CV_ERR_NOT_FOUND when none. */
CV_RESULT cv_store_lc_job_latest(struct cv_store *st, enum cv_job_kind kind, const char *tenant_id,
                                 struct cv_key_job_row *job);
/* Re-reads a job (progress, state, remaining rows). */
CV_RESULT cv_store_lc_job_refresh(struct cv_store *st, struct cv_key_job_row *job);
/* Every running job, all tenants (platform scope), oldest first, at most `limit`. */
CV_RESULT cv_store_lc_jobs_running(struct cv_store *st, unsigned limit, cv_store_job_cb cb, void *arg);
/* Ends a running job: 'done' when no row remains below its target, 'failed'
 * when only the `failed` rows this caller skipped remain (failed > 0).
 * *ended = 1 when this call ended it (so exactly one caller reports it), and
 * only then is `ev` written: outcome "success" for done, "error" for failed. */
CV_RESULT cv_store_lc_job_end(struct cv_store *st, struct cv_key_job_row *job, uint64_t failed,
                              const struct cv_audit_event *ev, int *ended);

/* A rewrap batch: rows are locked FOR NO KEY UPDATE SKIP LOCKED, handed to the
 * callback one by one, written back and counted on the job, in one
 * transaction. The callback returns CV_ERR_CRYPTO for a row that cannot be
 * moved (it is left as it is and added to `skip`); any other
 * failure rolls the batch back. `skip` lists the rows to leave out (those
 * this run skipped before: server ids, or "tenant/version" of keys); a
 * skipped row is added to it, and CV_ERR_CONFLICT ends a batch once it is full. */
#define CV_STORE_SKIP_ID_MAX_BYTES 128 /* a server id, or "tenant/version" */
struct cv_store_skip {
    char ids[CV_STORE_REWRAP_SKIP_MAX][CV_STORE_SKIP_ID_MAX_BYTES + 1]; /* heap-allocate: about 129 KB */
    size_t n;
};
/* Master rewrap: tenant keys under a master version below `target`. */
typedef cv_result (*cv_store_key_rewrap_cb)(void *arg, const struct cv_key_ref *in, struct cv_key_ref *out);
CV_RESULT cv_store_lc_master_rewrap_batch(struct cv_store *st, const struct cv_key_job_row *job, unsigned limit,
                                          struct cv_store_skip *skip, cv_store_key_rewrap_cb cb, void *arg,
                                          unsigned *processed);
/* Record rewrap: the tenant's records under a key version below `target`.
 * The callback gets the row's server id, key version, revision (which a
 * format-3 record's AAD covers; a rewrap keeps it) and record, and returns
 * the new record (malloc'ed) sealed under `target`. */
typedef cv_result (*cv_store_record_rewrap_cb)(void *arg, const char *server_id, uint32_t key_version,
                                               int64_t revision, const char *encrypted_env, char **sealed);
CV_RESULT cv_store_lc_record_rewrap_batch(struct cv_store *st, const struct cv_key_job_row *job, uint32_t target,
                                          unsigned limit, struct cv_store_skip *skip, cv_store_record_rewrap_cb cb,
                                          void *arg, unsigned *processed);

/* ---- key events (platform scope) and LISTEN ---- */

struct cv_key_event {
    int64_t id;
    char kind[CV_STORE_EVENT_KIND_MAX_BYTES + 1]; /* master_rotated, tenant_key_rotated, … */
    char tenant_id[CV_TENANT_ID_MAX_BYTES + 1];   /* "" for platform events */
    uint32_t version;                             /* 0 when none */
};
typedef int (*cv_store_key_event_cb)(void *arg, const struct cv_key_event *ev);
/* Events with an id above `after`, plus those of the last
 * CV_STORE_EVENT_WINDOW_S seconds (a transaction may commit after a later
 * id was read; callers skip ids they handled), oldest first, at most `limit`. */
CV_RESULT cv_store_lc_events_since(struct cv_store *st, int64_t after, unsigned limit, cv_store_key_event_cb cb,
                                   void *arg, unsigned *count);
CV_RESULT cv_store_lc_events_head(struct cv_store *st, int64_t *head);
/* Deletes events older than `keep_s` seconds. */
CV_RESULT cv_store_lc_events_prune(struct cv_store *st, unsigned keep_s, uint64_t *pruned);

/* A dedicated connection that LISTENs on CV_STORE_KEY_EVENTS_CHANNEL. */
struct cv_store_listener;
CV_RESULT cv_store_listener_open(struct cv_store *st, struct cv_store_listener **out);
/* Waits up to timeout_ms for a notification, or for `wake_fd` (may be -1) to
 * become readable. *notified = 1 when notifications arrived (all are
 * drained). CV_ERR_UNAVAILABLE when the connection broke: close and reopen. */
CV_RESULT cv_store_listener_wait(struct cv_store_listener *l, unsigned timeout_ms, int wake_fd, int *notified);
void cv_store_listener_close(struct cv_store_listener *l);

#endif
