/* AES-256-GCM in the token with a tenant key. Owns the CK_GCM_PARAMS per
 * quirk profile (who makes the IV, ulIvBits) and the output layout. Never
 * sees key bytes; plaintext passes only through wiped secret memory; every
 * failed decrypt gives the same answer. */
#include <stdlib.h>
#include <string.h>

#include "credvault/buf.h"
#include "internal.h"

#define GCM_TAG_BITS (CV_GCM_TAG_BYTES * 8)
/* Room for ct ‖ tag ‖ an appended IV of up to 16 bytes (older Luna firmware). */
#define GCM_OUTPUT_SLACK (CV_GCM_TAG_BYTES + 16)

static cv_result check_sizes(size_t aad_len, size_t len)
{
    /* SoftHSM mishandles an empty AAD, and every record has one: an empty
     * AAD here is a caller bug, not input. */
    CV_ENSURE(aad_len >= 1, CV_ERR_INTERNAL, "GCM needs associated data");
    CV_ENSURE(aad_len <= CV_HSM_AAD_MAX_BYTES, CV_ERR_TOO_LARGE, "GCM associated data over %d bytes",
              CV_HSM_AAD_MAX_BYTES);
    CV_ENSURE(len >= 1, CV_ERR_INPUT, "GCM input is empty");
    CV_ENSURE(len <= CV_HSM_GCM_MAX_BYTES, CV_ERR_TOO_LARGE, "GCM input over %d bytes", CV_HSM_GCM_MAX_BYTES);
    return CV_OK;
}

static int all_zero(const uint8_t *p, size_t n)
{
    uint8_t acc = 0;
    for (size_t i = 0; i < n; i++) acc |= p[i];
    return acc == 0;
}

cv_result cv_hsm_gcm_seal(struct cv_hsm *hsm, struct cv_hsm_lease *lease, CK_OBJECT_HANDLE key, const uint8_t *aad,
                          size_t aad_len, const uint8_t *pt, size_t pt_len, int iv_given,
                          uint8_t iv[CV_GCM_IV_BYTES], uint8_t *ct, uint8_t tag[CV_GCM_TAG_BYTES])
{
    CV_GUARD(check_sizes(aad_len, pt_len));
    enum cv_hsm_iv_source source = hsm->profile.iv_source;
    CV_ENSURE(!iv_given || source == CV_HSM_IV_CALLER, CV_ERR_INTERNAL, "this token makes its own GCM IVs");

    CK_GCM_PARAMS p;
    memset(&p, 0, sizeof(p));
    p.pAAD = (CK_BYTE_PTR)aad;
    p.ulAADLen = (CK_ULONG)aad_len;
    p.ulTagBits = GCM_TAG_BITS;
    p.ulIvBits = hsm->profile.gcm_iv_bits_encrypt;
    switch (source) {
    case CV_HSM_IV_CALLER:
        /* A fresh IV per attempt, from the token's RNG. */
        if (!iv_given)
            CV_CK_GUARD(lease, "C_GenerateRandom", hsm->f->C_GenerateRandom(lease->session, iv, CV_GCM_IV_BYTES),
                        CV_ERR_INTERNAL);
        p.pIv = iv;
        p.ulIvLen = CV_GCM_IV_BYTES;
        break;
    case CV_HSM_IV_HSM_BUFFER:
        memset(iv, 0, CV_GCM_IV_BYTES);
        p.pIv = iv;
        p.ulIvLen = CV_GCM_IV_BYTES;
        break;
    case CV_HSM_IV_HSM_APPENDED:
        p.pIv = NULL;
        p.ulIvLen = 0;
        break;
    }
    CK_MECHANISM mech = {CKM_AES_GCM, &p, sizeof(p)};

    cv_result res = CV_OK;
    size_t cap = pt_len + GCM_OUTPUT_SLACK;
    uint8_t *out = malloc(cap); /* ciphertext only: no need for secret memory */
    CV_ENSURE(out != NULL, CV_ERR_MEMORY, "out of memory");
    CV_CK_GUARD_OUT(res, lease, "C_EncryptInit", hsm->f->C_EncryptInit(lease->session, &mech, key), CV_ERR_INTERNAL);
    CK_ULONG out_len = (CK_ULONG)cap;
    CV_CK_GUARD_OUT(res, lease, "C_Encrypt",
                    hsm->f->C_Encrypt(lease->session, (CK_BYTE_PTR)pt, (CK_ULONG)pt_len, out, &out_len),
                    CV_ERR_INTERNAL);

    size_t want = pt_len + CV_GCM_TAG_BYTES + (source == CV_HSM_IV_HSM_APPENDED ? CV_GCM_IV_BYTES : 0);
    if (out_len != want) {
        res = cv_fail(CV_ERR_INTERNAL, "HSM GCM output is %lu bytes, expected %zu (wrong quirk profile %s?)",
                      (unsigned long)out_len, want, hsm->profile.name);
        goto out;
    }
    if (source == CV_HSM_IV_HSM_APPENDED) memcpy(iv, out + pt_len + CV_GCM_TAG_BYTES, CV_GCM_IV_BYTES);
    /* A token that should have made the IV but left zeros would repeat it on
     * every record: refuse rather than write such a record. */
    if (source != CV_HSM_IV_CALLER && all_zero(iv, CV_GCM_IV_BYTES)) {
        res = cv_fail(CV_ERR_INTERNAL, "HSM did not return the GCM IV it made (quirk profile %s)", hsm->profile.name);
        goto out;
    }
    memcpy(ct, out, pt_len);
    memcpy(tag, out + pt_len, CV_GCM_TAG_BYTES);
out:
    free(out);
    return res;
}

cv_result cv_hsm_gcm_open(struct cv_hsm *hsm, struct cv_hsm_lease *lease, CK_OBJECT_HANDLE key, const uint8_t *aad,
                          size_t aad_len, const uint8_t iv[CV_GCM_IV_BYTES], const uint8_t *ct, size_t ct_len,
                          const uint8_t tag[CV_GCM_TAG_BYTES], uint8_t *pt)
{
    CV_GUARD(check_sizes(aad_len, ct_len));
    CK_GCM_PARAMS p;
    memset(&p, 0, sizeof(p));
    p.pIv = (CK_BYTE_PTR)iv;
    p.ulIvLen = CV_GCM_IV_BYTES;
    p.ulIvBits = hsm->profile.gcm_iv_bits_decrypt;
    p.pAAD = (CK_BYTE_PTR)aad;
    p.ulAADLen = (CK_ULONG)aad_len;
    p.ulTagBits = GCM_TAG_BITS;
    CK_MECHANISM mech = {CKM_AES_GCM, &p, sizeof(p)};

    cv_result res = CV_OK;
    size_t in_len = ct_len + CV_GCM_TAG_BYTES;
    /* SoftHSM wants room for the whole input before it knows the tag's
     * share, so the plaintext lands in a larger secret buffer first. */
    size_t cap = ct_len + GCM_OUTPUT_SLACK;
    uint8_t *in = malloc(in_len);
    uint8_t *out = cv_secret_alloc(cap);
    if (!in || !out) {
        res = cv_fail(CV_ERR_MEMORY, "out of memory");
        goto out;
    }
    memcpy(in, ct, ct_len);
    memcpy(in + ct_len, tag, CV_GCM_TAG_BYTES);
    CV_CK_GUARD_OUT(res, lease, "C_DecryptInit", hsm->f->C_DecryptInit(lease->session, &mech, key), CV_ERR_INTERNAL);
    CK_ULONG out_len = (CK_ULONG)cap;
    CK_RV rv = hsm->f->C_Decrypt(lease->session, in, (CK_ULONG)in_len, out, &out_len);
    if (rv != CKR_OK) {
        res = cv_hsm_data_fail(hsm, lease, rv, "C_Decrypt");
        goto out;
    }
    if (out_len != ct_len) {
        res = cv_fail(CV_ERR_CRYPTO, CV_HSM_DECRYPT_FAILED);
        goto out;
    }
    memcpy(pt, out, ct_len);
out:
    free(in);
    cv_secret_free(out);
    return res;
}

/* ---- public ---- */

struct seal_arg {
    const struct cv_key_ref *ref;
    const uint8_t *aad, *pt;
    size_t aad_len, pt_len;
    uint8_t *iv, *ct, *tag;
};

static cv_result seal_op(struct cv_hsm *hsm, struct cv_hsm_lease *lease, void *arg)
{
    struct seal_arg *a = arg;
    struct cv_hsm_cache_entry *e = NULL;
    CV_GUARD(cv_hsm_key_pin(hsm, lease, a->ref, &e));
    cv_result r = cv_hsm_gcm_seal(hsm, lease, cv_hsm_cache_handle(e), a->aad, a->aad_len, a->pt, a->pt_len, 0, a->iv,
                                  a->ct, a->tag);
    cv_hsm_key_unpin(hsm, lease, e);
    return r;
}

cv_result cv_hsm_gcm_encrypt(struct cv_hsm *hsm, const struct cv_key_ref *ref, const uint8_t *aad, size_t aad_len,
                             const uint8_t *pt, size_t pt_len, uint8_t iv[CV_GCM_IV_BYTES], uint8_t *ct,
                             uint8_t tag[CV_GCM_TAG_BYTES])
{
    CV_ENSURE_REF(hsm);
    CV_ENSURE(aad && pt && iv && ct && tag, CV_ERR_INTERNAL, "null buffer for GCM encrypt");
    CV_GUARD(check_sizes(aad_len, pt_len));
    CV_GUARD(cv_hsm_ref_check(ref));
    struct seal_arg a = {ref, aad, pt, aad_len, pt_len, iv, ct, tag};
    return cv_hsm_run(hsm, seal_op, &a);
}

struct open_arg {
    const struct cv_key_ref *ref;
    const uint8_t *aad, *iv, *ct, *tag;
    size_t aad_len, ct_len;
    uint8_t *pt;
};

static cv_result open_op(struct cv_hsm *hsm, struct cv_hsm_lease *lease, void *arg)
{
    struct open_arg *a = arg;
    struct cv_hsm_cache_entry *e = NULL;
    CV_GUARD(cv_hsm_key_pin(hsm, lease, a->ref, &e));
    cv_result r = cv_hsm_gcm_open(hsm, lease, cv_hsm_cache_handle(e), a->aad, a->aad_len, a->iv, a->ct, a->ct_len,
                                  a->tag, a->pt);
    cv_hsm_key_unpin(hsm, lease, e);
    return r;
}

cv_result cv_hsm_gcm_decrypt(struct cv_hsm *hsm, const struct cv_key_ref *ref, const uint8_t *aad, size_t aad_len,
                             const uint8_t iv[CV_GCM_IV_BYTES], const uint8_t *ct, size_t ct_len,
                             const uint8_t tag[CV_GCM_TAG_BYTES], uint8_t *pt)
{
    CV_ENSURE_REF(hsm);
    CV_ENSURE(aad && iv && ct && tag && pt, CV_ERR_INTERNAL, "null buffer for GCM decrypt");
    CV_GUARD(check_sizes(aad_len, ct_len));
    /* A damaged key reference is one more way a record fails to decrypt. */
    CV_ENSURE_REF(ref);
    CV_ENSURE(cv_ok(cv_hsm_ref_check(ref)), CV_ERR_CRYPTO, CV_HSM_DECRYPT_FAILED);
    struct open_arg a = {ref, aad, iv, ct, tag, aad_len, ct_len, pt};
    return cv_hsm_run(hsm, open_op, &a);
}
