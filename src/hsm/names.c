/* The CK_RV name table (PKCS#11 2.40 through 3.2, numeric values from the OASIS
 * headers, not from whichever pkcs11.h is installed: some copies disagree on
 * 0x1B5–0x1B9) and the classification of return values. Owns no state. */
#include <stddef.h>
#include <stdio.h>

#include "names.h"

struct rv_name {
    unsigned long rv;
    const char *name;
};

/* Sorted by value: looked up by binary search (a unit test checks the order). */
static const struct rv_name rv_names[] = {
    {0x000, "CKR_OK"},
    {0x001, "CKR_CANCEL"},
    {0x002, "CKR_HOST_MEMORY"},
    {0x003, "CKR_SLOT_ID_INVALID"},
    {0x005, "CKR_GENERAL_ERROR"},
    {0x006, "CKR_FUNCTION_FAILED"},
    {0x007, "CKR_ARGUMENTS_BAD"},
    {0x008, "CKR_NO_EVENT"},
    {0x009, "CKR_NEED_TO_CREATE_THREADS"},
    {0x00A, "CKR_CANT_LOCK"},
    {0x010, "CKR_ATTRIBUTE_READ_ONLY"},
    {0x011, "CKR_ATTRIBUTE_SENSITIVE"},
    {0x012, "CKR_ATTRIBUTE_TYPE_INVALID"},
    {0x013, "CKR_ATTRIBUTE_VALUE_INVALID"},
    {0x01B, "CKR_ACTION_PROHIBITED"},
    {0x020, "CKR_DATA_INVALID"},
    {0x021, "CKR_DATA_LEN_RANGE"},
    {0x030, "CKR_DEVICE_ERROR"},
    {0x031, "CKR_DEVICE_MEMORY"},
    {0x032, "CKR_DEVICE_REMOVED"},
    {0x035, "CKR_AEAD_DECRYPT_FAILED"},
    {0x040, "CKR_ENCRYPTED_DATA_INVALID"},
    {0x041, "CKR_ENCRYPTED_DATA_LEN_RANGE"},
    {0x050, "CKR_FUNCTION_CANCELED"},
    {0x051, "CKR_FUNCTION_NOT_PARALLEL"},
    {0x054, "CKR_FUNCTION_NOT_SUPPORTED"},
    {0x060, "CKR_KEY_HANDLE_INVALID"},
    {0x062, "CKR_KEY_SIZE_RANGE"},
    {0x063, "CKR_KEY_TYPE_INCONSISTENT"},
    {0x064, "CKR_KEY_NOT_NEEDED"},
    {0x065, "CKR_KEY_CHANGED"},
    {0x066, "CKR_KEY_NEEDED"},
    {0x067, "CKR_KEY_INDIGESTIBLE"},
    {0x068, "CKR_KEY_FUNCTION_NOT_PERMITTED"},
    {0x069, "CKR_KEY_NOT_WRAPPABLE"},
    {0x06A, "CKR_KEY_UNEXTRACTABLE"},
    {0x070, "CKR_MECHANISM_INVALID"},
    {0x071, "CKR_MECHANISM_PARAM_INVALID"},
    {0x082, "CKR_OBJECT_HANDLE_INVALID"},
    {0x090, "CKR_OPERATION_ACTIVE"},
    {0x091, "CKR_OPERATION_NOT_INITIALIZED"},
    {0x0A0, "CKR_PIN_INCORRECT"},
    {0x0A1, "CKR_PIN_INVALID"},
    {0x0A2, "CKR_PIN_LEN_RANGE"},
    {0x0A3, "CKR_PIN_EXPIRED"},
    {0x0A4, "CKR_PIN_LOCKED"},
    {0x0B0, "CKR_SESSION_CLOSED"},
    {0x0B1, "CKR_SESSION_COUNT"},
    {0x0B3, "CKR_SESSION_HANDLE_INVALID"},
    {0x0B4, "CKR_SESSION_PARALLEL_NOT_SUPPORTED"},
    {0x0B5, "CKR_SESSION_READ_ONLY"},
    {0x0B6, "CKR_SESSION_EXISTS"},
    {0x0B7, "CKR_SESSION_READ_ONLY_EXISTS"},
    {0x0B8, "CKR_SESSION_READ_WRITE_SO_EXISTS"},
    {0x0C0, "CKR_SIGNATURE_INVALID"},
    {0x0C1, "CKR_SIGNATURE_LEN_RANGE"},
    {0x0D0, "CKR_TEMPLATE_INCOMPLETE"},
    {0x0D1, "CKR_TEMPLATE_INCONSISTENT"},
    {0x0E0, "CKR_TOKEN_NOT_PRESENT"},
    {0x0E1, "CKR_TOKEN_NOT_RECOGNIZED"},
    {0x0E2, "CKR_TOKEN_WRITE_PROTECTED"},
    {0x0F0, "CKR_UNWRAPPING_KEY_HANDLE_INVALID"},
    {0x0F1, "CKR_UNWRAPPING_KEY_SIZE_RANGE"},
    {0x0F2, "CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT"},
    {0x100, "CKR_USER_ALREADY_LOGGED_IN"},
    {0x101, "CKR_USER_NOT_LOGGED_IN"},
    {0x102, "CKR_USER_PIN_NOT_INITIALIZED"},
    {0x103, "CKR_USER_TYPE_INVALID"},
    {0x104, "CKR_USER_ANOTHER_ALREADY_LOGGED_IN"},
    {0x105, "CKR_USER_TOO_MANY_TYPES"},
    {0x110, "CKR_WRAPPED_KEY_INVALID"},
    {0x112, "CKR_WRAPPED_KEY_LEN_RANGE"},
    {0x113, "CKR_WRAPPING_KEY_HANDLE_INVALID"},
    {0x114, "CKR_WRAPPING_KEY_SIZE_RANGE"},
    {0x115, "CKR_WRAPPING_KEY_TYPE_INCONSISTENT"},
    {0x120, "CKR_RANDOM_SEED_NOT_SUPPORTED"},
    {0x121, "CKR_RANDOM_NO_RNG"},
    {0x130, "CKR_DOMAIN_PARAMS_INVALID"},
    {0x140, "CKR_CURVE_NOT_SUPPORTED"},
    {0x150, "CKR_BUFFER_TOO_SMALL"},
    {0x160, "CKR_SAVED_STATE_INVALID"},
    {0x170, "CKR_INFORMATION_SENSITIVE"},
    {0x180, "CKR_STATE_UNSAVEABLE"},
    {0x190, "CKR_CRYPTOKI_NOT_INITIALIZED"},
    {0x191, "CKR_CRYPTOKI_ALREADY_INITIALIZED"},
    {0x1A0, "CKR_MUTEX_BAD"},
    {0x1A1, "CKR_MUTEX_NOT_LOCKED"},
    {0x1B0, "CKR_NEW_PIN_MODE"},
    {0x1B1, "CKR_NEXT_OTP"},
    {0x1B5, "CKR_EXCEEDED_MAX_ITERATIONS"},
    {0x1B6, "CKR_FIPS_SELF_TEST_FAILED"},
    {0x1B7, "CKR_LIBRARY_LOAD_FAILED"},
    {0x1B8, "CKR_PIN_TOO_WEAK"},
    {0x1B9, "CKR_PUBLIC_KEY_INVALID"},
    {0x200, "CKR_FUNCTION_REJECTED"},
    {0x201, "CKR_TOKEN_RESOURCE_EXCEEDED"},
    {0x202, "CKR_OPERATION_CANCEL_FAILED"},
    {0x203, "CKR_KEY_EXHAUSTED"},
    {0x204, "CKR_PENDING"},
    {0x205, "CKR_SESSION_ASYNC_NOT_SUPPORTED"},
    {0x206, "CKR_SEED_RANDOM_REQUIRED"},
    {0x207, "CKR_OPERATION_NOT_VALIDATED"},
    {0x208, "CKR_TOKEN_NOT_INITIALIZED"},
    {0x209, "CKR_PARAMETER_SET_NOT_SUPPORTED"},
};

#define RV_VENDOR_DEFINED 0x80000000UL

const char *cv_hsm_rv_name(unsigned long rv)
{
    size_t lo = 0, hi = sizeof(rv_names) / sizeof(rv_names[0]);
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (rv_names[mid].rv == rv) return rv_names[mid].name;
        if (rv_names[mid].rv < rv) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}

const char *cv_hsm_rv_name_at(unsigned long i, unsigned long *rv)
{
    if (i >= sizeof(rv_names) / sizeof(rv_names[0])) return NULL;
    *rv = rv_names[i].rv;
    return rv_names[i].name;
}

struct cv_hsm_rv_text cv_hsm_rv_text(unsigned long rv)
{
    struct cv_hsm_rv_text t;
    const char *name = cv_hsm_rv_name(rv);
    if (name) snprintf(t.s, sizeof(t.s), "%s", name);
    else if (rv & RV_VENDOR_DEFINED) snprintf(t.s, sizeof(t.s), "CKR_VENDOR_DEFINED+0x%lx", rv & ~RV_VENDOR_DEFINED);
    else snprintf(t.s, sizeof(t.s), "CKR_0x%lx", rv);
    return t;
}

int cv_hsm_rv_recoverable(unsigned long rv)
{
    switch (rv) {
    case 0x0B3: /* CKR_SESSION_HANDLE_INVALID: sessions closed under us */
    case 0x0B0: /* CKR_SESSION_CLOSED */
    case 0x030: /* CKR_DEVICE_ERROR */
    case 0x032: /* CKR_DEVICE_REMOVED */
    case 0x0E0: /* CKR_TOKEN_NOT_PRESENT */
    case 0x006: /* CKR_FUNCTION_FAILED: CloudHSM's answer when throttling */
    case 0x005: /* CKR_GENERAL_ERROR */
    case 0x082: /* CKR_OBJECT_HANDLE_INVALID: cached handle stale after a reconnect */
    case 0x060: /* CKR_KEY_HANDLE_INVALID */
    case 0x0F0: /* CKR_UNWRAPPING_KEY_HANDLE_INVALID: master handle stale */
    case 0x113: /* CKR_WRAPPING_KEY_HANDLE_INVALID */
    case 0x101: /* CKR_USER_NOT_LOGGED_IN: login ended with the last session */
    case 0x190: /* CKR_CRYPTOKI_NOT_INITIALIZED: someone called C_Finalize */
    case 0x090: /* CKR_OPERATION_ACTIVE: a session left mid-operation; never expected */
        return 1;
    default:
        return 0;
    }
}

enum cv_hsm_fault cv_hsm_rv_fault(unsigned long rv)
{
    switch (rv) {
    case 0x030: /* CKR_DEVICE_ERROR */
    case 0x006: /* CKR_FUNCTION_FAILED: CloudHSM's answer when throttling */
    case 0x005: /* CKR_GENERAL_ERROR */
    case 0x031: /* CKR_DEVICE_MEMORY */
        return CV_HSM_FAULT_TRANSIENT;
    case 0x0B3: /* CKR_SESSION_HANDLE_INVALID */
    case 0x0B0: /* CKR_SESSION_CLOSED */
    case 0x082: /* CKR_OBJECT_HANDLE_INVALID */
    case 0x060: /* CKR_KEY_HANDLE_INVALID */
    case 0x0F0: /* CKR_UNWRAPPING_KEY_HANDLE_INVALID */
    case 0x113: /* CKR_WRAPPING_KEY_HANDLE_INVALID */
    case 0x101: /* CKR_USER_NOT_LOGGED_IN */
    case 0x190: /* CKR_CRYPTOKI_NOT_INITIALIZED */
    case 0x090: /* CKR_OPERATION_ACTIVE */
        return CV_HSM_FAULT_SESSION;
    case 0x032: /* CKR_DEVICE_REMOVED */
    case 0x0E0: /* CKR_TOKEN_NOT_PRESENT */
    case 0x0E1: /* CKR_TOKEN_NOT_RECOGNIZED */
    case 0x003: /* CKR_SLOT_ID_INVALID */
        return CV_HSM_FAULT_ABSENT;
    case 0x0A0: /* CKR_PIN_INCORRECT */
    case 0x0A1: /* CKR_PIN_INVALID */
    case 0x0A2: /* CKR_PIN_LEN_RANGE */
    case 0x0A3: /* CKR_PIN_EXPIRED */
    case 0x0A4: /* CKR_PIN_LOCKED */
        return CV_HSM_FAULT_CREDENTIALS;
    default:
        return CV_HSM_FAULT_NONE;
    }
}

const char *cv_hsm_fault_name(enum cv_hsm_fault f)
{
    switch (f) {
    case CV_HSM_FAULT_NONE: return "none";
    case CV_HSM_FAULT_TRANSIENT: return "transient";
    case CV_HSM_FAULT_SESSION: return "session_lost";
    case CV_HSM_FAULT_ABSENT: return "token_absent";
    case CV_HSM_FAULT_FOREIGN: return "token_foreign";
    case CV_HSM_FAULT_CREDENTIALS: return "credentials_refused";
    }
    return "none";
}

int cv_hsm_rv_bad_data(unsigned long rv)
{
    switch (rv) {
    case 0x020: /* CKR_DATA_INVALID */
    case 0x021: /* CKR_DATA_LEN_RANGE */
    case 0x035: /* CKR_AEAD_DECRYPT_FAILED */
    case 0x040: /* CKR_ENCRYPTED_DATA_INVALID */
    case 0x041: /* CKR_ENCRYPTED_DATA_LEN_RANGE */
    case 0x0C0: /* CKR_SIGNATURE_INVALID */
    case 0x0C1: /* CKR_SIGNATURE_LEN_RANGE */
    case 0x110: /* CKR_WRAPPED_KEY_INVALID */
    case 0x112: /* CKR_WRAPPED_KEY_LEN_RANGE */
        return 1;
    default:
        return 0;
    }
}

struct mech_name {
    unsigned long mechanism;
    const char *name;
};

static const struct mech_name mech_names[] = {
    {0x0350, "CKM_GENERIC_SECRET_KEY_GEN"},
    {0x0251, "CKM_SHA256_HMAC"},
    {0x1040, "CKM_EC_KEY_PAIR_GEN"},
    {0x1041, "CKM_ECDSA"},
    {0x1080, "CKM_AES_KEY_GEN"},
    {0x1087, "CKM_AES_GCM"},
    {0x2109, "CKM_AES_KEY_WRAP"},
    {0x210A, "CKM_AES_KEY_WRAP_PAD"},
    {0x210B, "CKM_AES_KEY_WRAP_KWP"},
    {RV_VENDOR_DEFINED | 0x1087, "CKM_CLOUDHSM_AES_GCM"},
    {RV_VENDOR_DEFINED | 0x2109, "CKM_CLOUDHSM_AES_KEY_WRAP_NO_PAD"},
    {RV_VENDOR_DEFINED | 0x210A, "CKM_CLOUDHSM_AES_KEY_WRAP_PKCS5_PAD"},
    {RV_VENDOR_DEFINED | 0x216F, "CKM_CLOUDHSM_AES_KEY_WRAP_ZERO_PAD"},
};

const char *cv_hsm_mechanism_name(unsigned long mechanism)
{
    for (size_t i = 0; i < sizeof(mech_names) / sizeof(mech_names[0]); i++)
        if (mech_names[i].mechanism == mechanism) return mech_names[i].name;
    return NULL;
}
