/* Chooses the quirk profile. Owns the table of vendor differences and nothing
 * else: it makes no PKCS#11 call, and it never picks plain CKM_AES_KEY_WRAP on
 * CloudHSM, where that name means a non-standard padded wrap. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "names.h"
#include "quirks.h"

#define M_GENERIC_SECRET_KEY_GEN 0x0350UL
#define M_SHA256_HMAC 0x0251UL
#define M_AES_KEY_GEN 0x1080UL
#define M_AES_GCM 0x1087UL
#define M_AES_KEY_WRAP_PAD 0x210AUL
#define M_AES_KEY_WRAP_KWP 0x210BUL
/* aws-samples/aws-cloudhsm-pkcs11-examples, include/pkcs11/v2.40/cloudhsm_pkcs11_vendor_defs.h */
#define M_CLOUDHSM_AES_KEY_WRAP_ZERO_PAD (0x80000000UL | 0x216FUL)

static int contains_ci(const char *hay, const char *needle)
{
    if (!hay) return 0;
    size_t n = strlen(needle);
    for (; *hay; hay++) {
        size_t i = 0;
        while (i < n && hay[i] && tolower((unsigned char)hay[i]) == tolower((unsigned char)needle[i])) i++;
        if (i == n) return 1;
    }
    return 0;
}

static int made_by(const struct cv_hsm_identity *id, const char *const *names)
{
    for (; *names; names++) {
        if (contains_ci(id->library_manufacturer, *names) || contains_ci(id->library_description, *names) ||
            contains_ci(id->token_manufacturer, *names) || contains_ci(id->token_model, *names))
            return 1;
    }
    return 0;
}

static int has(const unsigned long *mechs, size_t n, unsigned long m)
{
    for (size_t i = 0; i < n; i++)
        if (mechs[i] == m) return 1;
    return 0;
}

static const char *const softhsm_names[] = {"SoftHSM", NULL};
/* SDK 3 tokens are labelled "cavium"; the HSMs are Marvell LiquidSecurity. */
static const char *const cloudhsm_names[] = {"CloudHSM", "Cavium", "Marvell", "Amazon", NULL};
static const char *const luna_names[] = {"SafeNet", "Luna", "Thales", "Gemalto", NULL};

size_t cv_hsm_profile_required(const struct cv_hsm_profile *p, unsigned long *out, size_t max)
{
    const unsigned long need[] = {M_AES_KEY_GEN, M_AES_GCM, p->wrap_mechanism, M_GENERIC_SECRET_KEY_GEN,
                                  M_SHA256_HMAC};
    size_t n = sizeof(need) / sizeof(need[0]);
    if (n > max) n = max;
    memcpy(out, need, n * sizeof(need[0]));
    return n;
}

cv_result cv_hsm_profile_pick(const struct cv_hsm_identity *id, const unsigned long *mechs, size_t count,
                              struct cv_hsm_profile *out)
{
    CV_ENSURE_REF(id);
    CV_ENSURE_REF(out);
    memset(out, 0, sizeof(*out));
    /* The 2.40 layout with ulIvBits set to the IV length is what the standard
     * and SoftHSM expect; vendors differ below. */
    out->iv_source = CV_HSM_IV_CALLER;
    out->gcm_iv_bits_encrypt = 96;
    out->gcm_iv_bits_decrypt = 96;

    if (made_by(id, softhsm_names)) {
        snprintf(out->name, sizeof(out->name), "softhsm");
        out->wrap_mechanism = M_AES_KEY_WRAP_PAD; /* RFC 5649 in SoftHSM 2.6 */
        out->general_error_is_bad_data = 1;
    } else if (has(mechs, count, M_CLOUDHSM_AES_KEY_WRAP_ZERO_PAD) || made_by(id, cloudhsm_names)) {
        snprintf(out->name, sizeof(out->name), "cloudhsm");
        /* Client SDK 5 maps the standard RFC 5649 wrap to this vendor name. */
        out->wrap_mechanism = M_CLOUDHSM_AES_KEY_WRAP_ZERO_PAD;
        /* The HSM ignores our IV and writes its own into the 12-byte buffer; AWS's
         * own GCM sample passes ulIvBits = 0 both ways. */
        out->iv_source = CV_HSM_IV_HSM_BUFFER;
        out->gcm_iv_bits_encrypt = 0;
        out->gcm_iv_bits_decrypt = 0;
    } else if (made_by(id, luna_names)) {
        snprintf(out->name, sizeof(out->name), "luna");
        out->wrap_mechanism = has(mechs, count, M_AES_KEY_WRAP_KWP) ? M_AES_KEY_WRAP_KWP : M_AES_KEY_WRAP_PAD;
        /* FIPS mode: ulIvLen 0 with ulIvBits 96 asks for a 96-bit IV made by the
         * HSM and appended to the output (firmware 7.9.3 and later); decrypt
         * fails when ulIvBits is 0. */
        out->iv_source = CV_HSM_IV_HSM_APPENDED;
    } else {
        snprintf(out->name, sizeof(out->name), "generic");
        out->wrap_mechanism = has(mechs, count, M_AES_KEY_WRAP_KWP) ? M_AES_KEY_WRAP_KWP : M_AES_KEY_WRAP_PAD;
        out->general_error_is_bad_data = 1;
    }

    unsigned long need[CV_HSM_REQUIRED_MECHANISMS_MAX];
    size_t n = cv_hsm_profile_required(out, need, CV_HSM_REQUIRED_MECHANISMS_MAX);
    for (size_t i = 0; i < n; i++) {
        if (!has(mechs, count, need[i])) {
            const char *name = cv_hsm_mechanism_name(need[i]);
            return cv_fail(CV_ERR_UNAVAILABLE, "HSM token (profile %s) lacks %s (CKR_MECHANISM_INVALID)",
                           out->name, name ? name : "a required mechanism");
        }
    }
    return CV_OK;
}

const char *cv_hsm_iv_source_name(enum cv_hsm_iv_source s)
{
    switch (s) {
    case CV_HSM_IV_CALLER: return "caller";
    case CV_HSM_IV_HSM_BUFFER: return "hsm-buffer";
    case CV_HSM_IV_HSM_APPENDED: return "hsm-appended";
    }
    return "caller";
}
