/* The decoder of GigaChad GRC's encrypted_env: {"iv","encrypted","authTag"}
 * or {"iv","encrypted","authTag","salt"}, lowercase hex. Strict where the
 * original was lax (Node accepted truncated tags and any hex case): exact
 * members, exact lengths. Syntax only; it never decrypts, and its messages
 * name members but never quote the input. */
#include <string.h>

#include <jansson.h>

#include "credvault/crypto_legacy.h"

#define LEGACY_IV_HEX (2 * CV_LEGACY_IV_BYTES)
#define LEGACY_TAG_HEX (2 * CV_LEGACY_TAG_BYTES)
#define LEGACY_SALT_HEX (2 * CV_LEGACY_SALT_BYTES)

void cv_legacy_record_init(struct cv_legacy_record *rec)
{
    memset(rec, 0, sizeof(*rec));
    cv_buf_init(&rec->ct, CV_LEGACY_MAX_PLAINTEXT_BYTES);
}

void cv_legacy_record_wipe(struct cv_legacy_record *rec)
{
    cv_buf_free(&rec->ct);
    cv_wipe(rec, sizeof(*rec));
    cv_legacy_record_init(rec);
}

static cv_result member(json_t *root, const char *name, const char **s, size_t *n)
{
    json_t *m = json_object_get(root, name);
    CV_ENSURE(m != NULL, CV_ERR_INPUT, "encrypted_env: member %s is missing", name);
    CV_ENSURE(json_is_string(m), CV_ERR_INPUT, "encrypted_env: member %s is not a string", name);
    *s = json_string_value(m);
    *n = json_string_length(m);
    return CV_OK;
}

/* Exactly `bytes` bytes as 2*bytes lowercase hex digits. */
static cv_result fixed_hex(json_t *root, const char *name, uint8_t *out, size_t bytes)
{
    const char *s;
    size_t n;
    CV_GUARD(member(root, name, &s, &n));
    CV_ENSURE(n == 2 * bytes, CV_ERR_INPUT, "encrypted_env: %s must be %zu lowercase hex digits (%zu bytes)", name,
              2 * bytes, bytes);
    cv_result r = cv_hex_decode(s, n, out, bytes);
    if (cv_failed(r)) return cv_fail(CV_ERR_INPUT, "encrypted_env: %s is not lowercase hex", name);
    return CV_OK;
}

static cv_result parse_members(json_t *root, struct cv_legacy_record *rec)
{
    CV_ENSURE(json_is_object(root), CV_ERR_INPUT, "encrypted_env: not a JSON object");
    /* duplicates were refused by the parser; so a size of 3 (or 4 with a
     * salt) that includes the named members is exactly that member set */
    rec->has_salt = json_object_get(root, "salt") != NULL;
    size_t want = rec->has_salt ? 4 : 3;
    CV_ENSURE(json_object_size(root) == want, CV_ERR_INPUT,
              "encrypted_env: members must be exactly iv, encrypted, authTag (and optionally salt)");
    CV_GUARD(fixed_hex(root, "iv", rec->iv, sizeof(rec->iv)));
    CV_GUARD(fixed_hex(root, "authTag", rec->tag, sizeof(rec->tag)));
    if (rec->has_salt) CV_GUARD(fixed_hex(root, "salt", rec->salt, sizeof(rec->salt)));

    const char *s;
    size_t n;
    CV_GUARD(member(root, "encrypted", &s, &n));
    CV_ENSURE(n >= 2 && n % 2 == 0 && n / 2 <= CV_LEGACY_MAX_PLAINTEXT_BYTES, CV_ERR_INPUT,
              "encrypted_env: encrypted must be an even number of hex digits for 1 to %d bytes",
              CV_LEGACY_MAX_PLAINTEXT_BYTES);
    cv_buf_reset(&rec->ct);
    CV_GUARD(cv_buf_reserve(&rec->ct, n / 2));
    cv_result r = cv_hex_decode(s, n, rec->ct.data, n / 2);
    if (cv_failed(r)) return cv_fail(CV_ERR_INPUT, "encrypted_env: encrypted is not lowercase hex");
    rec->ct.len = n / 2;
    return CV_OK;
}

cv_result cv_legacy_record_decode(const char *text, size_t len, struct cv_legacy_record *rec)
{
    CV_ENSURE_REF(rec);
    CV_ENSURE(text != NULL || len == 0, CV_ERR_INTERNAL, "null reference: text");
    CV_ENSURE(len >= 2 && len <= CV_LEGACY_RECORD_MAX_BYTES, CV_ERR_INPUT,
              "encrypted_env: length must be 2 to %d bytes", CV_LEGACY_RECORD_MAX_BYTES);
    CV_ENSURE(memchr(text, '\0', len) == NULL, CV_ERR_INPUT, "encrypted_env: holds a NUL byte");

    /* jansson's own message quotes the input, so it is not passed on */
    json_error_t jerr;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    CV_ENSURE(root != NULL, CV_ERR_INPUT, "encrypted_env: not valid JSON, or a member appears twice");

    struct cv_legacy_record tmp;
    cv_legacy_record_init(&tmp);
    cv_result r = parse_members(root, &tmp);
    json_decref(root);
    if (cv_failed(r)) {
        cv_legacy_record_wipe(&tmp);
        return r;
    }
    cv_legacy_record_wipe(rec);
    *rec = tmp;
    return CV_OK;
}
