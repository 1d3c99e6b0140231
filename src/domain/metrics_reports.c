/* Operations reports: the stale-credentials list (names and dates, never a
 * value), the check of the metrics scrape token, and /metrics itself: the
 * registry's counters plus gauges read from the database at scrape time.
 * Tenant ids appear as label values only on the few most used key versions. */
#include <stdio.h>
#include <string.h>

#include "credvault/crypto.h"
#include "credvault/metrics.h"
#include "domain/audit.h"

#define MS_PER_DAY INT64_C(86400000)
#define KEY_USAGE_TOP 50 /* key versions shown with their encryption count */

/* ---- stale credentials ---- */

struct stale_ctx {
    json_t *servers;
    int64_t set_before, expires_before, now;
};

static int add_stale(void *arg, const struct cv_server_row *row)
{
    struct stale_ctx *c = arg;
    char updated[32], expires[32];
    cv_time_iso8601(row->last_updated_ms, updated);
    if (row->expires_at_ms) cv_time_iso8601(row->expires_at_ms, expires);
    json_t *reasons = json_array();
    if (row->last_updated_ms < c->set_before) json_array_append_new(reasons, json_string("age"));
    if (row->expires_at_ms && row->expires_at_ms < c->expires_before)
        json_array_append_new(reasons, json_string("expiry"));
    json_t *s =
        json_pack("{s:s, s:s, s:s, s:s, s:s?, s:b, s:o}", "id", row->server_id, "name", row->server_name, "templateId",
                  row->template_id, "lastUpdated", updated, "expiresAt", row->expires_at_ms ? expires : NULL, "expired",
                  row->expires_at_ms != 0 && row->expires_at_ms <= c->now, "reasons", reasons ? reasons : json_array());
    return s == NULL || json_array_append_new(c->servers, s) != 0;
}

cv_result cv_credentials_stale(struct cv_app *app, const struct cv_principal *p, const char *older_than_days,
                               const char *limit, const char *offset, json_t **data)
{
    CV_ENSURE(p->role == CV_ROLE_TENANT_ADMIN || p->role == CV_ROLE_AUDITOR, CV_ERR_FORBIDDEN,
              "this action needs a tenant-admin or auditor token");
    CV_ENSURE(p->tenant_id[0] != '\0', CV_ERR_FORBIDDEN, "this token belongs to no tenant");
    unsigned days, lim, off;
    CV_GUARD(cv_parse_uint_param(older_than_days, CV_STALE_DEFAULT_DAYS, CV_STALE_MAX_DAYS, "olderThanDays", &days));
    CV_ENSURE(days >= 1, CV_ERR_INPUT, "olderThanDays must be 1 to %d", CV_STALE_MAX_DAYS);
    CV_GUARD(cv_parse_uint_param(limit, CV_LIST_DEFAULT_LIMIT, CV_LIST_MAX_LIMIT, "limit", &lim));
    CV_GUARD(cv_parse_uint_param(offset, 0, 1000000000u, "offset", &off));
    struct stale_ctx c = {json_array(), 0, 0, cv_time_now_ms()};
    CV_ENSURE(c.servers != NULL, CV_ERR_MEMORY, "out of memory");
    c.set_before = c.now - (int64_t)days * MS_PER_DAY;
    c.expires_before = c.now + (int64_t)days * MS_PER_DAY;
    uint64_t total = 0;
    cv_result r = cv_store_credentials_stale(app->store, p->tenant_id, c.set_before > 0 ? c.set_before : 0,
                                             c.expires_before, lim, off, add_stale, &c, &total);
    if (cv_ok(r)) r = cv_audit_read(app, p, p->tenant_id, "credentials.stale", NULL, "success");
    if (cv_failed(r)) {
        json_decref(c.servers);
        return r;
    }
    *data = json_pack("{s:I, s:o, s:I, s:I, s:I}", "olderThanDays", (json_int_t)days, "servers", c.servers, "total",
                      (json_int_t)total, "limit", (json_int_t)lim, "offset", (json_int_t)off);
    CV_ENSURE(*data != NULL, CV_ERR_MEMORY, "out of memory");
    return CV_OK;
}

/* ---- the scrape token ---- */

int cv_metrics_token_ok(const struct cv_app *app, const char *authorization)
{
    const char *want = app->cfg ? app->cfg->metrics_token : NULL;
    if (!want || !authorization || strncmp(authorization, "Bearer ", 7) != 0) return 0;
    const char *got = authorization + 7;
    while (*got == ' ')
        got++;
    /* compare digests, so the time taken says nothing about the token */
    uint8_t a[CV_SHA256_BYTES], b[CV_SHA256_BYTES];
    cv_crypto_sha256(got, strnlen(got, CV_TOKEN_MAX_BYTES + 1), a);
    cv_crypto_sha256(want, strlen(want), b);
    return cv_memeq(a, b, sizeof(a));
}

/* ---- /metrics ---- */

struct usage_ctx {
    struct cv_buf *out;
    uint64_t max;
    cv_result r;
};

static int add_usage(void *arg, const char *tenant, uint32_t version, const char *state, uint64_t n)
{
    struct usage_ctx *u = arg;
    (void)state;
    if (n > u->max) u->max = n;
    char v[16];
    snprintf(v, sizeof(v), "%u", version);
    const char *names[] = {"tenant", "version"};
    const char *values[] = {tenant, v};
    u->r = cv_metrics_write_sample(u->out, "credvault_key_encryptions", names, values, 2, (double)n);
    return cv_failed(u->r);
}

static cv_result gauge(struct cv_buf *out, const char *name, const char *help, double v)
{
    CV_GUARD(cv_metrics_write_family(out, name, "gauge", help));
    return cv_metrics_write_sample(out, name, NULL, NULL, 0, v);
}

static cv_result database_gauges(struct cv_app *app, struct cv_buf *out)
{
    const struct cv_config *cfg = app->cfg;
    struct cv_ops_counts c;
    int64_t max_age = cfg ? (int64_t)cfg->credential_max_age_days * MS_PER_DAY : 0;
    cv_result r = cv_store_ops_counts(app->store, max_age, &c);
    CV_GUARD(gauge(out, "credvault_db_up", "1 when the database answered this scrape", cv_ok(r)));
    if (cv_failed(r)) return CV_OK; /* the scrape still shows the process's own counters */
    CV_GUARD(gauge(out, "credvault_tenants", "tenants", (double)c.tenants));
    CV_GUARD(gauge(out, "credvault_credentials", "stored credential maps (one per MCP server)", (double)c.credentials));
    CV_GUARD(gauge(out, "credvault_credentials_expired", "stored credentials past their expiresAt",
                   (double)c.credentials_expired));
    CV_GUARD(gauge(out, "credvault_credentials_over_age",
                   "stored credentials last set more than CREDVAULT_CREDENTIAL_MAX_AGE_DAYS ago",
                   (double)c.credentials_over_age));
    CV_GUARD(cv_metrics_write_family(out, "credvault_tenant_key_versions", "gauge", "tenant key versions, by state"));
    static const char *const states[3] = {"active", "retired", "destroyed"};
    for (int i = 0; i < 3; i++) {
        const char *names[] = {"state"};
        const char *values[] = {states[i]};
        CV_GUARD(
            cv_metrics_write_sample(out, "credvault_tenant_key_versions", names, values, 1, (double)c.key_versions[i]));
    }
    CV_GUARD(cv_metrics_write_family(out, "credvault_key_encryptions", "gauge",
                                     "encryptions made with a tenant key version (the most used ones)"));
    struct usage_ctx u = {out, 0, CV_OK};
    r = cv_store_key_usage_top(app->store, KEY_USAGE_TOP, add_usage, &u);
    CV_GUARD(u.r);
    if (cv_failed(r)) return CV_OK;
    uint64_t limit = cfg ? cfg->key_max_encryptions : 0;
    CV_GUARD(gauge(out, "credvault_key_max_encryptions", "CREDVAULT_KEY_MAX_ENCRYPTIONS, the rotation threshold",
                   (double)limit));
    return gauge(out, "credvault_key_usage_max_ratio",
                 "encryptions of the most used key version over CREDVAULT_KEY_MAX_ENCRYPTIONS",
                 limit ? (double)u.max / (double)limit : 0);
}

cv_result cv_metrics_collect(struct cv_app *app, struct cv_buf *out)
{
    CV_GUARD(cv_metrics_render(app->metrics, out));
    return database_gauges(app, out);
}
