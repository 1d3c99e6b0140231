/* One connection per thread: two threads hold two connections, a thread's
 * connection ends with cv_store_thread_done or with the thread itself, and
 * concurrent writers neither fail nor lose an encryption count. */
#include <pthread.h>
#include <unistd.h>

#include "test_store_fixture.h"

#define APP "cv-threads-test"

static char url[2048];

static void setup(void)
{
    t_migrate();
    snprintf(url, sizeof(url), "%s&application_name=" APP, t_app_url());
    struct cv_store *st = t_open(t_app_url());
    t_seed_master(st, 1);
    t_seed_tenant(st, "acme");
    cv_store_close(st);
}

static long long connections(void)
{
    PGconn *pg = t_pg(t_super_url());
    long long n = t_int(pg, "SELECT count(*) FROM pg_stat_activity WHERE application_name = '" APP "'");
    PQfinish(pg);
    return n;
}

static int settles_at(long long want)
{
    for (int i = 0; i < 100; i++) {
        if (connections() == want) return 1;
        usleep(50 * 1000);
    }
    return 0;
}

struct worker {
    struct cv_store *st;
    pthread_barrier_t *pinged, *release;
    int say_goodbye;
    cv_err err;
};

static void *worker(void *arg)
{
    struct worker *w = arg;
    w->err = cv_store_ping(w->st).err;
    pthread_barrier_wait(w->pinged);
    pthread_barrier_wait(w->release);
    if (w->say_goodbye) cv_store_thread_done(w->st);
    return NULL; /* otherwise the key's destructor closes it */
}

START_TEST(each_thread_its_own_connection)
{
    struct cv_store *st = t_open(url);
    ck_assert_int_eq(connections(), 0); /* lazily: none until used */
    pthread_barrier_t pinged, release;
    pthread_barrier_init(&pinged, NULL, 3);
    pthread_barrier_init(&release, NULL, 3);
    struct worker a = {.st = st, .pinged = &pinged, .release = &release, .say_goodbye = 1, .err = CV_ERR_INTERNAL};
    struct worker b = {.st = st, .pinged = &pinged, .release = &release, .say_goodbye = 0, .err = CV_ERR_INTERNAL};
    pthread_t ta, tb;
    ck_assert_int_eq(pthread_create(&ta, NULL, worker, &a), 0);
    ck_assert_int_eq(pthread_create(&tb, NULL, worker, &b), 0);
    pthread_barrier_wait(&pinged);
    ck_assert_int_eq(a.err, CV_ERR_NONE);
    ck_assert_int_eq(b.err, CV_ERR_NONE);
    ck_assert_int_eq(connections(), 2);
    T_OK(cv_store_ping(st)); /* and this thread a third */
    T_OK(cv_store_ping(st)); /* reused, not a fourth */
    ck_assert_int_eq(connections(), 3);
    pthread_barrier_wait(&release);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    ck_assert_msg(settles_at(1), "thread connections were not closed");
    cv_store_thread_done(st);
    ck_assert(settles_at(0));
    T_OK(cv_store_ping(st)); /* a new one on demand */
    ck_assert_int_eq(connections(), 1);
    cv_store_close(st);
    ck_assert(settles_at(0));
    pthread_barrier_destroy(&pinged);
    pthread_barrier_destroy(&release);
}
END_TEST

/* cv_store_close finishes the connection of a thread that is still alive
 * and never said goodbye (it must not use the store afterwards). */
START_TEST(close_finishes_live_threads_connections)
{
    struct cv_store *st = t_open(url);
    pthread_barrier_t pinged, release;
    pthread_barrier_init(&pinged, NULL, 2);
    pthread_barrier_init(&release, NULL, 2);
    struct worker a = {.st = st, .pinged = &pinged, .release = &release, .say_goodbye = 0, .err = CV_ERR_INTERNAL};
    pthread_t ta;
    ck_assert_int_eq(pthread_create(&ta, NULL, worker, &a), 0);
    pthread_barrier_wait(&pinged);
    ck_assert_int_eq(connections(), 1);
    cv_store_close(st);
    ck_assert(settles_at(0));
    pthread_barrier_wait(&release);
    pthread_join(ta, NULL);
    pthread_barrier_destroy(&pinged);
    pthread_barrier_destroy(&release);
}
END_TEST

#define WRITERS 4
#define WRITES 150

struct writer {
    struct cv_store *st;
    int id;
    int failures;
};

static void *writer(void *arg)
{
    struct writer *w = arg;
    for (int i = 0; i < WRITES; i++) {
        struct cv_server_row s, got;
        char sid[64];
        snprintf(sid, sizeof(sid), "w%d-%d", w->id, i);
        t_server(&s, "acme", sid);
        if (cv_failed(cv_store_server_insert(w->st, &s, NULL))) w->failures++;
        if (cv_failed(cv_store_server_get(w->st, "acme", sid, 1, &got))) w->failures++;
        cv_server_row_free(&got);
    }
    cv_store_thread_done(w->st);
    return NULL;
}

START_TEST(concurrent_writers_count_exactly)
{
    struct cv_store *st = t_open(url);
    struct writer w[WRITERS];
    pthread_t th[WRITERS];
    double t0 = t_now();
    for (int i = 0; i < WRITERS; i++) {
        w[i] = (struct writer){.st = st, .id = i, .failures = 0};
        ck_assert_int_eq(pthread_create(&th[i], NULL, writer, &w[i]), 0);
    }
    for (int i = 0; i < WRITERS; i++) pthread_join(th[i], NULL);
    double elapsed = t_now() - t0;
    for (int i = 0; i < WRITERS; i++) ck_assert_int_eq(w[i].failures, 0);
    struct cv_tenant_key_row k;
    T_OK(cv_store_tenant_key_get(st, "acme", 1, &k));
    ck_assert_uint_eq(k.encryptions, WRITERS * WRITES);
    fprintf(stderr, "%d inserts + %d gets on %d threads, one tenant: %.2f s\n", WRITERS * WRITES, WRITERS * WRITES,
            WRITERS, elapsed);
    cv_store_close(st);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("store_threads");
    TCase *tc = tcase_create("threads");
    tcase_add_unchecked_fixture(tc, setup, NULL);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, each_thread_its_own_connection);
    tcase_add_test(tc, close_finishes_live_threads_connections);
    tcase_add_test(tc, concurrent_writers_count_exactly);
    suite_add_tcase(s, tc);
    return t_run_suite(s);
}
