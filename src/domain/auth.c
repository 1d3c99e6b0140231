/* Bearer-token authentication. credvault's tokens are random, shown once,
 * stored as SHA-256 hashes; the lookup is by hash, and the row's HSM
 * verifier must vouch for it and its powers (token_verify.c). Anything else
 * is a JWT for the OIDC issuer, when one is configured (oidc.c). A token
 * verified moments ago is answered from the token cache (token_cache.c)
 * without the database. Every failure gives the caller the same answer. */
#include <stdio.h>
#include <string.h>

#include "credvault/buf.h"
#include "credvault/crypto.h"
#include "domain/domain.h"
#include "domain/token_cache.h"
#include "domain/token_verify.h"

#define AUTH_FAILED "missing or invalid bearer token"

cv_result cv_auth_bearer(struct cv_app *app, const char *authorization, struct cv_principal *out)
{
    CV_ENSURE(authorization != NULL, CV_ERR_AUTH, AUTH_FAILED);
    CV_ENSURE(strncmp(authorization, "Bearer ", 7) == 0, CV_ERR_AUTH, AUTH_FAILED);
    const char *tok = authorization + 7;
    while (*tok == ' ') tok++;
    size_t n = strlen(tok);
    if (strncmp(tok, CV_TOKEN_PREFIX, strlen(CV_TOKEN_PREFIX)) != 0) {
        CV_ENSURE(app->oidc != NULL, CV_ERR_AUTH, AUTH_FAILED);
        if (cv_failed(cv_oidc_authenticate(app->oidc, tok, out))) {
            memset(out, 0, sizeof(*out));
            return cv_fail(CV_ERR_AUTH, AUTH_FAILED);
        }
        return CV_OK;
    }
    CV_ENSURE(n > strlen(CV_TOKEN_PREFIX) && n <= CV_TOKEN_MAX_BYTES, CV_ERR_AUTH, AUTH_FAILED);

    uint8_t hash[CV_SHA256_BYTES];
    cv_crypto_sha256(tok, n, hash);
    if (cv_token_cache_get(app->token_cache, hash, out)) return CV_OK;
    uint64_t gen = cv_token_cache_gen(app->token_cache);
    struct cv_token_row row;
    cv_result r = cv_store_token_lookup(app->store, hash, &row);
    if (r.err == CV_ERR_NOT_FOUND) return cv_fail(CV_ERR_AUTH, AUTH_FAILED);
    CV_GUARD(r);
    CV_ENSURE(!row.revoked, CV_ERR_AUTH, AUTH_FAILED);
    CV_ENSURE(row.expires_at_ms == 0 || row.expires_at_ms > cv_time_now_ms(), CV_ERR_AUTH, AUTH_FAILED);
    enum cv_role role;
    CV_ENSURE(cv_role_parse(row.role, &role) == 0, CV_ERR_AUTH, AUTH_FAILED);
    r = cv_token_verify(app, &row, hash);
    if (r.err == CV_ERR_AUTH) return cv_fail(CV_ERR_AUTH, AUTH_FAILED);
    CV_GUARD(r);

    memset(out, 0, sizeof(*out));
    snprintf(out->token_id, sizeof(out->token_id), "%s", row.id);
    snprintf(out->name, sizeof(out->name), "%s", row.name);
    snprintf(out->tenant_id, sizeof(out->tenant_id), "%s", row.tenant_id);
    snprintf(out->server_id, sizeof(out->server_id), "%s", row.server_id);
    out->role = role;
    cv_token_cache_put(app->token_cache, gen, hash, out, row.expires_at_ms);
    return CV_OK;
}
