/* Subcommands of the one binary. Exit codes: 0 ok, 1 failure, 2 usage. */
#ifndef CREDVAULT_CLI_H
#define CREDVAULT_CLI_H

#include <stdio.h>
#include <sys/types.h>

#include <jansson.h>

#include "credvault/config.h"
#include "credvault/result.h"

#define CV_EXIT_OK 0
#define CV_EXIT_FAIL 1
#define CV_EXIT_USAGE 2

struct cv_cli_ctx {
    const char *config_file;
    int serving; /* the long-running service logs at info by default */
};

typedef int (*cv_cli_fn)(struct cv_cli_ctx *ctx, int argc, char **argv);

struct cv_cli_command {
    const char *name;
    const char *sub;
    cv_cli_fn run;
    const char *summary;
};

/* A command's options: long names only; `value` set for options taking one. */
struct cv_cli_option {
    const char *name;   /* "--json" */
    int takes_value;
    const char *help;
    const char **value; /* out: the value, or "1" for flags; NULL when absent */
};

/* Parses argv[1..] against `opts`; positional arguments are collected in
 * `pos` (up to max_pos). Prints usage and returns CV_EXIT_USAGE on an
 * unknown option or a wrong count, -1 after printing --help, 0 on success. */
int cv_cli_parse(int argc, char **argv, const char *usage_line, const char *description,
                 struct cv_cli_option *opts, size_t nopts, const char **pos, size_t min_pos,
                 size_t max_pos, size_t *npos);

/* Loads the configuration (file, then environment) and sets the log level;
 * prints the error and returns non-zero on failure. */
int cv_cli_config(struct cv_cli_ctx *ctx, struct cv_config *cfg);
/* Prints "credvault: <message>" for the thread's last error. */
void cv_cli_report(const char *what);

struct cv_app;
/* Opens HSM, store and catalog and checks the token against the database
 * (the canary); prints what failed. 0 on success. */
int cv_cli_open_app(struct cv_cli_ctx *ctx, struct cv_config *cfg, struct cv_app **app);
/* Reports r or prints data (consumed), then closes app and cfg; the exit code. */
int cv_cli_close_app(struct cv_app *app, struct cv_config *cfg, cv_result r, json_t *data, const char *what);
int cv_cli_print_json(json_t *j);

struct cv_principal;
/* A command that takes one id and no option, runs one use case as the local
 * admin and prints its JSON: parse, open, call, close. */
typedef cv_result (*cv_cli_id_fn)(struct cv_app *app, const struct cv_principal *p, const char *id, json_t **data);
int cv_cli_run_on_id(struct cv_cli_ctx *ctx, int argc, char **argv, const char *usage_line,
                     const char *description, cv_cli_id_fn fn, const char *what);

/* The migrations folder: `option` when given, else share/credvault/migrations
 * beside an installed binary, else the source tree's (the build folder's
 * binary). May return `buf`, which must hold PATH_MAX bytes. */
const char *cv_cli_migrations_dir(const char *option, char *buf, size_t size);
/* --migrations-dir's help, naming the folder the default resolves to. */
void cv_cli_migrations_help(char *buf, size_t size);

/* src/cli/notify.c: systemd's notification protocol (no-ops outside systemd).
 * The watchdog pings while cv_app_ready holds; started only when systemd
 * asked for one (WatchdogSec=). */
struct cv_cli_watchdog;
void cv_cli_notify_ready(void);
void cv_cli_notify_stopping(void);
int cv_cli_watchdog_start(struct cv_app *app, struct cv_cli_watchdog **out);
void cv_cli_watchdog_stop(struct cv_cli_watchdog *w);
/* A worker's beat: its slot's descriptors and time every second (and, when
 * systemd's watchdog is on, the readiness probe's answer). */
int cv_cli_worker_beat_start(struct cv_app *app, uint64_t watchdog_us, struct cv_cli_watchdog **out);
/* The supervisor's own line to systemd, and its watchdog period if any. */
void cv_cli_supervisor_notify(const char *state);
int cv_cli_supervisor_watchdog_us(uint64_t *usec);

/* src/cli/supervisor.c: CREDVAULT_WORKERS > 1. The parent binds one
 * SO_REUSEPORT socket per worker slot, makes the shared metrics and rate
 * limits, gives up root, and forks the workers; each runs `run` and exits
 * with its result. The parent restarts a worker that dies (with a backoff
 * when it dies before it was ready), speaks to systemd for all, and stops
 * every worker on SIGTERM or SIGINT. Returns the exit code of serve. */
struct cv_metrics;
struct cv_ratelimit;
struct cv_buf;
struct cv_cli_privileges;
struct cv_cli_worker {
    unsigned slot, workers; /* this worker's slot of `workers` */
    int listen_fd;
    struct cv_metrics *metrics;
    struct cv_ratelimit *limiter;
    const struct cv_buf *tls_cert, *tls_key;
    uint64_t watchdog_us;
};
typedef int (*cv_cli_worker_run)(void *arg, const struct cv_cli_worker *w);
int cv_cli_supervise(const struct cv_config *cfg, const struct cv_cli_privileges *priv, unsigned workers,
                     cv_cli_worker_run run, void *arg);
unsigned cv_cli_workers_wanted(const struct cv_config *cfg);

/* src/cli/privileges.c: `serve` started as root. cv_cli_privileges_plan
 * decides before anything opens (the user must exist; root without a user
 * is refused unless allowed); cv_cli_privileges_drop becomes that user once
 * the listener is bound and the key files are read, and proves it cannot
 * become root again. */
struct cv_cli_privileges {
    int drop; /* 1: switch to uid/gid below */
    uid_t uid;
    gid_t gid;
    char user[64];
};
CV_RESULT cv_cli_privileges_plan(const char *user, int allow_root, struct cv_cli_privileges *out);
CV_RESULT cv_cli_privileges_drop(const struct cv_cli_privileges *p);

int cv_cli_main(int argc, char **argv);

int cv_cli_serve(struct cv_cli_ctx *ctx, int argc, char **argv);
int cv_cli_migrate(struct cv_cli_ctx *ctx, int argc, char **argv);
int cv_cli_hsm_init(struct cv_cli_ctx *ctx, int argc, char **argv);
int cv_cli_hsm_status(struct cv_cli_ctx *ctx, int argc, char **argv);
int cv_cli_tenant_create(struct cv_cli_ctx *ctx, int argc, char **argv);
int cv_cli_tenant_list(struct cv_cli_ctx *ctx, int argc, char **argv);
int cv_cli_token_create(struct cv_cli_ctx *ctx, int argc, char **argv);
int cv_cli_token_revoke(struct cv_cli_ctx *ctx, int argc, char **argv);
int cv_cli_version(struct cv_cli_ctx *ctx, int argc, char **argv);
/* src/cli/cmd_version.c: what `credvault --version` prints, and the parts of
 * the build fixed at configure time (the build-info metric reports them) */
void cv_cli_print_version(FILE *f);
const char *cv_cli_build_version(void);
const char *cv_cli_build_commit(void);
const char *cv_cli_build_type(void);
/* {"openssl", "libpq", "cjose", "libmicrohttpd", "gnutls", "jansson"}: the
 * versions loaded at run time (a new reference; NULL when out of memory) */
json_t *cv_cli_library_versions(void);
struct cv_metrics;
/* credvault_build_info's labels: version, commit, build_type and the libraries */
CV_RESULT cv_cli_set_build_info(struct cv_metrics *reg);
/* audit: src/cli/cmd_audit.c */
int cv_cli_audit_verify(struct cv_cli_ctx *ctx, int argc, char **argv);
int cv_cli_audit_export(struct cv_cli_ctx *ctx, int argc, char **argv);
int cv_cli_audit_checkpoint(struct cv_cli_ctx *ctx, int argc, char **argv);
/* key lifecycle: src/cli/cmd_keys.c */
int cv_cli_master_rotate(struct cv_cli_ctx *ctx, int argc, char **argv);
int cv_cli_master_rewrap(struct cv_cli_ctx *ctx, int argc, char **argv);
int cv_cli_master_retire(struct cv_cli_ctx *ctx, int argc, char **argv);
int cv_cli_master_list(struct cv_cli_ctx *ctx, int argc, char **argv);
int cv_cli_tenant_rotate_key(struct cv_cli_ctx *ctx, int argc, char **argv);
int cv_cli_tenant_rewrap(struct cv_cli_ctx *ctx, int argc, char **argv);
int cv_cli_tenant_retire_keys(struct cv_cli_ctx *ctx, int argc, char **argv);
int cv_cli_tenant_destroy_keys(struct cv_cli_ctx *ctx, int argc, char **argv);
int cv_cli_tenant_delete(struct cv_cli_ctx *ctx, int argc, char **argv);
int cv_cli_run(struct cv_cli_ctx *ctx, int argc, char **argv);           /* src/cli/cmd_run.c */

/* GET of a small document (an OIDC issuer's JWKS) with libcurl: https, or
 * http to a loopback address; no redirects; bounded size and time. The
 * domain's cv_oidc_fetch_fn (src/cli/fetch.c). */
CV_RESULT cv_cli_fetch_url(void *arg, const char *url, size_t max_bytes, char **body, size_t *len);
int cv_cli_import_legacy(struct cv_cli_ctx *ctx, int argc, char **argv); /* src/cli/cmd_import.c */

#endif
