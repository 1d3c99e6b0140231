/* A database writer against the audit trail, against the real service,
 * token and database: with the append-only trigger switched off, the newest
 * event rewritten and its hash recomputed with the database's own canonical
 * functions, the head moved to match. `audit verify` must name the event,
 * before and after the next checkpoint signs the rewritten head. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "credvault/json_alloc.h"
#include "test_ops_fixture.h"

/* A tenant with a few events, all verified intact. */
static void tenant_with_events(const char *tenant)
{
    char body[256], tok[160], id[160], path[256], name[64], out[65536];
    snprintf(body, sizeof(body), "{\"id\":\"%s\",\"name\":\"%s\"}", tenant, tenant);
    cv_t_expect_call(cl, "POST", "/api/tenants", svc.admin_token, body, 201, NULL);
    snprintf(name, sizeof(name), "admin@%s", tenant);
    cv_t_token_mint(cl, svc.admin_token, name, "tenant-admin", tenant, NULL, tok, sizeof(tok));
    cv_t_deploy(cl, tok, "github", "{\"env\":{\"GITHUB_TOKEN\":\"ghp_anchor_0123456789abcdef\"}}", id, sizeof(id));
    snprintf(path, sizeof(path), "/api/mcp/servers/%s/credentials", id);
    cv_t_expect_call(cl, "GET", path, tok, NULL, 200, NULL);
    cv_t_expect_call(cl, "GET", path, tok, NULL, 200, NULL);
    ck_assert_int_eq(cli_out("audit checkpoint", out, sizeof(out)), 0);
    snprintf(path, sizeof(path), "audit verify --tenant %s", tenant);
    ck_assert_msg(cli_out(path, out, sizeof(out)) == 0, "not intact before the edit: %s", out);
    /* the newest event: one no checkpoint has signed yet, which only its anchor protects */
    snprintf(path, sizeof(path), "/api/mcp/servers/%s/credentials", id);
    cv_t_expect_call(cl, "GET", path, tok, NULL, 200, NULL);
    /* every event is anchored: format v2, with its mac */
    char sql[256];
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM audit_events WHERE chain = '%s' AND mac IS NULL", tenant);
    ck_assert_int_eq(cv_t_psql_int(sql), 0);
}

/* Runs SQL with the append-only trigger off, as the owner or a superuser can. */
static void tamper(const char *sql)
{
    char full[8192];
    snprintf(full, sizeof(full),
             "BEGIN; ALTER TABLE audit_events DISABLE TRIGGER audit_events_append_only; %s; "
             "ALTER TABLE audit_events ENABLE TRIGGER audit_events_append_only; COMMIT",
             sql);
    free(cv_t_psql(full));
}

static void expect_broken(const char *tenant, const char *reason)
{
    char args[128], out[65536];
    snprintf(args, sizeof(args), "audit verify --tenant %s", tenant);
    int rc = cli_out(args, out, sizeof(out));
    ck_assert_msg(rc == 1, "verify should fail: %s", out);
    ck_assert_msg(strstr(out, reason) != NULL, "expected '%s' in: %s", reason, out);
    ck_assert_ptr_nonnull(strstr(out, "FAILED"));
}

/* The newest event's outcome changed to 'denied', its hash recomputed with
 * `canon` (the database's own function, over the row `r`) and its mac set to
 * `mac`, the head set to match: what SQL alone can do. */
static void rewrite_newest(const char *chain, const char *canon, const char *mac)
{
    char sql[4096];
    snprintf(sql, sizeof(sql),
             "DO $$ DECLARE r record; BEGIN "
             "SELECT * INTO r FROM audit_events WHERE chain = '%s' ORDER BY seq DESC LIMIT 1; "
             "UPDATE audit_events SET outcome = 'denied', mac = %s WHERE id = r.id; "
             "SELECT * INTO r FROM audit_events WHERE id = r.id; "
             "UPDATE audit_events SET hash = sha256(%s) WHERE id = r.id; "
             "UPDATE audit_heads SET hash = (SELECT hash FROM audit_events WHERE id = r.id) WHERE chain = '%s'; "
             "END $$",
             chain, mac, canon, chain);
    tamper(sql);
}

#define CANON_V1                                                                                                       \
    "credvault_audit_canon(r.chain, r.seq, r.prev_hash, r.at, r.tenant_id, r.actor, r.role, r.action, r.target, "      \
    "r.outcome, r.request_id, r.detail_text)"
#define CANON_V2                                                                                                       \
    "credvault_audit_canon2(r.chain, r.seq, r.prev_hash, r.at, r.tenant_id, r.actor, r.role, r.action, r.target, "     \
    "r.outcome, r.request_id, r.detail_text, r.mac)"

START_TEST(newest_event_rewritten_keeping_its_anchor)
{
    tenant_with_events("anchor-keep");
    rewrite_newest("anchor-keep", CANON_V2, "mac");
    expect_broken("anchor-keep", "does not match its HSM anchor");
    /* the next checkpoint signs the rewritten head: still caught */
    char out[65536];
    ck_assert_int_eq(cli_out("audit checkpoint", out, sizeof(out)), 0);
    expect_broken("anchor-keep", "does not match its HSM anchor");
}
END_TEST

START_TEST(newest_event_rewritten_without_its_anchor)
{
    tenant_with_events("anchor-drop");
    rewrite_newest("anchor-drop", CANON_V1, "NULL");
    expect_broken("anchor-drop", "has no HSM anchor but follows anchored events");
    char out[65536];
    ck_assert_int_eq(cli_out("audit checkpoint", out, sizeof(out)), 0);
    expect_broken("anchor-drop", "has no HSM anchor but follows anchored events");
}
END_TEST

START_TEST(an_anchor_copied_from_another_event_does_not_fit)
{
    tenant_with_events("anchor-copy");
    rewrite_newest("anchor-copy", CANON_V2,
                   "(SELECT o.mac FROM audit_events o WHERE o.chain = 'anchor-copy' AND o.seq = r.seq - 1)");
    expect_broken("anchor-copy", "does not match its HSM anchor");
}
END_TEST

static Suite *audit_suite(void)
{
    static const struct cv_t_suite_spec spec = {.name = "integrity_audit", .timeout_s = 180};
    return cv_t_suite_new(&spec, CV_T_TESTS(newest_event_rewritten_keeping_its_anchor,
                                            newest_event_rewritten_without_its_anchor,
                                            an_anchor_copied_from_another_event_does_not_fit));
}

int main(void)
{
    cv_json_alloc_install();
    Suite *suite = audit_suite();
    /* checkpoints only when a case asks: the newest event stays unsigned */
    static const char *const env[] = {"CREDVAULT_AUDIT_CHECKPOINT_S=3600", "CREDVAULT_AUDIT_CHECKPOINT_EVENTS=100000",
                                      NULL};
    if (cv_test_service_start(&svc, env) != 0) return 1;
    cl = cv_test_client_new(svc.base_url, svc.ca_file);
    int failed = cv_t_suite_run(suite, CK_NOFORK);
    cv_test_client_free(cl);
    int st = cv_test_service_stop(&svc);
    if (st != 0) fprintf(stderr, "credvault serve exited with %d (log: %s)\n", st, svc.log_file);
    return failed || st != 0 ? 1 : 0;
}
