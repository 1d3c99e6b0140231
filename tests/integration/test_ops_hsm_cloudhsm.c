/* The CloudHSM quirk profile end to end: the service runs on the test module
 * (tests/p11shim) in its CloudHSM mode, where the token makes the GCM IV and
 * knows RFC 5649 only by the vendor's mechanism name, and deploys, reads,
 * rotates a tenant key and the master key, and rewraps, as on SoftHSM. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "credvault/json_alloc.h"
#include "test_ops_fixture.h"

static char module_env[600], control_env[600], control[512];
static const char *env[] = {module_env, control_env, NULL};

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Polls a job until it is no longer running; returns its data. */
static json_t *wait_job(const char *path, const char *token)
{
    long long t0 = now_ms();
    for (;;) {
        struct cv_test_response r = cv_t_request(cl, "GET", path, token, NULL);
        if (r.status == 200) {
            const char *state = json_string_value(json_object_get(cv_t_data(&r), "state"));
            if (state && strcmp(state, "running") != 0) {
                json_t *keep = json_incref(cv_t_data(&r));
                cv_test_response_free(&r);
                return keep;
            }
        }
        cv_test_response_free(&r);
        ck_assert_msg(now_ms() - t0 < 30000, "%s did not finish within 30 s", path);
        sleep_ms(50);
    }
}

/* The masked value shows the first and last four characters. */
static void read_back(const char *tok, const char *server, const char *last4)
{
    char path[256];
    snprintf(path, sizeof(path), "/api/mcp/servers/%s/credentials", server);
    struct cv_test_response r = cv_t_request(cl, "GET", path, tok, NULL);
    cv_t_expect_status(&r, 200, NULL);
    const char *v = cv_t_json_str(&r, "data.credentials.GITHUB_TOKEN");
    ck_assert_msg(v && strncmp(v, "ghp_", 4) == 0 && strlen(v) > 8 && strcmp(v + strlen(v) - 4, last4) == 0,
                  "masked %s, want ghp_…%s", v ? v : "(none)", last4);
    cv_test_response_free(&r);
}

START_TEST(deploy_read_rotate_and_rewrap_on_the_cloudhsm_profile)
{
    /* the profile was chosen from what the token says of itself */
    ck_assert(cv_test_service_log_contains(&svc, "\"profile\":\"cloudhsm\""));
    ck_assert(cv_test_service_log_contains(&svc, "\"wrap\":\"CKM_CLOUDHSM_AES_KEY_WRAP_ZERO_PAD\""));
    ck_assert(cv_test_service_log_contains(&svc, "\"gcm_iv\":\"hsm-buffer\""));

    const char *admin = svc.admin_token;
    char tok[160], s1[160], s2[160], s3[160];
    cv_t_tenant_create(cl, admin, "cloud");
    cv_t_token_mint(cl, admin, "alice@cloud.example", "tenant-admin", "cloud", NULL, tok, sizeof(tok));
    cv_t_deploy(cl, tok, "github", "{\"env\":{\"GITHUB_TOKEN\":\"ghp_cloudhsm_first_0123456789abcd\"}}", s1,
                sizeof(s1));
    cv_t_deploy(cl, tok, "github", "{\"env\":{\"GITHUB_TOKEN\":\"ghp_cloudhsm_other_0123456789wxyz\"}}", s2,
                sizeof(s2));
    read_back(tok, s1, "abcd");
    read_back(tok, s2, "wxyz");
    /* the token made each IV: never zero, never the same twice */
    ck_assert_int_eq(cv_t_psql_int("SELECT count(DISTINCT encrypted_env::json->>'iv') FROM mcp_credentials "
                                   "WHERE tenant_id = 'cloud' AND encrypted_env::json->>'iv' <> repeat('0', 24)"),
                     2);

    /* a new tenant key version, and the records moved to it */
    cv_t_expect_call(cl, "POST", "/api/tenants/cloud/keys/rotate", admin, NULL, 201, NULL);
    cv_t_deploy(cl, tok, "github", "{\"env\":{\"GITHUB_TOKEN\":\"ghp_cloudhsm_third_0123456789mnop\"}}", s3,
                sizeof(s3));
    cv_t_expect_call(cl, "POST", "/api/tenants/cloud/rewrap", admin, NULL, 202, NULL);
    json_t *job = wait_job("/api/tenants/cloud/rewrap", admin);
    ck_assert_str_eq(json_string_value(json_object_get(job, "state")), "done");
    json_decref(job);
    ck_assert_int_eq(cv_t_psql_int("SELECT count(*) FROM mcp_credentials WHERE tenant_id = 'cloud' AND key_version = 2"),
                     3);

    /* a new master key, made through the module, and the tenant keys wrapped by it */
    cv_t_expect_call(cl, "POST", "/api/admin/master-keys/rotate", admin, NULL, 202, NULL);
    job = wait_job("/api/admin/master-keys/rewrap", admin);
    ck_assert_str_eq(json_string_value(json_object_get(job, "state")), "done");
    json_decref(job);
    ck_assert_int_eq(cv_t_psql_int("SELECT count(*) FROM tenant_keys WHERE master_version = 1 "
                                   "AND state <> 'destroyed'"),
                     0);
    read_back(tok, s1, "abcd");
    read_back(tok, s2, "wxyz");
    read_back(tok, s3, "mnop");

    /* `hsm status` through the same module names the profile */
    char out[8192], cmd[1400];
    snprintf(cmd, sizeof(cmd), "env '%s' '%s' \"$CREDVAULT_BIN\" hsm status --json", module_env, control_env);
    char *status = cv_test_sh_output(cmd);
    ck_assert_ptr_nonnull(status);
    snprintf(out, sizeof(out), "%s", status);
    free(status);
    ck_assert_msg(strstr(out, "cloudhsm") != NULL, "hsm status: %s", out);
}
END_TEST

int main(void)
{
    cv_json_alloc_install();
    static const struct cv_t_suite_spec spec = {.name = "ops_hsm_cloudhsm", .timeout_s = 120};
    Suite *suite = cv_t_suite_new(&spec, CV_T_TESTS(deploy_read_rotate_and_rewrap_on_the_cloudhsm_profile));
    const char *shim = getenv("CV_P11SHIM"), *tmp = getenv("CV_TEST_TMP");
    if (!shim || !tmp) {
        fprintf(stderr, "CV_P11SHIM or CV_TEST_TMP is not set: run through ctest\n");
        return 1;
    }
    snprintf(control, sizeof(control), "%s/p11shim.control", tmp);
    snprintf(module_env, sizeof(module_env), "CREDVAULT_PKCS11_MODULE=%s", shim);
    snprintf(control_env, sizeof(control_env), "CV_P11SHIM_CONTROL=%s", control);
    FILE *f = fopen(control, "w");
    if (!f) return 1;
    fputs("profile cloudhsm\n", f);
    fclose(f);
    if (cv_test_service_start(&svc, env) != 0) return 1;
    cl = cv_test_client_new(svc.base_url, svc.ca_file);
    int failed = cv_t_suite_run(suite, CK_NOFORK);
    cv_test_client_free(cl);
    int st = cv_test_service_stop(&svc);
    if (st != 0) {
        fprintf(stderr, "credvault serve exited with %d (log: %s)\n", st, svc.log_file);
        failed++;
    }
    if (failed) cv_test_sh("tail -n 40 \"$CV_TEST_TMP\"/service/serve-*.log >&2");
    return failed ? 1 : 0;
}
