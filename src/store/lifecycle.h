/* Private to the key-lifecycle files of src/store. Their transactions span
 * several round trips (a rotation holds its lock while the token makes a
 * key; a rewrap batch holds its row locks while the token re-encrypts), so
 * they use the engine's open transactions (pq.h, cv_tx_begin). */
#ifndef CV_STORE_LIFECYCLE_H
#define CV_STORE_LIFECYCLE_H

#include "credvault/store_lifecycle.h"
#include "store/pq.h"

/* BEGIN, then the scope (tenant_id NULL: platform scope), through the one
 * engine; `d` describes the transaction and must outlive it. Statements go
 * through cv_tx_exec, events through cv_tx_audit, then cv_tx_commit or
 * cv_tx_abort. */
CV_RESULT cv_lc_begin(struct cv_store *st, const char *tenant_id, struct cv_tx *d, struct cv_tx_open *o);

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
