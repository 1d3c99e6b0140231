/* audit_events: append one event, in the event's tenant scope (platform
 * scope for platform events). The service role may only insert and read
 * here; an event never carries a secret, so nothing is wiped. */
#include "store/pq.h"

static const struct cv_sql insert_sql = {
    CV_SQL_AUDIT_INSERT, "audit_insert",
    "INSERT INTO audit_events (tenant_id, actor, role, action, target, outcome, request_id, detail) "
    "VALUES ($1::text, $2::text, $3::text, $4::text, $5::text, $6::text, $7::text, $8::jsonb)",
    8};

cv_result cv_store_audit_insert(struct cv_store *st, const struct cv_audit_event *ev)
{
    CV_ENSURE_REF(ev);
    CV_ENSURE(ev->tenant_id == NULL || cv_store_tenant_id_ok(ev->tenant_id), CV_ERR_INPUT, "invalid tenant id");
    CV_GUARD(cv_store_check_len("actor", ev->actor, 0, CV_STORE_PRINCIPAL_MAX_BYTES));
    CV_GUARD(cv_store_check_len("role", ev->role ? ev->role : "", 0, CV_STORE_ROLE_MAX_BYTES));
    CV_GUARD(cv_store_check_len("action", ev->action, 1, CV_STORE_AUDIT_ACTION_MAX_BYTES));
    if (ev->target) CV_GUARD(cv_store_check_len("target", ev->target, 0, CV_STORE_AUDIT_TARGET_MAX_BYTES));
    CV_ENSURE(cv_store_outcome_ok(ev->outcome), CV_ERR_INPUT, "outcome must be success, denied or error");
    if (ev->request_id) CV_GUARD(cv_store_check_len("request id", ev->request_id, 0, CV_STORE_REQUEST_ID_MAX_BYTES));
    if (ev->detail) CV_GUARD(cv_store_check_len("detail", ev->detail, 2, CV_STORE_AUDIT_DETAIL_MAX_BYTES));

    struct cv_q q;
    cv_q_init(&q, &insert_sql);
    cv_q_text(&q, ev->tenant_id);
    cv_q_text(&q, ev->actor);
    cv_q_text(&q, ev->role ? ev->role : "");
    cv_q_text(&q, ev->action);
    cv_q_text(&q, ev->target);
    cv_q_text(&q, ev->outcome);
    cv_q_text_opt(&q, ev->request_id);
    cv_q_text(&q, ev->detail);
    const struct cv_tx tx = {.scope = ev->tenant_id ? CV_SCOPE_TENANT : CV_SCOPE_PLATFORM, .tenant_id = ev->tenant_id};
    cv_result r = cv_store_tx(st, &tx, &q, 1);
    cv_q_clear(&q, 1);
    return r;
}
