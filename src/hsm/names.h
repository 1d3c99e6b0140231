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

/* The fault classes of docs/hsm.md, each with one policy (recover.c). */
enum cv_hsm_fault {
    CV_HSM_FAULT_NONE = 0,
    CV_HSM_FAULT_TRANSIENT,   /* device busy or hiccup: retry with backoff inside a short budget */
    CV_HSM_FAULT_SESSION,     /* sessions, login or handles lost: re-open and log in, once */
    CV_HSM_FAULT_ABSENT,      /* no token: fail at once, re-check in the background */
    CV_HSM_FAULT_FOREIGN,     /* a token that is not the one first opened: the same */
    CV_HSM_FAULT_CREDENTIALS, /* the PIN is refused: fail at once, log in again in the background */
};
/* The class of a return value; CV_HSM_FAULT_NONE for one that is no outage
 * (bad input, a bug). */
enum cv_hsm_fault cv_hsm_rv_fault(unsigned long rv);
const char *cv_hsm_fault_name(enum cv_hsm_fault f);

/* The i-th entry of the name table (ascending by value); NULL past the end. */
const char *cv_hsm_rv_name_at(unsigned long i, unsigned long *rv);

/* "CKM_AES_GCM"; NULL when not one credvault knows. */
const char *cv_hsm_mechanism_name(unsigned long mechanism);

#endif
