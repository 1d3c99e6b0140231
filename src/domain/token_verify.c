/* Token verifiers: an HMAC by the token's binding key over a token's SHA-256
 * and everything that gives it power, so that a row a database writer
 * inserts or edits never authenticates. Verifying lives in cv_token_verify
 * alone: one HMAC, or a hit in the memo of rows the HSM already matched.
 * Never logs a hash or a verifier. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "credvault/buf.h"
#include "credvault/crypto.h"
#include "credvault/hsm_mac.h"
#include "credvault/log.h"
#include "domain/audit.h"
#include "domain/token_verify.h"

#define VERIFIER_INPUT_MAX_BYTES                                                                                       \
    (4 + CV_TOKEN_HASH_BYTES + 4 + CV_STORE_UUID_BYTES + 4 + CV_STORE_ROLE_MAX_BYTES + 4 + CV_TENANT_ID_MAX_BYTES + 4 + \
     CV_SERVER_ID_MAX_BYTES + 8)

static size_t put_field(uint8_t *out, size_t n, const void *p, size_t len)
{
    out[n] = (uint8_t)(len >> 24);
    out[n + 1] = (uint8_t)(len >> 16);
    out[n + 2] = (uint8_t)(len >> 8);
    out[n + 3] = (uint8_t)len;
    if (len) memcpy(out + n + 4, p, len);
    return n + 4 + len;
}

static size_t put_str(uint8_t *out, size_t n, const char *s, size_t cap)
{
    return put_field(out, n, s, strnlen(s, cap));
}

static size_t verifier_input(const struct cv_token_row *row, const uint8_t hash[CV_TOKEN_HASH_BYTES],
                             uint8_t in[VERIFIER_INPUT_MAX_BYTES])
{
    /* length-prefixed, so no two rows encode alike */
    size_t n = put_field(in, 0, hash, CV_TOKEN_HASH_BYTES);
    n = put_str(in, n, row->id, CV_STORE_UUID_BYTES);
    n = put_str(in, n, row->role, CV_STORE_ROLE_MAX_BYTES);
    n = put_str(in, n, row->tenant_id, CV_TENANT_ID_MAX_BYTES);
    n = put_str(in, n, row->server_id, CV_SERVER_ID_MAX_BYTES);
    uint64_t exp = (uint64_t)row->expires_at_ms;
    for (int i = 7; i >= 0; i--) in[n++] = (uint8_t)(exp >> (8 * i));
    return n;
}

cv_result cv_token_verifier_make(struct cv_hsm *hsm, const struct cv_token_row *row,
                                 const uint8_t hash[CV_TOKEN_HASH_BYTES], uint8_t out[CV_TOKEN_VERIFIER_BYTES])
{
    CV_ENSURE_REF(row);
    CV_ENSURE_REF(hash);
    uint8_t in[VERIFIER_INPUT_MAX_BYTES];
    size_t n = verifier_input(row, hash, in);
    cv_result r = cv_hsm_mac(hsm, CV_TOKEN_VERIFIER_CONTEXT, in, n, out);
    cv_wipe(in, sizeof(in));
    return r;
}

/* ---- the memo ----
 * A row the HSM matched once is remembered by the SHA-256 of its verifier
 * input and stored verifier: the same row again needs no HMAC, so an
 * authenticated request that needs no key (a list, a validate) is served
 * while the HSM is away, and the hot path spares the token a call. Any edit
 * of the row, or another token, is another digest and goes to the HSM.
 * Revocation is unaffected: the memo vouches for a row's contents, never for
 * its being current. Record bindings share it (their digests are prefixed
 * with their own context). */

#define MEMO_SLOTS 16384 /* token rows and record bindings (record_bind.c) */
#define MEMO_TTL_MS (5 * 60 * 1000)

struct cv_token_memo {
    pthread_mutex_t mu;
    struct {
        uint8_t digest[CV_SHA256_BYTES];
        int64_t until_ms;
    } slot[MEMO_SLOTS];
};

cv_result cv_token_memo_new(struct cv_token_memo **out)
{
    struct cv_token_memo *m = calloc(1, sizeof(*m));
    CV_ENSURE(m != NULL, CV_ERR_MEMORY, "out of memory");
    pthread_mutex_init(&m->mu, NULL);
    *out = m;
    return CV_OK;
}

void cv_token_memo_free(struct cv_token_memo *m)
{
    if (!m) return;
    pthread_mutex_destroy(&m->mu);
    free(m);
}

static void memo_digest(const struct cv_token_row *row, const uint8_t hash[CV_TOKEN_HASH_BYTES],
                        uint8_t digest[CV_SHA256_BYTES])
{
    uint8_t in[VERIFIER_INPUT_MAX_BYTES + CV_TOKEN_VERIFIER_BYTES];
    size_t n = verifier_input(row, hash, in);
    memcpy(in + n, row->verifier, CV_TOKEN_VERIFIER_BYTES);
    cv_crypto_sha256(in, n + CV_TOKEN_VERIFIER_BYTES, digest);
    cv_wipe(in, sizeof(in));
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static size_t memo_index(const uint8_t digest[CV_SHA256_BYTES])
{
    return ((size_t)digest[0] << 8 | digest[1]) % MEMO_SLOTS;
}

int cv_token_memo_hit(struct cv_token_memo *m, const uint8_t digest[CV_SHA256_BYTES])
{
    if (!m) return 0;
    size_t i = memo_index(digest);
    int64_t now = mono_ms();
    pthread_mutex_lock(&m->mu);
    int hit = m->slot[i].until_ms > now && cv_memeq(m->slot[i].digest, digest, CV_SHA256_BYTES);
    pthread_mutex_unlock(&m->mu);
    return hit;
}

void cv_token_memo_put(struct cv_token_memo *m, const uint8_t digest[CV_SHA256_BYTES])
{
    if (!m) return;
    size_t i = memo_index(digest);
    pthread_mutex_lock(&m->mu);
    memcpy(m->slot[i].digest, digest, CV_SHA256_BYTES);
    m->slot[i].until_ms = mono_ms() + MEMO_TTL_MS;
    pthread_mutex_unlock(&m->mu);
}

cv_result cv_token_verify(struct cv_app *app, const struct cv_token_row *row, const uint8_t hash[CV_TOKEN_HASH_BYTES])
{
    uint8_t digest[CV_SHA256_BYTES];
    if (row->has_verifier) {
        memo_digest(row, hash, digest);
        if (cv_token_memo_hit(app->token_memo, digest)) return CV_OK;
    }
    uint8_t expect[CV_TOKEN_VERIFIER_BYTES];
    CV_GUARD(cv_token_verifier_make(app->hsm, row, hash, expect));
    int same = row->has_verifier && cv_memeq(expect, row->verifier, sizeof(expect));
    cv_wipe(expect, sizeof(expect));
    if (same) {
        cv_token_memo_put(app->token_memo, digest);
        return CV_OK;
    }
    /* Only a database writer makes such a row: say so, once per attempt. */
    cv_metric_inc_l(app->metrics, CV_M_INTEGRITY_FAILURES, "token", NULL, NULL);
    cv_log(CV_LOG_ERROR, "token_verifier_mismatch", "token_id", row->id, "role", row->role, "tenant", row->tenant_id,
           "reason", row->has_verifier ? "verifier differs" : "no verifier", NULL);
    struct cv_audit_event ev;
    cv_audit_event_init(&ev, NULL, NULL, "token.verifier_mismatch", row->id, "denied");
    if (cv_failed(cv_store_audit_append(app->store, &ev, 1))) cv_error_clear();
    return cv_fail(CV_ERR_AUTH, "token verifier mismatch");
}

cv_result cv_token_name_check(const char *name)
{
    const unsigned char *s = (const unsigned char *)name;
    int visible = 0;
    for (size_t i = 0; s[i]; i++) {
        unsigned char c = s[i];
        CV_ENSURE(c >= 0x20 && c != 0x7f, CV_ERR_INPUT, "name must be printable: no control characters");
        /* U+0080..U+009F (C1 controls) are C2 80..C2 9F in UTF-8 */
        CV_ENSURE(!(c == 0xc2 && s[i + 1] >= 0x80 && s[i + 1] <= 0x9f), CV_ERR_INPUT,
                  "name must be printable: no control characters");
        if (c != ' ') visible = 1;
    }
    CV_ENSURE(visible, CV_ERR_INPUT, "name must not be blank");
    return CV_OK;
}

/* ---- the one-time bind ---- */

struct bind_ctx {
    struct cv_app *app;
    struct cv_token_row *rows;
    size_t n, cap;
    cv_result r;
};

static int bind_one(void *arg, const struct cv_token_row *row, const uint8_t hash[CV_TOKEN_HASH_BYTES])
{
    struct bind_ctx *b = arg;
    if (b->n == b->cap) {
        size_t cap = b->cap ? 2 * b->cap : 64;
        if (cap > CV_STORE_TOKEN_BIND_MAX) {
            b->r = cv_fail(CV_ERR_INTERNAL, "more than %d tokens to bind", CV_STORE_TOKEN_BIND_MAX);
            return 1;
        }
        struct cv_token_row *rows = realloc(b->rows, cap * sizeof(*rows));
        if (!rows) {
            b->r = cv_fail(CV_ERR_MEMORY, "out of memory");
            return 1;
        }
        b->rows = rows;
        b->cap = cap;
    }
    struct cv_token_row *t = &b->rows[b->n];
    *t = *row;
    b->r = cv_token_verifier_make(b->app->hsm, t, hash, t->verifier);
    if (cv_failed(b->r)) return 1;
    t->has_verifier = 1;
    b->n++;
    return 0;
}

cv_result cv_tokens_bind_legacy(struct cv_app *app)
{
    struct bind_ctx b = {.app = app, .r = CV_OK};
    cv_result r = cv_store_token_bind_pending(app->store, bind_one, &b);
    if (cv_ok(r)) r = b.r;
    if (cv_ok(r)) {
        char detail[64];
        snprintf(detail, sizeof(detail), "{\"tokens\":%zu}", b.n);
        struct cv_principal p;
        cv_principal_cli(&p);
        snprintf(p.name, sizeof(p.name), "credvault");
        struct cv_audit_event ev;
        cv_audit_event_init(&ev, &p, NULL, "token.bind", NULL, "success");
        ev.detail = detail;
        int bound = -1;
        r = cv_audit_change(app, cv_store_token_bind_finish(app->store, b.rows, b.n, &ev, &bound), 1);
        if (cv_ok(r) && bound >= 0) {
            char count[24];
            snprintf(count, sizeof(count), "%d", bound);
            cv_log(CV_LOG_INFO, "tokens_bound", "tokens", count, NULL);
        }
    }
    if (b.rows) cv_wipe(b.rows, b.cap * sizeof(*b.rows));
    free(b.rows);
    return r;
}
