/* api_tokens, through the SECURITY DEFINER functions of migrations 0004 and
 * 0014 (the service role has no privilege on the table itself). Only the
 * SHA-256 of a token and its HSM verifier are ever sent or stored; the token
 * never is. */
#include <stdlib.h>
#include <string.h>

#include "credvault/buf.h"

#include "store/pq.h"

CV_SQL_DEF(insert_sql, TOKEN_INSERT,
    "SELECT id::text, " CV_SQL_MS("created_at") " FROM credvault_token_insert($1::uuid, $2::text, $3::text, "
    "$4::text, $5::text, $6::bytea, $7::text, " CV_SQL_TS("$8") ", $9::bytea)",
    9);

CV_SQL_DEF(lookup_sql, TOKEN_LOOKUP,
    "SELECT id::text, coalesce(tenant_id, ''), coalesce(server_id, ''), name, role, " CV_SQL_MS("created_at") ", "
    "created_by, " CV_SQL_MS("expires_at") ", revoked_at IS NOT NULL, encode(verifier, 'hex') "
    "FROM credvault_token_by_hash($1::bytea)",
    1);

CV_SQL_DEF(revoke_sql, TOKEN_REVOKE,
                                         "SELECT credvault_token_revoke($1::uuid)", 1);

CV_SQL_DEF(revoke_roles_sql, TOKEN_REVOKE_ROLES, "SELECT credvault_token_revoke_roles($1::uuid, $2::text[])", 2);

CV_SQL_DEF(bind_pending_sql, TOKEN_BIND_PENDING,
    "SELECT id::text, coalesce(tenant_id, ''), coalesce(server_id, ''), role, " CV_SQL_MS("expires_at") ", "
    "encode(token_hash, 'hex') FROM credvault_token_bind_pending()",
    0);

/* ids and hex verifiers as two array literals, in the same order */
CV_SQL_DEF(bind_finish_sql, TOKEN_BIND_FINISH,
    "SELECT credvault_token_bind_finish($1::uuid[], ARRAY(SELECT decode(v, 'hex') FROM "
    "unnest($2::text[]) WITH ORDINALITY AS u (v, i) ORDER BY i))",
    2);

static cv_result check_token(const struct cv_token_row *row)
{
    CV_ENSURE(cv_store_fixed_ok(row->id, sizeof(row->id)) && cv_store_fixed_ok(row->name, sizeof(row->name)) &&
                  cv_store_fixed_ok(row->role, sizeof(row->role)) &&
                  cv_store_fixed_ok(row->tenant_id, sizeof(row->tenant_id)) &&
                  cv_store_fixed_ok(row->server_id, sizeof(row->server_id)) &&
                  cv_store_fixed_ok(row->created_by, sizeof(row->created_by)),
              CV_ERR_INPUT, "token field is not terminated");
    CV_ENSURE(cv_store_uuid_ok(row->id), CV_ERR_INPUT, "token id must be a UUID");
    CV_GUARD(cv_store_check_len("token name", row->name, 1, CV_STORE_PRINCIPAL_MAX_BYTES));
    CV_ENSURE(cv_store_token_role_ok(row->role), CV_ERR_INPUT, "unknown token role");
    int admin = strcmp(row->role, "admin") == 0, workload = strcmp(row->role, "workload") == 0;
    if (admin) CV_ENSURE(row->tenant_id[0] == '\0', CV_ERR_INPUT, "admin tokens belong to no tenant");
    else CV_ENSURE(cv_tenant_id_valid(row->tenant_id), CV_ERR_INPUT, "invalid tenant id");
    if (workload) CV_ENSURE(cv_server_id_valid(row->server_id), CV_ERR_INPUT, "a workload token needs a valid server id");
    else CV_ENSURE(row->server_id[0] == '\0', CV_ERR_INPUT, "only workload tokens have a server id");
    CV_GUARD(cv_store_check_ms("token expiry", row->expires_at_ms));
    return CV_OK;
}

cv_result cv_store_token_insert(struct cv_store *st, struct cv_token_row *row, const uint8_t hash[CV_TOKEN_HASH_BYTES],
                                const struct cv_audit_event *ev)
{
    CV_ENSURE_REF(row);
    CV_ENSURE_REF(hash);
    CV_GUARD(check_token(row));
    struct cv_q q;
    cv_q_init(&q, &insert_sql);
    cv_q_text_opt(&q, row->id);
    cv_q_text_opt(&q, row->tenant_id);
    cv_q_text_opt(&q, row->server_id);
    cv_q_text(&q, row->name);
    cv_q_text(&q, row->role);
    cv_q_bytes(&q, hash, CV_TOKEN_HASH_BYTES);
    cv_q_text(&q, row->created_by);
    cv_q_ms_opt(&q, row->expires_at_ms);
    CV_ENSURE(row->has_verifier, CV_ERR_INTERNAL, "a token needs its verifier");
    cv_q_bytes(&q, row->verifier, CV_TOKEN_VERIFIER_BYTES);
    const struct cv_tx tx = {.scope = row->tenant_id[0] ? CV_SCOPE_TENANT : CV_SCOPE_PLATFORM,
                             .tenant_id = row->tenant_id,
                             .flags = CV_TX_EVENTS_IF_CHANGED,
                             .events = ev,
                             .nevents = ev ? 1 : 0,
                             .conflict = "a token of this role with this name exists already in this tenant",
                             .fk = "tenant not found"};
    cv_result r;
    CV_GUARD_OUT(r, cv_store_tx(st, &tx, &q, 1));
    CV_GUARD_OUT(r, cv_pq_expect(q.res, 2));
    if (PQntuples(q.res) != 1) {
        r = cv_fail(CV_ERR_INTERNAL, "unexpected database result");
        goto out;
    }
    CV_GUARD_OUT(r, cv_pq_text(q.res, 0, 0, row->id, sizeof(row->id)));
    CV_GUARD_OUT(r, cv_pq_i64(q.res, 0, 1, &row->created_at_ms));
out:
    cv_q_clear(&q, 1);
    return r;
}

cv_result cv_store_token_lookup(struct cv_store *st, const uint8_t hash[CV_TOKEN_HASH_BYTES], struct cv_token_row *row)
{
    CV_ENSURE_REF(hash);
    CV_ENSURE_REF(row);
    memset(row, 0, sizeof(*row));
    struct cv_q q;
    cv_q_init(&q, &lookup_sql);
    cv_q_bytes(&q, hash, CV_TOKEN_HASH_BYTES);
    /* no scope: the function looks across tenants by itself */
    const struct cv_tx tx = {.scope = CV_SCOPE_NONE, .flags = CV_TX_READ_ONLY};
    cv_result r;
    CV_GUARD_OUT(r, cv_store_tx(st, &tx, &q, 1));
    CV_GUARD_OUT(r, cv_pq_expect(q.res, 10));
    if (PQntuples(q.res) != 1) {
        r = cv_fail(CV_ERR_NOT_FOUND, "token not found");
        goto out;
    }
    CV_GUARD_OUT(r, cv_pq_text(q.res, 0, 0, row->id, sizeof(row->id)));
    CV_GUARD_OUT(r, cv_pq_text(q.res, 0, 1, row->tenant_id, sizeof(row->tenant_id)));
    CV_GUARD_OUT(r, cv_pq_text(q.res, 0, 2, row->server_id, sizeof(row->server_id)));
    CV_GUARD_OUT(r, cv_pq_text(q.res, 0, 3, row->name, sizeof(row->name)));
    CV_GUARD_OUT(r, cv_pq_text(q.res, 0, 4, row->role, sizeof(row->role)));
    CV_GUARD_OUT(r, cv_pq_i64(q.res, 0, 5, &row->created_at_ms));
    CV_GUARD_OUT(r, cv_pq_text(q.res, 0, 6, row->created_by, sizeof(row->created_by)));
    CV_GUARD_OUT(r, cv_pq_i64(q.res, 0, 7, &row->expires_at_ms));
    CV_GUARD_OUT(r, cv_pq_bool(q.res, 0, 8, &row->revoked));
    if (!cv_pq_null(q.res, 0, 9)) {
        size_t vlen = 0;
        CV_GUARD_OUT(r, cv_pq_hex(q.res, 0, 9, row->verifier, CV_TOKEN_VERIFIER_BYTES, CV_TOKEN_VERIFIER_BYTES, &vlen));
        row->has_verifier = 1;
    }
out:
    if (cv_failed(r)) memset(row, 0, sizeof(*row));
    cv_q_clear(&q, 1);
    return r;
}

cv_result cv_store_token_revoke(struct cv_store *st, const char *tenant_id, const char *token_id,
                                const struct cv_audit_event *ev)
{
    /* an id that cannot exist is simply not found */
    CV_ENSURE(cv_store_uuid_ok(token_id), CV_ERR_NOT_FOUND, "token not found");
    struct cv_q q;
    cv_q_init(&q, &revoke_sql);
    cv_q_text(&q, token_id);
    const struct cv_tx tx = {.scope = tenant_id ? CV_SCOPE_TENANT : CV_SCOPE_PLATFORM,
                             .tenant_id = tenant_id,
                             .flags = CV_TX_EVENTS_IF_CHANGED,
                             .events = ev,
                             .nevents = ev ? 1 : 0};
    cv_result r;
    int found = 0;
    CV_GUARD_OUT(r, cv_store_tx(st, &tx, &q, 1));
    CV_GUARD_OUT(r, cv_pq_expect(q.res, 1));
    if (PQntuples(q.res) == 1) CV_GUARD_OUT(r, cv_pq_bool(q.res, 0, 0, &found));
    if (!found) r = cv_fail(CV_ERR_NOT_FOUND, "token not found");
out:
    cv_q_clear(&q, 1);
    return r;
}

cv_result cv_store_token_revoke_roles(struct cv_store *st, const char *tenant_id, const char *token_id,
                                      const char *roles, const struct cv_audit_event *ev)
{
    CV_ENSURE(cv_store_uuid_ok(token_id), CV_ERR_NOT_FOUND, "token not found");
    struct cv_q q;
    cv_q_init(&q, &revoke_roles_sql);
    cv_q_text(&q, token_id);
    cv_q_text(&q, roles);
    const struct cv_tx tx = {.scope = tenant_id ? CV_SCOPE_TENANT : CV_SCOPE_PLATFORM,
                             .tenant_id = tenant_id,
                             .flags = CV_TX_EVENTS_IF_CHANGED,
                             .events = ev,
                             .nevents = ev ? 1 : 0};
    cv_result r;
    char outcome[16] = "";
    CV_GUARD_OUT(r, cv_store_tx(st, &tx, &q, 1));
    CV_GUARD_OUT(r, cv_pq_expect(q.res, 1));
    if (PQntuples(q.res) == 1) CV_GUARD_OUT(r, cv_pq_text(q.res, 0, 0, outcome, sizeof(outcome)));
    if (strcmp(outcome, "forbidden") == 0)
        r = cv_fail(CV_ERR_FORBIDDEN, "the token's role is not one this caller may revoke");
    else if (strcmp(outcome, "revoked") != 0)
        r = cv_fail(CV_ERR_NOT_FOUND, "token not found");
out:
    cv_q_clear(&q, 1);
    return r;
}

cv_result cv_store_token_bind_pending(struct cv_store *st, cv_store_token_bind_cb cb, void *arg)
{
    CV_ENSURE_REF(cb);
    struct cv_q q;
    cv_q_init(&q, &bind_pending_sql);
    const struct cv_tx tx = {.scope = CV_SCOPE_NONE, .flags = CV_TX_READ_ONLY};
    cv_result r;
    CV_GUARD_OUT(r, cv_store_tx(st, &tx, &q, 1));
    CV_GUARD_OUT(r, cv_pq_expect(q.res, 6));
    for (int i = 0; i < PQntuples(q.res); i++) {
        struct cv_token_row row;
        memset(&row, 0, sizeof(row));
        uint8_t hash[CV_TOKEN_HASH_BYTES];
        size_t hlen = 0;
        CV_GUARD_OUT(r, cv_pq_text(q.res, i, 0, row.id, sizeof(row.id)));
        CV_GUARD_OUT(r, cv_pq_text(q.res, i, 1, row.tenant_id, sizeof(row.tenant_id)));
        CV_GUARD_OUT(r, cv_pq_text(q.res, i, 2, row.server_id, sizeof(row.server_id)));
        CV_GUARD_OUT(r, cv_pq_text(q.res, i, 3, row.role, sizeof(row.role)));
        CV_GUARD_OUT(r, cv_pq_i64(q.res, i, 4, &row.expires_at_ms));
        CV_GUARD_OUT(r, cv_pq_hex(q.res, i, 5, hash, CV_TOKEN_HASH_BYTES, CV_TOKEN_HASH_BYTES, &hlen));
        if (cb(arg, &row, hash)) break;
    }
out:
    cv_q_clear(&q, 1);
    return r;
}

/* "{a,b,c}": uuids and hex digits need no quoting in an array literal */
static cv_result array_literal(const struct cv_token_row *rows, size_t n, int verifiers, char **out)
{
    size_t item = verifiers ? 2 * CV_TOKEN_VERIFIER_BYTES : CV_STORE_UUID_BYTES;
    size_t cap = 3 + n * (item + 1);
    char *s = malloc(cap), *p = s;
    CV_ENSURE(s != NULL, CV_ERR_MEMORY, "out of memory");
    *p++ = '{';
    for (size_t i = 0; i < n; i++) {
        if (i) *p++ = ',';
        if (verifiers) cv_hex_encode(rows[i].verifier, CV_TOKEN_VERIFIER_BYTES, p);
        else memcpy(p, rows[i].id, CV_STORE_UUID_BYTES);
        p += item;
    }
    *p++ = '}';
    *p = '\0';
    *out = s;
    return CV_OK;
}

cv_result cv_store_token_bind_finish(struct cv_store *st, const struct cv_token_row *rows, size_t n,
                                     const struct cv_audit_event *ev, int *bound)
{
    CV_ENSURE(rows != NULL || n == 0, CV_ERR_INTERNAL, "token rows missing");
    CV_ENSURE(n <= CV_STORE_TOKEN_BIND_MAX, CV_ERR_INTERNAL, "too many tokens to bind at once");
    for (size_t i = 0; i < n; i++)
        CV_ENSURE(cv_store_uuid_ok(rows[i].id) && rows[i].has_verifier, CV_ERR_INTERNAL, "token row to bind is invalid");
    *bound = -1;
    char *ids = NULL, *verifiers = NULL;
    cv_result r = array_literal(rows, n, 0, &ids);
    if (cv_ok(r)) r = array_literal(rows, n, 1, &verifiers);
    struct cv_q q;
    cv_q_init(&q, &bind_finish_sql);
    if (cv_failed(r)) goto out;
    cv_q_text(&q, ids);
    cv_q_text(&q, verifiers);
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
    free(ids);
    free(verifiers);
    return r;
}
