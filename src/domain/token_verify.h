/* Tokens bound by the HSM (migration 0014): the verifier stored with each
 * token row, its one check on the request path, the name rule and the
 * one-time bind of rows minted before verifiers existed. */
#ifndef CREDVAULT_DOMAIN_TOKEN_VERIFY_H
#define CREDVAULT_DOMAIN_TOKEN_VERIFY_H

#include "domain/domain.h"

#define CV_TOKEN_VERIFIER_CONTEXT "credvault.token.v1"

/* Printable UTF-8, no control character (C0, DEL, C1), not blank. */
CV_RESULT cv_token_name_check(const char *name);
/* HMAC in the token over the hash and id, role, tenant, server, expiry. */
CV_RESULT cv_token_verifier_make(struct cv_hsm *hsm, const struct cv_token_row *row,
                                 const uint8_t hash[CV_TOKEN_HASH_BYTES], uint8_t out[CV_TOKEN_VERIFIER_BYTES]);
/* The one check on every request (one HMAC, or a memo hit for a row the HSM
 * matched before): CV_OK when the row was written through the service. A mismatch is logged and audited and fails with
 * CV_ERR_AUTH; an HSM failure stays what it was. */
CV_RESULT cv_token_verify(struct cv_app *app, const struct cv_token_row *row, const uint8_t hash[CV_TOKEN_HASH_BYTES]);
/* Rows the HSM matched, remembered for a few minutes (app->token_memo). */
CV_RESULT cv_token_memo_new(struct cv_token_memo **out);
void cv_token_memo_free(struct cv_token_memo *m);
/* A digest of something the HSM vouched for (with its context in it), and
 * whether it was vouched for within the memo's lifetime. */
int cv_token_memo_hit(struct cv_token_memo *m, const uint8_t digest[CV_TOKEN_HASH_BYTES]);
void cv_token_memo_put(struct cv_token_memo *m, const uint8_t digest[CV_TOKEN_HASH_BYTES]);
/* At start, after the key check: binds the rows minted before verifiers,
 * once per database (audited "token.bind"); nothing to do afterwards. */
CV_RESULT cv_tokens_bind_legacy(struct cv_app *app);

#endif
