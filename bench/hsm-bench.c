/* Measures what the PKCS#11 layer's design leans on: the cost of each token
 * call credvault makes, how C_FindObjects grows with the number of objects,
 * what one vs two threads get, and the layer's own overhead on a cache hit.
 * Run through bench/hsm-bench-run (a throwaway SoftHSM2 token). Each case runs
 * for a fixed wall time, so the whole run takes seconds. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "credvault/buf.h"
#include "credvault/hsm.h"
#include "credvault/log.h"
#include "credvault/secret_file.h"
#include "hsm/hsm_testing.h"

static double seconds_per_case = 0.4;
static CK_FUNCTION_LIST_PTR f;
static CK_SLOT_ID slot;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, CK_RV rv)
{
    fprintf(stderr, "hsm-bench: %s failed (0x%lx)\n", what, rv);
    exit(1);
}

#define CK(expr)                                 \
    do {                                         \
        CK_RV rv_ = (expr);                      \
        if (rv_ != CKR_OK) die(#expr, rv_);      \
    } while (0)

struct ctx {
    CK_SESSION_HANDLE s;
    CK_OBJECT_HANDLE key, master, hmac;
    uint8_t wrapped[64];
    CK_ULONG wrapped_len;
    const char *label;
    struct cv_hsm *hsm;
    const struct cv_key_ref *ref;
};

typedef void (*op_fn)(struct ctx *c);

static uint8_t buf300[300], out[400], aad[64] = "credvault.record|tenant|server|1";

static void op_gcm_encrypt(struct ctx *c)
{
    uint8_t iv[12] = {1, 2, 3};
    CK_GCM_PARAMS p = {iv, 12, 96, aad, 32, 128};
    CK_MECHANISM m = {CKM_AES_GCM, &p, sizeof(p)};
    CK_ULONG n = sizeof(out);
    CK(f->C_EncryptInit(c->s, &m, c->key));
    CK(f->C_Encrypt(c->s, buf300, sizeof(buf300), out, &n));
}

static uint8_t sealed[316];
static void op_gcm_decrypt(struct ctx *c)
{
    uint8_t iv[12] = {1, 2, 3};
    CK_GCM_PARAMS p = {iv, 12, 96, aad, 32, 128};
    CK_MECHANISM m = {CKM_AES_GCM, &p, sizeof(p)};
    CK_ULONG n = sizeof(out);
    CK(f->C_DecryptInit(c->s, &m, c->key));
    CK(f->C_Decrypt(c->s, sealed, sizeof(sealed), out, &n));
}

static void op_random12(struct ctx *c)
{
    uint8_t iv[12];
    CK(f->C_GenerateRandom(c->s, iv, sizeof(iv)));
}

static void op_hmac(struct ctx *c)
{
    CK_MECHANISM m = {CKM_SHA256_HMAC, NULL, 0};
    CK_ULONG n = 32;
    CK(f->C_SignInit(c->s, &m, c->hmac));
    CK(f->C_Sign(c->s, buf300, sizeof(buf300), out, &n));
}

static CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
static CK_OBJECT_CLASS secret = CKO_SECRET_KEY;
static CK_KEY_TYPE aes = CKK_AES;
static CK_ULONG len32 = 32;

static void op_unwrap(struct ctx *c)
{
    CK_ATTRIBUTE t[] = {{CKA_CLASS, &secret, sizeof(secret)}, {CKA_KEY_TYPE, &aes, sizeof(aes)},
                        {CKA_TOKEN, &no, 1},        {CKA_SENSITIVE, &yes, 1},
                        {CKA_EXTRACTABLE, &no, 1},  {CKA_ENCRYPT, &yes, 1},
                        {CKA_DECRYPT, &yes, 1}};
    CK_MECHANISM m = {CKM_AES_KEY_WRAP_PAD, NULL, 0};
    CK_OBJECT_HANDLE h;
    CK(f->C_UnwrapKey(c->s, &m, c->master, c->wrapped, c->wrapped_len, t, 7, &h));
    CK(f->C_DestroyObject(c->s, h));
}

static void op_wrap(struct ctx *c)
{
    CK_MECHANISM m = {CKM_AES_KEY_WRAP_PAD, NULL, 0};
    CK_ULONG n = sizeof(out);
    CK(f->C_WrapKey(c->s, &m, c->master, c->key, out, &n));
}

static void op_generate(struct ctx *c)
{
    CK_ATTRIBUTE t[] = {{CKA_VALUE_LEN, &len32, sizeof(len32)}, {CKA_TOKEN, &no, 1}, {CKA_SENSITIVE, &yes, 1},
                        {CKA_EXTRACTABLE, &yes, 1}};
    CK_MECHANISM m = {CKM_AES_KEY_GEN, NULL, 0};
    CK_OBJECT_HANDLE h;
    CK(f->C_GenerateKey(c->s, &m, t, 4, &h));
    CK(f->C_DestroyObject(c->s, h));
}

static void op_find_label(struct ctx *c)
{
    CK_ATTRIBUTE t[] = {{CKA_LABEL, (void *)c->label, strlen(c->label)}};
    CK_OBJECT_HANDLE h[2];
    CK_ULONG n = 0;
    CK(f->C_FindObjectsInit(c->s, t, 1));
    CK(f->C_FindObjects(c->s, h, 2, &n));
    CK(f->C_FindObjectsFinal(c->s));
    if (n != 1) die("find by label (count)", n);
}

static void op_session_info(struct ctx *c)
{
    CK_SESSION_INFO si;
    CK(f->C_GetSessionInfo(c->s, &si));
}

static void op_open_close(struct ctx *c)
{
    CK_SESSION_HANDLE s;
    (void)c;
    CK(f->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s));
    CK(f->C_CloseSession(s));
}

static void op_layer_encrypt(struct ctx *c)
{
    uint8_t iv[12], tag[16];
    if (cv_failed(cv_hsm_gcm_encrypt(c->hsm, c->ref, aad, 32, buf300, sizeof(buf300), iv, out, tag))) die("cv_hsm_gcm_encrypt", 0);
}

static uint8_t layer_iv[12], layer_ct[300], layer_tag[16];
static void op_layer_decrypt(struct ctx *c)
{
    if (cv_failed(cv_hsm_gcm_decrypt(c->hsm, c->ref, aad, 32, layer_iv, layer_ct, sizeof(layer_ct), layer_tag, out)))
        die("cv_hsm_gcm_decrypt", 0);
}

struct run {
    op_fn op;
    struct ctx *c;
    double start_at;
    long count;
};

static void *runner(void *arg)
{
    struct run *r = arg;
    while (now() < r->start_at) {
    }
    double end = r->start_at + seconds_per_case;
    long n = 0;
    while (now() < end) {
        for (int i = 0; i < 16; i++) r->op(r->c);
        n += 16;
    }
    r->count = n;
    return NULL;
}

/* Runs op on `threads` threads (each with its own ctx) and prints µs/op
 * (per thread) and total ops/s. */
static void measure(const char *name, op_fn op, struct ctx *ctxs, int threads)
{
    pthread_t th[2];
    struct run runs[2];
    double start = now() + 0.02;
    for (int i = 0; i < threads; i++) {
        runs[i] = (struct run){op, &ctxs[i], start, 0};
        pthread_create(&th[i], NULL, runner, &runs[i]);
    }
    long total = 0;
    for (int i = 0; i < threads; i++) {
        pthread_join(th[i], NULL);
        total += runs[i].count;
    }
    double per_s = (double)total / seconds_per_case;
    printf("| %-44s | %d | %9.1f | %9.0f |\n", name, threads, 1e6 * threads / per_s, per_s);
    fflush(stdout);
}

static void make_ctx(struct cv_hsm *hsm, struct ctx *c)
{
    memset(c, 0, sizeof(*c));
    CK(f->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &c->s));
    CK_MECHANISM gen = {CKM_AES_KEY_GEN, NULL, 0};
    CK_ATTRIBUTE kt[] = {{CKA_VALUE_LEN, &len32, sizeof(len32)}, {CKA_TOKEN, &no, 1}, {CKA_SENSITIVE, &yes, 1},
                         {CKA_EXTRACTABLE, &yes, 1}, {CKA_ENCRYPT, &yes, 1}, {CKA_DECRYPT, &yes, 1}};
    CK(f->C_GenerateKey(c->s, &gen, kt, 6, &c->key));
    CK_ATTRIBUTE mt[] = {{CKA_VALUE_LEN, &len32, sizeof(len32)}, {CKA_TOKEN, &no, 1}, {CKA_SENSITIVE, &yes, 1},
                         {CKA_EXTRACTABLE, &no, 1}, {CKA_WRAP, &yes, 1}, {CKA_UNWRAP, &yes, 1}};
    CK(f->C_GenerateKey(c->s, &gen, mt, 6, &c->master));
    CK_MECHANISM hgen = {CKM_GENERIC_SECRET_KEY_GEN, NULL, 0};
    CK_ATTRIBUTE ht[] = {{CKA_VALUE_LEN, &len32, sizeof(len32)}, {CKA_TOKEN, &no, 1}, {CKA_SIGN, &yes, 1}};
    CK(f->C_GenerateKey(c->s, &hgen, ht, 3, &c->hmac));
    CK_MECHANISM wm = {CKM_AES_KEY_WRAP_PAD, NULL, 0};
    c->wrapped_len = sizeof(c->wrapped);
    CK(f->C_WrapKey(c->s, &wm, c->master, c->key, c->wrapped, &c->wrapped_len));
    c->hsm = hsm;
}

/* Token objects labelled obj-<i> until the token holds `want` of them. */
static void grow_token(struct ctx *c, int *have, int want)
{
    CK_OBJECT_CLASS data = CKO_DATA;
    for (; *have < want; (*have)++) {
        char label[32];
        snprintf(label, sizeof(label), "obj-%d", *have);
        CK_ATTRIBUTE t[] = {{CKA_CLASS, &data, sizeof(data)}, {CKA_TOKEN, &yes, 1}, {CKA_PRIVATE, &no, 1},
                            {CKA_LABEL, label, strlen(label)}, {CKA_VALUE, "x", 1}};
        CK_OBJECT_HANDLE h;
        CK(f->C_CreateObject(c->s, t, 5, &h));
    }
}

int main(int argc, char **argv)
{
    if (argc > 1) seconds_per_case = atof(argv[1]);
    cv_log_set_level(CV_LOG_ERROR);
    const char *module = getenv("CREDVAULT_PKCS11_MODULE"), *token = getenv("CREDVAULT_PKCS11_TOKEN");
    const char *pin_file = getenv("CREDVAULT_HSM_PIN_FILE");
    if (!module || !token || !pin_file) {
        fprintf(stderr, "hsm-bench: run through bench/hsm-bench-run\n");
        return 2;
    }
    char *pin = NULL;
    if (cv_failed(cv_secret_file_read("CREDVAULT_HSM_PIN_FILE", pin_file, CV_SECRET_FILE_MAX_BYTES, &pin, NULL))) {
        fprintf(stderr, "hsm-bench: %s\n", cv_error_message());
        return 2;
    }

    struct cv_hsm_options o = {
        .module_path = module, .token = token, .pin = pin, .sessions = 2, .retries = 3, .backoff_ms = 10, .key_cache_size = 64};
    struct cv_hsm *hsm = NULL;
    if (cv_failed(cv_hsm_open(&o, &hsm))) {
        fprintf(stderr, "hsm-bench: %s\n", cv_error_message());
        return 1;
    }
    f = cv_hsm_testing_functions(hsm);
    slot = cv_hsm_testing_slot(hsm);

    struct ctx c[2];
    make_ctx(hsm, &c[0]);
    make_ctx(hsm, &c[1]);
    for (size_t i = 0; i < sizeof(buf300); i++) buf300[i] = (uint8_t)i;
    {
        uint8_t iv[12] = {1, 2, 3};
        CK_GCM_PARAMS p = {iv, 12, 96, aad, 32, 128};
        CK_MECHANISM m = {CKM_AES_GCM, &p, sizeof(p)};
        CK_ULONG n = sizeof(sealed);
        CK(f->C_EncryptInit(c[0].s, &m, c[0].key));
        CK(f->C_Encrypt(c[0].s, buf300, sizeof(buf300), sealed, &n));
    }
    /* c[1] decrypts with its own key: give it a matching ciphertext. */
    {
        uint8_t iv[12] = {1, 2, 3};
        CK_GCM_PARAMS p = {iv, 12, 96, aad, 32, 128};
        CK_MECHANISM m = {CKM_AES_GCM, &p, sizeof(p)};
        CK_ULONG n = sizeof(sealed);
        CK_OBJECT_HANDLE k0 = c[0].key;
        c[1].key = k0; /* share one key: the decrypt check is the same either way */
        CK(f->C_EncryptInit(c[1].s, &m, c[1].key));
        CK(f->C_Encrypt(c[1].s, buf300, sizeof(buf300), sealed, &n));
    }

    printf("| operation | threads | µs/op (per thread) | ops/s (total) |\n|---|---|---|---|\n");
    measure("GCM encrypt 300 B (session key)", op_gcm_encrypt, c, 1);
    measure("GCM decrypt 300 B (session key)", op_gcm_decrypt, c, 1);
    measure("C_GenerateRandom 12 B (the IV)", op_random12, c, 1);
    measure("HMAC-SHA256 300 B (binding)", op_hmac, c, 1);
    measure("unwrap KEY_WRAP_PAD + destroy", op_unwrap, c, 1);
    measure("wrap KEY_WRAP_PAD", op_wrap, c, 1);
    measure("generate AES-256 session key + destroy", op_generate, c, 1);
    measure("C_GetSessionInfo", op_session_info, c, 1);
    measure("open + close session", op_open_close, c, 1);
    measure("GCM encrypt 300 B (session key)", op_gcm_encrypt, c, 2);
    measure("GCM decrypt 300 B (session key)", op_gcm_decrypt, c, 2);
    measure("unwrap KEY_WRAP_PAD + destroy", op_unwrap, c, 2);

    /* Through the layer: cache hit, IV from the token, lease, lock. */
    if (cv_failed(cv_hsm_master_create(hsm, 1)) || cv_failed(cv_hsm_binding_key_create(hsm))) {
        fprintf(stderr, "hsm-bench: %s\n", cv_error_message());
        return 1;
    }
    struct cv_key_ref ref;
    memset(&ref, 0, sizeof(ref));
    snprintf(ref.tenant_id, sizeof(ref.tenant_id), "bench");
    ref.version = 1;
    ref.master_version = 1;
    if (cv_failed(cv_hsm_tenant_key_generate(hsm, &ref))) return 1;
    if (cv_failed(cv_hsm_gcm_encrypt(hsm, &ref, aad, 32, buf300, 300, layer_iv, layer_ct, layer_tag))) return 1;
    c[0].ref = c[1].ref = &ref;
    measure("cv_hsm_gcm_encrypt 300 B (cache hit)", op_layer_encrypt, c, 1);
    measure("cv_hsm_gcm_decrypt 300 B (cache hit)", op_layer_decrypt, c, 1);
    measure("cv_hsm_gcm_encrypt 300 B (cache hit)", op_layer_encrypt, c, 2);

    /* C_FindObjects by label as the token grows (token objects, file store). */
    int have = 0;
    const int sizes[] = {1, 100, 1000};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        double t0 = now();
        grow_token(&c[0], &have, sizes[i]);
        double made = now() - t0;
        c[0].label = "obj-0";
        char name[64];
        /* plus the master and binding keys made above */
        snprintf(name, sizeof(name), "find by label, %d token objects", sizes[i] + 2);
        measure(name, op_find_label, c, 1);
        if (i == sizeof(sizes) / sizeof(sizes[0]) - 1)
            printf("\n(created %d token objects at %.0f µs each)\n", sizes[i] - sizes[i - 1],
                   1e6 * made / (sizes[i] - sizes[i - 1]));
    }
    f->C_CloseSession(c[0].s);
    f->C_CloseSession(c[1].s);
    cv_hsm_close(hsm);
    cv_secret_free(pin);
    return 0;
}
