/* Option parsing and shared plumbing for subcommands: long options only,
 * exit 2 with a usage line on anything unknown. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "credvault/log.h"
#include "domain/domain.h"

int cv_cli_parse(int argc, char **argv, const char *usage_line, const char *description,
                 struct cv_cli_option *opts, size_t nopts, const char **pos, size_t min_pos,
                 size_t max_pos, size_t *npos)
{
    *npos = 0;
    int only_pos = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!only_pos && strcmp(a, "--") == 0) {
            only_pos = 1;
            continue;
        }
        if (!only_pos && (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0)) {
            printf("usage: %s\n\n%s\n", usage_line, description);
            if (nopts) printf("\noptions:\n");
            for (size_t o = 0; o < nopts; o++)
                printf("  %s%s\n      %s\n", opts[o].name, opts[o].takes_value ? " VALUE" : "", opts[o].help);
            return -1;
        }
        if (!only_pos && a[0] == '-' && a[1] != '\0') {
            size_t n = strcspn(a, "=");
            struct cv_cli_option *match = NULL;
            for (size_t o = 0; o < nopts; o++)
                if (strlen(opts[o].name) == n && strncmp(opts[o].name, a, n) == 0) match = &opts[o];
            if (!match) {
                fprintf(stderr, "credvault: unknown option %s\nusage: %s\n", a, usage_line);
                return CV_EXIT_USAGE;
            }
            if (!match->takes_value) {
                if (a[n] == '=') {
                    fprintf(stderr, "credvault: %s takes no value\nusage: %s\n", match->name, usage_line);
                    return CV_EXIT_USAGE;
                }
                *match->value = "1";
            } else if (a[n] == '=') {
                *match->value = a + n + 1;
            } else if (i + 1 < argc) {
                *match->value = argv[++i];
            } else {
                fprintf(stderr, "credvault: %s needs a value\nusage: %s\n", match->name, usage_line);
                return CV_EXIT_USAGE;
            }
            continue;
        }
        if (*npos >= max_pos) {
            fprintf(stderr, "credvault: unexpected argument %s\nusage: %s\n", a, usage_line);
            return CV_EXIT_USAGE;
        }
        pos[(*npos)++] = a;
    }
    if (*npos < min_pos) {
        fprintf(stderr, "usage: %s\n", usage_line);
        return CV_EXIT_USAGE;
    }
    return 0;
}

void cv_cli_report(const char *what)
{
    /* "database unavailable" alone does not say what to fix: add which host
     * and port libpq tried and why it failed (never the password) */
    char why[512] = "";
    if (cv_error_category() == CV_ERR_UNAVAILABLE) cv_app_database_failure(why, sizeof(why));
    if (why[0] && !strstr(cv_error_message(), why))
        fprintf(stderr, "credvault: %s: %s: %s\n", what, cv_error_message(), why);
    else
        fprintf(stderr, "credvault: %s: %s\n", what, cv_error_message());
}

int cv_cli_config(struct cv_cli_ctx *ctx, struct cv_config *cfg)
{
    if (cv_failed(cv_config_load(cfg, ctx->config_file))) {
        cv_cli_report("configuration");
        cv_config_free(cfg);
        return CV_EXIT_FAIL;
    }
    /* read once: the PIN stays in secret memory, not in /proc/<pid>/environ */
    cv_config_scrub_environment();
    enum cv_log_level level;
    if (cv_log_level_parse(cfg->log_level, &level) != 0) {
        fprintf(stderr, "credvault: configuration: CREDVAULT_LOG_LEVEL must be error, warn, info or debug\n");
        cv_config_free(cfg);
        return CV_EXIT_FAIL;
    }
    /* one-shot commands print their own results; their library chatter is
     * only wanted when asked for explicitly */
    if (!ctx->serving && level == CV_LOG_INFO && !getenv("CREDVAULT_LOG_LEVEL")) level = CV_LOG_WARN;
    cv_log_set_level(level);
    return 0;
}

int cv_cli_print_json(json_t *j)
{
    char *s = json_dumps(j, JSON_INDENT(2));
    printf("%s\n", s ? s : "null");
    cv_json_free(s);
    return CV_EXIT_OK;
}

int cv_cli_open_app(struct cv_cli_ctx *ctx, struct cv_config *cfg, struct cv_app **app)
{
    if (cv_cli_config(ctx, cfg) != 0) return CV_EXIT_FAIL;
    if (cv_failed(cv_app_open(cfg, CV_APP_ALL, app))) {
        cv_cli_report("start");
        cv_config_free(cfg);
        return CV_EXIT_FAIL;
    }
    if (cv_failed(cv_keys_check_database(*app))) {
        cv_cli_report("key check");
        cv_app_close(*app);
        cv_config_free(cfg);
        return CV_EXIT_FAIL;
    }
    return 0;
}

int cv_cli_close_app(struct cv_app *app, struct cv_config *cfg, cv_result r, json_t *data, const char *what)
{
    int rc = CV_EXIT_OK;
    if (cv_failed(r)) {
        cv_cli_report(what);
        rc = CV_EXIT_FAIL;
    } else if (data) {
        cv_cli_print_json(data);
    }
    json_decref(data);
    cv_app_close(app);
    cv_config_free(cfg);
    return rc;
}

int cv_cli_run_on_id(struct cv_cli_ctx *ctx, int argc, char **argv, const char *usage_line,
                     const char *description, cv_cli_id_fn fn, const char *what)
{
    const char *pos[1] = {NULL};
    size_t npos;
    int rc = cv_cli_parse(argc, argv, usage_line, description, NULL, 0, pos, 1, 1, &npos);
    if (rc) return rc < 0 ? CV_EXIT_OK : rc;
    struct cv_config cfg;
    struct cv_app *app;
    if ((rc = cv_cli_open_app(ctx, &cfg, &app)) != 0) return rc;
    struct cv_principal p;
    cv_principal_cli(&p);
    json_t *data = NULL;
    cv_result r = fn(app, &p, pos[0], &data);
    return cv_cli_close_app(app, &cfg, r, data, what);
}
