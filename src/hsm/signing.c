/* The audit signing key pair, on the raw PKCS#11 side: generating it in the
 * token (C_GenerateKeyPair, EC P-256) and finding it by label with a check
 * that the private half can never leave the token. Never creates a key on a
 * request path; signing itself goes through libp11 (signing_p11.c). */
#include <string.h>

#include "credvault/hsm_signing.h"
#include "internal.h"

/* DER of the OID 1.2.840.10045.3.1.7 (prime256v1, NIST P-256) */
static const CK_BYTE p256_params[] = {0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};

static cv_result find_audit_key(struct cv_hsm *hsm, struct cv_hsm_lease *lease, CK_OBJECT_CLASS cls,
                                CK_OBJECT_HANDLE found[2], CK_ULONG *n)
{
    CK_KEY_TYPE type = CKK_EC;
    CK_BBOOL yes = CK_TRUE;
    const char *label = CV_HSM_AUDIT_KEY_LABEL;
    CK_ATTRIBUTE t[] = {
        {CKA_CLASS, &cls, sizeof(cls)},
        {CKA_KEY_TYPE, &type, sizeof(type)},
        {CKA_TOKEN, &yes, sizeof(yes)},
        {CKA_LABEL, (void *)label, strlen(label)},
    };
    CK_RV rv = CKR_OK;
    if (cv_failed(cv_hsm_find(hsm, lease->session, t, 4, found, 2, n, &rv)))
        return cv_hsm_ck_fail(lease, rv, "C_FindObjects", CV_ERR_UNAVAILABLE);
    return CV_OK;
}

cv_result cv_hsm_audit_key_check(struct cv_hsm *hsm, struct cv_hsm_lease *lease, int *exists)
{
    CK_OBJECT_HANDLE found[2];
    CK_ULONG n = 0;
    CV_GUARD(find_audit_key(hsm, lease, CKO_PRIVATE_KEY, found, &n));
    *exists = n > 0;
    CV_ENSURE(n <= 1, CV_ERR_INTERNAL, "two HSM keys are labelled %s; remove the one credvault did not make",
              CV_HSM_AUDIT_KEY_LABEL);
    if (n == 0) return CV_OK;
    CK_BBOOL sensitive = CK_FALSE, extractable = CK_TRUE;
    CK_ATTRIBUTE a[] = {
        {CKA_SENSITIVE, &sensitive, sizeof(sensitive)},
        {CKA_EXTRACTABLE, &extractable, sizeof(extractable)},
    };
    CV_CK_GUARD(lease, "C_GetAttributeValue", hsm->f->C_GetAttributeValue(lease->session, found[0], a, 2),
                CV_ERR_UNAVAILABLE);
    CV_ENSURE(sensitive == CK_TRUE && extractable == CK_FALSE, CV_ERR_INTERNAL,
              "HSM key %s can leave the token (sensitive=%d, extractable=%d); refusing to sign with it",
              CV_HSM_AUDIT_KEY_LABEL, sensitive == CK_TRUE, extractable == CK_TRUE);
    return CV_OK;
}

static cv_result create_op(struct cv_hsm *hsm, struct cv_hsm_lease *lease, void *arg)
{
    (void)arg;
    int exists = 0;
    CV_GUARD(cv_hsm_audit_key_check(hsm, lease, &exists));
    CV_ENSURE(!exists, CV_ERR_CONFLICT, "HSM key %s exists already", CV_HSM_AUDIT_KEY_LABEL);
    CK_OBJECT_HANDLE stray[2];
    CK_ULONG n = 0;
    CV_GUARD(find_audit_key(hsm, lease, CKO_PUBLIC_KEY, stray, &n));
    /* a public half without its private half would make libp11 pair the
     * new private key with the wrong public key */
    CV_ENSURE(n == 0, CV_ERR_CONFLICT, "a public key labelled %s exists without its private key; remove it first",
              CV_HSM_AUDIT_KEY_LABEL);

    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    CK_OBJECT_CLASS pub_cls = CKO_PUBLIC_KEY, priv_cls = CKO_PRIVATE_KEY;
    CK_KEY_TYPE type = CKK_EC;
    const char *label = CV_HSM_AUDIT_KEY_LABEL;
    CK_ATTRIBUTE pub[] = {
        {CKA_CLASS, &pub_cls, sizeof(pub_cls)},
        {CKA_KEY_TYPE, &type, sizeof(type)},
        {CKA_TOKEN, &yes, sizeof(yes)},
        {CKA_PRIVATE, &no, sizeof(no)},
        {CKA_MODIFIABLE, &no, sizeof(no)},
        {CKA_VERIFY, &yes, sizeof(yes)},
        {CKA_ENCRYPT, &no, sizeof(no)},
        {CKA_WRAP, &no, sizeof(no)},
        {CKA_DERIVE, &no, sizeof(no)},
        {CKA_EC_PARAMS, (void *)p256_params, sizeof(p256_params)},
        {CKA_LABEL, (void *)label, strlen(label)},
        {CKA_ID, (void *)label, strlen(label)},
    };
    /* Sign only: a key that could also decrypt or derive would be worth
     * more to whoever holds the PIN. Not modifiable, so nobody adds that later. */
    CK_ATTRIBUTE priv[] = {
        {CKA_CLASS, &priv_cls, sizeof(priv_cls)},
        {CKA_KEY_TYPE, &type, sizeof(type)},
        {CKA_TOKEN, &yes, sizeof(yes)},
        {CKA_PRIVATE, &yes, sizeof(yes)},
        {CKA_SENSITIVE, &yes, sizeof(yes)},
        {CKA_EXTRACTABLE, &no, sizeof(no)},
        {CKA_MODIFIABLE, &no, sizeof(no)},
        {CKA_SIGN, &yes, sizeof(yes)},
        {CKA_DECRYPT, &no, sizeof(no)},
        {CKA_UNWRAP, &no, sizeof(no)},
        {CKA_DERIVE, &no, sizeof(no)},
        {CKA_LABEL, (void *)label, strlen(label)},
        {CKA_ID, (void *)label, strlen(label)},
    };
    CK_MECHANISM mech = {CKM_EC_KEY_PAIR_GEN, NULL, 0};
    CK_OBJECT_HANDLE hpub = CK_INVALID_HANDLE, hpriv = CK_INVALID_HANDLE;
    CV_CK_GUARD(lease, "C_GenerateKeyPair",
                hsm->f->C_GenerateKeyPair(lease->session, &mech, pub, sizeof(pub) / sizeof(pub[0]), priv,
                                          sizeof(priv) / sizeof(priv[0]), &hpub, &hpriv),
                CV_ERR_INTERNAL);
    return CV_OK;
}

cv_result cv_hsm_audit_key_create(struct cv_hsm *hsm)
{
    CV_ENSURE_REF(hsm);
    return cv_hsm_run(hsm, create_op, NULL);
}

static cv_result exists_op(struct cv_hsm *hsm, struct cv_hsm_lease *lease, void *arg)
{
    return cv_hsm_audit_key_check(hsm, lease, arg);
}

cv_result cv_hsm_audit_key_exists(struct cv_hsm *hsm, int *exists)
{
    CV_ENSURE_REF(hsm);
    CV_ENSURE_REF(exists);
    *exists = 0;
    return cv_hsm_run(hsm, exists_op, exists);
}
