/* `credvault serve`: opens the HSM and the database, proves the token's
 * master key opens this database's keys, then serves the API until SIGINT or
 * SIGTERM. Refuses to start rather than fail on the first request. */
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "credvault/buf.h"
#include "credvault/log.h"
#include "domain/audit.h"
#include "domain/domain.h"
#include "domain/lifecycle.h"
#include "domain/ops.h"
#include "http/http.h"
#include "http/routes.h"

static void serve_help_settings(void)
{
    printf("\nsettings (environment or --config file; the environment wins):\n");
    for (size_t i = 0; i < cv_config_settings_count(); i++) {
        const struct cv_config_setting *s = cv_config_setting_at(i);
        printf("  %-34s %s%s%s%s\n", s->name, s->help, s->default_value ? " (default: " : "",
               s->default_value ? s->default_value : "", s->default_value ? ")" : "");
    }
}

struct serve_args {
    const struct cv_config *cfg;
    const struct cv_cli_privileges *priv;
    const char *dir;
};

/* One serving process: the whole service when w is NULL, else worker
 * w->slot under the supervisor (src/cli/supervisor.c), which bound its
 * socket, made its shared metrics and rate limits and gave up root. */
static int serve_process(const struct serve_args *a, const struct cv_cli_worker *w)
{
    const struct cv_config *cfgp = a->cfg;
    const char *dir = a->dir;
    char dirbuf[PATH_MAX];
    int rc;
    struct cv_app *app = NULL;
    struct cv_http_server *srv = NULL;
    struct cv_lifecycle *lc = NULL; /* key-event listener and rewrap worker */
    struct cv_cli_watchdog *wd = NULL; /* systemd's keep-alive, when it asks for one */
    rc = CV_EXIT_FAIL;
    /* a worker's service counts into the registry every worker shares */
    if (w) cv_metrics_adopt(w->metrics, w->slot);
    if (cv_failed(cv_app_open(cfgp, CV_APP_ALL, &app))) {
        cv_cli_report("start");
        goto out;
    }
    if (cv_failed(cv_cli_set_build_info(app->metrics))) {
        cv_cli_report("metrics");
        goto out;
    }
    /* JWTs of the platform's issuer beside credvault's tokens, when configured */
    if (cv_failed(cv_oidc_open(cfgp, cv_cli_fetch_url, NULL, &app->oidc))) {
        cv_cli_report("oidc");
        goto out;
    }
    if (cv_failed(cv_app_check_schema(app, cv_cli_migrations_dir(dir, dirbuf, sizeof(dirbuf))))) {
        cv_cli_report("database");
        goto out;
    }
    if (cv_failed(cv_keys_check_database(app))) {
        cv_cli_report("key check");
        goto out;
    }
    if (cv_failed(cv_keys_check_residency(app))) {
        cv_cli_report("key residency");
        goto out;
    }
    /* signed audit checkpoints while serving; refuses to run without the signing key.
     * Started before the lifecycle threads, whose audit events it counts. */
    if (cv_failed(cv_audit_sealer_start(app))) {
        cv_cli_report("audit");
        goto out;
    }
    if (cv_failed(cv_lifecycle_start(app, &lc))) {
        cv_cli_report("key lifecycle");
        goto out;
    }
    if (w) {
        app->limiter = w->limiter; /* one set of buckets for every worker */
        /* and disjoint server ids */
        app->id_slot = w->slot;
        app->id_slots = w->workers;
    } else if (cv_failed(cv_routes_limits_open(app))) {
        cv_cli_report("rate limits");
        goto out;
    }
    struct cv_http_server_options ho;
    cv_http_server_options_from_config(cfgp, &ho);
    ho.metrics = app->metrics;
    if (w) {
        ho.shared_listen = 1;
        ho.listen_fd = w->listen_fd;
        ho.tls_cert_pem = w->tls_cert;
        ho.tls_key_pem = w->tls_key;
        if (cv_failed(cv_http_listen_resume(w->listen_fd))) {
            cv_cli_report("listen");
            goto out;
        }
    }
    size_t nroutes;
    const struct cv_http_route *routes = cv_api_routes(&nroutes);
    if (cv_failed(cv_http_server_start(&ho, routes, nroutes, app, &srv))) {
        cv_cli_report("listen");
        goto out;
    }
    /* the port is bound and the TLS key, PIN and token are open: root is no longer needed */
    /* (a worker's supervisor gave up root before it forked) */
    if (!w && cv_failed(cv_cli_privileges_drop(a->priv))) {
        cv_cli_report("user");
        goto out;
    }
    /* best effort by design; say so once rather than silently swap secrets */
    if (!cv_secret_memory_locked())
        cv_log(CV_LOG_WARN, "secret memory could not be locked", "hint",
               "raise RLIMIT_MEMLOCK (systemd LimitMEMLOCK=); secrets may be swapped out, never dumped", NULL);
    char port[16], mv[16];
    snprintf(port, sizeof(port), "%u", cv_http_server_port(srv));
    snprintf(mv, sizeof(mv), "%u", cv_lifecycle_master_version(app)); /* a rotation may run already */
    if (w) {
        char slot[12];
        snprintf(slot, sizeof(slot), "%u", w->slot);
        cv_log(CV_LOG_INFO, "worker_serving", "worker", slot, "listen", cfgp->listen, "port", port, "tls",
               cfgp->tls ? "on" : "off", "master_version", mv, "key_residency", cfgp->key_residency, NULL);
        /* the supervisor announces READY once every worker got here */
        cv_metrics_worker_ready(app->metrics);
        if (cv_cli_worker_beat_start(app, w->watchdog_us, &wd) != 0)
            cv_log(CV_LOG_WARN, "worker beat could not start", "hint", "the supervisor sends no keep-alive", NULL);
    } else {
        cv_log(CV_LOG_INFO, "serving", "listen", cfgp->listen, "port", port, "tls", cfgp->tls ? "on" : "off",
               "master_version", mv, "key_residency", cfgp->key_residency, NULL);
        /* the token and the database answered every start-up check above */
        cv_cli_notify_ready();
        if (cv_cli_watchdog_start(app, &wd) != 0)
            cv_log(CV_LOG_WARN, "systemd watchdog could not start", "hint", "the service runs without keep-alives",
                   NULL);
    }

    int sig = 0;
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    sigwait(&sigs, &sig);
    cv_log(CV_LOG_INFO, "stopping", "signal", sig == SIGINT ? "SIGINT" : "SIGTERM", NULL);
    if (!w) cv_cli_notify_stopping();
    rc = CV_EXIT_OK;
out:
    cv_cli_watchdog_stop(wd);
    cv_http_server_stop(srv);
    cv_routes_limits_close(app);
    cv_lifecycle_stop(lc); /* joins its threads before the store and HSM close */
    cv_audit_sealer_stop(app); /* seals the last events (the lifecycle's too), then joins */
    cv_app_close(app); /* destroys every unwrapped tenant key in the token */
    return rc;
}

static int serve_worker(void *arg, const struct cv_cli_worker *w) { return serve_process(arg, w); }

int cv_cli_serve(struct cv_cli_ctx *ctx, int argc, char **argv)
{
    const char *dir = NULL;
    char dirhelp[PATH_MAX + 64];
    cv_cli_migrations_help(dirhelp, sizeof(dirhelp));
    const char *user = NULL, *allow_root = NULL;
    struct cv_cli_option opts[] = {
        {"--migrations-dir", 1, dirhelp, &dir},
        {"--user", 1, "started as root: become this user once listening (CREDVAULT_USER)", &user},
        {"--allow-root", 0, "keep running as root when started as root (CREDVAULT_ALLOW_ROOT=on)", &allow_root},
    };
    const char *pos[1];
    size_t npos;
    int rc = cv_cli_parse(argc, argv, "credvault serve [--migrations-dir DIR] [--user NAME | --allow-root]",
                          "Serves the HTTPS API. At start it checks that the schema is current, that\n"
                          "the database role owns nothing and cannot bypass row-level security, and\n"
                          "that the token's master key opens this database's canary. Started as root,\n"
                          "it becomes --user once it listens and has read its key files, and refuses\n"
                          "to go on as root unless --allow-root says so.",
                          opts, sizeof(opts) / sizeof(opts[0]), pos, 0, 0, &npos);
    if (rc < 0) {
        serve_help_settings();
        return CV_EXIT_OK;
    }
    if (rc) return rc;

    /* signals are taken by sigwait below, never by a worker thread */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    struct cv_config cfg;
    ctx->serving = 1;
    if (cv_cli_config(ctx, &cfg) != 0) return CV_EXIT_FAIL;
    /* decided before anything opens: a wrong user costs no token login */
    struct cv_cli_privileges priv;
    if (cv_failed(cv_cli_privileges_plan(user ? user : cfg.user, allow_root || cfg.allow_root, &priv))) {
        cv_cli_report("user");
        cv_config_free(&cfg);
        return CV_EXIT_FAIL;
    }
    struct serve_args a = {&cfg, &priv, dir};
    unsigned workers = cv_cli_workers_wanted(&cfg);
    if (workers <= 1) rc = serve_process(&a, NULL);
    else rc = cv_cli_supervise(&cfg, &priv, workers, serve_worker, &a);
    cv_config_free(&cfg);
    return rc;
}
