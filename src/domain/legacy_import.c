/* The legacy import use case: each GigaChad GRC record is checked, decrypted
 * in software with the legacy key, held as plaintext only until cv_seal_env
 * has sealed it under the tenant's HSM-held key, and stored with its server
 * id, name, creator and dates. Derived keys and plaintext are wiped; values
 * never reach a report, a log line or an error message. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "credvault/crypto_legacy.h"
#include "credvault/log.h"
#include "domain/audit.h"
#include "domain/legacy.h"
#include "domain/record_bind.h"
#include "domain/seal.h"
#include "credvault/envname.h"

#define ACTION "credentials.import"
#define REASON_AUTH "authentication failed: the record was changed, or it was encrypted under another key"

struct import {
    struct cv_app *app;
    const struct cv_principal *p;
    const struct cv_legacy_import_options *opt;
    uint8_t *fixed_key; /* scrypt(key, "mcp-salt"), secret memory; derived on first use */
    char reason[CV_LEGACY_REASON_MAX_BYTES + 1];
};

/* How one row fared before anything is written. */
enum step { STEP_OK, STEP_FAILED, STEP_AUTH_FAILED };

static enum step failed(struct import *im, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static enum step failed(struct import *im, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(im->reason, sizeof(im->reason), fmt, ap);
    va_end(ap);
    return STEP_FAILED;
}

static int utf8_valid(const uint8_t *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        uint8_t c = s[i];
        size_t len = c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : (c & 0xf8) == 0xf0 ? 4 : 0;
        if (len == 0 || i + len > n) return 0;
        uint32_t cp = len == 1 ? c : len == 2 ? c & 0x1fu : len == 3 ? c & 0x0fu : c & 0x07u;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xc0) != 0x80) return 0;
            cp = cp << 6 | (s[i + k] & 0x3fu);
        }
        /* shortest form only, no surrogates, nothing past U+10FFFF */
        if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10ffff ||
            (cp >= 0xd800 && cp <= 0xdfff))
            return 0;
        i += len;
    }
    return 1;
}

/* Everything that needs no key: the row's own columns and its template. */
static enum step check_columns(struct import *im, const struct cv_legacy_row *row, json_t **tmpl)
{
    if (row->defect[0]) return failed(im, "%s", row->defect);
    if (!cv_server_id_valid(row->server_id))
        return failed(im, "server_id must be 1 to %d of A-Z a-z 0-9 . _ - (starting with a letter or digit)",
                      CV_SERVER_ID_MAX_BYTES);
    if (!cv_template_id_valid(row->template_id))
        return failed(im, "template_id must be 1 to %d of A-Z a-z 0-9 . _ - (starting with a letter or digit)",
                      CV_TEMPLATE_ID_MAX_BYTES);
    *tmpl = cv_catalog_template(im->app->catalog, row->template_id);
    if (!*tmpl)
        return failed(im, "template '%s' is not in the catalog (CREDVAULT_TEMPLATES_FILE can add it)",
                      row->template_id);
    if (row->has_server_name &&
        (!row->server_name[0] || !utf8_valid((const uint8_t *)row->server_name, strlen(row->server_name))))
        return failed(im, "server_name is empty or not UTF-8");
    if (row->has_created_by && !utf8_valid((const uint8_t *)row->created_by, strlen(row->created_by)))
        return failed(im, "created_by is not UTF-8");
    return STEP_OK;
}

/* The key for a record: the fixed-salt key is derived once for the run; a
 * record with its own salt costs one scrypt (about 60 ms). */
static cv_result record_key(struct import *im, const struct cv_legacy_record *rec, uint8_t key[CV_LEGACY_KEY_BYTES])
{
    if (rec->has_salt)
        return cv_legacy_kdf(im->opt->key, im->opt->key_len, rec->salt, sizeof(rec->salt), key);
    if (!im->fixed_key) {
        uint8_t *k = cv_secret_alloc(CV_LEGACY_KEY_BYTES);
        CV_ENSURE(k != NULL, CV_ERR_MEMORY, "out of memory");
        cv_result r = cv_legacy_kdf(im->opt->key, im->opt->key_len, (const uint8_t *)CV_LEGACY_FIXED_SALT,
                                    strlen(CV_LEGACY_FIXED_SALT), k);
        if (cv_failed(r)) {
            cv_secret_free(k);
            return r;
        }
        im->fixed_key = k;
    }
    memcpy(key, im->fixed_key, CV_LEGACY_KEY_BYTES);
    return CV_OK;
}

/* Decrypts the row's record into a JSON object of strings (wiped on
 * decref). A failure of the row sets *step; a returned error is fatal.
 * *opened tells whether the key authenticated the record at all. */
static cv_result open_record(struct import *im, const struct cv_legacy_row *row, json_t **env, enum step *step,
                             int *opened)
{
    *env = NULL;
    *step = STEP_OK;
    *opened = 0;
    struct cv_legacy_record rec;
    cv_legacy_record_init(&rec);
    uint8_t key[CV_LEGACY_KEY_BYTES];
    uint8_t *pt = NULL;
    cv_result r = CV_OK;
    if (cv_failed(cv_legacy_record_decode(row->encrypted_env, strlen(row->encrypted_env), &rec))) {
        *step = failed(im, "%s", cv_error_message()); /* names a member, never quotes one */
        cv_error_clear();
        goto out;
    }
    CV_GUARD_OUT(r, record_key(im, &rec, key));
    pt = cv_secret_alloc(rec.ct.len);
    if (!pt) {
        r = cv_fail(CV_ERR_MEMORY, "out of memory");
        goto out;
    }
    r = cv_legacy_gcm_decrypt(key, rec.iv, rec.ct.data, rec.ct.len, rec.tag, pt);
    if (r.err == CV_ERR_CRYPTO) {
        cv_error_clear();
        r = CV_OK;
        snprintf(im->reason, sizeof(im->reason), "%s", REASON_AUTH);
        *step = STEP_AUTH_FAILED;
        goto out;
    }
    if (cv_failed(r)) goto out;
    *opened = 1;
    json_error_t jerr; /* its text would quote plaintext: never used */
    json_t *j = json_loadb((const char *)pt, rec.ct.len, JSON_REJECT_DUPLICATES, &jerr);
    int strings = json_is_object(j);
    const char *k;
    json_t *v;
    json_object_foreach(j, k, v) strings &= json_is_string(v);
    if (!strings) {
        json_decref(j);
        *step = failed(im, "the decrypted record is not a JSON object of strings");
        goto out;
    }
    *env = j;
out:
    cv_wipe(key, sizeof(key));
    if (pt) cv_secret_free(pt); /* wiped: the map lives on only as *env */
    cv_legacy_record_wipe(&rec);
    return r;
}

/* The rules a deploy applies to names and values (src/domain/credentials.c),
 * so that an import cannot store what a deploy would refuse. Reasons name
 * keys, never values. The template's requiredEnv is not enforced: a record
 * that served GigaChad is imported as it is; validate it afterwards. */
static enum step check_env(struct import *im, json_t *env)
{
    const struct cv_config *cfg = im->app->cfg;
    if (json_object_size(env) > cfg->max_env_keys)
        return failed(im, "the record has more than %u credentials (CREDVAULT_MAX_ENV_KEYS)", cfg->max_env_keys);
    const char *k;
    json_t *v;
    json_object_foreach(env, k, v) {
        size_t kn = strlen(k);
        if (kn == 0 || kn > cfg->max_env_name_bytes)
            return failed(im, "a credential name is longer than %zu bytes (CREDVAULT_MAX_ENV_NAME_BYTES)",
                          cfg->max_env_name_bytes);
        if (!cv_env_name_valid(k))
            return failed(im, "credential name '%.64s' is not a valid environment variable name", k);
        /* only the forbidden family: the template's allow-list is not applied
         * to a record that served GigaChad (see the comment above) */
        const char *why = cv_env_name_forbidden(k);
        if (why) return failed(im, "credential name '%.64s' %s; refused whatever the template says", k, why);
        if (strlen(json_string_value(v)) != json_string_length(v))
            return failed(im, "the value of '%.64s' holds a NUL character", k);
        if (json_string_length(v) > cfg->max_env_value_bytes)
            return failed(im, "the value of '%.64s' is longer than %zu bytes (CREDVAULT_MAX_ENV_VALUE_BYTES)", k,
                          cfg->max_env_value_bytes);
    }
    return STEP_OK;
}

/* The legacy configured_integrations (a JSON array of names) as compact
 * JSON, or the catalog's reading of the map when the column was NULL. */
static enum step integrations_of(struct import *im, const struct cv_legacy_row *row, json_t *env, char **out)
{
    *out = NULL;
    json_t *a = NULL;
    if (row->configured_integrations) {
        json_error_t jerr;
        a = json_loads(row->configured_integrations, JSON_REJECT_DUPLICATES, &jerr);
        int ok = json_is_array(a) && json_array_size(a) <= CV_LEGACY_INTEGRATIONS_MAX;
        size_t i;
        json_t *v;
        json_array_foreach(a, i, v) ok &= json_is_string(v) && json_string_length(v) >= 1 &&
                                          json_string_length(v) <= CV_TEMPLATE_ID_MAX_BYTES;
        if (!ok) {
            json_decref(a);
            return failed(im, "configured_integrations must be a JSON array of at most %d names",
                          CV_LEGACY_INTEGRATIONS_MAX);
        }
    } else {
        a = cv_catalog_configured_integrations(im->app->catalog, env);
    }
    *out = cv_json_dump_malloc(a);
    return *out ? STEP_OK : failed(im, "out of memory");
}

static json_t *names_of(json_t *env)
{
    json_t *a = json_array();
    const char *k;
    json_t *v;
    json_object_foreach(env, k, v) json_array_append_new(a, json_string(k));
    return a;
}

/* Seals and stores one checked map. `outcome` gets IMPORTED, PRESENT (the id
 * appeared meanwhile) or FAILED (reason set); a returned error is fatal. */
static cv_result store_row(struct import *im, const struct cv_legacy_row *row, json_t *tmpl, json_t *env,
                           char *integrations, enum cv_legacy_outcome *outcome)
{
    struct cv_server_row s;
    memset(&s, 0, sizeof(s));
    const char *tenant = im->opt->tenant_id;
    snprintf(s.tenant_id, sizeof(s.tenant_id), "%s", tenant);
    snprintf(s.server_id, sizeof(s.server_id), "%s", row->server_id);
    snprintf(s.template_id, sizeof(s.template_id), "%s", row->template_id);
    snprintf(s.server_name, sizeof(s.server_name), "%s",
             row->has_server_name ? row->server_name : json_string_value(json_object_get(tmpl, "name")));
    snprintf(s.created_by, sizeof(s.created_by), "%s", row->has_created_by ? row->created_by : "");
    /* the record's last change is the legacy one, by its creator as far as
     * anyone knows; the import itself is in the audit trail */
    snprintf(s.updated_by, sizeof(s.updated_by), "%s", s.created_by);
    s.created_at_ms = row->has_created_at ? row->created_at_ms : 0;
    s.last_updated_ms = row->has_last_updated ? row->last_updated_ms : s.created_at_ms;
    s.configured_integrations = integrations;
    s.credential_names = cv_json_dump_malloc(names_of(env));
    cv_result r = CV_OK;
    if (!s.credential_names) {
        r = cv_fail(CV_ERR_MEMORY, "out of memory");
        goto out;
    }
    s.revision = 1;
    r = cv_seal_env(im->app, tenant, s.server_id, 1, env, &s.encrypted_env, &s.key_version);
    if (cv_ok(r)) r = cv_record_binding_make(im->app->hsm, &s);
    if (r.err == CV_ERR_TOO_LARGE || r.err == CV_ERR_INPUT) {
        failed(im, "%s", cv_error_message());
        cv_error_clear();
        *outcome = CV_LEGACY_FAILED;
        r = CV_OK;
        goto out;
    }
    if (cv_failed(r)) goto out;
    /* fail closed: the import's event commits with the record, or neither */
    struct cv_audit_event ev;
    cv_audit_event_init(&ev, im->p, tenant, ACTION, s.server_id, "success");
    r = cv_audit_change(im->app, cv_store_server_import(im->app->store, &s, &ev), 1);
    if (r.err == CV_ERR_CONFLICT) {
        cv_error_clear();
        *outcome = CV_LEGACY_PRESENT;
        r = CV_OK;
        goto out;
    }
    if (r.err == CV_ERR_INPUT) {
        failed(im, "the database refused a value of this row");
        cv_error_clear();
        *outcome = CV_LEGACY_FAILED;
        r = CV_OK;
        goto out;
    }
    if (cv_failed(r)) goto out;
    *outcome = CV_LEGACY_IMPORTED;
out:
    s.configured_integrations = NULL; /* the caller's */
    cv_server_row_free(&s);
    return r;
}

/* One row of the writing (or dry) pass. */
static cv_result import_row(struct import *im, const struct cv_legacy_row *row, enum cv_legacy_outcome *outcome)
{
    *outcome = CV_LEGACY_FAILED;
    im->reason[0] = '\0';
    json_t *tmpl = NULL, *env = NULL;
    char *integrations = NULL;
    cv_result r = CV_OK;
    if (check_columns(im, row, &tmpl) != STEP_OK) return CV_OK;

    /* a server id the tenant has is left alone: re-runs import nothing twice */
    struct cv_server_row existing;
    r = cv_store_server_get(im->app->store, im->opt->tenant_id, row->server_id, 0, &existing);
    cv_server_row_free(&existing);
    if (cv_ok(r)) {
        *outcome = CV_LEGACY_PRESENT;
        return CV_OK;
    }
    if (r.err != CV_ERR_NOT_FOUND) return r;
    cv_error_clear();
    r = CV_OK;

    enum step step;
    int opened;
    CV_GUARD_OUT(r, open_record(im, row, &env, &step, &opened));
    if (step != STEP_OK) goto out;
    if (check_env(im, env) != STEP_OK || integrations_of(im, row, env, &integrations) != STEP_OK) goto out;
    if (im->opt->dry_run) {
        *outcome = CV_LEGACY_WOULD_IMPORT;
        goto out;
    }
    CV_GUARD_OUT(r, store_row(im, row, tmpl, env, integrations, outcome));
out:
    json_decref(env); /* the wiping allocator clears the plaintext */
    free(integrations);
    return r;
}

/* Tries the key on the first well-formed records; CV_ERR_AUTH when it opens none. */
static cv_result probe_key(struct import *im, struct cv_legacy_source *src, struct cv_legacy_row *row)
{
    CV_GUARD(src->rewind(src->impl));
    unsigned tried = 0, opened = 0;
    while (tried < CV_LEGACY_KEY_PROBE_ROWS && opened == 0) {
        int done;
        CV_GUARD(src->next(src->impl, row, &done));
        if (done) break;
        json_t *tmpl = NULL, *env = NULL;
        if (check_columns(im, row, &tmpl) != STEP_OK) continue;
        enum step step;
        int authenticated;
        CV_GUARD(open_record(im, row, &env, &step, &authenticated));
        json_decref(env);
        opened += authenticated;
        tried += authenticated || step == STEP_AUTH_FAILED;
    }
    if (tried > 0 && opened == 0) {
        char n[16];
        snprintf(n, sizeof(n), "%u", tried);
        cv_log(CV_LOG_INFO, "legacy_key_wrong", "tenant", im->opt->tenant_id, "records_tried", n, NULL);
        CV_BAIL(CV_ERR_AUTH,
                "the legacy key opens none of the %u record%s it was tried on: it is not the key these records "
                "were written with; nothing was imported",
                tried, tried == 1 ? "" : "s");
    }
    return CV_OK;
}

cv_result cv_legacy_import(struct cv_app *app, const struct cv_principal *p, struct cv_legacy_source *src,
                           const struct cv_legacy_import_options *opt, struct cv_legacy_summary *summary)
{
    memset(summary, 0, sizeof(*summary));
    CV_ENSURE(p->role == CV_ROLE_ADMIN, CV_ERR_FORBIDDEN, "the legacy import is a platform administrator's action");
    CV_ENSURE(opt->key && opt->key_len >= 1 && opt->key_len <= CV_LEGACY_PASSPHRASE_MAX_BYTES, CV_ERR_INPUT,
              "the legacy key must be 1 to %d bytes", CV_LEGACY_PASSPHRASE_MAX_BYTES);
    /* GigaChad read it as a UTF-8 string: other bytes would derive another key */
    CV_ENSURE(utf8_valid(opt->key, opt->key_len), CV_ERR_INPUT, "the legacy key is not valid UTF-8");
    struct cv_tenant_row t;
    cv_result r = cv_store_tenant_get(app->store, opt->tenant_id, &t);
    if (r.err == CV_ERR_NOT_FOUND) return cv_fail(CV_ERR_NOT_FOUND, "tenant %s not found", opt->tenant_id);
    CV_GUARD(r);

    struct import im = {.app = app, .p = p, .opt = opt};
    struct cv_legacy_row row;
    memset(&row, 0, sizeof(row));
    uint64_t total = 0;
    CV_GUARD_OUT(r, src->count(src->impl, &total));
    CV_GUARD_OUT(r, probe_key(&im, src, &row));

    CV_GUARD_OUT(r, src->rewind(src->impl));
    for (;;) {
        int done;
        CV_GUARD_OUT(r, src->next(src->impl, &row, &done));
        if (done) break;
        enum cv_legacy_outcome outcome;
        CV_GUARD_OUT(r, import_row(&im, &row, &outcome));
        summary->total++;
        if (outcome == CV_LEGACY_IMPORTED || outcome == CV_LEGACY_WOULD_IMPORT) summary->imported++;
        else if (outcome == CV_LEGACY_PRESENT) summary->present++;
        else summary->failed++;
        const struct cv_legacy_result res = {.ordinal = row.ordinal,
                                             .legacy_id = row.id,
                                             .server_id = row.server_id,
                                             .outcome = outcome,
                                             .reason = outcome == CV_LEGACY_FAILED ? im.reason : NULL};
        if (opt->report) opt->report(opt->arg, &res);
        if (opt->progress) opt->progress(opt->arg, summary->total, total > summary->total ? total : summary->total,
                                         summary);
    }
out:
    cv_legacy_row_free(&row);
    if (im.fixed_key) cv_secret_free(im.fixed_key);
    return r;
}
