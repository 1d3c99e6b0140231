/* Local administration: migrations, tenants and tokens from the command line,
 * acting as the platform admin "cli". `token create` prints the new token
 * once on stdout (and nothing else there), so scripts can capture it. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli/cli.h"
#include "domain/domain.h"
#include "domain/ops.h"

int cv_cli_migrate(struct cv_cli_ctx *ctx, int argc, char **argv)
{
    const char *dir = NULL;
    char dirbuf[PATH_MAX];
    char dirhelp[PATH_MAX + 64];
    cv_cli_migrations_help(dirhelp, sizeof(dirhelp));
    struct cv_cli_option opts[] = {{"--migrations-dir", 1, dirhelp, &dir}};
    const char *pos[1];
    size_t npos;
    int rc = cv_cli_parse(argc, argv, "credvault migrate [--migrations-dir DIR]",
                          "Applies the numbered SQL migrations that are missing, each in its own\n"
                          "transaction, recorded in schema_migrations. Connects with\n"
                          "CREDVAULT_DATABASE_OWNER_URL (the role that owns the schema), or with\n"
                          "CREDVAULT_DATABASE_URL when that is unset. Refuses a schema newer than it knows.",
                          opts, 1, pos, 0, 0, &npos);
    if (rc) return rc < 0 ? CV_EXIT_OK : rc;
    struct cv_config cfg;
    if (cv_cli_config(ctx, &cfg) != 0) return CV_EXIT_FAIL;
    unsigned applied = 0;
    if (cv_failed(cv_app_migrate(&cfg, cv_cli_migrations_dir(dir, dirbuf, sizeof(dirbuf)), &applied))) {
        cv_cli_report("migrate");
        rc = CV_EXIT_FAIL;
    } else {
        printf("%u migration%s applied; the schema is current\n", applied, applied == 1 ? "" : "s");
    }
    cv_config_free(&cfg);
    return rc;
}

/* Opens HSM, store and catalog, and checks the token against the database. */

int cv_cli_tenant_create(struct cv_cli_ctx *ctx, int argc, char **argv)
{
    const char *name = NULL;
    struct cv_cli_option opts[] = {{"--name", 1, "display name (default: the id)", &name}};
    const char *pos[1];
    size_t npos;
    int rc = cv_cli_parse(argc, argv, "credvault tenant create ID [--name NAME]",
                          "Creates a tenant and its first key (generated in the HSM and stored wrapped).",
                          opts, 1, pos, 1, 1, &npos);
    if (rc) return rc < 0 ? CV_EXIT_OK : rc;
    struct cv_config cfg;
    struct cv_app *app;
    if ((rc = cv_cli_open_app(ctx, &cfg, &app)) != 0) return rc;
    struct cv_principal p;
    cv_principal_cli(&p);
    json_t *body = json_pack("{s:s, s:s}", "id", pos[0], "name", name ? name : pos[0]), *data = NULL;
    cv_result r = cv_tenant_create(app, &p, body, &data);
    json_decref(body);
    return cv_cli_close_app(app, &cfg, r, data, "tenant create");
}

int cv_cli_tenant_list(struct cv_cli_ctx *ctx, int argc, char **argv)
{
    const char *pos[1];
    size_t npos;
    int rc = cv_cli_parse(argc, argv, "credvault tenant list", "Lists tenants (JSON).", NULL, 0, pos, 0, 0, &npos);
    if (rc) return rc < 0 ? CV_EXIT_OK : rc;
    struct cv_config cfg;
    struct cv_app *app;
    if ((rc = cv_cli_open_app(ctx, &cfg, &app)) != 0) return rc;
    struct cv_principal p;
    cv_principal_cli(&p);
    json_t *data = NULL;
    cv_result r = cv_tenant_list(app, &p, "200", "0", &data);
    return cv_cli_close_app(app, &cfg, r, data, "tenant list");
}

int cv_cli_token_create(struct cv_cli_ctx *ctx, int argc, char **argv)
{
    const char *name = NULL, *role = NULL, *tenant = NULL, *server = NULL, *days = NULL, *json_flag = NULL;
    struct cv_cli_option opts[] = {
        {"--name", 1, "principal name recorded as created_by/updated_by (required)", &name},
        {"--role", 1, "admin, tenant-admin, auditor or workload (required)", &role},
        {"--tenant", 1, "tenant id (all roles but admin)", &tenant},
        {"--server", 1, "server id a workload token may read", &server},
        {"--expires-in-days", 1, "lifetime in days (default: no expiry)", &days},
        {"--json", 0, "print the whole JSON document instead of the token alone", &json_flag},
    };
    const char *pos[1];
    size_t npos;
    int rc = cv_cli_parse(argc, argv,
                          "credvault token create --name NAME --role ROLE [--tenant ID] [--server ID] "
                          "[--expires-in-days N] [--json]",
                          "Mints an API token and prints it once. Only its hash is stored.", opts,
                          sizeof(opts) / sizeof(opts[0]), pos, 0, 0, &npos);
    if (rc) return rc < 0 ? CV_EXIT_OK : rc;
    if (!name || !role) {
        fprintf(stderr, "credvault: token create needs --name and --role\n");
        return CV_EXIT_USAGE;
    }
    struct cv_config cfg;
    struct cv_app *app;
    if ((rc = cv_cli_open_app(ctx, &cfg, &app)) != 0) return rc;
    struct cv_principal p;
    cv_principal_cli(&p);
    json_t *body = json_pack("{s:s, s:s}", "name", name, "role", role);
    if (tenant) json_object_set_new(body, "tenantId", json_string(tenant));
    if (server) json_object_set_new(body, "serverId", json_string(server));
    if (days) json_object_set_new(body, "expiresInDays", json_integer(strtoll(days, NULL, 10)));
    json_t *data = NULL;
    cv_result r = cv_token_mint(app, &p, body, &data);
    json_decref(body);
    if (cv_ok(r) && !json_flag) {
        printf("%s\n", json_string_value(json_object_get(data, "token")));
        json_decref(data);
        data = NULL;
    }
    return cv_cli_close_app(app, &cfg, r, data, "token create");
}

int cv_cli_token_revoke(struct cv_cli_ctx *ctx, int argc, char **argv)
{
    const char *pos[1];
    size_t npos;
    int rc = cv_cli_parse(argc, argv, "credvault token revoke TOKEN_ID", "Revokes an API token by its id.", NULL,
                          0, pos, 1, 1, &npos);
    if (rc) return rc < 0 ? CV_EXIT_OK : rc;
    struct cv_config cfg;
    struct cv_app *app;
    if ((rc = cv_cli_open_app(ctx, &cfg, &app)) != 0) return rc;
    struct cv_principal p;
    cv_principal_cli(&p);
    cv_result r = cv_token_revoke(app, &p, pos[0]);
    if (cv_ok(r)) printf("revoked %s\n", pos[0]);
    return cv_cli_close_app(app, &cfg, r, NULL, "token revoke");
}
