/* AES-256-GCM in software, for memory residency: the same 96-bit random IV,
 * AAD rules and 128-bit tag as the token's GCM, so a record sealed here opens
 * in the token and the other way. The cipher is fetched once; each thread
 * reuses one context. A failed open says only "decryption failed" and leaves
 * no plaintext behind. */
#include <pthread.h>

#include <openssl/err.h>
#include <openssl/evp.h>

#include "credvault/crypto.h"

#define DECRYPT_FAILED "decryption failed"
#define AAD_MAX_BYTES 1024

static pthread_once_t fetch_once = PTHREAD_ONCE_INIT;
static EVP_CIPHER *gcm_cipher; /* fetched once: an implicit fetch per init costs half as much again */
static pthread_key_t ctx_key;
static int ctx_key_ok;

static void ctx_free(void *p)
{
    EVP_CIPHER_CTX_free(p); /* also clears the key schedule */
}

static void fetch(void)
{
    gcm_cipher = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
    ctx_key_ok = pthread_key_create(&ctx_key, ctx_free) == 0;
}

/* This thread's context, made on first use and freed when the thread ends. */
static EVP_CIPHER_CTX *thread_ctx(void)
{
    pthread_once(&fetch_once, fetch);
    if (!gcm_cipher || !ctx_key_ok) return NULL;
    EVP_CIPHER_CTX *ctx = pthread_getspecific(ctx_key);
    if (ctx) return ctx;
    ctx = EVP_CIPHER_CTX_new();
    if (!ctx) return NULL;
    if (EVP_CipherInit_ex2(ctx, gcm_cipher, NULL, NULL, 1, NULL) != 1 || pthread_setspecific(ctx_key, ctx) != 0) {
        EVP_CIPHER_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

static cv_result check_sizes(size_t aad_len, size_t len)
{
    /* every record binds tenant, server and version; the token refuses an empty AAD too */
    CV_ENSURE(aad_len >= 1 && aad_len <= AAD_MAX_BYTES, CV_ERR_INTERNAL, "GCM AAD must be 1 to %d bytes",
              AAD_MAX_BYTES);
    CV_ENSURE(len >= 1 && len <= CV_HSM_GCM_MAX_BYTES, CV_ERR_INTERNAL, "GCM input must be 1 to %d bytes",
              CV_HSM_GCM_MAX_BYTES);
    return CV_OK;
}

cv_result cv_crypto_gcm_seal_iv(const uint8_t key[CV_AES256_KEY_BYTES], const uint8_t iv[CV_GCM_IV_BYTES],
                                const uint8_t *aad, size_t aad_len, const uint8_t *pt, size_t pt_len, uint8_t *ct,
                                uint8_t tag[CV_GCM_TAG_BYTES])
{
    CV_GUARD(check_sizes(aad_len, pt_len));
    EVP_CIPHER_CTX *ctx = thread_ctx();
    CV_ENSURE(ctx != NULL, CV_ERR_INTERNAL, "AES-256-GCM is not available from OpenSSL");
    int n = 0, fin = 0;
    if (EVP_EncryptInit_ex2(ctx, NULL, key, iv, NULL) != 1 || EVP_EncryptUpdate(ctx, NULL, &n, aad, (int)aad_len) != 1 ||
        EVP_EncryptUpdate(ctx, ct, &n, pt, (int)pt_len) != 1 || EVP_EncryptFinal_ex(ctx, ct + n, &fin) != 1 ||
        (size_t)n + (size_t)fin != pt_len ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, CV_GCM_TAG_BYTES, tag) != 1) {
        ERR_clear_error();
        cv_wipe(ct, pt_len);
        CV_BAIL(CV_ERR_INTERNAL, "AES-256-GCM encryption failed");
    }
    return CV_OK;
}

cv_result cv_crypto_gcm_encrypt(const uint8_t key[CV_AES256_KEY_BYTES], const uint8_t *aad, size_t aad_len,
                                const uint8_t *pt, size_t pt_len, uint8_t iv[CV_GCM_IV_BYTES], uint8_t *ct,
                                uint8_t tag[CV_GCM_TAG_BYTES])
{
    /* 96 random bits per record, as the token's caller-IV profiles draw them;
     * the usage limit per key version (DESIGN §1) keeps this within 2^32 */
    CV_GUARD(cv_crypto_random(iv, CV_GCM_IV_BYTES));
    return cv_crypto_gcm_seal_iv(key, iv, aad, aad_len, pt, pt_len, ct, tag);
}

cv_result cv_crypto_gcm_decrypt(const uint8_t key[CV_AES256_KEY_BYTES], const uint8_t *aad, size_t aad_len,
                                const uint8_t iv[CV_GCM_IV_BYTES], const uint8_t *ct, size_t ct_len,
                                const uint8_t tag[CV_GCM_TAG_BYTES], uint8_t *pt)
{
    CV_GUARD(check_sizes(aad_len, ct_len));
    EVP_CIPHER_CTX *ctx = thread_ctx();
    CV_ENSURE(ctx != NULL, CV_ERR_INTERNAL, "AES-256-GCM is not available from OpenSSL");
    int n = 0, fin = 0;
    if (EVP_DecryptInit_ex2(ctx, NULL, key, iv, NULL) != 1 || EVP_DecryptUpdate(ctx, NULL, &n, aad, (int)aad_len) != 1 ||
        EVP_DecryptUpdate(ctx, pt, &n, ct, (int)ct_len) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, CV_GCM_TAG_BYTES, (void *)tag) != 1 ||
        EVP_DecryptFinal_ex(ctx, pt + n, &fin) != 1 || (size_t)n + (size_t)fin != ct_len) {
        ERR_clear_error();
        cv_wipe(pt, ct_len); /* unauthenticated plaintext never reaches the caller */
        CV_BAIL(CV_ERR_CRYPTO, DECRYPT_FAILED);
    }
    return CV_OK;
}
