/* What the front ends ask of the service's dependencies as a whole:
 * readiness, schema migration, the start-up schema check and the token's
 * report. They come here so that http and cli never call the hsm or the
 * store themselves (the layer check in scripts/check-layers holds them to it). */
#ifndef CREDVAULT_DOMAIN_OPS_H
#define CREDVAULT_DOMAIN_OPS_H

#include "credvault/config.h"
#include "credvault/hsm.h"
#include "credvault/result.h"
#include "domain/domain.h"

/* /readyz: a token session answers and its login holds, and the database
 * answers. CV_ERR_UNAVAILABLE (code "not_ready", naming each part)
 * otherwise; neither probe's own error reaches the caller. Answers within
 * a second whatever the dependencies do (readiness.c: the probes run on
 * their own thread). */
CV_RESULT cv_app_ready(struct cv_app *app);
/* Ends the probe thread (cv_app_close does). */
void cv_app_ready_stop(struct cv_app *app);

/* `credvault migrate`: applies the migrations in `dir` as the schema's owner
 * (CREDVAULT_DATABASE_OWNER_URL, else CREDVAULT_DATABASE_URL); `applied`
 * gets how many were applied now. */
CV_RESULT cv_app_migrate(const struct cv_config *cfg, const char *dir, unsigned *applied);

/* At serve start: the schema is the newest this binary knows (from `dir`)
 * and the connected role is not privileged. */
CV_RESULT cv_app_check_schema(struct cv_app *app, const char *dir);

/* `credvault hsm status`: the token's report and whether the audit signing
 * key is there (a failed look-up reads as absent: the report still prints). */
struct cv_token_report {
    struct cv_hsm_status hsm;
    int audit_key_present;
};
CV_RESULT cv_app_token_report(struct cv_app *app, struct cv_token_report *out);

/* `credvault version --json` and the build-info metric: the run-time versions
 * of OpenSSL, libpq and cjose as {"openssl": …, "libpq": …, "cjose": …}
 * (a new reference; NULL only when out of memory). */
json_t *cv_app_library_versions(void);

#endif
