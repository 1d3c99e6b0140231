/* A token that lacks mechanisms, made by hiding them in the test module
 * (tests/p11shim): the service refuses to open it, naming the first one it
 * lacks, while `hsm status` opens it to report every gap and what it disables. */
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test_hsm_fixture.h"

static char control[512];

static void hide(const char *text)
{
    snprintf(control, sizeof(control), "%s/gaps.control", fixture_env("CV_TEST_TMP"));
    FILE *f = fopen(control, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
    setenv("CV_P11SHIM_CONTROL", control, 1);
}

static struct cv_hsm_options shim_options(void)
{
    struct cv_hsm_options o = fixture_options();
    o.module_path = fixture_env("CV_P11SHIM");
    return o;
}

static const char *disables(const struct cv_hsm_status *st, const char *name)
{
    for (size_t i = 0; i < st->mechanisms_count; i++)
        if (strcmp(st->mechanisms[i].name, name) == 0) return st->mechanisms[i].disables;
    return NULL;
}

START_TEST(service_refuses_a_token_without_gcm_naming_it)
{
    hide("hide CKM_AES_GCM\n");
    struct cv_hsm_options o = shim_options();
    struct cv_hsm *hsm = NULL;
    cv_result r = cv_hsm_open(&o, &hsm);
    ck_assert_int_eq(r.err, CV_ERR_UNAVAILABLE);
    ck_assert_ptr_null(hsm);
    ck_assert_msg(strstr(cv_error_message(), "CKM_AES_GCM") != NULL, "%s", cv_error_message());
}
END_TEST

START_TEST(status_lists_every_gap_and_what_it_disables)
{
    hide("hide CKM_AES_GCM\nhide CKM_AES_KEY_WRAP_PAD\nhide CKM_SHA256_HMAC\nhide CKM_EC_KEY_PAIR_GEN\n"
         "hide CKM_ECDSA\n");
    struct cv_hsm_options o = shim_options();
    o.inspect = 1;
    struct cv_hsm *hsm = fixture_open_with(&o);
    struct cv_hsm_status st;
    ck_assert_msg(cv_ok(cv_hsm_status_get(hsm, &st)), "%s", cv_error_message());
    ck_assert_uint_eq(st.gaps, 5);
    ck_assert_str_eq(st.profile, "softhsm");
    ck_assert_ptr_nonnull(strstr(disables(&st, "CKM_AES_GCM"), "sealed or opened"));
    ck_assert_ptr_nonnull(strstr(disables(&st, "CKM_AES_KEY_WRAP_PAD"), "tenant key"));
    ck_assert_ptr_nonnull(strstr(disables(&st, "CKM_SHA256_HMAC"), "bound"));
    ck_assert_ptr_nonnull(strstr(disables(&st, "CKM_EC_KEY_PAIR_GEN"), "audit signing key"));
    ck_assert_ptr_nonnull(strstr(disables(&st, "CKM_ECDSA"), "checkpoints"));
    /* what the token has, or the profile does not need, is no gap */
    ck_assert_str_eq(disables(&st, "CKM_AES_KEY_GEN"), "");
    ck_assert_str_eq(disables(&st, "CKM_CLOUDHSM_AES_KEY_WRAP_ZERO_PAD"), "");
    cv_hsm_close(hsm);

    /* the command prints them and says so in its exit status */
    char cmd[1400];
    snprintf(cmd, sizeof(cmd), "CREDVAULT_PKCS11_MODULE='%s' '%s' hsm status", fixture_env("CV_P11SHIM"),
             fixture_env("CREDVAULT_BIN"));
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    char out[8192];
    size_t n = fread(out, 1, sizeof(out) - 1, p);
    out[n] = '\0';
    int st_code = pclose(p);
    ck_assert_msg(WIFEXITED(st_code) && WEXITSTATUS(st_code) == 1, "hsm status exit %d:\n%s", st_code, out);
    ck_assert_msg(strstr(out, "gap:           CKM_AES_GCM missing: no credential can be sealed") != NULL, "%s", out);
    ck_assert_msg(strstr(out, "gap:           CKM_ECDSA missing: audit checkpoints cannot be signed") != NULL, "%s",
                  out);
}
END_TEST

START_TEST(a_complete_token_has_no_gap)
{
    hide("# nothing hidden\n");
    struct cv_hsm_options o = shim_options();
    o.inspect = 1;
    struct cv_hsm *hsm = fixture_open_with(&o);
    struct cv_hsm_status st;
    ck_assert(cv_ok(cv_hsm_status_get(hsm, &st)));
    ck_assert_uint_eq(st.gaps, 0);
    cv_hsm_close(hsm);
}
END_TEST

int main(void)
{
    static const struct cv_t_suite_spec spec = {.name = "hsm_gaps", .timeout_s = 120};
    Suite *s = cv_t_suite_new(&spec, CV_T_TESTS(service_refuses_a_token_without_gcm_naming_it,
                                                status_lists_every_gap_and_what_it_disables,
                                                a_complete_token_has_no_gap));
    return fixture_run(s);
}
