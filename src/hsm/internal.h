/* Private to src/hsm: the handle's state and the helpers its files share,
 * in PKCS#11 types. Nothing outside src/hsm includes it; the plain headers
 * beside it (names, quirks, selector, cache) keep PKCS#11 out so that unit
 * tests need no token and no pkcs11.h. */
#ifndef CV_HSM_INTERNAL_H
#define CV_HSM_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <p11-kit/pkcs11.h>

#include "cache.h"
#include "credvault/hsm.h"
#include "names.h"
#include "quirks.h"
#include "selector.h"

/* Defined here, not taken from the installed pkcs11.h, so the values are the
 * standard's whichever copy is installed. CloudHSM's vendor names come from
 * aws-samples/aws-cloudhsm-pkcs11-examples (cloudhsm_pkcs11_vendor_defs.h). */
#define CV_CKM_AES_KEY_WRAP 0x2109UL
#define CV_CKM_AES_KEY_WRAP_PAD 0x210AUL
#define CV_CKM_AES_KEY_WRAP_KWP 0x210BUL
#define CV_CKM_CLOUDHSM_AES_KEY_WRAP_NO_PAD (CKM_VENDOR_DEFINED | 0x2109UL)
#define CV_CKM_CLOUDHSM_AES_KEY_WRAP_PKCS5_PAD (CKM_VENDOR_DEFINED | 0x210AUL)
#define CV_CKM_CLOUDHSM_AES_KEY_WRAP_ZERO_PAD (CKM_VENDOR_DEFINED | 0x216FUL)
#define CV_CKM_CLOUDHSM_AES_GCM (CKM_VENDOR_DEFINED | 0x1087UL)

/* The one answer to every failed decrypt, unwrap or binding check. */
#define CV_HSM_DECRYPT_FAILED "decryption failed"
#define CV_HSM_AAD_MAX_BYTES 1024
#define CV_HSM_SESSIONS_MAX 1024 /* CloudHSM allows 1,024 sessions per application */
#define CV_HSM_LABEL_MAX_BYTES 64
#define CV_HSM_STATUS_MECHANISMS 9

struct cv_hsm_signer; /* libp11's view of the audit signing key (signing_p11.c) */

struct cv_hsm_master {
    uint32_t version;
    CK_OBJECT_HANDLE handle;
    int duplicate; /* two objects carry the label: refuse to guess */
};

struct cv_hsm {
    /* Settings, copied at open. The PIN lives in secret memory because
     * recovery must log in again; it is wiped on close. */
    char *module_path;
    char *pin;
    size_t pin_len;
    struct cv_hsm_selector *selector;
    unsigned session_count, retries, backoff_ms, key_cache_size;
    int inspect; /* opened to report: missing mechanisms are gaps, not errors */
    struct cv_metrics *metrics; /* the service's, or NULL */

    void *dl;
    CK_FUNCTION_LIST_PTR f;
    int initialized; /* our C_Initialize succeeded: we own C_Finalize */

    /* What open (or the last recovery) found. */
    CK_SLOT_ID slot;
    CK_INFO info;
    CK_TOKEN_INFO token;
    struct cv_hsm_profile profile;
    struct {
        CK_MECHANISM_TYPE mechanism;
        int present, needed;
    } mechanisms[CV_HSM_STATUS_MECHANISMS];
    size_t mechanism_count;

    /* Operations hold it shared for one attempt; recovery and close hold it
     * exclusive, so they never run under an operation in flight. */
    pthread_rwlock_t state;
    uint64_t generation; /* bumped by every recovery */
    /* The breaker: 0 while a fault of a class that requests must not wait
     * on stands (recover.c); read without the lock so that a request then
     * costs microseconds. */
    _Atomic int healthy;
    _Atomic int fault;   /* enum cv_hsm_fault, while !healthy */
    _Atomic CK_RV broken_rv; /* why, while !healthy */
    int foreign;         /* the last connect found a token that is not the first one */

    /* What the token said at the first open, re-checked at every re-open
     * (identity.c): an HMAC of a fixed text under the binding key, or, while
     * there is none, the token's serial number. */
    struct {
        int known, has_mac;
        uint8_t mac[32];
        char serial[17];
    } identity;

    /* The background re-check while the breaker is open (recover.c). */
    pthread_mutex_t recheck_mu;
    pthread_cond_t recheck_cv;
    pthread_t recheck_th;
    int recheck_started, recheck_stop;

    /* Pool of read-write sessions, each leased to one thread at a time. */
    pthread_mutex_t pool_mu;
    pthread_cond_t pool_cv;
    CK_SESSION_HANDLE *sessions;
    unsigned *free_list;
    unsigned free_count;

    /* The owner session creates the unwrapped tenant keys and is never
     * leased: session objects die with the session that made them, and every
     * session of the application sees them. */
    pthread_mutex_t owner_mu;
    CK_SESSION_HANDLE owner;

    /* Key handles, found by label once and kept. */
    pthread_mutex_t keys_mu;
    CK_OBJECT_HANDLE binding;
    int binding_duplicate;
    struct cv_hsm_master masters[CV_HSM_MASTER_VERSIONS_MAX];
    size_t master_count;

    struct cv_hsm_cache *cache;
    struct cv_hsm_memkeys *memkeys; /* memory residency's key bytes; empty in hsm residency */
    struct cv_hsm_signer *signer; /* made on first use; freed by close after the sessions */
};

/* One attempt's session. */
struct cv_hsm_lease {
    CK_SESSION_HANDLE session;
    unsigned index;
    uint64_t generation;
    int retry; /* the failure may heal by recovery */
    int broken; /* refused by the open breaker, nothing was called */
    CK_RV rv;  /* the return value that failed the attempt */
};

typedef cv_result (*cv_hsm_op)(struct cv_hsm *hsm, struct cv_hsm_lease *lease, void *arg);

/* recover.c: runs `op` on a leased session; on a recoverable failure
 * recovers and retries with backoff, then gives CV_ERR_UNAVAILABLE
 * "HSM unavailable (CKR_…)". */
CV_RESULT cv_hsm_run(struct cv_hsm *hsm, cv_hsm_op op, void *arg);
/* Brings the module from loaded to ready: initialise, select the token, check
 * mechanisms, open sessions, log in, find keys. Used by open and recovery. */
CV_RESULT cv_hsm_connect(struct cv_hsm *hsm, CK_RV *rv);
/* identity.c: remembers the token at the first connect, refuses another later
 * (CV_ERR_UNAVAILABLE, *rv CKR_TOKEN_NOT_RECOGNIZED, hsm->foreign set). */
CV_RESULT cv_hsm_identity_check(struct cv_hsm *hsm, CK_RV *rv);
/* Stops the background re-check, if it runs; before close takes the lock. */
void cv_hsm_recheck_stop(struct cv_hsm *hsm);
/* Forgets sessions and cached handles and finalizes the module. */
void cv_hsm_disconnect(struct cv_hsm *hsm);
/* cv_hsm_connect, retrying transient device answers at open (bounded). */
CV_RESULT cv_hsm_connect_retrying(struct cv_hsm *hsm, CK_RV *rv);

/* module.c */
CV_RESULT cv_hsm_module_load(struct cv_hsm *hsm);
CV_RESULT cv_hsm_module_initialize(struct cv_hsm *hsm, CK_RV *rv);
void cv_hsm_module_finalize(struct cv_hsm *hsm);
void cv_hsm_module_unload(struct cv_hsm *hsm);

/* token.c */
CV_RESULT cv_hsm_token_select(struct cv_hsm *hsm, CK_RV *rv);
CV_RESULT cv_hsm_token_capabilities(struct cv_hsm *hsm, CK_RV *rv);

/* session.c */
CV_RESULT cv_hsm_sessions_open(struct cv_hsm *hsm, CK_RV *rv);
void cv_hsm_sessions_close(struct cv_hsm *hsm);
void cv_hsm_sessions_forget(struct cv_hsm *hsm);
CV_RESULT cv_hsm_lease_acquire(struct cv_hsm *hsm, struct cv_hsm_lease *lease);
void cv_hsm_lease_release(struct cv_hsm *hsm, struct cv_hsm_lease *lease);
int cv_hsm_session_alive(struct cv_hsm *hsm, CK_SESSION_HANDLE session);
/* The CK_RV adapter: records rv on the lease and fails with "HSM <call>
 * failed (CKR_…)"; a recoverable rv is CV_ERR_UNAVAILABLE and marks the lease
 * for retry, any other gets `err`. */
CV_RESULT cv_hsm_ck_fail(struct cv_hsm_lease *lease, CK_RV rv, const char *call, cv_err err);
/* For calls whose failure may mean bad input (decrypt, unwrap): CV_ERR_CRYPTO
 * with the one constant message, or cv_hsm_ck_fail for anything else. */
CV_RESULT cv_hsm_data_fail(struct cv_hsm *hsm, struct cv_hsm_lease *lease, CK_RV rv, const char *call);
void cv_hsm_destroy_quietly(struct cv_hsm *hsm, CK_SESSION_HANDLE session, CK_OBJECT_HANDLE object);

#define CV_CK_GUARD(lease, call, expr, err)                                              \
    do {                                                                                 \
        CK_RV cv__rv = (expr);                                                           \
        if (cv__rv != CKR_OK) return cv_hsm_ck_fail((lease), cv__rv, (call), (err));     \
    } while (0)

#define CV_CK_GUARD_OUT(res, lease, call, expr, err)                                     \
    do {                                                                                 \
        CK_RV cv__rv = (expr);                                                           \
        if (cv__rv != CKR_OK) {                                                          \
            (res) = cv_hsm_ck_fail((lease), cv__rv, (call), (err));                      \
            goto out;                                                                    \
        }                                                                                \
    } while (0)

/* keys.c */
void cv_hsm_master_label(uint32_t version, char out[CV_HSM_LABEL_MAX_BYTES]);
CV_RESULT cv_hsm_find_label(struct cv_hsm *hsm, CK_SESSION_HANDLE session, const char *label, CK_KEY_TYPE type,
                            CK_OBJECT_HANDLE found[2], CK_ULONG *count, CK_RV *rv);
CV_RESULT cv_hsm_master_lookup(struct cv_hsm *hsm, struct cv_hsm_lease *lease, uint32_t version,
                               CK_OBJECT_HANDLE *out, int *found);
void cv_hsm_master_remember(struct cv_hsm *hsm, uint32_t version, CK_OBJECT_HANDLE h);
void cv_hsm_master_forget(struct cv_hsm *hsm, uint32_t version);
CV_RESULT cv_hsm_find(struct cv_hsm *hsm, CK_SESSION_HANDLE session, CK_ATTRIBUTE *tmpl, CK_ULONG n,
                      CK_OBJECT_HANDLE *found, CK_ULONG max, CK_ULONG *count, CK_RV *rv);
CV_RESULT cv_hsm_keys_scan(struct cv_hsm *hsm, CK_SESSION_HANDLE session, CK_RV *rv);
CV_RESULT cv_hsm_master_handle(struct cv_hsm *hsm, struct cv_hsm_lease *lease, uint32_t version,
                               CK_OBJECT_HANDLE *out);
CV_RESULT cv_hsm_binding_handle(struct cv_hsm *hsm, CK_OBJECT_HANDLE *out);

/* binding.c */
CV_RESULT cv_hsm_binding_compute(struct cv_hsm *hsm, struct cv_hsm_lease *lease, const struct cv_key_ref *ref,
                                 uint8_t out[CV_KEY_BINDING_BYTES]);
CV_RESULT cv_hsm_binding_check(struct cv_hsm *hsm, struct cv_hsm_lease *lease, const struct cv_key_ref *ref);

/* tenant.c */
CV_RESULT cv_hsm_ref_check(const struct cv_key_ref *ref);
/* Pins the unwrapped key for `ref` (cache hit, or binding check + unwrap into
 * the owner session); release with cv_hsm_key_unpin on the same lease. */
CV_RESULT cv_hsm_key_pin(struct cv_hsm *hsm, struct cv_hsm_lease *lease, const struct cv_key_ref *ref,
                         struct cv_hsm_cache_entry **out);
void cv_hsm_key_unpin(struct cv_hsm *hsm, struct cv_hsm_lease *lease, struct cv_hsm_cache_entry *e);

/* residency.c: whether a master key carries the hsm-only mark (its unwrap
 * template demands a sensitive key); the newest master below `below` (0: any). */
CV_RESULT cv_hsm_master_marked(struct cv_hsm *hsm, struct cv_hsm_lease *lease, CK_OBJECT_HANDLE master, int *marked);
CV_RESULT cv_hsm_master_marked_before(struct cv_hsm *hsm, struct cv_hsm_lease *lease, uint32_t below, int *marked);

/* memkeys.c: the cache of tenant keys read out for memory residency */
struct cv_hsm_memkeys;
CV_RESULT cv_hsm_memkeys_new(unsigned capacity, struct cv_hsm_memkeys **out);
void cv_hsm_memkeys_free(struct cv_hsm_memkeys *m);
void cv_hsm_memkeys_drop(struct cv_hsm_memkeys *m, const char *tenant_id); /* NULL: all */
unsigned cv_hsm_memkeys_count(struct cv_hsm_memkeys *m);

/* signing.c: the audit key's private half exists (and cannot leave the token) */
CV_RESULT cv_hsm_audit_key_check(struct cv_hsm *hsm, struct cv_hsm_lease *lease, int *exists);
/* signing_p11.c: releases libp11's state; call after the raw sessions are closed */
void cv_hsm_signer_free(struct cv_hsm *hsm);

/* gcm.c: one GCM call with a key handle; iv_given only for test vectors. */
CV_RESULT cv_hsm_gcm_seal(struct cv_hsm *hsm, struct cv_hsm_lease *lease, CK_OBJECT_HANDLE key, const uint8_t *aad,
                          size_t aad_len, const uint8_t *pt, size_t pt_len, int iv_given,
                          uint8_t iv[CV_GCM_IV_BYTES], uint8_t *ct, uint8_t tag[CV_GCM_TAG_BYTES]);
CV_RESULT cv_hsm_gcm_open(struct cv_hsm *hsm, struct cv_hsm_lease *lease, CK_OBJECT_HANDLE key, const uint8_t *aad,
                          size_t aad_len, const uint8_t iv[CV_GCM_IV_BYTES], const uint8_t *ct, size_t ct_len,
                          const uint8_t tag[CV_GCM_TAG_BYTES], uint8_t *pt);

#endif
