/* Identifier syntax shared by the record codec, the AAD and the API: a tenant
 * id is 1..64 of [a-z0-9-] and starts alphanumeric, so it can appear in a
 * kid, a log line or a URL path without escaping. It must never accept a byte
 * outside that set (no '/', no NUL, no uppercase aliases of another tenant). */
#include "credvault/crypto.h"

static int is_lower_alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

int cv_tenant_id_valid(const char *s)
{
    if (s == NULL || !is_lower_alnum(s[0])) return 0;
    size_t n = 1;
    for (; s[n] != '\0'; n++) {
        if (n >= CV_TENANT_ID_MAX_BYTES) return 0;
        if (!is_lower_alnum(s[n]) && s[n] != '-') return 0;
    }
    return 1;
}
