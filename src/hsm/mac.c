/* HMAC-SHA256 with the binding key for the layers above (hsm_mac.h). The
 * input is context ‖ 0x00 ‖ data; a context must start "credvault." and
 * differ from the key binding's, whose input has no zero byte after it, so
 * no MAC made here can stand in for a key binding or for another context. */
#include <string.h>

#include "credvault/buf.h"
#include "credvault/hsm_mac.h"
#include "internal.h"

#define MAC_CONTEXT_MAX_BYTES 64

struct mac_arg {
    const uint8_t *input;
    size_t len;
    uint8_t *out;
};

static cv_result mac_op(struct cv_hsm *hsm, struct cv_hsm_lease *lease, void *arg)
{
    struct mac_arg *a = arg;
    CK_OBJECT_HANDLE key;
    CV_GUARD(cv_hsm_binding_handle(hsm, &key));
    CK_MECHANISM mech = {CKM_SHA256_HMAC, NULL, 0};
    CV_CK_GUARD(lease, "C_SignInit", hsm->f->C_SignInit(lease->session, &mech, key), CV_ERR_INTERNAL);
    CK_ULONG len = CV_HSM_MAC_BYTES;
    CV_CK_GUARD(lease, "C_Sign", hsm->f->C_Sign(lease->session, (CK_BYTE_PTR)a->input, (CK_ULONG)a->len, a->out, &len),
                CV_ERR_INTERNAL);
    CV_ENSURE(len == CV_HSM_MAC_BYTES, CV_ERR_INTERNAL, "HSM HMAC gave %lu bytes, expected %d", (unsigned long)len,
              CV_HSM_MAC_BYTES);
    return CV_OK;
}

cv_result cv_hsm_mac(struct cv_hsm *hsm, const char *context, const uint8_t *data, size_t len,
                     uint8_t out[CV_HSM_MAC_BYTES])
{
    CV_ENSURE_REF(hsm);
    CV_ENSURE_REF(context);
    CV_ENSURE(data != NULL || len == 0, CV_ERR_INTERNAL, "MAC input missing");
    size_t clen = strnlen(context, MAC_CONTEXT_MAX_BYTES + 1);
    CV_ENSURE(clen <= MAC_CONTEXT_MAX_BYTES && strncmp(context, "credvault.", 10) == 0 &&
                  strncmp(context, "credvault.keybind.", 18) != 0,
              CV_ERR_INTERNAL, "invalid MAC context");
    CV_ENSURE(len <= CV_HSM_MAC_INPUT_MAX_BYTES, CV_ERR_INTERNAL, "MAC input too large");
    uint8_t input[MAC_CONTEXT_MAX_BYTES + 1 + CV_HSM_MAC_INPUT_MAX_BYTES];
    memcpy(input, context, clen);
    input[clen] = 0;
    if (len) memcpy(input + clen + 1, data, len);
    struct mac_arg a = {.input = input, .len = clen + 1 + len, .out = out};
    cv_result r = cv_hsm_run(hsm, mac_op, &a);
    cv_wipe(input, clen + 1 + len);
    return r;
}

cv_result cv_hsm_mac_check(struct cv_hsm *hsm, const char *context, const uint8_t *data, size_t len,
                           const uint8_t mac[CV_HSM_MAC_BYTES])
{
    uint8_t expect[CV_HSM_MAC_BYTES];
    CV_GUARD(cv_hsm_mac(hsm, context, data, len, expect));
    int same = cv_memeq(expect, mac, sizeof(expect));
    cv_wipe(expect, sizeof(expect));
    CV_ENSURE(same, CV_ERR_CRYPTO, "integrity check failed");
    return CV_OK;
}
