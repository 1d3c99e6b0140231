/* Wires the service context: HSM, store and template catalog, opened in
 * that order and closed in reverse. Holds no secret itself: the PIN and the
 * database password stay in the configuration's secret memory. */
#include <stdlib.h>
#include <string.h>

#include "domain/audit.h"
#include "domain/domain.h"
#include "domain/ops.h"
#include "domain/token_cache.h"
#include "domain/token_verify.h"

void cv_app_database_failure(char *buf, size_t n) { cv_store_connect_failure(buf, n); }

cv_result cv_app_open(const struct cv_config *cfg, unsigned parts, struct cv_app **out)
{
    cv_result r = CV_OK;
    struct cv_app *app = calloc(1, sizeof(*app));
    CV_ENSURE(app != NULL, CV_ERR_MEMORY, "out of memory");
    app->cfg = cfg;
    app->master_version = 1;
    CV_GUARD_OUT(r, cv_metrics_new(&app->metrics));
    CV_GUARD_OUT(r, cv_token_memo_new(&app->token_memo));
    CV_GUARD_OUT(r, cv_token_cache_new(&app->token_cache));
    if (parts & CV_APP_HSM) {
        if (!cfg->pkcs11_token || !cfg->hsm_pin) {
            r = cv_fail(CV_ERR_INPUT, "the HSM needs CREDVAULT_PKCS11_TOKEN and CREDVAULT_HSM_PIN_FILE (or CREDVAULT_HSM_PIN)");
            goto out;
        }
        struct cv_hsm_options ho = {
            .module_path = cfg->pkcs11_module,
            .token = cfg->pkcs11_token,
            .pin = cfg->hsm_pin,
            .sessions = cfg->hsm_sessions,
            .retries = cfg->hsm_retries,
            .backoff_ms = cfg->hsm_backoff_ms,
            .key_cache_size = cfg->key_cache_size,
            .metrics = app->metrics,
            .inspect = (parts & CV_APP_HSM_INSPECT) != 0,
        };
        CV_GUARD_OUT(r, cv_hsm_open(&ho, &app->hsm));
    }
    if (parts & CV_APP_STORE) {
        if (!cfg->database_url) {
            r = cv_fail(CV_ERR_INPUT, "CREDVAULT_DATABASE_URL is not set");
            goto out;
        }
        struct cv_store_options so = {
            .url = cfg->database_url, .password = cfg->database_password, .metrics = app->metrics,
            .statement_timeout_ms = cfg->database_timeout_ms};
        CV_GUARD_OUT(r, cv_store_open(&so, &app->store));
    }
    if (parts & CV_APP_CATALOG) CV_GUARD_OUT(r, cv_catalog_load(cfg->templates_file, &app->catalog));
    /* every audit event this process writes carries the token's anchor */
    if (app->hsm && app->store) cv_store_set_audit_mac(app->store, cv_audit_anchor_hook, app);
    /* the chain hashes are computed here, in the service (migration 0019) */
    if (app->store) cv_store_set_audit_hash(app->store, cv_audit_hash_hook, NULL);
out:
    if (cv_failed(r)) {
        cv_app_close(app);
        return r;
    }
    *out = app;
    return CV_OK;
}

void cv_app_close(struct cv_app *app)
{
    if (!app) return;
    cv_app_ready_stop(app);
    cv_audit_sealer_stop(app);
    cv_oidc_close(app->oidc);
    if (app->catalog) cv_catalog_free(app->catalog);
    if (app->store) cv_store_close(app->store);
    if (app->hsm) cv_hsm_close(app->hsm);
    cv_metrics_free(app->metrics);
    cv_token_memo_free(app->token_memo);
    cv_token_cache_free(app->token_cache);
    free(app);
}
