/* The run-time versions of the libraries beneath the domain (OpenSSL, cjose,
 * libpq), gathered here so the front ends report them without calling the
 * crypto or store modules themselves. */
#include "credvault/crypto.h"
#include "credvault/store_version.h"
#include "domain/ops.h"

json_t *cv_app_library_versions(void)
{
    char pq[32];
    cv_store_libpq_version(pq, sizeof(pq));
    return json_pack("{s:s, s:s, s:s}", "openssl", cv_crypto_openssl_version(), "libpq", pq, "cjose",
                     cv_crypto_cjose_version());
}
