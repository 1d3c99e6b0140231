/* Shared by the store's integration tests: the cluster's URLs from
 * run-integration, raw libpq access (to look behind the store's back) and
 * seed rows. Fake wrapped keys only: nothing here is a real key. */
#ifndef CV_TEST_STORE_FIXTURE_H
#define CV_TEST_STORE_FIXTURE_H

#include <check.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "credvault/store.h"
#include "store/internal.h" /* the store's limits */
#include "credvault/crypto.h"
#include "credvault/store_audit.h"

static inline const char *t_env(const char *name)
{
    const char *v = getenv(name);
    if (!v || !*v) {
        fprintf(stderr, "%s is not set: run this test through tests/testlib/run-integration with CV_NEED_PG=1\n", name);
        exit(getenv("CV_NO_SKIP") && strcmp(getenv("CV_NO_SKIP"), "1") == 0 ? 1 : 77);
    }
    return v;
}

static inline const char *t_app_url(void) { return t_env("CREDVAULT_DATABASE_URL"); }
static inline const char *t_owner_url(void) { return t_env("CREDVAULT_DATABASE_OWNER_URL"); }
static inline const char *t_super_url(void) { return t_env("CV_PG_SUPERUSER_URL"); }

static inline const char *t_migrations(void)
{
    static char dir[1024];
    snprintf(dir, sizeof(dir), "%s/migrations", t_env("CV_SOURCE_DIR"));
    return dir;
}

static inline double t_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- raw libpq ---- */
static inline PGconn *t_pg(const char *url)
{
    PGconn *pg = PQconnectdb(url);
    ck_assert_msg(PQstatus(pg) == CONNECTION_OK, "connect: %s", PQerrorMessage(pg));
    return pg;
}

/* Runs sql; returns its result (caller clears) and checks it did not fail. */
static inline PGresult *t_ok(PGconn *pg, const char *sql)
{
    PGresult *res = PQexec(pg, sql);
    ExecStatusType t = PQresultStatus(res);
    ck_assert_msg(t == PGRES_TUPLES_OK || t == PGRES_COMMAND_OK, "%s: %s", sql, PQresultErrorMessage(res));
    return res;
}

static inline void t_run(PGconn *pg, const char *sql) { PQclear(t_ok(pg, sql)); }

/* The SQLSTATE sql fails with ("" when it succeeds). */
static inline const char *t_fails(PGconn *pg, const char *sql)
{
    static char state[6];
    PGresult *res = PQexec(pg, sql);
    const char *s = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    snprintf(state, sizeof(state), "%s", s ? s : "");
    PQclear(res);
    return state;
}

static inline long long t_int(PGconn *pg, const char *sql)
{
    PGresult *res = t_ok(pg, sql);
    ck_assert_int_eq(PQntuples(res), 1);
    long long v = atoll(PQgetvalue(res, 0, 0));
    PQclear(res);
    return v;
}

/* ---- the store ---- */

/* The chain hash the service computes (src/domain/audit_chain.c), written
 * again here from the documented format: store tests do not link the domain,
 * and a second writing of the bytes checks the first. */
static inline cv_result t_field(struct cv_buf *b, const char *name, const char *v)
{
    char head[64];
    size_t n = v ? strlen(v) : 0;
    snprintf(head, sizeof(head), "%s:%zu:", name, n);
    cv_result r = cv_buf_append_str(b, head);
    if (cv_ok(r) && n) r = cv_buf_append(b, v, n);
    if (cv_ok(r)) r = cv_buf_append_u8(b, '\n');
    return r;
}

static inline cv_result t_audit_hash(void *arg, const struct cv_audit_row *row, uint8_t hash[CV_AUDIT_HASH_BYTES])
{
    (void)arg;
    char seq[32], prev[65], mac[65], at[96];
    snprintf(seq, sizeof(seq), "%lld", (long long)row->seq);
    cv_hex_encode(row->prev, CV_AUDIT_HASH_BYTES, prev);
    cv_hex_encode(row->mac, CV_AUDIT_HASH_BYTES, mac);
    time_t t = (time_t)(row->at_us / 1000000);
    struct tm tm;
    gmtime_r(&t, &tm);
    snprintf(at, sizeof(at), "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
             tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(row->at_us % 1000000));
    struct cv_buf b;
    cv_buf_init(&b, 64 * 1024);
    cv_result r = cv_buf_append_str(&b, row->has_mac ? "credvault.audit.event.v2\n" : "credvault.audit.event.v1\n");
    const char *names[] = {"chain", "seq", "prev", "at", "tenant", "actor", "role", "action", "target", "outcome",
                           "request_id", "detail", "mac"};
    const char *vals[] = {row->chain,  seq,          prev,        at,          row->tenant_id, row->actor, row->role,
                          row->action, row->target, row->outcome, row->request_id, row->detail, mac};
    for (size_t i = 0; i < (row->has_mac ? 13u : 12u) && cv_ok(r); i++) r = t_field(&b, names[i], vals[i]);
    if (cv_ok(r)) cv_crypto_sha256(b.data, b.len, hash);
    cv_buf_free(&b);
    return r;
}
static inline struct cv_store *t_open(const char *url)
{
    struct cv_store_options o = {.url = url};
    struct cv_store *st = NULL;
    cv_result r = cv_store_open(&o, &st);
    ck_assert_msg(cv_ok(r), "open: %s", cv_error_message());
    /* as the service does: the store chains events with the domain's hash */
    cv_store_set_audit_hash(st, t_audit_hash, NULL);
    return st;
}

static inline void t_migrate(void)
{
    struct cv_store_options o = {.url = t_owner_url()};
    unsigned applied = 0;
    cv_result r = cv_store_migrate(&o, t_migrations(), &applied);
    ck_assert_msg(cv_ok(r), "migrate: %s", cv_error_message());
}

#define T_OK(expr)                                                                                        \
    do {                                                                                                  \
        cv_result t__r = (expr);                                                                          \
        ck_assert_msg(cv_ok(t__r), "%s: %s (%s)", #expr, cv_error_message(), cv_err_name(t__r.err));     \
    } while (0)
#define T_ERR(expr, e)                                                                                    \
    do {                                                                                                  \
        cv_result t__r = (expr);                                                                          \
        ck_assert_msg(t__r.err == (e), "%s: got %s (%s), expected %s", #expr, cv_err_name(t__r.err),     \
                      cv_error_message(), cv_err_name(e));                                                \
    } while (0)

/* A fake key reference: recognisable bytes, right lengths. */
static inline void t_key_ref(struct cv_key_ref *k, const char *tenant, uint32_t version, uint32_t master,
                             uint8_t fill)
{
    memset(k, 0, sizeof(*k));
    snprintf(k->tenant_id, sizeof(k->tenant_id), "%s", tenant);
    k->version = version;
    k->master_version = master;
    k->wrapped_len = 40;
    memset(k->wrapped, fill, k->wrapped_len);
    memset(k->binding, (uint8_t)(fill ^ 0xff), CV_KEY_BINDING_BYTES);
}

static inline void t_seed_master(struct cv_store *st, uint32_t version)
{
    struct cv_master_key_row m;
    memset(&m, 0, sizeof(m));
    m.version = version;
    snprintf(m.state, sizeof(m.state), "active");
    t_key_ref(&m.canary, "_canary", 1, version, (uint8_t)(0xc0 + version));
    T_OK(cv_store_master_key_insert(st, &m));
}

static inline void t_seed_tenant(struct cv_store *st, const char *id)
{
    struct cv_tenant_row t;
    memset(&t, 0, sizeof(t));
    snprintf(t.id, sizeof(t.id), "%s", id);
    snprintf(t.name, sizeof(t.name), "Tenant %s", id);
    struct cv_tenant_key_row k;
    memset(&k, 0, sizeof(k));
    t_key_ref(&k.ref, id, 1, 1, 0x11);
    T_OK(cv_store_tenant_create(st, &t, &k, "admin@test", NULL));
}

/* A server row ready to insert; strings point at literals (not freed). */
static inline void t_server(struct cv_server_row *s, const char *tenant, const char *server_id)
{
    memset(s, 0, sizeof(*s));
    snprintf(s->tenant_id, sizeof(s->tenant_id), "%s", tenant);
    snprintf(s->server_id, sizeof(s->server_id), "%s", server_id);
    snprintf(s->template_id, sizeof(s->template_id), "grc-evidence");
    snprintf(s->server_name, sizeof(s->server_name), "GRC Evidence Collection Server");
    snprintf(s->created_by, sizeof(s->created_by), "admin@company.com");
    snprintf(s->updated_by, sizeof(s->updated_by), "admin@company.com");
    s->encrypted_env = (char *)"{\"v\":2,\"alg\":\"A256GCM\",\"kid\":\"t/1\",\"iv\":\"00\",\"encrypted\":\"00\",\"authTag\":\"00\"}";
    s->configured_integrations = (char *)"[\"AWS\",\"GitHub\"]";
    s->credential_names = (char *)"[\"AWS_ACCESS_KEY_ID\",\"GITHUB_TOKEN\"]";
    s->key_version = 1;
    /* the binding is the domain's (an HSM HMAC); the store only keeps it */
    memset(s->binding, 0x5b, sizeof(s->binding));
    s->has_binding = 1;
}

static inline int t_run_suite(Suite *s)
{
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

#endif
