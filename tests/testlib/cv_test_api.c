/* The API-test helpers of cv_test_api.h: one request wrapper, one envelope
 * check, dotted JSON paths, fixtures through the API and superuser SQL.
 * Failures name the caller's file and line; nothing here hides a failure
 * or retries. For tests only. */
#include "cv_test_api.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "credvault/json_alloc.h"
#include "cv_test_service.h"

/* ---- requests ---- */

struct cv_test_response cv_t_request_at(const char *file, int line, struct cv_test_client *c, const char *method,
                                        const char *path, const char *token, const char *body,
                                        const char *const *headers)
{
    struct cv_test_response r;
    memset(&r, 0, sizeof(r));
    int rc = cv_test_request(c, method, path, token, body, headers, &r);
    ck_assert_msg(rc == 0, "%s:%d: %s %s: no response: %s", file, line, method, path, r.error);
    return r;
}

const char *cv_t_error_code(const struct cv_test_response *r)
{
    return json_string_value(cv_t_json_at(r->json, "error.code"));
}

json_t *cv_t_data(const struct cv_test_response *r)
{
    return json_object_get(r->json, "data");
}

void cv_t_expect_status_at(const char *file, int line, const struct cv_test_response *r, long status, const char *code)
{
    const char *body = r->body ? r->body : "";
    ck_assert_msg(r->status == status, "%s:%d: expected status %ld, got %ld: %.2000s", file, line, status, r->status,
                  body);
    const char *type = cv_test_response_header(r, "Content-Type");
    if (status < 300 && !(type && strncasecmp(type, "application/json", 16) == 0)) return;
    ck_assert_msg(r->json != NULL, "%s:%d: the body is not JSON: %.2000s", file, line, body);
    json_t *ok = json_object_get(r->json, "success");
    if (status < 300) {
        ck_assert_msg(json_is_true(ok) && json_object_get(r->json, "data") != NULL,
                      "%s:%d: not a success envelope: %.2000s", file, line, body);
        return;
    }
    const char *got = cv_t_error_code(r);
    ck_assert_msg(json_is_false(ok) && got && json_is_string(cv_t_json_at(r->json, "error.message")),
                  "%s:%d: not an error envelope: %.2000s", file, line, body);
    if (code) ck_assert_msg(strcmp(got, code) == 0, "%s:%d: expected error code %s: %.2000s", file, line, code, body);
}

void cv_t_expect_call_at(const char *file, int line, struct cv_test_client *c, const char *method, const char *path,
                         const char *token, const char *body, const char *const *headers, long status, const char *code)
{
    struct cv_test_response r = cv_t_request_at(file, line, c, method, path, token, body, headers);
    cv_t_expect_status_at(file, line, &r, status, code);
    cv_test_response_free(&r);
}

static long long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

long cv_t_expect_status_within_at(const char *file, int line, struct cv_test_client *c, const char *method,
                                  const char *path, const char *token, long before, long status, long within_ms)
{
    long long start = mono_ms(), until = start + within_ms;
    for (;;) {
        struct cv_test_response r = cv_t_request_at(file, line, c, method, path, token, NULL, NULL);
        long got = r.status;
        cv_test_response_free(&r);
        long long now = mono_ms();
        if (got == status) return (long)(now - start);
        ck_assert_msg(got == before, "%s:%d: %s %s answered %ld (only %ld may come before %ld)", file, line, method,
                      path, got, before, status);
        ck_assert_msg(now < until, "%s:%d: %s %s not %ld within %ld ms", file, line, method, path, status, within_ms);
        struct timespec pause = {.tv_sec = 0, .tv_nsec = 10 * 1000000L};
        nanosleep(&pause, NULL);
    }
}

void cv_t_expect_recovery_at(const char *file, int line, struct cv_test_client *c, const char *method,
                             const char *path, const char *token, long status, long within_ms)
{
    long long until = mono_ms() + within_ms;
    for (;;) {
        struct cv_test_response r = cv_t_request_at(file, line, c, method, path, token, NULL, NULL);
        long got = r.status;
        if (got != status) {
            ck_assert_msg(got == 503, "%s:%d: %s %s answered %ld while recovering (only 503 may come before %ld)",
                          file, line, method, path, got, status);
            ck_assert_msg(cv_test_response_header(&r, "Retry-After") != NULL, "%s:%d: a 503 without Retry-After",
                          file, line);
        }
        cv_test_response_free(&r);
        if (got == status) return;
        ck_assert_msg(mono_ms() < until, "%s:%d: %s %s not %ld within %ld ms", file, line, method, path, status,
                      within_ms);
        usleep(20 * 1000);
    }
}

/* ---- JSON ---- */

json_t *cv_t_json_at(json_t *root, const char *path)
{
    json_t *cur = root;
    const char *p = path;
    while (cur && *p) {
        size_t n = strcspn(p, ".");
        char key[256];
        if (n >= sizeof(key)) return NULL;
        memcpy(key, p, n);
        key[n] = '\0';
        if (json_is_array(cur)) {
            char *end;
            unsigned long i = strtoul(key, &end, 10);
            cur = (n && *end == '\0') ? json_array_get(cur, i) : NULL;
        } else {
            cur = json_object_get(cur, key);
        }
        p += n;
        if (*p == '.') p++;
    }
    return cur;
}

json_t *cv_t_json(const struct cv_test_response *r, const char *path)
{
    return cv_t_json_at(r->json, path);
}

const char *cv_t_json_str(const struct cv_test_response *r, const char *path)
{
    return json_string_value(cv_t_json_at(r->json, path));
}

void cv_t_expect_json_str_at(const char *file, int line, const struct cv_test_response *r, const char *path,
                             const char *want)
{
    const char *got = cv_t_json_str(r, path);
    ck_assert_msg(got && strcmp(got, want) == 0, "%s:%d: %s is %s%s%s, expected \"%s\"", file, line, path,
                  got ? "\"" : "", got ? got : "missing or not a string", got ? "\"" : "", want);
}

json_int_t cv_t_json_int_at(const char *file, int line, const struct cv_test_response *r, const char *path)
{
    json_t *v = cv_t_json(r, path);
    ck_assert_msg(json_is_integer(v), "%s:%d: %s is not an integer: %.2000s", file, line, path, r->body ? r->body : "");
    return json_integer_value(v);
}

void cv_t_expect_json_int_at(const char *file, int line, const struct cv_test_response *r, const char *path,
                             json_int_t want)
{
    json_int_t got = cv_t_json_int_at(file, line, r, path);
    ck_assert_msg(got == want, "%s:%d: %s is %" JSON_INTEGER_FORMAT ", expected %" JSON_INTEGER_FORMAT, file, line,
                  path, got, want);
}

void cv_t_expect_json_bool_at(const char *file, int line, const struct cv_test_response *r, const char *path, int want)
{
    json_t *v = cv_t_json(r, path);
    ck_assert_msg(json_is_boolean(v) && json_is_true(v) == !!want, "%s:%d: %s is not %s: %.2000s", file, line, path,
                  want ? "true" : "false", r->body ? r->body : "");
}

/* ---- fixtures ---- */

void cv_t_tenant_create_at(const char *file, int line, struct cv_test_client *c, const char *admin, const char *id)
{
    json_t *b = json_pack("{s:s, s:s}", "id", id, "name", id);
    char *body = json_dumps(b, JSON_COMPACT);
    json_decref(b);
    ck_assert_msg(body != NULL, "%s:%d: out of memory", file, line);
    cv_t_expect_call_at(file, line, c, "POST", "/api/tenants", admin, body, NULL, 201, NULL);
    cv_json_free(body);
}

void cv_t_token_mint_at(const char *file, int line, struct cv_test_client *c, const char *by, const char *name,
                        const char *role, const char *tenant, const char *server, char *out, size_t out_len)
{
    json_t *b = json_pack("{s:s, s:s}", "name", name, "role", role);
    if (b && tenant) json_object_set_new(b, "tenantId", json_string(tenant));
    if (b && server) json_object_set_new(b, "serverId", json_string(server));
    char *body = b ? json_dumps(b, JSON_COMPACT) : NULL;
    json_decref(b);
    ck_assert_msg(body != NULL, "%s:%d: out of memory", file, line);
    struct cv_test_response r = cv_t_request_at(file, line, c, "POST", "/api/tokens", by, body, NULL);
    cv_json_free(body);
    cv_t_expect_status_at(file, line, &r, 201, NULL);
    const char *t = cv_t_json_str(&r, "data.token");
    ck_assert_msg(t && strlen(t) < out_len, "%s:%d: no token in %.2000s", file, line, r.body);
    snprintf(out, out_len, "%s", t);
    cv_test_response_free(&r);
}

void cv_t_deploy_at(const char *file, int line, struct cv_test_client *c, const char *token, const char *tmpl,
                    const char *body, char *id, size_t id_len)
{
    char path[256];
    snprintf(path, sizeof(path), "/api/mcp/templates/%s/deploy", tmpl);
    struct cv_test_response r = cv_t_request_at(file, line, c, "POST", path, token, body, NULL);
    cv_t_expect_status_at(file, line, &r, 201, NULL);
    const char *got = cv_t_json_str(&r, "data.id");
    ck_assert_msg(got && strlen(got) < id_len, "%s:%d: no server id in %.2000s", file, line, r.body);
    snprintf(id, id_len, "%s", got);
    cv_test_response_free(&r);
}

void cv_t_unique_id(const char *prefix, char *out, size_t out_len)
{
    static unsigned n;
    snprintf(out, out_len, "%s-%ld-%u", prefix, (long)getpid(), n++);
}

/* ---- SQL ---- */

char *cv_t_psql_run(const char *url_var, const char *sql, int *status)
{
    const char *tmp = getenv("CV_TEST_TMP");
    char path[512];
    snprintf(path, sizeof(path), "%s/cv-t-sql.XXXXXX", tmp ? tmp : "/tmp");
    int fd = mkstemp(path);
    ck_assert_msg(fd >= 0, "cannot make a file for SQL in %s", tmp ? tmp : "/tmp");
    size_t n = strlen(sql);
    ssize_t w = write(fd, sql, n);
    close(fd);
    ck_assert_msg(w == (ssize_t)n, "cannot write %s", path);
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "psql -X -q -t -A -v ON_ERROR_STOP=1 \"$%s\" -f '%s' 2>&1; echo \"[psql-status=$?]\"",
             url_var ? url_var : "CV_PG_SUPERUSER_URL", path);
    char *out = cv_test_sh_output(cmd);
    unlink(path);
    ck_assert_msg(out != NULL, "cannot run psql");
    char *mark = strstr(out, "[psql-status=");
    ck_assert_msg(mark != NULL, "psql printed no status: %s", out);
    *status = atoi(mark + strlen("[psql-status="));
    *mark = '\0';
    out[strcspn(out, "\n")] = '\0';
    return out;
}

char *cv_t_psql_at(const char *file, int line, const char *url_var, const char *sql)
{
    int status;
    char *out = cv_t_psql_run(url_var, sql, &status);
    ck_assert_msg(status == 0, "%s:%d: psql failed (%d): %s\n  SQL: %.1000s", file, line, status, out, sql);
    return out;
}

long long cv_t_psql_int_at(const char *file, int line, const char *sql)
{
    char *out = cv_t_psql_at(file, line, NULL, sql);
    char *end;
    long long v = strtoll(out, &end, 10);
    ck_assert_msg(end != out && *end == '\0', "%s:%d: not a number: '%s'\n  SQL: %.1000s", file, line, out, sql);
    free(out);
    return v;
}

void cv_t_record_flip_at(const char *file, int line, const char *server_id, const char *member)
{
    char sql[1024];
    snprintf(sql, sizeof(sql),
             "UPDATE mcp_credentials SET encrypted_env = regexp_replace(encrypted_env, '(\"%s\":\")(.)', '\\1' || "
             "CASE WHEN substring(encrypted_env from '\"%s\":\"(.)') = '0' THEN '1' ELSE '0' END) "
             "WHERE server_id = '%s' RETURNING 1",
             member, member, server_id);
    char *out = cv_t_psql_at(file, line, NULL, sql);
    ck_assert_msg(strcmp(out, "1") == 0, "%s:%d: no record of %s was changed: %s", file, line, server_id, out);
    free(out);
}
