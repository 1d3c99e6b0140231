/* The unwrapped-key cache seen from the token: evictions, drops and close
 * destroy the session objects; many threads share it safely. Runs directly
 * on SoftHSM2 and through p11-kit's proxy (integration.test_hsm_cache.proxy). */
#include <dlfcn.h>
#include <pthread.h>

#include "test_hsm_fixture.h"

static void use(struct cv_hsm *hsm, const struct cv_key_ref *ref)
{
    uint8_t iv[CV_GCM_IV_BYTES], ct[sizeof(fixture_pt)], tag[CV_GCM_TAG_BYTES];
    fixture_seal(hsm, ref, iv, ct, tag);
}

START_TEST(eviction_destroys_token_objects)
{
    struct cv_hsm_options o = fixture_options();
    o.key_cache_size = 2;
    struct cv_hsm *hsm = fixture_open_with(&o);
    fixture_keys(hsm);
    struct cv_key_ref a = fixture_ref(hsm, "a", 1, 1), b = fixture_ref(hsm, "b", 1, 1), c = fixture_ref(hsm, "c", 1, 1);
    ck_assert_uint_eq(fixture_session_keys(hsm), 0);
    use(hsm, &a);
    ck_assert_uint_eq(fixture_session_keys(hsm), 1);
    use(hsm, &a); /* a hit unwraps nothing */
    ck_assert_uint_eq(fixture_session_keys(hsm), 1);
    use(hsm, &b);
    ck_assert_uint_eq(fixture_session_keys(hsm), 2);
    use(hsm, &c); /* evicts a */
    ck_assert_uint_eq(fixture_session_keys(hsm), 2);
    struct cv_hsm_status st;
    ck_assert(cv_ok(cv_hsm_status_get(hsm, &st)));
    ck_assert_uint_eq(st.cached_keys, 2);
    for (int i = 0; i < 5; i++) {
        use(hsm, &a);
        use(hsm, &b);
        use(hsm, &c);
    }
    ck_assert_uint_eq(fixture_session_keys(hsm), 2);

    cv_hsm_cache_drop_tenant(hsm, "c");
    ck_assert_uint_eq(fixture_session_keys(hsm), 1);
    cv_hsm_cache_drop_tenant(hsm, "nobody");
    ck_assert_uint_eq(fixture_session_keys(hsm), 1);
    cv_hsm_cache_drop_all(hsm);
    ck_assert_uint_eq(fixture_session_keys(hsm), 0);
    use(hsm, &c); /* dropped keys come back by unwrapping again */
    ck_assert_uint_eq(fixture_session_keys(hsm), 1);
    cv_hsm_close(hsm);
}
END_TEST

/* Counts secret-key session objects from a session of the test's own. */
static unsigned long count_from(CK_FUNCTION_LIST_PTR f, CK_SESSION_HANDLE s)
{
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_BBOOL no = CK_FALSE;
    CK_ATTRIBUTE t[] = {{CKA_CLASS, &cls, sizeof(cls)}, {CKA_TOKEN, &no, sizeof(no)}};
    ck_assert_uint_eq(f->C_FindObjectsInit(s, t, 2), CKR_OK);
    CK_OBJECT_HANDLE h[64];
    CK_ULONG n = 0;
    ck_assert_uint_eq(f->C_FindObjects(s, h, 64, &n), CKR_OK);
    f->C_FindObjectsFinal(s);
    return n;
}

START_TEST(close_destroys_everything_and_spares_other_users)
{
    /* The test initialises the module first, as libp11 would in the
     * service: close must then end only credvault's own sessions and keys. */
    struct cv_hsm_options o = fixture_options();
    void *dl = dlopen(o.module_path, RTLD_NOW | RTLD_LOCAL);
    ck_assert_ptr_nonnull(dl);
    CK_C_GetFunctionList get;
    void *sym = dlsym(dl, "C_GetFunctionList");
    memcpy(&get, &sym, sizeof(get));
    CK_FUNCTION_LIST_PTR f = NULL;
    ck_assert_uint_eq(get(&f), CKR_OK);
    CK_C_INITIALIZE_ARGS args;
    memset(&args, 0, sizeof(args));
    args.flags = CKF_OS_LOCKING_OK;
    ck_assert_uint_eq(f->C_Initialize(&args), CKR_OK);

    struct cv_hsm *hsm = fixture_open();
    /* SoftHSM2 hands out one function table, so credvault shares the test's
     * module state; p11-kit's proxy hands out a module instance per call.
     * Either way both reach the one token: what credvault makes there is
     * seen from the test's session below, and its close ends only its own. */
    if (fixture_via_proxy())
        ck_assert_ptr_ne(cv_hsm_testing_functions(hsm), f);
    else
        ck_assert_ptr_eq(cv_hsm_testing_functions(hsm), f);
    CK_SESSION_HANDLE mine;
    ck_assert_uint_eq(f->C_OpenSession(cv_hsm_testing_slot(hsm), CKF_SERIAL_SESSION, NULL, NULL, &mine), CKR_OK);
    fixture_keys(hsm);
    struct cv_key_ref a = fixture_ref(hsm, "a", 1, 1), b = fixture_ref(hsm, "b", 1, 1), c = fixture_ref(hsm, "c", 1, 1);
    use(hsm, &a);
    use(hsm, &b);
    use(hsm, &c);
    ck_assert_uint_eq(count_from(f, mine), 3);
    cv_hsm_close(hsm);
    ck_assert_uint_eq(count_from(f, mine), 0);
    CK_SESSION_INFO si;
    ck_assert_uint_eq(f->C_GetSessionInfo(mine, &si), CKR_OK); /* ours survived */
    ck_assert_uint_eq(f->C_Finalize(NULL), CKR_OK);
    dlclose(dl);
}
END_TEST

struct worker {
    struct cv_hsm *hsm;
    const struct cv_key_ref *refs;
    size_t nrefs;
    unsigned seed;
    int failures;
    char error[256];
};

static void *work(void *arg)
{
    struct worker *w = arg;
    for (int i = 0; i < 300; i++) {
        const struct cv_key_ref *ref = &w->refs[(w->seed + (unsigned)i * 7u) % w->nrefs];
        uint8_t iv[CV_GCM_IV_BYTES], ct[sizeof(fixture_pt)], tag[CV_GCM_TAG_BYTES], pt[sizeof(fixture_pt)];
        cv_result r = cv_hsm_gcm_encrypt(w->hsm, ref, fixture_aad, sizeof(fixture_aad), fixture_pt,
                                         sizeof(fixture_pt), iv, ct, tag);
        if (cv_ok(r))
            r = cv_hsm_gcm_decrypt(w->hsm, ref, fixture_aad, sizeof(fixture_aad), iv, ct, sizeof(ct), tag, pt);
        if (cv_ok(r) && memcmp(pt, fixture_pt, sizeof(pt)) != 0) r = cv_fail(CV_ERR_INTERNAL, "wrong plaintext");
        if (cv_failed(r)) {
            if (!w->failures++) snprintf(w->error, sizeof(w->error), "%s", cv_error_message());
        }
    }
    return NULL;
}

START_TEST(threads_share_a_small_cache)
{
    /* 4 threads, 2 sessions, 6 tenants over 3 cache slots: entries are
     * evicted while other threads still use them. */
    struct cv_hsm_options o = fixture_options();
    o.key_cache_size = 3;
    o.sessions = 2;
    struct cv_hsm *hsm = fixture_open_with(&o);
    fixture_keys(hsm);
    struct cv_key_ref refs[6];
    for (int i = 0; i < 6; i++) {
        char tenant[16];
        snprintf(tenant, sizeof(tenant), "t%d", i);
        refs[i] = fixture_ref(hsm, tenant, 1, 1);
    }
    uint64_t generation = cv_hsm_testing_generation(hsm);
    pthread_t th[4];
    struct worker w[4];
    for (unsigned i = 0; i < 4; i++) {
        w[i] = (struct worker){hsm, refs, 6, i * 5u, 0, ""};
        ck_assert_int_eq(pthread_create(&th[i], NULL, work, &w[i]), 0);
    }
    for (unsigned i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        ck_assert_msg(w[i].failures == 0, "thread %u: %d failures, first: %s", i, w[i].failures, w[i].error);
    }
    ck_assert_uint_eq(cv_hsm_testing_generation(hsm), generation); /* no handle was ever used dead */
    ck_assert_uint_le(fixture_session_keys(hsm), 3);
    cv_hsm_close(hsm);
}
END_TEST

int main(void)
{
    static const struct cv_t_suite_spec spec = {.name = "hsm_cache", .timeout_s = 120};
    Suite *s = cv_t_suite_new(&spec, CV_T_TESTS(eviction_destroys_token_objects,
                                                close_destroys_everything_and_spares_other_users,
                                                threads_share_a_small_cache));
    return fixture_run(s);
}
