/* SHA-256 through EVP, with the digest fetched once per process (an explicit
 * fetch avoids a provider lookup on every call). It must never return a digest
 * it did not compute: the function has no error channel, so a failure aborts
 * rather than hand out a constant that could make two token hashes match. */
#include <pthread.h>
#include <stdlib.h>

#include <openssl/evp.h>

#include "credvault/crypto.h"

static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;
static EVP_MD *sha256_md; /* kept for the life of the process */

static void sha256_fetch(void) { sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL); }

void cv_crypto_sha256(const void *data, size_t n, uint8_t out[CV_SHA256_BYTES])
{
    static const uint8_t empty;
    unsigned int out_len = 0;
    if (pthread_once(&sha256_once, sha256_fetch) != 0 || sha256_md == NULL) abort();
    if (data == NULL) {
        if (n != 0) abort();
        data = &empty;
    }
    if (EVP_Digest(data, n, out, &out_len, sha256_md, NULL) != 1 || out_len != CV_SHA256_BYTES)
        abort();
}
