/* GET /api/audit: who may read which chain (admin every chain, tenant-admin
 * and auditor their own tenant's, nobody else), the filters, the page, and
 * the event's shape in the API. Reading the trail is itself an event. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "credvault/crypto.h"
#include "domain/audit.h"

/* "2026-01-31", "2026-01-31T12:00:00Z", "2026-01-31T12:00:00.250Z" (UTC). */
static cv_result parse_time(const char *name, const char *s, int64_t *ms)
{
    *ms = 0;
    if (!s) return CV_OK;
    CV_GUARD(cv_time_parse(name, s, CV_TIME_DATE, ms));
    CV_ENSURE(*ms > 0, CV_ERR_INPUT, "%s is not a valid time", name); /* 0 means no bound */
    return CV_OK;
}

static cv_result parse_id(const char *s, int64_t *out)
{
    *out = 0;
    if (!s) return CV_OK;
    CV_ENSURE(*s >= '1' && *s <= '9' && strlen(s) <= 18, CV_ERR_INPUT, "before must be an event id");
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    CV_ENSURE(errno == 0 && *end == '\0' && v > 0, CV_ERR_INPUT, "before must be an event id");
    *out = v;
    return CV_OK;
}

static json_t *audit_event_json(const struct cv_audit_row *row)
{
    char at[32], hash[2 * CV_AUDIT_HASH_BYTES + 1], prev[2 * CV_AUDIT_HASH_BYTES + 1];
    cv_audit_time_text(row->at_us, at);
    cv_hex_encode(row->hash, CV_AUDIT_HASH_BYTES, hash);
    cv_hex_encode(row->prev, CV_AUDIT_HASH_BYTES, prev);
    json_t *detail = row->detail ? json_loads(row->detail, 0, NULL) : NULL;
    /* the actor's token id rides in the detail (hashed with it); shown beside the name */
    const char *actor_id = json_string_value(json_object_get(detail, "actorId"));
    return json_pack("{s:I, s:s, s:I, s:s, s:s?, s:s, s:s?, s:s, s:s, s:s?, s:s, s:s?, s:o, s:s, s:s}", "id",
                     (json_int_t)row->id, "chain", row->chain, "seq", (json_int_t)row->seq, "at", at, "tenantId",
                     row->tenant_id[0] ? row->tenant_id : NULL, "actor", row->actor, "actorId", actor_id, "role", row->role, "action",
                     row->action, "target", row->target[0] ? row->target : NULL, "outcome", row->outcome, "requestId",
                     row->request_id[0] ? row->request_id : NULL, "detail", detail ? detail : json_null(), "hash", hash,
                     "prevHash", prev);
}

struct page {
    json_t *events;
    int64_t last_id;
    unsigned n;
};

static int add_event(void *arg, const struct cv_audit_row *row)
{
    struct page *pg = arg;
    json_t *e = audit_event_json(row);
    if (!e || json_array_append_new(pg->events, e) != 0) return 1;
    pg->last_id = row->id;
    pg->n++;
    return 0;
}

cv_result cv_audit_list(struct cv_app *app, const struct cv_principal *p, const struct cv_audit_query *q, json_t **data)
{
    CV_ENSURE(p->role == CV_ROLE_ADMIN || p->role == CV_ROLE_TENANT_ADMIN || p->role == CV_ROLE_AUDITOR,
              CV_ERR_FORBIDDEN, "this token may not read the audit trail");
    struct cv_audit_filter f;
    memset(&f, 0, sizeof(f));
    unsigned limit;
    CV_GUARD(cv_parse_uint_param(q->limit, CV_AUDIT_LIST_DEFAULT_LIMIT, CV_AUDIT_LIST_MAX_LIMIT, "limit", &limit));
    CV_ENSURE(limit >= 1, CV_ERR_INPUT, "limit must be 1 to %d", CV_AUDIT_LIST_MAX_LIMIT);
    f.limit = limit;
    CV_GUARD(parse_time("from", q->from, &f.from_ms));
    CV_GUARD(parse_time("to", q->to, &f.to_ms));
    CV_GUARD(parse_id(q->before, &f.before_id));
    if (q->action) CV_ENSURE(*q->action && strlen(q->action) <= CV_AUDIT_ACTION_MAX_BYTES, CV_ERR_INPUT, "bad action");
    if (q->actor) CV_ENSURE(*q->actor && strlen(q->actor) <= CV_STORE_PRINCIPAL_MAX_BYTES, CV_ERR_INPUT, "bad actor");
    f.action = q->action;
    f.actor = q->actor;

    const char *scope = NULL; /* NULL: platform scope */
    if (p->role == CV_ROLE_ADMIN) {
        if (q->tenant && strcmp(q->tenant, CV_AUDIT_PLATFORM_CHAIN) == 0)
            f.platform_only = 1;
        else if (q->tenant) {
            CV_ENSURE(cv_tenant_id_valid(q->tenant), CV_ERR_INPUT, "tenant is not a valid tenant id");
            f.tenant_id = q->tenant;
        }
    } else {
        CV_ENSURE(p->tenant_id[0] != '\0', CV_ERR_FORBIDDEN, "this token belongs to no tenant");
        /* another tenant looks exactly like one that does not exist */
        CV_ENSURE(!q->tenant || strcmp(q->tenant, p->tenant_id) == 0, CV_ERR_NOT_FOUND, "tenant not found");
        scope = p->tenant_id;
    }

    struct page pg = {json_array(), 0, 0};
    CV_ENSURE(pg.events != NULL, CV_ERR_MEMORY, "out of memory");
    cv_result r = cv_store_audit_list(app->store, scope, &f, add_event, &pg);
    if (cv_ok(r)) r = cv_audit_read(app, p, scope, "audit.read", NULL, "success");
    if (cv_failed(r)) {
        json_decref(pg.events);
        return r;
    }
    char next[24];
    snprintf(next, sizeof(next), "%lld", (long long)pg.last_id);
    *data = json_pack("{s:o, s:I, s:s?}", "events", pg.events, "limit", (json_int_t)limit, "next",
                      pg.n == limit ? next : NULL);
    CV_ENSURE(*data != NULL, CV_ERR_MEMORY, "out of memory");
    return CV_OK;
}
