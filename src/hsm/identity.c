/* Which token this is, checked at every re-open: a token with the same label
 * and PIN put in place of ours must be refused before any decrypt, sign or
 * create. The fingerprint is an HMAC of a fixed text under the binding key
 * (only the token that holds that non-extractable key can make it), or the
 * serial number while the token has no binding key yet. Never logs the MAC. */
#include <stdio.h>
#include <string.h>

#include "credvault/log.h"
#include "internal.h"

#define IDENTITY_TEXT "credvault token identity v1"

static int mac_of(struct cv_hsm *hsm, uint8_t out[32])
{
    if (hsm->binding == CK_INVALID_HANDLE || hsm->binding_duplicate) return 0;
    CK_MECHANISM m = {CKM_SHA256_HMAC, NULL, 0};
    CK_RV rv = hsm->f->C_SignInit(hsm->owner, &m, hsm->binding);
    if (rv == CKR_MECHANISM_INVALID && hsm->inspect) return 0; /* a gap `hsm status` reports */
    if (rv != CKR_OK) return -1;
    CK_ULONG n = 32;
    rv = hsm->f->C_Sign(hsm->owner, (CK_BYTE_PTR)IDENTITY_TEXT, sizeof(IDENTITY_TEXT) - 1, out, &n);
    return rv == CKR_OK && n == 32 ? 1 : -1;
}

cv_result cv_hsm_identity_check(struct cv_hsm *hsm, CK_RV *rv)
{
    hsm->foreign = 0;
    uint8_t mac[32];
    int has_mac = mac_of(hsm, mac);
    if (has_mac < 0) {
        *rv = CKR_DEVICE_ERROR;
        return cv_fail(CV_ERR_UNAVAILABLE, "HSM identity check failed (C_Sign)");
    }
    char serial[17];
    cv_hsm_field_trim(hsm->token.serialNumber, sizeof(hsm->token.serialNumber), serial, sizeof(serial));

    if (!hsm->identity.known || (!hsm->identity.has_mac && has_mac && strcmp(serial, hsm->identity.serial) == 0)) {
        /* first open, or the binding key was made since on the same token */
        hsm->identity.known = 1;
        hsm->identity.has_mac = has_mac;
        if (has_mac) memcpy(hsm->identity.mac, mac, sizeof(mac));
        snprintf(hsm->identity.serial, sizeof(hsm->identity.serial), "%s", serial);
        return CV_OK;
    }
    int same = hsm->identity.has_mac ? has_mac && memcmp(mac, hsm->identity.mac, sizeof(mac)) == 0
                                     : !has_mac && strcmp(serial, hsm->identity.serial) == 0;
    if (same) return CV_OK;
    hsm->foreign = 1;
    *rv = CKR_TOKEN_NOT_RECOGNIZED;
    return cv_fail(CV_ERR_UNAVAILABLE,
                   "HSM token (serial %s) is not the one opened at start (serial %s): its keys are not ours", serial,
                   hsm->identity.serial);
}
