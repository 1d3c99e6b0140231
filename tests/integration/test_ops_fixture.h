/* Shared by the operations tests (test_ops_*.c): the real `credvault serve`
 * over HTTPS, helpers to call it, mint tokens, deploy, run SQL as the
 * superuser (to tamper, as an attacker with database access would) and read
 * one sample out of /metrics. Header-only: each test is its own program. */
#ifndef CV_TEST_OPS_FIXTURE_H
#define CV_TEST_OPS_FIXTURE_H

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cv_test_http.h"
#include "cv_test_service.h"

static struct cv_test_service svc;
static struct cv_test_client *cl;

/* each test program uses some of these */
#define OPS_HELPER static __attribute__((unused))

OPS_HELPER struct cv_test_response call_h(const char *method, const char *path, const char *token, const char *body,
                                          const char *const *headers)
{
    struct cv_test_response r;
    memset(&r, 0, sizeof(r));
    ck_assert_msg(cv_test_request(cl, method, path, token, body, headers, &r) == 0, "transport: %s", r.error);
    return r;
}

OPS_HELPER struct cv_test_response call(const char *method, const char *path, const char *token, const char *body)
{
    return call_h(method, path, token, body, NULL);
}

OPS_HELPER json_t *data_of(struct cv_test_response *r)
{
    return json_object_get(r->json, "data");
}

OPS_HELPER const char *error_code(struct cv_test_response *r)
{
    return json_string_value(json_object_get(json_object_get(r->json, "error"), "code"));
}

OPS_HELPER void expect(struct cv_test_response *r, long status, const char *code)
{
    ck_assert_msg(r->status == status, "expected %ld, got %ld: %s", status, r->status, r->body);
    if (code) ck_assert_str_eq(error_code(r), code);
}

OPS_HELPER void expect_free(const char *method, const char *path, const char *token, const char *body, long status,
                            const char *code)
{
    struct cv_test_response r = call(method, path, token, body);
    expect(&r, status, code);
    cv_test_response_free(&r);
}

OPS_HELPER void mint(const char *by, const char *name, const char *role, const char *tenant, const char *server,
                     char *out, size_t out_len)
{
    char body[512];
    snprintf(body, sizeof(body), "{\"name\":\"%s\",\"role\":\"%s\"%s%s%s%s%s%s}", name, role,
             tenant ? ",\"tenantId\":\"" : "", tenant ? tenant : "", tenant ? "\"" : "",
             server ? ",\"serverId\":\"" : "", server ? server : "", server ? "\"" : "");
    struct cv_test_response r = call("POST", "/api/tokens", by, body);
    expect(&r, 201, NULL);
    snprintf(out, out_len, "%s", json_string_value(json_object_get(data_of(&r), "token")));
    cv_test_response_free(&r);
}

OPS_HELPER void deploy(const char *token, const char *tmpl, const char *body, char *id, size_t id_len)
{
    char path[256];
    snprintf(path, sizeof(path), "/api/mcp/templates/%s/deploy", tmpl);
    struct cv_test_response r = call("POST", path, token, body);
    expect(&r, 201, NULL);
    snprintf(id, id_len, "%s", json_string_value(json_object_get(data_of(&r), "id")));
    cv_test_response_free(&r);
}

/* Runs SQL as the cluster's superuser; returns the first line of output
 * (malloc'ed), NULL when psql failed. */
OPS_HELPER char *psql_try(const char *sql)
{
    char cmd[8192];
    snprintf(cmd, sizeof(cmd),
             "psql -X -q -t -A -v ON_ERROR_STOP=1 \"$CV_PG_SUPERUSER_URL\" -c \"%s\" 2>&1 || echo PSQL_FAILED", sql);
    char *out = cv_test_sh_output(cmd);
    if (!out) return NULL;
    if (strstr(out, "PSQL_FAILED")) {
        fprintf(stderr, "psql: %s\n", out);
        free(out);
        return NULL;
    }
    out[strcspn(out, "\n")] = '\0';
    return out;
}

OPS_HELPER char *psql(const char *sql)
{
    char *out = psql_try(sql);
    ck_assert_msg(out != NULL, "psql failed: %s", sql);
    return out;
}

OPS_HELPER long long psql_int(const char *sql)
{
    char *out = psql(sql);
    long long v = atoll(out);
    free(out);
    return v;
}

/* The value of one sample of a /metrics text ("name{labels}" exactly as
 * rendered, or a bare name), or -1 when absent. */
OPS_HELPER double metric_in(const char *text, const char *series)
{
    size_t n = strlen(series);
    for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
        if (strncmp(p, series, n) == 0 && p[n] == ' ') return strtod(p + n + 1, NULL);
    }
    return -1;
}

OPS_HELPER char *scrape(const char *token)
{
    struct cv_test_response r = call("GET", "/metrics", token, NULL);
    ck_assert_msg(r.status == 200, "scrape: %ld %s", r.status, r.body);
    char *text = strdup(r.body);
    cv_test_response_free(&r);
    return text;
}

OPS_HELPER double metric(const char *token, const char *series)
{
    char *text = scrape(token);
    double v = metric_in(text, series);
    free(text);
    return v;
}

OPS_HELPER void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

/* Runs `credvault <args>` and captures stdout (up to 64 KiB). */
OPS_HELPER int cli_out(const char *args, char *out, size_t out_len)
{
    return cv_test_cli(args, out, out_len);
}

#endif
