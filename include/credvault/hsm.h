/* The HSM boundary. Shaped like a remote call: opaque handles, byte buffers
 * and key references that carry the wrapped key, never a PKCS#11 type, so it
 * could move into a separate process. Key material crosses it only wrapped,
 * but for memory residency's cv_hsm_tenant_key_read. */
#ifndef CREDVAULT_HSM_H
#define CREDVAULT_HSM_H

#include <stddef.h>
#include <stdint.h>

#include "credvault/ids.h"
#include "credvault/metrics.h"
#include "credvault/result.h"

#define CV_HSM_MASTER_LABEL_PREFIX "credvault-master-"
#define CV_HSM_BINDING_LABEL "credvault-binding-1"
#define CV_HSM_AUDIT_KEY_LABEL "credvault-audit-1" /* hsm_signing.h */
#define CV_AES256_KEY_BYTES 32
#define CV_GCM_IV_BYTES 12
#define CV_GCM_TAG_BYTES 16
#define CV_WRAPPED_KEY_MAX_BYTES 64 /* RFC 5649 of a 32-byte key is 40 bytes */
#define CV_KEY_BINDING_BYTES 32     /* HMAC-SHA256 */
#define CV_HSM_GCM_MAX_BYTES (15 * 1024) /* CloudHSM single-part GCM limit is ~16 KB */
#define CV_HSM_MASTER_VERSIONS_MAX 64

struct cv_hsm;

struct cv_hsm_options {
    const char *module_path; /* dlopen path of the PKCS#11 module */
    const char *token;       /* "pkcs11:token=…;serial=…" (RFC 7512) or a bare label */
    const char *pin;         /* user PIN; CloudHSM "user:password" passes unchanged */
    unsigned sessions;       /* pool size (>= 1) */
    unsigned retries;        /* attempts after a session/device error */
    unsigned backoff_ms;     /* first backoff, doubled per attempt */
    unsigned key_cache_size; /* unwrapped tenant keys kept (LRU) */
    struct cv_metrics *metrics; /* the service's registry, or NULL */
    int inspect;             /* open a token that lacks mechanisms, to report them (hsm status) */
};

/* A tenant key as stored in the database: wrapped by master `master_version`
 * and bound to (tenant, version, master_version) by an HSM-held HMAC. */
struct cv_key_ref {
    char tenant_id[CV_TENANT_ID_MAX_BYTES + 1];
    uint32_t version;
    uint32_t master_version;
    uint8_t wrapped[CV_WRAPPED_KEY_MAX_BYTES];
    size_t wrapped_len;
    uint8_t binding[CV_KEY_BINDING_BYTES];
};

/* Loads the module, finds the token, logs in, checks mechanisms, picks the
 * quirk profile, opens the session pool and finds existing key handles. */
CV_RESULT cv_hsm_open(const struct cv_hsm_options *opt, struct cv_hsm **out);
/* Destroys every cached unwrapped key in the token, closes sessions, finalizes. */
void cv_hsm_close(struct cv_hsm *hsm);

struct cv_hsm_status {
    char module_path[256];
    char library_description[64];
    char token_label[33];
    char token_serial[17];
    char token_model[17];
    char manufacturer[33];
    char profile[32];             /* "softhsm", "cloudhsm", "luna", "generic" */
    char wrap_mechanism[48];      /* e.g. "CKM_AES_KEY_WRAP_PAD" */
    char gcm_iv_source[16];       /* "caller", "hsm-buffer", "hsm-appended" */
    int logged_in;
    int binding_key_present;
    uint32_t master_versions[CV_HSM_MASTER_VERSIONS_MAX];
    size_t master_versions_count;
    /* mechanisms credvault knows, whether the token has them, and, for one it
     * needs and lacks (a gap), what the gap disables */
    struct { char name[48]; int present; int needed; char disables[112]; } mechanisms[12];
    size_t mechanisms_count;
    size_t gaps; /* needed and missing: only an `inspect` open gets this far with gaps */
    unsigned cached_keys;
    unsigned memory_keys;   /* tenant keys held in process memory (memory residency) */
    int residency_hsm_only; /* the newest master key carries the hsm-only mark */
};
CV_RESULT cv_hsm_status_get(struct cv_hsm *hsm, struct cv_hsm_status *st);

/* Master key: AES-256 token object, private, sensitive, never extractable,
 * wrap/unwrap only, labelled credvault-master-<version>. CV_ERR_CONFLICT when
 * the label exists. */
CV_RESULT cv_hsm_master_create(struct cv_hsm *hsm, uint32_t version);
/* The same, marked hsm-only: its CKA_UNWRAP_TEMPLATE makes the token refuse
 * to unwrap a readable (non-sensitive) copy of any key it wraps, so memory
 * residency cannot run on this token. cv_hsm_master_create carries the mark
 * of the newest older master to the new one. */
CV_RESULT cv_hsm_master_create_hsm_only(struct cv_hsm *hsm, uint32_t version);
/* Whether the newest master key carries the hsm-only mark. */
CV_RESULT cv_hsm_residency_hsm_only(struct cv_hsm *hsm, int *marked);
CV_RESULT cv_hsm_master_exists(struct cv_hsm *hsm, uint32_t version, int *exists);
/* Destroys credvault-master-<version> in the token (callers check it is unused). */
CV_RESULT cv_hsm_master_destroy(struct cv_hsm *hsm, uint32_t version);
/* The HMAC key that binds wrapped keys to their tenant and version. Created
 * once (CV_ERR_CONFLICT when present); generic secret, sensitive, never
 * extractable, sign/verify only. */
CV_RESULT cv_hsm_binding_key_create(struct cv_hsm *hsm);

/* Generates a tenant key in the token, wraps it under master `ref->master_version`,
 * destroys the session copy and fills ref->wrapped, wrapped_len and binding.
 * ref->tenant_id, version and master_version are inputs. */
CV_RESULT cv_hsm_tenant_key_generate(struct cv_hsm *hsm, struct cv_key_ref *ref);
/* Checks the binding, unwraps under the old master and wraps under
 * `new_master_version`; `out` gets the new wrapped bytes and binding. */
CV_RESULT cv_hsm_tenant_key_rewrap(struct cv_hsm *hsm, const struct cv_key_ref *in,
                                   uint32_t new_master_version, struct cv_key_ref *out);
/* Checks the binding and that the key unwraps (without caching it). */
CV_RESULT cv_hsm_tenant_key_verify(struct cv_hsm *hsm, const struct cv_key_ref *ref);
/* Memory residency: the tenant key's bytes, copied into `key` (the caller
 * wipes it). On a cache miss the binding is checked, the key unwrapped as an
 * extractable, non-sensitive session object, its value read into secret
 * memory and the object destroyed at once. The copies are kept in a bounded
 * cache in locked, dump-excluded memory, wiped on eviction and on the drops
 * below. CV_ERR_INTERNAL naming the mark when the master key is hsm-only. */
CV_RESULT cv_hsm_tenant_key_read(struct cv_hsm *hsm, const struct cv_key_ref *ref,
                                 uint8_t key[CV_AES256_KEY_BYTES]);
/* Drops (destroys in the token, wipes in memory) any cached copy of this tenant's keys. */
void cv_hsm_cache_drop_tenant(struct cv_hsm *hsm, const char *tenant_id);
void cv_hsm_cache_drop_all(struct cv_hsm *hsm);

/* AES-256-GCM in the token with the tenant key `ref` (unwrapped on a cache
 * miss after the binding is checked). AAD must be non-empty. Encrypt writes
 * `iv`: 12 random bytes drawn from the token's RNG by this layer, or made by
 * the token itself, per the quirk profile.
 * ct has pt_len bytes. A wrong key, AAD or tag gives CV_ERR_CRYPTO with the
 * same message every time. */
CV_RESULT cv_hsm_gcm_encrypt(struct cv_hsm *hsm, const struct cv_key_ref *ref,
                             const uint8_t *aad, size_t aad_len, const uint8_t *pt, size_t pt_len,
                             uint8_t iv[CV_GCM_IV_BYTES], uint8_t *ct, uint8_t tag[CV_GCM_TAG_BYTES]);
CV_RESULT cv_hsm_gcm_decrypt(struct cv_hsm *hsm, const struct cv_key_ref *ref,
                             const uint8_t *aad, size_t aad_len, const uint8_t iv[CV_GCM_IV_BYTES],
                             const uint8_t *ct, size_t ct_len, const uint8_t tag[CV_GCM_TAG_BYTES],
                             uint8_t *pt);

/* A quick liveness probe for /readyz: a session answers and login holds. */
CV_RESULT cv_hsm_ping(struct cv_hsm *hsm);

/* Random bytes from the token (C_GenerateRandom). */
CV_RESULT cv_hsm_random(struct cv_hsm *hsm, uint8_t *out, size_t n);

#endif
