/* Migrations and the start-up check against a real cluster: applied once,
 * idempotent, refused when the schema is newer, safe with two migrators,
 * and check_ready accepting only a role that owns nothing. */
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test_store_fixture.h"

static unsigned file_count(void)
{
    struct cv_migration_set set;
    T_OK(cv_store_migrations_list(t_migrations(), &set));
    unsigned n = (unsigned)set.count;
    cv_store_migrations_free(&set);
    return n;
}

/* The URL of `db` as `user` on the test cluster. */
static const char *url_for(const char *db, const char *user, char *buf, size_t len)
{
    const char *base = t_owner_url(); /* postgresql:///credvault?host=...&user=credvault_owner */
    const char *q = strchr(base, '?');
    ck_assert_ptr_nonnull(q);
    char host[1024];
    snprintf(host, sizeof(host), "%s", q);
    char *amp = strstr(host, "&user=");
    ck_assert_ptr_nonnull(amp);
    *amp = '\0';
    snprintf(buf, len, "postgresql:///%s%s&user=%s", db, host, user);
    return buf;
}

static void create_db(const char *name)
{
    PGconn *pg = t_pg(t_super_url());
    char sql[256];
    snprintf(sql, sizeof(sql), "CREATE DATABASE %s OWNER credvault_owner TEMPLATE template0", name);
    t_run(pg, sql);
    snprintf(sql, sizeof(sql), "GRANT CONNECT ON DATABASE %s TO credvault_app", name);
    t_run(pg, sql);
    PQfinish(pg);
}

START_TEST(fresh_database_is_not_ready)
{
    struct cv_store *st = t_open(t_app_url());
    T_ERR(cv_store_check_ready(st, t_migrations()), CV_ERR_CONFLICT);
    ck_assert_ptr_nonnull(strstr(cv_error_message(), "credvault migrate"));
    T_OK(cv_store_ping(st));
    cv_store_close(st);
}
END_TEST

START_TEST(migrate_applies_all_then_none)
{
    struct cv_store_options o = {.url = t_owner_url()};
    unsigned applied = 99;
    T_OK(cv_store_migrate(&o, t_migrations(), &applied));
    ck_assert_uint_eq(applied, file_count());
    T_OK(cv_store_migrate(&o, t_migrations(), &applied));
    ck_assert_uint_eq(applied, 0);
    PGconn *pg = t_pg(t_super_url());
    ck_assert_int_eq(t_int(pg, "SELECT count(*) FROM schema_migrations"), file_count());
    ck_assert_int_eq(t_int(pg, "SELECT count(*) FROM schema_migrations WHERE name = '0001_create_schema_migrations'"), 1);
    PQfinish(pg);
    /* an empty database has no master key yet */
    struct cv_store *st = t_open(t_app_url());
    struct cv_master_key_row m;
    T_ERR(cv_store_master_key_current(st, &m), CV_ERR_NOT_FOUND);
    cv_store_close(st);
}
END_TEST

START_TEST(ready_only_for_the_service_role)
{
    struct cv_store *st = t_open(t_app_url());
    T_OK(cv_store_check_ready(st, t_migrations()));
    cv_store_close(st);
    st = t_open(t_owner_url());
    T_ERR(cv_store_check_ready(st, t_migrations()), CV_ERR_CONFLICT);
    ck_assert_ptr_nonnull(strstr(cv_error_message(), "owns"));
    cv_store_close(st);
    st = t_open(t_super_url());
    T_ERR(cv_store_check_ready(st, t_migrations()), CV_ERR_CONFLICT);
    ck_assert_ptr_nonnull(strstr(cv_error_message(), "superuser"));
    cv_store_close(st);

    /* a role that may act as the owner is as bad as the owner */
    PGconn *pg = t_pg(t_super_url());
    t_run(pg, "CREATE ROLE cv_sneaky LOGIN; GRANT credvault_owner TO cv_sneaky; GRANT CONNECT ON DATABASE credvault TO cv_sneaky");
    char url[2048];
    st = t_open(url_for("credvault", "cv_sneaky", url, sizeof(url)));
    T_ERR(cv_store_check_ready(st, t_migrations()), CV_ERR_CONFLICT);
    cv_store_close(st);
    t_run(pg, "CREATE ROLE cv_bypass LOGIN BYPASSRLS; GRANT CONNECT ON DATABASE credvault TO cv_bypass");
    st = t_open(url_for("credvault", "cv_bypass", url, sizeof(url)));
    T_ERR(cv_store_check_ready(st, t_migrations()), CV_ERR_CONFLICT);
    ck_assert_ptr_nonnull(strstr(cv_error_message(), "BYPASSRLS"));
    cv_store_close(st);
    PQfinish(pg);
}
END_TEST

START_TEST(newer_schema_refused)
{
    PGconn *pg = t_pg(t_super_url());
    t_run(pg, "INSERT INTO schema_migrations (version, name) VALUES (9999, '9999_from_the_future')");
    struct cv_store_options o = {.url = t_owner_url()};
    unsigned applied = 99;
    T_ERR(cv_store_migrate(&o, t_migrations(), &applied), CV_ERR_CONFLICT);
    ck_assert_ptr_nonnull(strstr(cv_error_message(), "9999"));
    ck_assert_uint_eq(applied, 0);
    struct cv_store *st = t_open(t_app_url());
    T_ERR(cv_store_check_ready(st, t_migrations()), CV_ERR_CONFLICT);
    ck_assert_ptr_nonnull(strstr(cv_error_message(), "newer"));
    t_run(pg, "DELETE FROM schema_migrations WHERE version = 9999");

    /* behind: a missing migration is named as such */
    char sql[128];
    /* the newest, whatever its number (files may be numbered with gaps) */
    snprintf(sql, sizeof(sql), "DELETE FROM schema_migrations WHERE version = (SELECT max(version) FROM schema_migrations)");
    t_run(pg, "CREATE TEMP TABLE keep AS SELECT * FROM schema_migrations");
    t_run(pg, sql);
    T_ERR(cv_store_check_ready(st, t_migrations()), CV_ERR_CONFLICT);
    ck_assert_ptr_nonnull(strstr(cv_error_message(), "run `credvault migrate`"));
    t_run(pg, "INSERT INTO schema_migrations SELECT * FROM keep WHERE version NOT IN (SELECT version FROM schema_migrations)");
    T_OK(cv_store_check_ready(st, t_migrations()));
    cv_store_close(st);
    PQfinish(pg);
}
END_TEST

struct racer {
    const char *url;
    unsigned applied;
    cv_err err;
};

static void *race(void *arg)
{
    struct racer *r = arg;
    struct cv_store_options o = {.url = r->url};
    r->err = cv_store_migrate(&o, t_migrations(), &r->applied).err;
    return NULL;
}

START_TEST(two_migrators_do_not_race)
{
    create_db("race1");
    char url[2048];
    url_for("race1", "credvault_owner", url, sizeof(url));
    struct racer a = {.url = url}, b = {.url = url};
    pthread_t ta, tb;
    ck_assert_int_eq(pthread_create(&ta, NULL, race, &a), 0);
    ck_assert_int_eq(pthread_create(&tb, NULL, race, &b), 0);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    ck_assert_int_eq(a.err, CV_ERR_NONE);
    ck_assert_int_eq(b.err, CV_ERR_NONE);
    ck_assert_uint_eq(a.applied + b.applied, file_count());
    PGconn *pg = t_pg(url);
    ck_assert_int_eq(t_int(pg, "SELECT count(*) FROM schema_migrations"), file_count());
    PQfinish(pg);
}
END_TEST

static void write_file(const char *dir, const char *name, const char *text)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

START_TEST(failed_migration_leaves_nothing)
{
    create_db("race2");
    char url[2048];
    url_for("race2", "credvault_owner", url, sizeof(url));
    char dir[512];
    snprintf(dir, sizeof(dir), "%s/migr-broken", t_env("CV_TEST_TMP"));
    ck_assert_int_eq(mkdir(dir, 0700), 0);
    char cmd[2048];
    snprintf(cmd, sizeof(cmd), "cp '%s/0001_create_schema_migrations.sql' '%s/'", t_migrations(), dir);
    ck_assert_int_eq(system(cmd), 0);
    write_file(dir, "0002_create_half.sql", "CREATE TABLE half_done (x int);\nSELECT no_such_function();\n");
    struct cv_store_options o = {.url = url};
    unsigned applied = 0;
    cv_result r = cv_store_migrate(&o, dir, &applied);
    ck_assert_int_eq(r.err, CV_ERR_INTERNAL);
    ck_assert_ptr_nonnull(strstr(cv_error_message(), "0002_create_half"));
    ck_assert_uint_eq(applied, 1);
    PGconn *pg = t_pg(url);
    ck_assert_int_eq(t_int(pg, "SELECT count(*) FROM schema_migrations"), 1);
    ck_assert_int_eq(t_int(pg, "SELECT count(*) FROM pg_class WHERE relname = 'half_done'"), 0);
    PQfinish(pg);

    /* a file that commits by itself is caught */
    write_file(dir, "0002_create_half.sql", "CREATE TABLE half_done (x int);\nCOMMIT;\n");
    T_ERR(cv_store_migrate(&o, dir, &applied), CV_ERR_INPUT);
    ck_assert_ptr_nonnull(strstr(cv_error_message(), "must not hold BEGIN"));
}
END_TEST

START_TEST(unreachable_database_is_unavailable)
{
    char url[2048];
    snprintf(url, sizeof(url), "postgresql:///credvault?host=%s/no-such-socket-dir&user=credvault_owner",
             t_env("CV_TEST_TMP"));
    struct cv_store_options o = {.url = url};
    unsigned applied;
    T_ERR(cv_store_migrate(&o, t_migrations(), &applied), CV_ERR_UNAVAILABLE);
    T_ERR(cv_store_migrate(&o, "/no/such/migrations", &applied), CV_ERR_INPUT);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("store_migrate");
    TCase *tc = tcase_create("migrate");
    tcase_set_timeout(tc, 120);
    /* in order: the first test needs the database unmigrated */
    tcase_add_test(tc, fresh_database_is_not_ready);
    tcase_add_test(tc, migrate_applies_all_then_none);
    tcase_add_test(tc, ready_only_for_the_service_role);
    tcase_add_test(tc, newer_schema_refused);
    tcase_add_test(tc, two_migrators_do_not_race);
    tcase_add_test(tc, failed_migration_leaves_nothing);
    tcase_add_test(tc, unreachable_database_is_unavailable);
    suite_add_tcase(s, tc);
    return t_run_suite(s);
}
