/* A database writer against the audit trail, against the real service,
 * token and database: with the append-only trigger switched off, the newest
 * event rewritten and its hash recomputed with the database's own canonical
 * functions, the head moved to match. `audit verify` must name the event,
 * before and after the next checkpoint signs the rewritten head. A checkpoint
 * planted with a key of the writer's own is named as signed by a foreign key. */
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
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM audit_events WHERE tenant_id = '%s' AND mac IS NULL", tenant);
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
static void rewrite_newest(const char *tenant, const char *canon, const char *mac)
{
    char sql[4096];
    snprintf(sql, sizeof(sql),
             "DO $$ DECLARE r record; BEGIN "
             "SELECT * INTO r FROM audit_events WHERE tenant_id = '%s' ORDER BY id DESC LIMIT 1; "
             "UPDATE audit_events SET outcome = 'denied', mac = %s WHERE id = r.id; "
             "SELECT * INTO r FROM audit_events WHERE id = r.id; "
             "UPDATE audit_events SET hash = sha256(%s) WHERE id = r.id; "
             "UPDATE audit_heads SET hash = (SELECT hash FROM audit_events WHERE id = r.id) WHERE chain = r.chain; "
             "END $$",
             tenant, mac, canon);
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
                   "(SELECT o.mac FROM audit_events o WHERE o.chain = r.chain AND o.seq = r.seq - 1)");
    expect_broken("anchor-copy", "does not match its HSM anchor");
}
END_TEST

/* Runs a shell command; its first output line into out (may be NULL). */
static void sh(const char *cmd, char *out, size_t cap)
{
    FILE *f = popen(cmd, "r");
    ck_assert_msg(f != NULL, "cannot run: %s", cmd);
    char line[1024] = "";
    if (!fgets(line, sizeof(line), f)) line[0] = '\0';
    int st = pclose(f);
    ck_assert_msg(st == 0, "failed (%d): %s", st, cmd);
    line[strcspn(line, "\n")] = '\0';
    if (out) snprintf(out, cap, "%s", line);
}

/* A checkpoint planted after the last one, its payload naming `installation`
 * and `fp` (hex), signed with the EC key in key_pem by openssl: what a
 * database writer with a key of their own can do. Returns its id. */
static long long plant_checkpoint(const char *dir, const char *installation, const char *fp)
{
    char *prev = cv_t_psql("SELECT encode(sha256(convert_to(payload, 'UTF8')), 'hex') FROM audit_checkpoints "
                           "ORDER BY id DESC LIMIT 1");
    char payload[1024], path[512], cmd[1024], sig[512];
    const char *head = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
    snprintf(payload, sizeof(payload),
             "credvault.audit.checkpoint.v2\nat:27:2026-01-02T03:04:05.123000Z\nkey:17:credvault-audit-1\n"
             "installation:%zu:%s\nkey-sha256:%zu:%s\nprev:64:%s\nheads:1:1\n%s\n",
             strlen(installation), installation, strlen(fp), fp, prev, head);
    snprintf(path, sizeof(path), "%s/payload.txt", dir);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(payload, f);
    fclose(f);
    snprintf(cmd, sizeof(cmd),
             "openssl dgst -sha256 -sign %s/key.pem %s | od -An -v -tx1 | tr -d ' \\n'", dir, path);
    sh(cmd, sig, sizeof(sig));
    char sql[4096];
    /* the payload as hex: no quoting of its newlines */
    char hex[2 * sizeof(payload) + 1];
    size_t n = strlen(payload);
    for (size_t i = 0; i < n; i++)
        snprintf(hex + 2 * i, 3, "%02x", (unsigned char)payload[i]);
    snprintf(sql, sizeof(sql),
             "INSERT INTO audit_checkpoints (at, key_label, prev_hash, heads_digest, heads, payload, signature) "
             "VALUES (now(), 'credvault-audit-1', decode('%s', 'hex'), sha256(convert_to('%s' || chr(10), 'UTF8')), "
             "1, convert_from(decode('%s', 'hex'), 'UTF8'), decode('%s', 'hex')) RETURNING id",
             prev, head, hex, sig);
    free(prev);
    return cv_t_psql_int(sql);
}

static void unplant_checkpoint(long long id)
{
    char sql[512];
    snprintf(sql, sizeof(sql),
             "BEGIN; ALTER TABLE audit_checkpoints DISABLE TRIGGER audit_checkpoints_append_only; "
             "DELETE FROM audit_checkpoints WHERE id = %lld; "
             "ALTER TABLE audit_checkpoints ENABLE TRIGGER audit_checkpoints_append_only; COMMIT",
             id);
    free(cv_t_psql(sql));
}

/* While a checkpoint is planted every verify fails: each is removed before the case ends. */
START_TEST(a_checkpoint_signed_by_a_foreign_key_is_named)
{
    tenant_with_events("signer");
    char out[65536];
    ck_assert_int_eq(cli_out("audit checkpoint", out, sizeof(out)), 0);
    char *installation = cv_t_psql("SELECT id FROM installation");
    /* ours, as verify reports it: every checkpoint signed by this installation's key */
    ck_assert_msg(cli_out("audit verify --tenant signer", out, sizeof(out)) == 0, "not intact: %s", out);
    const char *k = strstr(out, "signing key sha256:");
    ck_assert_ptr_nonnull(k);
    char ours[65];
    snprintf(ours, sizeof(ours), "%.64s", k + strlen("signing key sha256:"));
    char want[256];
    snprintf(want, sizeof(want), "signed by this installation's key sha256:%s, installation %s", ours, installation);
    ck_assert_msg(strstr(out, want) != NULL, "expected '%s' in: %s", want, out);
    ck_assert_ptr_null(strstr(out, "FOREIGN"));

    char dir[] = "/tmp/cv-foreign-XXXXXX", cmd[512], theirs[128];
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(cmd, sizeof(cmd), "openssl ecparam -name prime256v1 -genkey -noout -out %s/key.pem", dir);
    sh(cmd, NULL, 0);
    snprintf(cmd, sizeof(cmd),
             "openssl pkey -in %s/key.pem -pubout -outform DER | openssl dgst -sha256 -r | cut -d' ' -f1", dir);
    sh(cmd, theirs, sizeof(theirs));
    ck_assert_uint_eq(strlen(theirs), 64);

    /* the payload names the key that signed it: named as foreign */
    long long id = plant_checkpoint(dir, installation, theirs);
    snprintf(want, sizeof(want), "checkpoint %lld was signed by a foreign key sha256:%s of installation %s", id, theirs,
             installation);
    expect_broken("signer", want);
    snprintf(want, sizeof(want), "signed by FOREIGN key sha256:%s", theirs);
    ck_assert_int_eq(cli_out("audit verify --tenant signer", out, sizeof(out)), 1);
    ck_assert_msg(strstr(out, want) != NULL, "expected '%s' in: %s", want, out);
    unplant_checkpoint(id);
    ck_assert_msg(cli_out("audit verify --tenant signer", out, sizeof(out)) == 0, "not intact once removed: %s", out);

    /* the payload claims this installation's key: its signature does not verify with it */
    id = plant_checkpoint(dir, installation, ours);
    snprintf(want, sizeof(want), "checkpoint %lld: the signature does not verify with this installation's audit key sha256:%s",
             id, ours);
    expect_broken("signer", want);
    unplant_checkpoint(id);
    ck_assert_msg(cli_out("audit verify --tenant signer", out, sizeof(out)) == 0, "not intact once removed: %s", out);

    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    sh(cmd, NULL, 0);
    free(installation);
}
END_TEST

static Suite *audit_suite(void)
{
    static const struct cv_t_suite_spec spec = {.name = "integrity_audit", .timeout_s = 180};
    return cv_t_suite_new(&spec, CV_T_TESTS(newest_event_rewritten_keeping_its_anchor,
                                            newest_event_rewritten_without_its_anchor,
                                            an_anchor_copied_from_another_event_does_not_fit,
                                            a_checkpoint_signed_by_a_foreign_key_is_named));
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
