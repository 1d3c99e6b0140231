/* Key lifecycle over the API, end to end against the real `credvault serve`
 * on a fresh SoftHSM2 token and PostgreSQL cluster: tenant key rotation and
 * the record rewrap, the minimum decryption version (and a record below it
 * refused with a clear error), destruction of retired versions, automatic
 * rotation by count and by age, master rotation and retirement, and
 * crypto-shredding. Each happy path sits beside the refusals around it. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_lifecycle_fixture.h"
#include "credvault/json_alloc.h"

static struct cv_test_service svc;
static struct cv_test_client *cl;
static const char *admin;

static void tenant_admin(const char *tenant, char *out, size_t len)
{
    char name[96];
    snprintf(name, sizeof(name), "admin@%s.example", tenant);
    cv_t_token_mint(cl, admin, name, "tenant-admin", tenant, NULL, out, len);
}

static json_t *tenant_doc(const char *tenant)
{
    char path[128];
    snprintf(path, sizeof(path), "/api/tenants/%s", tenant);
    struct cv_test_response r = cv_t_request(cl, "GET", path, admin, NULL);
    cv_t_expect_status(&r, 200, NULL);
    json_t *d = json_incref(cv_t_data(&r));
    cv_test_response_free(&r);
    return d;
}

static const char *key_state(json_t *tenant, long version)
{
    size_t i;
    json_t *k;
    json_array_foreach(json_object_get(tenant, "keys"), i, k)
        if (json_integer_value(json_object_get(k, "version")) == version)
            return json_string_value(json_object_get(k, "state"));
    return NULL;
}

static long audit_count(const char *action, const char *target)
{
    char sql[512];
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM audit_events WHERE action = '%s' AND target = '%s'", action,
             target);
    return (long)cv_t_psql_int(sql);
}

/* ---- tenant key rotation and the record rewrap ---- */

START_TEST(tenant_rotation_and_rewrap)
{
    char tok[160], other[160], ids[6][160], masked[6][64], path[256];
    cv_t_tenant_create(cl, admin, "rot");
    cv_t_tenant_create(cl, admin, "rot-other");
    tenant_admin("rot", tok, sizeof(tok));
    tenant_admin("rot-other", other, sizeof(other));
    for (int i = 0; i < 5; i++) {
        char v[64];
        snprintf(v, sizeof(v), "ghp_rotation_value_%02d_abcdefghijklmnop", i);
        ck_assert_int_eq(lc_deploy(cl, tok, v, ids[i], sizeof(ids[i])), 0);
        ck_assert_int_eq(lc_key_version(cl, tok, ids[i]), 1);
        lc_masked(cl, tok, ids[i], masked[i], sizeof(masked[i]));
    }

    /* refusals first: only an admin rotates, and only a tenant that exists */
    cv_t_expect_call(cl, "POST", "/api/tenants/rot/keys/rotate", tok, NULL, 403, "forbidden");
    cv_t_expect_call(cl, "POST", "/api/tenants/nobody/keys/rotate", admin, NULL, 404, "not_found");
    cv_t_expect_call(cl, "POST", "/api/tenants/Bad_Id/keys/rotate", admin, NULL, 404, "not_found");
    cv_t_expect_call(cl, "POST", "/api/tenants/rot/rewrap", tok, NULL, 403, "forbidden");
    cv_t_expect_call(cl, "GET", "/api/tenants/rot/rewrap", admin, NULL, 404, "not_found"); /* no job yet */

    struct cv_test_response r = cv_t_request(cl, "POST", "/api/tenants/rot/keys/rotate", admin, NULL);
    cv_t_expect_status(&r, 201, NULL);
    ck_assert_int_eq(json_integer_value(json_object_get(cv_t_data(&r), "version")), 2);
    ck_assert_int_eq(json_integer_value(json_object_get(cv_t_data(&r), "previousVersion")), 1);
    ck_assert_ptr_null(strstr(r.body, "wrapped"));
    cv_test_response_free(&r);
    ck_assert_int_eq(audit_count("tenant_key.rotate", "rot/2"), 1);

    /* new writes use the new version; old records keep decrypting */
    ck_assert_int_eq(lc_deploy(cl, tok, "ghp_rotation_value_05_abcdefghijklmnop", ids[5], sizeof(ids[5])), 0);
    ck_assert_int_eq(lc_key_version(cl, tok, ids[5]), 2);
    lc_masked(cl, tok, ids[5], masked[5], sizeof(masked[5]));
    for (int i = 0; i < 5; i++) {
        char m[64];
        ck_assert_int_eq(lc_key_version(cl, tok, ids[i]), 1);
        lc_masked(cl, tok, ids[i], m, sizeof(m));
        ck_assert_str_eq(m, masked[i]);
    }
    json_t *t = tenant_doc("rot");
    ck_assert_int_eq(json_integer_value(json_object_get(t, "currentKeyVersion")), 2);
    ck_assert_str_eq(key_state(t, 1), "active");
    ck_assert_str_eq(key_state(t, 2), "active");
    json_decref(t);

    /* the rewrap: 202, then progress until done; the records move to v2 */
    r = cv_t_request(cl, "POST", "/api/tenants/rot/rewrap", admin, NULL);
    cv_t_expect_status(&r, 202, NULL);
    ck_assert_str_eq(json_string_value(json_object_get(cv_t_data(&r), "kind")), "record_rewrap");
    ck_assert_int_eq(json_integer_value(json_object_get(cv_t_data(&r), "targetVersion")), 2);
    ck_assert_int_eq(json_integer_value(json_object_get(cv_t_data(&r), "total")), 5);
    cv_test_response_free(&r);
    json_t *job = lc_wait_job(cl, admin, "/api/tenants/rot/rewrap", LC_WAIT_MS);
    ck_assert_msg(job != NULL, "the rewrap did not finish in time");
    ck_assert_str_eq(json_string_value(json_object_get(job, "state")), "done");
    ck_assert_int_eq(json_integer_value(json_object_get(job, "done")), 5);
    ck_assert_int_eq(json_integer_value(json_object_get(job, "remaining")), 0);
    ck_assert_int_eq(json_integer_value(json_object_get(job, "percent")), 100);
    json_decref(job);
    for (int i = 0; i < 6; i++) {
        char m[64];
        ck_assert_int_eq(lc_key_version(cl, tok, ids[i]), 2);
        lc_masked(cl, tok, ids[i], m, sizeof(m));
        ck_assert_str_eq(m, masked[i]);
    }
    /* a rewrap is no content change: the revision (If-Match) stays */
    snprintf(path, sizeof(path), "/api/mcp/servers/%s", ids[0]);
    r = cv_t_request(cl, "GET", path, tok, NULL);
    ck_assert_int_eq(json_integer_value(json_object_get(cv_t_data(&r), "revision")), 1);
    cv_test_response_free(&r);
    /* the rewrap's encryptions count on the new version: 1 deploy + 5 */
    t = tenant_doc("rot");
    size_t i;
    json_t *k;
    json_array_foreach(json_object_get(t, "keys"), i, k)
        if (json_integer_value(json_object_get(k, "version")) == 2)
            ck_assert_int_eq(json_integer_value(json_object_get(k, "encryptions")), 6);
    json_decref(t);
    ck_assert_int_eq(audit_count("tenant_key.rewrap_complete", "rot/2"), 1);

    /* progress is visible to the tenant's own tokens, not to another tenant's */
    cv_t_expect_call(cl, "GET", "/api/tenants/rot/rewrap", tok, NULL, 200, NULL);
    cv_t_expect_call(cl, "GET", "/api/tenants/rot/rewrap", other, NULL, 404, "not_found");
    /* a second rewrap with nothing to move finishes at once */
    cv_t_expect_call(cl, "POST", "/api/tenants/rot/rewrap", admin, NULL, 202, NULL);
    job = lc_wait_job(cl, admin, "/api/tenants/rot/rewrap", LC_WAIT_MS);
    ck_assert_ptr_nonnull(job);
    ck_assert_str_eq(json_string_value(json_object_get(job, "state")), "done");
    json_decref(job);
}
END_TEST

/* ---- minimum decryption version, and destroying what it retired ---- */

START_TEST(min_decrypt_version_and_destroy)
{
    char tok[160], a[160], b[160], sql[8192];
    cv_t_tenant_create(cl, admin, "mdv");
    tenant_admin("mdv", tok, sizeof(tok));
    ck_assert_int_eq(lc_deploy(cl, tok, "ghp_min_decrypt_value_a_0123456789", a, sizeof(a)), 0);
    ck_assert_int_eq(lc_deploy(cl, tok, "ghp_min_decrypt_value_b_0123456789", b, sizeof(b)), 0);
    /* a copy of record a under version 1, as a backup would hold it */
    snprintf(sql, sizeof(sql), "SELECT encrypted_env FROM mcp_credentials WHERE server_id = '%s'", a);
    char *old_env = cv_t_psql(sql);
    ck_assert_ptr_nonnull(strstr(old_env, "\"kid\":\"mdv/1\""));
    cv_t_expect_call(cl, "POST", "/api/tenants/mdv/keys/rotate", admin, NULL, 201, NULL);

    /* refused while records need version 1, and for bad values */
    struct cv_test_response r =
        cv_t_request(cl, "PUT", "/api/tenants/mdv/min-decrypt-version", admin, "{\"version\":2}");
    cv_t_expect_status(&r, 409, "records_need_older_key");
    ck_assert_ptr_nonnull(strstr(lc_error_message(&r), "2 records"));
    cv_test_response_free(&r);
    cv_t_expect_call(cl, "PUT", "/api/tenants/mdv/min-decrypt-version", admin, "{\"version\":3}", 400, NULL);
    cv_t_expect_call(cl, "PUT", "/api/tenants/mdv/min-decrypt-version", admin, "{\"version\":0}", 400, NULL);
    cv_t_expect_call(cl, "PUT", "/api/tenants/mdv/min-decrypt-version", admin, "{\"version\":\"2\"}", 400, NULL);
    cv_t_expect_call(cl, "PUT", "/api/tenants/mdv/min-decrypt-version", admin, "{\"version\":2,\"x\":1}", 400, NULL);
    cv_t_expect_call(cl, "PUT", "/api/tenants/mdv/min-decrypt-version", tok, "{\"version\":2}", 403, "forbidden");
    cv_t_expect_call(cl, "PUT", "/api/tenants/nobody/min-decrypt-version", admin, "{\"version\":2}", 404, NULL);

    cv_t_expect_call(cl, "POST", "/api/tenants/mdv/rewrap", admin, NULL, 202, NULL);
    json_t *job = lc_wait_job(cl, admin, "/api/tenants/mdv/rewrap", LC_WAIT_MS);
    ck_assert_ptr_nonnull(job);
    json_decref(job);
    r = cv_t_request(cl, "PUT", "/api/tenants/mdv/min-decrypt-version", admin, "{\"version\":2}");
    cv_t_expect_status(&r, 200, NULL);
    ck_assert_int_eq(json_integer_value(json_object_get(cv_t_data(&r), "minDecryptVersion")), 2);
    cv_test_response_free(&r);
    json_t *t = tenant_doc("mdv");
    ck_assert_str_eq(key_state(t, 1), "retired");
    ck_assert_str_eq(key_state(t, 2), "active");
    json_decref(t);
    char m[64];
    lc_masked(cl, tok, a, m, sizeof(m)); /* under version 2 now */
    cv_t_expect_call(cl, "PUT", "/api/tenants/mdv/min-decrypt-version", admin, "{\"version\":1}", 400, NULL);

    /* the database refuses a record written under the retired version… */
    snprintf(sql, sizeof(sql),
             "UPDATE mcp_credentials SET encrypted_env = '%s', key_version = 1 WHERE server_id = '%s'", old_env, a);
    int st;
    char *out = cv_t_psql_run(NULL, sql, &st);
    ck_assert_msg(st != 0 && strstr(out, "retired") != NULL, "the trigger let it through: %s", out);
    free(out);
    /* …and a restored one (triggers off, as a restore runs) does not decrypt:
     * a clear refusal naming the reason, not "decryption failed" */
    snprintf(sql, sizeof(sql),
             "SET session_replication_role = replica; UPDATE mcp_credentials SET encrypted_env = '%s', "
             "key_version = 1 WHERE server_id = '%s'",
             old_env, a);
    free(cv_t_psql(sql));
    char path[256];
    snprintf(path, sizeof(path), "/api/mcp/servers/%s/credentials", a);
    r = cv_t_request(cl, "GET", path, tok, NULL);
    cv_t_expect_status(&r, 409, "key_version_retired");
    ck_assert_ptr_nonnull(strstr(lc_error_message(&r), "minimum decryption version"));
    cv_test_response_free(&r);
    ck_assert(cv_test_service_log_contains(&svc, "decrypt_refused"));
    /* a merge update needs the old values: refused the same way */
    snprintf(path, sizeof(path), "/api/mcp/servers/%s/credentials?merge=true", a);
    r = cv_t_request(cl, "PUT", path, tok, "{\"env\":{\"GITHUB_ORG\":\"x\"}}");
    cv_t_expect_status(&r, 409, "key_version_retired");
    cv_test_response_free(&r);
    /* the other record is fine */
    lc_masked(cl, tok, b, m, sizeof(m));

    /* destroying the retired version would lose the restored record: refused */
    r = cv_t_request(cl, "POST", "/api/tenants/mdv/keys/destroy-retired", admin, NULL);
    cv_t_expect_status(&r, 409, "records_need_retired_key");
    cv_test_response_free(&r);
    cv_t_expect_call(cl, "POST", "/api/tenants/mdv/keys/destroy-retired", tok, NULL, 403, "forbidden");
    snprintf(path, sizeof(path), "/api/mcp/servers/%s", a);
    cv_t_expect_call(cl, "DELETE", path, tok, NULL, 200, NULL);
    r = cv_t_request(cl, "POST", "/api/tenants/mdv/keys/destroy-retired", admin, NULL);
    cv_t_expect_status(&r, 200, NULL);
    ck_assert_int_eq(json_integer_value(json_object_get(cv_t_data(&r), "count")), 1);
    ck_assert_int_eq(json_integer_value(json_array_get(json_object_get(cv_t_data(&r), "destroyed"), 0)), 1);
    cv_test_response_free(&r);
    t = tenant_doc("mdv");
    ck_assert_str_eq(key_state(t, 1), "destroyed");
    json_decref(t);
    ck_assert_int_eq(cv_t_psql_int("SELECT count(*) FROM tenant_keys WHERE tenant_id = 'mdv' AND version = 1 AND "
                                   "wrapped_key IS NULL AND binding IS NULL"),
                     1);
    ck_assert_int_eq(audit_count("tenant_key.destroy", "mdv/1"), 1);
    /* a record restored under the destroyed version: a clear refusal too */
    snprintf(sql, sizeof(sql),
             "SET session_replication_role = replica; UPDATE mcp_credentials SET encrypted_env = '%s', "
             "key_version = 1 WHERE server_id = '%s'",
             old_env, b);
    free(cv_t_psql(sql));
    snprintf(path, sizeof(path), "/api/mcp/servers/%s/credentials", b);
    cv_t_expect_call(cl, "GET", path, tok, NULL, 409, "key_version_destroyed");
    free(old_env);
}
END_TEST

/* ---- automatic rotation by encryption count and by age ---- */

START_TEST(automatic_rotation)
{
    /* a second instance on the same database and token with low limits */
    struct cv_test_service low;
    memset(&low, 0, sizeof(low));
    const char *env[] = {"CREDVAULT_KEY_MAX_ENCRYPTIONS=3", "CREDVAULT_KEY_MAX_AGE_DAYS=30", LC_NO_RATE_LIMITS, NULL};
    ck_assert_int_eq(cv_test_service_start(&low, env), 0);
    struct cv_test_client *lcl = cv_test_client_new(low.base_url, low.ca_file);
    char tok[160], ids[4][160];
    cv_t_tenant_create(cl, admin, "auto");
    tenant_admin("auto", tok, sizeof(tok));
    for (int i = 0; i < 4; i++) {
        char v[64];
        snprintf(v, sizeof(v), "ghp_auto_rotation_%d_abcdefghijklmn", i);
        ck_assert_int_eq(lc_deploy(lcl, tok, v, ids[i], sizeof(ids[i])), 0);
    }
    /* three encryptions under version 1, then the fourth write rotates first */
    ck_assert_int_eq(lc_key_version(lcl, tok, ids[0]), 1);
    ck_assert_int_eq(lc_key_version(lcl, tok, ids[2]), 1);
    ck_assert_int_eq(lc_key_version(lcl, tok, ids[3]), 2);
    ck_assert_int_eq(audit_count("tenant_key.auto_rotate", "auto/2"), 1);
    ck_assert(cv_test_service_log_contains(&low, "encryption limit"));
    for (int i = 0; i < 4; i++) {
        char m[64];
        lc_masked(lcl, tok, ids[i], m, sizeof(m));
    }

    /* age: a version older than 30 days rotates at the next write there,
     * but not on the instance with the default (365 days) */
    cv_t_tenant_create(cl, admin, "aged");
    char tok2[160], id[160];
    tenant_admin("aged", tok2, sizeof(tok2));
    free(cv_t_psql("UPDATE tenant_keys SET created_at = now() - interval '40 days' WHERE tenant_id = 'aged'"));
    ck_assert_int_eq(lc_deploy(cl, tok2, "ghp_aged_default_instance_0123456789", id, sizeof(id)), 0);
    ck_assert_int_eq(lc_key_version(cl, tok2, id), 1);
    ck_assert_int_eq(lc_deploy(lcl, tok2, "ghp_aged_low_instance_0123456789", id, sizeof(id)), 0);
    ck_assert_int_eq(lc_key_version(lcl, tok2, id), 2);
    ck_assert(cv_test_service_log_contains(&low, "age limit"));

    cv_test_client_free(lcl);
    ck_assert_int_eq(cv_test_service_stop(&low), 0);
}
END_TEST

/* ---- master key rotation and retirement ---- */

START_TEST(master_rotation_and_retire)
{
    char tok[160], ids[3][160], masked[3][64];
    cv_t_tenant_create(cl, admin, "mst");
    tenant_admin("mst", tok, sizeof(tok));
    for (int i = 0; i < 3; i++) {
        char v[64];
        snprintf(v, sizeof(v), "ghp_master_rotation_%d_abcdefghijk", i);
        ck_assert_int_eq(lc_deploy(cl, tok, v, ids[i], sizeof(ids[i])), 0);
        lc_masked(cl, tok, ids[i], masked[i], sizeof(masked[i]));
    }
    cv_t_expect_call(cl, "GET", "/api/admin/master-keys", tok, NULL, 403, "forbidden");
    cv_t_expect_call(cl, "POST", "/api/admin/master-keys/rotate", tok, NULL, 403, "forbidden");
    struct cv_test_response r = cv_t_request(cl, "GET", "/api/admin/master-keys", admin, NULL);
    cv_t_expect_status(&r, 200, NULL);
    long before = (long)json_integer_value(json_object_get(cv_t_data(&r), "current"));
    json_t *v0 = json_array_get(json_object_get(cv_t_data(&r), "versions"), 0);
    ck_assert(json_is_true(json_object_get(v0, "inToken")));
    cv_test_response_free(&r);

    r = cv_t_request(cl, "POST", "/api/admin/master-keys/rotate", admin, NULL);
    cv_t_expect_status(&r, 202, NULL);
    long now = (long)json_integer_value(json_object_get(cv_t_data(&r), "version"));
    ck_assert_int_eq(now, before + 1);
    cv_test_response_free(&r);
    json_t *job = lc_wait_job(cl, admin, "/api/admin/master-keys/rewrap", LC_WAIT_MS);
    ck_assert_msg(job != NULL, "the master rewrap did not finish in time");
    ck_assert_str_eq(json_string_value(json_object_get(job, "state")), "done");
    ck_assert_int_eq(json_integer_value(json_object_get(job, "targetVersion")), now);
    json_decref(job);
    char sql[256];
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM tenant_keys WHERE master_version <> %ld AND state <> 'destroyed'",
             now);
    ck_assert_int_eq(cv_t_psql_int(sql), 0);

    r = cv_t_request(cl, "GET", "/api/admin/master-keys", admin, NULL);
    cv_t_expect_status(&r, 200, NULL);
    ck_assert_int_eq(json_integer_value(json_object_get(cv_t_data(&r), "current")), now);
    size_t i;
    json_t *v;
    json_array_foreach (json_object_get(cv_t_data(&r), "versions"), i, v) {
        long ver = (long)json_integer_value(json_object_get(v, "version"));
        ck_assert_str_eq(json_string_value(json_object_get(v, "state")), ver == now ? "active" : "retired");
        if (ver != now) ck_assert_int_eq(json_integer_value(json_object_get(v, "tenantKeys")), 0);
    }
    cv_test_response_free(&r);

    /* retire: never the current one, never nonsense, once for the old one */
    char path[128];
    snprintf(path, sizeof(path), "/api/admin/master-keys/%ld/retire", now);
    cv_t_expect_call(cl, "POST", path, admin, NULL, 409, "master_key_current");
    cv_t_expect_call(cl, "POST", "/api/admin/master-keys/abc/retire", admin, NULL, 400, NULL);
    cv_t_expect_call(cl, "POST", "/api/admin/master-keys/99/retire", admin, NULL, 404, NULL);
    snprintf(path, sizeof(path), "/api/admin/master-keys/%ld/retire", before);
    cv_t_expect_call(cl, "POST", path, tok, NULL, 403, "forbidden");
    r = cv_t_request(cl, "POST", path, admin, NULL);
    cv_t_expect_status(&r, 200, NULL);
    ck_assert(json_is_true(json_object_get(cv_t_data(&r), "destroyed")));
    cv_test_response_free(&r);
    cv_t_expect_call(cl, "POST", path, admin, NULL, 404, NULL);
    /* the token holds the new master key only */
    char status[4096];
    ck_assert_int_eq(cv_test_cli("hsm status --json", status, sizeof(status)), 0);
    json_t *st = json_loads(status, 0, NULL);
    ck_assert_ptr_nonnull(st);
    json_t *versions = json_object_get(st, "masterKeyVersions");
    ck_assert_int_eq(json_array_size(versions), 1);
    ck_assert_int_eq(json_integer_value(json_array_get(versions, 0)), now);
    json_decref(st);

    /* every record still opens (tenant keys are under the new master), new
     * tenants are wrapped under it, and a restart passes the canary check */
    for (int k = 0; k < 3; k++) {
        char m[64];
        lc_masked(cl, tok, ids[k], m, sizeof(m));
        ck_assert_str_eq(m, masked[k]);
    }
    cv_t_tenant_create(cl, admin, "mst-new");
    json_t *t = tenant_doc("mst-new");
    json_t *k0 = json_array_get(json_object_get(t, "keys"), 0);
    ck_assert_int_eq(json_integer_value(json_object_get(k0, "masterVersion")), now);
    json_decref(t);
    ck_assert_int_eq(cv_test_service_stop(&svc), 0);
    ck_assert_int_eq(cv_test_service_start(&svc, lc_default_env), 0);
    cv_test_client_free(cl);
    cl = cv_test_client_new(svc.base_url, svc.ca_file);
    for (int k = 0; k < 3; k++) {
        char m[64];
        lc_masked(cl, tok, ids[k], m, sizeof(m));
        ck_assert_str_eq(m, masked[k]);
    }
    char label[64];
    snprintf(label, sizeof(label), "credvault-master-%ld", before);
    ck_assert_int_eq(audit_count("master_key.retire", label), 1);
}
END_TEST

/* ---- crypto-shredding ---- */

START_TEST(crypto_shredding)
{
    char tok[160], work[160], ids[3][160], sql[8192];
    cv_t_tenant_create(cl, admin, "doomed");
    cv_t_tenant_create(cl, admin, "survivor");
    tenant_admin("doomed", tok, sizeof(tok));
    char stok[160], sid[160], smasked[64];
    tenant_admin("survivor", stok, sizeof(stok));
    ck_assert_int_eq(lc_deploy(cl, stok, "ghp_survivor_value_0123456789abcd", sid, sizeof(sid)), 0);
    lc_masked(cl, stok, sid, smasked, sizeof(smasked));
    for (int i = 0; i < 3; i++) {
        char v[64];
        snprintf(v, sizeof(v), "ghp_doomed_value_%d_abcdefghijklmno", i);
        ck_assert_int_eq(lc_deploy(cl, tok, v, ids[i], sizeof(ids[i])), 0);
    }
    cv_t_token_mint(cl, admin, "worker", "workload", "doomed", ids[0], work, sizeof(work));
    /* what a backup would hold of one record */
    snprintf(sql, sizeof(sql), "SELECT encrypted_env FROM mcp_credentials WHERE server_id = '%s'", ids[0]);
    char *env = cv_t_psql(sql);
    snprintf(sql, sizeof(sql),
             "SELECT encode(binding, 'hex') || ' ' || credential_names::text FROM mcp_credentials WHERE server_id = '%s'",
             ids[0]);
    char *bound = cv_t_psql(sql); /* "<binding hex> <names>": the row's HSM binding and what it covers */
    bound[64] = '\0';

    /* refusals: no confirm, a wrong one, a non-admin */
    cv_t_expect_call(cl, "DELETE", "/api/tenants/doomed", admin, NULL, 400, NULL);
    cv_t_expect_call(cl, "DELETE", "/api/tenants/doomed?confirm=survivor", admin, NULL, 400, NULL);
    cv_t_expect_call(cl, "DELETE", "/api/tenants/doomed?confirm=doomed", tok, NULL, 403, "forbidden");
    cv_t_expect_call(cl, "DELETE", "/api/tenants/nobody?confirm=nobody", admin, NULL, 404, NULL);
    cv_t_expect_call(cl, "GET", "/api/mcp/servers", tok, NULL, 200, NULL);  /* still alive */
    cv_t_expect_call(cl, "GET", "/api/mcp/servers", work, NULL, 403, NULL); /* a live workload token */

    struct cv_test_response r = cv_t_request(cl, "DELETE", "/api/tenants/doomed?confirm=doomed", admin, NULL);
    cv_t_expect_status(&r, 200, NULL);
    ck_assert_int_eq(json_integer_value(json_object_get(cv_t_data(&r), "records")), 3);
    ck_assert_int_eq(json_integer_value(json_object_get(cv_t_data(&r), "keyVersionsDestroyed")), 1);
    cv_test_response_free(&r);

    /* tokens refused, tenant gone, nothing of it left in the database but the trail */
    cv_t_expect_call(cl, "GET", "/api/mcp/servers", tok, NULL, 401, NULL);
    cv_t_expect_call(cl, "GET", "/api/mcp/servers", work, NULL, 401, NULL);
    cv_t_expect_call(cl, "GET", "/api/tenants/doomed", admin, NULL, 404, NULL);
    ck_assert_int_eq(cv_t_psql_int("SELECT count(*) FROM mcp_credentials WHERE tenant_id = 'doomed'"), 0);
    ck_assert_int_eq(cv_t_psql_int("SELECT count(*) FROM tenant_keys WHERE tenant_id = 'doomed'"), 0);
    ck_assert_int_eq(cv_t_psql_int("SELECT count(*) FROM api_tokens WHERE tenant_id = 'doomed'"), 0);
    ck_assert_int_eq(audit_count("tenant.shred", "doomed"), 3); /* two denied, one success */
    ck_assert_int_eq(cv_t_psql_int("SELECT count(*) FROM audit_events WHERE action = 'tenant.shred' AND target = "
                                   "'doomed' AND outcome = 'success'"),
                     1);
    /* the other tenant is untouched */
    char m[64];
    lc_masked(cl, stok, sid, m, sizeof(m));
    ck_assert_str_eq(m, smasked);

    /* a record brought back from a backup finds no key that opens it: the
     * id may be reused, but the new tenant's key is another key */
    cv_t_tenant_create(cl, admin, "doomed");
    char tok2[160];
    tenant_admin("doomed", tok2, sizeof(tok2));
    snprintf(sql, sizeof(sql),
             "INSERT INTO mcp_credentials (tenant_id, server_id, template_id, server_name, encrypted_env, key_version, "
             "created_by, updated_by, binding, credential_names) VALUES ('doomed', '%s', 'github', 'restored', '%s', 1, "
             "'restore', 'restore', decode('%s', 'hex'), '%s')",
             ids[0], env, bound, bound + 65);
    free(cv_t_psql(sql));
    char path[256];
    snprintf(path, sizeof(path), "/api/mcp/servers/%s/credentials", ids[0]);
    r = cv_t_request(cl, "GET", path, tok2, NULL);
    cv_t_expect_status(&r, 500, "decrypt_failed");
    cv_test_response_free(&r);
    free(env);
    free(bound);
}
END_TEST

static Suite *lifecycle_suite(void)
{
    static const struct cv_t_suite_spec spec = {.name = "lifecycle_api", .timeout_s = 240};
    return cv_t_suite_new(&spec, CV_T_TESTS(tenant_rotation_and_rewrap, min_decrypt_version_and_destroy,
                                            automatic_rotation, crypto_shredding, master_rotation_and_retire));
}

int main(void)
{
    cv_json_alloc_install(); /* first: every entry point keeps JSON in secret memory */
    Suite *suite = lifecycle_suite();
    if (cv_test_service_start(&svc, lc_default_env) != 0) return 1;
    admin = svc.admin_token;
    cl = cv_test_client_new(svc.base_url, svc.ca_file);
    int failed = cv_t_suite_run(suite, CK_NOFORK);
    cv_test_client_free(cl);
    int st = cv_test_service_stop(&svc);
    if (st != 0) {
        fprintf(stderr, "credvault serve exited with %d (log: %s)\n", st, svc.log_file);
        cv_test_sh("tail -n 30 \"$CV_TEST_TMP\"/service/serve-*.log >&2");
        failed++;
    }
    return failed ? 1 : 0;
}
