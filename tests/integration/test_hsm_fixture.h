/* Shared by the HSM integration tests: settings from the environment that
 * tests/testlib/run-integration exports for its fresh SoftHSM2 token, and
 * small helpers. Header-only so each test stays one translation unit. */
#ifndef TEST_HSM_FIXTURE_H
#define TEST_HSM_FIXTURE_H

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "credvault/hsm.h"
#include "credvault/secret_file.h"
#include "cv_test_suite.h"
#include "hsm/hsm_testing.h"

static char *fixture_pin; /* secret memory, for the life of the test program */

static inline const char *fixture_env(const char *name)
{
    const char *v = getenv(name);
    if (!v || !*v) {
        fprintf(stderr, "%s is not set: run through tests/testlib/run-integration\n", name);
        exit(77);
    }
    return v;
}

static inline struct cv_hsm_options fixture_options(void)
{
    /* the PIN file is read the way credvault reads it */
    if (!fixture_pin &&
        cv_failed(cv_secret_file_read("CREDVAULT_HSM_PIN_FILE", fixture_env("CREDVAULT_HSM_PIN_FILE"),
                                      CV_SECRET_FILE_MAX_BYTES, &fixture_pin, NULL))) {
        fprintf(stderr, "cannot read the PIN file: %s\n", cv_error_message());
        exit(1);
    }
    struct cv_hsm_options o = {
        .module_path = fixture_env("CREDVAULT_PKCS11_MODULE"),
        .token = fixture_env("CREDVAULT_PKCS11_TOKEN"),
        .pin = fixture_pin,
        .sessions = 2,
        .retries = 3,
        .backoff_ms = 5,
        .key_cache_size = 16,
    };
    return o;
}

static inline struct cv_hsm *fixture_open_with(const struct cv_hsm_options *o)
{
    struct cv_hsm *hsm = NULL;
    cv_result r = cv_hsm_open(o, &hsm);
    ck_assert_msg(cv_ok(r), "cv_hsm_open: %s", cv_error_message());
    return hsm;
}

static inline struct cv_hsm *fixture_open(void)
{
    struct cv_hsm_options o = fixture_options();
    return fixture_open_with(&o);
}

/* Master 1 and the binding key, made once per token (tests share it). */
static inline void fixture_keys(struct cv_hsm *hsm)
{
    int exists = 0;
    ck_assert(cv_ok(cv_hsm_master_exists(hsm, 1, &exists)));
    if (!exists) ck_assert_msg(cv_ok(cv_hsm_master_create(hsm, 1)), "%s", cv_error_message());
    cv_result r = cv_hsm_binding_key_create(hsm);
    ck_assert_msg(cv_ok(r) || r.err == CV_ERR_CONFLICT, "%s", cv_error_message());
}

static inline struct cv_key_ref fixture_ref(struct cv_hsm *hsm, const char *tenant, uint32_t version, uint32_t master)
{
    struct cv_key_ref ref;
    memset(&ref, 0, sizeof(ref));
    snprintf(ref.tenant_id, sizeof(ref.tenant_id), "%s", tenant);
    ref.version = version;
    ref.master_version = master;
    cv_result r = cv_hsm_tenant_key_generate(hsm, &ref);
    ck_assert_msg(cv_ok(r), "generate: %s", cv_error_message());
    return ref;
}

static inline unsigned long fixture_session_keys(struct cv_hsm *hsm)
{
    unsigned long n = 0;
    ck_assert(cv_ok(cv_hsm_testing_count_session_keys(hsm, &n)));
    return n;
}

static const uint8_t fixture_aad[] = "credvault.record|acme|server-1|1";
static const uint8_t fixture_pt[] = "{\"GITHUB_TOKEN\":\"ghp_0123456789abcdef\"}";

static inline void fixture_seal(struct cv_hsm *hsm, const struct cv_key_ref *ref, uint8_t iv[CV_GCM_IV_BYTES],
                         uint8_t ct[sizeof(fixture_pt)], uint8_t tag[CV_GCM_TAG_BYTES])
{
    cv_result r = cv_hsm_gcm_encrypt(hsm, ref, fixture_aad, sizeof(fixture_aad), fixture_pt, sizeof(fixture_pt), iv,
                                     ct, tag);
    ck_assert_msg(cv_ok(r), "encrypt: %s", cv_error_message());
}

static inline int fixture_run(Suite *s)
{
    return cv_t_suite_run(s, CK_FORK) ? EXIT_FAILURE : EXIT_SUCCESS;
}

#endif
