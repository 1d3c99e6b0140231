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

/* With CV_HSM_VIA_PROXY=1 the tests load p11-kit's proxy module
 * (CV_P11KIT_PROXY) instead of SoftHSM2, configured by a user config of
 * the test's own ($CV_TEST_TMP/p11-kit-config, through XDG_CONFIG_HOME)
 * that names this token's SoftHSM2 and turns the machine's other modules
 * off, so /etc and the user's home are never changed. p11-kit reads no
 * user config for root: there the system's softhsm2.module (shipped by
 * Debian's softhsm2) is the one loaded; SOFTHSM2_CONF still picks the
 * test's token folder either way. */
static inline int fixture_via_proxy(void)
{
    const char *v = getenv("CV_HSM_VIA_PROXY");
    return v && strcmp(v, "1") == 0;
}

static inline const char *fixture_proxy_setup(void)
{
    const char *proxy = getenv("CV_P11KIT_PROXY");
    if (!proxy || !*proxy) {
        fprintf(stderr, "CV_P11KIT_PROXY is not set (p11-kit's proxy module, package p11-kit-modules)\n");
        exit(1); /* a missing tool fails */
    }
    char dir[1024], path[1200];
    snprintf(dir, sizeof(dir), "%s/p11-kit-config", fixture_env("CV_TEST_TMP"));
    snprintf(path, sizeof(path), "mkdir -p '%s/pkcs11/modules'", dir);
    ck_assert_int_eq(system(path), 0);
    /* same names as the system's module configs: a user config overrides them */
    static const char *const others[] = {"p11-kit-trust", "opensc-pkcs11", "opensc", "onepin-opensc-pkcs11"};
    for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++) {
        snprintf(path, sizeof(path), "%s/pkcs11/modules/%s.module", dir, others[i]);
        FILE *f = fopen(path, "w");
        ck_assert_ptr_nonnull(f);
        fprintf(f, "enable-in: credvault-nowhere\n");
        fclose(f);
    }
    snprintf(path, sizeof(path), "%s/pkcs11/modules/softhsm2.module", dir);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f, "module: %s\n", fixture_env("CREDVAULT_PKCS11_MODULE"));
    fclose(f);
    setenv("XDG_CONFIG_HOME", dir, 1);
    return proxy;
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
    if (fixture_via_proxy()) o.module_path = fixture_proxy_setup();
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
