/* The test module itself, loaded as credvault loads a module: every call
 * reaches SoftHSM2, and each behaviour of the control file (README.md)
 * does what it says, picked up while the module runs. */
#define _GNU_SOURCE
#include <check.h>
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <p11-kit/pkcs11.h>

#include "cv_test_suite.h"

#define VENDOR_ZERO_PAD (CKM_VENDOR_DEFINED | 0x216FUL)
#define M_AES_KEY_WRAP_PAD 0x210AUL

static CK_FUNCTION_LIST_PTR f;
static char control[512], pin[128];
static CK_SLOT_ID slot;

static const char *env(const char *name)
{
    const char *v = getenv(name);
    if (!v || !*v) {
        fprintf(stderr, "%s is not set: run through tests/testlib/run-integration\n", name);
        exit(77);
    }
    return v;
}

/* Replaced by rename, so the module sees a new file (new inode) at once. */
static void set_control(const char *text)
{
    char tmp[600];
    snprintf(tmp, sizeof(tmp), "%s.new", control);
    FILE *out = fopen(tmp, "w");
    ck_assert_ptr_nonnull(out);
    fputs(text, out);
    fclose(out);
    ck_assert_int_eq(rename(tmp, control), 0);
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static CK_SLOT_ID find_slot(void)
{
    CK_SLOT_ID slots[16];
    CK_ULONG n = 16;
    ck_assert_uint_eq(f->C_GetSlotList(CK_TRUE, slots, &n), CKR_OK);
    const char *want = env("CREDVAULT_PKCS11_TOKEN") + strlen("pkcs11:token=");
    for (CK_ULONG i = 0; i < n; i++) {
        CK_TOKEN_INFO ti;
        if (f->C_GetTokenInfo(slots[i], &ti) != CKR_OK) continue;
        if (strncmp((const char *)ti.label, want, strlen(want)) == 0 && ti.label[strlen(want)] == ' ') return slots[i];
    }
    ck_abort_msg("token %s not found", want);
    return 0;
}

static void serial_of(CK_SLOT_ID s, char out[17])
{
    CK_TOKEN_INFO ti;
    ck_assert_uint_eq(f->C_GetTokenInfo(s, &ti), CKR_OK);
    memcpy(out, ti.serialNumber, 16);
    out[16] = '\0';
}

static CK_SESSION_HANDLE session(void)
{
    CK_SESSION_HANDLE h;
    ck_assert_uint_eq(f->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &h), CKR_OK);
    CK_RV rv = f->C_Login(h, CKU_USER, (CK_UTF8CHAR_PTR)pin, strlen(pin));
    ck_assert_msg(rv == CKR_OK || rv == CKR_USER_ALREADY_LOGGED_IN, "C_Login: 0x%lx", (unsigned long)rv);
    return h;
}

static void start(void)
{
    snprintf(control, sizeof(control), "%s/p11shim.control", env("CV_TEST_TMP"));
    unlink(control);
    setenv("CV_P11SHIM_CONTROL", control, 1);
    FILE *pf = fopen(env("CREDVAULT_HSM_PIN_FILE"), "r");
    ck_assert_ptr_nonnull(pf);
    ck_assert_ptr_nonnull(fgets(pin, sizeof(pin), pf));
    fclose(pf);
    pin[strcspn(pin, "\n")] = '\0';
    void *dl = dlopen(env("CV_P11SHIM"), RTLD_NOW | RTLD_LOCAL);
    ck_assert_msg(dl != NULL, "%s", dlerror());
    CK_C_GetFunctionList get;
    void *sym = dlsym(dl, "C_GetFunctionList");
    ck_assert_ptr_nonnull(sym);
    memcpy(&get, &sym, sizeof(get));
    ck_assert_uint_eq(get(&f), CKR_OK);
    CK_C_INITIALIZE_ARGS a;
    memset(&a, 0, sizeof(a));
    a.flags = CKF_OS_LOCKING_OK;
    ck_assert_uint_eq(f->C_Initialize(&a), CKR_OK);
    slot = find_slot();
}

static void stop(void)
{
    unlink(control);
    (void)f->C_Finalize(NULL);
}

START_TEST(forwards_without_a_control_file)
{
    CK_SESSION_HANDLE h = session();
    CK_BYTE b[16];
    ck_assert_uint_eq(f->C_GenerateRandom(h, b, sizeof(b)), CKR_OK);
    CK_INFO info;
    ck_assert_uint_eq(f->C_GetInfo(&info), CKR_OK);
    ck_assert_msg(memmem(info.manufacturerID, 32, "SoftHSM", 7) != NULL, "the real module answers");
    ck_assert_uint_eq(f->C_CloseSession(h), CKR_OK);
}
END_TEST

START_TEST(each_fault_on_the_nth_call_or_at_a_rate)
{
    CK_SESSION_HANDLE h = session();
    CK_BYTE b[4];
    static const struct {
        const char *name;
        CK_RV rv;
    } faults[] = {{"CKR_DEVICE_ERROR", CKR_DEVICE_ERROR},
                  {"CKR_SESSION_HANDLE_INVALID", CKR_SESSION_HANDLE_INVALID},
                  {"CKR_TOKEN_NOT_PRESENT", CKR_TOKEN_NOT_PRESENT},
                  {"CKR_PIN_INCORRECT", CKR_PIN_INCORRECT},
                  {"CKR_GENERAL_ERROR", CKR_GENERAL_ERROR}};
    for (size_t i = 0; i < sizeof(faults) / sizeof(faults[0]); i++) {
        char text[128];
        snprintf(text, sizeof(text), "fail %s func=C_GenerateRandom nth=2\n", faults[i].name);
        set_control(text);
        ck_assert_uint_eq(f->C_GenerateRandom(h, b, sizeof(b)), CKR_OK);
        ck_assert_uint_eq(f->C_GenerateRandom(h, b, sizeof(b)), faults[i].rv);
        ck_assert_uint_eq(f->C_GenerateRandom(h, b, sizeof(b)), CKR_OK);
        /* other functions are spared */
        CK_SESSION_INFO si;
        ck_assert_uint_eq(f->C_GetSessionInfo(h, &si), CKR_OK);
    }
    /* every call, every function but C_Initialize and C_Finalize */
    set_control("fail CKR_DEVICE_ERROR\n");
    CK_SESSION_INFO si;
    ck_assert_uint_eq(f->C_GetSessionInfo(h, &si), CKR_DEVICE_ERROR);
    CK_ULONG n = 0;
    ck_assert_uint_eq(f->C_GetSlotList(CK_TRUE, NULL, &n), CKR_DEVICE_ERROR);
    /* at a rate: about half of 400 calls */
    set_control("fail CKR_GENERAL_ERROR func=C_GenerateRandom rate=0.5\n");
    int failed = 0;
    for (int i = 0; i < 400; i++) failed += f->C_GenerateRandom(h, b, sizeof(b)) == CKR_GENERAL_ERROR;
    ck_assert_msg(failed > 120 && failed < 280, "%d of 400 failed at rate 0.5", failed);
    set_control("# nothing\n");
    ck_assert_uint_eq(f->C_GenerateRandom(h, b, sizeof(b)), CKR_OK);
    ck_assert_uint_eq(f->C_CloseSession(h), CKR_OK);
}
END_TEST

START_TEST(latency_and_a_session_cap)
{
    CK_SESSION_HANDLE h = session();
    CK_BYTE b[4];
    set_control("latency 150 func=C_GenerateRandom\n");
    long long t0 = now_ms();
    ck_assert_uint_eq(f->C_GenerateRandom(h, b, sizeof(b)), CKR_OK);
    ck_assert_int_ge(now_ms() - t0, 150);
    t0 = now_ms();
    CK_SESSION_INFO si;
    ck_assert_uint_eq(f->C_GetSessionInfo(h, &si), CKR_OK);
    ck_assert_int_lt(now_ms() - t0, 100);

    set_control("max_sessions 2\n");
    CK_SESSION_HANDLE h2, h3;
    ck_assert_uint_eq(f->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &h2), CKR_OK);
    ck_assert_uint_eq(f->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &h3), CKR_SESSION_COUNT);
    ck_assert_uint_eq(f->C_CloseSession(h2), CKR_OK);
    ck_assert_uint_eq(f->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &h3), CKR_OK);
    ck_assert_uint_eq(f->C_CloseSession(h3), CKR_OK);
    ck_assert_uint_eq(f->C_CloseSession(h), CKR_OK);
}
END_TEST

START_TEST(dropped_sessions_are_invalid)
{
    CK_SESSION_HANDLE h = session();
    set_control("drop 1\n");
    CK_SESSION_INFO si;
    ck_assert_uint_eq(f->C_GetSessionInfo(h, &si), CKR_SESSION_HANDLE_INVALID);
    CK_SESSION_HANDLE fresh = session();
    ck_assert_uint_eq(f->C_GetSessionInfo(fresh, &si), CKR_OK);
    ck_assert_uint_eq(f->C_CloseSession(h), CKR_SESSION_HANDLE_INVALID);
    ck_assert_uint_eq(f->C_CloseSession(fresh), CKR_OK);
}
END_TEST

static int listed(CK_MECHANISM_TYPE m)
{
    CK_MECHANISM_TYPE list[512];
    CK_ULONG n = 0;
    ck_assert_uint_eq(f->C_GetMechanismList(slot, NULL, &n), CKR_OK);
    ck_assert_uint_le(n, 512);
    ck_assert_uint_eq(f->C_GetMechanismList(slot, list, &n), CKR_OK);
    for (CK_ULONG i = 0; i < n; i++)
        if (list[i] == m) return 1;
    return 0;
}

START_TEST(hidden_mechanisms)
{
    ck_assert(listed(CKM_AES_GCM));
    set_control("hide CKM_AES_GCM\nhide CKM_ECDSA\n");
    ck_assert(!listed(CKM_AES_GCM));
    ck_assert(!listed(CKM_ECDSA));
    ck_assert(listed(CKM_SHA256_HMAC));
    CK_MECHANISM_INFO mi;
    ck_assert_uint_eq(f->C_GetMechanismInfo(slot, CKM_AES_GCM, &mi), CKR_MECHANISM_INVALID);
}
END_TEST

static CK_OBJECT_HANDLE aes_key(CK_SESSION_HANDLE h, int extractable)
{
    CK_ULONG len = 32;
    CK_BBOOL yes = CK_TRUE, ext = extractable ? CK_TRUE : CK_FALSE;
    CK_ATTRIBUTE t[] = {{CKA_VALUE_LEN, &len, sizeof(len)}, {CKA_ENCRYPT, &yes, 1}, {CKA_DECRYPT, &yes, 1},
                        {CKA_WRAP, &yes, 1}, {CKA_UNWRAP, &yes, 1}, {CKA_EXTRACTABLE, &ext, 1}};
    CK_MECHANISM m = {CKM_AES_KEY_GEN, NULL, 0};
    CK_OBJECT_HANDLE k;
    ck_assert_uint_eq(f->C_GenerateKey(h, &m, t, sizeof(t) / sizeof(t[0]), &k), CKR_OK);
    return k;
}

START_TEST(cloudhsm_profile)
{
    set_control("profile cloudhsm\n");
    CK_INFO info;
    ck_assert_uint_eq(f->C_GetInfo(&info), CKR_OK);
    ck_assert(memmem(info.manufacturerID, 32, "SoftHSM", 7) == NULL);
    ck_assert(listed(VENDOR_ZERO_PAD));
    ck_assert(!listed(M_AES_KEY_WRAP_PAD));
    CK_MECHANISM_INFO mi;
    ck_assert_uint_eq(f->C_GetMechanismInfo(slot, VENDOR_ZERO_PAD, &mi), CKR_OK);
    ck_assert(mi.flags & CKF_WRAP);

    CK_SESSION_HANDLE h = session();
    CK_OBJECT_HANDLE k = aes_key(h, 1), kek = aes_key(h, 0);
    /* the token makes the IV and writes it into the caller's buffer */
    CK_BYTE iv[12] = {0}, aad[] = "aad", pt[] = "plaintext", out[64], back[64];
    CK_GCM_PARAMS p = {iv, sizeof(iv), 0, aad, 3, 128};
    CK_MECHANISM gcm = {CKM_AES_GCM, &p, sizeof(p)};
    ck_assert_uint_eq(f->C_EncryptInit(h, &gcm, k), CKR_OK);
    CK_ULONG out_len = sizeof(out);
    ck_assert_uint_eq(f->C_Encrypt(h, pt, sizeof(pt), out, &out_len), CKR_OK);
    static const CK_BYTE zero[12];
    ck_assert(memcmp(iv, zero, 12) != 0);
    CK_GCM_PARAMS q = {iv, sizeof(iv), 0, aad, 3, 128};
    CK_MECHANISM gcm2 = {CKM_AES_GCM, &q, sizeof(q)};
    ck_assert_uint_eq(f->C_DecryptInit(h, &gcm2, k), CKR_OK);
    CK_ULONG back_len = sizeof(back);
    ck_assert_uint_eq(f->C_Decrypt(h, out, out_len, back, &back_len), CKR_OK);
    ck_assert_uint_eq(back_len, sizeof(pt));
    ck_assert_int_eq(memcmp(back, pt, sizeof(pt)), 0);

    /* only the vendor's name for RFC 5649 wraps */
    CK_MECHANISM std = {M_AES_KEY_WRAP_PAD, NULL, 0}, vendor = {VENDOR_ZERO_PAD, NULL, 0};
    CK_BYTE wrapped[64];
    CK_ULONG wl = sizeof(wrapped);
    ck_assert_uint_eq(f->C_WrapKey(h, &std, kek, k, wrapped, &wl), CKR_MECHANISM_INVALID);
    wl = sizeof(wrapped);
    ck_assert_uint_eq(f->C_WrapKey(h, &vendor, kek, k, wrapped, &wl), CKR_OK);
    ck_assert_uint_eq(wl, 40);
    ck_assert_uint_eq(f->C_CloseSession(h), CKR_OK);
}
END_TEST

START_TEST(stand_in_token_at_the_next_initialize)
{
    char serial[17], other[17], cmd[600];
    serial_of(slot, serial);
    snprintf(cmd, sizeof(cmd), "%s/tests/p11shim/make-standin-token %s/standin", env("CV_SOURCE_DIR"),
             env("CV_TEST_TMP"));
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    char conf[512] = "";
    ck_assert_ptr_nonnull(fgets(conf, sizeof(conf), p));
    ck_assert_int_eq(pclose(p), 0);
    conf[strcspn(conf, "\n")] = '\0';

    CK_SESSION_HANDLE h = session();
    char text[600];
    snprintf(text, sizeof(text), "conf %s\n", conf);
    set_control(text);
    /* the real token is gone until the module is initialised again */
    CK_SESSION_INFO si;
    ck_assert_uint_eq(f->C_GetSessionInfo(h, &si), CKR_DEVICE_REMOVED);
    ck_assert_uint_eq(f->C_Finalize(NULL), CKR_OK);
    CK_C_INITIALIZE_ARGS a;
    memset(&a, 0, sizeof(a));
    a.flags = CKF_OS_LOCKING_OK;
    ck_assert_uint_eq(f->C_Initialize(&a), CKR_OK);
    slot = find_slot(); /* the same label */
    serial_of(slot, other);
    ck_assert_str_ne(serial, other);
    CK_SESSION_HANDLE s2 = session(); /* the same PIN */
    ck_assert_uint_eq(f->C_CloseSession(s2), CKR_OK);

    /* and back */
    set_control("# the real token\n");
    CK_ULONG n = 0;
    ck_assert_uint_eq(f->C_GetSlotList(CK_TRUE, NULL, &n), CKR_DEVICE_REMOVED);
    ck_assert_uint_eq(f->C_Finalize(NULL), CKR_OK);
    ck_assert_uint_eq(f->C_Initialize(&a), CKR_OK);
    slot = find_slot();
    serial_of(slot, other);
    ck_assert_str_eq(serial, other);
}
END_TEST

int main(void)
{
    static const struct cv_t_suite_spec spec = {.name = "p11shim", .setup = start, .teardown = stop};
    Suite *s = cv_t_suite_new(&spec, CV_T_TESTS(forwards_without_a_control_file, each_fault_on_the_nth_call_or_at_a_rate,
                                                latency_and_a_session_cap, dropped_sessions_are_invalid,
                                                hidden_mechanisms, cloudhsm_profile,
                                                stand_in_token_at_the_next_initialize));
    return cv_t_suite_run(s, CK_FORK) ? 1 : 0;
}
