/* Writer chains against the real service, SoftHSM2 token and PostgreSQL:
 * two instances append side by side and the trail verifies, and the
 * database refuses a stolen slot and a forged link. (A failed group commit:
 * test_store_audit_batch.c.) */
#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "credvault/json_alloc.h"
#include "test_ops_fixture.h"


static struct cv_test_service svc_b;
static char tok[160];

struct call {
    struct cv_test_client *client; /* made beforehand, or NULL */
    const char *base_url, *ca_file;
    const char *method;
    char path[256];
    const char *body;
    long status;
    char id[160]; /* a deploy's server id */
};

static void *run_call(void *arg)
{
    struct call *c = arg;
    struct cv_test_client *client = c->client ? c->client : cv_test_client_new(c->base_url, c->ca_file);
    struct cv_test_response r;
    memset(&r, 0, sizeof(r));
    c->status = -1;
    if (client && cv_test_request(client, c->method, c->path, tok, c->body, NULL, &r) == 0) {
        c->status = r.status;
        const char *id = r.json ? json_string_value(json_object_get(json_object_get(r.json, "data"), "serverId")) : NULL;
        if (id) snprintf(c->id, sizeof(c->id), "%.150s", id);
    }
    cv_test_response_free(&r);
    if (client && client != c->client) cv_test_client_free(client);
    return NULL;
}

static void read_call(struct call *c, const struct cv_test_service *s, const char *server)
{
    memset(c, 0, sizeof(*c));
    c->base_url = s->base_url;
    c->ca_file = s->ca_file;
    c->method = "GET";
    snprintf(c->path, sizeof(c->path), "/api/mcp/servers/%.150s/credentials", server);
}

START_TEST(two_instances_append_side_by_side_and_the_trail_verifies)
{
    char id[160];
    cv_t_deploy(cl, tok, "github", "{\"env\":{\"GITHUB_TOKEN\":\"ghp_both_0123456789abcdef\"}}", id, sizeof(id));
    enum { N = 16 };
    struct call calls[N];
    pthread_t th[N];
    for (int i = 0; i < N; i++) {
        const struct cv_test_service *s = i % 2 ? &svc_b : &svc;
        if (i % 4 < 2) {
            read_call(&calls[i], s, id);
        } else {
            memset(&calls[i], 0, sizeof(calls[i]));
            calls[i].base_url = s->base_url;
            calls[i].ca_file = s->ca_file;
            calls[i].method = "POST";
            snprintf(calls[i].path, sizeof(calls[i].path), "/api/mcp/templates/github/deploy");
            calls[i].body = "{\"env\":{\"GITHUB_TOKEN\":\"ghp_side_0123456789abcdef\"}}";
        }
        ck_assert_int_eq(pthread_create(&th[i], NULL, run_call, &calls[i]), 0);
    }
    for (int i = 0; i < N; i++) pthread_join(th[i], NULL);
    for (int i = 0; i < N; i++)
        ck_assert_msg(calls[i].status == 200 || calls[i].status == 201, "call %d: %ld", i, calls[i].status);
    /* each instance wrote into chains of its own slots, none with a gap */
    ck_assert_int_ge(cv_t_psql_int("SELECT count(DISTINCT chain) FROM audit_events WHERE tenant_id = 'acme' "
                                   "AND action = 'credentials.read_masked'"),
                     2);
    ck_assert_int_eq(cv_t_psql_int("SELECT count(*) FROM (SELECT chain FROM audit_events GROUP BY chain "
                                   "HAVING max(seq) <> count(*)) x"),
                     0);
    char out[65536];
    ck_assert_int_eq(cli_out("audit checkpoint", out, sizeof(out)), 0);
    ck_assert_msg(cli_out("audit verify", out, sizeof(out)) == 0, "%s", out);
    ck_assert_msg(cli_out("audit verify --tenant acme", out, sizeof(out)) == 0, "%s", out);
}
END_TEST

START_TEST(the_database_refuses_a_stolen_slot_and_a_forged_link)
{
    /* the service role still cannot insert events itself */
    ck_assert_int_eq(cv_t_psql_int("SELECT count(*) FROM information_schema.role_table_grants WHERE grantee = "
                                   "'credvault_app' AND table_name = 'audit_events' AND privilege_type = 'INSERT'"),
                     0);
    /* a slot the service holds: the chain of its group-commit writer */
    cv_t_expect_call(cl, "GET", "/api/mcp/servers", tok, NULL, 200, NULL);
    char id[160], path[256];
    cv_t_deploy(cl, tok, "github", "{\"env\":{\"GITHUB_TOKEN\":\"ghp_slot_0123456789abcdef\"}}", id, sizeof(id));
    snprintf(path, sizeof(path), "/api/mcp/servers/%.150s/credentials", id);
    cv_t_expect_call(cl, "GET", path, tok, NULL, 200, NULL);
    char *chain = cv_t_psql("SELECT chain FROM audit_events WHERE action = 'credentials.read_masked' "
                            "ORDER BY id DESC LIMIT 1");
    ck_assert_ptr_nonnull(strchr(chain, ':'));
    const char *args = "ARRAY[now()], ARRAY['x'], ARRAY['admin'], ARRAY['forged'], ARRAY[NULL::text], "
                       "ARRAY['success'], ARRAY[NULL::text], ARRAY[NULL::text], ARRAY[NULL::bytea], "
                       "ARRAY[decode(repeat('11', 32), 'hex')]";
    char sql[2048];
    int status = 0;
    snprintf(sql, sizeof(sql),
             "SET credvault.scope = 'platform'; "
             "SELECT credvault_audit_append_batch('%s', 'acme', true, false, (SELECT seq + 1 FROM audit_heads "
             "WHERE chain = '%s'), (SELECT hash FROM audit_heads WHERE chain = '%s'), %s)",
             chain, chain, chain, args);
    char *out = cv_t_psql_run(NULL, sql, &status);
    ck_assert_msg(status != 0 && strstr(out, "held by another session"), "%s", out);
    free(out);
    /* a slot of one's own, but a link that does not continue the head */
    snprintf(sql, sizeof(sql),
             "SET credvault.scope = 'platform'; "
             "SELECT credvault_audit_claim_slot() > 0; SELECT credvault_audit_append_batch('acme:' || "
             "credvault_audit_claim_slot(), 'acme', true, false, 5, decode(repeat('00', 32), 'hex'), %s)",
             args);
    out = cv_t_psql_run(NULL, sql, &status);
    ck_assert_msg(status != 0, "%s", out);
    free(out);
    snprintf(sql, sizeof(sql),
             "SET credvault.scope = 'platform'; "
             "SELECT credvault_audit_append_batch('acme:' || credvault_audit_claim_slot(), 'acme', true, false, 1, "
             "decode(repeat('22', 32), 'hex'), %s)",
             args);
    out = cv_t_psql_run(NULL, sql, &status);
    ck_assert_msg(status != 0 && strstr(out, "does not continue"), "%s", out);
    free(out);
    /* the same guards in the statement that appends every run of a batch */
    char held[3][256];
    snprintf(held[0], sizeof(held[0]), "'%s'", chain);
    snprintf(held[1], sizeof(held[1]), "(SELECT seq + 1 FROM audit_heads WHERE chain = '%s')", chain);
    snprintf(held[2], sizeof(held[2]), "(SELECT hash FROM audit_heads WHERE chain = '%s')", chain);
    const char *own = "'acme:' || credvault_audit_claim_slot()";
    const struct {
        const char *scope, *chain, *seq, *prev, *expect;
    } runs[] = {
        {"SET credvault.scope = 'platform'", held[0], held[1], held[2], "held by another session"},
        {"SET credvault.scope = 'platform'", own, "1", "decode(repeat('22', 32), 'hex')", "does not continue"},
        {"SET credvault.scope = 'tenant'; SET credvault.tenant_id = 'beta'", own, "1",
         "decode(repeat('00', 32), 'hex')", "outside the transaction's tenant scope"},
    };
    for (size_t i = 0; i < sizeof(runs) / sizeof(runs[0]); i++) {
        snprintf(sql, sizeof(sql),
                 "%s; SELECT credvault_audit_append_chains(true, "
                 "ARRAY[%s], ARRAY['acme'], ARRAY[%s::int8], ARRAY[%s], ARRAY[1], %s)",
                 runs[i].scope, runs[i].chain, runs[i].seq, runs[i].prev, args);
        out = cv_t_psql_run(NULL, sql, &status);
        ck_assert_msg(status != 0 && strstr(out, runs[i].expect), "%zu: %s", i, out);
        free(out);
    }
    ck_assert_int_eq(cv_t_psql_int("SELECT count(*) FROM audit_events WHERE action = 'forged'"), 0);
    free(chain);
}
END_TEST

static Suite *batch_suite(void)
{
    static const struct cv_t_suite_spec spec = {.name = "audit_batch", .timeout_s = 300};
    return cv_t_suite_new(&spec, CV_T_TESTS(two_instances_append_side_by_side_and_the_trail_verifies,
                                            the_database_refuses_a_stolen_slot_and_a_forged_link));
}

int main(void)
{
    cv_json_alloc_install(); /* first: every entry point keeps JSON in secret memory */
    Suite *suite = batch_suite();
    /* enough threads for every request of the shared batch to be in flight at once */
    static const char *const env[] = {"CREDVAULT_RATE_READ_PER_S=0", "CREDVAULT_RATE_WRITE_PER_S=0",
                                      "CREDVAULT_THREADS=16", "CREDVAULT_HSM_SESSIONS=32", NULL};
    if (cv_test_service_start(&svc, env) != 0) return 1;
    if (cv_test_service_start(&svc_b, env) != 0) return 1;
    cl = cv_test_client_new(svc.base_url, svc.ca_file);
    if (cv_test_cli("tenant create acme --name 'Acme Corp' >/dev/null", NULL, 0) != 0 ||
        cv_test_cli("token create --name alice@acme.example --role tenant-admin --tenant acme", tok, sizeof(tok)))
        return 1;
    int failed = cv_t_suite_run(suite, CK_NOFORK);
    cv_test_client_free(cl);
    struct cv_test_service *both[] = {&svc, &svc_b};
    for (int i = 0; i < 2; i++) {
        int st = cv_test_service_stop(both[i]);
        if (st != 0) {
            fprintf(stderr, "credvault serve exited with %d (log: %s)\n", st, both[i]->log_file);
            failed++;
        }
    }
    return failed ? 1 : 0;
}
