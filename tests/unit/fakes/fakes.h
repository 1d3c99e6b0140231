/* In-memory stand-ins for the HSM and the store, linked instead of src/hsm
 * and src/store into the domain's unit tests (tests/unit/test_domain_*.c):
 * the functions of include/credvault/hsm.h, hsm_signing.h, store.h,
 * store_audit.h and store_lifecycle.h that the domain calls, with the same
 * contracts where a test can see them (not found, conflicts, revisions,
 * tenant scope, one encryption counted per sealed record, an AEAD that
 * fails on a wrong key, AAD or tag). A call can be made to fail, and calls
 * are counted, so a test can say which error wins and what was never
 * reached. Single-threaded, like the tests. */
#ifndef CV_TEST_FAKES_H
#define CV_TEST_FAKES_H

#include <check.h>
#include <stddef.h>
#include <string.h>

#include "credvault/result.h"
#include "domain/domain.h"

/* ---- the service context ---- */

/* A cv_app over a fresh fake store and fake HSM, the default configuration
 * and the built-in template catalog; master key version 1 exists. Also
 * clears the failures and counts below. */
struct cv_app *cv_fake_app_new(void);
void cv_fake_app_free(struct cv_app *app);

/* ---- failures and counts ---- */

/* The call of `fn` ("cv_store_server_get"; a trailing '*' matches a prefix:
 * "cv_store_*", "cv_hsm_*") after `after` successful ones fails with
 * `err`, once. Several may be armed at a time. */
void cv_fake_fail(const char *fn, cv_err err, unsigned after);
/* How many times functions matching `fn` were called since the app was
 * made, or since cv_fake_calls_clear. */
unsigned cv_fake_calls(const char *fn);
void cv_fake_calls_clear(void);

/* ---- what the fake store holds ---- */

/* Audit events written (alone, or with a change that committed), matching
 * `action` and `outcome` (NULL matches any). */
unsigned cv_fake_audit_count(const struct cv_app *app, const char *action, const char *outcome);
/* The stored record (encrypted_env) of a server, for a test to tamper with:
 * a pointer into the fake store, or NULL. */
char *cv_fake_record(struct cv_app *app, const char *tenant_id, const char *server_id);
/* Servers stored for a tenant. */
unsigned cv_fake_server_count(const struct cv_app *app, const char *tenant_id);

/* ---- helpers for the tests ---- */

/* A principal as cv_auth_bearer would make it; tenant and server may be NULL. */
struct cv_principal cv_fake_principal(enum cv_role role, const char *tenant_id, const char *server_id);
/* Creates a tenant through cv_tenant_create, as an admin; asserts success. */
void cv_fake_tenant(struct cv_app *app, const char *id);
/* Edits a stored token row as a database writer would (no verifier change). */
CV_RESULT cv_fake_token_set_role(struct cv_store *st, const char *token_id, const char *role);
/* A body parsed as the HTTP layer parses it (duplicate names refused, NUL
 * allowed, so the use case sees it); fails the test when malformed. */
json_t *cv_fake_json(const char *text);

/* `call` (returning cv_result) fails with `want`, and with a message that
 * holds `fragment` unless it is NULL. */
#define cv_fake_expect_fail(call, want, fragment)                                                                      \
    do {                                                                                                               \
        cv_error_clear();                                                                                              \
        cv_result r_ = (call);                                                                                         \
        ck_assert_msg(r_.err == (want), "%s: got %s (%s), want %s", #call, cv_err_name(r_.err), cv_error_message(),    \
                      cv_err_name(want));                                                                              \
        const char *f_ = (fragment);                                                                                   \
        if (f_)                                                                                                        \
            ck_assert_msg(strstr(cv_error_message(), f_) != NULL, "message '%s' lacks '%s'", cv_error_message(), f_);  \
    } while (0)

#endif
