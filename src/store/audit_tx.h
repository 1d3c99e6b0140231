/* Private to src/store: the hook by which tx.c lets an attached audit event
 * (cv_store_audit_attach) ride in the pipeline of the write transaction it
 * records, so the event commits with the change or not at all, and is not
 * written when the change changed nothing; and the audit files' statement ids. */
#ifndef CV_STORE_AUDIT_TX_H
#define CV_STORE_AUDIT_TX_H

#include "store/pq.h"

/* The audit files number their statements from here, outside the shared
 * enum (whose bitmask has room for 64), below the import's ids (56 on). */
#define CV_SQL_AUDIT_BASE 40
#define CV_SQL_AUDIT_ID(k) ((enum cv_sql_id)(CV_SQL_AUDIT_BASE + (k)))
#define CV_SQL_AUDIT_IDS 13
_Static_assert(CV_SQL__COUNT <= CV_SQL_AUDIT_BASE, "store statement ids reached the audit range (40-52)");
_Static_assert(CV_SQL_AUDIT_BASE + CV_SQL_AUDIT_IDS <= 56, "the audit range ends below the import's ids");

/* The statement to append to `tx` after its own, or NULL: a staged event of
 * this thread, not yet written, when `tx` writes in a scope that can hold
 * it. *mark is then the statement to send before the caller's (it notes how
 * many rows the transaction had changed, so the event is written only if the
 * caller's statements changed one). */
struct cv_q *cv_store_audit_staged(struct cv_store *st, const struct cv_tx *tx, struct cv_q **mark);
/* After the transaction ran: when it committed, records whether and where
 * the event landed; always clears both statements' results. */
void cv_store_audit_staged_done(struct cv_q *q, struct cv_q *mark, int committed);

#endif
