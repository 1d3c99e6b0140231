/* The record codec of DESIGN.md §2: the JSON text in
 * mcp_credentials.encrypted_env. Encoding is canonical (member order as in the
 * design, lowercase hex); decoding is syntax only and strict: exactly six
 * members, each once, with exact types and lengths. It never decrypts and must
 * never accept a record whose fields it would have to guess at. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "credvault/crypto.h"

#define RECORD_MEMBERS 6
#define RECORD_IV_HEX_BYTES (2 * CV_GCM_IV_BYTES)
#define RECORD_TAG_HEX_BYTES (2 * CV_GCM_TAG_BYTES)
#define RECORD_KID_VERSION_MAX_DIGITS 10 /* 4294967295 */
/* The canonical text is 2 * ciphertext + at most ~200 bytes. Decoding accepts
 * any JSON spacing and member order, because a JSON column type (PostgreSQL
 * jsonb) re-serialises with its own; the slack bounds that whitespace. */
#define RECORD_TEXT_MAX_BYTES (2 * (size_t)CV_RECORD_MAX_PLAINTEXT_BYTES + 1024)
#define HEX_CHUNK_BYTES 256

_Static_assert(CV_RECORD_VERSION == 2, "the encoder writes \"v\":2 literally");

void cv_record_init(struct cv_record *rec)
{
    memset(rec, 0, sizeof(*rec));
    rec->v = CV_RECORD_VERSION;
    cv_buf_init(&rec->ct, CV_RECORD_MAX_PLAINTEXT_BYTES);
}

void cv_record_wipe(struct cv_record *rec)
{
    cv_buf_free(&rec->ct);
    cv_wipe(rec, sizeof(*rec));
    cv_record_init(rec);
}

static cv_result record_check(const struct cv_record *rec)
{
    CV_ENSURE(rec->v == CV_RECORD_VERSION, CV_ERR_INPUT, "record: unsupported format version");
    CV_ENSURE(memchr(rec->tenant_id, '\0', sizeof(rec->tenant_id)) != NULL && cv_tenant_id_valid(rec->tenant_id),
              CV_ERR_INPUT, "record: invalid tenant id");
    CV_ENSURE(rec->key_version != 0, CV_ERR_INPUT, "record: key version 0 does not exist");
    CV_ENSURE(rec->ct.len >= 1 && rec->ct.len <= CV_RECORD_MAX_PLAINTEXT_BYTES && rec->ct.data != NULL,
              CV_ERR_INPUT, "record: ciphertext must be 1 to %d bytes", CV_RECORD_MAX_PLAINTEXT_BYTES);
    return CV_OK;
}

static cv_result append_hex(struct cv_buf *dst, const uint8_t *p, size_t n)
{
    char chunk[2 * HEX_CHUNK_BYTES + 1];
    for (size_t i = 0; i < n; i += HEX_CHUNK_BYTES) {
        size_t k = n - i < HEX_CHUNK_BYTES ? n - i : HEX_CHUNK_BYTES;
        cv_hex_encode(p + i, k, chunk);
        CV_GUARD(cv_buf_append(dst, chunk, 2 * k));
    }
    return CV_OK;
}

static cv_result append_record(const struct cv_record *rec, struct cv_buf *dst)
{
    char version[RECORD_KID_VERSION_MAX_DIGITS + 1];
    int version_len = snprintf(version, sizeof(version), "%" PRIu32, rec->key_version);
    CV_ENSURE(version_len > 0 && (size_t)version_len < sizeof(version), CV_ERR_INTERNAL, "record: kid version");

    /* reserve the whole text first, so the appends below cannot half-succeed */
    size_t total = sizeof("{\"v\":2,\"alg\":\"A256GCM\",\"kid\":\"/\",\"iv\":\"\",\"encrypted\":\"\",\"authTag\":\"\"}") - 1 +
                   strlen(rec->tenant_id) + (size_t)version_len + RECORD_IV_HEX_BYTES + 2 * rec->ct.len +
                   RECORD_TAG_HEX_BYTES;
    CV_GUARD(cv_buf_reserve(dst, total));
    size_t start = dst->len;

    CV_GUARD(cv_buf_append_str(dst, "{\"v\":2,\"alg\":\"" CV_RECORD_ALG "\",\"kid\":\""));
    CV_GUARD(cv_buf_append_str(dst, rec->tenant_id));
    CV_GUARD(cv_buf_append_u8(dst, '/'));
    CV_GUARD(cv_buf_append(dst, version, (size_t)version_len));
    CV_GUARD(cv_buf_append_str(dst, "\",\"iv\":\""));
    CV_GUARD(append_hex(dst, rec->iv, sizeof(rec->iv)));
    CV_GUARD(cv_buf_append_str(dst, "\",\"encrypted\":\""));
    CV_GUARD(append_hex(dst, rec->ct.data, rec->ct.len));
    CV_GUARD(cv_buf_append_str(dst, "\",\"authTag\":\""));
    CV_GUARD(append_hex(dst, rec->tag, sizeof(rec->tag)));
    CV_GUARD(cv_buf_append_str(dst, "\"}"));
    CV_ENSURE(dst->len - start == total, CV_ERR_INTERNAL, "record: encoded length mismatch");
    CV_GUARD(cv_buf_terminate(dst));
    return CV_OK;
}

cv_result cv_record_encode(const struct cv_record *rec, struct cv_buf *dst)
{
    CV_ENSURE_REF(rec);
    CV_ENSURE_REF(dst);
    CV_GUARD(record_check(rec));
    size_t start = dst->len;
    cv_result res = append_record(rec, dst);
    if (cv_failed(res)) dst->len = start; /* nothing of a failed encoding stays */
    return res;
}

/* "<tenant_id>/<key_version>", the version decimal 1..4294967295 with no sign
 * and no leading zero, so that one kid has one spelling. */
static cv_result parse_kid(const char *s, size_t n, struct cv_record *rec)
{
    const char *slash = memchr(s, '/', n);
    CV_ENSURE(slash != NULL, CV_ERR_INPUT, "record: kid has no version");
    size_t tenant_len = (size_t)(slash - s);
    CV_ENSURE(tenant_len >= 1 && tenant_len <= CV_TENANT_ID_MAX_BYTES, CV_ERR_INPUT, "record: kid has an invalid tenant id");
    memcpy(rec->tenant_id, s, tenant_len);
    rec->tenant_id[tenant_len] = '\0';
    CV_ENSURE(cv_tenant_id_valid(rec->tenant_id), CV_ERR_INPUT, "record: kid has an invalid tenant id");

    const char *d = slash + 1;
    size_t digits = n - tenant_len - 1;
    CV_ENSURE(digits >= 1 && digits <= RECORD_KID_VERSION_MAX_DIGITS && d[0] >= '1' && d[0] <= '9',
              CV_ERR_INPUT, "record: kid has an invalid key version");
    uint64_t version = 0;
    for (size_t i = 0; i < digits; i++) {
        CV_ENSURE(d[i] >= '0' && d[i] <= '9', CV_ERR_INPUT, "record: kid has an invalid key version");
        version = version * 10 + (uint64_t)(d[i] - '0');
    }
    CV_ENSURE(version <= UINT32_MAX, CV_ERR_INPUT, "record: kid has an invalid key version");
    rec->key_version = (uint32_t)version;
    return CV_OK;
}

static cv_result member_string(json_t *root, const char *name, const char **s, size_t *n)
{
    json_t *m = json_object_get(root, name);
    CV_ENSURE(m != NULL, CV_ERR_INPUT, "record: member %s is missing", name);
    CV_ENSURE(json_is_string(m), CV_ERR_INPUT, "record: member %s is not a string", name);
    *s = json_string_value(m);
    *n = json_string_length(m);
    return CV_OK;
}

static cv_result parse_members(json_t *root, struct cv_record *rec)
{
    CV_ENSURE(json_is_object(root), CV_ERR_INPUT, "record: not a JSON object");
    /* duplicates were refused by the parser; six members that include all six
     * names is then exactly the member set */
    CV_ENSURE(json_object_size(root) == RECORD_MEMBERS, CV_ERR_INPUT, "record: wrong set of members");

    json_t *v = json_object_get(root, "v");
    CV_ENSURE(v != NULL, CV_ERR_INPUT, "record: member v is missing");
    /* the integer 2: not 2.0, not "2" */
    CV_ENSURE(json_is_integer(v) && json_integer_value(v) == CV_RECORD_VERSION, CV_ERR_INPUT,
              "record: unsupported format version");
    rec->v = CV_RECORD_VERSION;

    const char *s = NULL;
    size_t n = 0;
    CV_GUARD(member_string(root, "alg", &s, &n));
    CV_ENSURE(n == sizeof(CV_RECORD_ALG) - 1 && memcmp(s, CV_RECORD_ALG, n) == 0, CV_ERR_INPUT,
              "record: unsupported algorithm");

    CV_GUARD(member_string(root, "kid", &s, &n));
    CV_GUARD(parse_kid(s, n, rec));

    CV_GUARD(member_string(root, "iv", &s, &n));
    CV_ENSURE(n == RECORD_IV_HEX_BYTES, CV_ERR_INPUT, "record: iv must be %d hex digits", RECORD_IV_HEX_BYTES);
    CV_GUARD(cv_hex_decode(s, n, rec->iv, sizeof(rec->iv)));

    CV_GUARD(member_string(root, "authTag", &s, &n));
    CV_ENSURE(n == RECORD_TAG_HEX_BYTES, CV_ERR_INPUT, "record: authTag must be %d hex digits", RECORD_TAG_HEX_BYTES);
    CV_GUARD(cv_hex_decode(s, n, rec->tag, sizeof(rec->tag)));

    CV_GUARD(member_string(root, "encrypted", &s, &n));
    CV_ENSURE(n >= 2 && n % 2 == 0 && n / 2 <= CV_RECORD_MAX_PLAINTEXT_BYTES, CV_ERR_INPUT,
              "record: encrypted must be an even number of hex digits for 1 to %d bytes",
              CV_RECORD_MAX_PLAINTEXT_BYTES);
    cv_buf_reset(&rec->ct);
    CV_GUARD(cv_buf_reserve(&rec->ct, n / 2));
    CV_GUARD(cv_hex_decode(s, n, rec->ct.data, n / 2));
    rec->ct.len = n / 2;
    return CV_OK;
}

cv_result cv_record_decode(const char *text, size_t len, struct cv_record *rec)
{
    CV_ENSURE_REF(rec);
    CV_ENSURE(text != NULL || len == 0, CV_ERR_INTERNAL, "null reference: text");
    CV_ENSURE(len >= 2 && len <= RECORD_TEXT_MAX_BYTES, CV_ERR_INPUT, "record: length out of range");
    /* a NUL would end the text early for any C-string reader downstream */
    CV_ENSURE(memchr(text, '\0', len) == NULL, CV_ERR_INPUT, "record: holds a NUL byte");

    /* The parser's own message quotes input, so it is not passed on. */
    json_error_t jerr;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    CV_ENSURE(root != NULL, CV_ERR_INPUT, "record: not valid JSON");

    /* decode into scratch so that `rec` changes only on success */
    struct cv_record tmp;
    cv_record_init(&tmp);
    cv_result res = parse_members(root, &tmp);
    json_decref(root);
    if (cv_failed(res)) {
        cv_record_wipe(&tmp);
        return res;
    }
    cv_record_wipe(rec);
    *rec = tmp;
    return CV_OK;
}
