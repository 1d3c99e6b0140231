/* The store across database outages: a killed backend or a restart is
 * healed on the next call without an error; while the server is down every
 * call fails fast with CV_ERR_UNAVAILABLE; once it is back, calls succeed. */
#include <pthread.h>
#include <unistd.h>

#include "test_store_fixture.h"

static void cluster(const char *verb)
{
    char cmd[2048];
    snprintf(cmd, sizeof(cmd), "'%s/scripts/pg-cluster' %s '%s' >/dev/null", t_env("CV_SOURCE_DIR"), verb,
             t_env("CV_PG_DIR"));
    ck_assert_msg(system(cmd) == 0, "pg-cluster %s failed", verb);
}

static void setup(void)
{
    t_migrate();
    struct cv_store *st = t_open(t_app_url());
    t_seed_master(st, 1);
    t_seed_tenant(st, "acme");
    cv_store_close(st);
}

/* Each test's store names its connections, so nothing else (a backend of
 * an earlier test still on its way out) is counted or killed. */
static struct cv_store *open_named(const char *app, unsigned statement_timeout_ms)
{
    static char url[2048];
    snprintf(url, sizeof(url), "%s&application_name=%s", t_app_url(), app);
    struct cv_store_options o = {.url = url, .statement_timeout_ms = statement_timeout_ms};
    struct cv_store *st = NULL;
    T_OK(cv_store_open(&o, &st));
    cv_store_set_audit_hash(st, t_audit_hash, NULL);
    return st;
}

static long long count_where(const char *app, const char *extra)
{
    char sql[512];
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM pg_stat_activity WHERE application_name = '%s'%s", app, extra);
    PGconn *pg = t_pg(t_super_url());
    long long n = t_int(pg, sql);
    PQfinish(pg);
    return n;
}

static int wait_for(const char *app, const char *extra, long long want)
{
    for (int i = 0; i < 200; i++) {
        if (count_where(app, extra) == want) return 1;
        usleep(25 * 1000);
    }
    return 0;
}

/* Terminates the named connections and waits until those backends are gone
 * (a reconnect may already have made a new one with the same name), so their
 * FATAL and the end of the stream are already in our sockets. */
static long long kill_backends(const char *app)
{
    char sql[512];
    snprintf(sql, sizeof(sql), "SELECT pid FROM pg_stat_activity WHERE application_name = '%s'", app);
    PGconn *pg = t_pg(t_super_url());
    PGresult *res = t_ok(pg, sql);
    long long n = PQntuples(res);
    for (int i = 0; i < PQntuples(res); i++) {
        const char *pid = PQgetvalue(res, i, 0);
        snprintf(sql, sizeof(sql), "SELECT pg_terminate_backend(%s)", pid);
        t_run(pg, sql);
        snprintf(sql, sizeof(sql), "SELECT count(*) FROM pg_stat_activity WHERE pid = %s", pid);
        int gone = 0;
        for (int k = 0; k < 200 && !gone; k++) {
            gone = t_int(pg, sql) == 0;
            if (!gone) usleep(25 * 1000);
        }
        ck_assert_msg(gone, "backend %s did not exit", pid);
    }
    PQclear(res);
    PQfinish(pg);
    return n;
}

START_TEST(killed_backend_is_replaced_silently)
{
    struct cv_store *st = open_named("cv-killed", 0);
    T_OK(cv_store_ping(st));
    ck_assert_int_eq(kill_backends("cv-killed"), 1);
    /* a write: nothing was in flight, so it must simply succeed */
    struct cv_server_row s;
    t_server(&s, "acme", "after-kill");
    T_OK(cv_store_server_insert(st, &s, NULL));
    ck_assert_int_eq(kill_backends("cv-killed"), 1);
    struct cv_server_row got;
    T_OK(cv_store_server_get(st, "acme", "after-kill", 1, &got));
    cv_server_row_free(&got);
    cv_store_close(st);
}
END_TEST

START_TEST(outage_fails_fast_then_recovers)
{
    struct cv_store *st = t_open(t_app_url());
    struct cv_server_row s, got;
    t_server(&s, "acme", "before-outage");
    T_OK(cv_store_server_insert(st, &s, NULL));

    cluster("stop");
    double t0 = t_now();
    T_ERR(cv_store_server_get(st, "acme", "before-outage", 1, &got), CV_ERR_UNAVAILABLE);
    ck_assert_str_eq(cv_error_message(), "database unavailable");
    t_server(&s, "acme", "during-outage");
    T_ERR(cv_store_server_insert(st, &s, NULL), CV_ERR_UNAVAILABLE);
    T_ERR(cv_store_ping(st), CV_ERR_UNAVAILABLE);
    double elapsed = t_now() - t0;
    ck_assert_msg(elapsed < 3.0, "three calls during the outage took %.2f s", elapsed);

    cluster("start");
    T_OK(cv_store_server_get(st, "acme", "before-outage", 1, &got)); /* the very next call */
    cv_server_row_free(&got);
    T_OK(cv_store_server_insert(st, &s, NULL));
    cv_store_close(st);
}
END_TEST

START_TEST(restart_while_idle_is_invisible)
{
    struct cv_store *st = t_open(t_app_url());
    T_OK(cv_store_ping(st));
    cluster("stop");
    cluster("start");
    /* the old connection is dead; the call notices before sending and reconnects */
    struct cv_server_row s;
    t_server(&s, "acme", "after-restart");
    T_OK(cv_store_server_insert(st, &s, NULL));
    T_OK(cv_store_ping(st));
    cv_store_close(st);
}
END_TEST

struct writer {
    struct cv_store *st;
    cv_err err;
};

static void *write_one(void *arg)
{
    struct writer *w = arg;
    struct cv_server_row s;
    t_server(&s, "acme", "mid-flight");
    w->err = cv_store_server_insert(w->st, &s, NULL).err;
    cv_store_thread_done(w->st);
    return NULL;
}

#define LOCK_WAIT " AND wait_event_type = 'Lock'"

/* The write is in flight (blocked on a row lock) when its backend is
 * terminated: the server reports the error against the statement, so the
 * transaction was rolled back and the store may run it again, once. */
START_TEST(write_killed_in_flight_is_retried_once)
{
    struct cv_store *st = open_named("cv-in-flight", 0);
    PGconn *holder = t_pg(t_super_url());
    t_run(holder, "BEGIN");
    t_run(holder, "LOCK TABLE tenant_key_usage IN EXCLUSIVE MODE");
    struct writer w = {.st = st, .err = CV_ERR_INTERNAL};
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, write_one, &w), 0);
    ck_assert(wait_for("cv-in-flight", LOCK_WAIT, 1));
    ck_assert_int_eq(kill_backends("cv-in-flight"), 1);
    ck_assert(wait_for("cv-in-flight", LOCK_WAIT, 1)); /* the retry waits again */
    t_run(holder, "COMMIT");
    pthread_join(th, NULL);
    ck_assert_int_eq(w.err, CV_ERR_NONE);
    PGconn *pg = t_pg(t_super_url());
    ck_assert_int_eq(t_int(pg, "SELECT count(*) FROM mcp_credentials WHERE server_id = 'mid-flight'"), 1);
    PQfinish(pg);
    PQfinish(holder);
    cv_store_close(st);
}
END_TEST

START_TEST(statement_timeout_is_unavailable_not_a_hang)
{
    struct cv_store *st = open_named("cv-timeout", 300);
    PGconn *holder = t_pg(t_super_url());
    t_run(holder, "BEGIN");
    t_run(holder, "LOCK TABLE tenant_key_usage IN EXCLUSIVE MODE");
    struct cv_server_row s;
    t_server(&s, "acme", "timed-out");
    double t0 = t_now();
    T_ERR(cv_store_server_insert(st, &s, NULL), CV_ERR_UNAVAILABLE);
    ck_assert(t_now() - t0 < 2.0);
    t_run(holder, "ROLLBACK");
    PQfinish(holder);
    T_OK(cv_store_server_insert(st, &s, NULL)); /* same connection, still fine */
    cv_store_close(st);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("store_reconnect");
    TCase *tc = tcase_create("outages");
    tcase_add_unchecked_fixture(tc, setup, NULL);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, killed_backend_is_replaced_silently);
    tcase_add_test(tc, outage_fails_fast_then_recovers);
    tcase_add_test(tc, restart_while_idle_is_invisible);
    tcase_add_test(tc, write_killed_in_flight_is_retried_once);
    tcase_add_test(tc, statement_timeout_is_unavailable_not_a_hang);
    suite_add_tcase(s, tc);
    return t_run_suite(s);
}
