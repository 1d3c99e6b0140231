/* Private to the key-lifecycle files of src/store: transactions that span
 * several round trips (and a caller's HSM work in between), on this
 * thread's connection. The rest of the store sends a whole transaction in
 * one pipelined round trip; the lifecycle cannot, because a rotation must
 * hold its lock while the token makes a key, and a rewrap batch must hold
 * its row locks while the token re-encrypts. Statements here are rare
 * (administration, batches of up to CV_STORE_REWRAP_BATCH_MAX rows), so they
 * go unnamed (parsed per call) and keep the prepared-statement table as it is. */
#ifndef CV_STORE_LIFECYCLE_H
#define CV_STORE_LIFECYCLE_H

#include "credvault/store_lifecycle.h"
#include "store/pq.h"

/* One open transaction. Nothing else may use this thread's connection until
 * cv_lc_commit or cv_lc_abort: a store call in between would find the
 * connection inside a transaction and replace it (detected: CV_ERR_INTERNAL). */
struct cv_lc_tx {
    struct cv_store *st;
    struct cv_conn *c;
    PGconn *pg; /* the connection the transaction began on */
    int open;
};

/* BEGIN, then the scope: tenant_id NULL means platform scope. */
CV_RESULT cv_lc_begin(struct cv_store *st, const char *tenant_id, struct cv_lc_tx *tx);
/* Runs one statement; q->res holds its result on success (the caller clears
 * it). On failure the transaction is rolled back and closed; `msgs` gives the
 * caller-facing messages for 23505 and 23503 as in struct cv_tx. */
CV_RESULT cv_lc_exec(struct cv_lc_tx *tx, struct cv_q *q, const struct cv_tx *msgs);
/* Runs a statement that must return exactly one row of `ncols` columns. */
CV_RESULT cv_lc_exec_row(struct cv_lc_tx *tx, struct cv_q *q, const struct cv_tx *msgs, int ncols);
CV_RESULT cv_lc_commit(struct cv_lc_tx *tx);
/* Rolls back if still open; safe to call twice. */
void cv_lc_abort(struct cv_lc_tx *tx);

/* Appends the key event (and its NOTIFY, delivered at commit) to the transaction. */
CV_RESULT cv_lc_event(struct cv_lc_tx *tx, const char *kind, const char *tenant_id, uint32_t version);

/* A text[] literal of the skip list, for "<> ALL($n::text[])"; heap, NULL on no memory. */
char *cv_lc_skip_literal(const struct cv_store_skip *skip);
/* Adds id to the skip list; 0 when it is full. */
int cv_lc_skip_add(struct cv_store_skip *skip, const char *id);

/* Job columns, shared by the job reads and the statements that return a job. */
#define CV_LC_JOB_COLS                                                                                     \
    "j.id, j.kind, coalesce(j.tenant_id, ''), j.target_version, j.state, j.total, j.done, j.failed, "      \
    "j.batches, " CV_SQL_MS("j.created_at") ", " CV_SQL_MS("j.updated_at") ", "                            \
    "coalesce(" CV_SQL_MS("j.finished_at") ", 0), j.created_by"
#define CV_LC_JOB_NCOLS 13
/* Reads the job columns starting at `col`; remaining is left as it is. */
CV_RESULT cv_lc_job_row(const PGresult *res, int row, int col, struct cv_key_job_row *job);

#endif
