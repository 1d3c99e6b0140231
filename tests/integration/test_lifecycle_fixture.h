/* Helpers shared by the key-lifecycle integration tests: HTTPS calls against
 * a running `credvault serve`, envelope checks, deploys, psql as the
 * superuser, and bounded waits for rewrap jobs. Static, header-only: each
 * test file is its own program. */
#ifndef CV_TEST_LIFECYCLE_FIXTURE_H
#define CV_TEST_LIFECYCLE_FIXTURE_H

#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cv_test_http.h"
#include "cv_test_service.h"

#define LC_WAIT_MS 60000 /* every wait in these tests is bounded by this */
/* These tests drive many admin calls and a burst of writes from one token and
 * one address; rate limiting is tested elsewhere. */
#define LC_NO_RATE_LIMITS                                                                                      \
    "CREDVAULT_RATE_READ_PER_S=0", "CREDVAULT_RATE_WRITE_PER_S=0", "CREDVAULT_RATE_ADMIN_PER_S=0",            \
        "CREDVAULT_RATE_ADDRESS_FACTOR=0"
static const char *const lc_default_env[] = {LC_NO_RATE_LIMITS, NULL};

static inline void lc_sleep_ms(unsigned ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static inline long long lc_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static inline struct cv_test_response lc_call(struct cv_test_client *cl, const char *method, const char *path,
                                              const char *token, const char *body)
{
    struct cv_test_response r;
    memset(&r, 0, sizeof(r));
    ck_assert_msg(cv_test_request(cl, method, path, token, body, NULL, &r) == 0, "transport: %s", r.error);
    return r;
}

static inline json_t *lc_data(struct cv_test_response *r) { return json_object_get(r->json, "data"); }

static inline const char *lc_error_code(struct cv_test_response *r)
{
    return json_string_value(json_object_get(json_object_get(r->json, "error"), "code"));
}

static inline const char *lc_error_message(struct cv_test_response *r)
{
    return json_string_value(json_object_get(json_object_get(r->json, "error"), "message"));
}

/* Asserts status, the envelope and (for errors, when given) the code. */
static inline void lc_expect(struct cv_test_response *r, long status, const char *code)
{
    ck_assert_msg(r->status == status, "expected %ld, got %ld: %s", status, r->status, r->body);
    ck_assert_ptr_nonnull(r->json);
    if (status < 300) {
        ck_assert(json_is_true(json_object_get(r->json, "success")));
    } else {
        ck_assert(json_is_false(json_object_get(r->json, "success")));
        if (code) ck_assert_msg(lc_error_code(r) && strcmp(lc_error_code(r), code) == 0, "expected code %s: %s", code,
                                r->body);
    }
}

static inline void lc_expect_call(struct cv_test_client *cl, const char *method, const char *path, const char *token,
                                  const char *body, long status, const char *code)
{
    struct cv_test_response r = lc_call(cl, method, path, token, body);
    lc_expect(&r, status, code);
    cv_test_response_free(&r);
}

static inline void lc_create_tenant(struct cv_test_client *cl, const char *admin, const char *id)
{
    char body[160];
    snprintf(body, sizeof(body), "{\"id\":\"%s\",\"name\":\"%s\"}", id, id);
    lc_expect_call(cl, "POST", "/api/tenants", admin, body, 201, NULL);
}

static inline void lc_mint(struct cv_test_client *cl, const char *admin, const char *name, const char *role,
                           const char *tenant, const char *server, char *out, size_t out_len)
{
    char body[512];
    snprintf(body, sizeof(body), "{\"name\":\"%s\",\"role\":\"%s\",\"tenantId\":\"%s\"%s%s%s}", name, role, tenant,
             server ? ",\"serverId\":\"" : "", server ? server : "", server ? "\"" : "");
    struct cv_test_response r = lc_call(cl, "POST", "/api/tokens", admin, body);
    lc_expect(&r, 201, NULL);
    snprintf(out, out_len, "%s", json_string_value(json_object_get(lc_data(&r), "token")));
    cv_test_response_free(&r);
}

/* Deploys a github server whose token is `value`; returns its id in `id`. */
static inline int lc_deploy(struct cv_test_client *cl, const char *token, const char *value, char *id, size_t id_len)
{
    char body[512];
    snprintf(body, sizeof(body), "{\"env\":{\"GITHUB_TOKEN\":\"%s\",\"GITHUB_ORG\":\"acme-org\"}}", value);
    struct cv_test_response r;
    memset(&r, 0, sizeof(r));
    int rc = cv_test_request(cl, "POST", "/api/mcp/templates/github/deploy", token, body, NULL, &r);
    int ok = rc == 0 && r.status == 201;
    if (ok && id) snprintf(id, id_len, "%s", json_string_value(json_object_get(lc_data(&r), "id")));
    if (!ok) fprintf(stderr, "deploy failed: %ld %s %s\n", r.status, r.body ? r.body : "", r.error);
    cv_test_response_free(&r);
    return ok ? 0 : -1;
}

/* The keyVersion of a server, from GET /api/mcp/servers/:id. */
static inline long lc_key_version(struct cv_test_client *cl, const char *token, const char *server)
{
    char path[256];
    snprintf(path, sizeof(path), "/api/mcp/servers/%.160s", server);
    struct cv_test_response r = lc_call(cl, "GET", path, token, NULL);
    lc_expect(&r, 200, NULL);
    long v = (long)json_integer_value(json_object_get(lc_data(&r), "keyVersion"));
    cv_test_response_free(&r);
    return v;
}

/* The masked GITHUB_TOKEN of a server (decrypts it); asserts 200. */
static inline void lc_masked(struct cv_test_client *cl, const char *token, const char *server, char *out, size_t len)
{
    char path[256];
    snprintf(path, sizeof(path), "/api/mcp/servers/%.160s/credentials", server);
    struct cv_test_response r = lc_call(cl, "GET", path, token, NULL);
    lc_expect(&r, 200, NULL);
    const char *m = json_string_value(json_object_get(json_object_get(lc_data(&r), "credentials"), "GITHUB_TOKEN"));
    ck_assert_ptr_nonnull(m);
    snprintf(out, len, "%s", m);
    cv_test_response_free(&r);
}

/* psql as the superuser (bypasses row-level security); first line of its
 * output, errors included. The SQL goes through a file: records hold quotes. */
static inline char *lc_psql(const char *sql)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/lc-sql.XXXXXX", getenv("CV_TEST_TMP") ? getenv("CV_TEST_TMP") : "/tmp");
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    size_t n = strlen(sql);
    ck_assert_int_eq(write(fd, sql, n), (ssize_t)n);
    close(fd);
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "psql -X -q -t -A -v ON_ERROR_STOP=1 \"$CV_PG_SUPERUSER_URL\" -f '%s' 2>&1", path);
    char *out = cv_test_sh_output(cmd);
    unlink(path);
    ck_assert_ptr_nonnull(out);
    out[strcspn(out, "\n")] = '\0';
    return out;
}

static inline long long lc_psql_int(const char *sql)
{
    char *out = lc_psql(sql);
    char *end;
    long long v = strtoll(out, &end, 10);
    ck_assert_msg(end != out, "psql: %s -> %s", sql, out);
    free(out);
    return v;
}

/* Polls GET `path` (a job document) until its state is no longer running;
 * returns the final document (caller decrefs), or NULL on timeout. */
static inline json_t *lc_wait_job(struct cv_test_client *cl, const char *token, const char *path, unsigned max_ms)
{
    long long until = lc_now_ms() + max_ms;
    while (lc_now_ms() < until) {
        struct cv_test_response r = lc_call(cl, "GET", path, token, NULL);
        if (r.status == 200) {
            json_t *d = lc_data(&r);
            const char *state = json_string_value(json_object_get(d, "state"));
            if (state && strcmp(state, "running") != 0) {
                json_t *keep = json_incref(d);
                cv_test_response_free(&r);
                return keep;
            }
        }
        cv_test_response_free(&r);
        lc_sleep_ms(100);
    }
    return NULL;
}

/* SIGKILL to a child this test started, and reap it. */
static inline void lc_kill9(pid_t *pid)
{
    ck_assert_int_gt(*pid, 0);
    kill(*pid, SIGKILL);
    int st;
    waitpid(*pid, &st, 0);
    ck_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    *pid = 0;
}

#endif
