/* Signed audit checkpoints (migration 0011): inserting one with the heads it
 * signed, in one statement, and reading them back for verify and export.
 * Always platform scope. Append-only: a checkpoint is never changed, and the
 * unique prev_hash turns a race between two sealers into a clean conflict. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "credvault/buf.h"
#include "credvault/store_audit.h"
#include "store/pq.h"

/* clang-format off */
#define CP_COLS                                                                                               \
    "c.id, " CV_SQL_MS("c.at") ", c.key_label, encode(c.prev_hash, 'hex'), encode(c.heads_digest, 'hex'), "   \
    "c.heads, c.payload, encode(c.signature, 'hex')"
#define CP_NCOLS 8

CV_SQL_DEF(insert_sql, AUDIT_CHECKPOINT_INSERT,
    "WITH cp AS ("
    " INSERT INTO audit_checkpoints (at, key_label, prev_hash, heads_digest, heads, payload, signature)"
    " VALUES (" CV_SQL_TS("$1") ", $2::text, decode($3::text, 'hex'), decode($4::text, 'hex'), $5::int4,"
    "  $6::text, $7::bytea) RETURNING id),"
    " h AS (INSERT INTO audit_checkpoint_heads (checkpoint_id, chain, tenant_id, seq, hash)"
    "  SELECT cp.id, x.chain, nullif(x.tenant, ''), x.seq, decode(x.hash, 'hex')"
    "  FROM cp, unnest($8::text[], $9::text[], $10::int8[], $11::text[]) AS x (chain, tenant, seq, hash)"
    "  RETURNING 1)"
    " SELECT cp.id, (SELECT count(*) FROM h) FROM cp",
    11);

CV_SQL_DEF(last_sql, AUDIT_CHECKPOINT_LAST,
    "SELECT " CP_COLS " FROM audit_checkpoints c ORDER BY c.id DESC LIMIT 1",
    0);

CV_SQL_DEF(list_sql, AUDIT_CHECKPOINT_LIST,
    "SELECT " CP_COLS " FROM audit_checkpoints c WHERE c.id > $1::int8 ORDER BY c.id LIMIT $2::int8",
    2);

CV_SQL_DEF(heads_sql, AUDIT_CHECKPOINT_HEADS,
    "SELECT h.chain, coalesce(h.tenant_id, ''), h.seq, encode(h.hash, 'hex') FROM audit_checkpoint_heads h"
    " WHERE h.checkpoint_id = $1::int8 AND ($2::text IS NULL OR h.chain = $2::text"
    " OR split_part(h.chain, ':', 1) = $2::text) ORDER BY h.chain",
    2);

CV_SQL_DEF(chain_cps_sql, AUDIT_CHAIN_CHECKPOINTS,
    "SELECT h.checkpoint_id, h.chain, coalesce(h.tenant_id, ''), h.seq, encode(h.hash, 'hex')"
    " FROM audit_checkpoint_heads h WHERE h.chain = $1::text AND h.seq > $2::int8"
    " ORDER BY h.seq LIMIT $3::int8",
    3);
/* clang-format on */

static const struct cv_tx platform_read = {.scope = CV_SCOPE_PLATFORM, .flags = CV_TX_READ_ONLY};

void cv_audit_checkpoint_free(struct cv_audit_checkpoint *cp)
{
    if (!cp) return;
    free(cp->payload);
    cp->payload = NULL;
}

static int chain_ok(const char *s)
{
    return cv_store_chain_valid(s);
}

/* A text[] literal of quoted elements; the values were checked to hold no
 * quote, backslash or brace, so quoting is all the escaping they need. */
static cv_result array_literal(struct cv_buf *b, const struct cv_audit_head *heads, size_t n, int field)
{
    CV_GUARD(cv_buf_append_str(b, "{"));
    for (size_t i = 0; i < n; i++) {
        char item[2 * CV_AUDIT_HASH_BYTES + 32];
        if (field == 0)
            snprintf(item, sizeof(item), "%s\"%s\"", i ? "," : "", heads[i].chain);
        else if (field == 1)
            snprintf(item, sizeof(item), "%s\"%s\"", i ? "," : "", heads[i].tenant_id);
        else if (field == 2)
            snprintf(item, sizeof(item), "%s%" PRId64, i ? "," : "", heads[i].seq);
        else {
            char hex[2 * CV_AUDIT_HASH_BYTES + 1];
            cv_hex_encode(heads[i].hash, CV_AUDIT_HASH_BYTES, hex);
            snprintf(item, sizeof(item), "%s\"%s\"", i ? "," : "", hex);
        }
        CV_GUARD(cv_buf_append_str(b, item));
    }
    CV_GUARD(cv_buf_append_str(b, "}"));
    return cv_buf_terminate(b);
}

cv_result cv_store_audit_checkpoint_insert(struct cv_store *st, struct cv_audit_checkpoint *cp,
                                           const struct cv_audit_head *heads, size_t nheads)
{
    CV_ENSURE_REF(cp);
    CV_ENSURE(nheads >= 1 && nheads <= CV_AUDIT_CHECKPOINT_MAX_HEADS && nheads == cp->heads, CV_ERR_INPUT,
              "a checkpoint signs 1 to %d heads", CV_AUDIT_CHECKPOINT_MAX_HEADS);
    CV_ENSURE(cp->payload != NULL, CV_ERR_INPUT, "a checkpoint needs its payload");
    CV_GUARD(cv_store_check_len("payload", cp->payload, 1, CV_AUDIT_PAYLOAD_MAX_BYTES));
    CV_GUARD(cv_store_check_len("key label", cp->key_label, 1, CV_AUDIT_KEY_LABEL_MAX_BYTES));
    CV_ENSURE(cp->signature_len >= 8 && cp->signature_len <= CV_AUDIT_SIGNATURE_MAX_BYTES, CV_ERR_INPUT,
              "bad checkpoint signature length");
    CV_GUARD(cv_store_check_ms("checkpoint time", cp->at_ms));
    for (size_t i = 0; i < nheads; i++) {
        const struct cv_audit_head *h = &heads[i];
        CV_ENSURE(chain_ok(h->chain) && h->seq >= 1, CV_ERR_INPUT, "bad checkpoint head");
        CV_ENSURE(cv_store_chain_of(h->chain, h->tenant_id), CV_ERR_INPUT,
                  "checkpoint head tenant does not match its chain");
    }

    cv_result r = CV_OK;
    struct cv_buf arr[4];
    for (int k = 0; k < 4; k++)
        cv_buf_init(&arr[k], CV_AUDIT_PAYLOAD_MAX_BYTES);
    struct cv_q q;
    cv_q_init(&q, &insert_sql);
    for (int k = 0; k < 4; k++)
        CV_GUARD_OUT(r, array_literal(&arr[k], heads, nheads, k));
    char prev[2 * CV_AUDIT_HASH_BYTES + 1], digest[2 * CV_AUDIT_HASH_BYTES + 1];
    cv_hex_encode(cp->prev, CV_AUDIT_HASH_BYTES, prev);
    cv_hex_encode(cp->heads_digest, CV_AUDIT_HASH_BYTES, digest);
    cv_q_i64(&q, cp->at_ms);
    cv_q_text(&q, cp->key_label);
    cv_q_text(&q, prev);
    cv_q_text(&q, digest);
    cv_q_i64(&q, cp->heads);
    cv_q_text(&q, cp->payload);
    cv_q_bytes(&q, cp->signature, cp->signature_len);
    for (int k = 0; k < 4; k++)
        cv_q_text(&q, (const char *)arr[k].data);
    const struct cv_tx tx = {.scope = CV_SCOPE_PLATFORM, .conflict = "another checkpoint already follows this one"};
    CV_GUARD_OUT(r, cv_store_tx(st, &tx, &q, 1));
    CV_GUARD_OUT(r, cv_pq_expect(q.res, 2));
    int64_t written = 0;
    if (PQntuples(q.res) != 1) {
        r = cv_fail(CV_ERR_INTERNAL, "unexpected database result");
        goto out;
    }
    CV_GUARD_OUT(r, cv_pq_i64(q.res, 0, 0, &cp->id));
    CV_GUARD_OUT(r, cv_pq_i64(q.res, 0, 1, &written));
    if (written != (int64_t)nheads)
        r = cv_fail(CV_ERR_INTERNAL, "the checkpoint kept %lld of %zu heads", (long long)written, nheads);
out:
    cv_q_clear(&q, 1);
    for (int k = 0; k < 4; k++)
        cv_buf_free(&arr[k]);
    return r;
}

static cv_result checkpoint_row(const PGresult *res, int i, struct cv_audit_checkpoint *cp)
{
    memset(cp, 0, sizeof(*cp));
    size_t n;
    uint32_t heads;
    cv_result r;
    CV_GUARD_OUT(r, cv_pq_i64(res, i, 0, &cp->id));
    CV_GUARD_OUT(r, cv_pq_i64(res, i, 1, &cp->at_ms));
    CV_GUARD_OUT(r, cv_pq_text(res, i, 2, cp->key_label, sizeof(cp->key_label)));
    CV_GUARD_OUT(r, cv_pq_hex(res, i, 3, cp->prev, CV_AUDIT_HASH_BYTES, CV_AUDIT_HASH_BYTES, &n));
    CV_GUARD_OUT(r, cv_pq_hex(res, i, 4, cp->heads_digest, CV_AUDIT_HASH_BYTES, CV_AUDIT_HASH_BYTES, &n));
    CV_GUARD_OUT(r, cv_pq_u32(res, i, 5, &heads));
    cp->heads = heads;
    CV_GUARD_OUT(r, cv_pq_dup(res, i, 6, CV_AUDIT_PAYLOAD_MAX_BYTES, &cp->payload));
    CV_GUARD_OUT(r, cv_pq_hex(res, i, 7, cp->signature, 1, CV_AUDIT_SIGNATURE_MAX_BYTES, &cp->signature_len));
    if (!cp->payload) r = cv_fail(CV_ERR_INTERNAL, "checkpoint without payload");
out:
    if (cv_failed(r)) cv_audit_checkpoint_free(cp);
    return r;
}

cv_result cv_store_audit_checkpoint_last(struct cv_store *st, struct cv_audit_checkpoint *cp, int *found)
{
    CV_ENSURE_REF(cp);
    CV_ENSURE_REF(found);
    memset(cp, 0, sizeof(*cp));
    *found = 0;
    struct cv_q q;
    cv_q_init(&q, &last_sql);
    cv_result r;
    CV_GUARD_OUT(r, cv_store_tx(st, &platform_read, &q, 1));
    CV_GUARD_OUT(r, cv_pq_expect(q.res, CP_NCOLS));
    if (PQntuples(q.res) == 1) {
        CV_GUARD_OUT(r, checkpoint_row(q.res, 0, cp));
        *found = 1;
    }
out:
    cv_q_clear(&q, 1);
    return r;
}

cv_result cv_store_audit_checkpoint_list(struct cv_store *st, int64_t after_id, unsigned limit,
                                         cv_store_audit_checkpoint_cb cb, void *arg, unsigned *rows)
{
    CV_ENSURE_REF(cb);
    CV_ENSURE(after_id >= 0 && limit >= 1 && limit <= CV_AUDIT_PAGE_MAX, CV_ERR_INPUT, "bad checkpoint page");
    if (rows) *rows = 0;
    struct cv_q q;
    cv_q_init(&q, &list_sql);
    cv_q_i64(&q, after_id);
    cv_q_i64(&q, limit);
    cv_result r;
    CV_GUARD_OUT(r, cv_store_tx(st, &platform_read, &q, 1));
    CV_GUARD_OUT(r, cv_pq_expect(q.res, CP_NCOLS));
    for (int i = 0; i < PQntuples(q.res); i++) {
        struct cv_audit_checkpoint cp;
        CV_GUARD_OUT(r, checkpoint_row(q.res, i, &cp));
        if (rows) (*rows)++;
        int stop = cb(arg, &cp);
        cv_audit_checkpoint_free(&cp);
        if (stop) break;
    }
out:
    cv_q_clear(&q, 1);
    return r;
}

static cv_result head_row(const PGresult *res, int i, int col, struct cv_audit_head *h)
{
    memset(h, 0, sizeof(*h));
    size_t n;
    CV_GUARD(cv_pq_text(res, i, col, h->chain, sizeof(h->chain)));
    CV_GUARD(cv_pq_text(res, i, col + 1, h->tenant_id, sizeof(h->tenant_id)));
    CV_GUARD(cv_pq_i64(res, i, col + 2, &h->seq));
    return cv_pq_hex(res, i, col + 3, h->hash, CV_AUDIT_HASH_BYTES, CV_AUDIT_HASH_BYTES, &n);
}

cv_result cv_store_audit_checkpoint_heads(struct cv_store *st, int64_t checkpoint_id, const char *chain,
                                          cv_store_audit_head_cb cb, void *arg)
{
    CV_ENSURE_REF(cb);
    CV_ENSURE(chain == NULL || chain_ok(chain), CV_ERR_INPUT, "invalid audit chain");
    struct cv_q q;
    cv_q_init(&q, &heads_sql);
    cv_q_i64(&q, checkpoint_id);
    cv_q_text(&q, chain);
    cv_result r;
    CV_GUARD_OUT(r, cv_store_tx(st, &platform_read, &q, 1));
    CV_GUARD_OUT(r, cv_pq_expect(q.res, 4));
    for (int i = 0; i < PQntuples(q.res); i++) {
        struct cv_audit_head h;
        CV_GUARD_OUT(r, head_row(q.res, i, 0, &h));
        if (cb(arg, &h)) break;
    }
out:
    cv_q_clear(&q, 1);
    return r;
}

cv_result cv_store_audit_chain_checkpoints(struct cv_store *st, const char *chain, int64_t after_seq, unsigned limit,
                                           cv_store_audit_signed_cb cb, void *arg, unsigned *rows)
{
    CV_ENSURE_REF(cb);
    CV_ENSURE(chain_ok(chain), CV_ERR_INPUT, "invalid audit chain");
    CV_ENSURE(after_seq >= 0 && limit >= 1 && limit <= CV_AUDIT_PAGE_MAX, CV_ERR_INPUT, "bad checkpoint page");
    if (rows) *rows = 0;
    struct cv_q q;
    cv_q_init(&q, &chain_cps_sql);
    cv_q_text(&q, chain);
    cv_q_i64(&q, after_seq);
    cv_q_i64(&q, limit);
    cv_result r;
    CV_GUARD_OUT(r, cv_store_tx(st, &platform_read, &q, 1));
    CV_GUARD_OUT(r, cv_pq_expect(q.res, 5));
    for (int i = 0; i < PQntuples(q.res); i++) {
        int64_t id;
        struct cv_audit_head h;
        CV_GUARD_OUT(r, cv_pq_i64(q.res, i, 0, &id));
        CV_GUARD_OUT(r, head_row(q.res, i, 1, &h));
        if (rows) (*rows)++;
        if (cb(arg, id, &h)) break;
    }
out:
    cv_q_clear(&q, 1);
    return r;
}
