/* The template catalog against GigaChad GRC's MCP servers: every variable
 * grc-evidence and grc-ai-assistant read is in their templates with a label
 * and description, each integration (and each of its routes) counts from its
 * variables and not from fewer, and a malformed catalog is refused at load.
 * No HSM, no database. Hostile cases first. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "credvault/json_alloc.h"
#include "domain/domain.h"

static struct cv_catalog *cat;

static void load(void) { ck_assert(cv_ok(cv_catalog_load(NULL, &cat))); }
static void unload(void)
{
    cv_catalog_free(cat);
    cat = NULL;
}

/* The template as the API shows it (optionalEnv as objects). */
static json_t *listed(const char *id, json_t **items)
{
    struct cv_app app = {.catalog = cat};
    struct cv_principal p;
    memset(&p, 0, sizeof(p));
    json_t *meta = NULL;
    ck_assert(cv_ok(cv_templates_list(&app, &p, items, &meta)));
    ck_assert_int_eq(json_integer_value(json_object_get(meta, "total")), json_array_size(*items));
    json_decref(meta);
    size_t i;
    json_t *t;
    json_array_foreach(*items, i, t) if (strcmp(json_string_value(json_object_get(t, "id")), id) == 0) return t;
    return NULL;
}

static json_t *optional_entry(json_t *t, const char *key)
{
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(t, "optionalEnv"), i, e) {
        if (strcmp(json_string_value(json_object_get(e, "key")), key) == 0) return e;
    }
    return NULL;
}

/* Integrations configured by an env given as NAME=value strings; a value
 * starting with "@" is file-shaped. */
static json_t *integrations_of(const char *const *kv)
{
    json_t *env = json_object();
    for (; *kv; kv++) {
        const char *eq = strchr(*kv, '=');
        char name[128];
        snprintf(name, sizeof(name), "%.*s", (int)(eq - *kv), *kv);
        if (eq[1] == '@') json_object_set_new(env, name, json_pack("{s:s}", "file", eq + 2));
        else json_object_set_new(env, name, json_string(eq + 1));
    }
    json_t *out = cv_catalog_configured_integrations(cat, env);
    json_decref(env);
    return out;
}

static int has(json_t *a, const char *s)
{
    size_t i;
    json_t *v;
    json_array_foreach(a, i, v) if (strcmp(json_string_value(v), s) == 0) return 1;
    return 0;
}

/* Each integration's route counts with all its names, and not with one missing
 * or empty; only that integration counts. */
static void expect_route(const char *integration, const char *const *kv)
{
    json_t *got = integrations_of(kv);
    ck_assert_msg(json_array_size(got) == 1 && has(got, integration), "%s: %s", integration,
                  json_dumps(got, JSON_COMPACT));
    json_decref(got);
    size_t n = 0;
    while (kv[n]) n++;
    for (size_t drop = 0; drop < n; drop++) {
        const char *fewer[16];
        char empty[128];
        size_t k = 0;
        for (size_t i = 0; i < n; i++)
            if (i != drop) fewer[k++] = kv[i];
        fewer[k] = NULL;
        got = integrations_of(fewer);
        ck_assert_msg(!has(got, integration), "%s counted without %s", integration, kv[drop]);
        json_decref(got);
        /* present but empty does not count either */
        snprintf(empty, sizeof(empty), "%.*s=", (int)strcspn(kv[drop], "="), kv[drop]);
        fewer[k] = empty;
        fewer[k + 1] = NULL;
        got = integrations_of(fewer);
        ck_assert_msg(!has(got, integration), "%s counted with %s empty", integration, empty);
        json_decref(got);
    }
}

static cv_result load_text(const char *text)
{
    char path[] = "/tmp/cv-catalog-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    struct cv_catalog *c = NULL;
    cv_result r = cv_catalog_load(path, &c);
    unlink(path);
    cv_catalog_free(c);
    return r;
}

#define VARS "\"variables\":{\"A\":{\"label\":\"A\",\"description\":\"a\"},\"B\":{\"label\":\"B\",\"description\":\"b\"}}"
#define INTEG "\"integrations\":[{\"name\":\"I\",\"routes\":[{\"name\":\"r\",\"keys\":[\"A\"]}]}]"
#define TMPL_HEAD                                                                                                  \
    "{\"id\":\"t\",\"name\":\"T\",\"description\":\"d\",\"transport\":\"stdio\",\"command\":\"node\",\"args\":[],"     \
    "\"capabilities\":[\"tools\"],\"integrations\":[\"I\"],\"evidenceTypes\":[],"

START_TEST(malformed_catalogs_refused)
{
    const char *bad[] = {
        /* a variable without a description */
        "{\"variables\":{\"A\":{\"label\":\"A\"}}," INTEG ",\"templates\":[]}",
        /* a route naming an undescribed variable */
        "{" VARS ",\"integrations\":[{\"name\":\"I\",\"routes\":[{\"name\":\"r\",\"keys\":[\"C\"]}]}],\"templates\":[]}",
        /* the old shape: keys instead of routes */
        "{" VARS ",\"integrations\":[{\"name\":\"I\",\"keys\":[\"A\"]}],\"templates\":[]}",
        /* a template naming an undescribed variable */
        "{" VARS "," INTEG ",\"templates\":[" TMPL_HEAD "\"requiredEnv\":[],\"optionalEnv\":[\"C\"]}]}",
        /* without transport/command */
        "{" VARS "," INTEG ",\"templates\":[{\"id\":\"t\",\"name\":\"T\",\"description\":\"d\",\"capabilities\":[],"
        "\"integrations\":[],\"evidenceTypes\":[],\"requiredEnv\":[],\"optionalEnv\":[]}]}",
        /* a name both required and optional */
        "{" VARS "," INTEG ",\"templates\":[" TMPL_HEAD "\"requiredEnv\":[\"A\"],\"optionalEnv\":[\"A\"]}]}",
        /* a group naming a key outside optionalEnv, and one leaving a key out */
        "{" VARS "," INTEG ",\"templates\":[" TMPL_HEAD
        "\"requiredEnv\":[],\"optionalEnv\":[\"A\"],\"configGroups\":[{\"name\":\"g\",\"keys\":[\"B\"]}]}]}",
        "{" VARS "," INTEG ",\"templates\":[" TMPL_HEAD
        "\"requiredEnv\":[],\"optionalEnv\":[\"A\",\"B\"],\"configGroups\":[{\"name\":\"g\",\"keys\":[\"A\"]}]}]}",
        /* an unknown integration, an unknown member */
        "{" VARS "," INTEG ",\"templates\":[{\"id\":\"t\",\"name\":\"T\",\"description\":\"d\",\"transport\":\"stdio\","
        "\"command\":\"n\",\"args\":[],\"capabilities\":[],\"integrations\":[\"Nope\"],\"evidenceTypes\":[],"
        "\"requiredEnv\":[],\"optionalEnv\":[]}]}",
        "{" VARS "," INTEG ",\"templates\":[" TMPL_HEAD "\"requiredEnv\":[],\"optionalEnv\":[],\"optinalEnv\":[]}]}",
        /* a variable that changes how programs load or run, whatever the template */
        "{\"variables\":{\"A\":{\"label\":\"A\",\"description\":\"a\"},\"SHELLOPTS\":{\"label\":\"S\","
        "\"description\":\"s\"}}," INTEG ",\"templates\":[]}",
        /* the old allowance, no longer honoured: an error rather than silence */
        "{" VARS "," INTEG ",\"templates\":[" TMPL_HEAD
        "\"requiredEnv\":[],\"optionalEnv\":[],\"allowedLoaderEnv\":[\"LD_LIBRARY_PATH\"]}]}",
        /* customEnv patterns: a prefix ending in '_' then '*', of no forbidden family */
        "{" VARS "," INTEG ",\"templates\":[" TMPL_HEAD "\"requiredEnv\":[],\"optionalEnv\":[],\"customEnv\":[\"*\"]}]}",
        "{" VARS "," INTEG ",\"templates\":[" TMPL_HEAD "\"requiredEnv\":[],\"optionalEnv\":[],\"customEnv\":[\"ACME*\"]}]}",
        "{" VARS "," INTEG ",\"templates\":[" TMPL_HEAD "\"requiredEnv\":[],\"optionalEnv\":[],\"customEnv\":[\"A-B_*\"]}]}",
        "{" VARS "," INTEG ",\"templates\":[" TMPL_HEAD "\"requiredEnv\":[],\"optionalEnv\":[],\"customEnv\":[\"LD_*\"]}]}",
        "{" VARS "," INTEG ",\"templates\":[" TMPL_HEAD "\"requiredEnv\":[],\"optionalEnv\":[],\"customEnv\":[\"NODE_X_*\"]}]}",
        "{" VARS "," INTEG ",\"templates\":[" TMPL_HEAD "\"requiredEnv\":[],\"optionalEnv\":[],\"customEnv\":\"ACME_*\"}]}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cv_result r = load_text(bad[i]);
        ck_assert_msg(r.err == CV_ERR_INPUT, "catalog %zu was accepted", i);
    }
    /* the smallest good one loads */
    ck_assert(cv_ok(load_text("{" VARS "," INTEG ",\"templates\":[" TMPL_HEAD
                              "\"requiredEnv\":[\"B\"],\"optionalEnv\":[\"A\"],\"configGroups\":[{\"name\":\"g\","
                              "\"keys\":[\"A\"]}],\"configNote\":\"n\"}]}")));
    ck_assert(cv_ok(load_text("{" VARS "," INTEG ",\"templates\":[" TMPL_HEAD
                              "\"requiredEnv\":[],\"optionalEnv\":[],\"customEnv\":[\"ACME_*\",\"X_*\"]}]}")));
}
END_TEST

/* What GigaChad's MCP servers read from their environment (their src/ and
 * their SDKs' default chains). */
static const char *const evidence_reads[] = {
    "GITHUB_TOKEN", "OKTA_DOMAIN", "OKTA_API_TOKEN", "JAMF_URL", "JAMF_USERNAME", "JAMF_PASSWORD",
    /* AWS SDK default chain */
    "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_REGION", "AWS_ROLE_ARN",
    "AWS_ROLE_SESSION_NAME", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE",
    "AWS_PROFILE",
    /* DefaultAzureCredential */
    "AZURE_TENANT_ID", "AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET", "AZURE_CLIENT_CERTIFICATE_PATH",
    "AZURE_CLIENT_CERTIFICATE_PASSWORD", "AZURE_FEDERATED_TOKEN_FILE", "AZURE_USERNAME", "AZURE_PASSWORD",
    "AZURE_AUTHORITY_HOST",
    "GOOGLE_SERVICE_ACCOUNT_KEY", "GOOGLE_APPLICATION_CREDENTIALS", "GOOGLE_ADMIN_EMAIL", "GOOGLE_CUSTOMER_ID"};
static const char *const assistant_reads[] = {"OPENAI_API_KEY", "ANTHROPIC_API_KEY", "OPENAI_MODEL",
                                              "ANTHROPIC_MODEL"};

static void expect_reads(const char *id, const char *const *names, size_t n)
{
    json_t *items = NULL;
    json_t *t = listed(id, &items);
    ck_assert_ptr_nonnull(t);
    for (size_t i = 0; i < n; i++) {
        json_t *e = optional_entry(t, names[i]);
        ck_assert_msg(e != NULL, "%s: %s is not in optionalEnv", id, names[i]);
        ck_assert_int_gt(json_string_length(json_object_get(e, "label")), 0);
        ck_assert_int_gt(json_string_length(json_object_get(e, "description")), 0);
        ck_assert_int_eq(json_object_size(e), json_object_get(e, "file") ? 4 : 3);
    }
    json_decref(items);
}

START_TEST(gigachad_servers_variables)
{
    load();
    expect_reads("grc-evidence", evidence_reads, sizeof(evidence_reads) / sizeof(evidence_reads[0]));
    expect_reads("grc-ai-assistant", assistant_reads, sizeof(assistant_reads) / sizeof(assistant_reads[0]));
    json_t *items = NULL;
    json_t *t = listed("grc-ai-assistant", &items);
    /* nobody reads AI_MODEL: it is gone */
    ck_assert_ptr_null(optional_entry(t, "AI_MODEL"));
    char *all = json_dumps(items, JSON_COMPACT);
    ck_assert_ptr_null(strstr(all, "\"AI_MODEL\"")); /* OPENAI_MODEL stays */
    cv_json_free(all);
    ck_assert_str_eq(json_string_value(json_object_get(t, "transport")), "stdio");
    ck_assert(has(json_object_get(t, "capabilities"), "prompts"));
    json_decref(items);
    /* a path-shaped variable says so */
    t = listed("grc-evidence", &items);
    ck_assert(json_is_true(json_object_get(optional_entry(t, "GOOGLE_APPLICATION_CREDENTIALS"), "file")));
    ck_assert_ptr_null(json_object_get(optional_entry(t, "GOOGLE_SERVICE_ACCOUNT_KEY"), "file"));
    /* every group key is an optionalEnv entry, as the frontend looks them up */
    size_t i, j;
    json_t *g, *k;
    json_array_foreach(json_object_get(t, "configGroups"), i, g) {
        json_array_foreach(json_object_get(g, "keys"), j, k) ck_assert_ptr_nonnull(optional_entry(t, json_string_value(k)));
    }
    ck_assert(json_is_string(json_object_get(t, "configNote")));
    ck_assert_str_eq(json_string_value(json_array_get(json_object_get(t, "customEnv"), 0)), "MCP_*");
    json_decref(items);
    unload();
}
END_TEST

START_TEST(integration_table)
{
    load();
    /* nothing, or names of no integration, configure nothing */
    const char *none[] = {"GOOGLE_CLIENT_ID=x", "GOOGLE_CLIENT_SECRET=y", "AWS_REGION=eu-west-1", NULL};
    json_t *got = integrations_of(none);
    ck_assert_int_eq(json_array_size(got), 0);
    json_decref(got);
    /* the key path alone is not Google for grc-evidence: it reads GOOGLE_SERVICE_ACCOUNT_KEY */
    const char *adc_only[] = {"GOOGLE_APPLICATION_CREDENTIALS=@{}", "GOOGLE_ADMIN_EMAIL=admin@example.com", NULL};
    got = integrations_of(adc_only);
    ck_assert_int_eq(json_array_size(got), 0);
    json_decref(got);

    const char *aws_keys[] = {"AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE", "AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI", NULL};
    const char *aws_web[] = {"AWS_ROLE_ARN=arn:aws:iam::1:role/r", "AWS_WEB_IDENTITY_TOKEN_FILE=@eyJ0", NULL};
    const char *aws_file[] = {"AWS_SHARED_CREDENTIALS_FILE=@[default]", NULL};
    const char *az_secret[] = {"AZURE_TENANT_ID=t", "AZURE_CLIENT_ID=c", "AZURE_CLIENT_SECRET=s", NULL};
    const char *az_cert[] = {"AZURE_TENANT_ID=t", "AZURE_CLIENT_ID=c", "AZURE_CLIENT_CERTIFICATE_PATH=@PEM", NULL};
    const char *az_wi[] = {"AZURE_TENANT_ID=t", "AZURE_CLIENT_ID=c", "AZURE_FEDERATED_TOKEN_FILE=@eyJ", NULL};
    const char *az_user[] = {"AZURE_TENANT_ID=t", "AZURE_CLIENT_ID=c", "AZURE_USERNAME=u", "AZURE_PASSWORD=p", NULL};
    const char *github[] = {"GITHUB_TOKEN=ghp_x", NULL};
    const char *okta[] = {"OKTA_DOMAIN=acme.okta.com", "OKTA_API_TOKEN=00abc", NULL};
    const char *google[] = {"GOOGLE_SERVICE_ACCOUNT_KEY={\"type\":\"service_account\"}",
                            "GOOGLE_ADMIN_EMAIL=admin@example.com", NULL};
    const char *jamf[] = {"JAMF_URL=https://acme.jamfcloud.com", "JAMF_USERNAME=api", "JAMF_PASSWORD=pw", NULL};
    const char *openai[] = {"OPENAI_API_KEY=sk-proj-x", NULL};
    const char *anthropic[] = {"ANTHROPIC_API_KEY=sk-ant-x", NULL};
    const char *slack[] = {"SLACK_BOT_TOKEN=xoxb-1", NULL};
    const char *pg[] = {"POSTGRES_CONNECTION_STRING=postgresql://a@b/c", NULL};
    expect_route("AWS", aws_keys);
    expect_route("AWS", aws_web);
    expect_route("AWS", aws_file);
    expect_route("Azure", az_secret);
    expect_route("Azure", az_cert);
    expect_route("Azure", az_wi);
    expect_route("Azure", az_user);
    expect_route("GitHub", github);
    expect_route("Okta", okta);
    expect_route("Google", google);
    expect_route("Jamf", jamf);
    expect_route("OpenAI", openai);
    expect_route("Anthropic", anthropic);
    expect_route("Slack", slack);
    expect_route("PostgreSQL", pg);
    /* an empty file is no credential */
    const char *empty_file[] = {"AWS_SHARED_CREDENTIALS_FILE=@", NULL};
    got = integrations_of(empty_file);
    ck_assert_int_eq(json_array_size(got), 0);
    json_decref(got);
    /* several at once, in catalog order */
    const char *many[] = {"OPENAI_API_KEY=sk", "GITHUB_TOKEN=g", "AWS_ACCESS_KEY_ID=a", "AWS_SECRET_ACCESS_KEY=b",
                          NULL};
    got = integrations_of(many);
    ck_assert_int_eq(json_array_size(got), 3);
    ck_assert_str_eq(json_string_value(json_array_get(got, 0)), "AWS");
    ck_assert_str_eq(json_string_value(json_array_get(got, 1)), "GitHub");
    ck_assert_str_eq(json_string_value(json_array_get(got, 2)), "OpenAI");
    json_decref(got);
    unload();
}
END_TEST

START_TEST(value_shapes)
{
    size_t len = 99;
    int file = 7;
    json_t *bad[] = {json_integer(1), json_null(), json_pack("{s:i}", "file", 1), json_pack("{s:s, s:s}", "file", "a", "x", "b"),
                     json_pack("{s:s}", "path", "a"), json_array()};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ck_assert_ptr_null(cv_env_value(bad[i], &len, &file));
        json_decref(bad[i]);
    }
    json_t *plain = json_string("abc"), *f = json_pack("{s:s}", "file", "line1\nline2\n");
    ck_assert_str_eq(cv_env_value(plain, &len, &file), "abc");
    ck_assert_uint_eq(len, 3);
    ck_assert_int_eq(file, 0);
    ck_assert_str_eq(cv_env_value(f, &len, &file), "line1\nline2\n");
    ck_assert_uint_eq(len, 12);
    ck_assert_int_eq(file, 1);
    json_decref(plain);
    json_decref(f);
}
END_TEST

static Suite *catalog_suite(void)
{
    Suite *s = suite_create("domain_catalog");
    TCase *tc = tcase_create("catalog");
    tcase_add_test(tc, malformed_catalogs_refused);
    tcase_add_test(tc, value_shapes);
    tcase_add_test(tc, gigachad_servers_variables);
    tcase_add_test(tc, integration_table);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(catalog_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
