/* OIDC JWTs beside credvault's own tokens, against the real `credvault
 * serve`: tokens are minted by an independent issuer (tests/fixtures/
 * oidc-issuer: Debian's PyJWT and cryptography). A JWT of the test issuer
 * deploys, reads masked and validates in its own tenant and is refused
 * elsewhere; expired, not-yet-valid, wrong-audience, wrong-issuer, unsigned,
 * HS256-with-the-public-key and unmapped tokens are refused; an unknown kid
 * reloads the JWKS (file and URL), at most once per refresh interval. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "credvault/json_alloc.h"
#include "cv_test_http.h"
#include "cv_test_suite.h"
#include "cv_test_service.h"

#define ISSUER "https://sso.acme.test/realms/grc"
#define AUDIENCE "credvault"
#define SUB "f3b1c2d4-5e6f-4a0b-8c9d-000000000001"

static struct cv_test_service svc, svc_url;
static struct cv_test_client *cl, *cl_url;
static char tok_a[160], tok_b[160]; /* credvault's own tenant-admin tokens of acme and beta */
static char issuer_dir[512];
static char acme_server[160], beta_server[160];
static pid_t jwks_server_pid;
static unsigned jwks_port;

/* ---- helpers ---- */

static struct cv_test_response call_on(struct cv_test_client *c, const char *method, const char *path,
                                       const char *token, const char *body)
{
    struct cv_test_response r;
    memset(&r, 0, sizeof(r));
    ck_assert_msg(cv_test_request(c, method, path, token, body, NULL, &r) == 0, "transport: %s", r.error);
    return r;
}

static struct cv_test_response call(const char *method, const char *path, const char *token, const char *body)
{
    return call_on(cl, method, path, token, body);
}

static json_t *data_of(struct cv_test_response *r) { return json_object_get(r->json, "data"); }

static long status_of(const char *method, const char *path, const char *token, const char *body)
{
    struct cv_test_response r = call(method, path, token, body);
    long st = r.status;
    if (st == 401) /* one answer for every refusal */
        ck_assert_str_eq(json_string_value(json_object_get(json_object_get(r.json, "error"), "message")),
                         "missing or invalid bearer token");
    cv_test_response_free(&r);
    return st;
}

/* Runs the issuer with a mode and arguments; returns the token (malloc'ed). */
static char *issue(const char *mode, const char *kid, const char *claims)
{
    char cmd[4096];
    if (kid)
        snprintf(cmd, sizeof(cmd), "\"$CV_SOURCE_DIR/tests/fixtures/oidc-issuer\" %s '%s' %s '%s'", mode, issuer_dir,
                 kid, claims);
    else
        snprintf(cmd, sizeof(cmd), "\"$CV_SOURCE_DIR/tests/fixtures/oidc-issuer\" %s '%s'", mode, claims);
    char *out = cv_test_sh_output(cmd);
    ck_assert_msg(out && strlen(out) > 20, "the test issuer failed: %s", cmd);
    out[strcspn(out, "\n")] = '\0';
    return out;
}

/* Claims in Keycloak's shape: roles under realm_access.roles, the tenant under grc.tenant. */
static char *claims(char *buf, size_t n, const char *iss, const char *aud, const char *tenant, const char *roles,
                    const char *exp, const char *extra)
{
    snprintf(buf, n,
             "{\"iss\":\"%s\",\"aud\":%s,\"sub\":\"" SUB "\",\"preferred_username\":\"alice\","
             "\"grc\":{\"tenant\":\"%s\"},\"realm_access\":{\"roles\":%s},\"exp\":\"%s\",\"iat\":\"-5\"%s}",
             iss, aud, tenant, roles, exp, extra ? extra : "");
    return buf;
}

static char *good(const char *kid, const char *tenant, const char *roles)
{
    char c[2048];
    return issue("mint", kid, claims(c, sizeof(c), ISSUER, "\"" AUDIENCE "\"", tenant, roles, "+600", NULL));
}

/* ---- tests ---- */

START_TEST(jwt_works_in_its_own_tenant_only)
{
    char *admin = good("rsa-1", "acme", "[\"offline_access\",\"grc-admin\"]");
    /* deploy: createdBy is the user with the issuer, never a body's userId */
    struct cv_test_response r =
        call("POST", "/api/mcp/templates/grc-ai-assistant/deploy", admin,
             "{\"env\":{\"OPENAI_API_KEY\":\"sk-proj-oidc-0123456789abcdef\"},\"userId\":\"mallory@evil.example\"}");
    ck_assert_msg(r.status == 201, "%ld %s", r.status, r.body);
    ck_assert_str_eq(json_string_value(json_object_get(data_of(&r), "createdBy")), "alice (" ISSUER ")");
    char id[160], path[300];
    snprintf(id, sizeof(id), "%s", json_string_value(json_object_get(data_of(&r), "id")));
    cv_test_response_free(&r);
    /* masked read and validate */
    snprintf(path, sizeof(path), "/api/mcp/servers/%s/credentials", id);
    r = call("GET", path, admin, NULL);
    ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body);
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(data_of(&r), "credentials"), "OPENAI_API_KEY")),
                     "sk-p••••cdef");
    cv_test_response_free(&r);
    snprintf(path, sizeof(path), "/api/mcp/servers/%s/credentials/validate", id);
    r = call("POST", path, admin, "{\"requiredKeys\":[\"OPENAI_API_KEY\",\"ANTHROPIC_API_KEY\"]}");
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(json_string_value(json_array_get(json_object_get(data_of(&r), "missing"), 0)), "ANTHROPIC_API_KEY");
    cv_test_response_free(&r);
    /* the same server is acme's: credvault's own acme token sees it */
    snprintf(path, sizeof(path), "/api/mcp/servers/%s", id);
    ck_assert_int_eq(status_of("GET", path, tok_a, NULL), 200);
    /* beta's server is not this user's: 404, like a missing one */
    snprintf(path, sizeof(path), "/api/mcp/servers/%s/credentials", beta_server);
    ck_assert_int_eq(status_of("GET", path, admin, NULL), 404);
    /* a tenant claim naming another tenant acts there, and only there */
    char *beta_admin = good("rsa-1", "beta", "[\"grc-admin\"]");
    snprintf(path, sizeof(path), "/api/mcp/servers/%s/credentials", acme_server);
    ck_assert_int_eq(status_of("GET", path, beta_admin, NULL), 404);
    snprintf(path, sizeof(path), "/api/mcp/servers/%s/credentials/validate", id);
    ck_assert_int_eq(status_of("POST", path, beta_admin, "{\"requiredKeys\":[]}"), 404);
    snprintf(path, sizeof(path), "/api/mcp/servers/%s", id);
    ck_assert_int_eq(status_of("DELETE", path, beta_admin, NULL), 404);
    snprintf(path, sizeof(path), "/api/mcp/servers/%s/credentials", beta_server);
    ck_assert_int_eq(status_of("GET", path, beta_admin, NULL), 200);
    /* a tenant-admin JWT is no platform admin */
    ck_assert_int_eq(status_of("GET", "/api/tenants", admin, NULL), 403);
    /* the audit trail names the user with the issuer */
    r = call("GET", "/api/audit?action=credentials.deploy", admin, NULL);
    ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body);
    ck_assert_ptr_nonnull(strstr(r.body, "\"actor\":\"alice (" ISSUER ")\""));
    cv_test_response_free(&r);
    free(admin);
    free(beta_admin);
}
END_TEST

START_TEST(roles_come_from_the_mapping_only)
{
    char c[2048];
    /* ES256, and a role claim that is one string rather than an array */
    char *auditor = issue("mint", "ec-1", claims(c, sizeof(c), ISSUER, "\"" AUDIENCE "\"", "acme", "\"grc-auditor\"",
                                                 "+600", NULL));
    char path[300];
    snprintf(path, sizeof(path), "/api/mcp/servers/%s/credentials", acme_server);
    ck_assert_int_eq(status_of("GET", path, auditor, NULL), 200);
    ck_assert_int_eq(status_of("POST", "/api/mcp/templates/slack/deploy", auditor,
                               "{\"env\":{\"SLACK_BOT_TOKEN\":\"xoxb-auditor-cannot\"}}"),
                     403);
    free(auditor);
    /* both mapped: the stronger one */
    char *both = good("rsa-1", "acme", "[\"grc-auditor\",\"grc-admin\"]");
    ck_assert_int_eq(status_of("POST", "/api/mcp/templates/slack/deploy", both,
                               "{\"env\":{\"SLACK_BOT_TOKEN\":\"xoxb-both-roles-0123\"}}"),
                     201);
    free(both);
    /* no mapped role: refused, whatever else the token holds */
    const char *unmapped[] = {"[]", "[\"offline_access\"]", "[\"admin\"]", "[\"tenant-admin\"]", "\"\"", "{}", "7"};
    for (size_t i = 0; i < sizeof(unmapped) / sizeof(unmapped[0]); i++) {
        char *t = good("rsa-1", "acme", unmapped[i]);
        ck_assert_msg(status_of("GET", "/api/mcp/servers", t, NULL) == 401, "roles %s accepted", unmapped[i]);
        free(t);
    }
    /* platform admin only through its explicit mapping; no tenant needed */
    char *platform = issue("mint", "rsa-1",
                           claims(c, sizeof(c), ISSUER, "\"" AUDIENCE "\"", "", "[\"grc-platform\"]", "+600", NULL));
    ck_assert_int_eq(status_of("GET", "/api/tenants", platform, NULL), 200);
    free(platform);
    /* a tenant role without a (well-formed) tenant claim */
    const char *tenants[] = {"", "Acme", "../beta", "acme beta"};
    for (size_t i = 0; i < sizeof(tenants) / sizeof(tenants[0]); i++) {
        char *t = good("rsa-1", tenants[i], "[\"grc-admin\"]");
        ck_assert_msg(status_of("GET", "/api/mcp/servers", t, NULL) == 401, "tenant '%s' accepted", tenants[i]);
        free(t);
    }
}
END_TEST

START_TEST(hostile_and_stale_tokens_refused)
{
    char c[2048];
    struct {
        const char *what, *iss, *aud, *exp, *extra;
        long want;
    } cases[] = {
        {"valid", ISSUER, "\"" AUDIENCE "\"", "+600", NULL, 200},
        {"audience in an array", ISSUER, "[\"account\",\"" AUDIENCE "\"]", "+600", NULL, 200},
        {"expired an hour ago", ISSUER, "\"" AUDIENCE "\"", "-3600", NULL, 401},
        {"expired within the leeway", ISSUER, "\"" AUDIENCE "\"", "-10", NULL, 200},
        {"expired past the leeway", ISSUER, "\"" AUDIENCE "\"", "-90", NULL, 401},
        {"not valid yet", ISSUER, "\"" AUDIENCE "\"", "+600", ",\"nbf\":\"+600\"", 401},
        {"issued in the future", ISSUER, "\"" AUDIENCE "\"", "+900", ",\"iat\":\"+600\"", 401},
        {"wrong audience", ISSUER, "\"account\"", "+600", NULL, 401},
        {"no audience", ISSUER, "null", "+600", NULL, 401},
        {"wrong issuer", "https://sso.evil.test/realms/grc", "\"" AUDIENCE "\"", "+600", NULL, 401},
        {"issuer with a trailing slash", ISSUER "/", "\"" AUDIENCE "\"", "+600", NULL, 401},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        /* an extra "iat" comes after the default one, and Python's json keeps the later */
        char *t = issue("mint", "rsa-1",
                        claims(c, sizeof(c), cases[i].iss, cases[i].aud, "acme", "[\"grc-admin\"]", cases[i].exp,
                               cases[i].extra));
        long st = status_of("GET", "/api/mcp/servers", t, NULL);
        ck_assert_msg(st == cases[i].want, "%s: %ld", cases[i].what, st);
        free(t);
    }
    /* no exp at all */
    char *t = issue("mint", "rsa-1",
                    "{\"iss\":\"" ISSUER "\",\"aud\":\"" AUDIENCE "\",\"sub\":\"" SUB "\",\"grc\":{\"tenant\":\"acme\"},"
                    "\"realm_access\":{\"roles\":[\"grc-admin\"]}}");
    ck_assert_int_eq(status_of("GET", "/api/mcp/servers", t, NULL), 401);
    free(t);
    claims(c, sizeof(c), ISSUER, "\"" AUDIENCE "\"", "acme", "[\"grc-admin\"]", "+600", NULL);
    /* alg "none" */
    t = issue("none", NULL, c);
    ck_assert_int_eq(status_of("GET", "/api/mcp/servers", t, NULL), 401);
    free(t);
    /* HS256 keyed with the RSA public key that the JWKS publishes */
    t = issue("hs256-pubkey", "rsa-1", c);
    ck_assert_int_eq(status_of("GET", "/api/mcp/servers", t, NULL), 401);
    free(t);
    /* a valid signature with one byte of the payload changed */
    t = issue("mint", "rsa-1", c);
    char *dot = strchr(t, '.');
    dot[5] = dot[5] == 'A' ? 'B' : 'A';
    ck_assert_int_eq(status_of("GET", "/api/mcp/servers", t, NULL), 401);
    free(t);
    /* not a JWT at all, and a credvault-looking token that is unknown */
    ck_assert_int_eq(status_of("GET", "/api/mcp/servers", "definitely.not.ajwt", NULL), 401);
    ck_assert_int_eq(status_of("GET", "/api/mcp/servers", "eyJhbGciOiJSUzI1NiJ9", NULL), 401);
    /* nothing of a refused token reaches the log */
    ck_assert(!cv_test_service_log_contains(&svc, "eyJ"));
    ck_assert(cv_test_service_log_contains(&svc, "oidc_token_refused"));
}
END_TEST

START_TEST(unknown_kid_reloads_the_jwks_file)
{
    char *rotated = good("rsa-2", "acme", "[\"grc-admin\"]");
    /* rsa-2 is not published yet: refused (and the refusal itself reloaded the file) */
    ck_assert_int_eq(status_of("GET", "/api/mcp/servers", rotated, NULL), 401);
    char cmd[4096];
    snprintf(cmd, sizeof(cmd), "cp '%s/jwks-2.json' '%s/jwks.json.new' && mv '%s/jwks.json.new' '%s/jwks.json'",
             issuer_dir, issuer_dir, issuer_dir, issuer_dir);
    ck_assert_int_eq(cv_test_sh(cmd), 0);
    /* within CREDVAULT_OIDC_JWKS_REFRESH_S of the last reload: not reloaded again */
    ck_assert_int_eq(status_of("GET", "/api/mcp/servers", rotated, NULL), 401);
    sleep(3);
    ck_assert_int_eq(status_of("GET", "/api/mcp/servers", rotated, NULL), 200);
    /* the keys of before still verify */
    char *old = good("rsa-1", "acme", "[\"grc-admin\"]");
    ck_assert_int_eq(status_of("GET", "/api/mcp/servers", old, NULL), 200);
    free(old);
    free(rotated);
}
END_TEST

static int jwks_fetches(void)
{
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "grep -c 'GET /jwks.json' '%s/http.log' || true", issuer_dir);
    char *out = cv_test_sh_output(cmd);
    int n = out ? atoi(out) : -1;
    free(out);
    return n;
}

START_TEST(jwks_url_fetched_on_unknown_kid_only)
{
    ck_assert_int_eq(jwks_fetches(), 1); /* at start */
    char *t = good("rsa-1", "acme", "[\"grc-admin\"]");
    for (int i = 0; i < 5; i++) {
        struct cv_test_response r = call_on(cl_url, "GET", "/api/mcp/servers", t, NULL);
        ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body);
        cv_test_response_free(&r);
    }
    ck_assert_int_eq(jwks_fetches(), 1); /* never on every request */
    free(t);
    /* unknown kids: one fetch per refresh interval, however many arrive */
    char *unknown = good("rsa-2", "acme", "[\"grc-admin\"]");
    for (int i = 0; i < 5; i++) {
        struct cv_test_response r = call_on(cl_url, "GET", "/api/mcp/servers", unknown, NULL);
        ck_assert_int_eq(r.status, 401); /* the served JWKS lacks rsa-2 */
        cv_test_response_free(&r);
    }
    ck_assert_int_eq(jwks_fetches(), 2);
    free(unknown);
}
END_TEST

static Suite *oidc_suite(void)
{
    static const struct cv_t_suite_spec spec = {.name = "oidc", .timeout_s = 120};
    return cv_t_suite_new(&spec, CV_T_TESTS(jwt_works_in_its_own_tenant_only, roles_come_from_the_mapping_only,
                                            hostile_and_stale_tokens_refused, unknown_kid_reloads_the_jwks_file,
                                            jwks_url_fetched_on_unknown_kid_only));
}

static int deploy_as(const char *token, char *id, size_t n)
{
    struct cv_test_response r;
    memset(&r, 0, sizeof(r));
    if (cv_test_request(cl, "POST", "/api/mcp/templates/github/deploy", token,
                        "{\"env\":{\"GITHUB_TOKEN\":\"ghp_oidc_fixture_0123456789abcdefghij\"}}", NULL, &r) != 0 ||
        r.status != 201) {
        fprintf(stderr, "deploy failed: %ld %s\n", r.status, r.body);
        cv_test_response_free(&r);
        return -1;
    }
    snprintf(id, n, "%s", json_string_value(json_object_get(json_object_get(r.json, "data"), "id")));
    cv_test_response_free(&r);
    return 0;
}

/* A static HTTP server on loopback for the JWKS URL, its request log in http.log. */
static int start_jwks_server(void)
{
    char cmd[1500];
    snprintf(cmd, sizeof(cmd),
             "cd '%s' && mkdir -p web && cp jwks-1.json web/jwks.json && "
             "port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind((\"127.0.0.1\",0)); "
             "print(s.getsockname()[1])') && "
             "(setsid /usr/bin/python3 -u -m http.server --bind 127.0.0.1 --directory web $port "
             "> http.log 2>&1 & echo $! > http.pid) && echo $port",
             issuer_dir);
    char *out = cv_test_sh_output(cmd);
    if (!out) return -1;
    jwks_port = (unsigned)atoi(out);
    free(out);
    snprintf(cmd, sizeof(cmd), "cat '%s/http.pid'", issuer_dir);
    out = cv_test_sh_output(cmd);
    jwks_server_pid = out ? (pid_t)atoi(out) : 0;
    free(out);
    /* until it answers */
    snprintf(cmd, sizeof(cmd),
             "for i in $(seq 50); do curl -sf http://127.0.0.1:%u/jwks.json >/dev/null && exit 0; sleep 0.1; done; exit 1",
             jwks_port);
    if (jwks_port == 0 || jwks_server_pid <= 0 || cv_test_sh(cmd) != 0) return -1;
    /* that probe is not the service's fetch */
    snprintf(cmd, sizeof(cmd), "sleep 0.2; : > '%s/http.log'", issuer_dir);
    return cv_test_sh(cmd);
}

int main(void)
{
    cv_json_alloc_install(); /* first: every entry point keeps JSON in secret memory */
    Suite *suite = oidc_suite();
    snprintf(issuer_dir, sizeof(issuer_dir), "%s/issuer", getenv("CV_TEST_TMP"));
    char cmd[4096];
    snprintf(cmd, sizeof(cmd),
             "mkdir -p '%s' && \"$CV_SOURCE_DIR/tests/fixtures/oidc-issuer\" keys '%s' && cp '%s/jwks-1.json' "
             "'%s/jwks.json'",
             issuer_dir, issuer_dir, issuer_dir, issuer_dir);
    if (cv_test_sh(cmd) != 0) {
        fprintf(stderr, "the test issuer could not make keys (Debian's python3-jwt and python3-cryptography)\n");
        return 1;
    }
    static char jwks_file[600], jwks_url[200];
    snprintf(jwks_file, sizeof(jwks_file), "CREDVAULT_OIDC_JWKS_FILE=%s/jwks.json", issuer_dir);
    const char *common[] = {"CREDVAULT_OIDC_ISSUER=" ISSUER, "CREDVAULT_OIDC_AUDIENCE=" AUDIENCE,
                            "CREDVAULT_OIDC_TENANT_CLAIM=grc.tenant", "CREDVAULT_OIDC_ROLE_CLAIM=realm_access.roles",
                            "CREDVAULT_OIDC_ROLES=grc-admin=tenant-admin,grc-auditor=auditor,grc-platform=admin",
                            "CREDVAULT_OIDC_JWKS_REFRESH_S=2",
                            /* these tests fail authentication on purpose, many times from one address */
                            "CREDVAULT_RATE_AUTH_FAILURES=0",
                            /* one process: the JWKS cache is per process (each worker of several
                             * fetches and reloads its own), and its fetches and reloads are
                             * counted and timed here as one process's */
                            "CREDVAULT_WORKERS=1"};
    const char *extra[10];
    for (size_t i = 0; i < 8; i++) extra[i] = common[i];
    extra[8] = jwks_file;
    extra[9] = NULL;
    if (cv_test_service_start(&svc, extra) != 0) return 1;
    if (start_jwks_server() != 0) {
        fprintf(stderr, "the JWKS test server did not start\n");
        return 1;
    }
    snprintf(jwks_url, sizeof(jwks_url), "CREDVAULT_OIDC_JWKS_URL=http://127.0.0.1:%u/jwks.json", jwks_port);
    extra[8] = jwks_url;
    if (cv_test_service_start(&svc_url, extra) != 0) return 1;
    cl = cv_test_client_new(svc.base_url, svc.ca_file);
    cl_url = cv_test_client_new(svc_url.base_url, svc_url.ca_file);
    if (cv_test_cli("tenant create acme --name 'Acme Corp' >/dev/null", NULL, 0) != 0 ||
        cv_test_cli("tenant create beta --name Beta >/dev/null", NULL, 0) != 0 ||
        cv_test_cli("token create --name ops@acme.example --role tenant-admin --tenant acme", tok_a, sizeof(tok_a)) ||
        cv_test_cli("token create --name ops@beta.example --role tenant-admin --tenant beta", tok_b, sizeof(tok_b)) ||
        deploy_as(tok_a, acme_server, sizeof(acme_server)) || deploy_as(tok_b, beta_server, sizeof(beta_server)))
        return 1;

    int failed = cv_t_suite_run(suite, CK_NOFORK);
    cv_test_client_free(cl);
    cv_test_client_free(cl_url);
    if (jwks_server_pid > 0) {
        snprintf(cmd, sizeof(cmd), "kill %d", (int)jwks_server_pid);
        cv_test_sh(cmd);
    }
    struct cv_test_service *all[] = {&svc, &svc_url};
    for (size_t i = 0; i < 2; i++) {
        int st = cv_test_service_stop(all[i]);
        if (st != 0) {
            fprintf(stderr, "credvault serve exited with %d (log: %s)\n", st, all[i]->log_file);
            failed++;
        }
    }
    return failed ? 1 : 0;
}
