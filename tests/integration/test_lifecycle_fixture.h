/* Helpers shared by the key-lifecycle integration tests, on top of
 * cv_test_api.h: deploys and reads of a github server, bounded waits for
 * rewrap jobs, a kill -9 of a child. Static, header-only: each test file is
 * its own program. */
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

#include "cv_test_api.h"
#include "cv_test_service.h"
#include "cv_test_suite.h"

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

static inline const char *lc_error_message(struct cv_test_response *r)
{
    return cv_t_json_str(r, "error.message");
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
    if (ok && id) snprintf(id, id_len, "%s", json_string_value(json_object_get(cv_t_data(&r), "id")));
    if (!ok) fprintf(stderr, "deploy failed: %ld %s %s\n", r.status, r.body ? r.body : "", r.error);
    cv_test_response_free(&r);
    return ok ? 0 : -1;
}

/* The keyVersion of a server, from GET /api/mcp/servers/:id. */
static inline long lc_key_version(struct cv_test_client *cl, const char *token, const char *server)
{
    char path[256];
    snprintf(path, sizeof(path), "/api/mcp/servers/%.160s", server);
    struct cv_test_response r = cv_t_request(cl, "GET", path, token, NULL);
    cv_t_expect_status(&r, 200, NULL);
    long v = (long)json_integer_value(json_object_get(cv_t_data(&r), "keyVersion"));
    cv_test_response_free(&r);
    return v;
}

/* The masked GITHUB_TOKEN of a server (decrypts it); asserts 200. */
static inline void lc_masked(struct cv_test_client *cl, const char *token, const char *server, char *out, size_t len)
{
    char path[256];
    snprintf(path, sizeof(path), "/api/mcp/servers/%.160s/credentials", server);
    struct cv_test_response r = cv_t_request(cl, "GET", path, token, NULL);
    cv_t_expect_status(&r, 200, NULL);
    const char *m = json_string_value(json_object_get(json_object_get(cv_t_data(&r), "credentials"), "GITHUB_TOKEN"));
    ck_assert_ptr_nonnull(m);
    snprintf(out, len, "%s", m);
    cv_test_response_free(&r);
}

/* Until `path` answers `status` on every worker of the instance: each
 * worker hears the key event on its own, so a request may reach one that
 * has not yet; the bound counts from `since`. */
static inline long long lc_answers_within(struct cv_test_client *c, const char *path, const char *token, long status,
                                long long since, long long bound_ms)
{
    long got = 0;
    for (;;) {
        struct cv_test_response r = cv_t_request(c, "GET", path, token, NULL);
        got = r.status;
        cv_test_response_free(&r);
        if (got == status || lc_now_ms() - since > bound_ms) break;
        lc_sleep_ms(20);
    }
    ck_assert_msg(got == status, "GET %s answered %ld, not %ld, %lld ms after the change", path, got, status,
                  lc_now_ms() - since);
    return lc_now_ms() - since;
}

/* Polls GET `path` (a job document) until its state is no longer running;
 * returns the final document (caller decrefs), or NULL on timeout. */
static inline json_t *lc_wait_job(struct cv_test_client *cl, const char *token, const char *path, unsigned max_ms)
{
    long long until = lc_now_ms() + max_ms;
    while (lc_now_ms() < until) {
        struct cv_test_response r = cv_t_request(cl, "GET", path, token, NULL);
        if (r.status == 200) {
            json_t *d = cv_t_data(&r);
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

/* Two instances of the service on one database and token, A and B, for
 * the cases of a suite, which share the instances, a client of each and
 * A's admin token through the test's own variables. Runs the suite in this
 * process and stops both; an instance that did not exit cleanly fails it. */
struct lc_pair {
    struct cv_test_service *a, *b;
    struct cv_test_client **ca, **cb;
    const char **admin;
};

static inline int lc_pair_run(const struct lc_pair *p, Suite *suite, const char *const *env_a,
                              const char *const *env_b)
{
    if (cv_test_service_start(p->a, env_a) != 0) return 1;
    if (cv_test_service_start(p->b, env_b) != 0) return 1;
    *p->admin = p->a->admin_token;
    *p->ca = cv_test_client_new(p->a->base_url, p->a->ca_file);
    *p->cb = cv_test_client_new(p->b->base_url, p->b->ca_file);
    int failed = cv_t_suite_run(suite, CK_NOFORK);
    cv_test_client_free(*p->ca);
    cv_test_client_free(*p->cb);
    struct cv_test_service *both[] = {p->a, p->b};
    for (int i = 0; i < 2; i++) {
        int st = cv_test_service_stop(both[i]);
        if (st != 0) {
            fprintf(stderr, "credvault serve exited with %d (log: %s)\n", st, both[i]->log_file);
            failed++;
        }
    }
    return failed ? 1 : 0;
}

#endif
