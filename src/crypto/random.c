/* Random bytes for IVs, tokens and key material made outside the token, from
 * OpenSSL's private DRBG (kept apart from the public one so that values that
 * are published, like nonces, never share a stream with secrets). It must
 * never hand back a partially filled buffer as if it were random. */
#include <limits.h>

#include <openssl/err.h>
#include <openssl/rand.h>

#include "credvault/crypto.h"

#define RANDOM_CHUNK_BYTES ((size_t)1 << 20) /* RAND_priv_bytes takes an int */

cv_result cv_crypto_random(uint8_t *out, size_t n)
{
    CV_ENSURE(out != NULL || n == 0, CV_ERR_INTERNAL, "null reference: out");
    for (size_t done = 0; done < n;) {
        size_t chunk = n - done < RANDOM_CHUNK_BYTES ? n - done : RANDOM_CHUNK_BYTES;
        if (RAND_priv_bytes(out + done, (int)chunk) != 1) {
            ERR_clear_error();
            cv_wipe(out, n);
            CV_BAIL(CV_ERR_INTERNAL, "the random generator failed");
        }
        done += chunk;
    }
    return CV_OK;
}
