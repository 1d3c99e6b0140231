/* The one-time bind of mcp_credentials rows written before bindings
 * (migration 0015): the rows without one while the bind is pending, and the
 * statement that writes their bindings and ends it. Platform scope: the bind
 * spans every tenant. Never reads encrypted_env. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "credvault/buf.h"
#include "store/pq.h"

CV_SQL_DEF(pending_sql, SERVER_BIND_PENDING,
    "SELECT tenant_id, server_id, revision, " CV_SQL_MS("expires_at") ", credential_names::text "
    "FROM mcp_credentials WHERE binding IS NULL AND EXISTS (SELECT 1 FROM mcp_credentials_bind_pending) "
    "ORDER BY tenant_id, server_id",
    0);

/* The pending row goes first; without it nothing is written (-1). */
CV_SQL_DEF(finish_sql, SERVER_BIND_FINISH,
    "WITH d AS (DELETE FROM mcp_credentials_bind_pending RETURNING 1),"
    " u AS (UPDATE mcp_credentials m SET binding = decode(v.b, 'hex')"
    "  FROM unnest($1::text[], $2::text[], $3::text[]) AS v (t, s, b)"
    "  WHERE EXISTS (SELECT 1 FROM d) AND m.tenant_id = v.t AND m.server_id = v.s AND m.binding IS NULL"
    "  RETURNING 1)"
    " SELECT CASE WHEN EXISTS (SELECT 1 FROM d) THEN (SELECT count(*) FROM u) ELSE -1 END",
    3);

cv_result cv_store_server_bind_pending(struct cv_store *st, cv_store_server_cb cb, void *arg)
{
    CV_ENSURE_REF(cb);
    struct cv_q q;
    cv_q_init(&q, &pending_sql);
    const struct cv_tx tx = {.scope = CV_SCOPE_PLATFORM, .flags = CV_TX_READ_ONLY};
    cv_result r;
    CV_GUARD_OUT(r, cv_store_tx(st, &tx, &q, 1));
    CV_GUARD_OUT(r, cv_pq_expect(q.res, 5));
    for (int i = 0; i < PQntuples(q.res); i++) {
        struct cv_server_row row;
        memset(&row, 0, sizeof(row));
        CV_GUARD_OUT(r, cv_pq_text(q.res, i, 0, row.tenant_id, sizeof(row.tenant_id)));
        CV_GUARD_OUT(r, cv_pq_text(q.res, i, 1, row.server_id, sizeof(row.server_id)));
        CV_GUARD_OUT(r, cv_pq_i64(q.res, i, 2, &row.revision));
        CV_GUARD_OUT(r, cv_pq_i64(q.res, i, 3, &row.expires_at_ms));
        CV_GUARD_OUT(r, cv_pq_dup(q.res, i, 4, CV_STORE_JSON_MAX_BYTES, &row.credential_names));
        int stop = cb(arg, &row);
        cv_server_row_free(&row);
        if (stop) break;
    }
out:
    cv_q_clear(&q, 1);
    return r;
}

/* "{"a","b"}": ids hold no quote or backslash (checked), hex neither */
static cv_result array_literal(const struct cv_server_row *rows, size_t n, int which, char **out)
{
    size_t cap = 3;
    for (size_t i = 0; i < n; i++)
        cap += 3 + (which == 0 ? strlen(rows[i].tenant_id) : which == 1 ? strlen(rows[i].server_id)
                                                                        : 2 * CV_RECORD_BINDING_BYTES);
    char *s = malloc(cap), *p = s;
    CV_ENSURE(s != NULL, CV_ERR_MEMORY, "out of memory");
    *p++ = '{';
    for (size_t i = 0; i < n; i++) {
        if (i) *p++ = ',';
        *p++ = '"';
        if (which == 2) {
            cv_hex_encode(rows[i].binding, CV_RECORD_BINDING_BYTES, p);
            p += 2 * CV_RECORD_BINDING_BYTES;
        } else {
            const char *v = which == 0 ? rows[i].tenant_id : rows[i].server_id;
            memcpy(p, v, strlen(v));
            p += strlen(v);
        }
        *p++ = '"';
    }
    *p++ = '}';
    *p = '\0';
    *out = s;
    return CV_OK;
}

cv_result cv_store_server_bind_finish(struct cv_store *st, const struct cv_server_row *rows, size_t n,
                                      const struct cv_audit_event *ev, int *bound)
{
    CV_ENSURE(rows != NULL || n == 0, CV_ERR_INTERNAL, "server rows missing");
    for (size_t i = 0; i < n; i++)
        CV_ENSURE(cv_tenant_id_valid(rows[i].tenant_id) && cv_server_id_valid(rows[i].server_id) &&
                      rows[i].has_binding,
                  CV_ERR_INTERNAL, "server row to bind is invalid");
    *bound = -1;
    char *lit[3] = {NULL, NULL, NULL};
    cv_result r = CV_OK;
    for (int k = 0; k < 3 && cv_ok(r); k++) r = array_literal(rows, n, k, &lit[k]);
    struct cv_q q;
    cv_q_init(&q, &finish_sql);
    if (cv_failed(r)) goto out;
    for (int k = 0; k < 3; k++) cv_q_text(&q, lit[k]);
    const struct cv_tx tx = {.scope = CV_SCOPE_PLATFORM,
                             .flags = CV_TX_EVENTS_IF_CHANGED,
                             .events = ev,
                             .nevents = ev ? 1 : 0};
    CV_GUARD_OUT(r, cv_store_tx(st, &tx, &q, 1));
    CV_GUARD_OUT(r, cv_pq_expect(q.res, 1));
    int64_t v = -1;
    if (PQntuples(q.res) == 1) CV_GUARD_OUT(r, cv_pq_i64(q.res, 0, 0, &v));
    *bound = (int)v;
out:
    cv_q_clear(&q, 1);
    for (int k = 0; k < 3; k++) free(lit[k]);
    return r;
}
