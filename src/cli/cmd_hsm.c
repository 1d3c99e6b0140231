/* `credvault hsm init` and `credvault hsm status`: token set-up and a report
 * of what the service will use. Neither prints key material or the PIN. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli/cli.h"
#include "domain/domain.h"
#include "domain/ops.h"

static int open_hsm(struct cv_cli_ctx *ctx, struct cv_config *cfg, struct cv_app **app, unsigned extra)
{
    if (cv_cli_config(ctx, cfg) != 0) return CV_EXIT_FAIL;
    if (cv_failed(cv_app_open(cfg, CV_APP_HSM | extra, app))) {
        cv_cli_report("HSM");
        cv_config_free(cfg);
        return CV_EXIT_FAIL;
    }
    return 0;
}

/* The database's installation id into the token, when there is a migrated
 * database to read it from. Anything in the way is said, not fatal: the keys
 * are made, and the first start writes the id (keys.c). */
static void write_installation(struct cv_config *cfg)
{
    const char *later = "it is written into the token at the first start (`credvault serve` or any command) "
                        "with this token's migrated database";
    if (!cfg->database_url) {
        printf("installation id: not written yet (CREDVAULT_DATABASE_URL is not set); %s\n", later);
        return;
    }
    struct cv_app *app = NULL;
    char id[37]; /* a UUID */
    int written = 0;
    cv_result r = cv_app_open(cfg, CV_APP_HSM | CV_APP_STORE, &app);
    if (cv_ok(r)) r = cv_keys_bind_installation(app, id, &written);
    if (cv_failed(r)) {
        fprintf(stderr, "credvault: installation id not written into the token: %s; %s\n", cv_error_message(), later);
        cv_error_clear();
    } else if (written) {
        printf("installation id %s (the database's) written into the token\n", id);
    } else {
        printf("installation id %s: the token and the database hold it already\n", id);
    }
    cv_app_close(app);
}

int cv_cli_hsm_init(struct cv_cli_ctx *ctx, int argc, char **argv)
{
    const char *pos[1];
    size_t npos;
    const char *hsm_only = NULL;
    struct cv_cli_option opts[] = {{"--residency-hsm-only", 0,
                                    "mark the master key so that the token refuses to give out tenant keys: "
                                    "CREDVAULT_KEY_RESIDENCY=memory cannot run on this token",
                                    &hsm_only}};
    int rc = cv_cli_parse(argc, argv, "credvault hsm init [--residency-hsm-only]",
                          "Creates, inside the configured PKCS#11 token, master key 1\n"
                          "(credvault-master-1: AES-256, sensitive, never extractable, wrap/unwrap only),\n"
                          "the HMAC key that binds wrapped tenant keys to their tenant and version,\n"
                          "and the EC P-256 key that signs audit checkpoints (credvault-audit-1).\n"
                          "Keys that exist are kept; running it again changes nothing and exits 0.\n"
                          "With CREDVAULT_DATABASE_URL set to a migrated database, it also writes that\n"
                          "database's installation id into the token (otherwise the first start does).",
                          opts, 1, pos, 0, 0, &npos);
    if (rc) return rc < 0 ? CV_EXIT_OK : rc;
    struct cv_config cfg;
    struct cv_app *app;
    if ((rc = open_hsm(ctx, &cfg, &app, 0)) != 0) return rc;
    unsigned created = 0;
    cv_result r = cv_keys_init(app->hsm, hsm_only != NULL, &created);
    if (cv_failed(r)) {
        cv_cli_report("hsm init");
        rc = CV_EXIT_FAIL;
    } else if (created == 0) {
        printf("the keys exist already: " CV_HSM_MASTER_LABEL_PREFIX "1, " CV_HSM_BINDING_LABEL " and "
               CV_HSM_AUDIT_KEY_LABEL "\n");
    } else {
        printf("created %u key%s in the token: " CV_HSM_MASTER_LABEL_PREFIX "1, " CV_HSM_BINDING_LABEL " and "
               CV_HSM_AUDIT_KEY_LABEL " are present\n", created, created == 1 ? "" : "s");
    }
    cv_app_close(app);
    if (rc == 0) write_installation(&cfg);
    cv_config_free(&cfg);
    return rc;
}

static json_t *status_json(const struct cv_hsm_status *st)
{
    json_t *mechs = json_object(), *masters = json_array(), *gaps = json_array();
    for (size_t i = 0; i < st->mechanisms_count; i++) {
        json_object_set_new(mechs, st->mechanisms[i].name, json_boolean(st->mechanisms[i].present));
        if (st->mechanisms[i].disables[0])
            json_array_append_new(gaps, json_pack("{s:s, s:s}", "mechanism", st->mechanisms[i].name, "disables",
                                                  st->mechanisms[i].disables));
    }
    for (size_t i = 0; i < st->master_versions_count; i++)
        json_array_append_new(masters, json_integer(st->master_versions[i]));
    return json_pack("{s:s, s:s, s:{s:s, s:s, s:s, s:s}, s:s, s:s, s:s, s:b, s:o, s:b, s:o, s:i, s:o, s:s}", "module",
                     st->module_path, "library", st->library_description, "token", "label", st->token_label,
                     "serial", st->token_serial, "model", st->token_model, "manufacturer", st->manufacturer,
                     "profile", st->profile, "wrapMechanism", st->wrap_mechanism, "gcmIvSource",
                     st->gcm_iv_source, "loggedIn", st->logged_in, "masterKeyVersions", masters,
                     "bindingKeyPresent", st->binding_key_present, "mechanisms", mechs, "cachedKeys",
                     (int)st->cached_keys, "gaps", gaps, "residency", st->residency_hsm_only ? "hsm-only" : "any");
}

int cv_cli_hsm_status(struct cv_cli_ctx *ctx, int argc, char **argv)
{
    const char *json_flag = NULL;
    struct cv_cli_option opts[] = {{"--json", 0, "print one JSON object for machines", &json_flag}};
    const char *pos[1];
    size_t npos;
    int rc = cv_cli_parse(argc, argv, "credvault hsm status [--json]",
                          "Shows the PKCS#11 module, the token (label, serial, model), the mechanisms\n"
                          "credvault needs and whether the token has them, the quirk profile chosen,\n"
                          "the master key versions present and whether login works.",
                          opts, 1, pos, 0, 0, &npos);
    if (rc) return rc < 0 ? CV_EXIT_OK : rc;
    struct cv_config cfg;
    struct cv_app *app;
    /* a token that lacks mechanisms is reported, not refused */
    if ((rc = open_hsm(ctx, &cfg, &app, CV_APP_HSM_INSPECT)) != 0) return rc;
    struct cv_token_report report;
    if (cv_failed(cv_app_token_report(app, &report))) {
        cv_cli_report("hsm status");
        rc = CV_EXIT_FAIL;
        goto out;
    }
    const struct cv_hsm_status st = report.hsm;
    if (st.gaps) rc = CV_EXIT_FAIL; /* the report is printed all the same */
    int audit_key = report.audit_key_present;
    if (json_flag) {
        json_t *j = status_json(&st);
        json_object_set_new(j, "auditKeyPresent", json_boolean(audit_key));
        char *s = json_dumps(j, JSON_INDENT(2));
        printf("%s\n", s ? s : "{}");
        cv_json_free(s);
        json_decref(j);
        goto out;
    }
    printf("module:        %s (%s)\n", st.module_path, st.library_description);
    printf("token:         %s (serial %s, model %s, %s)\n", st.token_label, st.token_serial, st.token_model,
           st.manufacturer);
    printf("login:         %s\n", st.logged_in ? "ok" : "failed");
    printf("profile:       %s (wrap with %s, GCM IV made by %s)\n", st.profile, st.wrap_mechanism,
           st.gcm_iv_source);
    printf("mechanisms:   ");
    for (size_t i = 0; i < st.mechanisms_count; i++)
        printf(" %s%s", st.mechanisms[i].name, st.mechanisms[i].present ? "" : " (missing)");
    for (size_t i = 0; i < st.mechanisms_count; i++)
        if (st.mechanisms[i].disables[0])
            printf("\ngap:           %s missing: %s", st.mechanisms[i].name, st.mechanisms[i].disables);
    printf("\nmaster keys:  ");
    if (st.master_versions_count == 0) printf(" none (run `credvault hsm init`)");
    for (size_t i = 0; i < st.master_versions_count; i++)
        printf(" " CV_HSM_MASTER_LABEL_PREFIX "%u", st.master_versions[i]);
    if (st.master_versions_count)
        printf("\nresidency:     %s", st.residency_hsm_only
                                           ? "hsm only (the master key's CKA_UNWRAP_TEMPLATE refuses readable tenant keys)"
                                           : "hsm or memory (the master key carries no hsm-only mark)");
    printf("\nbinding key:   %s\n", st.binding_key_present ? CV_HSM_BINDING_LABEL : "none (run `credvault hsm init`)");
    printf("audit key:     %s\n", audit_key ? CV_HSM_AUDIT_KEY_LABEL " (EC P-256, signs audit checkpoints)"
                                             : "none (run `credvault hsm init`)");
out:
    cv_app_close(app);
    cv_config_free(&cfg);
    return rc;
}
