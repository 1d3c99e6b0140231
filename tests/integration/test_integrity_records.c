/* A database writer against stored credentials, with only the service's
 * own database role, against the real service, token and database: an
 * older encrypted_env restored into its row, credential names, expiry and
 * revision edited (every read refuses it; the server list withholds it);
 * and a record of the earlier format (2), made with the
 * real token as the service made them before, that keeps opening and is
 * rewritten in format 3 by the next write. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "credvault/config.h"
#include "credvault/crypto.h"
#include "credvault/json_alloc.h"
#include "domain/domain.h"
#include "test_ops_fixture.h"

#define V1 "ghp_revision_one_0123456789abcdefAB"
#define V2 "ghp_revision_two_0123456789abcdefCD"
#define AS_SERVICE "SET credvault.scope = 'platform'; "

static char tok_admin[160];

/* SQL as credvault_app in platform scope (which that role may set) */
static char *as_service(const char *sql)
{
    size_t n = strlen(AS_SERVICE) + strlen(sql) + 1;
    char *full = malloc(n);
    ck_assert_ptr_nonnull(full);
    snprintf(full, n, AS_SERVICE "%s", sql);
    char *out = cv_t_psql_on("CREDVAULT_DATABASE_URL", full);
    free(full);
    return out;
}

/* a statement about one server, as the service's role */
#define service_sql(fmt, server)                                                                                       \
    do {                                                                                                               \
        char sql_[2048];                                                                                               \
        snprintf(sql_, sizeof(sql_), fmt, server);                                                                     \
        free(as_service(sql_));                                                                                        \
    } while (0)

/* A server with V1 at revision 1, and a workload token for it. */
static void server_with_token(const char *name, char *id, size_t id_len, char *wl, size_t wl_len)
{
    cv_t_deploy(cl, tok_admin, "github", "{\"env\":{\"GITHUB_TOKEN\":\"" V1 "\"}}", id, id_len);
    cv_t_token_mint(cl, svc.admin_token, name, "workload", "acme", id, wl, wl_len);
}

static void expect_env(const char *id, const char *wl, const char *value, int revision)
{
    char path[256];
    snprintf(path, sizeof(path), "/api/mcp/servers/%s/env", id);
    struct cv_test_response r = cv_t_request(cl, "GET", path, wl, NULL);
    cv_t_expect_status(&r, 200, NULL);
    cv_t_expect_json_str(&r, "data.env.GITHUB_TOKEN", value);
    cv_t_expect_json_int(&r, "data.revision", revision);
    cv_test_response_free(&r);
}

static void expect_refused(const char *method, const char *path, const char *token, const char *body, long status,
                           const char *code)
{
    struct cv_test_response r = cv_t_request(cl, method, path, token, body);
    cv_t_expect_status(&r, status, code);
    ck_assert_ptr_null(strstr(r.body, V1));
    ck_assert_ptr_null(strstr(r.body, V2));
    cv_test_response_free(&r);
}

static long long count_events(const char *action, const char *target)
{
    char sql[512];
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM audit_events WHERE action = '%s' AND target = '%s'", action,
             target);
    return cv_t_psql_int(sql);
}

START_TEST(an_older_record_restored_does_not_open_as_the_newer_revision)
{
    char id[160], wl[160], path[256], sql[512];
    server_with_token("wl-restore", id, sizeof(id), wl, sizeof(wl));
    /* the writer keeps revision 1's record ... */
    snprintf(sql, sizeof(sql), "SELECT encrypted_env FROM mcp_credentials WHERE server_id = '%s'", id);
    char *old = as_service(sql);
    ck_assert_ptr_nonnull(strstr(old, "\"v\":3"));
    snprintf(path, sizeof(path), "/api/mcp/servers/%s/credentials", id);
    cv_t_expect_call(cl, "PUT", path, tok_admin, "{\"env\":{\"GITHUB_TOKEN\":\"" V2 "\"}}", 200, NULL);
    expect_env(id, wl, V2, 2);
    char *now = as_service(sql);
    /* ... and puts it back under revision 2: it does not open as revision 2 */
    char upd[65536];
    snprintf(upd, sizeof(upd), "UPDATE mcp_credentials SET encrypted_env = '%s' WHERE server_id = '%s'", old, id);
    free(as_service(upd));
    char env_path[256];
    snprintf(env_path, sizeof(env_path), "/api/mcp/servers/%s/env", id);
    expect_refused("GET", env_path, wl, NULL, 500, "decrypt_failed");
    expect_refused("GET", path, tok_admin, NULL, 500, "decrypt_failed");
    /* nothing else changed: the real record opens again where it was */
    snprintf(upd, sizeof(upd), "UPDATE mcp_credentials SET encrypted_env = '%s' WHERE server_id = '%s'", now, id);
    free(as_service(upd));
    expect_env(id, wl, V2, 2);
    free(old);
    free(now);
}
END_TEST

START_TEST(edited_names_expiry_or_revision_are_an_integrity_error)
{
    char id[160], wl[160], path[256], validate[256], env_path[256];
    server_with_token("wl-edit", id, sizeof(id), wl, sizeof(wl));
    snprintf(path, sizeof(path), "/api/mcp/servers/%s/credentials", id);
    snprintf(validate, sizeof(validate), "/api/mcp/servers/%s/credentials/validate", id);
    snprintf(env_path, sizeof(env_path), "/api/mcp/servers/%s/env", id);
    double before = metric(svc.admin_token, "credvault_integrity_failures_total{kind=\"record\"}");
    long long events = count_events("credentials.integrity_failed", id);
    const char *body = "{\"requiredKeys\":[\"GITHUB_TOKEN\",\"AWS_SECRET_ACCESS_KEY\"]}";
    struct cv_test_response r = cv_t_request(cl, "POST", validate, tok_admin, body);
    cv_t_expect_status(&r, 200, NULL);
    cv_t_expect_json_bool(&r, "data.valid", 0);
    cv_test_response_free(&r);

    /* a name the record does not hold: validate no longer answers from the column */
    service_sql("UPDATE mcp_credentials SET credential_names = '[\"GITHUB_TOKEN\", \"AWS_SECRET_ACCESS_KEY\"]' "
                "WHERE server_id = '%s'",
                id);
    expect_refused("POST", validate, tok_admin, body, 500, "integrity_error");
    expect_refused("GET", path, tok_admin, NULL, 500, "integrity_error");
    expect_refused("GET", env_path, wl, NULL, 500, "integrity_error");
    /* a replace would launder it: refused too, and nothing is written */
    expect_refused("PUT", path, tok_admin, "{\"env\":{\"GITHUB_TOKEN\":\"" V2 "\"}}", 500, "integrity_error");
    service_sql("UPDATE mcp_credentials SET credential_names = '[\"GITHUB_TOKEN\"]' WHERE server_id = '%s'", id);
    expect_env(id, wl, V1, 1);

    /* a later expiry, a moved revision */
    service_sql("UPDATE mcp_credentials SET expires_at = now() + interval '3650 days' WHERE server_id = '%s'", id);
    expect_refused("GET", env_path, wl, NULL, 500, "integrity_error");
    service_sql("UPDATE mcp_credentials SET expires_at = NULL, revision = 7 WHERE server_id = '%s'", id);
    expect_refused("GET", env_path, wl, NULL, 500, "integrity_error");
    /* a binding copied from another row does not fit this one */
    service_sql("UPDATE mcp_credentials SET revision = 1, binding = (SELECT binding FROM mcp_credentials o WHERE "
                "o.server_id <> '%1$s' LIMIT 1) WHERE server_id = '%1$s'",
                id);
    expect_refused("GET", env_path, wl, NULL, 500, "integrity_error");

    /* counted, audited (never with a value), logged */
    ck_assert(metric(svc.admin_token, "credvault_integrity_failures_total{kind=\"record\"}") >= before + 7);
    ck_assert_int_eq(count_events("credentials.integrity_failed", id), events + 7);
    ck_assert(cv_test_service_log_contains(&svc, "record_binding_mismatch"));
    ck_assert(!cv_test_service_log_contains(&svc, V1));
    ck_assert_int_eq(cv_t_psql_int("SELECT count(*) FROM audit_events WHERE detail_text LIKE '%ghp_%'"), 0);
}
END_TEST

/* The server document shows the names and expiry: GET refuses an edited
 * row like the other reads, and the list withholds it (counted in
 * meta.integrityErrors) while the tenant's other servers still answer. */
START_TEST(an_edited_row_is_refused_by_get_and_withheld_from_the_list)
{
    char tok[160], good[160], bad[160], path[256];
    cv_t_tenant_create(cl, svc.admin_token, "listing");
    cv_t_token_mint(cl, svc.admin_token, "admin@listing", "tenant-admin", "listing", NULL, tok, sizeof(tok));
    cv_t_deploy(cl, tok, "github", "{\"env\":{\"GITHUB_TOKEN\":\"" V1 "\"}}", good, sizeof(good));
    cv_t_deploy(cl, tok, "github", "{\"env\":{\"GITHUB_TOKEN\":\"" V1 "\"}}", bad, sizeof(bad));
    long long events = count_events("credentials.integrity_failed", bad);
    struct cv_test_response r = cv_t_request(cl, "GET", "/api/mcp/servers", tok, NULL);
    cv_t_expect_status(&r, 200, NULL);
    ck_assert_ptr_null(strstr(r.body, "integrityErrors"));
    ck_assert_ptr_nonnull(strstr(r.body, bad));
    cv_test_response_free(&r);

    service_sql("UPDATE mcp_credentials SET credential_names = '[\"GITHUB_TOKEN\", \"AWS_SECRET_ACCESS_KEY\"]' "
                "WHERE server_id = '%s'",
                bad);
    snprintf(path, sizeof(path), "/api/mcp/servers/%s", bad);
    expect_refused("GET", path, tok, NULL, 500, "integrity_error");
    snprintf(path, sizeof(path), "/api/mcp/servers/%s", good);
    cv_t_expect_call(cl, "GET", path, tok, NULL, 200, NULL);

    r = cv_t_request(cl, "GET", "/api/mcp/servers", tok, NULL);
    cv_t_expect_status(&r, 200, NULL);
    cv_t_expect_json_int(&r, "meta.total", 2);
    cv_t_expect_json_int(&r, "meta.integrityErrors", 1);
    ck_assert_msg(strstr(r.body, good) != NULL, "the intact server is listed: %s", r.body);
    ck_assert_msg(strstr(r.body, bad) == NULL, "the edited server is withheld: %s", r.body);
    ck_assert_ptr_null(strstr(r.body, "AWS_SECRET_ACCESS_KEY"));
    cv_test_response_free(&r);
    /* audited for the GET and for the list */
    ck_assert_int_eq(count_events("credentials.integrity_failed", bad), events + 2);

    /* put back as the service wrote it: listed again */
    service_sql("UPDATE mcp_credentials SET credential_names = '[\"GITHUB_TOKEN\"]' WHERE server_id = '%s'", bad);
    r = cv_t_request(cl, "GET", "/api/mcp/servers", tok, NULL);
    cv_t_expect_status(&r, 200, NULL);
    ck_assert_ptr_null(strstr(r.body, "integrityErrors"));
    ck_assert_ptr_nonnull(strstr(r.body, bad));
    cv_test_response_free(&r);
}
END_TEST

/* A format-2 record, sealed with the real token exactly as the service did
 * before migration 0015, in a row from before it (no binding, the bind
 * pending): it is bound at the next start, opens, and the next write
 * rewrites it in format 3. */
START_TEST(a_record_of_the_earlier_format_keeps_opening)
{
    char id[160], wl[160], path[256], sql[65536];
    server_with_token("wl-legacy", id, sizeof(id), wl, sizeof(wl));

    struct cv_config cfg;
    ck_assert(cv_ok(cv_config_load(&cfg, NULL)));
    struct cv_app *app = NULL;
    ck_assert_msg(cv_ok(cv_app_open(&cfg, CV_APP_HSM | CV_APP_STORE, &app)), "%s", cv_error_message());
    struct cv_tenant_key_row key;
    ck_assert(cv_ok(cv_store_tenant_key_current(app->store, "acme", &key)));
    const char *pt = "{\"GITHUB_TOKEN\":\"" V2 "\"}";
    struct cv_buf aad, text;
    cv_buf_init(&aad, 1024);
    cv_buf_init(&text, 65536);
    ck_assert(cv_ok(cv_record_aad("acme", id, key.ref.version, 2, &aad)));
    struct cv_record rec;
    cv_record_init(&rec);
    rec.v = 2;
    rec.key_version = key.ref.version;
    snprintf(rec.tenant_id, sizeof(rec.tenant_id), "acme");
    ck_assert(cv_ok(cv_buf_reserve(&rec.ct, strlen(pt))));
    ck_assert(cv_ok(cv_hsm_gcm_encrypt(app->hsm, &key.ref, aad.data, aad.len, (const uint8_t *)pt, strlen(pt),
                                       rec.iv, rec.ct.data, rec.tag)));
    rec.ct.len = strlen(pt);
    ck_assert(cv_ok(cv_record_encode(&rec, &text)));
    cv_record_wipe(&rec);
    cv_buf_free(&aad);
    cv_app_close(app);
    cv_config_free(&cfg);

    snprintf(sql, sizeof(sql),
             "UPDATE mcp_credentials SET encrypted_env = '%s', key_version = %u, binding = NULL WHERE server_id = "
             "'%s'; INSERT INTO mcp_credentials_bind_pending VALUES (true)",
             (const char *)text.data, key.ref.version, id);
    cv_buf_free(&text);
    free(cv_t_psql(sql));
    char env_path[256];
    snprintf(env_path, sizeof(env_path), "/api/mcp/servers/%s/env", id);
    expect_refused("GET", env_path, wl, NULL, 500, "integrity_error"); /* not bound yet */
    long long binds = cv_t_psql_int("SELECT count(*) FROM audit_events WHERE action = 'credentials.bind'");
    char out[4096];
    ck_assert_int_eq(cli_out("tenant list >/dev/null", out, sizeof(out)), 0);
    ck_assert_int_eq(cv_t_psql_int("SELECT count(*) FROM audit_events WHERE action = 'credentials.bind'"), binds + 1);
    ck_assert_int_eq(cv_t_psql_int("SELECT count(*) FROM mcp_credentials_bind_pending"), 0);
    expect_env(id, wl, V2, 1);
    /* the bind does not start again: a binding removed later stays an error */
    ck_assert_int_eq(cli_out("tenant list >/dev/null", out, sizeof(out)), 0);
    ck_assert_int_eq(cv_t_psql_int("SELECT count(*) FROM audit_events WHERE action = 'credentials.bind'"), binds + 1);

    /* the next write is format 3 */
    snprintf(path, sizeof(path), "/api/mcp/servers/%s/credentials", id);
    cv_t_expect_call(cl, "PUT", path, tok_admin, "{\"env\":{\"GITHUB_TOKEN\":\"" V1 "\"}}", 200, NULL);
    snprintf(sql, sizeof(sql), "SELECT encrypted_env LIKE '{\"v\":3,%%' FROM mcp_credentials WHERE server_id = '%s'",
             id);
    char *v3 = cv_t_psql(sql);
    ck_assert_str_eq(v3, "t");
    free(v3);
    expect_env(id, wl, V1, 2);
}
END_TEST

static Suite *records_suite(void)
{
    static const struct cv_t_suite_spec spec = {.name = "integrity_records", .timeout_s = 180};
    return cv_t_suite_new(&spec, CV_T_TESTS(an_older_record_restored_does_not_open_as_the_newer_revision,
                                            edited_names_expiry_or_revision_are_an_integrity_error,
                                            an_edited_row_is_refused_by_get_and_withheld_from_the_list,
                                            a_record_of_the_earlier_format_keeps_opening));
}

int main(void)
{
    cv_json_alloc_install();
    Suite *suite = records_suite();
    if (cv_test_service_start(&svc, NULL) != 0) return 1;
    cl = cv_test_client_new(svc.base_url, svc.ca_file);
    if (cv_test_cli("tenant create acme --name Acme >/dev/null", NULL, 0) != 0 ||
        cv_test_cli("token create --name admin@acme --role tenant-admin --tenant acme", tok_admin, sizeof(tok_admin)))
        return 1;
    /* another row, whose binding a writer may try on someone else's */
    struct cv_test_response r;
    memset(&r, 0, sizeof(r));
    if (cv_test_request(cl, "POST", "/api/mcp/templates/github/deploy", tok_admin,
                        "{\"env\":{\"GITHUB_TOKEN\":\"" V2 "\"}}", NULL, &r) != 0 ||
        r.status != 201)
        return 1;
    cv_test_response_free(&r);
    int failed = cv_t_suite_run(suite, CK_NOFORK);
    cv_test_client_free(cl);
    int st = cv_test_service_stop(&svc);
    if (st != 0) fprintf(stderr, "credvault serve exited with %d (log: %s)\n", st, svc.log_file);
    return failed || st != 0 ? 1 : 0;
}
