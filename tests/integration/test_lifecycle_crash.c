/* kill -9 in the middle of a rewrap, then a restart that finishes the job:
 * a master rewrap run by `credvault serve` (its background worker resumes
 * it at start), and a record rewrap run by `credvault tenant rewrap` (run
 * again, it resumes). Batches of one row and a pause between batches make
 * the jobs slow enough to be caught half way; the test checks that they
 * were, by counting rows on both sides in the database, and afterwards that
 * every record still decrypts through the API. */
#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test_lifecycle_fixture.h"
#include "credvault/json_alloc.h"

#define MASTER_TENANTS 60   /* tenant keys for the master rewrap */
#define MASTER_RECORDS 12   /* tenants among them that get a record */
#define BULK_RECORDS 240    /* records for the record rewrap */

static struct cv_test_service svc;
static struct cv_test_client *cl;
static const char *admin;

static const char *const slow_env[] = {"CREDVAULT_REWRAP_BATCH_SIZE=1", "CREDVAULT_REWRAP_PAUSE_MS=40",
                                       LC_NO_RATE_LIMITS, NULL};

static void restart(const char *const *env)
{
    cv_test_client_free(cl);
    ck_assert_int_eq(cv_test_service_start(&svc, env), 0);
    cl = cv_test_client_new(svc.base_url, svc.ca_file);
}

/* Waits until `sql` (a count) reaches at least `min`. */
static long long wait_count(const char *sql, long long min)
{
    long long until = lc_now_ms() + LC_WAIT_MS, n = -1;
    while (lc_now_ms() < until) {
        n = cv_t_psql_int(sql);
        if (n >= min) return n;
        lc_sleep_ms(20);
    }
    ck_abort_msg("timed out waiting for %s >= %lld (last %lld)", sql, min, n);
    return n;
}

START_TEST(kill9_during_master_rewrap)
{
    static char toks[MASTER_RECORDS][160], ids[MASTER_RECORDS][160], masked[MASTER_RECORDS][64];
    for (int i = 0; i < MASTER_TENANTS; i++) {
        char id[32];
        snprintf(id, sizeof(id), "mt-%03d", i);
        cv_t_tenant_create(cl, admin, id);
        if (i < MASTER_RECORDS) {
            char name[64], value[64];
            snprintf(name, sizeof(name), "admin@%s", id);
            cv_t_token_mint(cl, admin, name, "tenant-admin", id, NULL, toks[i], sizeof(toks[i]));
            snprintf(value, sizeof(value), "ghp_master_crash_%03d_abcdefghijklm", i);
            ck_assert_int_eq(lc_deploy(cl, toks[i], value, ids[i], sizeof(ids[i])), 0);
            lc_masked(cl, toks[i], ids[i], masked[i], sizeof(masked[i]));
        }
    }
    long long keys = cv_t_psql_int("SELECT count(*) FROM tenant_keys");
    ck_assert_int_ge(keys, MASTER_TENANTS);
    /* from whatever master version the database is at */
    long long old = cv_t_psql_int("SELECT max(version) FROM master_keys"), now = old + 1;
    char under_old[128], under_new[128], cmd[64], path[128];
    snprintf(under_old, sizeof(under_old), "SELECT count(*) FROM tenant_keys WHERE master_version = %lld", old);
    snprintf(under_new, sizeof(under_new), "SELECT count(*) FROM tenant_keys WHERE master_version = %lld", now);

    struct cv_test_response r = cv_t_request(cl, "POST", "/api/admin/master-keys/rotate", admin, NULL);
    cv_t_expect_status(&r, 202, NULL);
    cv_t_expect_json_int(&r, "data.version", now);
    cv_test_response_free(&r);
    /* half way: some keys under the new master, some still under the old one */
    wait_count(under_new, 8);
    lc_kill9(&svc.pid);
    long long moved = cv_t_psql_int(under_new);
    long long left = cv_t_psql_int(under_old);
    ck_assert_msg(moved > 0 && left > 0, "not caught half way: %lld moved, %lld left", moved, left);
    ck_assert_int_eq(cv_t_psql_int("SELECT count(*) FROM key_jobs WHERE kind = 'master_rewrap' AND state = 'running'"),
                     1);
    /* the old master is still needed: retiring it is refused (by the CLI too) */
    char out[1024];
    snprintf(cmd, sizeof(cmd), "master retire %lld 2>&1", old);
    ck_assert_int_ne(cv_test_cli(cmd, out, sizeof(out)), 0);
    ck_assert_msg(strstr(out, "still wraps") != NULL, "%s", out);

    /* restart: the worker resumes the job at start and finishes it */
    restart(lc_default_env);
    json_t *job = lc_wait_job(cl, admin, "/api/admin/master-keys/rewrap", LC_WAIT_MS);
    ck_assert_msg(job != NULL, "the master rewrap did not finish after the restart");
    ck_assert_str_eq(json_string_value(json_object_get(job, "state")), "done");
    json_decref(job);
    ck_assert_int_eq(cv_t_psql_int(under_old), 0);
    ck_assert_int_eq(cv_t_psql_int(under_new), keys);
    ck_assert(cv_test_service_log_contains(&svc, "rewrap_job_running"));
    for (int i = 0; i < MASTER_RECORDS; i++) {
        char m[64];
        lc_masked(cl, toks[i], ids[i], m, sizeof(m));
        ck_assert_str_eq(m, masked[i]);
    }
    /* and the old master can go; every record still opens without it */
    snprintf(path, sizeof(path), "/api/admin/master-keys/%lld/retire", old);
    cv_t_expect_call(cl, "POST", path, admin, NULL, 200, NULL);
    for (int i = 0; i < MASTER_RECORDS; i++) {
        char m[64];
        lc_masked(cl, toks[i], ids[i], m, sizeof(m));
        ck_assert_str_eq(m, masked[i]);
    }
    /* the slow rewrap again, for the case that runs next */
    ck_assert_int_eq(cv_test_service_stop(&svc), 0);
    restart(slow_env);
}
END_TEST

/* `credvault tenant rewrap bulk` as a child, output to a file. */
static pid_t start_cli_rewrap(const char *log)
{
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        for (size_t i = 0; slow_env[i]; i++) putenv((char *)slow_env[i]);
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        const char *bin = getenv("CREDVAULT_BIN");
        execl(bin, bin, "tenant", "rewrap", "bulk", (char *)NULL);
        _exit(127);
    }
    return pid;
}

static int file_contains(const char *path, const char *needle)
{
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "grep -q -- '%s' '%s'", needle, path);
    return cv_test_sh(cmd) == 0;
}

START_TEST(kill9_during_record_rewrap)
{
    char tok[160];
    static char ids[BULK_RECORDS][160];
    cv_t_tenant_create(cl, admin, "bulk");
    cv_t_token_mint(cl, admin, "admin@bulk", "tenant-admin", "bulk", NULL, tok, sizeof(tok));
    for (int i = 0; i < BULK_RECORDS; i++) {
        char value[64];
        snprintf(value, sizeof(value), "ghp_bulk_record_%04d_abcdefghijklm", i);
        ck_assert_int_eq(lc_deploy(cl, tok, value, ids[i], sizeof(ids[i])), 0);
    }
    /* the CLI drives this job alone: no serve runs while it works */
    ck_assert_int_eq(cv_test_service_stop(&svc), 0);
    ck_assert_int_eq(cv_test_cli("tenant rotate-key bulk >/dev/null", NULL, 0), 0);

    char log[512];
    snprintf(log, sizeof(log), "%s/rewrap-cli.log", getenv("CV_TEST_TMP"));
    pid_t pid = start_cli_rewrap(log);
    wait_count("SELECT count(*) FROM mcp_credentials WHERE tenant_id = 'bulk' AND key_version = 2", 20);
    lc_kill9(&pid);
    long long moved =
        cv_t_psql_int("SELECT count(*) FROM mcp_credentials WHERE tenant_id = 'bulk' AND key_version = 2");
    long long left = cv_t_psql_int("SELECT count(*) FROM mcp_credentials WHERE tenant_id = 'bulk' AND key_version = 1");
    ck_assert_msg(moved > 0 && left > 0, "not caught half way: %lld moved, %lld left", moved, left);
    ck_assert_int_eq(moved + left, BULK_RECORDS);
    /* not a terminal: plain progress lines, no bar */
    ck_assert_msg(file_contains(log, "rewrap of bulk: [0-9]*/240 records ([0-9]*%)"), "no progress line in %s", log);
    ck_assert(!file_contains(log, "\\["));
    /* the job survived; its count matches the rows that moved */
    ck_assert_int_eq(cv_t_psql_int("SELECT count(*) FROM key_jobs WHERE tenant_id = 'bulk' AND state = 'running'"), 1);
    ck_assert_int_eq(cv_t_psql_int("SELECT done FROM key_jobs WHERE tenant_id = 'bulk'"), moved);

    /* run again: it resumes and finishes */
    char out[4096];
    ck_assert_int_eq(cv_test_cli("tenant rewrap bulk 2>&1", out, sizeof(out)), 0);
    ck_assert_msg(strstr(out, "rewrap of bulk done") != NULL, "%s", out);
    ck_assert_msg(strstr(out, "(100%)") != NULL, "%s", out);
    ck_assert_int_eq(cv_t_psql_int("SELECT count(*) FROM mcp_credentials WHERE tenant_id = 'bulk' AND key_version = 1"),
                     0);
    ck_assert_int_eq(cv_t_psql_int("SELECT count(*) FROM key_jobs WHERE tenant_id = 'bulk' AND state = 'done' AND "
                                   "done = 240"),
                     1);

    /* every record decrypts through the API, with the value it was given */
    restart(slow_env);
    for (int i = 0; i < BULK_RECORDS; i++) {
        char m[64], want[32];
        lc_masked(cl, tok, ids[i], m, sizeof(m));
        snprintf(want, sizeof(want), "ghp_");
        ck_assert_msg(strncmp(m, want, 4) == 0 && strstr(m, "jklm") != NULL, "record %d: %s", i, m);
        ck_assert_int_eq(lc_key_version(cl, tok, ids[i]), 2);
    }
    /* now version 1 can retire */
    cv_t_expect_call(cl, "PUT", "/api/tenants/bulk/min-decrypt-version", admin, "{\"version\":2}", 200, NULL);
}
END_TEST

static Suite *crash_suite(void)
{
    static const struct cv_t_suite_spec spec = {.name = "lifecycle_crash", .timeout_s = 300};
    return cv_t_suite_new(&spec, CV_T_TESTS(kill9_during_master_rewrap, kill9_during_record_rewrap));
}

int main(void)
{
    cv_json_alloc_install(); /* first: every entry point keeps JSON in secret memory */
    Suite *suite = crash_suite();
    if (cv_test_service_start(&svc, slow_env) != 0) return 1;
    admin = svc.admin_token;
    cl = cv_test_client_new(svc.base_url, svc.ca_file);
    int failed = cv_t_suite_run(suite, CK_NOFORK);
    cv_test_client_free(cl);
    if (svc.pid > 0) {
        int st = cv_test_service_stop(&svc);
        if (st != 0) {
            fprintf(stderr, "credvault serve exited with %d (log: %s)\n", st, svc.log_file);
            cv_test_sh("tail -n 30 \"$CV_TEST_TMP\"/service/serve-*.log >&2");
            failed++;
        }
    }
    return failed ? 1 : 0;
}
