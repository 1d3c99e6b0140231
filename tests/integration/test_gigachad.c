/* GigaChad GRC as it really runs, end to end against the real `credvault
 * serve` (fresh SoftHSM2 token and PostgreSQL cluster, HTTPS with libcurl):
 * the list endpoints read the way its frontend's MCPSettings page reads them
 * (`data` as the array, paging in `meta`), the catalog's integrations through
 * deploy, and file-shaped credentials reaching a child of `credvault run` as
 * an in-memory file. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "credvault/json_alloc.h"
#include "cv_test_http.h"
#include "cv_test_suite.h"
#include "cv_test_service.h"

static struct cv_test_service svc;
static struct cv_test_client *cl;
static char tok_a[160], tok_a_auditor[160], tok_b[160];

/* ---- helpers ---- */

static struct cv_test_response call(const char *method, const char *path, const char *token, const char *body)
{
    struct cv_test_response r;
    memset(&r, 0, sizeof(r));
    ck_assert_msg(cv_test_request(cl, method, path, token, body, NULL, &r) == 0, "transport: %s", r.error);
    return r;
}

static json_t *data_of(struct cv_test_response *r) { return json_object_get(r->json, "data"); }

static void expect(struct cv_test_response *r, long status)
{
    ck_assert_msg(r->status == status, "expected %ld, got %ld: %s", status, r->status, r->body);
}

static void expect_free(const char *method, const char *path, const char *token, const char *body, long status)
{
    struct cv_test_response r = call(method, path, token, body);
    expect(&r, status);
    cv_test_response_free(&r);
}

static void deploy(const char *token, const char *tmpl, const char *body, char *id, size_t id_len, json_t **doc)
{
    char path[256];
    snprintf(path, sizeof(path), "/api/mcp/templates/%s/deploy", tmpl);
    struct cv_test_response r = call("POST", path, token, body);
    expect(&r, 201);
    snprintf(id, id_len, "%s", json_string_value(json_object_get(data_of(&r), "id")));
    if (doc) *doc = json_incref(data_of(&r));
    cv_test_response_free(&r);
}

static int has(json_t *a, const char *s)
{
    size_t i;
    json_t *v;
    json_array_foreach(a, i, v) if (json_is_string(v) && strcmp(json_string_value(v), s) == 0) return 1;
    return 0;
}

/* What MCPSettings.tsx does with a server: s.status, s.transport, s.id,
 * s.capabilities?.tools?.length, s.configuration?.configuredIntegrations?.includes(…),
 * s.configuration.evidenceTypes.map(…). */
static void read_server_as_frontend(json_t *s)
{
    ck_assert(json_is_object(s));
    ck_assert(json_is_string(json_object_get(s, "id")));
    ck_assert(json_is_string(json_object_get(s, "name")));
    ck_assert(json_is_string(json_object_get(s, "status")));
    ck_assert_str_eq(json_string_value(json_object_get(s, "transport")), "stdio");
    json_t *caps = json_object_get(s, "capabilities");
    ck_assert(caps == NULL || json_is_object(caps)); /* optional: tools are the MCP host's to list */
    json_t *conf = json_object_get(s, "configuration");
    ck_assert(json_is_object(conf));
    ck_assert(json_is_array(json_object_get(conf, "configuredIntegrations")));
    ck_assert(json_is_array(json_object_get(conf, "evidenceTypes")));
    /* nothing left at the top that the frontend would have to look for twice */
    ck_assert_ptr_null(json_object_get(s, "configuredIntegrations"));
}

/* ---- the frontend's contract ---- */

START_TEST(templates_as_the_frontend_reads_them)
{
    struct cv_test_response r = call("GET", "/api/mcp/templates", tok_a_auditor, NULL);
    expect(&r, 200);
    ck_assert(json_is_true(json_object_get(r.json, "success")));
    /* const templates = templatesData?.data?.data || []; templates.map(…) */
    json_t *templates = data_of(&r);
    ck_assert(json_is_array(templates));
    ck_assert_int_ge(json_array_size(templates), 6);
    json_t *meta = json_object_get(r.json, "meta");
    ck_assert_int_eq(json_integer_value(json_object_get(meta, "total")), json_array_size(templates));
    ck_assert(json_is_integer(json_object_get(meta, "limit")));
    ck_assert_int_eq(json_integer_value(json_object_get(meta, "offset")), 0);
    size_t i, j, k;
    json_t *t, *v, *g;
    json_array_foreach(templates, i, t) {
        const char *id = json_string_value(json_object_get(t, "id"));
        ck_assert_ptr_nonnull(id);
        ck_assert(json_is_string(json_object_get(t, "name")));
        ck_assert(json_is_string(json_object_get(t, "description")));
        ck_assert_str_eq(json_string_value(json_object_get(t, "transport")), "stdio");
        ck_assert_int_gt(json_string_length(json_object_get(t, "command")), 0);
        json_t *args = json_object_get(t, "args");
        ck_assert(json_is_array(args));
        json_array_foreach(args, j, v) ck_assert(json_is_string(v));
        /* template.capabilities.map((cap) => <span>{cap}</span>) */
        json_t *caps = json_object_get(t, "capabilities");
        ck_assert_msg(json_is_array(caps) && json_array_size(caps) > 0, "%s: capabilities", id);
        json_array_foreach(caps, j, v) ck_assert(json_is_string(v));
        /* selectedTemplate.requiredEnv?.some((v) => !envVars[v]) */
        json_array_foreach(json_object_get(t, "requiredEnv"), j, v) ck_assert(json_is_string(v));
        /* optionalEnv.map((envDef) => envDef.key, envDef.label, envDef.description) */
        json_t *optional = json_object_get(t, "optionalEnv");
        ck_assert(json_is_array(optional));
        json_array_foreach(optional, j, v) {
            ck_assert(json_is_string(json_object_get(v, "key")));
            ck_assert_int_gt(json_string_length(json_object_get(v, "label")), 0);
            ck_assert_int_gt(json_string_length(json_object_get(v, "description")), 0);
        }
        /* configGroups.map((group) => group.keys.map((key) => optionalEnv.find((e) => e.key === key))) */
        json_t *groups = json_object_get(t, "configGroups");
        ck_assert(groups == NULL || json_is_array(groups));
        size_t placed = 0;
        json_array_foreach(groups, j, g) {
            ck_assert(json_is_string(json_object_get(g, "name")));
            json_array_foreach(json_object_get(g, "keys"), k, v) {
                int found = 0;
                size_t m;
                json_t *e;
                json_array_foreach(optional, m, e) found |= json_equal(json_object_get(e, "key"), v);
                ck_assert_msg(found, "%s: group key %s not in optionalEnv", id, json_string_value(v));
                placed++;
            }
        }
        if (groups) ck_assert_uint_eq(placed, json_array_size(optional)); /* none hidden */
        json_t *note = json_object_get(t, "configNote");
        ck_assert(note == NULL || json_is_string(note));
        ck_assert(json_is_array(json_object_get(t, "evidenceTypes")));
    }
    cv_test_response_free(&r);
}
END_TEST

START_TEST(servers_as_the_frontend_reads_them)
{
    char id[160];
    json_t *created = NULL;
    deploy(tok_a, "grc-evidence",
           "{\"env\":{\"GITHUB_TOKEN\":\"ghp_frontend_contract_0123456789abcdef\",\"OKTA_DOMAIN\":\"acme.okta.com\","
           "\"OKTA_API_TOKEN\":\"00okta-frontend-contract-token\"}}",
           id, sizeof(id), &created);
    /* the deploy answer is a server too (mcpApi.deployTemplate → MCPServer) */
    read_server_as_frontend(created);
    ck_assert(has(json_object_get(json_object_get(created, "configuration"), "configuredIntegrations"), "GitHub"));
    ck_assert(has(json_object_get(json_object_get(created, "configuration"), "configuredIntegrations"), "Okta"));
    json_decref(created);

    /* const servers = serversData?.data?.data || []; servers.filter(…), servers.reduce(…) */
    struct cv_test_response r = call("GET", "/api/mcp/servers", tok_a_auditor, NULL);
    expect(&r, 200);
    json_t *servers = data_of(&r);
    ck_assert(json_is_array(servers));
    ck_assert_int_ge(json_array_size(servers), 1);
    json_t *meta = json_object_get(r.json, "meta");
    ck_assert_int_eq(json_integer_value(json_object_get(meta, "total")), json_array_size(servers));
    ck_assert_int_eq(json_integer_value(json_object_get(meta, "limit")), 50);
    ck_assert_int_eq(json_integer_value(json_object_get(meta, "offset")), 0);
    size_t i;
    json_t *s;
    int seen = 0;
    json_array_foreach(servers, i, s) {
        read_server_as_frontend(s);
        if (strcmp(json_string_value(json_object_get(s, "id")), id) != 0) continue;
        seen = 1;
        json_t *conf = json_object_get(s, "configuration");
        /* the "Credential Configuration Status" grid: configuredIntegrations.includes(provider.name) */
        ck_assert(has(json_object_get(conf, "configuredIntegrations"), "GitHub"));
        ck_assert(has(json_object_get(conf, "configuredIntegrations"), "Okta"));
        ck_assert(!has(json_object_get(conf, "configuredIntegrations"), "AWS"));
        ck_assert(has(json_object_get(conf, "evidenceTypes"), "Okta MFA Enforcement"));
    }
    ck_assert(seen);
    ck_assert_ptr_null(strstr(r.body, "ghp_frontend_contract"));
    cv_test_response_free(&r);

    /* paging beside the array */
    r = call("GET", "/api/mcp/servers?limit=1&offset=0", tok_a, NULL);
    expect(&r, 200);
    ck_assert_int_eq(json_array_size(data_of(&r)), 1);
    ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(r.json, "meta"), "limit")), 1);
    cv_test_response_free(&r);
    /* a paging error is still the error envelope */
    r = call("GET", "/api/mcp/servers?limit=x", tok_a, NULL);
    expect(&r, 400);
    ck_assert(json_is_false(json_object_get(r.json, "success")));
    ck_assert_ptr_null(json_object_get(r.json, "meta"));
    cv_test_response_free(&r);

    /* one server: the same shape, with its ETag */
    char path[256];
    snprintf(path, sizeof(path), "/api/mcp/servers/%s", id);
    r = call("GET", path, tok_a_auditor, NULL);
    expect(&r, 200);
    read_server_as_frontend(data_of(&r));
    ck_assert(json_is_array(json_object_get(data_of(&r), "credentialNames")));
    cv_test_response_free(&r);
}
END_TEST

/* ---- the catalog through deploy ---- */

START_TEST(google_service_account_route)
{
    char id[160];
    json_t *doc = NULL;
    /* the key itself as a plain value, as grc-evidence reads GOOGLE_SERVICE_ACCOUNT_KEY */
    deploy(tok_a, "grc-evidence",
           "{\"env\":{\"GOOGLE_SERVICE_ACCOUNT_KEY\":\"{\\\"type\\\":\\\"service_account\\\",\\\"client_email\\\":"
           "\\\"collector@acme.iam.gserviceaccount.com\\\",\\\"private_key\\\":\\\"-----BEGIN PRIVATE KEY-----\\\\nMIIE"
           "\\\\n-----END PRIVATE KEY-----\\\\n\\\"}\",\"GOOGLE_ADMIN_EMAIL\":\"admin@acme.example\","
           "\"GOOGLE_CUSTOMER_ID\":\"C0abc123\"}}",
           id, sizeof(id), &doc);
    json_t *integ = json_object_get(json_object_get(doc, "configuration"), "configuredIntegrations");
    ck_assert_int_eq(json_array_size(integ), 1);
    ck_assert_str_eq(json_string_value(json_array_get(integ, 0)), "Google");
    json_decref(doc);
    /* without the delegated admin, grc-evidence stays in demo mode: not configured */
    deploy(tok_a, "grc-evidence", "{\"env\":{\"GOOGLE_SERVICE_ACCOUNT_KEY\":\"{}\"}}", id, sizeof(id), &doc);
    ck_assert_int_eq(json_array_size(json_object_get(json_object_get(doc, "configuration"), "configuredIntegrations")),
                     0);
    json_decref(doc);
    /* the AI assistant's model names are settings, not integrations */
    deploy(tok_a, "grc-ai-assistant",
           "{\"env\":{\"ANTHROPIC_API_KEY\":\"sk-ant-api03-gigachad\",\"ANTHROPIC_MODEL\":\"claude-opus-4-5-20250514\"}}",
           id, sizeof(id), &doc);
    integ = json_object_get(json_object_get(doc, "configuration"), "configuredIntegrations");
    ck_assert_int_eq(json_array_size(integ), 1);
    ck_assert_str_eq(json_string_value(json_array_get(integ, 0)), "Anthropic");
    json_decref(doc);
}
END_TEST


/* ---- file-shaped credentials ---- */

#define SA_JSON                                                                                                   \
    "{\n  \"type\": \"service_account\",\n  \"project_id\": \"acme-grc\",\n  \"private_key\": \"-----BEGIN PRIVATE " \
    "KEY-----\\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC-file-secret\\n-----END PRIVATE KEY-----\\n\"\n}\n"
/* the same, escaped once more to sit in a JSON request body */
#define SA_JSON_IN_BODY                                                                                           \
    "{\\n  \\\"type\\\": \\\"service_account\\\",\\n  \\\"project_id\\\": \\\"acme-grc\\\",\\n  \\\"private_key\\\": " \
    "\\\"-----BEGIN PRIVATE KEY-----\\\\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC-file-secret\\\\n-----END PRIVATE "       \
    "KEY-----\\\\n\\\"\\n}\\n"
#define FILE_GH "ghp_file_route_plain_0123456789abcdefgh"

START_TEST(file_values_deploy_mask_validate)
{
    /* refused shapes, and nothing stored for them */
    const char *bad[] = {
        "{\"env\":{\"GOOGLE_APPLICATION_CREDENTIALS\":{\"file\":1}}}",
        "{\"env\":{\"GOOGLE_APPLICATION_CREDENTIALS\":{\"path\":\"/etc/key.json\"}}}",
        "{\"env\":{\"GOOGLE_APPLICATION_CREDENTIALS\":{\"file\":\"a\",\"mode\":\"0600\"}}}",
        "{\"env\":{\"GOOGLE_APPLICATION_CREDENTIALS\":{}}}",
        "{\"env\":{\"GOOGLE_APPLICATION_CREDENTIALS\":[\"a\"]}}",
        "{\"env\":{\"GOOGLE_APPLICATION_CREDENTIALS\":{\"file\":\"a\\u0000b\"}}}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        expect_free("POST", "/api/mcp/templates/grc-evidence/deploy", tok_a, bad[i], 400);
    /* over CREDVAULT_MAX_FILE_VALUE_BYTES (8192) */
    size_t big = 8193;
    char *body = malloc(big + 128);
    int n = snprintf(body, big + 128, "{\"env\":{\"AWS_SHARED_CREDENTIALS_FILE\":{\"file\":\"");
    memset(body + n, 'k', big);
    snprintf(body + n + big, 64, "\"}}}");
    struct cv_test_response r = call("POST", "/api/mcp/templates/grc-evidence/deploy", tok_a, body);
    expect(&r, 400);
    ck_assert_ptr_nonnull(strstr(r.body, "CREDVAULT_MAX_FILE_VALUE_BYTES"));
    cv_test_response_free(&r);
    /* exactly at the limit is fine, and a file value counts for its integration */
    memset(body + n, 'k', big - 1);
    snprintf(body + n + big - 1, 64, "\"}}}");
    char id[160];
    json_t *doc = NULL;
    deploy(tok_a, "grc-evidence", body, id, sizeof(id), &doc);
    ck_assert(has(json_object_get(json_object_get(doc, "configuration"), "configuredIntegrations"), "AWS"));
    json_decref(doc);
    free(body);

    deploy(tok_a, "grc-evidence",
           "{\"env\":{\"GITHUB_TOKEN\":\"" FILE_GH "\",\"GOOGLE_APPLICATION_CREDENTIALS\":{\"file\":\"" SA_JSON_IN_BODY
           "\"}}}",
           id, sizeof(id), NULL);
    char path[256];
    snprintf(path, sizeof(path), "/api/mcp/servers/%s/credentials", id);
    r = call("GET", path, tok_a_auditor, NULL);
    expect(&r, 200);
    json_t *d = data_of(&r), *c = json_object_get(d, "credentials");
    /* masked like any value (first and last four characters of the content), still a string */
    ck_assert(json_is_string(json_object_get(c, "GOOGLE_APPLICATION_CREDENTIALS")));
    ck_assert_str_eq(json_string_value(json_object_get(c, "GOOGLE_APPLICATION_CREDENTIALS")), "{\n  ••••\"\n}\n");
    ck_assert_str_eq(json_string_value(json_object_get(c, "GITHUB_TOKEN")), "ghp_••••efgh");
    /* the marker: the names of file-shaped values, beside the map */
    json_t *files = json_object_get(d, "files");
    ck_assert_int_eq(json_array_size(files), 1);
    ck_assert_str_eq(json_string_value(json_array_get(files, 0)), "GOOGLE_APPLICATION_CREDENTIALS");
    ck_assert_ptr_null(strstr(r.body, "file-secret"));
    ck_assert_ptr_null(strstr(r.body, "service_account"));
    cv_test_response_free(&r);
    /* validation knows the name */
    snprintf(path, sizeof(path), "/api/mcp/servers/%s/credentials/validate", id);
    r = call("POST", path, tok_a, "{\"requiredKeys\":[\"GOOGLE_APPLICATION_CREDENTIALS\",\"GITHUB_TOKEN\"]}");
    expect(&r, 200);
    ck_assert(json_is_true(json_object_get(data_of(&r), "valid")));
    cv_test_response_free(&r);
    /* a merge turns a plain value into a file and back; the marker follows */
    snprintf(path, sizeof(path), "/api/mcp/servers/%s/credentials?merge=true", id);
    expect_free("PUT", path, tok_a, "{\"env\":{\"GITHUB_TOKEN\":{\"file\":\"" FILE_GH "\\n\"}}}", 200);
    snprintf(path, sizeof(path), "/api/mcp/servers/%s/credentials", id);
    r = call("GET", path, tok_a, NULL);
    expect(&r, 200);
    ck_assert_int_eq(json_array_size(json_object_get(data_of(&r), "files")), 2);
    cv_test_response_free(&r);
    expect_free("PUT", path, tok_a, "{\"env\":{\"GITHUB_TOKEN\":\"" FILE_GH "\"}}", 200);
    r = call("GET", path, tok_a, NULL);
    expect(&r, 200);
    ck_assert_ptr_null(json_object_get(data_of(&r), "files")); /* a map of plain values keeps the seed's shape */
    cv_test_response_free(&r);
}
END_TEST

/* Runs `credvault run` with a workload token, cwd and TMPDIR in a scratch
 * folder; returns stdout+stderr and sets *status. */
static char *run_in(const char *scratch, const char *token, const char *server, const char *script, int *status)
{
    char tf[512];
    snprintf(tf, sizeof(tf), "%s/wl-token", getenv("CV_TEST_TMP"));
    FILE *f = fopen(tf, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f, "%s\n", token);
    fclose(f);
    ck_assert_int_eq(chmod(tf, 0600), 0);
    char cmd[8192];
    snprintf(cmd, sizeof(cmd),
             "cd '%s' && env -u CREDVAULT_TOKEN TMPDIR='%s' CREDVAULT_TOKEN_FILE='%s' CREDVAULT_ADDR='%s' "
             "CREDVAULT_CACERT='%s' timeout 60 \"$CREDVAULT_BIN\" run --server '%s' -- sh -c '%s' 2>&1; "
             "echo \"[rc=$?]\"",
             scratch, scratch, tf, svc.base_url, svc.ca_file, server, script);
    char *out = cv_test_sh_output(cmd);
    ck_assert_ptr_nonnull(out);
    char *rc = strstr(out, "[rc=");
    ck_assert_ptr_nonnull(rc);
    *status = atoi(rc + 4);
    *rc = '\0';
    return out;
}

static char *between(const char *out, const char *start, const char *end)
{
    const char *a = strstr(out, start);
    ck_assert_msg(a != NULL, "no %s in: %s", start, out);
    a += strlen(start);
    const char *b = strstr(a, end);
    ck_assert_msg(b != NULL, "no %s in: %s", end, out);
    return strndup(a, (size_t)(b - a));
}

START_TEST(file_value_reaches_run_child_in_memory)
{
    char id[160];
    deploy(tok_a, "grc-evidence",
           "{\"env\":{\"GITHUB_TOKEN\":\"" FILE_GH "\",\"GOOGLE_APPLICATION_CREDENTIALS\":{\"file\":\"" SA_JSON_IN_BODY
           "\"},\"AZURE_CLIENT_CERTIFICATE_PATH\":{\"file\":\"-----BEGIN CERTIFICATE-----\\nMIIB\\n\"}}}",
           id, sizeof(id), NULL);
    char body[512], wl[160];
    snprintf(body, sizeof(body), "{\"name\":\"grc-evidence-runner\",\"role\":\"workload\",\"tenantId\":\"acme\","
                                 "\"serverId\":\"%s\"}", id);
    struct cv_test_response r = call("POST", "/api/tokens", tok_a, body);
    expect(&r, 201);
    snprintf(wl, sizeof(wl), "%s", json_string_value(json_object_get(data_of(&r), "token")));
    cv_test_response_free(&r);

    char scratch[512];
    snprintf(scratch, sizeof(scratch), "%s/run-scratch", getenv("CV_TEST_TMP"));
    ck_assert_int_eq(mkdir(scratch, 0700), 0);
    char listing[600];
    snprintf(listing, sizeof(listing), "find '%s' -mindepth 1 | wc -l", scratch);
    char *before = cv_test_sh_output(listing);
    ck_assert_int_eq(atoi(before), 0);
    free(before);

    /* the child is the very process credvault run became: $$ is its pid */
    const char *script =
        "p=$GOOGLE_APPLICATION_CREDENTIALS; n=${p##*/}; "
        "echo \"path=$p;\"; echo \"link=$(readlink /proc/$$/fd/$n);\"; "
        "echo \"plain=$GITHUB_TOKEN;\"; printf \"content<<\"; cat \"$p\"; echo \">>\"; "
        "echo \"again<<$(cat \"$p\" | wc -c)>>\"; "
        "echo \"seals=$(/usr/bin/python3 -c \"import fcntl,sys; print(fcntl.fcntl(int(sys.argv[1]), fcntl.F_GET_SEALS))\" $n);\"; "
        "if (printf x >> \"$p\") 2>/dev/null; then echo writable; else echo \"sealed;\"; fi; "
        "c=$AZURE_CLIENT_CERTIFICATE_PATH; echo \"cert=$(head -n 1 \"$c\");\"; "
        "echo \"memfds=$(for f in /proc/$$/fd/*; do readlink \"$f\"; done | grep -c \"^/memfd:credvault:\");\"";
    int st = -1;
    char *out = run_in(scratch, wl, id, script, &st);
    ck_assert_msg(st == 0, "credvault run: %d: %s", st, out);
    char *p = between(out, "path=", ";");
    ck_assert_msg(strncmp(p, "/proc/self/fd/", 14) == 0, "path %s", p);
    free(p);
    char *link = between(out, "link=", ";");
    ck_assert_msg(strncmp(link, "/memfd:credvault:GOOGLE_APPLICATION_CREDENTIALS", 47) == 0, "link %s", link);
    free(link);
    char *plain = between(out, "plain=", ";");
    ck_assert_str_eq(plain, FILE_GH); /* a plain value stays a plain value */
    free(plain);
    char *content = between(out, "content<<", ">>");
    ck_assert_str_eq(content, SA_JSON);
    free(content);
    /* opened twice, read whole both times */
    char *again = between(out, "again<<", ">>");
    ck_assert_int_eq(atoi(again), (int)strlen(SA_JSON));
    free(again);
    char *seals = between(out, "seals=", ";");
    ck_assert_int_eq(atoi(seals), 15); /* F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE */
    free(seals);
    ck_assert_ptr_nonnull(strstr(out, "sealed;"));
    ck_assert_ptr_null(strstr(out, "writable"));
    char *cert = between(out, "cert=", ";");
    ck_assert_str_eq(cert, "-----BEGIN CERTIFICATE-----");
    free(cert);
    char *memfds = between(out, "memfds=", ";");
    ck_assert_int_eq(atoi(memfds), 2); /* one per file value, no other */
    free(memfds);
    free(out);

    /* nothing appeared on disk: not in the working folder, not in TMPDIR */
    char *after = cv_test_sh_output(listing);
    ck_assert_int_eq(atoi(after), 0);
    free(after);
    char grep[700];
    snprintf(grep, sizeof(grep), "grep -rl 'file-secret' '%s' 2>/dev/null | wc -l", scratch);
    char *hits = cv_test_sh_output(grep);
    ck_assert_int_eq(atoi(hits), 0);
    free(hits);
}
END_TEST

int main(void)
{
    cv_json_alloc_install(); /* first: every entry point keeps JSON in secret memory */
    static const struct cv_t_suite_spec spec = {.name = "gigachad", .timeout_s = 120};
    Suite *suite = cv_t_suite_new(&spec, CV_T_TESTS(templates_as_the_frontend_reads_them,
                                                    servers_as_the_frontend_reads_them, google_service_account_route,
                                                    file_values_deploy_mask_validate,
                                                    file_value_reaches_run_child_in_memory));
    if (cv_test_service_start(&svc, NULL) != 0) return 1;
    cl = cv_test_client_new(svc.base_url, svc.ca_file);
    if (cv_test_cli("tenant create acme --name 'Acme Corp' >/dev/null", NULL, 0) != 0 ||
        cv_test_cli("tenant create beta --name Beta >/dev/null", NULL, 0) != 0 ||
        cv_test_cli("token create --name alice@acme.example --role tenant-admin --tenant acme", tok_a, sizeof(tok_a)) ||
        cv_test_cli("token create --name audit@acme.example --role auditor --tenant acme", tok_a_auditor,
                    sizeof(tok_a_auditor)) ||
        cv_test_cli("token create --name bob@beta.example --role tenant-admin --tenant beta", tok_b, sizeof(tok_b)))
        return 1;

    int failed = cv_t_suite_run(suite, CK_NOFORK);
    cv_test_client_free(cl);
    int st = cv_test_service_stop(&svc);
    if (st != 0) {
        fprintf(stderr, "credvault serve exited with %d (log: %s)\n", st, svc.log_file);
        failed++;
    }
    return failed ? 1 : 0;
}
