/* Rewrap jobs against concurrent writers, with the interleavings forced:
 * a tenant key wrapped under a master version that a rotation retired (an
 * instance that has not yet heard of it) is refused, so a master rewrap that
 * ended 'done' leaves no key behind; and a start whose running job ends
 * between "start" and "join" starts a new job instead of answering "not
 * found". Each case makes its own tenants and works from whatever master
 * version the database is at. */
#include <pthread.h>
#include <unistd.h>

#include "credvault/store_lifecycle.h"
#include "test_store_fixture.h"

static void setup(void)
{
    t_migrate();
    PGconn *pg = t_pg(t_super_url());
    long long have = t_int(pg, "SELECT count(*) FROM master_keys");
    PQfinish(pg);
    if (have == 0) {
        struct cv_store *st = t_open(t_app_url());
        t_seed_master(st, 1);
        cv_store_close(st);
    }
}

static const struct cv_audit_event platform_ev = {.actor = "admin@test", .role = "admin", .action = "test.change",
                                                 .target = "v", .outcome = "success"};

static uint32_t newest_master(void)
{
    PGconn *pg = t_pg(t_super_url());
    uint32_t v = (uint32_t)t_int(pg, "SELECT max(version) FROM master_keys WHERE state = 'active'");
    PQfinish(pg);
    return v;
}

static void create_tenant(struct cv_store *st, const char *id, uint32_t master, cv_err want)
{
    struct cv_tenant_row t;
    memset(&t, 0, sizeof(t));
    snprintf(t.id, sizeof(t.id), "%s", id);
    snprintf(t.name, sizeof(t.name), "Tenant %s", id);
    struct cv_tenant_key_row k;
    memset(&k, 0, sizeof(k));
    t_key_ref(&k.ref, id, 1, master, 0x21);
    snprintf(k.state, sizeof(k.state), "active");
    T_ERR(cv_store_tenant_create(st, &t, &k, "admin@test", NULL), want);
}

static cv_result make_master(void *arg, uint32_t version, struct cv_master_key_row *row)
{
    (void)arg;
    row->version = version;
    snprintf(row->state, sizeof(row->state), "active");
    t_key_ref(&row->canary, "_canary", 1, version, (uint8_t)(0xc0 + version));
    return CV_OK;
}

static cv_result rewrap_key(void *arg, const struct cv_key_ref *in, struct cv_key_ref *out)
{
    const uint32_t *target = arg;
    *out = *in;
    out->master_version = *target;
    return CV_OK;
}

static uint32_t rotate(struct cv_store *st, struct cv_key_job_row *job)
{
    uint32_t v = 0;
    memset(job, 0, sizeof(*job));
    T_OK(cv_store_lc_master_rotate(st, "admin@test", make_master, NULL, &platform_ev, &v, job));
    return v;
}

/* Runs the master rewrap to its end, as the service's worker does. */
static void finish_master_rewrap(struct cv_store *st, struct cv_key_job_row *job)
{
    struct cv_store_skip *skip = calloc(1, sizeof(*skip));
    ck_assert_ptr_nonnull(skip);
    unsigned n;
    uint32_t target = job->target_version;
    do {
        T_OK(cv_store_lc_master_rewrap_batch(st, job, 100, skip, rewrap_key, &target, &n));
    } while (n > 0);
    free(skip);
    int ended = 0;
    struct cv_audit_event ev = {.actor = "credvault", .role = "admin", .action = "master_key.rewrap",
                                .target = "master/", .outcome = "success"};
    T_OK(cv_store_lc_job_end(st, job, 0, &ev, &ended));
    ck_assert_int_eq(ended, 1);
    ck_assert_str_eq(job->state, "done");
}

START_TEST(stale_master_version_is_refused_after_rewrap_done)
{
    struct cv_store *st = t_open(t_app_url());
    uint32_t old = newest_master();
    create_tenant(st, "before-rotation", old, CV_ERR_NONE);
    struct cv_key_job_row job;
    uint32_t v = rotate(st, &job);
    ck_assert_uint_eq(v, old + 1);
    finish_master_rewrap(st, &job);

    /* an instance that has not heard of the rotation wraps under `old` */
    create_tenant(st, "stale-instance", old, CV_ERR_NOT_FOUND);
    struct cv_tenant_key_row next;
    memset(&next, 0, sizeof(next));
    t_key_ref(&next.ref, "before-rotation", 2, old, 0x31);
    snprintf(next.state, sizeof(next.state), "active");
    int added = 0;
    struct cv_audit_event ev = {.tenant_id = "before-rotation", .actor = "admin@test", .role = "admin",
                                .action = "tenant_key.rotate", .target = "before-rotation/", .outcome = "success"};
    T_ERR(cv_store_lc_tenant_key_add(st, &next, 1, &ev, &added), CV_ERR_NOT_FOUND);
    ck_assert_int_eq(added, 0);

    /* the job said done, and it is */
    PGconn *pg = t_pg(t_super_url());
    char sql[160];
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM tenant_keys WHERE master_version < %u AND state <> 'destroyed'",
             v);
    ck_assert_int_eq(t_int(pg, sql), 0);
    PQfinish(pg);
    /* under the newest version it goes through */
    create_tenant(st, "stale-instance", v, CV_ERR_NONE);
    cv_store_close(st);
}
END_TEST

/* A key whose transaction is open while a rotation runs: the rotation's
 * retirement waits for it, and its rewrap counts it. */
struct rot {
    struct cv_store *st;
    struct cv_key_job_row job;
    uint32_t v;
    cv_result r;
};

static void *rotate_main(void *arg)
{
    struct rot *x = arg;
    x->r = cv_store_lc_master_rotate(x->st, "admin@test", make_master, NULL, &platform_ev, &x->v, &x->job);
    cv_store_thread_done(x->st);
    return NULL;
}

static int waiting_backends(PGconn *pg, const char *locktype)
{
    char sql[160];
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM pg_locks WHERE NOT granted AND locktype = '%s'", locktype);
    return (int)t_int(pg, sql);
}

static void wait_for_waiter(PGconn *pg, const char *locktype)
{
    double until = t_now() + 30;
    while (waiting_backends(pg, locktype) == 0) {
        ck_assert_msg(t_now() < until, "nothing waited on a %s lock", locktype);
        usleep(10000);
    }
}

START_TEST(key_committed_during_rotation_is_rewrapped)
{
    struct cv_store *st = t_open(t_app_url());
    uint32_t old = newest_master();
    PGconn *w = t_pg(t_owner_url());
    char sql[512];
    snprintf(sql, sizeof(sql),
             "BEGIN; SELECT set_config('credvault.scope', 'platform', true);"
             "INSERT INTO tenants (id, name, created_by) VALUES ('mid-rotation', 'x', 'admin@test');"
             "INSERT INTO tenant_keys (tenant_id, version, master_version, wrapped_key, binding) "
             "VALUES ('mid-rotation', 1, %u, '\\x00', '\\x%064x')",
             old, 0);
    t_run(w, sql);
    struct rot x = {.st = st};
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, rotate_main, &x), 0);
    PGconn *watch = t_pg(t_super_url());
    wait_for_waiter(watch, "transactionid");
    t_run(w, "COMMIT");
    pthread_join(th, NULL);
    T_OK(x.r);
    ck_assert_uint_eq(x.v, old + 1);
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM tenant_keys WHERE master_version < %u AND state <> 'destroyed'",
             x.v);
    ck_assert_int_eq((long long)x.job.total, t_int(watch, sql));
    ck_assert_int_ge((long long)x.job.total, 1);
    PQfinish(watch);
    PQfinish(w);
    cv_store_close(st);
}
END_TEST

/* ---- start vs a job that ends in between ---- */

struct start {
    struct cv_store *st;
    struct cv_key_job_row job;
    int started;
    cv_result r;
};

static void *start_main(void *arg)
{
    struct start *x = arg;
    struct cv_audit_event ev = {.actor = "admin@test", .role = "admin", .action = "master_key.rewrap",
                                .target = "master/", .outcome = "success"};
    x->r = cv_store_lc_job_start(x->st, CV_JOB_MASTER_REWRAP, NULL, "admin@test", &ev, &x->job, &x->started);
    cv_store_thread_done(x->st);
    return NULL;
}

START_TEST(start_whose_running_job_ends_meanwhile_starts_anew)
{
    struct cv_store *st = t_open(t_app_url());
    create_tenant(st, "join-race", newest_master(), CV_ERR_NONE);
    struct cv_key_job_row job;
    uint32_t v = rotate(st, &job);
    ck_assert_str_eq(job.state, "running");

    /* a pause after every insert into key_jobs (even one that inserted
     * nothing), held on an advisory lock this test owns */
    PGconn *su = t_pg(t_super_url());
    t_run(su, "CREATE FUNCTION test_pause_after_insert() RETURNS trigger LANGUAGE plpgsql AS "
              "$$ BEGIN PERFORM pg_catalog.pg_advisory_xact_lock(4242); RETURN NULL; END $$");
    t_run(su, "CREATE TRIGGER key_jobs_test_pause AFTER INSERT ON key_jobs "
              "FOR EACH STATEMENT EXECUTE FUNCTION test_pause_after_insert()");
    t_run(su, "SELECT pg_advisory_lock(4242)");

    struct start x = {.st = st};
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, start_main, &x), 0);
    wait_for_waiter(su, "advisory"); /* its insert found the running job */
    char sql[160];
    snprintf(sql, sizeof(sql), "UPDATE key_jobs SET state = 'done', finished_at = now() WHERE id = %lld",
             (long long)job.id);
    t_run(su, sql);
    t_run(su, "SELECT pg_advisory_unlock(4242)");
    pthread_join(th, NULL);
    t_run(su, "DROP TRIGGER key_jobs_test_pause ON key_jobs");
    t_run(su, "DROP FUNCTION test_pause_after_insert()");

    T_OK(x.r);
    ck_assert_int_eq(x.started, 1);
    ck_assert_int_gt(x.job.id, job.id);
    ck_assert_uint_eq(x.job.target_version, v);
    ck_assert_str_eq(x.job.state, "running");
    PQfinish(su);
    finish_master_rewrap(st, &x.job);
    cv_store_close(st);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("store_jobs");
    TCase *tc = tcase_create("jobs");
    tcase_add_unchecked_fixture(tc, setup, NULL);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, stale_master_version_is_refused_after_rewrap_done);
    tcase_add_test(tc, key_committed_during_rotation_is_rewrapped);
    tcase_add_test(tc, start_whose_running_job_ends_meanwhile_starts_anew);
    suite_add_tcase(s, tc);
    return t_run_suite(s);
}
