/* Sealing and opening of one server's credential map: JSON plaintext in
 * wiped memory, AES-256-GCM under the tenant's key — in the token, or with
 * memory residency in software with the key read once from it; the records
 * are the same bytes either way — AAD binding
 * the record to tenant, server, key version, format and revision. Opening
 * checks the row's HSM binding first (500 integrity_error); every failure to
 * decrypt gives the same answer, "Failed to decrypt credentials", and logs
 * only ids. */
#include <stdio.h>
#include <string.h>

#include "credvault/crypto.h"
#include "credvault/log.h"
#include "domain/audit.h"
#include "domain/domain.h"
#include "domain/lifecycle.h"
#include "domain/record_bind.h"
#include "domain/seal.h"

#define DECRYPT_FAILED "Failed to decrypt credentials"

static cv_result decrypt_failed(struct cv_app *app, const struct cv_principal *p, const char *tenant,
                                const char *server, uint32_t version, const char *why)
{
    char v[16];
    snprintf(v, sizeof(v), "%u", version);
    cv_log(CV_LOG_ERROR, "decrypt_failed", "tenant", tenant, "server", server, "key_version", v, "reason", why,
           NULL);
    cv_audit_decrypt_failure(app, p, tenant, server, version); /* counted, and an audit event on a request */
    return cv_fail_code(CV_ERR_CRYPTO, "decrypt_failed", DECRYPT_FAILED);
}

/* The residency decides where GCM runs; the record format does not change. */
static cv_result gcm_encrypt(struct cv_app *app, const struct cv_key_ref *ref, const struct cv_buf *aad,
                             const uint8_t *pt, size_t pt_len, struct cv_record *rec)
{
    if (!cv_keys_memory_residency(app))
        return cv_hsm_gcm_encrypt(app->hsm, ref, aad->data, aad->len, pt, pt_len, rec->iv, rec->ct.data, rec->tag);
    uint8_t key[CV_AES256_KEY_BYTES];
    CV_GUARD(cv_hsm_tenant_key_read(app->hsm, ref, key));
    cv_result r = cv_crypto_gcm_encrypt(key, aad->data, aad->len, pt, pt_len, rec->iv, rec->ct.data, rec->tag);
    cv_wipe(key, sizeof(key));
    return r;
}

static cv_result gcm_decrypt(struct cv_app *app, const struct cv_key_ref *ref, const struct cv_buf *aad,
                             const struct cv_record *rec, uint8_t *pt)
{
    if (!cv_keys_memory_residency(app))
        return cv_hsm_gcm_decrypt(app->hsm, ref, aad->data, aad->len, rec->iv, rec->ct.data, rec->ct.len, rec->tag,
                                  pt);
    uint8_t key[CV_AES256_KEY_BYTES];
    CV_GUARD(cv_hsm_tenant_key_read(app->hsm, ref, key));
    cv_result r = cv_crypto_gcm_decrypt(key, aad->data, aad->len, rec->iv, rec->ct.data, rec->ct.len, rec->tag, pt);
    cv_wipe(key, sizeof(key));
    return r;
}

cv_result cv_seal_env(struct cv_app *app, const char *tenant_id, const char *server_id, int64_t revision, json_t *env,
                      char **record_out, uint32_t *key_version)
{
    struct cv_tenant_key_row key;
    /* the newest version, rotated first when it reached its usage limits */
    CV_GUARD(cv_lifecycle_key_for_write(app, tenant_id, &key));

    cv_result r = CV_OK;
    struct cv_buf aad = CV_BUF_EMPTY, out = CV_BUF_EMPTY;
    struct cv_record rec;
    cv_record_init(&rec);
    cv_buf_init(&aad, 1024);
    cv_buf_init(&out, 4 * CV_RECORD_MAX_PLAINTEXT_BYTES);
    /* json_dumps allocates through the wiping allocator */
    char *pt = json_dumps(env, JSON_COMPACT);
    if (!pt) {
        r = cv_fail(CV_ERR_MEMORY, "out of memory");
        goto out;
    }
    size_t pt_len = strlen(pt);
    if (pt_len > CV_HSM_GCM_MAX_BYTES) {
        r = cv_fail(CV_ERR_TOO_LARGE, "the credential map is larger than %d bytes", CV_HSM_GCM_MAX_BYTES);
        goto out;
    }
    CV_GUARD_OUT(r, cv_record_aad_rev(tenant_id, server_id, key.ref.version, CV_RECORD_VERSION, revision, &aad));
    CV_GUARD_OUT(r, cv_buf_reserve(&rec.ct, pt_len));
    CV_GUARD_OUT(r, gcm_encrypt(app, &key.ref, &aad, (const uint8_t *)pt, pt_len, &rec));
    rec.ct.len = pt_len;
    rec.v = CV_RECORD_VERSION;
    rec.key_version = key.ref.version;
    snprintf(rec.tenant_id, sizeof(rec.tenant_id), "%s", tenant_id);
    CV_GUARD_OUT(r, cv_record_encode(&rec, &out));
    *record_out = strdup((const char *)out.data);
    if (!*record_out) {
        r = cv_fail(CV_ERR_MEMORY, "out of memory");
        goto out;
    }
    *key_version = key.ref.version;
out:
    if (pt) {
        cv_wipe(pt, strlen(pt));
        cv_json_free(pt);
    }
    cv_record_wipe(&rec);
    cv_buf_free(&aad);
    cv_buf_free(&out);
    return r;
}

cv_result cv_open_env(struct cv_app *app, const struct cv_principal *p, const struct cv_server_row *row,
                      json_t **env_out)
{
    return cv_open_env_keyed(app, p, row, NULL, env_out);
}

cv_result cv_open_env_keyed(struct cv_app *app, const struct cv_principal *p, const struct cv_server_row *row,
                            const struct cv_tenant_key_row *fetched, json_t **env_out)
{
    const char *tenant = row->tenant_id, *server = row->server_id;
    if (!row->encrypted_env) return decrypt_failed(app, p, tenant, server, row->key_version, "no record");
    /* names, expiry and revision as the service wrote them, before anything is decrypted */
    CV_GUARD(cv_record_binding_check(app, p, row));
    struct cv_record rec;
    cv_record_init(&rec);
    cv_result r = CV_OK;
    struct cv_buf aad = CV_BUF_EMPTY, pt = CV_BUF_EMPTY;
    cv_buf_init(&aad, 1024);
    cv_buf_init_secret(&pt, CV_RECORD_MAX_PLAINTEXT_BYTES);
    json_t *env = NULL;

    if (cv_failed(cv_record_decode(row->encrypted_env, strlen(row->encrypted_env), &rec))) {
        r = decrypt_failed(app, p, tenant, server, row->key_version, "malformed record");
        goto out;
    }
    if (strcmp(rec.tenant_id, tenant) != 0 || rec.key_version != row->key_version) {
        r = decrypt_failed(app, p, tenant, server, row->key_version, "record kid does not match its row");
        goto out;
    }
    struct cv_tenant_key_row key;
    if (fetched && fetched->ref.version == rec.key_version && strcmp(fetched->ref.tenant_id, tenant) == 0)
        key = *fetched; /* read with the row: no second round trip */
    else
        r = cv_store_tenant_key_get(app->store, tenant, rec.key_version, &key);
    if (r.err == CV_ERR_NOT_FOUND) {
        r = decrypt_failed(app, p, tenant, server, rec.key_version, "key version unknown");
        goto out;
    }
    if (cv_failed(r)) goto out;
    /* below the minimum decryption version, or destroyed: a clear refusal */
    CV_GUARD_OUT(r, cv_lifecycle_check_decrypt(&key));
    /* format 3 names the revision: an older record restored here does not open */
    CV_GUARD_OUT(r, cv_record_aad_rev(tenant, server, rec.key_version, rec.v, row->revision, &aad));
    CV_GUARD_OUT(r, cv_buf_reserve(&pt, rec.ct.len));
    r = gcm_decrypt(app, &key.ref, &aad, &rec, pt.data);
    if (r.err == CV_ERR_CRYPTO) {
        r = decrypt_failed(app, p, tenant, server, rec.key_version, "authentication failed");
        goto out;
    }
    if (cv_failed(r)) goto out;
    pt.len = rec.ct.len;
    json_error_t jerr;
    env = json_loadb((const char *)pt.data, pt.len, JSON_REJECT_DUPLICATES, &jerr);
    if (!json_is_object(env)) {
        r = decrypt_failed(app, p, tenant, server, rec.key_version, "plaintext is not a JSON object");
        goto out;
    }
    const char *k;
    json_t *v;
    json_object_foreach(env, k, v) {
        size_t len;
        if (!cv_env_value(v, &len, NULL)) {
            r = decrypt_failed(app, p, tenant, server, rec.key_version, "plaintext holds a value of no known shape");
            goto out;
        }
    }
    *env_out = env;
    env = NULL;
out:
    json_decref(env);
    cv_record_wipe(&rec);
    cv_buf_free(&aad);
    cv_buf_free(&pt);
    return r;
}
