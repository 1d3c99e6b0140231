/* The versions of the crypto libraries this process runs with (OpenSSL and
 * cjose), as they report themselves at run time, for `credvault version`
 * and the build-info metric. */
#include <cjose/version.h>
#include <openssl/crypto.h>

#include "credvault/crypto.h"

const char *cv_crypto_openssl_version(void) { return OpenSSL_version(OPENSSL_VERSION); }

const char *cv_crypto_cjose_version(void) { return cjose_version(); }
