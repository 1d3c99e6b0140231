/* The audit signing key through libp11: its EVP_PKEY signs with OpenSSL's
 * EVP interface while the private key stays in the token. The only file of
 * src/hsm that includes OpenSSL, because libp11's interface is an EVP_PKEY.
 *
 * libp11 shares the module (and its one state per process) with the raw
 * layer, so: it is loaded once and unloaded only at close, after the raw
 * sessions are gone (PKCS11_CTX_unload calls C_Finalize, and releasing its
 * slots calls C_CloseAllSessions, which would end every session in the
 * process); and after a recovery re-initialised the module (a new
 * generation) its slots, sessions and keys are stale, so the next use loads
 * them again, keeping the stale ones until close. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <libp11.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "credvault/hsm_signing.h"
#include "internal.h"

#define SLOT_SETS_MAX 64 /* enumerations kept until close: one per recovery, in practice */

struct slot_set {
    PKCS11_SLOT *slots;
    unsigned n;
};

struct cv_hsm_signer {
    pthread_mutex_t mu;
    PKCS11_CTX *ctx;
    uint64_t generation; /* of the slots and keys below */
    int loaded;          /* slots enumerated in `generation` */
    EVP_PKEY *priv, *pub;
    struct slot_set sets[SLOT_SETS_MAX];
    size_t nsets;
};

static pthread_mutex_t create_mu = PTHREAD_MUTEX_INITIALIZER;

static cv_result signer_get(struct cv_hsm *hsm, struct cv_hsm_signer **out)
{
    pthread_mutex_lock(&create_mu);
    cv_result r = CV_OK;
    if (!hsm->signer) {
        struct cv_hsm_signer *s = calloc(1, sizeof(*s));
        PKCS11_CTX *ctx = s ? PKCS11_CTX_new() : NULL;
        /* C_Initialize answers CKR_CRYPTOKI_ALREADY_INITIALIZED, which libp11 accepts */
        if (ctx && PKCS11_CTX_load(ctx, hsm->module_path) == 0) {
            pthread_mutex_init(&s->mu, NULL);
            s->ctx = ctx;
            hsm->signer = s;
        } else {
            if (ctx) PKCS11_CTX_free(ctx);
            free(s);
            ERR_clear_error();
            r = cv_fail(CV_ERR_UNAVAILABLE, "libp11 cannot load the PKCS#11 module %s", hsm->module_path);
        }
    }
    *out = hsm->signer;
    pthread_mutex_unlock(&create_mu);
    return r;
}

static void drop_keys(struct cv_hsm_signer *s)
{
    EVP_PKEY_free(s->priv);
    EVP_PKEY_free(s->pub);
    s->priv = s->pub = NULL;
}

/* A fresh enumeration of the slots; the previous ones are kept (releasing
 * them would close every session of the application). */
static cv_result enumerate(struct cv_hsm_signer *s)
{
    CV_ENSURE(s->nsets < SLOT_SETS_MAX, CV_ERR_UNAVAILABLE, "libp11 was reloaded %d times; restart the service",
              SLOT_SETS_MAX);
    struct slot_set *set = &s->sets[s->nsets];
    set->slots = NULL;
    set->n = 0;
    if (PKCS11_enumerate_slots(s->ctx, &set->slots, &set->n) < 0) {
        ERR_clear_error();
        return cv_fail(CV_ERR_UNAVAILABLE, "libp11 cannot list the token's slots");
    }
    s->nsets++;
    return CV_OK;
}

/* Finds our key in the raw layer's slot of the newest enumeration. */
static cv_result find_key(struct cv_hsm *hsm, struct cv_hsm_signer *s, PKCS11_KEY **out)
{
    *out = NULL;
    struct slot_set *set = &s->sets[s->nsets - 1];
    PKCS11_SLOT *slot = NULL;
    for (unsigned i = 0; i < set->n; i++)
        if (set->slots[i].token && PKCS11_get_slotid_from_slot(&set->slots[i]) == hsm->slot) slot = &set->slots[i];
    CV_ENSURE(slot != NULL, CV_ERR_UNAVAILABLE, "libp11 does not see the token's slot");
    PKCS11_KEY *keys = NULL;
    unsigned nkeys = 0;
    if (PKCS11_enumerate_keys(slot->token, &keys, &nkeys) < 0) {
        ERR_clear_error();
        return cv_fail(CV_ERR_UNAVAILABLE, "libp11 cannot list the token's keys");
    }
    for (unsigned i = 0; i < nkeys; i++) {
        if (!keys[i].isPrivate || !keys[i].label || strcmp(keys[i].label, CV_HSM_AUDIT_KEY_LABEL) != 0) continue;
        CV_ENSURE(*out == NULL, CV_ERR_INTERNAL, "two HSM keys are labelled %s", CV_HSM_AUDIT_KEY_LABEL);
        *out = &keys[i];
    }
    return CV_OK;
}

static int sign_with(EVP_PKEY *priv, const uint8_t *data, size_t len, uint8_t *sig, size_t cap, size_t *sig_len)
{
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    size_t n = cap;
    int ok =
        m && EVP_DigestSignInit(m, NULL, EVP_sha256(), NULL, priv) == 1 && EVP_DigestSign(m, sig, &n, data, len) == 1;
    EVP_MD_CTX_free(m);
    ERR_clear_error();
    if (ok) *sig_len = n;
    return ok;
}

static int verify_with(EVP_PKEY *pub, const uint8_t *data, size_t len, const uint8_t *sig, size_t sig_len)
{
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    int ok = m && EVP_DigestVerifyInit(m, NULL, EVP_sha256(), NULL, pub) == 1 &&
             EVP_DigestVerify(m, sig, sig_len, data, len) == 1;
    EVP_MD_CTX_free(m);
    ERR_clear_error();
    return ok;
}

/* Brings libp11's view up to the raw layer's generation and finds the key.
 * Runs inside an attempt, so no recovery can happen meanwhile. */
static cv_result load(struct cv_hsm *hsm, struct cv_hsm_lease *lease, struct cv_hsm_signer *s)
{
    if (s->loaded && s->generation == lease->generation && s->priv && s->pub) return CV_OK;
    drop_keys(s);
    int exists = 0;
    CV_GUARD(cv_hsm_audit_key_check(hsm, lease, &exists));
    CV_ENSURE(exists, CV_ERR_NOT_FOUND, "HSM audit signing key %s not found; run `credvault hsm init`",
              CV_HSM_AUDIT_KEY_LABEL);
    PKCS11_KEY *key = NULL;
    if (s->loaded && s->generation == lease->generation) {
        CV_GUARD(find_key(hsm, s, &key));
    }
    if (!key) {
        /* a new generation, or the key appeared since the last listing */
        s->loaded = 0;
        CV_GUARD(enumerate(s));
        s->loaded = 1;
        s->generation = lease->generation;
        CV_GUARD(find_key(hsm, s, &key));
    }
    CV_ENSURE(key != NULL, CV_ERR_NOT_FOUND, "libp11 does not find the HSM key %s", CV_HSM_AUDIT_KEY_LABEL);
    s->priv = PKCS11_get_private_key(key);
    /* The public half as a plain software key, from the point libp11 read
     * with the private one (PKCS11_get_public_key leaks in libp11 0.4.12):
     * verifying needs no token, and never runs through libp11's methods. */
    unsigned char *der = NULL;
    int der_len = s->priv ? i2d_PUBKEY(s->priv, &der) : -1;
    const unsigned char *p = der;
    s->pub = der_len > 0 ? d2i_PUBKEY(NULL, &p, der_len) : NULL;
    OPENSSL_free(der);
    if (!s->priv || !s->pub || EVP_PKEY_get_base_id(s->pub) != EVP_PKEY_EC || EVP_PKEY_get_bits(s->pub) != 256) {
        drop_keys(s);
        ERR_clear_error();
        CV_BAIL(CV_ERR_INTERNAL, "HSM key %s is not an EC P-256 key pair", CV_HSM_AUDIT_KEY_LABEL);
    }
    /* A public half that belongs to another key would make every checkpoint
     * fail for the auditor: prove the pair once per load. */
    static const uint8_t probe[] = "credvault.audit.key-check";
    uint8_t sig[CV_HSM_SIGNATURE_MAX_BYTES];
    size_t sig_len = 0;
    if (!sign_with(s->priv, probe, sizeof(probe) - 1, sig, sizeof(sig), &sig_len) ||
        !verify_with(s->pub, probe, sizeof(probe) - 1, sig, sig_len)) {
        drop_keys(s);
        CV_BAIL(CV_ERR_INTERNAL, "HSM key %s: its public key does not verify its own signature",
                CV_HSM_AUDIT_KEY_LABEL);
    }
    return CV_OK;
}

struct sign_arg {
    const uint8_t *data;
    size_t len;
    uint8_t *sig;
    size_t cap, sig_len;
};

static int sign_once(EVP_PKEY *priv, struct sign_arg *a)
{
    return sign_with(priv, a->data, a->len, a->sig, a->cap, &a->sig_len);
}

static cv_result sign_op(struct cv_hsm *hsm, struct cv_hsm_lease *lease, void *arg)
{
    struct cv_hsm_signer *s;
    CV_GUARD(signer_get(hsm, &s));
    pthread_mutex_lock(&s->mu);
    cv_result r = load(hsm, lease, s);
    if (cv_ok(r) && !sign_once(s->priv, arg)) {
        /* libp11's own session may be stale while the device is fine: load
         * again from a fresh enumeration and try once more */
        s->loaded = 0;
        drop_keys(s);
        r = load(hsm, lease, s);
        if (cv_ok(r) && !sign_once(s->priv, arg)) {
            drop_keys(s);
            if (!cv_hsm_session_alive(hsm, lease->session))
                r = cv_hsm_ck_fail(lease, CKR_DEVICE_ERROR, "C_Sign", CV_ERR_UNAVAILABLE);
            else
                r = cv_fail(CV_ERR_INTERNAL, "HSM signing with %s failed", CV_HSM_AUDIT_KEY_LABEL);
        }
    }
    pthread_mutex_unlock(&s->mu);
    return r;
}

cv_result cv_hsm_audit_sign(struct cv_hsm *hsm, const uint8_t *data, size_t len, uint8_t *sig, size_t cap,
                            size_t *sig_len)
{
    CV_ENSURE_REF(hsm);
    CV_ENSURE(data != NULL && len >= 1 && len <= CV_HSM_SIGN_INPUT_MAX_BYTES, CV_ERR_INPUT,
              "signing input must be 1 to %d bytes", CV_HSM_SIGN_INPUT_MAX_BYTES);
    CV_ENSURE(sig != NULL && cap >= CV_HSM_SIGNATURE_MAX_BYTES, CV_ERR_INTERNAL, "signature buffer too small");
    struct sign_arg a = {data, len, sig, cap, 0};
    CV_GUARD(cv_hsm_run(hsm, sign_op, &a));
    *sig_len = a.sig_len;
    return CV_OK;
}

struct verify_arg {
    const uint8_t *data, *sig;
    size_t len, sig_len;
    int valid;
};

static cv_result verify_op(struct cv_hsm *hsm, struct cv_hsm_lease *lease, void *arg)
{
    struct verify_arg *a = arg;
    struct cv_hsm_signer *s;
    CV_GUARD(signer_get(hsm, &s));
    pthread_mutex_lock(&s->mu);
    cv_result r = load(hsm, lease, s);
    if (cv_ok(r)) a->valid = verify_with(s->pub, a->data, a->len, a->sig, a->sig_len);
    pthread_mutex_unlock(&s->mu);
    return r;
}

cv_result cv_hsm_audit_verify(struct cv_hsm *hsm, const uint8_t *data, size_t len, const uint8_t *sig, size_t sig_len)
{
    CV_ENSURE_REF(hsm);
    CV_ENSURE(data != NULL && len <= CV_HSM_SIGN_INPUT_MAX_BYTES, CV_ERR_INPUT, "bad verification input");
    CV_ENSURE(sig != NULL && sig_len >= 1 && sig_len <= CV_HSM_SIGNATURE_MAX_BYTES, CV_ERR_CRYPTO,
              "signature does not verify");
    struct verify_arg a = {data, sig, len, sig_len, 0};
    CV_GUARD(cv_hsm_run(hsm, verify_op, &a));
    CV_ENSURE(a.valid, CV_ERR_CRYPTO, "signature does not verify");
    return CV_OK;
}

struct pubkey_arg {
    char *pem;
    size_t cap;
    uint8_t *fingerprint;
};

static cv_result export_public(EVP_PKEY *pub, struct pubkey_arg *a)
{
    cv_result r = CV_OK;
    BIO *bio = BIO_new(BIO_s_mem());
    unsigned char *der = NULL;
    int der_len = i2d_PUBKEY(pub, &der);
    char *text = NULL;
    long n = 0;
    if (!bio || der_len <= 0 || PEM_write_bio_PUBKEY(bio, pub) != 1 || (n = BIO_get_mem_data(bio, &text)) <= 0) {
        r = cv_fail(CV_ERR_INTERNAL, "cannot encode the audit public key");
        goto out;
    }
    if ((size_t)n >= a->cap) {
        r = cv_fail(CV_ERR_INTERNAL, "the audit public key does not fit its buffer");
        goto out;
    }
    memcpy(a->pem, text, (size_t)n);
    a->pem[n] = '\0';
    unsigned int md_len = 0;
    if (a->fingerprint && (EVP_Digest(der, (size_t)der_len, a->fingerprint, &md_len, EVP_sha256(), NULL) != 1 ||
                           md_len != CV_HSM_KEY_FINGERPRINT_BYTES))
        r = cv_fail(CV_ERR_INTERNAL, "cannot hash the audit public key");
out:
    OPENSSL_free(der);
    BIO_free(bio);
    ERR_clear_error();
    return r;
}

static cv_result pubkey_op(struct cv_hsm *hsm, struct cv_hsm_lease *lease, void *arg)
{
    struct cv_hsm_signer *s;
    CV_GUARD(signer_get(hsm, &s));
    pthread_mutex_lock(&s->mu);
    cv_result r = load(hsm, lease, s);
    if (cv_ok(r)) r = export_public(s->pub, arg);
    pthread_mutex_unlock(&s->mu);
    return r;
}

cv_result cv_hsm_audit_public_key(struct cv_hsm *hsm, char *pem, size_t cap,
                                  uint8_t fingerprint[CV_HSM_KEY_FINGERPRINT_BYTES])
{
    CV_ENSURE_REF(hsm);
    CV_ENSURE(pem != NULL && cap >= 2, CV_ERR_INTERNAL, "public key buffer too small");
    struct pubkey_arg a = {pem, cap, fingerprint};
    return cv_hsm_run(hsm, pubkey_op, &a);
}

void cv_hsm_signer_free(struct cv_hsm *hsm)
{
    struct cv_hsm_signer *s = hsm->signer;
    if (!s) return;
    hsm->signer = NULL;
    drop_keys(s);
    /* The raw layer's sessions are closed by now, so closing every session
     * of the slot (what releasing does) takes nothing from it. */
    for (size_t i = 0; i < s->nsets; i++)
        PKCS11_release_all_slots(s->ctx, s->sets[i].slots, s->sets[i].n);
    /* Unloading finalizes the module: only when we own its life. */
    if (hsm->initialized) PKCS11_CTX_unload(s->ctx);
    PKCS11_CTX_free(s->ctx);
    pthread_mutex_destroy(&s->mu);
    free(s);
    ERR_clear_error();
}
