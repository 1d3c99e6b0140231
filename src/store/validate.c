/* Input checks made before anything reaches the database: identifiers,
 * enumerations, lengths and times. The database re-checks all of it with
 * constraints; this only gives a clear CV_ERR_INPUT instead of a SQLSTATE. */
#include <string.h>

#include "store/internal.h"

int cv_store_uuid_ok(const char *s)
{
    if (!s) return 0;
    for (size_t i = 0; i < CV_STORE_UUID_BYTES; i++) {
        char c = s[i];
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (c != '-') return 0;
        } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))) {
            return 0;
        }
    }
    return s[CV_STORE_UUID_BYTES] == '\0';
}

static int one_of(const char *s, const char *const *set, size_t n)
{
    if (!s) return 0;
    for (size_t i = 0; i < n; i++)
        if (strcmp(s, set[i]) == 0) return 1;
    return 0;
}

int cv_store_token_role_ok(const char *s)
{
    static const char *const roles[] = {"admin", "tenant-admin", "auditor", "workload"};
    return one_of(s, roles, sizeof(roles) / sizeof(roles[0]));
}

int cv_store_key_state_ok(const char *s)
{
    static const char *const states[] = {"active", "retired", "destroyed"};
    return one_of(s, states, sizeof(states) / sizeof(states[0]));
}

int cv_store_master_state_ok(const char *s)
{
    static const char *const states[] = {"active", "retired"};
    return one_of(s, states, sizeof(states) / sizeof(states[0]));
}

int cv_store_outcome_ok(const char *s)
{
    static const char *const outcomes[] = {"success", "denied", "error"};
    return one_of(s, outcomes, sizeof(outcomes) / sizeof(outcomes[0]));
}

int cv_store_fixed_ok(const char *s, size_t cap) { return s && memchr(s, '\0', cap) != NULL; }

cv_result cv_store_check_len(const char *what, const char *s, size_t min, size_t max)
{
    CV_ENSURE(s != NULL, CV_ERR_INPUT, "%s is missing", what);
    size_t n = strnlen(s, max + 1);
    CV_ENSURE(n >= min && n <= max, CV_ERR_INPUT, "%s must be %zu to %zu bytes", what, min, max);
    return CV_OK;
}

cv_result cv_store_check_ms(const char *what, int64_t ms)
{
    CV_ENSURE(ms >= 0 && ms <= CV_STORE_TIME_MAX_MS, CV_ERR_INPUT, "%s is out of range", what);
    return CV_OK;
}

cv_result cv_store_check_key_ref(const char *what, const struct cv_key_ref *ref)
{
    CV_ENSURE(cv_store_fixed_ok(ref->tenant_id, sizeof(ref->tenant_id)), CV_ERR_INPUT, "%s: tenant is not terminated",
              what);
    CV_ENSURE(ref->version <= INT32_MAX && ref->master_version >= 1 && ref->master_version <= INT32_MAX,
              CV_ERR_INPUT, "%s: version out of range", what);
    CV_ENSURE(ref->wrapped_len >= 1 && ref->wrapped_len <= CV_WRAPPED_KEY_MAX_BYTES, CV_ERR_INPUT,
              "%s: wrapped key must be 1 to %d bytes", what, CV_WRAPPED_KEY_MAX_BYTES);
    return CV_OK;
}
