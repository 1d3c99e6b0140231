/* The audit group commit against a real PostgreSQL: events of concurrent
 * callers share one batch, and a batch that fails fails every caller in it
 * and stores none of its events, while the next batch succeeds. A trigger
 * made as the superuser holds one batch in the database until the test has
 * seen the next callers queue behind it, and refuses one marked event.
 * A batch of several tenants on a connection's first pipeline runs the same
 * statement once per chain: its Parse must go out once. */
#include <pthread.h>
#include <unistd.h>

#include "credvault/metrics.h"
#include "store/pq.h" /* cv_store_tx_sealed: the batch a writer sends */
#include "test_store_fixture.h"

#define NBATCH 8

static struct cv_store *st;
static struct cv_metrics *reg;

static void setup(void)
{
    t_migrate();
    ck_assert(cv_ok(cv_metrics_new(&reg)));
    struct cv_store_options o = {.url = t_app_url(), .metrics = reg};
    ck_assert_msg(cv_ok(cv_store_open(&o, &st)), "open: %s", cv_error_message());
    cv_store_set_audit_hash(st, t_audit_hash, NULL);
    t_seed_master(st, 1);
    t_seed_tenant(st, "acme");
}

struct caller {
    char target[32];
    cv_err err;
};

static void *append(void *arg)
{
    struct caller *c = arg;
    struct cv_audit_event ev = {.tenant_id = "acme", .actor = "reader", .role = "auditor",
                                .action = "credentials.read_masked", .target = c->target, .outcome = "success"};
    c->err = cv_store_audit_append(st, &ev, 0).err;
    cv_store_thread_done(st);
    return NULL;
}

static long long stored(PGconn *pg, const char *target)
{
    char sql[512];
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM audit_events WHERE target = '%s'", target);
    return t_int(pg, sql);
}

START_TEST(a_failed_batch_fails_every_request_in_it)
{
    PGconn *pg = t_pg(t_super_url());
    t_run(pg, "CREATE TABLE test_audit_go (go boolean); GRANT SELECT ON test_audit_go TO PUBLIC");
    t_run(pg, "CREATE FUNCTION test_audit_mark() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
              "IF NEW.target = 'hold' THEN WHILE NOT EXISTS (SELECT 1 FROM test_audit_go) LOOP "
              "PERFORM pg_sleep(0.02); END LOOP; END IF; "
              "IF NEW.target = 'boom' THEN RAISE EXCEPTION 'a marked event'; END IF; RETURN NEW; END $$");
    t_run(pg, "CREATE TRIGGER test_audit_mark BEFORE INSERT ON audit_events FOR EACH ROW "
              "EXECUTE FUNCTION test_audit_mark()");

    struct caller held = {"hold", CV_ERR_NONE}, calls[NBATCH];
    pthread_t th_held, th[NBATCH];
    ck_assert_int_eq(pthread_create(&th_held, NULL, append, &held), 0);
    /* the held batch is in the database */
    for (int i = 0; i < 500 && t_int(pg, "SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'PgSleep'") < 1; i++)
        usleep(20000);
    for (int i = 0; i < NBATCH; i++) {
        snprintf(calls[i].target, sizeof(calls[i].target), i == 0 ? "boom" : "queued-%d", i);
        ck_assert_int_eq(pthread_create(&th[i], NULL, append, &calls[i]), 0);
    }
    /* every caller waits behind it: then it may go */
    for (int i = 0; i < 500 && cv_metric_value(reg, CV_M_AUDIT_BATCH_QUEUED, NULL, NULL, NULL) < NBATCH; i++)
        usleep(20000);
    ck_assert_int_eq(cv_metric_value(reg, CV_M_AUDIT_BATCH_QUEUED, NULL, NULL, NULL), NBATCH);
    t_run(pg, "INSERT INTO test_audit_go VALUES (true)");
    pthread_join(th_held, NULL);
    for (int i = 0; i < NBATCH; i++) pthread_join(th[i], NULL);
    t_run(pg, "DROP TRIGGER test_audit_mark ON audit_events; DROP FUNCTION test_audit_mark(); DROP TABLE test_audit_go");

    ck_assert_int_eq(held.err, CV_ERR_NONE);
    ck_assert_int_eq(stored(pg, "hold"), 1);
    /* they shared one batch, which failed: every caller got the error, no event is stored */
    ck_assert_int_eq(cv_metric_value(reg, CV_M_AUDIT_BATCH_LARGEST, NULL, NULL, NULL), NBATCH);
    for (int i = 0; i < NBATCH; i++) {
        ck_assert_msg(calls[i].err != CV_ERR_NONE, "caller %d succeeded", i);
        ck_assert_int_eq(stored(pg, calls[i].target), 0);
    }
    /* the next batches succeed (the writer reads its head again) */
    for (int i = 1; i < NBATCH; i++) {
        append(&calls[i]);
        ck_assert_int_eq(calls[i].err, CV_ERR_NONE);
        ck_assert_int_eq(stored(pg, calls[i].target), 1);
    }
    /* and the chain has no gap */
    ck_assert_int_eq(t_int(pg, "SELECT count(*) FROM (SELECT chain FROM audit_events GROUP BY chain "
                               "HAVING max(seq) <> count(*)) x"),
                     0);
    PQfinish(pg);
}
END_TEST

/* Events of three tenants, none of whose chains this connection knows: one
 * pipeline reads three heads and appends three runs in one statement. */
START_TEST(a_first_batch_of_several_tenants_opens_every_chain)
{
    static const char *tenants[] = {"multi-a", "multi-b", "multi-c"};
    for (size_t i = 0; i < 3; i++) t_seed_tenant(st, tenants[i]);
    struct cv_store *fresh;
    struct cv_store_options o = {.url = t_app_url()};
    ck_assert_msg(cv_ok(cv_store_open(&o, &fresh)), "open: %s", cv_error_message());
    cv_store_set_audit_hash(fresh, t_audit_hash, NULL);
    for (int round = 0; round < 2; round++) {
        struct cv_sealed_event se[3];
        char target[3][32];
        for (size_t i = 0; i < 3; i++) {
            snprintf(target[i], sizeof(target[i]), "multi-%d-%zu", round, i);
            struct cv_audit_event ev = {.tenant_id = tenants[i], .actor = "reader", .role = "auditor",
                                        .action = "credentials.read_masked", .target = target[i],
                                        .outcome = "success"};
            ck_assert(cv_ok(cv_store_seal_event(fresh, &ev, ev.target, &se[i])));
        }
        const struct cv_tx tx = {.scope = CV_SCOPE_PLATFORM, .flags = CV_TX_EVENTS_ASYNC};
        cv_result r = cv_store_tx_sealed(fresh, &tx, NULL, 0, se, 3);
        cv_store_sealed_free(se, 3);
        ck_assert_msg(cv_ok(r), "batch %d: %s", round, cv_error_message());
    }
    cv_store_close(fresh);
    PGconn *pg = t_pg(t_super_url());
    ck_assert_int_eq(t_int(pg, "SELECT count(*) FROM audit_events WHERE target LIKE 'multi-%'"), 6);
    /* one chain per tenant, two events each, no gap */
    ck_assert_int_eq(t_int(pg, "SELECT count(*) FROM (SELECT chain FROM audit_events WHERE target LIKE 'multi-%' "
                               "GROUP BY chain HAVING count(*) = 2 AND max(seq) = 2) x"),
                     3);
    /* each second event links to its chain's first, not to another run's */
    ck_assert_int_eq(t_int(pg, "SELECT count(*) FROM audit_events a JOIN audit_events b ON b.chain = a.chain "
                               "AND b.seq = a.seq + 1 AND b.prev_hash = a.hash WHERE a.target LIKE 'multi-%'"),
                     3);
    /* and the heads are the last events */
    ck_assert_int_eq(t_int(pg, "SELECT count(*) FROM audit_heads h JOIN audit_events e ON e.chain = h.chain "
                               "AND e.seq = h.seq AND e.hash = h.hash WHERE e.target LIKE 'multi-1-%'"),
                     3);
    PQfinish(pg);
}
END_TEST

/* The caller that writes a batch writes it on its own connection: never
 * inside a transaction that connection holds open, whose rollback would
 * take the batch's events (other callers' too) with it. */
START_TEST(a_lone_event_inside_an_open_transaction_is_refused)
{
    struct cv_tx d = {.scope = CV_SCOPE_PLATFORM};
    struct cv_tx_open o;
    ck_assert_msg(cv_ok(cv_tx_begin(st, &d, &o)), "begin: %s", cv_error_message());
    struct cv_audit_event ev = {.tenant_id = "acme", .actor = "reader", .role = "auditor",
                                .action = "credentials.read_masked", .target = "inside-tx", .outcome = "success"};
    cv_result r = cv_store_audit_append(st, &ev, 0);
    ck_assert_int_eq(r.err, CV_ERR_INTERNAL);
    ck_assert_ptr_nonnull(strstr(cv_error_message(), "open transaction"));
    cv_tx_abort(&o);
    /* once it is over, the same event goes through */
    ck_assert_msg(cv_ok(cv_store_audit_append(st, &ev, 0)), "after: %s", cv_error_message());
    PGconn *pg = t_pg(t_super_url());
    ck_assert_int_eq(stored(pg, "inside-tx"), 1);
    PQfinish(pg);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("store_audit_batch");
    TCase *tc = tcase_create("batch");
    tcase_add_unchecked_fixture(tc, setup, NULL);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, a_failed_batch_fails_every_request_in_it);
    tcase_add_test(tc, a_first_batch_of_several_tenants_opens_every_chain);
    tcase_add_test(tc, a_lone_event_inside_an_open_transaction_is_refused);
    suite_add_tcase(s, tc);
    return t_run_suite(s);
}
