/* Record bindings: an HMAC by the token's binding key over a row's tenant,
 * server, revision, expiry and credential names, stored beside its record,
 * so that a database writer who edits what a record means (names that
 * validate answers from, an expiry, a revision) is caught on read. The
 * record's own AAD covers tenant, server, key version, format and revision.
 * Never logs a name list or a binding. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "credvault/buf.h"
#include "credvault/crypto.h"
#include "credvault/hsm_mac.h"
#include "credvault/log.h"
#include "domain/audit.h"
#include "domain/record_bind.h"
#include "domain/token_verify.h"

static cv_result put_field(struct cv_buf *b, const void *p, size_t n)
{
    CV_GUARD(cv_buf_append_u32be(b, (uint32_t)n));
    return n ? cv_buf_append(b, p, n) : CV_OK;
}

static cv_result put_i64(struct cv_buf *b, int64_t v)
{
    CV_GUARD(cv_buf_append_u32be(b, (uint32_t)((uint64_t)v >> 32)));
    return cv_buf_append_u32be(b, (uint32_t)v);
}

/* The names as the domain writes them (compact JSON); the column is jsonb,
 * which reads back in its own spacing. */
static cv_result canonical_names(const char *names, char **out)
{
    json_error_t jerr;
    json_t *a = json_loads(names ? names : "", JSON_REJECT_DUPLICATES, &jerr);
    int ok = json_is_array(a);
    *out = ok ? json_dumps(a, JSON_COMPACT) : NULL;
    json_decref(a);
    CV_ENSURE(ok, CV_ERR_INPUT, "stored credential names are not a JSON array");
    CV_ENSURE(*out != NULL, CV_ERR_MEMORY, "out of memory");
    return CV_OK;
}

static cv_result binding_of(struct cv_hsm *hsm, const struct cv_server_row *row, uint8_t out[CV_RECORD_BINDING_BYTES])
{
    char *names = NULL;
    CV_GUARD(canonical_names(row->credential_names, &names));
    struct cv_buf in;
    cv_buf_init(&in, CV_HSM_MAC_INPUT_MAX_BYTES);
    cv_result r = put_field(&in, row->tenant_id, strnlen(row->tenant_id, sizeof(row->tenant_id)));
    if (cv_ok(r)) r = put_field(&in, row->server_id, strnlen(row->server_id, sizeof(row->server_id)));
    if (cv_ok(r)) r = put_i64(&in, row->revision);
    if (cv_ok(r)) r = put_i64(&in, row->expires_at_ms);
    /* names can be long: their digest keeps the input bounded */
    uint8_t digest[CV_SHA256_BYTES];
    cv_crypto_sha256(names, strlen(names), digest);
    if (cv_ok(r)) r = put_field(&in, digest, sizeof(digest));
    if (cv_ok(r)) r = cv_hsm_mac(hsm, CV_RECORD_BINDING_CONTEXT, in.data, in.len, out);
    cv_buf_free(&in);
    cv_json_free(names);
    return r;
}

cv_result cv_record_binding_make(struct cv_hsm *hsm, struct cv_server_row *row)
{
    CV_ENSURE_REF(row);
    CV_ENSURE(row->revision >= 1, CV_ERR_INTERNAL, "a record's revision starts at 1");
    CV_GUARD(binding_of(hsm, row, row->binding));
    row->has_binding = 1;
    return CV_OK;
}

/* What a binding check covers, as the database returned it, and the stored
 * binding: the same digest again needs no HMAC (token_verify.c's memo). The
 * names are taken raw: their canonical form is a function of them. On the
 * stack: this runs on every read. */
#define MEMO_INPUT_MAX_BYTES                                                                                           \
    (4 + sizeof(CV_RECORD_BINDING_CONTEXT) + 4 + CV_TENANT_ID_MAX_BYTES + 4 + CV_SERVER_ID_MAX_BYTES + 8 + 8 + 4 +   \
     CV_SHA256_BYTES + 4 + CV_RECORD_BINDING_BYTES)

static size_t memo_put_field(uint8_t *out, size_t n, const void *p, size_t len)
{
    out[n] = (uint8_t)(len >> 24);
    out[n + 1] = (uint8_t)(len >> 16);
    out[n + 2] = (uint8_t)(len >> 8);
    out[n + 3] = (uint8_t)len;
    memcpy(out + n + 4, p, len);
    return n + 4 + len;
}

static size_t memo_put_i64(uint8_t *out, size_t n, int64_t v)
{
    for (int i = 7; i >= 0; i--) out[n++] = (uint8_t)((uint64_t)v >> (8 * i));
    return n;
}

static void memo_digest(const struct cv_server_row *row, uint8_t digest[CV_SHA256_BYTES])
{
    const char *names = row->credential_names ? row->credential_names : "";
    uint8_t names_digest[CV_SHA256_BYTES], in[MEMO_INPUT_MAX_BYTES];
    cv_crypto_sha256(names, strlen(names), names_digest);
    size_t n = memo_put_field(in, 0, CV_RECORD_BINDING_CONTEXT, strlen(CV_RECORD_BINDING_CONTEXT));
    n = memo_put_field(in, n, row->tenant_id, strnlen(row->tenant_id, CV_TENANT_ID_MAX_BYTES));
    n = memo_put_field(in, n, row->server_id, strnlen(row->server_id, CV_SERVER_ID_MAX_BYTES));
    n = memo_put_i64(in, n, row->revision);
    n = memo_put_i64(in, n, row->expires_at_ms);
    n = memo_put_field(in, n, names_digest, sizeof(names_digest));
    n = memo_put_field(in, n, row->binding, CV_RECORD_BINDING_BYTES);
    cv_crypto_sha256(in, n, digest);
}

cv_result cv_record_binding_check(struct cv_app *app, const struct cv_principal *p, const struct cv_server_row *row)
{
    const char *why = "binding differs";
    int same = 0;
    uint8_t digest[CV_SHA256_BYTES];
    int memo = row->has_binding;
    if (memo) memo_digest(row, digest);
    if (memo && cv_token_memo_hit(app->token_memo, digest)) return CV_OK;
    if (!row->has_binding) {
        why = "no binding";
    } else {
        uint8_t expect[CV_RECORD_BINDING_BYTES];
        cv_result r = binding_of(app->hsm, row, expect);
        if (r.err == CV_ERR_INPUT) why = "names unreadable";
        else CV_GUARD(r); /* the token away is an outage, not an attack */
        same = cv_ok(r) && cv_memeq(expect, row->binding, sizeof(expect));
    }
    if (same) {
        if (memo) cv_token_memo_put(app->token_memo, digest);
        return CV_OK;
    }
    char rev[24];
    snprintf(rev, sizeof(rev), "%lld", (long long)row->revision);
    cv_metric_inc_l(app->metrics, CV_M_INTEGRITY_FAILURES, "record", NULL, NULL);
    cv_log(CV_LOG_ERROR, "record_binding_mismatch", "tenant", row->tenant_id, "server", row->server_id, "revision", rev,
           "reason", why, NULL);
    if (p) {
        struct cv_audit_event ev;
        cv_audit_event_init(&ev, p, row->tenant_id, "credentials.integrity_failed", row->server_id, "error");
        if (cv_failed(cv_store_audit_append(app->store, &ev, 1))) cv_error_clear();
    }
    return cv_fail_code(CV_ERR_INTERNAL, CV_INTEGRITY_ERROR_CODE,
                        "the stored credentials do not match their metadata (changed outside the service)");
}

/* ---- the one-time bind ---- */

struct bind_ctx {
    struct cv_app *app;
    struct cv_server_row *rows;
    size_t n, cap;
    cv_result r;
};

static int bind_one(void *arg, const struct cv_server_row *row)
{
    struct bind_ctx *b = arg;
    if (b->n == b->cap) {
        size_t cap = b->cap ? 2 * b->cap : 64;
        struct cv_server_row *rows = realloc(b->rows, cap * sizeof(*rows));
        if (!rows) {
            b->r = cv_fail(CV_ERR_MEMORY, "out of memory");
            return 1;
        }
        b->rows = rows;
        b->cap = cap;
    }
    struct cv_server_row *t = &b->rows[b->n];
    memset(t, 0, sizeof(*t));
    snprintf(t->tenant_id, sizeof(t->tenant_id), "%s", row->tenant_id);
    snprintf(t->server_id, sizeof(t->server_id), "%s", row->server_id);
    t->revision = row->revision;
    t->expires_at_ms = row->expires_at_ms;
    t->credential_names = (char *)row->credential_names; /* borrowed for the HMAC only */
    b->r = cv_record_binding_make(b->app->hsm, t);
    t->credential_names = NULL;
    if (cv_failed(b->r)) return 1;
    b->n++;
    return 0;
}

cv_result cv_records_bind_legacy(struct cv_app *app)
{
    struct bind_ctx b = {.app = app, .r = CV_OK};
    cv_result r = cv_store_server_bind_pending(app->store, bind_one, &b);
    if (cv_ok(r)) r = b.r;
    if (cv_ok(r)) {
        char detail[64];
        snprintf(detail, sizeof(detail), "{\"records\":%zu}", b.n);
        struct cv_principal p;
        cv_principal_cli(&p);
        snprintf(p.name, sizeof(p.name), "credvault");
        struct cv_audit_event ev;
        cv_audit_event_init(&ev, &p, NULL, "credentials.bind", NULL, "success");
        ev.detail = detail;
        int bound = -1;
        r = cv_audit_change(app, cv_store_server_bind_finish(app->store, b.rows, b.n, &ev, &bound), 1);
        if (cv_ok(r) && bound >= 0) {
            char count[24];
            snprintf(count, sizeof(count), "%d", bound);
            cv_log(CV_LOG_INFO, "records_bound", "records", count, NULL);
        }
    }
    free(b.rows);
    return r;
}
