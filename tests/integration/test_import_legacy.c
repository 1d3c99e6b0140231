/* `credvault import-legacy` end to end. GigaChad GRC records are made by an
 * independent implementation (tests/fixtures/make-legacy-records.js, Node's
 * crypto module) from tests/fixtures/legacy-records.json — both formats, a
 * tampered row, a truncated tag, a loader name, an unknown template, a row
 * under another key, an extra member — loaded into a second database of the
 * test cluster ("gigachad") and exported as JSON lines the documented way.
 * Imported from the database and from the file into fresh tenants of the
 * real service, masked reads, workload reads, names and dates must match the
 * originals; failed rows are reported by id with a reason; a re-run imports
 * nothing twice; a wrong key and --dry-run write nothing; no value or key
 * ever shows up in output or in the database. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cv_test_api.h"
#include "cv_test_service.h"
#include "credvault/json_alloc.h"
#include "cv_test_suite.h"

#define LEGACY_KEY "correct horse battery staple, 32+ characters long"
#define GOOD_ROWS 4
#define ALL_ROWS 10

static struct cv_test_service svc;
static struct cv_test_client *cl;
static json_t *spec; /* tests/fixtures/legacy-records.json */
static char tok_beta[160];
static char *all_output; /* everything the import printed, checked for values at the end */
static size_t all_output_len;

/* ---- helpers ---- */

static void remember(const char *out)
{
    size_t n = strlen(out);
    char *p = realloc(all_output, all_output_len + n + 1);
    ck_assert_ptr_nonnull(p);
    memcpy(p + all_output_len, out, n + 1);
    all_output = p;
    all_output_len += n;
}

/* Runs a shell command with stdout and stderr together; returns its output
 * (kept for the final no-value check) and sets *status. */
static char *sh(const char *cmd, int *status)
{
    char full[8192];
    snprintf(full, sizeof(full), "%s 2>&1; echo \"[rc=$?]\"", cmd);
    char *out = cv_test_sh_output(full);
    ck_assert_ptr_nonnull(out);
    char *rc = strstr(out, "[rc=");
    ck_assert_ptr_nonnull(rc);
    *status = atoi(rc + 4);
    *rc = '\0';
    remember(out);
    return out;
}

/* `credvault import-legacy <args>` with only the legacy key variables in `keys`. */
static char *import(const char *keys, const char *args, int *status)
{
    char cmd[4096];
    snprintf(cmd, sizeof(cmd),
             "env -u MCP_ENCRYPTION_KEY -u ENCRYPTION_KEY %s timeout 300 \"$CREDVAULT_BIN\" import-legacy %s", keys,
             args);
    return sh(cmd, status);
}

#define KEY_ENV "MCP_ENCRYPTION_KEY='" LEGACY_KEY "'"

static long count_rows(const char *tenant)
{
    char sql[256];
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM mcp_credentials WHERE tenant_id = '%s'", tenant);
    char *out = cv_t_psql(sql);
    long n = atol(out);
    free(out);
    return n;
}

static const char *sget(json_t *o, const char *k) { return json_string_value(json_object_get(o, k)); }

/* The masking rule of docs/api.md, over code points. */
static void mask(const char *v, char *out, size_t n)
{
    size_t cps = 0, len = strlen(v);
    for (size_t i = 0; i < len; i++) cps += ((unsigned char)v[i] & 0xc0) != 0x80;
    if (cps < 16) {
        snprintf(out, n, "••••••••");
        return;
    }
    size_t head = 0, seen = 0;
    while (head < len && seen <= 4) {
        if (((unsigned char)v[head] & 0xc0) != 0x80 && ++seen == 5) break;
        head++;
    }
    size_t tail = len, back = 0;
    while (tail > 0 && back < 4) {
        tail--;
        if (((unsigned char)v[tail] & 0xc0) != 0x80) back++;
    }
    snprintf(out, n, "%.*s••••%s", (int)head, v, v + tail);
}

/* A line of the report for one server id: "<label> <server_id> [legacy id …]…". */
static const char *report_line(const char *out, const char *label, const char *server_id)
{
    char needle[256];
    snprintf(needle, sizeof(needle), "%s", label);
    for (const char *p = out; (p = strstr(p, needle)) != NULL; p++) {
        if (p != out && p[-1] != '\n') continue;
        const char *rest = p + strlen(label);
        while (*rest == ' ') rest++;
        if (strncmp(rest, server_id, strlen(server_id)) == 0 && rest[strlen(server_id)] == ' ') return p;
    }
    return NULL;
}

/* Every row of the spec is reported as expected: imported (or `ok_label`),
 * or failed with its id and reason. */
static void check_report(const char *out, const char *ok_label)
{
    size_t i;
    json_t *row;
    json_array_foreach(spec, i, row) {
        const char *sid = sget(row, "server_id");
        if (strcmp(sget(row, "expect"), "imported") == 0) {
            ck_assert_msg(report_line(out, ok_label, sid) != NULL, "%s not reported as %s:\n%s", sid, ok_label, out);
            continue;
        }
        const char *line = report_line(out, "failed", sid);
        ck_assert_msg(line != NULL, "%s not reported as failed:\n%s", sid, out);
        size_t len = strcspn(line, "\n");
        char buf[1024];
        snprintf(buf, sizeof(buf), "%.*s", (int)len, line);
        ck_assert_msg(strstr(buf, sget(row, "id")) != NULL, "failed row without its legacy id: %s", buf);
        ck_assert_msg(strstr(buf, sget(row, "reason")) != NULL, "wrong reason for %s: %s", sid, buf);
    }
}

/* The tenant's copy of every good row matches the original: document,
 * masked read and the workload's full read. */
static void check_imported(const char *tenant, const char *admin_token)
{
    size_t i;
    json_t *row;
    json_array_foreach(spec, i, row) {
        if (strcmp(sget(row, "expect"), "imported") != 0) continue;
        const char *sid = sget(row, "server_id");
        json_t *env = json_object_get(row, "env");
        char path[256];

        snprintf(path, sizeof(path), "/api/mcp/servers/%s", sid);
        struct cv_test_response r = cv_t_request(cl, "GET", path, admin_token, NULL);
        ck_assert_msg(r.status == 200, "%s: %ld %s", sid, r.status, r.body);
        json_t *d = cv_t_data(&r);
        ck_assert_str_eq(sget(d, "templateId"), sget(row, "template_id"));
        ck_assert_str_eq(sget(d, "name"), sget(row, "server_name"));
        ck_assert_str_eq(sget(d, "createdAt"), sget(row, "created_at"));
        const char *by = sget(row, "created_by");
        ck_assert_str_eq(sget(d, "createdBy"), by ? by : "");
        const char *lu = sget(row, "last_updated");
        ck_assert_str_eq(sget(d, "lastUpdated"), lu ? lu : sget(row, "created_at"));
        ck_assert_int_eq(json_integer_value(json_object_get(d, "revision")), 1);
        json_t *want_integ = json_object_get(row, "configured_integrations");
        if (json_is_null(want_integ)) want_integ = json_object_get(row, "expect_integrations");
        ck_assert_msg(json_equal(json_object_get(json_object_get(d, "configuration"), "configuredIntegrations"), want_integ), "%s: integrations", sid);
        /* names in the record's order */
        json_t *names = json_object_get(d, "credentialNames");
        ck_assert_int_eq(json_array_size(names), json_object_size(env));
        cv_test_response_free(&r);

        snprintf(path, sizeof(path), "/api/mcp/servers/%s/credentials", sid);
        r = cv_t_request(cl, "GET", path, admin_token, NULL);
        ck_assert_msg(r.status == 200, "%s: %ld %s", sid, r.status, r.body);
        json_t *masked = json_object_get(cv_t_data(&r), "credentials");
        ck_assert_int_eq(json_object_size(masked), json_object_size(env));
        const char *k;
        json_t *v;
        json_object_foreach(env, k, v) {
            char m[256];
            mask(json_string_value(v), m, sizeof(m));
            ck_assert_msg(strcmp(sget(masked, k), m) == 0, "%s %s: masked %s, expected %s", sid, k, sget(masked, k), m);
        }
        cv_test_response_free(&r);

        /* the workload read gives back exactly the original map */
        char body[512], wl[160];
        static unsigned minted; /* token names are unique per tenant and role; checks may run twice */
        snprintf(body, sizeof(body),
                 "{\"name\":\"mcp-%s-%u\",\"role\":\"workload\",\"tenantId\":\"%s\",\"serverId\":\"%s\"}", sid,
                 ++minted, tenant, sid);
        r = cv_t_request(cl, "POST", "/api/tokens", admin_token, body);
        ck_assert_msg(r.status == 201, "%ld %s", r.status, r.body);
        snprintf(wl, sizeof(wl), "%s", sget(cv_t_data(&r), "token"));
        cv_test_response_free(&r);
        snprintf(path, sizeof(path), "/api/mcp/servers/%s/env", sid);
        r = cv_t_request(cl, "GET", path, wl, NULL);
        ck_assert_msg(r.status == 200, "%s: %ld %s", sid, r.status, r.body);
        ck_assert_msg(json_equal(json_object_get(cv_t_data(&r), "env"), env), "%s: the workload read differs", sid);
        cv_test_response_free(&r);
    }
}

/* ---- tests ---- */

/* The legacy database and its export, made once by whichever case runs first. */
static void fixture(void)
{
    int st;
    char *out = sh("MCP_ENCRYPTION_KEY='" LEGACY_KEY "' node \"$CV_SOURCE_DIR/tests/fixtures/make-legacy-records.js\" "
                   "--create \"$CV_SOURCE_DIR/tests/fixtures/legacy-records.json\" > \"$CV_TEST_TMP/legacy.sql\"",
                   &st);
    ck_assert_msg(st == 0, "the Node generator failed: %s", out);
    free(out);
    /* GigaChad's database beside credvault's in the same cluster, with a
     * role that may only read the table */
    out = sh("psql -X -q -v ON_ERROR_STOP=1 \"$CV_PG_SUPERUSER_URL\" -c 'CREATE DATABASE gigachad' "
             "-c \"ALTER DATABASE gigachad SET timezone TO 'UTC'\" -c 'CREATE ROLE gigachad_reader LOGIN' && "
             "psql -X -q -v ON_ERROR_STOP=1 \"$GIGACHAD_SUPER_URL\" -f \"$CV_TEST_TMP/legacy.sql\" "
             "-c 'GRANT SELECT ON mcp_credentials TO gigachad_reader'",
             &st);
    ck_assert_msg(st == 0, "loading the legacy table failed: %s", out);
    free(out);
    char *n = cv_t_psql_on("GIGACHAD_URL", "SELECT count(*) FROM mcp_credentials");
    ck_assert_int_eq(atoi(n), ALL_ROWS);
    free(n);
    /* the export, exactly as docs/migration-from-gigachad.md says */
    out = sh("psql -X -q -t -A -v ON_ERROR_STOP=1 \"$GIGACHAD_URL\" -c \"SELECT row_to_json(t) FROM (SELECT id, "
             "server_id, template_id, server_name, encrypted_env, configured_integrations, created_at::timestamptz AS "
             "created_at, created_by, last_updated::timestamptz AS last_updated FROM mcp_credentials ORDER BY "
             "created_at, id) t\" > \"$CV_TEST_TMP/export.jsonl\"",
             &st);
    ck_assert_msg(st == 0, "export failed: %s", out);
    free(out);
    out = cv_test_sh_output("wc -l < \"$CV_TEST_TMP/export.jsonl\"");
    ck_assert_int_eq(atoi(out), ALL_ROWS);
    free(out);
}

/* A tenant of its own for one case, with a tenant-admin token. */
static void fresh_tenant(const char *prefix, char *id, size_t id_len, char *tok, size_t tok_len)
{
    cv_t_unique_id(prefix, id, id_len);
    cv_t_tenant_create(cl, svc.admin_token, id);
    char name[160];
    snprintf(name, sizeof(name), "it@%s.example", id);
    cv_t_token_mint(cl, svc.admin_token, name, "tenant-admin", id, NULL, tok, tok_len);
}

/* Imports the legacy database into `tenant`; returns the report. */
static char *import_db(const char *tenant, int *status)
{
    char args[256];
    snprintf(args, sizeof(args), "--tenant %s --from \"$GIGACHAD_URL\"", tenant);
    return import(KEY_ENV, args, status);
}

START_TEST(import_from_database_reports_each_row)
{
    char tenant[64], tok[160], sql[512];
    fresh_tenant("acme", tenant, sizeof(tenant), tok, sizeof(tok));
    int st;
    char *out = import_db(tenant, &st);
    ck_assert_msg(st == 3, "status %d (3: finished, some rows failed):\n%s", st, out);
    check_report(out, "imported");
    ck_assert_msg(strstr(out, "imported 4, already present 0, failed 6 (of 10 rows)") != NULL, "summary:\n%s", out);
    /* a pipe is not a terminal: no progress bar */
    ck_assert_ptr_null(strchr(out, '\r'));
    free(out);
    ck_assert_int_eq(count_rows(tenant), GOOD_ROWS);
    /* one audit event per imported record */
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM audit_events WHERE tenant_id = '%s' AND action = 'credentials.import' "
             "AND outcome = 'success'",
             tenant);
    ck_assert_int_eq(cv_t_psql_int(sql), GOOD_ROWS);
}
END_TEST

START_TEST(imported_records_match_the_originals)
{
    char tenant[64], tok[160], sql[512];
    fresh_tenant("acme", tenant, sizeof(tenant), tok, sizeof(tok));
    int st;
    free(import_db(tenant, &st));
    ck_assert_int_eq(st, 3);
    check_imported(tenant, tok);
    /* sealed under the tenant's key like any other record: credvault's format, version 3 */
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM mcp_credentials WHERE tenant_id = '%s' AND encrypted_env::jsonb->>'v' = '3' "
             "AND encrypted_env::jsonb->>'kid' = '%s/1' AND length(encrypted_env::jsonb->>'iv') = 24",
             tenant, tenant);
    ck_assert_int_eq(cv_t_psql_int(sql), GOOD_ROWS);
}
END_TEST

START_TEST(rerun_imports_nothing_twice)
{
    char tenant[64], tok[160], sql[512], args[256];
    fresh_tenant("acme", tenant, sizeof(tenant), tok, sizeof(tok));
    int st;
    free(import_db(tenant, &st));
    ck_assert_int_eq(st, 3);
    snprintf(sql, sizeof(sql), "SELECT coalesce(sum(encryptions), 0) FROM tenant_key_usage WHERE tenant_id = '%s'",
             tenant);
    long long before = cv_t_psql_int(sql);
    ck_assert_int_eq(before, GOOD_ROWS);
    char *out = import_db(tenant, &st);
    ck_assert_int_eq(st, 3);
    check_report(out, "present");
    ck_assert_msg(strstr(out, "imported 0, already present 4, failed 6 (of 10 rows)") != NULL, "summary:\n%s", out);
    free(out);
    ck_assert_int_eq(count_rows(tenant), GOOD_ROWS);
    ck_assert_int_eq(cv_t_psql_int(sql), before); /* nothing sealed again */
    /* and the file of the same rows finds them present too */
    snprintf(args, sizeof(args), "--tenant %s --from-file \"$CV_TEST_TMP/export.jsonl\"", tenant);
    out = import(KEY_ENV, args, &st);
    ck_assert_int_eq(st, 3);
    ck_assert_msg(strstr(out, "imported 0, already present 4, failed 6") != NULL, "summary:\n%s", out);
    free(out);
}
END_TEST

START_TEST(wrong_key_imports_nothing)
{
    int st;
    char *out = import("MCP_ENCRYPTION_KEY='not the key these records were written with at all'",
                       "--tenant gamma --from \"$GIGACHAD_URL\"", &st);
    ck_assert_msg(st == 1, "status %d:\n%s", st, out);
    ck_assert_msg(strstr(out, "opens none of the") != NULL, "no clear message:\n%s", out);
    ck_assert_ptr_nonnull(strstr(out, "nothing was imported"));
    ck_assert_ptr_nonnull(strstr(out, "key from MCP_ENCRYPTION_KEY"));
    /* one message, not a failure per row */
    ck_assert_ptr_null(strstr(out, "[legacy id"));
    ck_assert_ptr_null(strstr(out, "(of "));
    free(out);
    ck_assert_int_eq(count_rows("gamma"), 0);
    out = import("ENCRYPTION_KEY='wrong as well, and long enough to look real'",
                 "--tenant gamma --from-file \"$CV_TEST_TMP/export.jsonl\"", &st);
    ck_assert_int_eq(st, 1);
    ck_assert_ptr_nonnull(strstr(out, "key from ENCRYPTION_KEY"));
    free(out);
    ck_assert_int_eq(count_rows("gamma"), 0);
    char *n = cv_t_psql("SELECT count(*) FROM audit_events WHERE tenant_id = 'gamma' AND action LIKE 'credentials.%'");
    ck_assert_int_eq(atoi(n), 0);
    free(n);
}
END_TEST

START_TEST(key_sources_in_order)
{
    int st;
    char *out;
    /* ENCRYPTION_KEY when MCP_ENCRYPTION_KEY is unset or empty, as GigaChad read them */
    out = import("ENCRYPTION_KEY='" LEGACY_KEY "'", "--tenant gamma --from \"$GIGACHAD_URL\" --dry-run", &st);
    ck_assert_msg(st == 3 && strstr(out, "would import 4,") != NULL, "status %d:\n%s", st, out);
    free(out);
    out = import("MCP_ENCRYPTION_KEY= ENCRYPTION_KEY='" LEGACY_KEY "'", "--tenant gamma --from \"$GIGACHAD_URL\" --dry-run",
                 &st);
    ck_assert_msg(st == 3 && strstr(out, "would import 4,") != NULL, "status %d:\n%s", st, out);
    free(out);
    /* MCP_ENCRYPTION_KEY wins over ENCRYPTION_KEY */
    out = import(KEY_ENV " ENCRYPTION_KEY='wrong wrong wrong wrong wrong wrong'",
                 "--tenant gamma --from \"$GIGACHAD_URL\" --dry-run", &st);
    ck_assert_msg(st == 3, "status %d:\n%s", st, out);
    free(out);
    /* --key-file (one trailing newline is not part of the key) wins over both */
    ck_assert_int_eq(cv_test_sh("printf '%s\\n' '" LEGACY_KEY "' > \"$CV_TEST_TMP/legacy.key\" && "
                                "chmod 0600 \"$CV_TEST_TMP/legacy.key\""),
                     0);
    out = import("MCP_ENCRYPTION_KEY='wrong wrong wrong wrong wrong wrong'",
                 "--tenant gamma --from \"$GIGACHAD_URL\" --dry-run --key-file \"$CV_TEST_TMP/legacy.key\"", &st);
    ck_assert_msg(st == 3 && strstr(out, "would import 4,") != NULL, "status %d:\n%s", st, out);
    free(out);
    /* the key is the string's bytes: its hex spelling is another key */
    out = import("MCP_ENCRYPTION_KEY='636f727265637420686f727365'", "--tenant gamma --from \"$GIGACHAD_URL\" --dry-run",
                 &st);
    ck_assert_int_eq(st, 1);
    free(out);
    /* no key at all */
    out = import("", "--tenant gamma --from \"$GIGACHAD_URL\"", &st);
    ck_assert_int_eq(st, 2);
    ck_assert_ptr_nonnull(strstr(out, "MCP_ENCRYPTION_KEY"));
    free(out);
    ck_assert_int_eq(count_rows("gamma"), 0);
}
END_TEST

START_TEST(dry_run_writes_nothing)
{
    int st;
    char *out = import(KEY_ENV, "--tenant delta --from \"$GIGACHAD_URL\" --dry-run", &st);
    ck_assert_msg(st == 3, "status %d:\n%s", st, out);
    check_report(out, "would-import");
    ck_assert_ptr_nonnull(strstr(out, "would import 4, already present 0, failed 6 (of 10 rows); nothing was written"));
    free(out);
    ck_assert_int_eq(count_rows("delta"), 0);
    char *n = cv_t_psql("SELECT count(*) FROM audit_events WHERE tenant_id = 'delta' AND action LIKE 'credentials.%'");
    ck_assert_int_eq(atoi(n), 0);
    free(n);
}
END_TEST

START_TEST(import_from_file_matches)
{
    int st;
    char *out = import(KEY_ENV, "--tenant beta --from-file \"$CV_TEST_TMP/export.jsonl\"", &st);
    ck_assert_msg(st == 3, "status %d:\n%s", st, out);
    check_report(out, "imported");
    /* a file's rows are reported by line */
    ck_assert_ptr_nonnull(strstr(out, "[legacy id 5f0c6f36-1d8e-4c44-9a53-0a7c5b2f1e05, line 5]"));
    free(out);
    ck_assert_int_eq(count_rows("beta"), GOOD_ROWS);
    check_imported("beta", tok_beta);
}
END_TEST

START_TEST(hostile_export_lines)
{
    /* one good line (the first export line under a new server id: the legacy
     * format bound a ciphertext to nothing, so it still decrypts), then lines
     * that must each be reported with their line number and skipped */
    const char *script =
        "set -e; f=\"$CV_TEST_TMP/hostile.jsonl\"; good=$(head -n 1 \"$CV_TEST_TMP/export.jsonl\"); "
        "printf '%s\\n' \"$good\" | sed 's/grc-evidence-1765222822161/grc-evidence-1767000000000/' > \"$f\"; "
        "printf '\\n   \\n' >> \"$f\"; "                                             /* lines 2, 3: blank */
        "printf 'not json at all\\n' >> \"$f\"; "                                    /* 4 */
        "printf '%s\\n' \"$good\" | sed 's/\"server_name\"/\"nickname\"/' >> \"$f\"; " /* 5: unknown column */
        "printf '%s\\n' \"$good\" | sed 's/\"created_at\":\"[^\"]*\"/\"created_at\":\"yesterday\"/' >> \"$f\"; " /* 6 */
        "printf '%s\\n' \"$good\" | sed 's/\"server_id\":\"[^\"]*\",//' >> \"$f\"; "  /* 7: no server_id */
        "printf '[1,2,3]\\n' >> \"$f\"; "                                            /* 8 */
        "printf '%s\\n' \"$good\" | sed 's/\"server_id\":\"[^\"]*\"/\"server_id\":\"..\\/..\\/etc\"/' >> \"$f\"; " /* 9 */
        "printf '{\"server_id\":\"a\",\"server_id\":\"b\"}\\n' >> \"$f\"";           /* 10: duplicate key */
    ck_assert_int_eq(cv_test_sh(script), 0);
    int st;
    char *out = import(KEY_ENV, "--tenant epsilon --from-file \"$CV_TEST_TMP/hostile.jsonl\"", &st);
    ck_assert_msg(st == 3, "status %d:\n%s", st, out);
    ck_assert_msg(strstr(out, "imported     grc-evidence-1767000000000 [") != NULL, "good line:\n%s", out);
    const char *want[] = {"line 4]: the line is not one JSON object",
                          "line 5]: unknown column 'nickname'",
                          "line 6]: created_at is not a time",
                          "line 7]: server_id is missing",
                          "line 8]: the line is not one JSON object",
                          "line 9]: server_id must be",
                          "line 10]: the line is not one JSON object"};
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        ck_assert_msg(strstr(out, want[i]) != NULL, "missing '%s' in:\n%s", want[i], out);
    ck_assert_ptr_nonnull(strstr(out, "imported 1, already present 0, failed 7 (of 8 rows)"));
    free(out);
    ck_assert_int_eq(count_rows("epsilon"), 1);
}
END_TEST

START_TEST(usage_and_refusals)
{
    int st;
    char *out;
    out = import(KEY_ENV, "--from \"$GIGACHAD_URL\"", &st);
    ck_assert_int_eq(st, 2);
    free(out);
    out = import(KEY_ENV, "--tenant zeta", &st);
    ck_assert_int_eq(st, 2);
    free(out);
    out = import(KEY_ENV, "--tenant zeta --from \"$GIGACHAD_URL\" --from-file \"$CV_TEST_TMP/export.jsonl\"", &st);
    ck_assert_int_eq(st, 2);
    free(out);
    out = import(KEY_ENV, "--tenant no-such-tenant --from \"$GIGACHAD_URL\"", &st);
    ck_assert_int_eq(st, 1);
    ck_assert_ptr_nonnull(strstr(out, "not found"));
    free(out);
    out = import(KEY_ENV, "--tenant zeta --from-file /nonexistent/export.jsonl", &st);
    ck_assert_int_eq(st, 1);
    free(out);
    out = import(KEY_ENV, "--tenant zeta --from-file \"$CV_TEST_TMP\"", &st); /* a folder */
    ck_assert_int_eq(st, 1);
    free(out);
    /* a database that does not exist, and one without the table */
    out = import(KEY_ENV, "--tenant zeta --from \"$(printf '%s' \"$GIGACHAD_URL\" | sed 's|///gigachad|///nothere|')\"",
                 &st);
    ck_assert_int_eq(st, 1);
    ck_assert_ptr_nonnull(strstr(out, "cannot connect to the legacy database"));
    free(out);
    out = import(KEY_ENV,
                 "--tenant zeta --from \"$(printf '%s' \"$GIGACHAD_SUPER_URL\" | sed 's|///gigachad|///postgres|')\"", &st);
    ck_assert_int_eq(st, 1);
    ck_assert_ptr_nonnull(strstr(out, "mcp_credentials"));
    free(out);
}
END_TEST

START_TEST(progress_bar_on_a_terminal)
{
    if (cv_test_sh("command -v script >/dev/null") != 0) {
        /* util-linux is part of the base system; its absence would be a broken machine */
        ck_abort_msg("script(1) from util-linux is missing");
    }
    int st;
    char *out = sh("env -u ENCRYPTION_KEY MCP_ENCRYPTION_KEY='" LEGACY_KEY "' script -qec \"timeout 300 "
                   "\\\"$CREDVAULT_BIN\\\" import-legacy --tenant eta --from-file \\\"$CV_TEST_TMP/export.jsonl\\\" "
                   "--dry-run\" /dev/null",
                   &st);
    ck_assert_msg(strstr(out, "\r[##") != NULL, "no progress bar on a terminal:\n%s", out);
    ck_assert_ptr_nonnull(strstr(out, "10/10"));
    ck_assert_ptr_nonnull(strstr(out, "would import 4, already present 0, failed 6"));
    free(out);
}
END_TEST

START_TEST(no_value_or_key_anywhere)
{
    /* an import of its own, whatever ran before */
    char tenant[64], tok[160];
    fresh_tenant("acme", tenant, sizeof(tenant), tok, sizeof(tok));
    int st;
    free(import_db(tenant, &st));
    ck_assert_int_eq(st, 3);
    /* in everything the command printed, in credvault's database, in the service log */
    char *dump = cv_test_sh_output("pg_dump --no-owner \"$CV_PG_SUPERUSER_URL\"");
    ck_assert_ptr_nonnull(dump);
    ck_assert(strlen(dump) > 1000);
    ck_assert_ptr_nonnull(strstr(dump, "grc-evidence-1765222822161"));
    size_t i;
    json_t *row;
    json_array_foreach(spec, i, row) {
        const char *k;
        json_t *v;
        json_object_foreach(json_object_get(row, "env"), k, v) {
            const char *s = json_string_value(v);
            if (strlen(s) < 12) continue; /* "large", "xoxb-short": too common to mean anything */
            ck_assert_msg(strstr(all_output, s) == NULL, "a value of %s was printed", sget(row, "server_id"));
            ck_assert_msg(strstr(dump, s) == NULL, "a value of %s is in the database", sget(row, "server_id"));
            ck_assert(!cv_test_service_log_contains(&svc, s));
        }
    }
    ck_assert_ptr_null(strstr(all_output, LEGACY_KEY));
    ck_assert_ptr_null(strstr(dump, LEGACY_KEY));
    free(dump);
}
END_TEST

static Suite *import_suite(void)
{
    static const struct cv_t_suite_spec suite = {.name = "import_legacy", .timeout_s = 300, .once = fixture};
    return cv_t_suite_new(&suite,
                          CV_T_TESTS(import_from_database_reports_each_row, imported_records_match_the_originals,
                                     rerun_imports_nothing_twice, wrong_key_imports_nothing, key_sources_in_order,
                                     dry_run_writes_nothing, import_from_file_matches, hostile_export_lines,
                                     usage_and_refusals, progress_bar_on_a_terminal, no_value_or_key_anywhere));
}

/* CV_PG_SUPERUSER_URL names the credvault database as postgres; the legacy
 * database is "gigachad" in the same cluster, read as gigachad_reader. */
static int legacy_urls(void)
{
    const char *su = getenv("CV_PG_SUPERUSER_URL");
    const char *db = su ? strstr(su, "///credvault?") : NULL;
    const char *user = su ? strstr(su, "user=postgres") : NULL;
    if (!db || !user || user < db) return -1;
    char super[2048], reader[2048];
    snprintf(super, sizeof(super), "%.*s///gigachad?%s", (int)(db - su), su, db + strlen("///credvault?"));
    const char *u = strstr(super, "user=postgres");
    snprintf(reader, sizeof(reader), "%.*suser=gigachad_reader%s", (int)(u - super), super, u + strlen("user=postgres"));
    return setenv("GIGACHAD_SUPER_URL", super, 1) || setenv("GIGACHAD_URL", reader, 1);
}

int main(void)
{
    cv_json_alloc_install(); /* first: every entry point keeps JSON in secret memory */
    Suite *suite = import_suite();
    char path[1024];
    snprintf(path, sizeof(path), "%s/tests/fixtures/legacy-records.json", getenv("CV_SOURCE_DIR"));
    json_error_t err;
    spec = json_load_file(path, JSON_REJECT_DUPLICATES, &err);
    if (!json_is_array(spec) || json_array_size(spec) != ALL_ROWS) {
        fprintf(stderr, "cannot read %s\n", path);
        return 1;
    }
    if (legacy_urls() != 0) {
        fprintf(stderr, "CV_PG_SUPERUSER_URL is not the pg-cluster form\n");
        return 1;
    }
    if (cv_test_sh("command -v node >/dev/null") != 0) {
        fprintf(stderr, "node is needed for the legacy record generator\n");
        return getenv("CV_NO_SKIP") && strcmp(getenv("CV_NO_SKIP"), "1") == 0 ? 1 : 77;
    }
    if (cv_test_service_start(&svc, NULL) != 0) return 1;
    cl = cv_test_client_new(svc.base_url, svc.ca_file);
    const char *tenants[] = {"beta", "gamma", "delta", "epsilon", "zeta", "eta"};
    for (size_t i = 0; i < sizeof(tenants) / sizeof(tenants[0]); i++) {
        char cmd[128];
        snprintf(cmd, sizeof(cmd), "tenant create %s >/dev/null", tenants[i]);
        if (cv_test_cli(cmd, NULL, 0) != 0) return 1;
    }
    if (cv_test_cli("token create --name it@beta.example --role tenant-admin --tenant beta", tok_beta,
                    sizeof(tok_beta)))
        return 1;
    all_output = calloc(1, 1);

    int failed = cv_t_suite_run(suite, CK_NOFORK);
    cv_test_client_free(cl);
    json_decref(spec);
    free(all_output);
    int st = cv_test_service_stop(&svc);
    if (st != 0) {
        fprintf(stderr, "credvault serve exited with %d (log: %s)\n", st, svc.log_file);
        cv_test_sh("tail -n 60 \"$CV_TEST_TMP\"/service/serve-*.log >&2");
        failed++;
    }
    return failed ? 1 : 0;
}
