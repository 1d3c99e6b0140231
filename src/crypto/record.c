/* The record codec of DESIGN.md §2: the JSON text in
 * mcp_credentials.encrypted_env. Encoding is canonical (member order as in the
 * design, lowercase hex); decoding is syntax only and strict: exactly six
 * members, each once, with exact types and lengths. It never decrypts and must
 * never accept a record whose fields it would have to guess at. */
#include <string.h>

#include <jansson.h>

#include "credvault/crypto.h"

#define RECORD_MEMBERS 6
#define RECORD_IV_HEX_BYTES (2 * CV_GCM_IV_BYTES)
#define RECORD_TAG_HEX_BYTES (2 * CV_GCM_TAG_BYTES)
/* The canonical text is 2 * ciphertext + at most ~200 bytes. Decoding accepts
 * any JSON spacing and member order, because a JSON column type (PostgreSQL
 * jsonb) re-serialises with its own; the slack bounds that whitespace. */
#define RECORD_TEXT_MAX_BYTES (2 * (size_t)CV_RECORD_MAX_PLAINTEXT_BYTES + 1024)
#define HEX_CHUNK_BYTES 256

_Static_assert(CV_RECORD_VERSION <= 9 && CV_RECORD_VERSION_MIN >= 1, "the encoder writes \"v\" as one digit");

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
    CV_ENSURE(rec->v >= CV_RECORD_VERSION_MIN && rec->v <= CV_RECORD_VERSION, CV_ERR_INPUT,
              "record: unsupported format version");
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
    char kid[CV_KEY_ID_MAX_BYTES + 1];
    size_t kid_len;
    CV_GUARD(cv_key_id_format(rec->tenant_id, rec->key_version, kid, &kid_len));

    /* reserve the whole text first, so the appends below cannot half-succeed */
    size_t total = sizeof("{\"v\":2,\"alg\":\"A256GCM\",\"kid\":\"\",\"iv\":\"\",\"encrypted\":\"\",\"authTag\":\"\"}") - 1 +
                   kid_len + RECORD_IV_HEX_BYTES + 2 * rec->ct.len + RECORD_TAG_HEX_BYTES;
    CV_GUARD(cv_buf_reserve(dst, total));
    size_t start = dst->len;

    char head[] = "{\"v\":0,\"alg\":\"" CV_RECORD_ALG "\",\"kid\":\"";
    head[5] = (char)('0' + rec->v);
    CV_GUARD(cv_buf_append_str(dst, head));
    CV_GUARD(cv_buf_append(dst, kid, kid_len));
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
    /* an integer the codec knows: not 2.0, not "2" */
    CV_ENSURE(json_is_integer(v) && json_integer_value(v) >= CV_RECORD_VERSION_MIN &&
                  json_integer_value(v) <= CV_RECORD_VERSION,
              CV_ERR_INPUT, "record: unsupported format version");
    rec->v = (uint32_t)json_integer_value(v);

    const char *s = NULL;
    size_t n = 0;
    CV_GUARD(member_string(root, "alg", &s, &n));
    CV_ENSURE(n == sizeof(CV_RECORD_ALG) - 1 && memcmp(s, CV_RECORD_ALG, n) == 0, CV_ERR_INPUT,
              "record: unsupported algorithm");

    CV_GUARD(member_string(root, "kid", &s, &n));
    CV_GUARD(cv_key_id_parse(s, n, rec->tenant_id, &rec->key_version));

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
