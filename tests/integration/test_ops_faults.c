/* Faults of the database against the real service: the test's own
 * PostgreSQL cluster frozen with SIGSTOP (postmaster and every backend,
 * found through its postmaster.pid) answers nothing, yet requests get 503
 * with Retry-After within the deadline, /readyz 503 within a second,
 * /healthz 200 at once even with requests hanging on the database, and the
 * service serves again soon after SIGCONT. The log says the outage once,
 * then the recovery, not a line per request. And Idempotency-Key: a retry
 * of a deploy or an update, also after `kill -9` of serve (even when the
 * client never read the first answer), gets the first answer; the same key
 * with another body gets 409. */
#include <check.h>
#include <curl/curl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "test_ops_fixture.h"
#include "credvault/json_alloc.h"

#define DB_TIMEOUT_MS 1000 /* CREDVAULT_DATABASE_TIMEOUT_MS: the client gives up 1 s later */
#define DEADLINE_MS (DB_TIMEOUT_MS + 1000)

/* one worker: the case times one process's database breaker (each worker of
 * several has its own, so each pays one deadline before it opens) */
static const char *const env[] = {"CREDVAULT_DATABASE_TIMEOUT_MS=1000", "CREDVAULT_THREADS=2", "CREDVAULT_WORKERS=1",
                                  NULL};
static char tenant[64], tok[160];

/* ---- freezing this test's cluster only ---- */

static pid_t stopped[256];
static size_t nstopped;

static void thaw(void)
{
    for (size_t i = 0; i < nstopped; i++) kill(stopped[i], SIGCONT);
    nstopped = 0;
}

static void freeze(void)
{
    /* the postmaster of $CV_PG_DIR (first line of its pid file), then its children */
    char *out = cv_test_sh_output("pm=$(head -n 1 \"$CV_PG_DIR/data/postmaster.pid\") && echo $pm && "
                                  "cat /proc/[0-9]*/stat 2>/dev/null | awk -v pm=$pm '$4 == pm {print $1}'");
    ck_assert_ptr_nonnull(out);
    char *save = NULL;
    for (char *line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        pid_t pid = (pid_t)atol(line);
        if (pid <= 1 || nstopped == sizeof(stopped) / sizeof(stopped[0])) continue;
        if (kill(pid, SIGSTOP) == 0) stopped[nstopped++] = pid;
    }
    free(out);
    ck_assert_uint_ge(nstopped, 2); /* the postmaster and at least one backend */
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* After a case that froze the database: served again before the next case
 * (the breaker lets the first probe through within half a second). */
static void thaw_and_wait(void)
{
    int frozen = nstopped > 0;
    thaw();
    if (!frozen) return;
    long long t0 = now_ms();
    for (;;) {
        struct cv_test_response r = cv_t_request(cl, "GET", "/readyz", NULL, NULL);
        long st = r.status;
        cv_test_response_free(&r);
        if (st == 200) break;
        ck_assert_msg(now_ms() - t0 < 10000, "/readyz not 200 within 10 s of the thaw");
        sleep_ms(100);
    }
}

/* A request's status and how long the service took to answer it: from the
 * request sent to the answer, without this (busy) client's connect and TLS
 * handshake, which no database deadline bounds. */
static long timed(struct cv_test_client *c, const char *path, const char *token, long long *ms,
                  char *retry_after, size_t ra_len)
{
    struct cv_test_response r;
    memset(&r, 0, sizeof(r));
    ck_assert_int_eq(cv_test_request(c, "GET", path, token, NULL, NULL, &r), 0);
    *ms = (long long)r.answer_ms;
    long status = r.status;
    if (retry_after) {
        const char *v = cv_test_response_header(&r, "Retry-After");
        snprintf(retry_after, ra_len, "%s", v ? v : "");
    }
    cv_test_response_free(&r);
    return status;
}

struct hang {
    pthread_t th;
    long status;
    long long ms;
};

static void *hang_main(void *arg)
{
    struct hang *h = arg;
    struct cv_test_client *c = cv_test_client_new(svc.base_url, svc.ca_file);
    h->status = timed(c, "/api/mcp/servers", tok, &h->ms, NULL, 0);
    cv_test_client_free(c);
    return NULL;
}

static void fresh_actors(void)
{
    cv_t_unique_id("frozen", tenant, sizeof(tenant));
    cv_t_tenant_create(cl, svc.admin_token, tenant);
    cv_t_token_mint(cl, svc.admin_token, "alice@frozen.example", "tenant-admin", tenant, NULL, tok, sizeof(tok));
    cv_t_expect_call(cl, "POST", "/api/mcp/templates/github/deploy", tok,
                     "{\"env\":{\"GITHUB_TOKEN\":\"ghp_frozen_database_0123456789abcdef\"}}", 201, NULL);
}

START_TEST(frozen_database_answers_503_within_the_deadline)
{
    cv_t_expect_call(cl, "GET", "/readyz", NULL, NULL, 200, NULL);
    long long start_log = cv_t_psql_int("SELECT 1"); /* the cluster answers before the freeze */
    ck_assert_int_eq(start_log, 1);
    freeze();
    long long ms;
    char ra[16];

    /* the first request waits for the deadline, not for the thaw */
    long st = timed(cl, "/api/mcp/servers", tok, &ms, ra, sizeof(ra));
    ck_assert_int_eq(st, 503);
    ck_assert_str_eq(ra, "1");
    ck_assert_msg(ms < DEADLINE_MS + 1500, "first request took %lld ms", ms);

    /* requests that hang on the database do not hold /healthz */
    struct hang h[4];
    for (int i = 0; i < 4; i++) ck_assert_int_eq(pthread_create(&h[i].th, NULL, hang_main, &h[i]), 0);
    sleep_ms(100);
    long long worst_health = 0, worst_ready = 0;
    for (int i = 0; i < 5; i++) {
        ck_assert_int_eq(timed(cl, "/healthz", NULL, &ms, NULL, 0), 200);
        if (ms > worst_health) worst_health = ms;
        ck_assert_int_eq(timed(cl, "/readyz", NULL, &ms, ra, sizeof(ra)), 503);
        ck_assert_str_eq(ra, "1");
        if (ms > worst_ready) worst_ready = ms;
        sleep_ms(200);
    }
    for (int i = 0; i < 4; i++) pthread_join(h[i].th, NULL);
    fprintf(stderr, "frozen: /healthz at most %lld ms, /readyz at most %lld ms, four requests together %lld %lld %lld %lld ms\n",
            worst_health, worst_ready, h[0].ms, h[1].ms, h[2].ms, h[3].ms);
    for (int i = 0; i < 4; i++) {
        ck_assert_int_eq(h[i].status, 503);
        ck_assert_msg(h[i].ms < DEADLINE_MS + 1500, "a request took %lld ms", h[i].ms);
    }
    ck_assert_msg(worst_health < 300, "/healthz took %lld ms", worst_health);
    ck_assert_msg(worst_ready < 1000, "/readyz took %lld ms", worst_ready);

    /* many more during the freeze: each fails at once, and the log does not grow per request */
    for (int i = 0; i < 50; i++) {
        ck_assert_int_eq(timed(cl, "/api/mcp/servers", tok, &ms, NULL, 0), 503);
        ck_assert_msg(ms < DEADLINE_MS + 1500, "request %d took %lld ms", i, ms);
    }
    thaw();

    /* served again soon after */
    long long t0 = now_ms();
    while (timed(cl, "/api/mcp/servers", tok, &ms, NULL, 0) != 200) {
        ck_assert_msg(now_ms() - t0 < 10000, "not served again within 10 s of the thaw");
        sleep_ms(100);
    }
    t0 = now_ms();
    while (timed(cl, "/readyz", NULL, &ms, NULL, 0) != 200) {
        ck_assert_msg(now_ms() - t0 < 5000, "/readyz not 200 within 5 s of the thaw");
        sleep_ms(100);
    }
    ck_assert(cv_test_service_log_contains(&svc, "\"event\":\"db_unavailable\""));
    ck_assert(cv_test_service_log_contains(&svc, "\"event\":\"db_recovered\""));
    char *n = cv_test_sh_output("grep -c '\"event\":\"db_connection_lost\"' \"$CV_TEST_TMP\"/service/serve-*.log "
                                "| awk -F: '{s += $NF} END {print s + 0}'");
    ck_assert_msg(atoi(n) < 20, "%d db_connection_lost lines for about 55 failed requests", atoi(n));
    free(n);
}
END_TEST


/* ---- Idempotency-Key ---- */

#define DEPLOY "/api/mcp/templates/github/deploy"
#define BODY_A "{\"env\":{\"GITHUB_TOKEN\":\"ghp_idempotent_first_0123456789abcdef\"}}"
#define BODY_B "{\"env\":{\"GITHUB_TOKEN\":\"ghp_idempotent_other_0123456789abcdef\"}}"

static long long servers_of(const char *t)
{
    struct cv_test_response r = cv_t_request(cl, "GET", "/api/mcp/servers?limit=100", t, NULL);
    cv_t_expect_status(&r, 200, NULL);
    long long n = (long long)json_array_size(cv_t_data(&r));
    cv_test_response_free(&r);
    return n;
}

static void deploy_with_key(const char *t, const char *key, const char *body, long want, char *id, size_t id_len)
{
    char h[320];
    snprintf(h, sizeof(h), "Idempotency-Key: %s", key);
    const char *headers[] = {h, NULL};
    struct cv_test_response r = cv_t_request_h(cl, "POST", DEPLOY, t, body, headers);
    cv_t_expect_status(&r, want, want == 409 ? "idempotency_key_reused" : NULL);
    if (id) snprintf(id, id_len, "%s", json_string_value(json_object_get(cv_t_data(&r), "id")));
    cv_test_response_free(&r);
}

START_TEST(deploy_retried_with_the_same_key_makes_one_server)
{
    char first[160], again[160], other[160];
    long long before = servers_of(tok);
    deploy_with_key(tok, "deploy-key-1", BODY_A, 201, first, sizeof(first));
    deploy_with_key(tok, "deploy-key-1", BODY_A, 201, again, sizeof(again));
    ck_assert_str_eq(first, again);
    ck_assert_int_eq(servers_of(tok), before + 1);
    /* the same key for another request */
    deploy_with_key(tok, "deploy-key-1", BODY_B, 409, NULL, 0);
    ck_assert_int_eq(servers_of(tok), before + 1);
    /* another token's keys are its own */
    char tok2[160];
    cv_t_token_mint(cl, svc.admin_token, "bob@frozen.example", "tenant-admin", tenant, NULL, tok2, sizeof(tok2));
    deploy_with_key(tok2, "deploy-key-1", BODY_A, 201, other, sizeof(other));
    ck_assert_str_ne(first, other);
    /* a key that is not printable ASCII is refused */
    deploy_with_key(tok, "bad key", BODY_A, 400, NULL, 0);
    /* nothing of the body is kept: only its hash */
    ck_assert_int_eq(cv_t_psql_int("SELECT count(*) FROM idempotency_keys WHERE octet_length(request_hash) = 32"),
                     cv_t_psql_int("SELECT count(*) FROM idempotency_keys"));

    /* serve killed (-9) after answering: the key outlives the process */
    int st;
    kill(svc.pid, SIGKILL);
    waitpid(svc.pid, &st, 0);
    svc.pid = 0;
    ck_assert_int_eq(cv_test_service_start(&svc, env), 0);
    cv_test_client_free(cl);
    cl = cv_test_client_new(svc.base_url, svc.ca_file);
    deploy_with_key(tok, "deploy-key-1", BODY_A, 201, again, sizeof(again));
    ck_assert_str_eq(first, again);
    ck_assert_int_eq(servers_of(tok), before + 2); /* this token's one and bob's */
}
END_TEST

/* Sends a deploy over a connection of its own and returns at once: the
 * answer is never read, as when a client times out or its process dies. */
static CURL *deploy_unread(const char *t, const char *key, const char *body)
{
    CURL *h = curl_easy_init();
    ck_assert_ptr_nonnull(h);
    curl_easy_setopt(h, CURLOPT_URL, svc.base_url);
    curl_easy_setopt(h, CURLOPT_CAINFO, svc.ca_file);
    curl_easy_setopt(h, CURLOPT_CONNECT_ONLY, 1L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 10L);
    ck_assert_int_eq(curl_easy_perform(h), CURLE_OK);
    char req[2048];
    int n = snprintf(req, sizeof(req),
                     "POST " DEPLOY " HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nIdempotency-Key: %s\r\n"
                     "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
                     svc.base_url + strlen("https://"), t, key, strlen(body), body);
    ck_assert(n > 0 && (size_t)n < sizeof(req));
    curl_socket_t sock;
    ck_assert_int_eq(curl_easy_getinfo(h, CURLINFO_ACTIVESOCKET, &sock), CURLE_OK);
    for (size_t off = 0; off < (size_t)n;) {
        size_t sent = 0;
        CURLcode rc = curl_easy_send(h, req + off, (size_t)n - off, &sent);
        if (rc == CURLE_AGAIN) {
            struct pollfd pfd = {.fd = sock, .events = POLLOUT};
            ck_assert_int_ge(poll(&pfd, 1, 10000), 1);
            continue;
        }
        ck_assert_msg(rc == CURLE_OK, "send: %s", curl_easy_strerror(rc));
        off += sent;
    }
    return h;
}

START_TEST(deploy_committed_but_answer_lost_is_retried_once)
{
    char sql[512], id[160], again[160];
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM mcp_credentials WHERE tenant_id = '%s'", tenant);
    long long before = cv_t_psql_int(sql);
    CURL *lost = deploy_unread(tok, "lost-answer-key", BODY_A);

    /* committed: the key's row commits in the deploy's own transaction */
    char key_sql[512];
    snprintf(key_sql, sizeof(key_sql),
             "SELECT coalesce(max(server_id), '') FROM idempotency_keys WHERE tenant_id = '%s' "
             "AND idem_key = 'lost-answer-key'",
             tenant);
    long long t0 = now_ms();
    for (;;) {
        char *out = cv_t_psql(key_sql);
        snprintf(id, sizeof(id), "%s", out);
        free(out);
        if (id[0]) break;
        ck_assert_msg(now_ms() - t0 < 30000, "the deploy was not committed within 30 s");
        sleep_ms(20);
    }

    /* serve dies before the client read a byte of the answer */
    int st;
    kill(svc.pid, SIGKILL);
    waitpid(svc.pid, &st, 0);
    svc.pid = 0;
    curl_easy_cleanup(lost);
    ck_assert_int_eq(cv_test_service_start(&svc, env), 0);
    cv_test_client_free(cl);
    cl = cv_test_client_new(svc.base_url, svc.ca_file);

    /* the retry gets the committed server, and no second one is made */
    deploy_with_key(tok, "lost-answer-key", BODY_A, 201, again, sizeof(again));
    ck_assert_str_eq(again, id);
    ck_assert_int_eq(cv_t_psql_int(sql), before + 1);
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM mcp_credentials WHERE tenant_id = '%s' AND server_id = '%s'",
             tenant, id);
    ck_assert_int_eq(cv_t_psql_int(sql), 1);
}
END_TEST

START_TEST(update_retried_with_the_same_key_applies_once)
{
    char id[160], path[256], h[64];
    deploy_with_key(tok, "deploy-for-update", BODY_A, 201, id, sizeof(id));
    snprintf(path, sizeof(path), "/api/mcp/servers/%s/credentials?merge=true", id);
    snprintf(h, sizeof(h), "Idempotency-Key: update-key-1");
    const char *headers[] = {h, NULL};
    const char *body = "{\"env\":{\"GITHUB_ORG\":\"org-once\"}}";
    struct cv_test_response r = cv_t_request_h(cl, "PUT", path, tok, body, headers);
    cv_t_expect_status(&r, 200, NULL);
    cv_test_response_free(&r);
    char sql[320];
    snprintf(sql, sizeof(sql), "SELECT revision FROM mcp_credentials WHERE server_id = '%s'", id);
    long long once = cv_t_psql_int(sql);
    r = cv_t_request_h(cl, "PUT", path, tok, body, headers);
    cv_t_expect_status(&r, 200, NULL);
    ck_assert_str_eq(json_string_value(json_object_get(cv_t_data(&r), "id")), id);
    cv_test_response_free(&r);
    ck_assert_int_eq(cv_t_psql_int(sql), once); /* not applied a second time */
    r = cv_t_request_h(cl, "PUT", path, tok, "{\"env\":{\"GITHUB_ORG\":\"org-twice\"}}", headers);
    cv_t_expect_status(&r, 409, "idempotency_key_reused");
    cv_test_response_free(&r);
    ck_assert_int_eq(cv_t_psql_int(sql), once);
}
END_TEST

static Suite *faults_suite(void)
{
    static const struct cv_t_suite_spec spec = {
        .name = "ops_faults", .timeout_s = 120, .setup = fresh_actors, .teardown = thaw_and_wait};
    return cv_t_suite_new(&spec, CV_T_TESTS(frozen_database_answers_503_within_the_deadline,
                                                 deploy_retried_with_the_same_key_makes_one_server,
                                                 deploy_committed_but_answer_lost_is_retried_once,
                                                 update_retried_with_the_same_key_applies_once));
}

int main(void)
{
    cv_json_alloc_install(); /* first: every entry point keeps JSON in secret memory */
    Suite *suite = faults_suite();
    if (cv_test_service_start(&svc, env) != 0) return 1;
    cl = cv_test_client_new(svc.base_url, svc.ca_file);
    int failed = cv_t_suite_run(suite, CK_NOFORK);
    thaw();
    cv_test_client_free(cl);
    int st = cv_test_service_stop(&svc);
    if (st != 0) {
        fprintf(stderr, "credvault serve exited with %d (log: %s)\n", st, svc.log_file);
        cv_test_sh("tail -n 30 \"$CV_TEST_TMP\"/service/serve-*.log >&2");
        failed++;
    }
    return failed ? 1 : 0;
}
