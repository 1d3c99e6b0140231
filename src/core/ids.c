/* The syntax of every identifier (include/credvault/ids.h). Byte classes are
 * spelled out rather than taken from <ctype.h>, whose answers depend on the
 * locale: an id valid here must be valid in every process that reads it. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "credvault/ids.h"

static int lower_alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }
static int alnum(char c) { return lower_alnum(c) || (c >= 'A' && c <= 'Z'); }

int cv_tenant_id_valid(const char *s)
{
    if (s == NULL || !lower_alnum(s[0])) return 0;
    for (size_t n = 1; s[n] != '\0'; n++) {
        if (n >= CV_TENANT_ID_MAX_BYTES) return 0;
        if (!lower_alnum(s[n]) && s[n] != '-') return 0;
    }
    return 1;
}

static int name_id_valid(const char *s, size_t max)
{
    if (s == NULL || !alnum(s[0])) return 0;
    for (size_t n = 1; s[n] != '\0'; n++) {
        if (n >= max) return 0;
        if (!alnum(s[n]) && s[n] != '.' && s[n] != '_' && s[n] != '-') return 0;
    }
    return 1;
}

int cv_server_id_valid(const char *s) { return name_id_valid(s, CV_SERVER_ID_MAX_BYTES); }

int cv_template_id_valid(const char *s) { return name_id_valid(s, CV_TEMPLATE_ID_MAX_BYTES); }

cv_result cv_key_id_parse(const char *s, size_t n, char tenant_id[CV_TENANT_ID_MAX_BYTES + 1], uint32_t *version)
{
    CV_ENSURE(s != NULL, CV_ERR_INPUT, "key reference is missing");
    const char *slash = memchr(s, '/', n);
    CV_ENSURE(slash != NULL, CV_ERR_INPUT, "key reference has no version");
    size_t tenant_len = (size_t)(slash - s);
    char tenant[CV_TENANT_ID_MAX_BYTES + 1];
    CV_ENSURE(tenant_len >= 1 && tenant_len <= CV_TENANT_ID_MAX_BYTES, CV_ERR_INPUT,
              "key reference has an invalid tenant id");
    memcpy(tenant, s, tenant_len);
    tenant[tenant_len] = '\0';
    /* strlen: a NUL inside the counted bytes must not cut the tenant short */
    CV_ENSURE(strlen(tenant) == tenant_len && cv_tenant_id_valid(tenant), CV_ERR_INPUT,
              "key reference has an invalid tenant id");

    const char *d = slash + 1;
    size_t digits = n - tenant_len - 1;
    CV_ENSURE(digits >= 1 && digits <= CV_KEY_VERSION_MAX_DIGITS && d[0] >= '1' && d[0] <= '9', CV_ERR_INPUT,
              "key reference has an invalid key version");
    uint64_t v = 0;
    for (size_t i = 0; i < digits; i++) {
        CV_ENSURE(d[i] >= '0' && d[i] <= '9', CV_ERR_INPUT, "key reference has an invalid key version");
        v = v * 10 + (uint64_t)(d[i] - '0');
    }
    CV_ENSURE(v <= UINT32_MAX, CV_ERR_INPUT, "key reference has an invalid key version");
    memcpy(tenant_id, tenant, tenant_len + 1);
    *version = (uint32_t)v;
    return CV_OK;
}

cv_result cv_key_id_format(const char *tenant_id, uint32_t version, char out[CV_KEY_ID_MAX_BYTES + 1], size_t *len)
{
    CV_ENSURE(cv_tenant_id_valid(tenant_id), CV_ERR_INPUT, "key reference: invalid tenant id");
    CV_ENSURE(version != 0, CV_ERR_INPUT, "key reference: key version 0 does not exist");
    int n = snprintf(out, CV_KEY_ID_MAX_BYTES + 1, "%s/%" PRIu32, tenant_id, version);
    CV_ENSURE(n > 0 && n <= CV_KEY_ID_MAX_BYTES, CV_ERR_INTERNAL, "key reference: length");
    if (len) *len = (size_t)n;
    return CV_OK;
}
