/* Appending an audit event alone, in its own transaction: reads and
 * refusals, which change nothing else. Events that record a change ride in
 * the change's own transaction instead (struct cv_tx, tx.c). An event never
 * carries a secret, so nothing here is wiped. */
#include "credvault/store_audit.h"
#include "store/pq.h"

cv_result cv_store_audit_append(struct cv_store *st, const struct cv_audit_event *ev, int durable)
{
    CV_ENSURE_REF(ev);
    const struct cv_tx tx = {
        .scope = ev->tenant_id ? CV_SCOPE_TENANT : CV_SCOPE_PLATFORM,
        .tenant_id = ev->tenant_id,
        .flags = durable ? 0 : CV_TX_EVENTS_ASYNC,
        .events = ev,
        .nevents = 1,
    };
    return cv_store_tx(st, &tx, NULL, 0);
}

cv_result cv_store_audit_insert(struct cv_store *st, const struct cv_audit_event *ev)
{
    return cv_store_audit_append(st, ev, 1);
}
