/* Names for PKCS#11 return values and mechanisms, and how credvault reads a
 * return value. Plain C types only (CK_RV and CK_MECHANISM_TYPE are unsigned
 * long), so unit tests use it without the PKCS#11 header. */
#ifndef CV_HSM_NAMES_H
#define CV_HSM_NAMES_H

#define CV_HSM_RV_TEXT_BYTES 48

struct cv_hsm_rv_text {
    char s[CV_HSM_RV_TEXT_BYTES];
};

/* "CKR_DEVICE_ERROR"; NULL for a value no standard names. */
const char *cv_hsm_rv_name(unsigned long rv);
/* Always printable: the name, "CKR_VENDOR_DEFINED+0x…" or "CKR_0x…". Returned
 * by value so it can sit in a printf argument list of any thread. */
struct cv_hsm_rv_text cv_hsm_rv_text(unsigned long rv);

/* A value after which the module, the login, a session or a cached handle
 * may be gone: recover (re-initialise, log in, re-open, re-find) and retry. */
int cv_hsm_rv_recoverable(unsigned long rv);
/* A value that says the input was wrong (tag, wrapped bytes, signature):
 * the caller gets CV_ERR_CRYPTO and nothing is retried. */
int cv_hsm_rv_bad_data(unsigned long rv);

/* The i-th entry of the name table (ascending by value); NULL past the end. */
const char *cv_hsm_rv_name_at(unsigned long i, unsigned long *rv);

/* "CKM_AES_GCM"; NULL when not one credvault knows. */
const char *cv_hsm_mechanism_name(unsigned long mechanism);

#endif
