/* The store against a real PostgreSQL cluster: every call's success and its
 * failures (conflict, not found, stale revision, refused input), with the
 * hostile cases first in each test. */
#include <inttypes.h>

#include "test_store_fixture.h"

static void setup(void)
{
    t_migrate();
    struct cv_store *st = t_open(t_app_url());
    t_seed_master(st, 1);
    t_seed_tenant(st, "acme");
    t_seed_tenant(st, "globex");
    cv_store_close(st);
}

/* ---- master keys ---- */

struct master_seen {
    unsigned n;
    struct cv_master_key_row rows[4];
};

static int collect_master(void *arg, const struct cv_master_key_row *row)
{
    struct master_seen *s = arg;
    if (s->n < 4) s->rows[s->n] = *row;
    s->n++;
    return 0;
}

START_TEST(master_keys)
{
    struct cv_store *st = t_open(t_app_url());
    struct cv_master_key_row m;
    memset(&m, 0, sizeof(m));
    m.version = 2;
    t_key_ref(&m.canary, "_canary", 1, 2, 0xc2);
    m.canary.wrapped_len = CV_WRAPPED_KEY_MAX_BYTES + 1;
    T_ERR(cv_store_master_key_insert(st, &m), CV_ERR_INPUT);
    m.canary.wrapped_len = 40;
    m.canary.master_version = 1; /* a canary must prove the master it is stored under */
    T_ERR(cv_store_master_key_insert(st, &m), CV_ERR_INPUT);
    m.canary.master_version = 2;
    snprintf(m.state, sizeof(m.state), "destroyed");
    T_ERR(cv_store_master_key_insert(st, &m), CV_ERR_INPUT);
    m.state[0] = '\0'; /* "" means active */
    T_OK(cv_store_master_key_insert(st, &m));
    T_ERR(cv_store_master_key_insert(st, &m), CV_ERR_CONFLICT);

    struct master_seen seen = {0};
    T_OK(cv_store_master_key_list(st, collect_master, &seen));
    ck_assert_uint_eq(seen.n, 2);
    ck_assert_uint_eq(seen.rows[0].version, 1);
    ck_assert_uint_ge(seen.rows[0].tenant_keys, 2); /* acme and globex */
    const struct cv_master_key_row *two = &seen.rows[1];
    ck_assert_uint_eq(two->version, 2);
    ck_assert_str_eq(two->state, "active");
    ck_assert_uint_eq(two->tenant_keys, 0);
    /* the canary comes back exactly as stored */
    ck_assert_str_eq(two->canary.tenant_id, "_canary");
    ck_assert_uint_eq(two->canary.version, 1);
    ck_assert_uint_eq(two->canary.master_version, 2);
    ck_assert_uint_eq(two->canary.wrapped_len, 40);
    ck_assert_mem_eq(two->canary.wrapped, m.canary.wrapped, 40);
    ck_assert_mem_eq(two->canary.binding, m.canary.binding, CV_KEY_BINDING_BYTES);
    ck_assert(two->created_at_ms > 1700000000000LL);

    struct cv_master_key_row cur;
    T_OK(cv_store_master_key_current(st, &cur));
    ck_assert_uint_eq(cur.version, 2);
    cv_store_close(st);
}
END_TEST

/* ---- tenants ---- */

struct tenant_seen {
    unsigned n;
    char ids[8][CV_TENANT_ID_MAX_BYTES + 1];
};

static int collect_tenant(void *arg, const struct cv_tenant_row *row)
{
    struct tenant_seen *s = arg;
    if (s->n < 8) snprintf(s->ids[s->n], sizeof(s->ids[0]), "%s", row->id);
    s->n++;
    return 0;
}

static int stop_at_first(void *arg, const struct cv_tenant_row *row)
{
    (void)row;
    (*(unsigned *)arg)++;
    return 1;
}

START_TEST(tenants)
{
    struct cv_store *st = t_open(t_app_url());
    struct cv_tenant_row t;
    struct cv_tenant_key_row k;
    memset(&t, 0, sizeof(t));
    memset(&k, 0, sizeof(k));
    snprintf(t.name, sizeof(t.name), "Initech");
    t_key_ref(&k.ref, "initech", 1, 1, 0x21);

    snprintf(t.id, sizeof(t.id), "Initech"); /* uppercase */
    T_ERR(cv_store_tenant_create(st, &t, &k, "admin", NULL), CV_ERR_INPUT);
    snprintf(t.id, sizeof(t.id), "initech");
    t_key_ref(&k.ref, "acme", 1, 1, 0x21); /* key of another tenant */
    T_ERR(cv_store_tenant_create(st, &t, &k, "admin", NULL), CV_ERR_INPUT);
    t_key_ref(&k.ref, "initech", 1, 99, 0x21); /* no such master: nothing is created */
    T_ERR(cv_store_tenant_create(st, &t, &k, "admin", NULL), CV_ERR_NOT_FOUND);
    T_ERR(cv_store_tenant_get(st, "initech", &t), CV_ERR_NOT_FOUND);
    snprintf(t.name, sizeof(t.name), "Initech");
    t.name[0] = '\0';
    t_key_ref(&k.ref, "initech", 1, 1, 0x21);
    T_ERR(cv_store_tenant_create(st, &t, &k, "admin", NULL), CV_ERR_INPUT); /* empty name */
    snprintf(t.name, sizeof(t.name), "Initech");
    T_OK(cv_store_tenant_create(st, &t, &k, "admin", NULL));
    T_ERR(cv_store_tenant_create(st, &t, &k, "admin", NULL), CV_ERR_CONFLICT);

    struct cv_tenant_row got;
    T_ERR(cv_store_tenant_get(st, "nobody", &got), CV_ERR_NOT_FOUND);
    T_ERR(cv_store_tenant_get(st, "../etc", &got), CV_ERR_INPUT);
    T_OK(cv_store_tenant_get(st, "initech", &got));
    ck_assert_str_eq(got.id, "initech");
    ck_assert_str_eq(got.name, "Initech");
    ck_assert_uint_eq(got.current_key_version, 1);
    ck_assert_uint_eq(got.min_decrypt_version, 1);
    ck_assert(got.created_at_ms > 1700000000000LL);

    struct tenant_seen seen = {0};
    uint64_t total = 0;
    T_ERR(cv_store_tenant_list(st, CV_STORE_LIST_MAX + 1, 0, collect_tenant, &seen, &total), CV_ERR_INPUT);
    T_OK(cv_store_tenant_list(st, 100, 0, collect_tenant, &seen, &total));
    ck_assert_uint_eq(total, 3);
    ck_assert_uint_eq(seen.n, 3);
    ck_assert_str_eq(seen.ids[0], "acme"); /* ordered by id */
    ck_assert_str_eq(seen.ids[1], "globex");
    ck_assert_str_eq(seen.ids[2], "initech");
    memset(&seen, 0, sizeof(seen));
    T_OK(cv_store_tenant_list(st, 1, 1, collect_tenant, &seen, &total));
    ck_assert_uint_eq(seen.n, 1);
    ck_assert_str_eq(seen.ids[0], "globex");
    memset(&seen, 0, sizeof(seen));
    total = 0;
    T_OK(cv_store_tenant_list(st, 0, 0, collect_tenant, &seen, &total)); /* count only */
    ck_assert_uint_eq(seen.n, 0);
    ck_assert_uint_eq(total, 3);
    T_OK(cv_store_tenant_list(st, 10, 50, collect_tenant, &seen, &total)); /* past the end */
    ck_assert_uint_eq(seen.n, 0);
    ck_assert_uint_eq(total, 3);
    unsigned calls = 0;
    T_OK(cv_store_tenant_list(st, 10, 0, stop_at_first, &calls, NULL));
    ck_assert_uint_eq(calls, 1);
    cv_store_close(st);
}
END_TEST

/* ---- tenant keys ---- */

static int count_keys(void *arg, const struct cv_tenant_key_row *row)
{
    (void)row;
    (*(unsigned *)arg)++;
    return 0;
}

START_TEST(tenant_keys)
{
    struct cv_store *st = t_open(t_app_url());
    t_seed_tenant(st, "keyring");
    struct cv_tenant_key_row k;
    T_ERR(cv_store_tenant_key_get(st, "keyring", 2, &k), CV_ERR_NOT_FOUND);
    T_ERR(cv_store_tenant_key_get(st, "keyring", 0, &k), CV_ERR_NOT_FOUND);
    T_ERR(cv_store_tenant_key_get(st, "nobody", 1, &k), CV_ERR_NOT_FOUND);
    T_ERR(cv_store_tenant_key_current(st, "nobody", &k), CV_ERR_NOT_FOUND);
    T_ERR(cv_store_tenant_key_get(st, "", 1, &k), CV_ERR_INPUT);
    T_OK(cv_store_tenant_key_get(st, "keyring", 1, &k));
    struct cv_key_ref want;
    t_key_ref(&want, "keyring", 1, 1, 0x11);
    ck_assert_str_eq(k.ref.tenant_id, "keyring");
    ck_assert_uint_eq(k.ref.version, 1);
    ck_assert_uint_eq(k.ref.master_version, 1);
    ck_assert_uint_eq(k.ref.wrapped_len, 40);
    ck_assert_mem_eq(k.ref.wrapped, want.wrapped, 40);
    ck_assert_mem_eq(k.ref.binding, want.binding, CV_KEY_BINDING_BYTES);
    ck_assert_str_eq(k.state, "active");
    ck_assert_uint_eq(k.encryptions, 0);

    /* a rotation (written as the owner would) and a crypto-shredded version */
    PGconn *pg = t_pg(t_owner_url());
    t_run(pg, "BEGIN; SELECT set_config('credvault.scope', 'platform', true);"
              "UPDATE tenant_keys SET state = 'retired' WHERE tenant_id = 'keyring' AND version = 1;"
              "INSERT INTO tenant_keys (tenant_id, version, master_version, wrapped_key, binding) VALUES"
              " ('keyring', 2, 1, decode(repeat('22', 40), 'hex'), decode(repeat('dd', 32), 'hex'));"
              "INSERT INTO tenant_keys (tenant_id, version, master_version, state) VALUES ('keyring', 3, 1, 'destroyed');"
              "COMMIT");
    PQfinish(pg);
    T_OK(cv_store_tenant_key_current(st, "keyring", &k));
    ck_assert_uint_eq(k.ref.version, 2);
    ck_assert_uint_eq(k.ref.wrapped[39], 0x22);
    T_OK(cv_store_tenant_key_get(st, "keyring", 3, &k));
    ck_assert_str_eq(k.state, "destroyed");
    ck_assert_uint_eq(k.ref.wrapped_len, 0);
    unsigned n = 0;
    T_OK(cv_store_tenant_key_list(st, "keyring", count_keys, &n));
    ck_assert_uint_eq(n, 3);
    struct cv_tenant_row t;
    T_OK(cv_store_tenant_get(st, "keyring", &t));
    ck_assert_uint_eq(t.current_key_version, 2);
    cv_store_close(st);
}
END_TEST

/* ---- tokens ---- */

static void hash_of(uint8_t h[CV_TOKEN_HASH_BYTES], uint8_t fill)
{
    memset(h, fill, CV_TOKEN_HASH_BYTES);
    h[0] = 0x5a;
}

static void token(struct cv_token_row *t, const char *role, const char *tenant, const char *server)
{
    memset(t, 0, sizeof(*t));
    snprintf(t->name, sizeof(t->name), "%s token", role);
    snprintf(t->role, sizeof(t->role), "%s", role);
    snprintf(t->tenant_id, sizeof(t->tenant_id), "%s", tenant);
    snprintf(t->server_id, sizeof(t->server_id), "%s", server);
    snprintf(t->created_by, sizeof(t->created_by), "admin@test");
    /* the verifier is the domain's (an HSM HMAC); here only stored and read back */
    static unsigned n;
    snprintf(t->id, sizeof(t->id), "00000000-0000-4000-8000-%012u", ++n);
    memset(t->verifier, 0x5c, sizeof(t->verifier));
    t->has_verifier = 1;
}

START_TEST(tokens)
{
    struct cv_store *st = t_open(t_app_url());
    uint8_t h[CV_TOKEN_HASH_BYTES];
    struct cv_token_row t, got;

    token(&t, "admin", "acme", "");
    hash_of(h, 1);
    T_ERR(cv_store_token_insert(st, &t, h, NULL), CV_ERR_INPUT); /* admins have no tenant */
    token(&t, "tenant-admin", "", "");
    T_ERR(cv_store_token_insert(st, &t, h, NULL), CV_ERR_INPUT);
    token(&t, "workload", "acme", "");
    T_ERR(cv_store_token_insert(st, &t, h, NULL), CV_ERR_INPUT); /* workload needs a server */
    token(&t, "auditor", "acme", "srv-1");
    T_ERR(cv_store_token_insert(st, &t, h, NULL), CV_ERR_INPUT);
    token(&t, "root", "", "");
    T_ERR(cv_store_token_insert(st, &t, h, NULL), CV_ERR_INPUT);
    token(&t, "auditor", "nobody", "");
    T_ERR(cv_store_token_insert(st, &t, h, NULL), CV_ERR_NOT_FOUND);
    token(&t, "auditor", "acme", "");
    snprintf(t.id, sizeof(t.id), "not-a-uuid");
    T_ERR(cv_store_token_insert(st, &t, h, NULL), CV_ERR_INPUT);

    /* a row without its verifier is never written */
    token(&t, "admin", "", "");
    t.has_verifier = 0;
    T_ERR(cv_store_token_insert(st, &t, h, NULL), CV_ERR_INTERNAL);
    /* platform admin */
    token(&t, "admin", "", "");
    T_OK(cv_store_token_insert(st, &t, h, NULL));
    ck_assert_uint_eq(strlen(t.id), CV_STORE_UUID_BYTES);
    ck_assert(t.created_at_ms > 1700000000000LL);
    char admin_id[CV_STORE_UUID_BYTES + 1];
    snprintf(admin_id, sizeof(admin_id), "%s", t.id);
    token(&t, "auditor", "acme", "");
    T_ERR(cv_store_token_insert(st, &t, h, NULL), CV_ERR_CONFLICT); /* same hash */

    /* tenant admin with a caller-chosen id and an expiry */
    token(&t, "tenant-admin", "acme", "");
    snprintf(t.id, sizeof(t.id), "6f1c2b7e-0d4a-4c8e-9b1a-2f3e4d5c6b7a");
    t.expires_at_ms = 1893456000123LL;
    hash_of(h, 2);
    T_OK(cv_store_token_insert(st, &t, h, NULL));
    ck_assert_str_eq(t.id, "6f1c2b7e-0d4a-4c8e-9b1a-2f3e4d5c6b7a");
    hash_of(h, 3);
    T_ERR(cv_store_token_insert(st, &t, h, NULL), CV_ERR_CONFLICT); /* same id */

    token(&t, "workload", "acme", "grc-evidence-1");
    hash_of(h, 4);
    T_OK(cv_store_token_insert(st, &t, h, NULL));
    char workload_id[CV_STORE_UUID_BYTES + 1];
    snprintf(workload_id, sizeof(workload_id), "%s", t.id);

    /* lookup */
    hash_of(h, 9);
    T_ERR(cv_store_token_lookup(st, h, &got), CV_ERR_NOT_FOUND);
    hash_of(h, 1);
    T_OK(cv_store_token_lookup(st, h, &got));
    ck_assert_str_eq(got.id, admin_id);
    ck_assert_str_eq(got.role, "admin");
    ck_assert_str_eq(got.tenant_id, "");
    ck_assert_str_eq(got.server_id, "");
    ck_assert_str_eq(got.name, "admin token");
    ck_assert_str_eq(got.created_by, "admin@test");
    ck_assert_int_eq(got.expires_at_ms, 0);
    ck_assert_int_eq(got.revoked, 0);
    ck_assert_int_eq(got.has_verifier, 1);
    ck_assert_int_eq(got.verifier[0], 0x5c);
    hash_of(h, 2);
    T_OK(cv_store_token_lookup(st, h, &got));
    ck_assert_str_eq(got.tenant_id, "acme");
    ck_assert_int_eq(got.expires_at_ms, 1893456000123LL); /* exact to the millisecond */
    hash_of(h, 4);
    T_OK(cv_store_token_lookup(st, h, &got));
    ck_assert_str_eq(got.server_id, "grc-evidence-1");

    /* revoke: another tenant's token is not found there */
    T_ERR(cv_store_token_revoke(st, "globex", workload_id, NULL), CV_ERR_NOT_FOUND);
    T_ERR(cv_store_token_revoke(st, "acme", admin_id, NULL), CV_ERR_NOT_FOUND); /* platform token */
    T_ERR(cv_store_token_revoke(st, "acme", "'; DELETE FROM api_tokens; --", NULL), CV_ERR_NOT_FOUND);
    T_ERR(cv_store_token_revoke(st, "acme", "00000000-0000-4000-8000-000000000000", NULL), CV_ERR_NOT_FOUND);
    T_OK(cv_store_token_revoke(st, "acme", workload_id, NULL));
    T_OK(cv_store_token_revoke(st, "acme", workload_id, NULL)); /* idempotent */
    T_OK(cv_store_token_lookup(st, h, &got));
    ck_assert_int_eq(got.revoked, 1); /* returned with the flag: the caller decides */
    T_OK(cv_store_token_revoke(st, NULL, admin_id, NULL)); /* platform scope */
    hash_of(h, 1);
    T_OK(cv_store_token_lookup(st, h, &got));
    ck_assert_int_eq(got.revoked, 1);
    cv_store_close(st);
}
END_TEST

/* ---- servers ---- */

struct server_seen {
    unsigned n;
    char ids[8][CV_SERVER_ID_MAX_BYTES + 1];
    int env_seen;
};

static int collect_server(void *arg, const struct cv_server_row *row)
{
    struct server_seen *s = arg;
    if (s->n < 8) snprintf(s->ids[s->n], sizeof(s->ids[0]), "%s", row->server_id);
    s->env_seen |= row->encrypted_env != NULL;
    s->n++;
    return 0;
}

static uint64_t encryptions(struct cv_store *st, const char *tenant)
{
    struct cv_tenant_key_row k;
    T_OK(cv_store_tenant_key_get(st, tenant, 1, &k));
    return k.encryptions;
}

START_TEST(servers_insert_get)
{
    struct cv_store *st = t_open(t_app_url());
    struct cv_server_row s, got;
    uint64_t before = encryptions(st, "acme");

    t_server(&s, "acme", "");
    T_ERR(cv_store_server_insert(st, &s, NULL), CV_ERR_INPUT);
    char long_id[CV_SERVER_ID_MAX_BYTES + 2];
    memset(long_id, 'x', sizeof(long_id) - 1);
    long_id[sizeof(long_id) - 1] = '\0';
    T_ERR(cv_store_server_get(st, "acme", long_id, 0, &got), CV_ERR_INPUT);
    t_server(&s, "ACME", "srv-1");
    T_ERR(cv_store_server_insert(st, &s, NULL), CV_ERR_INPUT);
    t_server(&s, "acme", "srv-1");
    s.encrypted_env = NULL;
    T_ERR(cv_store_server_insert(st, &s, NULL), CV_ERR_INPUT);
    t_server(&s, "acme", "srv-1");
    s.configured_integrations = (char *)"{\"AWS\":true}"; /* not an array: refused by the database */
    T_ERR(cv_store_server_insert(st, &s, NULL), CV_ERR_INPUT);
    t_server(&s, "acme", "srv-1");
    s.credential_names = (char *)"[not json";
    T_ERR(cv_store_server_insert(st, &s, NULL), CV_ERR_INPUT);
    t_server(&s, "acme", "srv-1");
    s.key_version = 7; /* no such key version */
    T_ERR(cv_store_server_insert(st, &s, NULL), CV_ERR_NOT_FOUND);
    t_server(&s, "nobody", "srv-1");
    T_ERR(cv_store_server_insert(st, &s, NULL), CV_ERR_NOT_FOUND);
    t_server(&s, "acme", "srv-1");
    snprintf(s.server_name, sizeof(s.server_name), "bad \xff utf-8");
    T_ERR(cv_store_server_insert(st, &s, NULL), CV_ERR_INPUT);
    t_server(&s, "acme", "srv-1");
    s.expires_at_ms = -5;
    T_ERR(cv_store_server_insert(st, &s, NULL), CV_ERR_INPUT);
    char *huge = malloc(CV_STORE_ENV_MAX_BYTES + 2);
    memset(huge, 'a', CV_STORE_ENV_MAX_BYTES + 1);
    huge[CV_STORE_ENV_MAX_BYTES + 1] = '\0';
    t_server(&s, "acme", "srv-1");
    s.encrypted_env = huge;
    T_ERR(cv_store_server_insert(st, &s, NULL), CV_ERR_INPUT);
    free(huge);
    ck_assert_uint_eq(encryptions(st, "acme"), before); /* nothing failed halfway */

    t_server(&s, "acme", "srv-1");
    /* hostile text is data, never SQL */
    snprintf(s.server_name, sizeof(s.server_name), "x'); DROP TABLE tenants; --");
    s.expires_at_ms = 1893456000999LL;
    T_OK(cv_store_server_insert(st, &s, NULL));
    ck_assert_uint_eq(strlen(s.id), CV_STORE_UUID_BYTES);
    ck_assert_int_eq(s.revision, 1);
    ck_assert(s.created_at_ms > 1700000000000LL);
    ck_assert_int_eq(s.created_at_ms, s.last_updated_ms);
    ck_assert_uint_eq(encryptions(st, "acme"), before + 1);
    T_ERR(cv_store_server_insert(st, &s, NULL), CV_ERR_CONFLICT);
    ck_assert_uint_eq(encryptions(st, "acme"), before + 1);
    t_server(&s, "globex", "srv-1"); /* the same server id in another tenant is another server */
    T_OK(cv_store_server_insert(st, &s, NULL));

    T_ERR(cv_store_server_get(st, "acme", "srv-404", 1, &got), CV_ERR_NOT_FOUND);
    T_OK(cv_store_server_get(st, "acme", "srv-1", 0, &got));
    ck_assert_ptr_null(got.encrypted_env);
    ck_assert_str_eq(got.server_name, "x'); DROP TABLE tenants; --");
    cv_server_row_free(&got);
    T_OK(cv_store_server_get(st, "acme", "srv-1", 1, &got));
    t_server(&s, "acme", "srv-1");
    ck_assert_str_eq(got.encrypted_env, s.encrypted_env);
    ck_assert_str_eq(got.configured_integrations, "[\"AWS\", \"GitHub\"]");
    ck_assert_str_eq(got.credential_names, "[\"AWS_ACCESS_KEY_ID\", \"GITHUB_TOKEN\"]");
    ck_assert_str_eq(got.tenant_id, "acme");
    ck_assert_str_eq(got.template_id, "grc-evidence");
    ck_assert_str_eq(got.created_by, "admin@company.com");
    ck_assert_uint_eq(got.key_version, 1);
    ck_assert_int_eq(got.revision, 1);
    ck_assert_int_eq(got.expires_at_ms, 1893456000999LL);
    cv_server_row_free(&got);
    cv_server_row_free(&got); /* twice is harmless */
    cv_store_close(st);
}
END_TEST

START_TEST(servers_update_delete)
{
    struct cv_store *st = t_open(t_app_url());
    struct cv_server_row s, got;
    t_server(&s, "acme", "srv-u");
    s.expires_at_ms = 1893456000000LL;
    T_OK(cv_store_server_insert(st, &s, NULL));
    uint64_t before = encryptions(st, "acme");

    t_server(&s, "acme", "srv-u");
    s.encrypted_env = (char *)"{\"v\":2,\"changed\":true}";
    s.credential_names = (char *)"[\"GITHUB_TOKEN\"]";
    snprintf(s.updated_by, sizeof(s.updated_by), "ops@company.com");
    T_ERR(cv_store_server_update(st, &s, 0, NULL), CV_ERR_PRECONDITION);
    T_ERR(cv_store_server_update(st, &s, 2, NULL), CV_ERR_PRECONDITION); /* stale */
    ck_assert_uint_eq(encryptions(st, "acme"), before);
    s.key_version = 5;
    T_ERR(cv_store_server_update(st, &s, 1, NULL), CV_ERR_NOT_FOUND); /* no such key version */
    s.key_version = 1;
    T_OK(cv_store_server_update(st, &s, 1, NULL));
    ck_assert_int_eq(s.revision, 2);
    ck_assert(s.last_updated_ms >= s.created_at_ms);
    ck_assert_uint_eq(encryptions(st, "acme"), before + 1);
    T_ERR(cv_store_server_update(st, &s, 1, NULL), CV_ERR_PRECONDITION); /* the one it replaced */
    T_OK(cv_store_server_get(st, "acme", "srv-u", 1, &got));
    ck_assert_str_eq(got.encrypted_env, "{\"v\":2,\"changed\":true}");
    ck_assert_str_eq(got.credential_names, "[\"GITHUB_TOKEN\"]");
    ck_assert_str_eq(got.updated_by, "ops@company.com");
    ck_assert_str_eq(got.created_by, "admin@company.com");
    ck_assert_int_eq(got.expires_at_ms, 0); /* 0 clears the expiry */
    ck_assert_int_eq(got.revision, 2);
    cv_server_row_free(&got);

    t_server(&s, "globex", "srv-u"); /* not in globex */
    T_ERR(cv_store_server_update(st, &s, 1, NULL), CV_ERR_NOT_FOUND);
    T_ERR(cv_store_server_delete(st, "globex", "srv-u", NULL), CV_ERR_NOT_FOUND);
    T_OK(cv_store_server_delete(st, "acme", "srv-u", NULL));
    T_ERR(cv_store_server_delete(st, "acme", "srv-u", NULL), CV_ERR_NOT_FOUND);
    T_ERR(cv_store_server_get(st, "acme", "srv-u", 0, &got), CV_ERR_NOT_FOUND);
    t_server(&s, "acme", "srv-u");
    T_ERR(cv_store_server_update(st, &s, 2, NULL), CV_ERR_NOT_FOUND);
    cv_store_close(st);
}
END_TEST

START_TEST(servers_list)
{
    struct cv_store *st = t_open(t_app_url());
    t_seed_tenant(st, "lister");
    struct server_seen seen = {0};
    uint64_t total = 99;
    T_OK(cv_store_server_list(st, "lister", 10, 0, collect_server, &seen, &total));
    ck_assert_uint_eq(total, 0);
    ck_assert_uint_eq(seen.n, 0);
    struct cv_server_row s;
    const char *ids[] = {"s-a", "s-b", "s-c", "s-d"};
    for (int i = 0; i < 4; i++) {
        t_server(&s, "lister", ids[i]);
        T_OK(cv_store_server_insert(st, &s, NULL));
    }
    T_ERR(cv_store_server_list(st, "lister", 1001, 0, collect_server, &seen, &total), CV_ERR_INPUT);
    T_OK(cv_store_server_list(st, "lister", 10, 0, collect_server, &seen, &total));
    ck_assert_uint_eq(total, 4);
    ck_assert_uint_eq(seen.n, 4);
    ck_assert_int_eq(seen.env_seen, 0); /* lists never carry ciphertext */
    ck_assert_str_eq(seen.ids[0], "s-d"); /* newest first */
    ck_assert_str_eq(seen.ids[3], "s-a");
    memset(&seen, 0, sizeof(seen));
    T_OK(cv_store_server_list(st, "lister", 2, 1, collect_server, &seen, &total));
    ck_assert_uint_eq(seen.n, 2);
    ck_assert_str_eq(seen.ids[0], "s-c");
    ck_assert_str_eq(seen.ids[1], "s-b");
    ck_assert_uint_eq(total, 4);
    cv_store_close(st);
}
END_TEST

/* ---- audit ---- */

START_TEST(audit)
{
    struct cv_store *st = t_open(t_app_url());
    struct cv_audit_event ev = {.tenant_id = "acme",
                                .actor = "admin@company.com",
                                .role = "tenant-admin",
                                .action = "credentials.deploy",
                                .target = "srv-1",
                                .outcome = "success",
                                .request_id = "req-1",
                                .detail = "{\"integrations\":[\"AWS\"]}"};
    ev.outcome = "maybe";
    T_ERR(cv_store_audit_insert(st, &ev), CV_ERR_INPUT);
    ev.outcome = "success";
    ev.action = "";
    T_ERR(cv_store_audit_insert(st, &ev), CV_ERR_INPUT);
    ev.action = "credentials.deploy";
    ev.detail = "[1,2]"; /* an object or nothing */
    T_ERR(cv_store_audit_insert(st, &ev), CV_ERR_INPUT);
    ev.detail = "{broken";
    T_ERR(cv_store_audit_insert(st, &ev), CV_ERR_INPUT);
    ev.tenant_id = "Bad Tenant";
    T_ERR(cv_store_audit_insert(st, &ev), CV_ERR_INPUT);
    ev.tenant_id = "acme";
    ev.detail = "{\"integrations\":[\"AWS\"]}";
    T_OK(cv_store_audit_insert(st, &ev));
    struct cv_audit_event platform = {.tenant_id = NULL, .actor = "anonymous", .role = NULL, .action = "auth.failed",
                                      .target = NULL, .outcome = "denied", .request_id = NULL, .detail = NULL};
    T_OK(cv_store_audit_insert(st, &platform));
    cv_store_close(st);

    PGconn *pg = t_pg(t_super_url());
    ck_assert_int_eq(t_int(pg, "SELECT count(*) FROM audit_events WHERE tenant_id = 'acme' AND "
                               "action = 'credentials.deploy' AND detail->'integrations'->>0 = 'AWS'"), 1);
    ck_assert_int_eq(t_int(pg, "SELECT count(*) FROM audit_events WHERE tenant_id IS NULL AND "
                               "outcome = 'denied' AND target IS NULL AND request_id IS NULL"), 1);
    PQfinish(pg);
}
END_TEST

/* ---- a tenant's deletion (an owner's operation) takes everything but its audit trail ---- */

START_TEST(tenant_delete_cascades)
{
    struct cv_store *st = t_open(t_app_url());
    t_seed_tenant(st, "doomed");
    struct cv_server_row s;
    t_server(&s, "doomed", "srv-1");
    T_OK(cv_store_server_insert(st, &s, NULL));
    struct cv_token_row t;
    token(&t, "auditor", "doomed", "");
    uint8_t h[CV_TOKEN_HASH_BYTES];
    hash_of(h, 0x44);
    T_OK(cv_store_token_insert(st, &t, h, NULL));
    struct cv_audit_event ev = {.tenant_id = "doomed", .actor = "a", .role = "admin", .action = "tenant.create",
                                .outcome = "success"};
    T_OK(cv_store_audit_insert(st, &ev));

    PGconn *pg = t_pg(t_owner_url());
    t_run(pg, "BEGIN; SELECT set_config('credvault.scope', 'platform', true);"
              "DELETE FROM tenants WHERE id = 'doomed'; COMMIT");
    PQfinish(pg);
    struct cv_server_row got;
    T_ERR(cv_store_server_get(st, "doomed", "srv-1", 0, &got), CV_ERR_NOT_FOUND);
    struct cv_token_row tr;
    T_ERR(cv_store_token_lookup(st, h, &tr), CV_ERR_NOT_FOUND);
    struct cv_tenant_key_row k;
    T_ERR(cv_store_tenant_key_get(st, "doomed", 1, &k), CV_ERR_NOT_FOUND);
    cv_store_close(st);
    pg = t_pg(t_super_url());
    ck_assert_int_eq(t_int(pg, "SELECT count(*) FROM audit_events WHERE tenant_id = 'doomed'"), 1);
    PQfinish(pg);
}
END_TEST

START_TEST(ping_and_ready)
{
    struct cv_store *st = t_open(t_app_url());
    T_OK(cv_store_ping(st));
    T_OK(cv_store_check_ready(st, t_migrations()));
    cv_store_close(st);
    struct cv_store_options bad = {.url = "postgresql://u:hunter2@h/db?nonsense=1"};
    T_ERR(cv_store_open(&bad, &st), CV_ERR_INPUT);
    ck_assert_ptr_null(strstr(cv_error_message(), "hunter2"));
    bad.url = "";
    T_ERR(cv_store_open(&bad, &st), CV_ERR_INPUT);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("store");
    TCase *tc = tcase_create("calls");
    tcase_add_unchecked_fixture(tc, setup, NULL);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, ping_and_ready);
    tcase_add_test(tc, master_keys);
    tcase_add_test(tc, tenants);
    tcase_add_test(tc, tenant_keys);
    tcase_add_test(tc, tokens);
    tcase_add_test(tc, servers_insert_get);
    tcase_add_test(tc, servers_update_delete);
    tcase_add_test(tc, servers_list);
    tcase_add_test(tc, audit);
    tcase_add_test(tc, tenant_delete_cascades);
    suite_add_tcase(s, tc);
    return t_run_suite(s);
}
