/* Key setup and the start-up canary. The canary is a throwaway key wrapped
 * under each master version and kept in master_keys: if the token's master
 * key cannot unwrap it, this token is not the one this database was made
 * with, and the service refuses to start rather than fail on every read. */
#include <stdio.h>
#include <string.h>

#include "credvault/hsm_installation.h"
#include "credvault/hsm_signing.h"
#include "credvault/store_installation.h"
#include "credvault/log.h"
#include "domain/domain.h"
#include "domain/record_bind.h"
#include "domain/token_verify.h"

#define CANARY_TENANT "_canary" /* not a valid tenant id, so it can never collide */

cv_result cv_keys_init(struct cv_hsm *hsm, int hsm_only, unsigned *created)
{
    *created = 0;
    int exists = 0;
    CV_GUARD(cv_hsm_master_exists(hsm, 1, &exists));
    if (!exists) {
        CV_GUARD(hsm_only ? cv_hsm_master_create_hsm_only(hsm, 1) : cv_hsm_master_create(hsm, 1));
        (*created)++;
    } else if (hsm_only) {
        /* master keys are not modifiable: the mark is given at birth only */
        int marked = 0;
        CV_GUARD(cv_hsm_residency_hsm_only(hsm, &marked));
        CV_ENSURE(marked, CV_ERR_CONFLICT,
                  "the token's master key exists without the hsm-only mark and cannot be changed; the mark can only "
                  "be given to a new token's first master key");
    }
    struct cv_hsm_status st;
    CV_GUARD(cv_hsm_status_get(hsm, &st));
    if (!st.binding_key_present) {
        CV_GUARD(cv_hsm_binding_key_create(hsm));
        (*created)++;
    }
    /* the EC P-256 key that signs audit checkpoints (issue 5) */
    CV_GUARD(cv_hsm_audit_key_exists(hsm, &exists));
    if (!exists) {
        CV_GUARD(cv_hsm_audit_key_create(hsm));
        (*created)++;
    }
    return CV_OK;
}

cv_result cv_keys_check_residency(struct cv_app *app)
{
    if (!cv_keys_memory_residency(app)) return CV_OK;
    int marked = 0;
    CV_GUARD(cv_hsm_residency_hsm_only(app->hsm, &marked));
    CV_ENSURE(!marked, CV_ERR_CONFLICT,
              "CREDVAULT_KEY_RESIDENCY=memory refused: this token's master key is marked for hsm residency only "
              "(credvault hsm init --residency-hsm-only); the token will not give out tenant keys. Set "
              "CREDVAULT_KEY_RESIDENCY=hsm");
    cv_log(CV_LOG_INFO, "key_residency_memory", "detail",
           "tenant keys are read into locked process memory and records are encrypted in software", NULL);
    return CV_OK;
}

static cv_result make_canary(struct cv_hsm *hsm, uint32_t master_version, struct cv_key_ref *ref)
{
    memset(ref, 0, sizeof(*ref));
    snprintf(ref->tenant_id, sizeof(ref->tenant_id), "%s", CANARY_TENANT);
    ref->version = 1;
    ref->master_version = master_version;
    return cv_hsm_tenant_key_generate(hsm, ref);
}

struct verify_ctx {
    struct cv_app *app;
    cv_result r;
    uint32_t newest;
    unsigned count;
};

static int verify_one(void *arg, const struct cv_master_key_row *row)
{
    struct verify_ctx *v = arg;
    v->count++;
    if (row->state[0] == 'a' && row->version > v->newest) v->newest = row->version;
    if (cv_failed(v->r)) return 1;
    char label[64];
    snprintf(label, sizeof(label), CV_HSM_MASTER_LABEL_PREFIX "%u", row->version);
    int exists = 0;
    cv_result r = cv_hsm_master_exists(v->app->hsm, row->version, &exists);
    if (cv_ok(r) && !exists)
        r = cv_fail(CV_ERR_CONFLICT,
                    "the token has no key labelled %s, which this database's tenant keys need: "
                    "check CREDVAULT_PKCS11_TOKEN and that this is the token the database was made with",
                    label);
    if (cv_ok(r)) {
        r = cv_hsm_tenant_key_verify(v->app->hsm, &row->canary);
        if (r.err == CV_ERR_CRYPTO)
            r = cv_fail(CV_ERR_CONFLICT,
                        "the token's key %s does not open this database's canary: the token and "
                        "CREDVAULT_DATABASE_URL belong to different installations (or the key was replaced)",
                        label);
    }
    v->r = r;
    return cv_failed(r);
}

/* The token and the database must belong to the same installation. A token
 * without an id (older, or fresh) is given the database's, but only once the
 * master keys have proved it is this database's token (*unbound). */
static cv_result check_installation(struct cv_app *app, char db[CV_INSTALLATION_ID_BYTES + 1], int *unbound)
{
    char tok[CV_INSTALLATION_ID_BYTES + 1];
    CV_GUARD(cv_store_installation_get(app->store, db));
    int found = 0;
    CV_GUARD(cv_hsm_installation_get(app->hsm, tok, &found));
    *unbound = !found;
    if (found)
        CV_ENSURE(strcmp(tok, db) == 0, CV_ERR_CONFLICT,
                  "the token belongs to installation %s but the database (CREDVAULT_DATABASE_URL) to installation "
                  "%s: refusing to start; use this token's own database, or this database's token",
                  tok, db);
    return CV_OK;
}

static cv_result bind_installation(struct cv_app *app, const char *db)
{
    CV_GUARD(cv_hsm_installation_set(app->hsm, db));
    cv_log(CV_LOG_WARN, "installation_id_written", "installation", db, NULL);
    struct cv_principal p;
    cv_principal_cli(&p);
    snprintf(p.name, sizeof(p.name), "credvault");
    return cv_audit(app, &p, NULL, "installation.bind_token", db, "success");
}

cv_result cv_keys_bind_installation(struct cv_app *app, char id[CV_INSTALLATION_ID_BYTES + 1], int *written)
{
    *written = 0;
    int unbound = 0;
    CV_GUARD(check_installation(app, id, &unbound));
    if (!unbound) return CV_OK;
    /* a database that lists master keys already is this token's only if its keys open their canaries */
    struct verify_ctx v = {.app = app, .r = CV_OK, .newest = 0, .count = 0};
    CV_GUARD(cv_store_master_key_list(app->store, verify_one, &v));
    CV_GUARD(v.r);
    CV_GUARD(bind_installation(app, id));
    *written = 1;
    return CV_OK;
}

cv_result cv_keys_check_database(struct cv_app *app)
{
    /* before anything is registered: never a master key in a foreign database */
    char installation[CV_INSTALLATION_ID_BYTES + 1];
    int unbound = 0;
    CV_GUARD(check_installation(app, installation, &unbound));
    struct verify_ctx v = {.app = app, .r = CV_OK, .newest = 0, .count = 0};
    CV_GUARD(cv_store_master_key_list(app->store, verify_one, &v));
    CV_GUARD(v.r);
    if (v.count == 0) {
        int exists = 0;
        CV_GUARD(cv_hsm_master_exists(app->hsm, 1, &exists));
        CV_ENSURE(exists, CV_ERR_CONFLICT,
                  "the token has no key labelled " CV_HSM_MASTER_LABEL_PREFIX "1: run `credvault hsm init` first");
        struct cv_master_key_row row;
        memset(&row, 0, sizeof(row));
        row.version = 1;
        snprintf(row.state, sizeof(row.state), "active");
        CV_GUARD(make_canary(app->hsm, 1, &row.canary));
        CV_GUARD(cv_store_master_key_insert(app->store, &row));
        cv_log(CV_LOG_INFO, "master_key_registered", "label", CV_HSM_MASTER_LABEL_PREFIX "1", NULL);
        v.newest = 1;
    }
    CV_ENSURE(v.newest > 0, CV_ERR_CONFLICT, "the database lists no active master key");
    app->master_version = v.newest;
    if (unbound) CV_GUARD(bind_installation(app, installation));
    /* tokens and records from before their HSM bindings: bound once, by the first start after the upgrade */
    CV_GUARD(cv_tokens_bind_legacy(app));
    return cv_records_bind_legacy(app);
}
