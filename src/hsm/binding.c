/* The key binding: an HMAC-SHA256, made by the token's binding key, over
 * "credvault.keybind.v1" ‖ u32be len ‖ tenant ‖ u32be version ‖
 * u32be master_version ‖ u32be len ‖ wrapped bytes. Key wrapping carries no
 * associated data; this is what stops a wrapped key from being presented as
 * another tenant's or version's. Never unwraps anything itself. */
#include <string.h>

#include "credvault/buf.h"
#include "internal.h"

#define BINDING_CONTEXT "credvault.keybind.v1"
#define BINDING_INPUT_MAX_BYTES \
    (sizeof(BINDING_CONTEXT) + 4 + CV_TENANT_ID_MAX_BYTES + 4 + 4 + 4 + CV_WRAPPED_KEY_MAX_BYTES)

static void put_u32be(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* Length-prefixed fields, so distinct tuples never encode alike. */
static size_t binding_input(const struct cv_key_ref *ref, uint8_t out[BINDING_INPUT_MAX_BYTES])
{
    size_t n = 0, tlen = strnlen(ref->tenant_id, sizeof(ref->tenant_id));
    memcpy(out, BINDING_CONTEXT, sizeof(BINDING_CONTEXT) - 1);
    n += sizeof(BINDING_CONTEXT) - 1;
    put_u32be(out + n, (uint32_t)tlen);
    n += 4;
    memcpy(out + n, ref->tenant_id, tlen);
    n += tlen;
    put_u32be(out + n, ref->version);
    n += 4;
    put_u32be(out + n, ref->master_version);
    n += 4;
    put_u32be(out + n, (uint32_t)ref->wrapped_len);
    n += 4;
    memcpy(out + n, ref->wrapped, ref->wrapped_len);
    return n + ref->wrapped_len;
}

cv_result cv_hsm_binding_compute(struct cv_hsm *hsm, struct cv_hsm_lease *lease, const struct cv_key_ref *ref,
                                 uint8_t out[CV_KEY_BINDING_BYTES])
{
    CK_OBJECT_HANDLE key;
    CV_GUARD(cv_hsm_binding_handle(hsm, &key));
    uint8_t input[BINDING_INPUT_MAX_BYTES];
    size_t n = binding_input(ref, input);
    CK_MECHANISM mech = {CKM_SHA256_HMAC, NULL, 0};
    CV_CK_GUARD(lease, "C_SignInit", hsm->f->C_SignInit(lease->session, &mech, key), CV_ERR_INTERNAL);
    CK_ULONG len = CV_KEY_BINDING_BYTES;
    CV_CK_GUARD(lease, "C_Sign", hsm->f->C_Sign(lease->session, input, (CK_ULONG)n, out, &len), CV_ERR_INTERNAL);
    CV_ENSURE(len == CV_KEY_BINDING_BYTES, CV_ERR_INTERNAL, "HSM HMAC gave %lu bytes, expected %d",
              (unsigned long)len, CV_KEY_BINDING_BYTES);
    return CV_OK;
}

cv_result cv_hsm_binding_check(struct cv_hsm *hsm, struct cv_hsm_lease *lease, const struct cv_key_ref *ref)
{
    /* Sign and compare here rather than C_Verify: vendors disagree on what
     * C_Verify returns for a mismatch, and this comparison is constant time. */
    uint8_t expect[CV_KEY_BINDING_BYTES];
    CV_GUARD(cv_hsm_binding_compute(hsm, lease, ref, expect));
    int same = cv_memeq(expect, ref->binding, sizeof(expect));
    cv_wipe(expect, sizeof(expect));
    CV_ENSURE(same, CV_ERR_CRYPTO, CV_HSM_DECRYPT_FAILED);
    return CV_OK;
}
