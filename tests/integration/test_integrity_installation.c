/* A token and a database that were not made for each other, against the
 * real token and two real databases in one cluster: every command refuses to
 * start, naming both installation ids, and writes nothing into the foreign
 * database (no master key registered there). A token without an id (made
 * before installation ids) takes its database's at its first start, once,
 * audited. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "credvault/json_alloc.h"
#include "test_ops_fixture.h"

/* The URL in `var` with its database name swapped for `db`. */
static void url_for(const char *var, const char *db, char *out, size_t n)
{
    const char *u = getenv(var);
    ck_assert_ptr_nonnull(u);
    const char *q = strchr(u, '?');
    ck_assert_ptr_nonnull(q);
    snprintf(out, n, "postgresql:///%s%s", db, q);
}

START_TEST(a_token_bound_at_its_first_start_once)
{
    /* made by the fixture: migrate, then hsm init wrote the database's id
     * into the token (or, for a token without one, the first command does) */
    char out[4096];
    ck_assert_int_eq(cli_out("tenant list >/dev/null", out, sizeof(out)), 0);
    ck_assert_int_eq(cv_t_psql_int("SELECT count(*) FROM audit_events WHERE action = 'installation.bind_token'"), 1);
    ck_assert_int_eq(cv_t_psql_int("SELECT count(*) FROM audit_events WHERE action = 'installation.bind_token' AND "
                                   "target = (SELECT id::text FROM installation)"),
                     1);
}
END_TEST

START_TEST(an_empty_database_of_another_installation_is_refused)
{
    /* an empty database, migrated as the operator would: its own installation id */
    free(cv_t_psql("CREATE DATABASE other OWNER credvault_owner ENCODING 'UTF8' TEMPLATE template0"));
    free(cv_t_psql("GRANT CONNECT ON DATABASE other TO credvault_app"));
    char owner[1024], app[1024], cmd[4096], out[8192];
    url_for("CREDVAULT_DATABASE_OWNER_URL", "other", owner, sizeof(owner));
    url_for("CREDVAULT_DATABASE_URL", "other", app, sizeof(app));
    snprintf(cmd, sizeof(cmd), "CREDVAULT_DATABASE_OWNER_URL='%s' \"$CREDVAULT_BIN\" migrate >/dev/null 2>&1", owner);
    ck_assert_int_eq(cv_test_sh(cmd), 0);
    /* this token's installation and the other database's */
    char *mine = cv_t_psql("SELECT id::text FROM installation");
    setenv("CV_OTHER_URL", app, 1);
    char *theirs = cv_t_psql_on("CV_OTHER_URL", "SELECT id::text FROM installation");
    ck_assert_str_ne(mine, theirs);
    /* serve and any other command refuse it, naming both ids */
    const char *cmds[] = {"tenant list", "serve"};
    for (size_t i = 0; i < 2; i++) {
        snprintf(cmd, sizeof(cmd), "CREDVAULT_DATABASE_URL='%s' CREDVAULT_TLS=off CREDVAULT_LISTEN=127.0.0.1:1 "
                 "timeout 20 \"$CREDVAULT_BIN\" %s 2>&1",
                 app, cmds[i]);
        char *text = cv_test_sh_output(cmd);
        ck_assert_ptr_nonnull(text);
        ck_assert_msg(strstr(text, mine) && strstr(text, theirs) && strstr(text, "refusing to start"), "%s: %s",
                      cmds[i], text);
        free(text);
        snprintf(cmd, sizeof(cmd), "CREDVAULT_DATABASE_URL='%s' timeout 20 \"$CREDVAULT_BIN\" %s >/dev/null 2>&1", app,
                 cmds[i]);
        ck_assert_int_ne(cv_test_sh(cmd), 0);
    }
    /* nothing was written there: no master key, no event, no token */
    char *n = cv_t_psql_on("CV_OTHER_URL", "SELECT (SELECT count(*) FROM master_keys) + (SELECT count(*) FROM "
                                           "audit_events) + (SELECT count(*) FROM tenants)");
    ck_assert_str_eq(n, "0");
    free(n);
    /* and this installation's own database still starts */
    ck_assert_int_eq(cli_out("tenant list >/dev/null", out, sizeof(out)), 0);
    free(mine);
    free(theirs);
}
END_TEST

START_TEST(a_database_given_another_id_is_refused)
{
    /* the writer changes the database's id (as its owner): the token no longer matches */
    char *mine = cv_t_psql("SELECT id::text FROM installation");
    free(cv_t_psql("UPDATE installation SET id = '00000000-0000-4000-8000-00000000beef'"));
    char *text = cv_test_sh_output("\"$CREDVAULT_BIN\" tenant list 2>&1");
    ck_assert_msg(text && strstr(text, mine) && strstr(text, "00000000-0000-4000-8000-00000000beef"), "%s",
                  text ? text : "");
    free(text);
    char sql[256];
    snprintf(sql, sizeof(sql), "UPDATE installation SET id = '%s'", mine);
    free(cv_t_psql(sql));
    char out[4096];
    ck_assert_int_eq(cli_out("tenant list >/dev/null", out, sizeof(out)), 0);
    free(mine);
}
END_TEST

/* A second token with the test token's label and PINs, fresh: no keys, no id. */
static void fresh_token(const char *name, char *conf, size_t n)
{
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "\"$CV_SOURCE_DIR/tests/p11shim/make-standin-token\" \"$CV_TEST_TMP/%s\"", name);
    char *out = cv_test_sh_output(cmd);
    ck_assert_ptr_nonnull(out);
    out[strcspn(out, "\n")] = '\0';
    snprintf(conf, n, "%s", out);
    free(out);
}

START_TEST(hsm_init_writes_the_installation_id_when_it_can)
{
    /* a new installation: a migrated database and a fresh token */
    free(cv_t_psql("CREATE DATABASE fresh OWNER credvault_owner ENCODING 'UTF8' TEMPLATE template0"));
    free(cv_t_psql("GRANT CONNECT ON DATABASE fresh TO credvault_app"));
    char owner[1024], app[1024], conf[512], cmd[4096];
    url_for("CREDVAULT_DATABASE_OWNER_URL", "fresh", owner, sizeof(owner));
    url_for("CREDVAULT_DATABASE_URL", "fresh", app, sizeof(app));
    snprintf(cmd, sizeof(cmd), "CREDVAULT_DATABASE_OWNER_URL='%s' \"$CREDVAULT_BIN\" migrate >/dev/null 2>&1", owner);
    ck_assert_int_eq(cv_test_sh(cmd), 0);
    setenv("CV_FRESH_URL", app, 1);
    char *id = cv_t_psql_on("CV_FRESH_URL", "SELECT id::text FROM installation");
    fresh_token("init-token", conf, sizeof(conf));

    /* hsm init writes the database's id into the token, once, audited */
    char want[256];
    snprintf(cmd, sizeof(cmd), "SOFTHSM2_CONF='%s' CREDVAULT_DATABASE_URL='%s' \"$CREDVAULT_BIN\" hsm init 2>&1", conf,
             app);
    char *text = cv_test_sh_output(cmd);
    snprintf(want, sizeof(want), "installation id %s (the database's) written into the token", id);
    ck_assert_msg(text && strstr(text, want), "expected '%s' in: %s", want, text ? text : "");
    free(text);
    text = cv_test_sh_output(cmd);
    snprintf(want, sizeof(want), "installation id %s: the token and the database hold it already", id);
    ck_assert_msg(text && strstr(text, want), "expected '%s' in: %s", want, text ? text : "");
    free(text);
    char su[1024];
    url_for("CV_PG_SUPERUSER_URL", "fresh", su, sizeof(su));
    setenv("CV_FRESH_SU_URL", su, 1);
    char *n =
        cv_t_psql_on("CV_FRESH_SU_URL", "SELECT count(*) FROM audit_events WHERE action = 'installation.bind_token'");
    ck_assert_str_eq(n, "1");
    free(n);

    /* that token against this test's database: refused, naming both, and nothing written */
    char *mine = cv_t_psql("SELECT id::text FROM installation");
    snprintf(cmd, sizeof(cmd), "SOFTHSM2_CONF='%s' \"$CREDVAULT_BIN\" hsm init 2>&1", conf);
    text = cv_test_sh_output(cmd);
    ck_assert_msg(text && strstr(text, "installation id not written into the token") && strstr(text, id) &&
                      strstr(text, mine),
                  "%s", text ? text : "");
    free(text);

    /* no database configured: said, and left to the first start */
    fresh_token("init-token-2", conf, sizeof(conf));
    snprintf(cmd, sizeof(cmd), "SOFTHSM2_CONF='%s' env -u CREDVAULT_DATABASE_URL \"$CREDVAULT_BIN\" hsm init 2>&1",
             conf);
    text = cv_test_sh_output(cmd);
    ck_assert_msg(text && strstr(text, "not written yet (CREDVAULT_DATABASE_URL is not set)") &&
                      strstr(text, "written into the token at the first start"),
                  "%s", text ? text : "");
    free(text);
    snprintf(cmd, sizeof(cmd), "SOFTHSM2_CONF='%s' env -u CREDVAULT_DATABASE_URL \"$CREDVAULT_BIN\" hsm init >/dev/null",
             conf);
    ck_assert_int_eq(cv_test_sh(cmd), 0);
    free(mine);
    free(id);
}
END_TEST

static Suite *installation_suite(void)
{
    static const struct cv_t_suite_spec spec = {.name = "integrity_installation", .timeout_s = 180};
    return cv_t_suite_new(&spec, CV_T_TESTS(a_token_bound_at_its_first_start_once,
                                            an_empty_database_of_another_installation_is_refused,
                                            a_database_given_another_id_is_refused,
                                            hsm_init_writes_the_installation_id_when_it_can));
}

int main(void)
{
    cv_json_alloc_install();
    Suite *suite = installation_suite();
    if (cv_test_service_start(&svc, NULL) != 0) return 1;
    cl = cv_test_client_new(svc.base_url, svc.ca_file);
    int failed = cv_t_suite_run(suite, CK_NOFORK);
    cv_test_client_free(cl);
    int st = cv_test_service_stop(&svc);
    if (st != 0) fprintf(stderr, "credvault serve exited with %d (log: %s)\n", st, svc.log_file);
    return failed || st != 0 ? 1 : 0;
}
