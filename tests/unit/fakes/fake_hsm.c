/* The HSM in memory for the domain's unit tests. A tenant key is random
 * bytes standing in for the wrapped key, bound like the real one to tenant,
 * version and master version. "GCM" is a SHA-256 keystream with a SHA-256
 * tag over key, IV, AAD and ciphertext: no secrecy worth the name, but a
 * wrong key, AAD or tag fails exactly where the token's would. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "credvault/crypto.h"
#include "credvault/hsm.h"
#include "credvault/hsm_mac.h"
#include "credvault/hsm_signing.h"
#include "fakes_internal.h"

#define FAKE_KEY_BYTES 40 /* what RFC 5649 makes of a 32-byte key */

struct cv_hsm {
    uint8_t masters[CV_HSM_MASTER_VERSIONS_MAX + 1]; /* 1 when master <version> exists */
};

struct cv_hsm *cv_fake_hsm_new(void)
{
    struct cv_hsm *hsm = calloc(1, sizeof(*hsm));
    if (!hsm) abort();
    hsm->masters[1] = 1;
    return hsm;
}

void cv_hsm_close(struct cv_hsm *hsm)
{
    cv_fake_count(__func__);
    free(hsm);
}

static void binding_of(const struct cv_key_ref *ref, uint8_t out[CV_KEY_BINDING_BYTES])
{
    uint8_t buf[CV_TENANT_ID_MAX_BYTES + 16 + CV_WRAPPED_KEY_MAX_BYTES];
    size_t n = strlen(ref->tenant_id) + 1;
    memcpy(buf, ref->tenant_id, n);
    memcpy(buf + n, &ref->version, 4);
    memcpy(buf + n + 4, &ref->master_version, 4);
    memcpy(buf + n + 8, ref->wrapped, ref->wrapped_len);
    cv_crypto_sha256(buf, n + 8 + ref->wrapped_len, out);
}

static cv_result check_key(struct cv_hsm *hsm, const struct cv_key_ref *ref)
{
    uint8_t b[CV_KEY_BINDING_BYTES];
    CV_ENSURE(ref->master_version <= CV_HSM_MASTER_VERSIONS_MAX && hsm->masters[ref->master_version], CV_ERR_CRYPTO,
              "decryption failed");
    CV_ENSURE(ref->wrapped_len == FAKE_KEY_BYTES, CV_ERR_CRYPTO, "decryption failed");
    binding_of(ref, b);
    CV_ENSURE(memcmp(b, ref->binding, sizeof(b)) == 0, CV_ERR_CRYPTO, "decryption failed");
    return CV_OK;
}

cv_result cv_hsm_tenant_key_generate(struct cv_hsm *hsm, struct cv_key_ref *ref)
{
    CV_GUARD(cv_fake_enter(__func__));
    CV_ENSURE(ref->master_version <= CV_HSM_MASTER_VERSIONS_MAX && hsm->masters[ref->master_version], CV_ERR_NOT_FOUND,
              "no master key %u", ref->master_version);
    CV_GUARD(cv_crypto_random(ref->wrapped, FAKE_KEY_BYTES));
    ref->wrapped_len = FAKE_KEY_BYTES;
    binding_of(ref, ref->binding);
    return CV_OK;
}

/* out = in XOR SHA-256(key ‖ iv ‖ block counter) */
static void keystream(const struct cv_key_ref *ref, const uint8_t iv[CV_GCM_IV_BYTES], const uint8_t *in, uint8_t *out,
                      size_t len)
{
    uint8_t seed[FAKE_KEY_BYTES + CV_GCM_IV_BYTES + 4], block[CV_SHA256_BYTES];
    memcpy(seed, ref->wrapped, FAKE_KEY_BYTES);
    memcpy(seed + FAKE_KEY_BYTES, iv, CV_GCM_IV_BYTES);
    for (size_t off = 0; off < len; off += sizeof(block)) {
        uint32_t ctr = (uint32_t)(off / sizeof(block));
        memcpy(seed + FAKE_KEY_BYTES + CV_GCM_IV_BYTES, &ctr, 4);
        cv_crypto_sha256(seed, sizeof(seed), block);
        for (size_t i = 0; i < sizeof(block) && off + i < len; i++)
            out[off + i] = in[off + i] ^ block[i];
    }
}

static cv_result tag_of(const struct cv_key_ref *ref, const uint8_t iv[CV_GCM_IV_BYTES], const uint8_t *aad,
                        size_t aad_len, const uint8_t *ct, size_t ct_len, uint8_t tag[CV_GCM_TAG_BYTES])
{
    size_t n = FAKE_KEY_BYTES + CV_GCM_IV_BYTES + 8 + aad_len + ct_len;
    uint8_t *buf = malloc(n), full[CV_SHA256_BYTES];
    CV_ENSURE(buf != NULL, CV_ERR_MEMORY, "out of memory");
    uint64_t al = aad_len;
    memcpy(buf, ref->wrapped, FAKE_KEY_BYTES);
    memcpy(buf + FAKE_KEY_BYTES, iv, CV_GCM_IV_BYTES);
    memcpy(buf + FAKE_KEY_BYTES + CV_GCM_IV_BYTES, &al, 8);
    memcpy(buf + FAKE_KEY_BYTES + CV_GCM_IV_BYTES + 8, aad, aad_len);
    if (ct_len) memcpy(buf + FAKE_KEY_BYTES + CV_GCM_IV_BYTES + 8 + aad_len, ct, ct_len);
    cv_crypto_sha256(buf, n, full);
    free(buf);
    memcpy(tag, full, CV_GCM_TAG_BYTES);
    return CV_OK;
}

cv_result cv_hsm_gcm_encrypt(struct cv_hsm *hsm, const struct cv_key_ref *ref, const uint8_t *aad, size_t aad_len,
                             const uint8_t *pt, size_t pt_len, uint8_t iv[CV_GCM_IV_BYTES], uint8_t *ct,
                             uint8_t tag[CV_GCM_TAG_BYTES])
{
    CV_GUARD(cv_fake_enter(__func__));
    CV_ENSURE(aad && aad_len > 0, CV_ERR_INTERNAL, "AAD must be non-empty");
    CV_ENSURE(pt_len <= CV_HSM_GCM_MAX_BYTES, CV_ERR_TOO_LARGE, "too large for the token");
    CV_GUARD(check_key(hsm, ref));
    CV_GUARD(cv_crypto_random(iv, CV_GCM_IV_BYTES));
    keystream(ref, iv, pt, ct, pt_len);
    return tag_of(ref, iv, aad, aad_len, ct, pt_len, tag);
}

cv_result cv_hsm_gcm_decrypt(struct cv_hsm *hsm, const struct cv_key_ref *ref, const uint8_t *aad, size_t aad_len,
                             const uint8_t iv[CV_GCM_IV_BYTES], const uint8_t *ct, size_t ct_len,
                             const uint8_t tag[CV_GCM_TAG_BYTES], uint8_t *pt)
{
    CV_GUARD(cv_fake_enter(__func__));
    CV_ENSURE(aad && aad_len > 0, CV_ERR_INTERNAL, "AAD must be non-empty");
    CV_GUARD(check_key(hsm, ref));
    uint8_t want[CV_GCM_TAG_BYTES];
    CV_GUARD(tag_of(ref, iv, aad, aad_len, ct, ct_len, want));
    CV_ENSURE(memcmp(want, tag, sizeof(want)) == 0, CV_ERR_CRYPTO, "decryption failed");
    keystream(ref, iv, ct, pt, ct_len);
    return CV_OK;
}

/* Memory residency: the "key" is a hash of the wrapped bytes, used with the
 * real software GCM; nothing here opens what the fake GCM above sealed. */
cv_result cv_hsm_tenant_key_read(struct cv_hsm *hsm, const struct cv_key_ref *ref, uint8_t key[CV_AES256_KEY_BYTES])
{
    CV_GUARD(cv_fake_enter(__func__));
    CV_GUARD(check_key(hsm, ref));
    cv_crypto_sha256(ref->wrapped, ref->wrapped_len, key);
    return CV_OK;
}

cv_result cv_hsm_residency_hsm_only(struct cv_hsm *hsm, int *marked)
{
    (void)hsm;
    CV_GUARD(cv_fake_enter(__func__));
    *marked = 0;
    return CV_OK;
}

cv_result cv_hsm_master_create_hsm_only(struct cv_hsm *hsm, uint32_t version)
{
    return cv_hsm_master_create(hsm, version);
}

void cv_hsm_cache_drop_tenant(struct cv_hsm *hsm, const char *tenant_id)
{
    (void)hsm, (void)tenant_id;
    cv_fake_count(__func__);
}

cv_result cv_hsm_master_create(struct cv_hsm *hsm, uint32_t version)
{
    CV_GUARD(cv_fake_enter(__func__));
    CV_ENSURE(version >= 1 && version <= CV_HSM_MASTER_VERSIONS_MAX, CV_ERR_INPUT, "bad master version");
    CV_ENSURE(!hsm->masters[version], CV_ERR_CONFLICT, "master %u exists", version);
    hsm->masters[version] = 1;
    return CV_OK;
}

cv_result cv_hsm_master_exists(struct cv_hsm *hsm, uint32_t version, int *exists)
{
    CV_GUARD(cv_fake_enter(__func__));
    *exists = version >= 1 && version <= CV_HSM_MASTER_VERSIONS_MAX && hsm->masters[version];
    return CV_OK;
}

cv_result cv_hsm_master_destroy(struct cv_hsm *hsm, uint32_t version)
{
    CV_GUARD(cv_fake_enter(__func__));
    CV_ENSURE(version >= 1 && version <= CV_HSM_MASTER_VERSIONS_MAX && hsm->masters[version], CV_ERR_NOT_FOUND,
              "no master %u", version);
    hsm->masters[version] = 0;
    return CV_OK;
}

/* The audit signing key is absent: the sealer does not run in unit tests. */
cv_result cv_hsm_audit_key_exists(struct cv_hsm *hsm, int *exists)
{
    (void)hsm;
    CV_GUARD(cv_fake_enter(__func__));
    *exists = 0;
    return CV_OK;
}

cv_result cv_hsm_audit_sign(struct cv_hsm *hsm, const uint8_t *data, size_t len, uint8_t *sig, size_t cap,
                            size_t *sig_len)
{
    (void)hsm, (void)data, (void)len, (void)sig, (void)cap, (void)sig_len;
    CV_GUARD(cv_fake_enter(__func__));
    return cv_fail(CV_ERR_NOT_FOUND, "no audit signing key in the fake HSM");
}

cv_result cv_hsm_audit_public_key(struct cv_hsm *hsm, char *pem, size_t cap,
                                  uint8_t fingerprint[CV_HSM_KEY_FINGERPRINT_BYTES])
{
    (void)hsm, (void)pem, (void)cap, (void)fingerprint;
    CV_GUARD(cv_fake_enter(__func__));
    return cv_fail(CV_ERR_NOT_FOUND, "no audit signing key in the fake HSM");
}

/* "HMAC": SHA-256 of context, a zero byte and data; as deterministic as the token's. */
cv_result cv_hsm_mac(struct cv_hsm *hsm, const char *context, const uint8_t *data, size_t len,
                     uint8_t out[CV_HSM_MAC_BYTES])
{
    (void)hsm;
    CV_GUARD(cv_fake_enter(__func__));
    size_t c = strlen(context);
    CV_ENSURE(len <= CV_HSM_MAC_INPUT_MAX_BYTES, CV_ERR_INTERNAL, "MAC input too large");
    uint8_t buf[64 + 1 + CV_HSM_MAC_INPUT_MAX_BYTES];
    CV_ENSURE(c <= 64, CV_ERR_INTERNAL, "invalid MAC context");
    memcpy(buf, context, c);
    buf[c] = 0;
    if (len) memcpy(buf + c + 1, data, len);
    cv_crypto_sha256(buf, c + 1 + len, out);
    return CV_OK;
}

cv_result cv_hsm_mac_check(struct cv_hsm *hsm, const char *context, const uint8_t *data, size_t len,
                           const uint8_t mac[CV_HSM_MAC_BYTES])
{
    uint8_t expect[CV_HSM_MAC_BYTES];
    CV_GUARD(cv_hsm_mac(hsm, context, data, len, expect));
    CV_ENSURE(memcmp(expect, mac, sizeof(expect)) == 0, CV_ERR_CRYPTO, "integrity check failed");
    return CV_OK;
}
