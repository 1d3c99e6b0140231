/* The dependencies as a whole, for the front ends: readiness, migration, the
 * start-up schema check and the token report. Thin on purpose: the probes
 * and checks themselves live in src/hsm and src/store. */
#include <string.h>

#include "credvault/hsm_signing.h"
#include "credvault/store.h"
#include "domain/ops.h"

cv_result cv_app_migrate(const struct cv_config *cfg, const char *dir, unsigned *applied)
{
    const char *url = cfg->database_owner_url ? cfg->database_owner_url : cfg->database_url;
    CV_ENSURE(url, CV_ERR_INPUT, "set CREDVAULT_DATABASE_OWNER_URL or CREDVAULT_DATABASE_URL");
    struct cv_store_options owner = {.url = url, .password = cfg->database_password};
    return cv_store_migrate(&owner, dir, applied);
}

cv_result cv_app_check_schema(struct cv_app *app, const char *dir) { return cv_store_check_ready(app->store, dir); }

cv_result cv_app_token_report(struct cv_app *app, struct cv_token_report *out)
{
    memset(out, 0, sizeof(*out));
    CV_GUARD(cv_hsm_status_get(app->hsm, &out->hsm));
    if (cv_failed(cv_hsm_audit_key_exists(app->hsm, &out->audit_key_present))) {
        cv_error_clear();
        out->audit_key_present = 0;
    }
    return CV_OK;
}
