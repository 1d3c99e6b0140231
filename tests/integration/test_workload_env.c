/* Workload delivery end to end: the real `credvault serve` on a fresh
 * SoftHSM2 token and PostgreSQL cluster, GET /api/mcp/servers/:id/env over
 * HTTPS, and the real `credvault run` execing a shell. A workload token reads
 * its own server's map and nothing else; every other role gets 403 and every
 * other server 404; names outside a template's allow-list are refused at
 * deploy, and names that change how programs load or run (SHELLOPTS, PS4,
 * LD_*, …) at deploy, at delivery and by `credvault run`, whatever the template; `credvault run` passes the
 * values, drops the token variables, execs (same pid), passes the exit
 * status through and has a distinct status for each way it can fail. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cv_test_api.h"
#include "cv_test_service.h"
#include "credvault/json_alloc.h"
#include "credvault/store.h"
#include "domain/domain.h"
#include "domain/record_bind.h"
#include "domain/seal.h"
#include "cv_test_suite.h"

static struct cv_test_service svc, svc2; /* svc2: the same database, a catalog with "native-tool" */
static struct cv_test_client *cl, *cl2;
static char tok_a[160], tok_a_auditor[160], tok_b[160];
static char srv1[160], srv2[160], srv3[160]; /* acme: github, acme: slack, beta: github */
static char wl1[160], wl3[160];              /* workload tokens for srv1 and srv3 */

#define GH_TOKEN "ghp_workload_secret_0123456789abcdefghij"
#define ODD_VALUE "va lue=with \\\"quotes\\\", 'single', $dollar and `ticks`"
#define ODD_VALUE_RAW "va lue=with \"quotes\", 'single', $dollar and `ticks`"
#define SLACK_TOKEN "xoxb-123456789012-workload-slack-secret"

/* ---- helpers ---- */

/* A request that must get `status` (and `code`); a refusal never carries a value. */
#define expect_call(method, path, token, body, status, code)                                                           \
    expect_call_at(__FILE__, __LINE__, (method), (path), (token), (body), (status), (code))
static void expect_call_at(const char *file, int line, const char *method, const char *path, const char *token,
                           const char *body, long status, const char *code)
{
    struct cv_test_response r = cv_t_request_at(file, line, cl, method, path, token, body, NULL);
    cv_t_expect_status_at(file, line, &r, status, code);
    if (status >= 300) {
        ck_assert_msg(!strstr(r.body, GH_TOKEN) && !strstr(r.body, SLACK_TOKEN), "%s:%d: a value in a refusal: %s",
                      file, line, r.body);
    }
    cv_test_response_free(&r);
}

static void env_path(const char *server, char *out, size_t n) { snprintf(out, n, "/api/mcp/servers/%s/env", server); }

/* Writes a token into a 0600 file under CV_TEST_TMP; returns its path. */
static void token_file(const char *name, const char *token, char *path, size_t n)
{
    snprintf(path, n, "%s/%s", getenv("CV_TEST_TMP"), name);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f, "%s\n", token);
    fclose(f);
    ck_assert_int_eq(chmod(path, 0600), 0);
}

/* Runs `env <envs> credvault run <args>` in an empty folder with stdout and
 * stderr together; returns the output and sets *status. */
static char *run(const char *envs, const char *args, int *status)
{
    char cmd[8192];
    snprintf(cmd, sizeof(cmd),
             "cd \"$CV_TEST_TMP/runcwd\" && env -u CREDVAULT_TOKEN -u CREDVAULT_TOKEN_FILE %s "
             "timeout 60 \"$CREDVAULT_BIN\" run %s 2>&1; echo \"[rc=$?]\"",
             envs, args);
    char *out = cv_test_sh_output(cmd);
    ck_assert_ptr_nonnull(out);
    char *rc = strstr(out, "[rc=");
    ck_assert_ptr_nonnull(rc);
    *status = atoi(rc + 4);
    *rc = '\0';
    return out;
}

/* ---- the endpoint ---- */

/* The servers and tokens the cases share, made through the API once, by
 * whichever case runs first. */
static void fixture(void)
{
    cv_t_deploy(cl, tok_a, "github",
                "{\"env\":{\"GITHUB_TOKEN\":\"" GH_TOKEN "\",\"GITHUB_ORG\":\"acme\",\"MCP_ODD_VALUE\":\"" ODD_VALUE "\"}}",
                srv1, sizeof(srv1));
    cv_t_deploy(cl, tok_a, "slack", "{\"env\":{\"SLACK_BOT_TOKEN\":\"" SLACK_TOKEN "\"}}", srv2, sizeof(srv2));
    cv_t_deploy(cl, tok_b, "github", "{\"env\":{\"GITHUB_TOKEN\":\"ghp_beta_0123456789\"}}", srv3, sizeof(srv3));
    cv_t_token_mint(cl, tok_a, "mcp-github", "workload", "acme", srv1, wl1, sizeof(wl1));
    cv_t_token_mint(cl, svc.admin_token, "mcp-beta", "workload", "beta", srv3, wl3, sizeof(wl3));
}

START_TEST(workload_reads_its_own_server)
{
    char path[256];
    env_path(srv1, path, sizeof(path));
    struct cv_test_response r = cv_t_request(cl, "GET", path, wl1, NULL);
    cv_t_expect_status(&r, 200, NULL);
    json_t *d = cv_t_data(&r);
    ck_assert_str_eq(json_string_value(json_object_get(d, "serverId")), srv1);
    ck_assert_int_eq(json_integer_value(json_object_get(d, "revision")), 1);
    json_t *env = json_object_get(d, "env");
    ck_assert_int_eq(json_object_size(env), 3);
    ck_assert_str_eq(json_string_value(json_object_get(env, "GITHUB_TOKEN")), GH_TOKEN);
    ck_assert_str_eq(json_string_value(json_object_get(env, "GITHUB_ORG")), "acme");
    ck_assert_str_eq(json_string_value(json_object_get(env, "MCP_ODD_VALUE")), ODD_VALUE_RAW);
    ck_assert_str_eq(cv_test_response_header(&r, "Cache-Control"), "no-store");
    cv_test_response_free(&r);
    /* the same token twice: the answer does not change, nothing is consumed */
    r = cv_t_request(cl, "GET", path, wl1, NULL);
    cv_t_expect_status(&r, 200, NULL);
    cv_test_response_free(&r);
}
END_TEST

START_TEST(other_roles_get_403)
{
    char path[256];
    env_path(srv1, path, sizeof(path));
    /* the role decides before any lookup: admin, the tenant's own admin and
     * auditor, another tenant's admin — none of them reads full values */
    expect_call("GET", path, svc.admin_token, NULL, 403, "forbidden");
    expect_call("GET", path, tok_a, NULL, 403, "forbidden");
    expect_call("GET", path, tok_a_auditor, NULL, 403, "forbidden");
    expect_call("GET", path, tok_b, NULL, 403, "forbidden");
    env_path("no-such-server", path, sizeof(path));
    expect_call("GET", path, tok_a, NULL, 403, "forbidden");
    /* no usable token at all */
    env_path(srv1, path, sizeof(path));
    expect_call("GET", path, NULL, NULL, 401, "unauthorized");
    expect_call("GET", path, "cvt_0000000000000000000000000000000000000000000000000000000000000000", NULL, 401,
                "unauthorized");
    /* other methods on the path are not a way in either */
    expect_call("POST", path, wl1, "{}", 405, NULL);
    expect_call("DELETE", path, wl1, NULL, 405, NULL);
}
END_TEST

START_TEST(other_servers_get_404)
{
    char path[256];
    const char *others[] = {srv2, srv3, "no-such-server", "grc-evidence-0000000000000"};
    char first[512] = "";
    for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++) {
        env_path(others[i], path, sizeof(path));
        struct cv_test_response r = cv_t_request(cl, "GET", path, wl1, NULL);
        cv_t_expect_status(&r, 404, "not_found");
        ck_assert_ptr_null(strstr(r.body, SLACK_TOKEN));
        /* an existing server of the tenant, another tenant's and a missing
         * one answer alike: the token cannot probe ids */
        const char *msg = json_string_value(json_object_get(json_object_get(r.json, "error"), "message"));
        if (i == 0) snprintf(first, sizeof(first), "%s", msg);
        else ck_assert_str_eq(msg, first);
        cv_test_response_free(&r);
    }
    /* and the other way round: beta's workload token on acme's server */
    env_path(srv1, path, sizeof(path));
    expect_call("GET", path, wl3, NULL, 404, "not_found");
    env_path(srv3, path, sizeof(path));
    expect_call("GET", path, wl3, NULL, 200, NULL);
    /* a workload token may not use the masked read or the listing either */
    snprintf(path, sizeof(path), "/api/mcp/servers/%s/credentials", srv1);
    expect_call("GET", path, wl1, NULL, 403, "forbidden");
    expect_call("GET", "/api/mcp/servers", wl1, NULL, 403, "forbidden");
    expect_call("POST", "/api/tokens", wl1, "{\"name\":\"x\",\"role\":\"workload\",\"tenantId\":\"acme\"}", 403, NULL);
}
END_TEST

START_TEST(follows_updates_revocation_and_deletion)
{
    char id[160], path[256], wl[160];
    cv_t_deploy(cl, tok_a, "slack", "{\"env\":{\"SLACK_BOT_TOKEN\":\"xoxb-first-value-000000000000\"}}", id,
                sizeof(id));
    char body[512];
    snprintf(body, sizeof(body), "{\"name\":\"mcp-slack\",\"role\":\"workload\",\"tenantId\":\"acme\",\"serverId\":\"%s\"}",
             id);
    struct cv_test_response r = cv_t_request(cl, "POST", "/api/tokens", tok_a, body);
    cv_t_expect_status(&r, 201, NULL);
    snprintf(wl, sizeof(wl), "%s", json_string_value(json_object_get(cv_t_data(&r), "token")));
    char wl_id[64];
    snprintf(wl_id, sizeof(wl_id), "%s", json_string_value(json_object_get(cv_t_data(&r), "id")));
    cv_test_response_free(&r);

    snprintf(path, sizeof(path), "/api/mcp/servers/%s/credentials", id);
    expect_call("PUT", path, tok_a, "{\"env\":{\"SLACK_BOT_TOKEN\":\"xoxb-second-value-11111111111\"}}", 200, NULL);
    env_path(id, path, sizeof(path));
    r = cv_t_request(cl, "GET", path, wl, NULL);
    cv_t_expect_status(&r, 200, NULL);
    ck_assert_int_eq(json_integer_value(json_object_get(cv_t_data(&r), "revision")), 2);
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(cv_t_data(&r), "env"), "SLACK_BOT_TOKEN")),
                     "xoxb-second-value-11111111111");
    cv_test_response_free(&r);

    /* deleted server: 404; a revoked token: 401 */
    snprintf(path, sizeof(path), "/api/mcp/servers/%s", id);
    expect_call("DELETE", path, tok_a, NULL, 200, NULL);
    env_path(id, path, sizeof(path));
    expect_call("GET", path, wl, NULL, 404, "not_found");
    snprintf(path, sizeof(path), "/api/tokens/%s", wl_id);
    expect_call("DELETE", path, tok_a, NULL, 200, NULL);
    env_path(id, path, sizeof(path));
    expect_call("GET", path, wl, NULL, 401, "unauthorized");
}
END_TEST

START_TEST(every_fetch_is_audited)
{
    char sql[1024];
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM audit_events WHERE action = 'credentials.read_full' AND target = '%s' AND "
             "outcome = 'success' AND role = 'workload' AND tenant_id = 'acme'",
             srv1);
    char *before = cv_t_psql(sql);
    char path[256];
    env_path(srv1, path, sizeof(path));
    expect_call("GET", path, wl1, NULL, 200, NULL);
    char *after = cv_t_psql(sql);
    ck_assert_int_eq(atoi(after), atoi(before) + 1);
    free(before);
    free(after);
    /* refusals are in the trail too: the tenant-admin's 403 and the token's 404 */
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM audit_events WHERE action = 'credentials.read_full' AND outcome = 'denied' AND "
             "target = '%s'",
             srv2);
    before = cv_t_psql(sql);
    env_path(srv2, path, sizeof(path));
    expect_call("GET", path, wl1, NULL, 404, NULL);
    expect_call("GET", path, tok_a, NULL, 403, NULL);
    after = cv_t_psql(sql);
    ck_assert_int_eq(atoi(after), atoi(before) + 2);
    free(before);
    free(after);
    /* and no value in the trail */
    char *dump = cv_test_sh_output("psql -X -q -t -A \"$CV_PG_SUPERUSER_URL\" -c \"SELECT audit_events::text FROM audit_events\"");
    ck_assert_ptr_nonnull(dump);
    ck_assert_ptr_null(strstr(dump, GH_TOKEN));
    free(dump);
}
END_TEST

/* ---- names the loader obeys ---- */

START_TEST(loader_names_refused_at_deploy_and_update)
{
    const char *names[] = {"LD_PRELOAD",     "LD_LIBRARY_PATH", "LD_AUDIT",   "LD_BIND_NOW",   "DYLD_INSERT_LIBRARIES",
                           "DYLD_LIBRARY_PATH", "GCONV_PATH",   "MALLOC_CHECK_", "MALLOC_ARENA_MAX", "GLIBC_TUNABLES"};
    char body[256], path[256];
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        snprintf(body, sizeof(body), "{\"env\":{\"GITHUB_TOKEN\":\"ghp_x\",\"%s\":\"/tmp/evil.so\"}}", names[i]);
        struct cv_test_response r = cv_t_request(cl, "POST", "/api/mcp/templates/github/deploy", tok_a, body);
        cv_t_expect_status(&r, 400, NULL);
        ck_assert_msg(strstr(r.body, names[i]) && strstr(r.body, "loaded"), "no reason naming %s: %s", names[i],
                      r.body);
        ck_assert_ptr_null(strstr(r.body, "/tmp/evil.so")); /* the key is named, the value never */
        cv_test_response_free(&r);
        /* replace and merge refuse it too */
        snprintf(path, sizeof(path), "/api/mcp/servers/%s/credentials", srv2);
        expect_call("PUT", path, tok_a, body, 400, NULL);
        snprintf(path, sizeof(path), "/api/mcp/servers/%s/credentials?merge=true", srv2);
        snprintf(body, sizeof(body), "{\"env\":{\"%s\":\"/tmp/evil.so\"}}", names[i]);
        expect_call("PUT", path, tok_a, body, 400, NULL);
    }
    /* names that merely contain the letters are ordinary credentials */
    char id[160];
    cv_t_deploy(cl, tok_a, "github",
                "{\"env\":{\"GITHUB_TOKEN\":\"ghp_y\",\"MCP_OLD_PRELOAD\":\"1\",\"MCP_LD_PRELOAD\":\"1\",\"MCP_MALLOC\":\"1\"}}",
                id, sizeof(id));
    /* the stored map of srv2 is unchanged by the refused writes */
    char wl[160];
    cv_t_token_mint(cl, tok_a, "mcp-slack-2", "workload", "acme", srv2, wl, sizeof(wl));
    env_path(srv2, path, sizeof(path));
    struct cv_test_response r = cv_t_request(cl, "GET", path, wl, NULL);
    cv_t_expect_status(&r, 200, NULL);
    json_t *env = json_object_get(cv_t_data(&r), "env");
    ck_assert_int_eq(json_object_size(env), 1);
    ck_assert_str_eq(json_string_value(json_object_get(env, "SLACK_BOT_TOKEN")), SLACK_TOKEN);
    cv_test_response_free(&r);
}
END_TEST

START_TEST(templates_accept_their_own_names_only)
{
    /* svc2's catalog has "native-tool": NATIVE_KEY required, NATIVE_* custom */
    char id[160], path[256], wl[160];
    cv_t_deploy(cl2, tok_a, "native-tool", "{\"env\":{\"NATIVE_KEY\":\"k-123\",\"NATIVE_REGION\":\"eu\"}}", id,
                sizeof(id));
    long long before = cv_t_psql_int("SELECT count(*) FROM mcp_credentials");
    /* a name neither declared nor matching the pattern, on either service */
    struct cv_test_response r = cv_t_request(cl2, "POST", "/api/mcp/templates/native-tool/deploy", tok_a,
                                             "{\"env\":{\"NATIVE_KEY\":\"k\",\"OTHER_KEY\":\"v\"}}");
    cv_t_expect_status(&r, 400, "env_name_not_in_template");
    ck_assert_ptr_nonnull(strstr(r.body, "OTHER_KEY"));
    cv_test_response_free(&r);
    r = cv_t_request(cl, "POST", "/api/mcp/templates/github/deploy", tok_a,
                     "{\"env\":{\"GITHUB_TOKEN\":\"g\",\"NATIVE_REGION\":\"eu\"}}");
    cv_t_expect_status(&r, 400, "env_name_not_in_template");
    cv_test_response_free(&r);
    /* the template's own pattern does not reach a forbidden name */
    r = cv_t_request(cl2, "POST", "/api/mcp/templates/native-tool/deploy", tok_a,
                     "{\"env\":{\"NATIVE_KEY\":\"k\",\"LD_LIBRARY_PATH\":\"/opt/vendor/lib\"}}");
    cv_t_expect_status(&r, 400, "env_name_forbidden");
    cv_test_response_free(&r);
    ck_assert_int_eq(cv_t_psql_int("SELECT count(*) FROM mcp_credentials"), before);

    /* an instance whose catalog lacks the template still delivers the map:
     * the allow-list is the writer's rule, the forbidden family everyone's */
    cv_t_token_mint(cl, tok_a, "mcp-native", "workload", "acme", id, wl, sizeof(wl));
    env_path(id, path, sizeof(path));
    r = cv_t_request(cl, "GET", path, wl, NULL);
    cv_t_expect_status(&r, 200, NULL);
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(cv_t_data(&r), "env"), "NATIVE_REGION")), "eu");
    cv_test_response_free(&r);
}
END_TEST

/* A deployed SHELLOPTS=xtrace with a PS4 command substitution runs that
 * command under `credvault run … -- bash`: refused at deploy and update,
 * whatever the template, naming the variable, storing nothing. */
#define PS4_ATTACK "{\"env\":{\"GITHUB_TOKEN\":\"ghp_z\",\"SHELLOPTS\":\"xtrace\",\"PS4\":\"$(touch /tmp/pwned)\"}}"

START_TEST(shellopts_ps4_refused_at_deploy)
{
    long long before = cv_t_psql_int("SELECT count(*) FROM mcp_credentials");
    struct cv_test_response r = cv_t_request(cl, "POST", "/api/mcp/templates/github/deploy", tok_a, PS4_ATTACK);
    cv_t_expect_status(&r, 400, "env_name_forbidden");
    ck_assert_msg(strstr(r.body, "SHELLOPTS") || strstr(r.body, "PS4"), "no name in %s", r.body);
    ck_assert_ptr_null(strstr(r.body, "touch"));
    cv_test_response_free(&r);
    /* the same through a custom-pattern template */
    r = cv_t_request(cl2, "POST", "/api/mcp/templates/native-tool/deploy", tok_a,
                     "{\"env\":{\"NATIVE_KEY\":\"k\",\"PS4\":\"$(id)\"}}");
    cv_t_expect_status(&r, 400, "env_name_forbidden");
    cv_test_response_free(&r);
    ck_assert_int_eq(cv_t_psql_int("SELECT count(*) FROM mcp_credentials"), before);
    /* update, replace and merge: refused, the stored map unchanged */
    char path[256];
    env_path(srv1, path, sizeof(path));
    r = cv_t_request(cl, "GET", path, wl1, NULL);
    cv_t_expect_status(&r, 200, NULL);
    json_int_t rev = json_integer_value(json_object_get(cv_t_data(&r), "revision"));
    cv_test_response_free(&r);
    snprintf(path, sizeof(path), "/api/mcp/servers/%s/credentials", srv1);
    expect_call("PUT", path, tok_a, PS4_ATTACK, 400, "env_name_forbidden");
    snprintf(path, sizeof(path), "/api/mcp/servers/%s/credentials?merge=true", srv1);
    expect_call("PUT", path, tok_a, "{\"env\":{\"SHELLOPTS\":\"xtrace\"}}", 400, "env_name_forbidden");
    env_path(srv1, path, sizeof(path));
    r = cv_t_request(cl, "GET", path, wl1, NULL);
    cv_t_expect_status(&r, 200, NULL);
    ck_assert_int_eq(json_integer_value(json_object_get(cv_t_data(&r), "revision")), rev);
    ck_assert_ptr_null(json_object_get(json_object_get(cv_t_data(&r), "env"), "SHELLOPTS"));
    cv_test_response_free(&r);
}
END_TEST

/* A row written before the rule: sealed with the tenant's real key through
 * the service's own sealing path (as deploy did when nothing refused these
 * names), inserted with the service's own store call. */
static void plant_record(const char *server_id, const char *env_text)
{
    struct cv_config cfg;
    ck_assert(cv_ok(cv_config_load(&cfg, NULL)));
    struct cv_app *app = NULL;
    ck_assert_msg(cv_ok(cv_app_open(&cfg, CV_APP_ALL, &app)), "%s", cv_error_message());
    json_t *env = json_loads(env_text, 0, NULL);
    ck_assert_ptr_nonnull(env);
    struct cv_server_row row;
    memset(&row, 0, sizeof(row));
    snprintf(row.tenant_id, sizeof(row.tenant_id), "acme");
    snprintf(row.server_id, sizeof(row.server_id), "%s", server_id);
    snprintf(row.template_id, sizeof(row.template_id), "github");
    snprintf(row.server_name, sizeof(row.server_name), "planted");
    snprintf(row.created_by, sizeof(row.created_by), "before-the-rule");
    snprintf(row.updated_by, sizeof(row.updated_by), "before-the-rule");
    ck_assert_msg(cv_ok(cv_seal_env(app, "acme", row.server_id, 1, env, &row.encrypted_env, &row.key_version)), "%s",
                  cv_error_message());
    row.revision = 1;
    json_t *names = json_array();
    const char *k;
    json_t *v;
    json_object_foreach(env, k, v) json_array_append_new(names, json_string(k));
    char *dumped = json_dumps(names, JSON_COMPACT);
    row.credential_names = strdup(dumped); /* the row frees with free() */
    cv_json_free(dumped);
    row.configured_integrations = strdup("[\"GitHub\"]");
    json_decref(names);
    json_decref(env);
    ck_assert_msg(cv_ok(cv_record_binding_make(app->hsm, &row)), "%s", cv_error_message());
    ck_assert_msg(cv_ok(cv_store_server_insert(app->store, &row, NULL)), "%s", cv_error_message());
    cv_server_row_free(&row);
    cv_app_close(app);
    cv_config_free(&cfg);
}

START_TEST(planted_shellopts_refused_at_delivery_and_by_run)
{
    const char *id = "github-1000000000001";
    char marker[512], envtext[1024];
    snprintf(marker, sizeof(marker), "%s/ps4-ran", getenv("CV_TEST_TMP"));
    snprintf(envtext, sizeof(envtext),
             "{\"GITHUB_TOKEN\":\"ghp_planted_value_4242\",\"SHELLOPTS\":\"xtrace\",\"PS4\":\"$(touch %s)\"}", marker);
    plant_record(id, envtext);
    char wl[160], path[256];
    cv_t_token_mint(cl, tok_a, "mcp-planted", "workload", "acme", id, wl, sizeof(wl));
    /* the service refuses to deliver it, naming the key and no value */
    env_path(id, path, sizeof(path));
    struct cv_test_response r = cv_t_request(cl, "GET", path, wl, NULL);
    cv_t_expect_status(&r, 409, "env_name_forbidden");
    ck_assert_ptr_null(strstr(r.body, "ghp_planted_value_4242"));
    ck_assert_ptr_null(strstr(r.body, "touch"));
    cv_test_response_free(&r);
    /* credvault run refuses before exec: its own status, the command never runs */
    char envs[512], args[2048];
    int st = 0;
    snprintf(envs, sizeof(envs), "CREDVAULT_TOKEN='%s'", wl);
    snprintf(args, sizeof(args), "--server %s --addr %s --cacert %s -- bash -c 'echo command-ran'", id, svc.base_url,
             svc.ca_file);
    char *out = run(envs, args, &st);
    ck_assert_msg(st == 65, "status %d: %s", st, out);
    ck_assert_ptr_null(strstr(out, "command-ran"));
    ck_assert_ptr_null(strstr(out, "ghp_planted_value_4242"));
    free(out);
    ck_assert_int_ne(access(marker, F_OK), 0);
    /* the tenant can still remove the names (null in a merge), and then it runs */
    snprintf(path, sizeof(path), "/api/mcp/servers/%s/credentials?merge=true", id);
    expect_call("PUT", path, tok_a, "{\"env\":{\"SHELLOPTS\":null,\"PS4\":null}}", 200, NULL);
    out = run(envs, args, &st);
    ck_assert_msg(st == 0 && strstr(out, "command-ran"), "status %d: %s", st, out);
    free(out);
    ck_assert_int_ne(access(marker, F_OK), 0);
}
END_TEST

/* ---- credvault run ---- */

/* A service that delivers whatever it is given (an older release, or one
 * an attacker controls): a child process that answers one plain-HTTP request
 * on 127.0.0.1 with `body` as a 200, then exits. Returns its port. */
static unsigned serve_once(const char *body, pid_t *pid)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t l = sizeof(a);
    ck_assert(fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 && listen(fd, 1) == 0 &&
              getsockname(fd, (struct sockaddr *)&a, &l) == 0);
    *pid = fork();
    ck_assert(*pid >= 0);
    if (*pid == 0) {
        alarm(60);
        int c = accept(fd, NULL, NULL);
        char req[8192];
        size_t n = 0;
        while (c >= 0 && n < sizeof(req) - 1) {
            ssize_t k = read(c, req + n, sizeof(req) - 1 - n);
            if (k <= 0) break;
            n += (size_t)k;
            req[n] = '\0';
            if (strstr(req, "\r\n\r\n")) break;
        }
        dprintf(c, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n%s",
                strlen(body), body);
        close(c);
        _exit(0);
    }
    close(fd);
    return ntohs(a.sin_port);
}

START_TEST(run_refuses_a_forbidden_name_whatever_the_service_sends)
{
    char marker[512], body[1024], envs[256], args[1024];
    snprintf(marker, sizeof(marker), "%s/ps4-ran-2", getenv("CV_TEST_TMP"));
    const char *names[] = {"SHELLOPTS", "PS4", "BASH_ENV", "LD_PRELOAD", "NODE_OPTIONS", "JAVA_TOOL_OPTIONS"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        snprintf(body, sizeof(body),
                 "{\"success\":true,\"data\":{\"serverId\":\"github-1000000000003\",\"revision\":1,"
                 "\"env\":{\"GITHUB_TOKEN\":\"ghp_stub_value_1\",\"%s\":\"$(touch %s)\"}}}",
                 names[i], marker);
        pid_t pid;
        unsigned port = serve_once(body, &pid);
        snprintf(envs, sizeof(envs), "CREDVAULT_TOKEN=cv_stub_token_0123456789");
        snprintf(args, sizeof(args),
                 "--server github-1000000000003 --addr http://127.0.0.1:%u -- bash -c 'echo command-ran'", port);
        int st = 0;
        char *out = run(envs, args, &st);
        ck_assert_msg(st == 65, "%s: status %d: %s", names[i], st, out);
        ck_assert_msg(strstr(out, names[i]) != NULL, "the refusal does not name %s: %s", names[i], out);
        ck_assert_ptr_null(strstr(out, "command-ran"));
        ck_assert_ptr_null(strstr(out, "ghp_stub_value_1"));
        ck_assert_ptr_null(strstr(out, "touch"));
        free(out);
        int ws = 0;
        ck_assert_int_eq(waitpid(pid, &ws, 0), pid);
        ck_assert_int_ne(access(marker, F_OK), 0);
    }
}
END_TEST

START_TEST(run_passes_values_and_drops_token_variables)
{
    char tf[512], envs[2048], args[2048];
    token_file("wl1.token", wl1, tf, sizeof(tf));
    /* both variables set (the file wins), a stale GITHUB_TOKEN the map replaces */
    snprintf(envs, sizeof(envs), "CREDVAULT_TOKEN_FILE='%s' CREDVAULT_TOKEN='%s' GITHUB_TOKEN=stale KEEP_ME=kept", tf,
             tok_a);
    snprintf(args, sizeof(args),
             "--server %s --addr %s --cacert %s -- sh -c 'printf \"gh=%%s|odd=%%s|keep=%%s\\n\" \"$GITHUB_TOKEN\" "
             "\"$MCP_ODD_VALUE\" \"$KEEP_ME\"; env | grep \"^CREDVAULT_TOKEN\" || echo no-token-variables'",
             srv1, svc.base_url, svc.ca_file);
    int st;
    char *out = run(envs, args, &st);
    ck_assert_msg(st == 0, "status %d: %s", st, out);
    ck_assert_msg(strstr(out, "gh=" GH_TOKEN "|odd=" ODD_VALUE_RAW "|keep=kept\n") != NULL, "child saw: %s", out);
    ck_assert_msg(strstr(out, "no-token-variables") != NULL, "token variables reached the child: %s", out);
    ck_assert_ptr_null(strstr(out, wl1));
    ck_assert_ptr_null(strstr(out, "stale"));
    free(out);

    /* CREDVAULT_TOKEN alone, and CREDVAULT_ADDR / CREDVAULT_CACERT instead of flags */
    snprintf(envs, sizeof(envs), "CREDVAULT_TOKEN='%s' CREDVAULT_ADDR='%s/' CREDVAULT_CACERT='%s'", wl1, svc.base_url,
             svc.ca_file);
    snprintf(args, sizeof(args),
             "--server %s sh -c 'printf \"%%s\\n\" \"$GITHUB_ORG\"; env | grep -c \"^CREDVAULT_TOKEN\"'", srv1);
    out = run(envs, args, &st);
    ck_assert_int_eq(st, 1); /* grep -c found nothing: exit 1, passed through */
    ck_assert_msg(strstr(out, "acme\n0\n") != NULL, "child saw: %s", out);
    free(out);
}
END_TEST

START_TEST(run_execs_and_passes_the_status_through)
{
    char tf[512], envs[1024], args[2048];
    token_file("wl1.token", wl1, tf, sizeof(tf));
    snprintf(envs, sizeof(envs), "CREDVAULT_TOKEN_FILE='%s'", tf);
    snprintf(args, sizeof(args), "--server %s --addr %s --cacert %s -- sh -c 'exit 42'", srv1, svc.base_url, svc.ca_file);
    int st;
    char *out = run(envs, args, &st);
    ck_assert_int_eq(st, 42);
    ck_assert_str_eq(out, ""); /* credvault run itself prints nothing on success */
    free(out);

    /* the command holds the credentials: it inherits a zero core-file limit */
    snprintf(args, sizeof(args), "--server %s --addr %s --cacert %s -- sh -c 'ulimit -c; ulimit -H -c'", srv1,
             svc.base_url, svc.ca_file);
    out = run(envs, args, &st);
    ck_assert_int_eq(st, 0);
    ck_assert_str_eq(out, "0\n0\n");
    free(out);

    /* exec, not fork: the command has credvault run's pid */
    char cmd[4096];
    snprintf(cmd, sizeof(cmd),
             "cd \"$CV_TEST_TMP/runcwd\" && CREDVAULT_TOKEN_FILE='%s' sh -c 'echo \"$$\"; exec \"$CREDVAULT_BIN\" run "
             "--server %s --addr %s --cacert %s -- sh -c \"echo \\$\\$\"'",
             tf, srv1, svc.base_url, svc.ca_file);
    out = cv_test_sh_output(cmd);
    ck_assert_ptr_nonnull(out);
    long a = 0, b = 0;
    ck_assert_int_eq(sscanf(out, "%ld\n%ld", &a, &b), 2);
    ck_assert_msg(a == b && a > 0, "pids differ: %s", out);
    free(out);

    /* a signal reaches the command itself */
    snprintf(args, sizeof(args), "--server %s --addr %s --cacert %s -- sh -c 'kill -TERM $$'", srv1, svc.base_url,
             svc.ca_file);
    out = run(envs, args, &st);
    ck_assert_int_eq(st, 128 + 15);
    free(out);
}
END_TEST

START_TEST(run_exit_codes)
{
    char tf[512], bad[512], envs[1024], args[2048];
    token_file("wl1.token", wl1, tf, sizeof(tf));
    token_file("bogus.token", "cvt_0000000000000000000000000000000000000000000000000000000000000000", bad,
               sizeof(bad));
    int st;
    char *out;
    snprintf(envs, sizeof(envs), "CREDVAULT_TOKEN_FILE='%s'", tf);

    /* usage: 2 */
    out = run(envs, "-- true", &st);
    ck_assert_int_eq(st, 2);
    free(out);
    snprintf(args, sizeof(args), "--server %s --addr %s --cacert %s", srv1, svc.base_url, svc.ca_file);
    out = run(envs, args, &st);
    ck_assert_int_eq(st, 2);
    free(out);
    snprintf(args, sizeof(args), "--server %s --addr http://10.1.2.3:8443 -- true", srv1);
    out = run(envs, args, &st);
    ck_assert_int_eq(st, 2);
    ck_assert_ptr_nonnull(strstr(out, "https://"));
    free(out);
    /* a name that merely starts like a loopback address is not one */
    snprintf(args, sizeof(args), "--server %s --addr http://127.0.0.1.nip.example:8443 -- true", srv1);
    out = run(envs, args, &st);
    ck_assert_int_eq(st, 2);
    free(out);
    snprintf(args, sizeof(args), "--server %s --addr %s --cacert %s -- true", srv1, svc.base_url, svc.ca_file);
    out = run("", args, &st); /* no token configured */
    ck_assert_int_eq(st, 2);
    ck_assert_ptr_nonnull(strstr(out, "CREDVAULT_TOKEN_FILE"));
    free(out);
    out = run("CREDVAULT_TOKEN_FILE=/nonexistent/token", args, &st);
    ck_assert_int_eq(st, 2);
    free(out);

    /* command not found: 127, and nothing is fetched for it (checked first) */
    snprintf(args, sizeof(args), "--server %s --addr https://127.0.0.1:1 -- no-such-command-xyz", srv1);
    out = run(envs, args, &st);
    ck_assert_int_eq(st, 127);
    ck_assert_ptr_nonnull(strstr(out, "not found"));
    free(out);
    /* found but not executable: 126 */
    ck_assert_int_eq(cv_test_sh("printf 'echo hi\\n' > \"$CV_TEST_TMP/not-exec.sh\" && chmod 0644 \"$CV_TEST_TMP/not-exec.sh\""), 0);
    snprintf(args, sizeof(args), "--server %s --addr %s --cacert %s -- \"$CV_TEST_TMP/not-exec.sh\"", srv1,
             svc.base_url, svc.ca_file);
    out = run(envs, args, &st);
    ck_assert_int_eq(st, 126);
    free(out);

    /* service unreachable: 69 (a closed port; an untrusted certificate) */
    snprintf(args, sizeof(args), "--server %s --addr https://127.0.0.1:1 --cacert %s -- true", srv1, svc.ca_file);
    out = run(envs, args, &st);
    ck_assert_int_eq(st, 69);
    ck_assert_ptr_nonnull(strstr(out, "cannot reach"));
    free(out);
    snprintf(args, sizeof(args), "--server %s --addr %s -- true", srv1, svc.base_url);
    out = run(envs, args, &st);
    ck_assert_int_eq(st, 69);
    ck_assert_ptr_nonnull(strstr(out, "--cacert"));
    free(out);

    /* token refused: 77 (unknown token, a token of another role, a malformed one) */
    snprintf(args, sizeof(args), "--server %s --addr %s --cacert %s -- true", srv1, svc.base_url, svc.ca_file);
    snprintf(envs, sizeof(envs), "CREDVAULT_TOKEN_FILE='%s'", bad);
    out = run(envs, args, &st);
    ck_assert_int_eq(st, 77);
    free(out);
    snprintf(envs, sizeof(envs), "CREDVAULT_TOKEN='%s'", tok_a_auditor);
    out = run(envs, args, &st);
    ck_assert_int_eq(st, 77);
    free(out);
    out = run("CREDVAULT_TOKEN='not a token'", args, &st);
    ck_assert_int_eq(st, 77);
    free(out);

    /* server unknown: 68 (another server of the tenant, one that does not exist) */
    snprintf(envs, sizeof(envs), "CREDVAULT_TOKEN_FILE='%s'", tf);
    snprintf(args, sizeof(args), "--server %s --addr %s --cacert %s -- true", srv2, svc.base_url, svc.ca_file);
    out = run(envs, args, &st);
    ck_assert_int_eq(st, 68);
    ck_assert_ptr_null(strstr(out, SLACK_TOKEN));
    free(out);
    snprintf(args, sizeof(args), "--server 'no such/server' --addr %s --cacert %s -- true", svc.base_url, svc.ca_file);
    out = run(envs, args, &st);
    ck_assert_int_eq(st, 68);
    free(out);
}
END_TEST

START_TEST(run_writes_nothing_and_prints_no_value)
{
    char tf[512], envs[1024], args[2048];
    token_file("wl1.token", wl1, tf, sizeof(tf));
    ck_assert_int_eq(cv_test_sh("rm -rf \"$CV_TEST_TMP/empty\" && mkdir -p \"$CV_TEST_TMP/empty/home\" "
                                "\"$CV_TEST_TMP/empty/tmp\""),
                     0);
    snprintf(envs, sizeof(envs), "CREDVAULT_TOKEN_FILE='%s' HOME=\"$CV_TEST_TMP/empty/home\" TMPDIR=\"$CV_TEST_TMP/empty/tmp\"",
             tf);
    snprintf(args, sizeof(args), "--server %s --addr %s --cacert %s -- true", srv1, svc.base_url, svc.ca_file);
    int st;
    char *out = run(envs, args, &st);
    ck_assert_int_eq(st, 0);
    free(out);
    out = cv_test_sh_output("find \"$CV_TEST_TMP/empty\" \"$CV_TEST_TMP/runcwd\" -mindepth 1 -not -type d");
    ck_assert_ptr_nonnull(out);
    ck_assert_msg(out[0] == '\0', "files appeared: %s", out);
    free(out);

    /* a failure after the fetch (the command vanished between the check
     * and exec is hard to stage; a reserved name in the map is not): the
     * warning names the key, never the value; deploy no longer accepts the
     * name, so the row is one written before that rule */
    const char *id = "github-1000000000002";
    char wl[160];
    plant_record(id, "{\"GITHUB_TOKEN\":\"ghp_reserved_case_value_999\",\"CREDVAULT_TOKEN\":\"planted-value-777\"}");
    cv_t_token_mint(cl, tok_a, "mcp-reserved", "workload", "acme", id, wl, sizeof(wl));
    snprintf(envs, sizeof(envs), "CREDVAULT_TOKEN='%s'", wl);
    snprintf(args, sizeof(args),
             "--server %s --addr %s --cacert %s -- sh -c 'echo \"tok=${CREDVAULT_TOKEN:-unset}\"'", id, svc.base_url,
             svc.ca_file);
    out = run(envs, args, &st);
    ck_assert_int_eq(st, 0);
    ck_assert_msg(strstr(out, "tok=unset") != NULL, "child saw: %s", out);
    ck_assert_ptr_nonnull(strstr(out, "CREDVAULT_TOKEN not passed"));
    ck_assert_ptr_null(strstr(out, "planted-value-777"));
    ck_assert_ptr_null(strstr(out, "ghp_reserved_case_value_999"));
    free(out);
}
END_TEST

static Suite *workload_suite(void)
{
    static const struct cv_t_suite_spec spec = {.name = "workload", .timeout_s = 180, .once = fixture};
    return cv_t_suite_new(&spec, CV_T_TESTS(workload_reads_its_own_server, other_roles_get_403, other_servers_get_404,
                                            follows_updates_revocation_and_deletion, every_fetch_is_audited,
                                            loader_names_refused_at_deploy_and_update, templates_accept_their_own_names_only,
                                            shellopts_ps4_refused_at_deploy,
                                            planted_shellopts_refused_at_delivery_and_by_run,
                                            run_refuses_a_forbidden_name_whatever_the_service_sends,
                                            run_passes_values_and_drops_token_variables,
                                            run_execs_and_passes_the_status_through, run_exit_codes,
                                            run_writes_nothing_and_prints_no_value));
}

/* The built-in catalog plus "native-tool": NATIVE_KEY, and NATIVE_* as its custom pattern. */
static int write_catalog(char *path, size_t n)
{
    char src[1024];
    snprintf(src, sizeof(src), "%s/data/mcp-templates.json", getenv("CV_SOURCE_DIR"));
    json_error_t err;
    json_t *doc = json_load_file(src, 0, &err);
    if (!doc) return -1;
    json_t *vars = json_object_get(doc, "variables");
    json_object_set_new(vars, "NATIVE_KEY", json_pack("{s:s, s:s}", "label", "Native key", "description", "vendor key"));
    json_array_append_new(json_object_get(doc, "templates"),
                          json_pack("{s:s, s:s, s:s, s:s, s:s, s:[], s:[s], s:[], s:[s], s:[], s:[s], s:[s]}", "id",
                                    "native-tool", "name", "Native Tool", "description",
                                    "a tool that loads a vendor library", "transport", "stdio", "command",
                                    "native-tool", "args", "capabilities", "tools", "integrations", "requiredEnv",
                                    "NATIVE_KEY", "optionalEnv", "evidenceTypes", "Vendor Evidence", "customEnv",
                                    "NATIVE_*"));
    snprintf(path, n, "%s/catalog.json", getenv("CV_TEST_TMP"));
    int rc = json_dump_file(doc, path, JSON_INDENT(1));
    json_decref(doc);
    return rc;
}

int main(void)
{
    cv_json_alloc_install(); /* first: every entry point keeps JSON in secret memory */
    Suite *suite = workload_suite();
    if (cv_test_service_start(&svc, NULL) != 0) return 1;
    static char catalog_env[1100];
    char catalog[1024];
    if (write_catalog(catalog, sizeof(catalog)) != 0) return 1;
    snprintf(catalog_env, sizeof(catalog_env), "CREDVAULT_TEMPLATES_FILE=%s", catalog);
    const char *extra[] = {catalog_env, NULL};
    if (cv_test_service_start(&svc2, extra) != 0) return 1;
    cl = cv_test_client_new(svc.base_url, svc.ca_file);
    cl2 = cv_test_client_new(svc2.base_url, svc2.ca_file);
    if (cv_test_sh("mkdir -p \"$CV_TEST_TMP/runcwd\"") != 0) return 1;

    if (cv_test_cli("tenant create acme --name 'Acme Corp' >/dev/null", NULL, 0) != 0 ||
        cv_test_cli("tenant create beta --name Beta >/dev/null", NULL, 0) != 0 ||
        cv_test_cli("token create --name alice@acme.example --role tenant-admin --tenant acme", tok_a, sizeof(tok_a)) ||
        cv_test_cli("token create --name audit@acme.example --role auditor --tenant acme", tok_a_auditor,
                    sizeof(tok_a_auditor)) ||
        cv_test_cli("token create --name bob@beta.example --role tenant-admin --tenant beta", tok_b, sizeof(tok_b)))
        return 1;

    int failed = cv_t_suite_run(suite, CK_NOFORK);
    cv_test_client_free(cl);
    cv_test_client_free(cl2);
    struct cv_test_service *all[] = {&svc, &svc2};
    for (size_t i = 0; i < 2; i++) {
        int st = cv_test_service_stop(all[i]);
        if (st != 0) {
            fprintf(stderr, "credvault serve exited with %d (log: %s)\n", st, all[i]->log_file);
            char cmd[1200];
            snprintf(cmd, sizeof(cmd), "tail -n 60 '%s' >&2", all[i]->log_file);
            cv_test_sh(cmd);
            failed++;
        }
    }
    return failed ? 1 : 0;
}
