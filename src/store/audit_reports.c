/* Read-only reports for operations: the stale-credentials list of one tenant
 * (names and dates; encrypted_env is never selected) and the platform-wide
 * numbers /metrics shows (credentials past their expiry or age, key versions
 * by state, the most used key versions). */
#include <stdlib.h>
#include <string.h>

#include "credvault/store_audit.h"
#include "store/pq.h"

/* clang-format off */
#define STALE_WHERE                                                                                           \
    "tenant_id = $1::text AND (last_updated < " CV_SQL_TS("$2") " OR expires_at < " CV_SQL_TS("$3") ")"

/* The total comes with the page (one row of NULLs when the page is empty). */
CV_SQL_DEF(stale_sql, CREDENTIALS_STALE,
    "SELECT n.total, p.* FROM (SELECT count(*) AS total FROM mcp_credentials WHERE " STALE_WHERE ") n"
    " LEFT JOIN LATERAL (SELECT server_id, template_id, server_name, key_version, revision, "
    CV_SQL_MS("created_at") ", " CV_SQL_MS("last_updated") ", " CV_SQL_MS("expires_at") ", updated_by,"
    " least(last_updated, coalesce(expires_at, last_updated)) AS sort_at FROM mcp_credentials"
    " WHERE " STALE_WHERE " ORDER BY sort_at, server_id LIMIT $4::int8 OFFSET $5::int8) p ON true"
    " ORDER BY p.sort_at, p.server_id",
    5);

CV_SQL_DEF(counts_sql, OPS_COUNTS,
    "SELECT (SELECT count(*) FROM mcp_credentials),"
    " (SELECT count(*) FROM mcp_credentials WHERE expires_at <= now()),"
    " (SELECT count(*) FROM mcp_credentials WHERE $1::int8 > 0"
    "   AND last_updated < now() - $1::int8 * interval '1 millisecond'),"
    " (SELECT count(*) FROM tenant_keys WHERE state = 'active'),"
    " (SELECT count(*) FROM tenant_keys WHERE state = 'retired'),"
    " (SELECT count(*) FROM tenant_keys WHERE state = 'destroyed'),"
    " (SELECT count(*) FROM tenants)",
    1);

CV_SQL_DEF(usage_sql, KEY_USAGE_TOP,
    "SELECT k.tenant_id, k.version, k.state, k.encryptions + coalesce((SELECT sum(u.encryptions)"
    " FROM tenant_key_usage u WHERE u.tenant_id = k.tenant_id AND u.version = k.version), 0) AS n"
    " FROM tenant_keys k WHERE k.state <> 'destroyed' ORDER BY n DESC, k.tenant_id, k.version LIMIT $1::int8",
    1);
/* clang-format on */

static const struct cv_tx platform_read = {.scope = CV_SCOPE_PLATFORM, .flags = CV_TX_READ_ONLY};

cv_result cv_store_credentials_stale(struct cv_store *st, const char *tenant_id, int64_t set_before_ms,
                                     int64_t expires_before_ms, unsigned limit, unsigned offset, cv_store_server_cb cb,
                                     void *arg, uint64_t *total)
{
    CV_ENSURE_REF(cb);
    CV_ENSURE(cv_tenant_id_valid(tenant_id), CV_ERR_INPUT, "invalid tenant id");
    CV_ENSURE(limit <= CV_STORE_LIST_MAX && offset <= CV_STORE_OFFSET_MAX, CV_ERR_INPUT, "limit must be at most %d",
              CV_STORE_LIST_MAX);
    CV_GUARD(cv_store_check_ms("set before", set_before_ms));
    CV_GUARD(cv_store_check_ms("expires before", expires_before_ms));
    struct cv_q q;
    cv_q_init(&q, &stale_sql);
    cv_q_text(&q, tenant_id);
    cv_q_i64(&q, set_before_ms);
    cv_q_i64(&q, expires_before_ms);
    cv_q_i64(&q, limit);
    cv_q_i64(&q, offset);
    const struct cv_tx tx = {.scope = CV_SCOPE_TENANT, .tenant_id = tenant_id, .flags = CV_TX_READ_ONLY};
    cv_result r;
    CV_GUARD_OUT(r, cv_store_tx(st, &tx, &q, 1));
    CV_GUARD_OUT(r, cv_pq_expect(q.res, 11));
    if (PQntuples(q.res) < 1) {
        r = cv_fail(CV_ERR_INTERNAL, "unexpected database result");
        goto out;
    }
    int64_t n;
    CV_GUARD_OUT(r, cv_pq_i64(q.res, 0, 0, &n));
    if (total) *total = (uint64_t)n;
    for (int i = 0; i < PQntuples(q.res) && !cv_pq_null(q.res, i, 1); i++) {
        struct cv_server_row row;
        memset(&row, 0, sizeof(row));
        snprintf(row.tenant_id, sizeof(row.tenant_id), "%s", tenant_id);
        CV_GUARD_OUT(r, cv_pq_text(q.res, i, 1, row.server_id, sizeof(row.server_id)));
        CV_GUARD_OUT(r, cv_pq_text(q.res, i, 2, row.template_id, sizeof(row.template_id)));
        CV_GUARD_OUT(r, cv_pq_text(q.res, i, 3, row.server_name, sizeof(row.server_name)));
        CV_GUARD_OUT(r, cv_pq_u32(q.res, i, 4, &row.key_version));
        CV_GUARD_OUT(r, cv_pq_i64(q.res, i, 5, &row.revision));
        CV_GUARD_OUT(r, cv_pq_i64(q.res, i, 6, &row.created_at_ms));
        CV_GUARD_OUT(r, cv_pq_i64(q.res, i, 7, &row.last_updated_ms));
        CV_GUARD_OUT(r, cv_pq_i64(q.res, i, 8, &row.expires_at_ms));
        CV_GUARD_OUT(r, cv_pq_text(q.res, i, 9, row.updated_by, sizeof(row.updated_by)));
        if (cb(arg, &row)) break;
    }
out:
    cv_q_clear(&q, 1);
    return r;
}

cv_result cv_store_ops_counts(struct cv_store *st, int64_t max_age_ms, struct cv_ops_counts *out)
{
    CV_ENSURE_REF(out);
    CV_ENSURE(max_age_ms >= 0, CV_ERR_INPUT, "negative age");
    memset(out, 0, sizeof(*out));
    struct cv_q q;
    cv_q_init(&q, &counts_sql);
    cv_q_i64(&q, max_age_ms);
    cv_result r;
    CV_GUARD_OUT(r, cv_store_tx(st, &platform_read, &q, 1));
    CV_GUARD_OUT(r, cv_pq_expect(q.res, 7));
    if (PQntuples(q.res) != 1) {
        r = cv_fail(CV_ERR_INTERNAL, "unexpected database result");
        goto out;
    }
    uint64_t *fields[7] = {&out->credentials,     &out->credentials_expired, &out->credentials_over_age,
                           &out->key_versions[0], &out->key_versions[1],     &out->key_versions[2],
                           &out->tenants};
    for (int c = 0; c < 7; c++) {
        int64_t v;
        CV_GUARD_OUT(r, cv_pq_i64(q.res, 0, c, &v));
        *fields[c] = v < 0 ? 0 : (uint64_t)v;
    }
out:
    cv_q_clear(&q, 1);
    return r;
}

cv_result cv_store_key_usage_top(struct cv_store *st, unsigned limit, cv_store_key_usage_cb cb, void *arg)
{
    CV_ENSURE_REF(cb);
    CV_ENSURE(limit >= 1 && limit <= CV_STORE_LIST_MAX, CV_ERR_INPUT, "limit must be 1 to %d", CV_STORE_LIST_MAX);
    struct cv_q q;
    cv_q_init(&q, &usage_sql);
    cv_q_i64(&q, limit);
    cv_result r;
    CV_GUARD_OUT(r, cv_store_tx(st, &platform_read, &q, 1));
    CV_GUARD_OUT(r, cv_pq_expect(q.res, 4));
    for (int i = 0; i < PQntuples(q.res); i++) {
        char tenant[CV_TENANT_ID_MAX_BYTES + 1], state[CV_STORE_STATE_MAX_BYTES + 1];
        uint32_t version;
        int64_t n;
        CV_GUARD_OUT(r, cv_pq_text(q.res, i, 0, tenant, sizeof(tenant)));
        CV_GUARD_OUT(r, cv_pq_u32(q.res, i, 1, &version));
        CV_GUARD_OUT(r, cv_pq_text(q.res, i, 2, state, sizeof(state)));
        CV_GUARD_OUT(r, cv_pq_i64(q.res, i, 3, &n));
        if (cb(arg, tenant, version, state, n < 0 ? 0 : (uint64_t)n)) break;
    }
out:
    cv_q_clear(&q, 1);
    return r;
}
