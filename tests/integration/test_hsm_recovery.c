/* Recovery: sessions closed, the module finalized or the token gone under
 * the running code. Operations heal by themselves, one thread recovers for
 * all; a token that is gone opens the breaker: "HSM unavailable" at once
 * (no CK_RV for the caller), and the background re-check heals it. */
#include <pthread.h>
#include <stdio.h>
#include <time.h>

#include "test_hsm_fixture.h"

static void round_trip(struct cv_hsm *hsm, const struct cv_key_ref *ref)
{
    uint8_t iv[CV_GCM_IV_BYTES], ct[sizeof(fixture_pt)], tag[CV_GCM_TAG_BYTES], pt[sizeof(fixture_pt)];
    fixture_seal(hsm, ref, iv, ct, tag);
    cv_result r = cv_hsm_gcm_decrypt(hsm, ref, fixture_aad, sizeof(fixture_aad), iv, ct, sizeof(ct), tag, pt);
    ck_assert_msg(cv_ok(r), "decrypt: %s", cv_error_message());
    ck_assert_int_eq(memcmp(pt, fixture_pt, sizeof(pt)), 0);
}

START_TEST(all_sessions_closed_under_us)
{
    struct cv_hsm *hsm = fixture_open();
    fixture_keys(hsm);
    struct cv_key_ref ref = fixture_ref(hsm, "acme", 1, 1);
    round_trip(hsm, &ref); /* the unwrapped key is cached now */
    uint64_t g = cv_hsm_testing_generation(hsm);

    CK_FUNCTION_LIST_PTR f = cv_hsm_testing_functions(hsm);
    ck_assert_uint_eq(f->C_CloseAllSessions(cv_hsm_testing_slot(hsm)), CKR_OK);
    /* Login, sessions and the cached key are gone; the next call heals. */
    round_trip(hsm, &ref);
    ck_assert_uint_eq(cv_hsm_testing_generation(hsm), g + 1);
    ck_assert_uint_eq(fixture_session_keys(hsm), 1); /* re-unwrapped, once */
    ck_assert(cv_ok(cv_hsm_ping(hsm)));
    struct cv_hsm_status st;
    ck_assert(cv_ok(cv_hsm_status_get(hsm, &st)));
    ck_assert_int_eq(st.logged_in, 1);
    ck_assert_int_eq(st.binding_key_present, 1);

    /* Every kind of call heals, not only GCM. */
    ck_assert_uint_eq(f->C_CloseAllSessions(cv_hsm_testing_slot(hsm)), CKR_OK);
    ck_assert(cv_ok(cv_hsm_tenant_key_verify(hsm, &ref)));
    ck_assert_uint_eq(f->C_CloseAllSessions(cv_hsm_testing_slot(hsm)), CKR_OK);
    struct cv_key_ref fresh = fixture_ref(hsm, "acme", 2, 1);
    ck_assert_uint_eq(f->C_CloseAllSessions(cv_hsm_testing_slot(hsm)), CKR_OK);
    int exists = 0;
    ck_assert(cv_ok(cv_hsm_master_exists(hsm, 1, &exists)));
    ck_assert_int_eq(exists, 1);
    round_trip(hsm, &fresh);
    ck_assert_uint_eq(cv_hsm_testing_generation(hsm), g + 4);
    cv_hsm_close(hsm);
}
END_TEST

START_TEST(module_finalized_under_us)
{
    struct cv_hsm *hsm = fixture_open();
    fixture_keys(hsm);
    struct cv_key_ref ref = fixture_ref(hsm, "acme", 1, 1);
    round_trip(hsm, &ref);
    ck_assert_uint_eq(cv_hsm_testing_functions(hsm)->C_Finalize(NULL), CKR_OK);
    ck_assert_msg(cv_ok(cv_hsm_ping(hsm)), "%s", cv_error_message()); /* CKR_CRYPTOKI_NOT_INITIALIZED heals */
    round_trip(hsm, &ref);
    cv_hsm_close(hsm);
}
END_TEST

/* Workers run one round trip per round and park at a barrier; the main
 * thread closes every session while all of them are parked (closing a
 * session another thread is inside of is a use-after-free in SoftHSM
 * itself, and not what an outage looks like), then releases them together
 * into the dead sessions. */
struct worker {
    struct cv_hsm *hsm;
    const struct cv_key_ref *ref;
    pthread_barrier_t *parked, *go;
    int rounds, failures;
    char error[256];
};

static void *work(void *arg)
{
    struct worker *w = arg;
    for (int i = 0; i < w->rounds; i++) {
        pthread_barrier_wait(w->parked);
        pthread_barrier_wait(w->go);
        uint8_t iv[CV_GCM_IV_BYTES], ct[sizeof(fixture_pt)], tag[CV_GCM_TAG_BYTES], pt[sizeof(fixture_pt)];
        cv_result r = cv_hsm_gcm_encrypt(w->hsm, w->ref, fixture_aad, sizeof(fixture_aad), fixture_pt,
                                         sizeof(fixture_pt), iv, ct, tag);
        if (cv_ok(r))
            r = cv_hsm_gcm_decrypt(w->hsm, w->ref, fixture_aad, sizeof(fixture_aad), iv, ct, sizeof(ct), tag, pt);
        if (cv_failed(r) && !w->failures++) snprintf(w->error, sizeof(w->error), "%s", cv_error_message());
    }
    return NULL;
}

START_TEST(one_thread_recovers_for_all)
{
    enum { WORKERS = 4, ROUNDS = 5 };
    struct cv_hsm_options o = fixture_options();
    o.sessions = 3;
    struct cv_hsm *hsm = fixture_open_with(&o);
    fixture_keys(hsm);
    struct cv_key_ref ref = fixture_ref(hsm, "acme", 1, 1);
    round_trip(hsm, &ref);
    CK_FUNCTION_LIST_PTR f = cv_hsm_testing_functions(hsm);
    uint64_t g = cv_hsm_testing_generation(hsm);

    pthread_barrier_t parked, go;
    pthread_barrier_init(&parked, NULL, WORKERS + 1);
    pthread_barrier_init(&go, NULL, WORKERS + 1);
    pthread_t th[WORKERS];
    struct worker w[WORKERS];
    for (int i = 0; i < WORKERS; i++) {
        w[i] = (struct worker){hsm, &ref, &parked, &go, ROUNDS, 0, ""};
        ck_assert_int_eq(pthread_create(&th[i], NULL, work, &w[i]), 0);
    }
    for (int i = 0; i < ROUNDS; i++) {
        pthread_barrier_wait(&parked);
        ck_assert_uint_eq(f->C_CloseAllSessions(cv_hsm_testing_slot(hsm)), CKR_OK);
        pthread_barrier_wait(&go);
    }
    for (int i = 0; i < WORKERS; i++) {
        pthread_join(th[i], NULL);
        ck_assert_msg(w[i].failures == 0, "thread %d: %d failures, first: %s", i, w[i].failures, w[i].error);
    }
    pthread_barrier_destroy(&parked);
    pthread_barrier_destroy(&go);
    /* Each outage is recovered once, by one thread, not once per thread. */
    uint64_t recoveries = cv_hsm_testing_generation(hsm) - g;
    ck_assert_msg(recoveries == ROUNDS, "%llu recoveries for %d outages", (unsigned long long)recoveries, ROUNDS);
    ck_assert_uint_eq(fixture_session_keys(hsm), 1);
    round_trip(hsm, &ref);
    cv_hsm_close(hsm);
}
END_TEST

static void token_dir(char *out, size_t n, const char *suffix)
{
    snprintf(out, n, "%s/hsm/tokens%s", fixture_env("CV_TEST_TMP"), suffix);
}

static long long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

START_TEST(lasting_outage_is_unavailable_then_heals)
{
    struct cv_hsm_options o = fixture_options();
    o.retries = 2;
    o.backoff_ms = 10;
    struct cv_hsm *hsm = fixture_open_with(&o);
    fixture_keys(hsm);
    struct cv_key_ref ref = fixture_ref(hsm, "acme", 1, 1);
    round_trip(hsm, &ref);

    /* The token disappears: SoftHSM finds no token folder at C_Initialize. */
    char dir[512], moved[512];
    token_dir(dir, sizeof(dir), "");
    token_dir(moved, sizeof(moved), ".away");
    ck_assert_int_eq(rename(dir, moved), 0);
    ck_assert_uint_eq(cv_hsm_testing_functions(hsm)->C_CloseAllSessions(cv_hsm_testing_slot(hsm)), CKR_OK);

    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    uint8_t iv[CV_GCM_IV_BYTES], ct[sizeof(fixture_pt)], tag[CV_GCM_TAG_BYTES];
    cv_result r = cv_hsm_gcm_encrypt(hsm, &ref, fixture_aad, sizeof(fixture_aad), fixture_pt, sizeof(fixture_pt), iv,
                                     ct, tag);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    ck_assert_int_eq(r.err, CV_ERR_UNAVAILABLE);
    ck_assert_str_eq(cv_error_code(), "hsm_unavailable");
    ck_assert_str_eq(cv_error_message(), "HSM unavailable"); /* the CK_RV is for the log */
    long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    ck_assert_msg(ms < 1000, "gave up after %ld ms", ms); /* one re-open, no retries on an absent token */
    /* the breaker is open: calls fail without touching the module */
    long long b0 = mono_ms();
    for (int i = 0; i < 1000; i++) ck_assert_int_eq(cv_hsm_ping(hsm).err, CV_ERR_UNAVAILABLE);
    ck_assert_msg(mono_ms() - b0 < 200, "1000 refused calls took %lld ms", mono_ms() - b0);

    /* It comes back: the background re-check heals it without a restart. */
    ck_assert_int_eq(rename(moved, dir), 0);
    long long deadline = mono_ms() + 5000;
    while (cv_failed(cv_hsm_ping(hsm))) {
        ck_assert_msg(mono_ms() < deadline, "not healed within 5 s: %s", cv_error_message());
        struct timespec ts = {0, 20 * 1000000L};
        nanosleep(&ts, NULL);
    }
    round_trip(hsm, &ref);
    cv_hsm_close(hsm);
}
END_TEST

int main(void)
{
    static const struct cv_t_suite_spec spec = {.name = "hsm_recovery", .timeout_s = 120};
    Suite *s = cv_t_suite_new(&spec, CV_T_TESTS(all_sessions_closed_under_us, module_finalized_under_us,
                                                one_thread_recovers_for_all, lasting_outage_is_unavailable_then_heals));
    return fixture_run(s);
}
