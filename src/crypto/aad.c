/* The additional authenticated data of a record: it binds the ciphertext to
 * its tenant, server, key version, format version and (format 3) revision,
 * so a row copied to another tenant or server, or an older record restored
 * into its row, fails to decrypt. Every variable-length field is
 * length-prefixed: it must never be a plain concatenation, where ("ab","c")
 * and ("a","bc") would authenticate the same bytes. */
#include <string.h>

#include "credvault/crypto.h"

#define AAD_LABEL "credvault.record"
#define AAD_LABEL_BYTES (sizeof(AAD_LABEL) - 1)

cv_result cv_record_aad(const char *tenant_id, const char *server_id, uint32_t key_version,
                        uint32_t format_version, struct cv_buf *out)
{
    CV_ENSURE(format_version <= 2, CV_ERR_INPUT, "record AAD: format %u needs the revision", format_version);
    return cv_record_aad_rev(tenant_id, server_id, key_version, format_version, 0, out);
}

cv_result cv_record_aad_rev(const char *tenant_id, const char *server_id, uint32_t key_version,
                            uint32_t format_version, int64_t revision, struct cv_buf *out)
{
    CV_ENSURE_REF(tenant_id);
    CV_ENSURE_REF(server_id);
    CV_ENSURE_REF(out);
    CV_ENSURE(cv_tenant_id_valid(tenant_id), CV_ERR_INPUT, "record AAD: invalid tenant id");
    size_t tenant_len = strlen(tenant_id);
    CV_ENSURE(cv_server_id_valid(server_id), CV_ERR_INPUT, "record AAD: invalid server id");
    size_t server_len = strlen(server_id);
    CV_ENSURE(key_version != 0, CV_ERR_INPUT, "record AAD: key version 0 does not exist");
    CV_ENSURE(format_version != 0, CV_ERR_INPUT, "record AAD: format version 0 does not exist");
    int with_revision = format_version >= 3;
    CV_ENSURE(!with_revision || revision >= 1, CV_ERR_INPUT, "record AAD: revisions start at 1");

    /* Reserve the whole encoding first so a failure leaves `out` untouched. */
    size_t total = AAD_LABEL_BYTES + 4 + 4 + tenant_len + 4 + server_len + 4 + (with_revision ? 8 : 0);
    CV_GUARD(cv_buf_reserve(out, total));
    CV_GUARD(cv_buf_append(out, AAD_LABEL, AAD_LABEL_BYTES));
    CV_GUARD(cv_buf_append_u32be(out, format_version));
    CV_GUARD(cv_buf_append_u32be(out, (uint32_t)tenant_len));
    CV_GUARD(cv_buf_append(out, tenant_id, tenant_len));
    CV_GUARD(cv_buf_append_u32be(out, (uint32_t)server_len));
    CV_GUARD(cv_buf_append(out, server_id, server_len));
    CV_GUARD(cv_buf_append_u32be(out, key_version));
    if (with_revision) {
        CV_GUARD(cv_buf_append_u32be(out, (uint32_t)((uint64_t)revision >> 32)));
        CV_GUARD(cv_buf_append_u32be(out, (uint32_t)revision));
    }
    return CV_OK;
}
