/* Writing audit events, fail closed: an event that cannot be written fails
 * the operation it records. State changes attach their event to the change's
 * own transaction (the event is an argument of the store call that makes
 * the change); reads and refusals write theirs alone, without waiting
 * for the WAL flush unless CREDVAULT_AUDIT_DURABILITY=all (docs/operations.md
 * says why that keeps the chain whole). Events carry names, roles, ids and
 * outcomes, never a secret value. */
#include <stdio.h>
#include <string.h>

#include "credvault/crypto.h"
#include "credvault/log.h"
#include "credvault/metrics.h"
#include "domain/audit.h"

/* Actions that record no change: their events need not wait for the disk
 * (a database crash in the next few hundred milliseconds can lose them, and
 * only them: a later durable commit flushes every earlier one). Any outcome
 * other than success records no change either. */
static const char *const read_actions[] = {
    "credentials.read_masked", "credentials.read_full", "credentials.validate", "credentials.decrypt_failed",
    "credentials.list",        "credentials.stale",     "auth.failed",          "audit.read",
};

static int records_no_change(const char *action, const char *outcome)
{
    if (outcome && strcmp(outcome, "success") != 0) return 1;
    for (size_t i = 0; i < sizeof(read_actions) / sizeof(read_actions[0]); i++)
        if (strcmp(action, read_actions[i]) == 0) return 1;
    return 0;
}

static int durable_for(const struct cv_app *app, int no_change)
{
    const char *mode = app->cfg ? app->cfg->audit_durability : NULL;
    /* anything but the documented relaxed mode is the safe one */
    return !no_change || !mode || strcmp(mode, "changes") != 0;
}

/* ---- writing ---- */

void cv_audit_event_init(struct cv_audit_event *ev, const struct cv_principal *p, const char *tenant_id,
                         const char *action, const char *target, const char *outcome)
{
    ev->tenant_id = tenant_id && *tenant_id ? tenant_id : NULL;
    ev->actor = p ? p->name : CV_AUDIT_ANONYMOUS;
    ev->actor_id = p && p->token_id[0] ? p->token_id : NULL;
    ev->role = p ? cv_role_name(p->role) : "";
    ev->action = action;
    ev->target = target;
    ev->outcome = outcome;
    ev->request_id = p && p->request_id ? p->request_id : "";
    ev->detail = NULL;
}

static void counted(struct cv_app *app, unsigned n, int durable)
{
    for (unsigned i = 0; i < n; i++) cv_metric_inc_l(app ? app->metrics : NULL, CV_M_AUDIT_EVENTS, durable ? "sync" : "async", NULL, NULL);
    cv_audit_sealer_count(app, n);
}

static cv_result write_event(struct cv_app *app, const struct cv_audit_event *ev, int durable)
{
    CV_ENSURE(app && app->store, CV_ERR_INTERNAL, "no store to audit to");
    cv_result r = cv_store_audit_append(app->store, ev, durable);
    if (cv_failed(r)) {
        cv_metric_inc(app->metrics, CV_M_AUDIT_FAILURES);
        cv_log(CV_LOG_ERROR, "audit_write_failed", "action", ev->action, "tenant", ev->tenant_id ? ev->tenant_id : "",
               "request_id", ev->request_id ? ev->request_id : "", "error", cv_error_message(), NULL);
        return r;
    }
    counted(app, 1, durable);
    return CV_OK;
}

cv_result cv_audit(struct cv_app *app, const struct cv_principal *p, const char *tenant_id, const char *action,
                   const char *target, const char *outcome)
{
    struct cv_audit_event ev;
    cv_audit_event_init(&ev, p, tenant_id, action, target, outcome);
    return write_event(app, &ev, durable_for(app, records_no_change(action, outcome)));
}

cv_result cv_audit_read(struct cv_app *app, const struct cv_principal *p, const char *tenant_id, const char *action,
                        const char *target, const char *outcome)
{
    struct cv_audit_event ev;
    cv_audit_event_init(&ev, p, tenant_id, action, target, outcome);
    return write_event(app, &ev, durable_for(app, 1));
}

void cv_audit_committed(struct cv_app *app, unsigned events)
{
    counted(app, events, 1);
}

cv_result cv_audit_change(struct cv_app *app, cv_result change, unsigned events)
{
    if (cv_ok(change)) counted(app, events, 1);
    return change;
}

cv_result cv_audit_auth_failed(struct cv_app *app, const char *client, const char *request_id, const char *route)
{
    json_t *d = json_pack("{s:s, s:s}", "client", client ? client : "-", "route", route ? route : "-");
    char *detail = d ? json_dumps(d, JSON_COMPACT) : NULL;
    json_decref(d);
    CV_ENSURE(detail != NULL, CV_ERR_MEMORY, "out of memory");
    struct cv_audit_event ev;
    cv_audit_event_init(&ev, NULL, NULL, "auth.failed", NULL, "denied");
    ev.detail = detail;
    ev.request_id = request_id ? request_id : "";
    cv_result r = write_event(app, &ev, durable_for(app, 1));
    cv_json_free(detail);
    return r;
}

void cv_audit_decrypt_failure(struct cv_app *app, const struct cv_principal *p, const char *tenant_id,
                              const char *server_id, uint32_t key_version)
{
    cv_metric_inc(app ? app->metrics : NULL, CV_M_DECRYPT_FAILURES);
    if (!app || !p) return; /* not on a request (the command line): the log line is the record */
    char detail[64];
    snprintf(detail, sizeof(detail), "{\"keyVersion\":%u}", key_version);
    struct cv_audit_event ev;
    cv_audit_event_init(&ev, p, tenant_id, "credentials.decrypt_failed", server_id, "error");
    ev.detail = detail;
    /* the caller is failing already, and records its own error after this */
    (void)write_event(app, &ev, durable_for(app, 1));
}

cv_result cv_audit_uuid(char out[CV_STORE_UUID_BYTES + 1])
{
    uint8_t b[16];
    CV_GUARD(cv_crypto_random(b, sizeof(b)));
    b[6] = (uint8_t)((b[6] & 0x0f) | 0x40); /* version 4 */
    b[8] = (uint8_t)((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
    char hex[33];
    cv_hex_encode(b, sizeof(b), hex);
    snprintf(out, CV_STORE_UUID_BYTES + 1, "%.8s-%.4s-%.4s-%.4s-%.12s", hex, hex + 8, hex + 12, hex + 16, hex + 20);
    return CV_OK;
}
