/* The migration folder (src/store/migrate_files.c): malformed names are
 * refused, not skipped; order is by version; sizes are bounded. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/internal.h"

static char dir[256];

static void mkdir_tmp(void)
{
    snprintf(dir, sizeof(dir), "%s/cv-migr.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void put(const char *name, const char *text)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

static void rm_tmp(void)
{
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}

START_TEST(bad_names_refused)
{
    const char *bad[] = {"001_x.sql", "0001-x.sql", "0001_X.sql", "0000_zero.sql", "0001_.sql", "abcd_x.sql",
                         "0001_a b.sql", NULL};
    for (size_t i = 0; bad[i]; i++) {
        mkdir_tmp();
        put("0002_ok.sql", "SELECT 1;");
        put(bad[i], "SELECT 1;");
        struct cv_migration_set set;
        ck_assert_msg(cv_store_migrations_list(dir, &set).err == CV_ERR_INPUT, "accepted %s", bad[i]);
        ck_assert_uint_eq(set.count, 0);
        rm_tmp();
    }
}
END_TEST

START_TEST(duplicates_and_empty_refused)
{
    struct cv_migration_set set;
    mkdir_tmp();
    ck_assert_int_eq(cv_store_migrations_list(dir, &set).err, CV_ERR_INPUT); /* empty */
    put("0001_a.sql", "SELECT 1;");
    put("0001_b.sql", "SELECT 1;");
    ck_assert_int_eq(cv_store_migrations_list(dir, &set).err, CV_ERR_INPUT);
    rm_tmp();
    ck_assert_int_eq(cv_store_migrations_list("/nonexistent/cv-migrations", &set).err, CV_ERR_INPUT);
}
END_TEST

START_TEST(sorted_by_version_others_ignored)
{
    mkdir_tmp();
    put("0010_add_c.sql", "SELECT 3;");
    put("0002_create_b.sql", "SELECT 2;");
    put("0001_create_a.sql", "SELECT 1;");
    put("README.md", "not a migration");
    put("notes.sqlx", "not a migration");
    struct cv_migration_set set;
    ck_assert(cv_ok(cv_store_migrations_list(dir, &set)));
    ck_assert_uint_eq(set.count, 3);
    ck_assert_uint_eq(set.items[0].version, 1);
    ck_assert_str_eq(set.items[0].name, "0001_create_a");
    ck_assert_uint_eq(set.items[2].version, 10);
    char *sql;
    ck_assert(cv_ok(cv_store_migration_read(&set.items[1], &sql)));
    ck_assert_str_eq(sql, "SELECT 2;");
    free(sql);
    cv_store_migrations_free(&set);
    rm_tmp();
}
END_TEST

START_TEST(oversize_and_nul_refused)
{
    mkdir_tmp();
    char *big = malloc(CV_MIGRATION_MAX_BYTES + 2);
    memset(big, '-', CV_MIGRATION_MAX_BYTES + 1);
    big[CV_MIGRATION_MAX_BYTES + 1] = '\0';
    put("0001_big.sql", big);
    free(big);
    struct cv_migration_set set;
    ck_assert(cv_ok(cv_store_migrations_list(dir, &set)));
    char *sql = (char *)1;
    ck_assert_int_eq(cv_store_migration_read(&set.items[0], &sql).err, CV_ERR_INPUT);
    ck_assert_ptr_null(sql);
    cv_store_migrations_free(&set);
    char path[512];
    snprintf(path, sizeof(path), "%s/0001_big.sql", dir);
    FILE *f = fopen(path, "w");
    fwrite("SELECT\0 1;", 1, 10, f);
    fclose(f);
    ck_assert(cv_ok(cv_store_migrations_list(dir, &set)));
    ck_assert_int_eq(cv_store_migration_read(&set.items[0], &sql).err, CV_ERR_INPUT);
    cv_store_migrations_free(&set);
    rm_tmp();
}
END_TEST

START_TEST(shipped_migrations_list)
{
    /* the repository's own folder is well-formed */
    struct cv_migration_set set;
    ck_assert(cv_ok(cv_store_migrations_list(NULL, &set)));
    ck_assert_uint_ge(set.count, 1);
    ck_assert_uint_eq(set.items[0].version, 1);
    for (size_t i = 1; i < set.count; i++) ck_assert_uint_eq(set.items[i].version, set.items[i - 1].version + 1);
    cv_store_migrations_free(&set);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("store_migrate_files");
    TCase *tc = tcase_create("folder");
    tcase_add_test(tc, bad_names_refused);
    tcase_add_test(tc, duplicates_and_empty_refused);
    tcase_add_test(tc, sorted_by_version_others_ignored);
    tcase_add_test(tc, oversize_and_nul_refused);
    tcase_add_test(tc, shipped_migrations_list);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
