/* Quirk profiles: what differs between tokens credvault runs on, decided once
 * at open from who made the module and token and which mechanisms it lists.
 * Plain C types only, so the choice is unit-tested without a token. */
#ifndef CV_HSM_QUIRKS_H
#define CV_HSM_QUIRKS_H

#include <stddef.h>

#include "credvault/result.h"

enum cv_hsm_iv_source {
    CV_HSM_IV_CALLER,       /* we pass 12 random bytes (SoftHSM, generic) */
    CV_HSM_IV_HSM_BUFFER,   /* the token writes its IV into our zeroed buffer (CloudHSM) */
    CV_HSM_IV_HSM_APPENDED, /* the token appends its IV to the output (Luna in FIPS mode) */
};

struct cv_hsm_profile {
    char name[16];                     /* "softhsm", "cloudhsm", "luna", "generic" */
    unsigned long wrap_mechanism;      /* RFC 5649 key wrap as this token names it */
    enum cv_hsm_iv_source iv_source;
    unsigned long gcm_iv_bits_encrypt; /* CK_GCM_PARAMS.ulIvBits, set explicitly */
    unsigned long gcm_iv_bits_decrypt;
    /* SoftHSM answers a wrong GCM tag and wrong wrapped bytes with
     * CKR_GENERAL_ERROR; with this set, that value on a data-dependent call
     * over a live session means "bad input", not "device gone". */
    int general_error_is_bad_data;
};

/* Trimmed (no blank padding) C strings from CK_INFO and CK_TOKEN_INFO. */
struct cv_hsm_identity {
    const char *library_manufacturer;
    const char *library_description;
    const char *token_manufacturer;
    const char *token_model;
};

#define CV_HSM_REQUIRED_MECHANISMS_MAX 12

/* Picks the profile; CV_ERR_UNAVAILABLE naming the mechanism when the token
 * lacks one credvault needs (AES key generation, GCM, the profile's wrap,
 * generic secret generation, HMAC-SHA256). */
CV_RESULT cv_hsm_profile_pick(const struct cv_hsm_identity *id, const unsigned long *mechanisms,
                              size_t count, struct cv_hsm_profile *out);

/* The mechanisms a profile needs, for the capability check and the status. */
size_t cv_hsm_profile_required(const struct cv_hsm_profile *p, unsigned long *out, size_t max);

const char *cv_hsm_iv_source_name(enum cv_hsm_iv_source s);

#endif
