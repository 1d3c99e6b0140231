/* Several `credvault serve` processes on one database and one token folder
 * (one SOFTHSM2_CONF): a tenant key rotated through one is used for writes
 * by the other within a bounded time; a master rotation is picked up by the
 * other (over LISTEN/NOTIFY, again after its LISTEN connection was killed,
 * and by the periodic re-check when no notification comes); and rotations,
 * rewraps and a master rotation run while both serve reads and writes,
 * with no failed request and every record readable afterwards. */
#include <check.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_lifecycle_fixture.h"
#include "credvault/json_alloc.h"

#define BOUND_MS 10000 /* "within a bounded time" */
#define LOAD_THREADS 4
#define LOAD_MAX_RECORDS 256

static struct cv_test_service a, b;
static struct cv_test_client *ca, *cb;
static const char *admin;
static const struct lc_pair pair = {&a, &b, &ca, &cb, &admin};

static long master_of_new_tenant(struct cv_test_client *c, const char *id)
{
    cv_t_tenant_create(c, admin, id);
    char path[128];
    snprintf(path, sizeof(path), "/api/tenants/%s", id);
    struct cv_test_response r = cv_t_request(c, "GET", path, admin, NULL);
    cv_t_expect_status(&r, 200, NULL);
    long v = (long)json_integer_value(
        json_object_get(json_array_get(json_object_get(cv_t_data(&r), "keys"), 0), "masterVersion"));
    cv_test_response_free(&r);
    return v;
}

/* Creates tenants through `c` until one is wrapped under master `want`. */
static long long wait_master(struct cv_test_client *c, const char *prefix, long want)
{
    long long start = lc_now_ms();
    for (int i = 0; lc_now_ms() - start < BOUND_MS; i++) {
        char id[64];
        snprintf(id, sizeof(id), "%s-%d", prefix, i);
        if (master_of_new_tenant(c, id) == want) return lc_now_ms() - start;
        lc_sleep_ms(50);
    }
    ck_abort_msg("the instance did not pick up master key %ld within %d ms", want, BOUND_MS);
    return -1;
}

START_TEST(other_instance_writes_with_the_new_version)
{
    char tok[160], id[160], path[256];
    cv_t_tenant_create(ca, admin, "duo");
    cv_t_token_mint(ca, admin, "admin@duo", "tenant-admin", "duo", NULL, tok, sizeof(tok));
    ck_assert_int_eq(lc_deploy(cb, tok, "ghp_two_instances_0123456789abcdef", id, sizeof(id)), 0);
    ck_assert_int_eq(lc_key_version(cb, tok, id), 1);
    /* B has the version-1 key cached now; A rotates */
    cv_t_expect_call(ca, "POST", "/api/tenants/duo/keys/rotate", admin, NULL, 201, NULL);
    long long start = lc_now_ms();
    snprintf(path, sizeof(path), "/api/mcp/servers/%s/credentials", id);
    long v = 0;
    while (lc_now_ms() - start < BOUND_MS) {
        cv_t_expect_call(cb, "PUT", path, tok, "{\"env\":{\"GITHUB_TOKEN\":\"ghp_written_by_b_after_rotation_0\"}}",
                         200, NULL);
        if ((v = lc_key_version(cb, tok, id)) == 2) break;
        lc_sleep_ms(50);
    }
    ck_assert_int_eq(v, 2);
    char m[64];
    lc_masked(ca, tok, id, m, sizeof(m));
    lc_masked(cb, tok, id, m, sizeof(m));
    /* B heard of it and dropped its cached keys of the tenant */
    long long until = lc_now_ms() + BOUND_MS;
    while (!cv_test_service_log_contains(&b, "\"event\":\"key_cache_dropped\",\"tenant\":\"duo\"") &&
           lc_now_ms() < until)
        lc_sleep_ms(50);
    ck_assert(cv_test_service_log_contains(&b, "\"event\":\"key_cache_dropped\",\"tenant\":\"duo\""));

    /* shredding through A: B drops the tenant's keys too, and its tokens are refused there */
    cv_t_expect_call(ca, "DELETE", "/api/tenants/duo?confirm=duo", admin, NULL, 200, NULL);
    long long shredded = lc_now_ms();
    const char *needle = "\"tenant\":\"duo\",\"cause\":\"tenant_shredded\"";
    until = lc_now_ms() + BOUND_MS;
    while (!cv_test_service_log_contains(&b, needle) && lc_now_ms() < until) lc_sleep_ms(50);
    ck_assert(cv_test_service_log_contains(&b, needle));
    lc_answers_within(cb, "/api/mcp/servers", tok, 401, shredded, BOUND_MS);
}
END_TEST

START_TEST(master_rotation_reaches_the_other_instance)
{
    /* over NOTIFY, from whatever master version the database is at */
    long cur = (long)cv_t_psql_int("SELECT max(version) FROM master_keys");
    cv_t_expect_call(ca, "POST", "/api/admin/master-keys/rotate", admin, NULL, 202, NULL);
    wait_master(cb, "after-notify", cur + 1);
    /* B publishes the version before it logs the change: wait for the line */
    long long until = lc_now_ms() + BOUND_MS;
    while (!cv_test_service_log_contains(&b, "master_version_changed") && lc_now_ms() < until) lc_sleep_ms(50);
    ck_assert(cv_test_service_log_contains(&b, "master_version_changed"));

    /* with both LISTEN connections killed: the listener reconnects and
     * catches up from the event table */
    free(cv_t_psql("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                   "WHERE query = 'LISTEN credvault_keys'"));
    lc_sleep_ms(100);
    cv_t_expect_call(ca, "POST", "/api/admin/master-keys/rotate", admin, NULL, 202, NULL);
    wait_master(cb, "after-kill", cur + 2);

    /* an event that no notification announces: the periodic re-check
     * (CREDVAULT_KEY_RECHECK_S=1 on B) finds it */
    free(cv_t_psql("INSERT INTO key_events (kind, tenant_id) VALUES ('tenant_shredded', 'ghost-tenant')"));
    until = lc_now_ms() + BOUND_MS;
    while (!cv_test_service_log_contains(&b, "\"tenant\":\"ghost-tenant\"") && lc_now_ms() < until) lc_sleep_ms(50);
    ck_assert(cv_test_service_log_contains(&b, "\"tenant\":\"ghost-tenant\""));

    /* both instances finished the master rewraps between them */
    json_t *job = lc_wait_job(ca, admin, "/api/admin/master-keys/rewrap", LC_WAIT_MS);
    ck_assert_ptr_nonnull(job);
    ck_assert_str_eq(json_string_value(json_object_get(job, "state")), "done");
    json_decref(job);
    char sql[128];
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM tenant_keys WHERE master_version <> %ld AND state <> 'destroyed'",
             cur + 2);
    ck_assert_int_eq(cv_t_psql_int(sql), 0);
}
END_TEST

/* ---- rotation under load ---- */

struct load {
    int idx;
    const char *tok;
    struct cv_test_service *svc;
    atomic_int *stop;
    atomic_int failures;
    atomic_int requests;
    char (*ids)[160];
    atomic_int *ready; /* ids[i] is written */
    atomic_int *nids;
    char first_failure[512];
};

static void load_fail(struct load *l, const char *what, struct cv_test_response *r)
{
    if (atomic_fetch_add(&l->failures, 1) == 0)
        snprintf(l->first_failure, sizeof(l->first_failure), "%s: %ld %s %s", what, r->status,
                 r->body ? r->body : "", r->error);
}

static void *load_main(void *arg)
{
    struct load *l = arg;
    struct cv_test_client *c = cv_test_client_new(l->svc->base_url, l->svc->ca_file);
    unsigned seed = (unsigned)l->idx * 7919u + 1;
    for (int n = 0; !atomic_load(l->stop); n++) {
        struct cv_test_response r;
        memset(&r, 0, sizeof(r));
        char body[256], path[256];
        int op = n % 3, have = atomic_load(l->nids);
        if (op == 0 && have < LOAD_MAX_RECORDS) {
            snprintf(body, sizeof(body), "{\"env\":{\"GITHUB_TOKEN\":\"ghp_load_%d_%d_abcdefghijklmnop\"}}", l->idx, n);
            if (cv_test_request(c, "POST", "/api/mcp/templates/github/deploy", l->tok, body, NULL, &r) != 0 ||
                r.status != 201) {
                load_fail(l, "deploy", &r);
            } else {
                int slot = atomic_fetch_add(l->nids, 1);
                if (slot < LOAD_MAX_RECORDS) {
                    snprintf(l->ids[slot], 160, "%s", json_string_value(json_object_get(cv_t_data(&r), "id")));
                    atomic_store(&l->ready[slot], 1);
                }
            }
        } else if (have > 0) {
            int pick = (int)(rand_r(&seed) % (unsigned)(have < LOAD_MAX_RECORDS ? have : LOAD_MAX_RECORDS));
            /* each thread updates only its share, so no two race on one revision */
            if (op == 2) pick -= pick % LOAD_THREADS - l->idx;
            if (pick < 0 || pick >= LOAD_MAX_RECORDS || !atomic_load(&l->ready[pick])) {
                cv_test_response_free(&r);
                continue;
            }
            if (op == 1) {
                snprintf(path, sizeof(path), "/api/mcp/servers/%s/credentials", l->ids[pick]);
                if (cv_test_request(c, "GET", path, l->tok, NULL, NULL, &r) != 0 || r.status != 200)
                    load_fail(l, "read", &r);
            } else {
                snprintf(path, sizeof(path), "/api/mcp/servers/%s/credentials?merge=true", l->ids[pick]);
                snprintf(body, sizeof(body), "{\"env\":{\"GITHUB_ORG\":\"org-%d-%d\"}}", l->idx, n);
                if (cv_test_request(c, "PUT", path, l->tok, body, NULL, &r) != 0 || r.status != 200)
                    load_fail(l, "update", &r);
            }
        }
        atomic_fetch_add(&l->requests, 1);
        cv_test_response_free(&r);
    }
    cv_test_client_free(c);
    return NULL;
}

static int load_requests(struct load *loads)
{
    int n = 0;
    for (int i = 0; i < LOAD_THREADS; i++) n += atomic_load(&loads[i].requests);
    return n;
}

/* Waits for the load to answer n more requests: each step of the rotation
 * then overlaps real traffic however slow the machine is. */
static void wait_load_progress(struct load *loads, int n)
{
    int target = load_requests(loads) + n;
    for (int waited = 0; load_requests(loads) < target; waited += 10) {
        ck_assert_msg(waited < BOUND_MS, "the load answered fewer than %d requests in %d ms", n, BOUND_MS);
        lc_sleep_ms(10);
    }
}

static void wait_rewrap(struct cv_test_client *c, const char *path)
{
    json_t *job = lc_wait_job(c, admin, path, LC_WAIT_MS);
    ck_assert_msg(job != NULL, "%s did not finish", path);
    ck_assert_str_eq(json_string_value(json_object_get(job, "state")), "done");
    json_decref(job);
}

START_TEST(rotation_under_concurrent_reads_and_writes)
{
    char tok[160];
    static char ids[LOAD_MAX_RECORDS][160];
    static atomic_int ready[LOAD_MAX_RECORDS];
    atomic_int nids = 0, stop = 0;
    cv_t_tenant_create(ca, admin, "busy");
    cv_t_token_mint(ca, admin, "admin@busy", "tenant-admin", "busy", NULL, tok, sizeof(tok));
    for (int i = 0; i < 20; i++) {
        char v[64];
        snprintf(v, sizeof(v), "ghp_busy_seed_%02d_abcdefghijklmnopq", i);
        ck_assert_int_eq(lc_deploy(ca, tok, v, ids[i], sizeof(ids[i])), 0);
        atomic_store(&ready[i], 1);
    }
    atomic_store(&nids, 20);
    static struct load loads[LOAD_THREADS];
    pthread_t th[LOAD_THREADS];
    for (int i = 0; i < LOAD_THREADS; i++) {
        memset(&loads[i], 0, sizeof(loads[i]));
        loads[i].idx = i;
        loads[i].tok = tok;
        loads[i].svc = i % 2 ? &b : &a;
        loads[i].stop = &stop;
        loads[i].ids = ids;
        loads[i].ready = ready;
        loads[i].nids = &nids;
        ck_assert_int_eq(pthread_create(&th[i], NULL, load_main, &loads[i]), 0);
    }
    wait_load_progress(loads, 30);
    /* tenant rotations and rewraps through both instances, and a master
     * rotation, while both serve */
    cv_t_expect_call(ca, "POST", "/api/tenants/busy/keys/rotate", admin, NULL, 201, NULL);
    cv_t_expect_call(cb, "POST", "/api/tenants/busy/rewrap", admin, NULL, 202, NULL);
    wait_load_progress(loads, 20);
    cv_t_expect_call(cb, "POST", "/api/tenants/busy/keys/rotate", admin, NULL, 201, NULL);
    cv_t_expect_call(ca, "POST", "/api/admin/master-keys/rotate", admin, NULL, 202, NULL);
    wait_rewrap(ca, "/api/admin/master-keys/rewrap");
    cv_t_expect_call(ca, "POST", "/api/tenants/busy/keys/rotate", admin, NULL, 201, NULL);
    cv_t_expect_call(ca, "POST", "/api/tenants/busy/rewrap", admin, NULL, 202, NULL);
    wait_load_progress(loads, 30);
    atomic_store(&stop, 1);
    int failures = 0, requests = 0;
    for (int i = 0; i < LOAD_THREADS; i++) {
        pthread_join(th[i], NULL);
        failures += atomic_load(&loads[i].failures);
        requests += atomic_load(&loads[i].requests);
        if (loads[i].failures) fprintf(stderr, "load %d: %s\n", i, loads[i].first_failure);
    }
    ck_assert_int_ge(requests, 80); /* the three waits above, at the least */
    ck_assert_msg(failures == 0, "%d of %d requests failed", failures, requests);

    /* the last rewrap catches every record written under any older version */
    cv_t_expect_call(cb, "POST", "/api/tenants/busy/rewrap", admin, NULL, 202, NULL);
    wait_rewrap(cb, "/api/tenants/busy/rewrap");
    int n = atomic_load(&nids);
    if (n > LOAD_MAX_RECORDS) n = LOAD_MAX_RECORDS;
    ck_assert_int_eq(
        cv_t_psql_int("SELECT count(*) FROM mcp_credentials WHERE tenant_id = 'busy' AND key_version <> 4"), 0);
    for (int i = 0; i < n; i++) {
        char m[64];
        lc_masked(i % 2 ? cb : ca, tok, ids[i], m, sizeof(m));
        ck_assert_int_eq(lc_key_version(ca, tok, ids[i]), 4);
    }
    cv_t_expect_call(ca, "PUT", "/api/tenants/busy/min-decrypt-version", admin, "{\"version\":4}", 200, NULL);
    for (int i = 0; i < n; i++) {
        char m[64];
        lc_masked(i % 2 ? ca : cb, tok, ids[i], m, sizeof(m));
    }
}
END_TEST

static Suite *instances_suite(void)
{
    static const struct cv_t_suite_spec spec = {.name = "lifecycle_instances", .timeout_s = 300};
    return cv_t_suite_new(&spec, CV_T_TESTS(other_instance_writes_with_the_new_version,
                                            master_rotation_reaches_the_other_instance,
                                            rotation_under_concurrent_reads_and_writes));
}

int main(void)
{
    cv_json_alloc_install(); /* first: every entry point keeps JSON in secret memory */
    Suite *suite = instances_suite();
    static const char *const env_a[] = {"CREDVAULT_REWRAP_BATCH_SIZE=5", LC_NO_RATE_LIMITS, NULL};
    static const char *const env_b[] = {"CREDVAULT_REWRAP_BATCH_SIZE=5", "CREDVAULT_KEY_RECHECK_S=1",
                                        "CREDVAULT_LOG_LEVEL=debug", LC_NO_RATE_LIMITS, NULL};
    return lc_pair_run(&pair, suite, env_a, env_b);
}
