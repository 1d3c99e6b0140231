/* Key lifecycle from the command line as the platform admin "cli": master
 * rotate/rewrap/retire/list, tenant rotate-key/rewrap/retire-keys/
 * destroy-keys/delete. Rewraps run in the foreground (a progress bar on a
 * terminal, plain lines otherwise) and resume when run again, here or in any
 * `credvault serve`. Prints no key material. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "cli/cli.h"
#include "domain/domain.h"
#include "domain/lifecycle.h"

#define PROGRESS_BAR_WIDTH 30
#define PROGRESS_LINE_EVERY_MS 1000 /* plain lines: at most one per second */
#define STALLED_WAIT_MS 200         /* rows held by another worker: look again */




static void sleep_ms(unsigned ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- progress ---- */

struct progress {
    const char *what; /* "rewrap of acme", "master rewrap" */
    int tty;
    int64_t last_line_ms; /* 0: no line yet */
};

static void progress_show(struct progress *pg, const struct cv_key_job_row *job, int final)
{
    uint64_t total;
    unsigned pct = cv_lifecycle_job_percent(job, &total);
    const char *unit = job->kind == CV_JOB_MASTER_REWRAP ? "tenant keys" : "records";
    uint64_t moved = total > job->remaining ? total - job->remaining : 0;
    if (pg->tty) {
        char bar[PROGRESS_BAR_WIDTH + 1];
        unsigned fill = pct * PROGRESS_BAR_WIDTH / 100;
        for (unsigned i = 0; i < PROGRESS_BAR_WIDTH; i++) bar[i] = i < fill ? '#' : '-';
        bar[PROGRESS_BAR_WIDTH] = '\0';
        fprintf(stderr, "\r%s [%s] %3u%% %llu/%llu %s ", pg->what, bar, pct, (unsigned long long)moved,
                (unsigned long long)total, unit);
        if (final) fputc('\n', stderr);
        fflush(stderr);
        return;
    }
    int64_t now = now_ms();
    if (!final && pg->last_line_ms && now - pg->last_line_ms < PROGRESS_LINE_EVERY_MS) return;
    pg->last_line_ms = now;
    fprintf(stderr, "%s: %llu/%llu %s (%u%%)\n", pg->what, (unsigned long long)moved, (unsigned long long)total,
            unit, pct);
    fflush(stderr);
}

/* Runs `job` to its end here (another instance may share the work). */
static int drive(struct cv_app *app, const struct cv_key_job_row *job, const char *what)
{
    struct cv_rewrap_run *run = NULL;
    if (cv_failed(cv_rewrap_run_new(app, job, &run))) {
        cv_cli_report(what);
        return CV_EXIT_FAIL;
    }
    struct progress pg = {.what = what, .tty = isatty(STDERR_FILENO), .last_line_ms = 0};
    progress_show(&pg, cv_rewrap_run_job(run), 0);
    int rc = CV_EXIT_OK;
    for (;;) {
        int finished = 0;
        unsigned moved = 0;
        if (cv_failed(cv_rewrap_run_step(run, &finished, &moved))) {
            if (pg.tty) fputc('\n', stderr);
            cv_cli_report(what);
            fprintf(stderr, "credvault: the job is kept; run the command again to resume it\n");
            rc = CV_EXIT_FAIL;
            break;
        }
        progress_show(&pg, cv_rewrap_run_job(run), finished);
        if (finished) break;
        if (moved == 0) sleep_ms(STALLED_WAIT_MS);
        else if (app->cfg->rewrap_pause_ms) sleep_ms(app->cfg->rewrap_pause_ms);
    }
    if (rc == CV_EXIT_OK) {
        const struct cv_key_job_row *j = cv_rewrap_run_job(run);
        if (strcmp(j->state, "done") == 0) {
            printf("%s done: %llu moved, every one now under %s version %u\n", what, (unsigned long long)j->done,
                   j->kind == CV_JOB_MASTER_REWRAP ? "master key" : "key", j->target_version);
        } else if (strcmp(j->state, "superseded") == 0) {
            printf("%s superseded by a newer master rotation, whose rewrap continues\n", what);
        } else {
            fprintf(stderr, "credvault: %s ended %s: %llu row%s did not decrypt (named in the log as "
                            "rewrap_row_skipped) and stay under the old version\n",
                    what, j->state, (unsigned long long)j->failed, j->failed == 1 ? "" : "s");
            rc = CV_EXIT_FAIL;
        }
    }
    cv_rewrap_run_free(run);
    return rc;
}

/* ---- master ---- */

int cv_cli_master_rotate(struct cv_cli_ctx *ctx, int argc, char **argv)
{
    const char *no_wait = NULL;
    struct cv_cli_option opts[] = {{"--no-wait", 0, "start the rewrap and return (serve runs it)", &no_wait}};
    const char *pos[1];
    size_t npos;
    int rc = cv_cli_parse(argc, argv, "credvault master rotate [--no-wait]",
                          "Creates credvault-master-<n+1> in the token, makes it the key new tenant keys are\n"
                          "wrapped under, and rewraps every tenant key under it (records are untouched).\n"
                          "Resumable: run `credvault master rewrap` after an interruption.",
                          opts, 1, pos, 0, 0, &npos);
    if (rc) return rc < 0 ? CV_EXIT_OK : rc;
    struct cv_config cfg;
    struct cv_app *app;
    if ((rc = cv_cli_open_app(ctx, &cfg, &app)) != 0) return rc;
    struct cv_principal p;
    cv_principal_cli(&p);
    struct cv_key_job_row job;
    json_t *data = NULL;
    cv_result r = cv_master_key_rotate(app, &p, &data, &job);
    if (cv_ok(r)) {
        printf("%s created; %llu tenant key%s to rewrap\n", json_string_value(json_object_get(data, "label")),
               (unsigned long long)job.total, job.total == 1 ? "" : "s");
        json_decref(data);
        data = NULL;
        if (!no_wait) rc = drive(app, &job, "master rewrap");
    }
    if (rc != CV_EXIT_OK) r = CV_OK; /* drive reported it */
    int out = cv_cli_close_app(app, &cfg, r, data, "master rotate");
    return rc != CV_EXIT_OK ? rc : out;
}

int cv_cli_master_rewrap(struct cv_cli_ctx *ctx, int argc, char **argv)
{
    const char *no_wait = NULL;
    struct cv_cli_option opts[] = {{"--no-wait", 0, "start the rewrap and return (serve runs it)", &no_wait}};
    const char *pos[1];
    size_t npos;
    int rc = cv_cli_parse(argc, argv, "credvault master rewrap [--no-wait]",
                          "Rewraps every tenant key still under an older master key under the newest one:\n"
                          "resumes an interrupted rotation, or sweeps keys made meanwhile.",
                          opts, 1, pos, 0, 0, &npos);
    if (rc) return rc < 0 ? CV_EXIT_OK : rc;
    struct cv_config cfg;
    struct cv_app *app;
    if ((rc = cv_cli_open_app(ctx, &cfg, &app)) != 0) return rc;
    struct cv_principal p;
    cv_principal_cli(&p);
    struct cv_key_job_row job;
    cv_result r = cv_master_rewrap_start(app, &p, NULL, &job);
    if (cv_ok(r) && !no_wait) rc = drive(app, &job, "master rewrap");
    else if (cv_ok(r)) printf("master rewrap job %lld running\n", (long long)job.id);
    if (rc != CV_EXIT_OK) r = CV_OK;
    int out = cv_cli_close_app(app, &cfg, r, NULL, "master rewrap");
    return rc != CV_EXIT_OK ? rc : out;
}

int cv_cli_master_retire(struct cv_cli_ctx *ctx, int argc, char **argv)
{
    return cv_cli_run_on_id(ctx, argc, argv, "credvault master retire VERSION",
                            "Destroys credvault-master-VERSION in the token. Refused while any tenant key is\n"
                            "still wrapped under it, and for the current master key. Irreversible: backups\n"
                            "of the database older than the rotation can no longer be opened with this token.",
                            cv_master_key_retire, "master retire");
}

int cv_cli_master_list(struct cv_cli_ctx *ctx, int argc, char **argv)
{
    const char *pos[1];
    size_t npos;
    int rc = cv_cli_parse(argc, argv, "credvault master list",
                          "Lists master key versions (JSON): state, whether the token holds the key, how\n"
                          "many tenant keys each wraps, and the latest master rewrap.",
                          NULL, 0, pos, 0, 0, &npos);
    if (rc) return rc < 0 ? CV_EXIT_OK : rc;
    struct cv_config cfg;
    struct cv_app *app;
    if ((rc = cv_cli_open_app(ctx, &cfg, &app)) != 0) return rc;
    struct cv_principal p;
    cv_principal_cli(&p);
    json_t *data = NULL;
    cv_result r = cv_master_keys_list(app, &p, &data);
    return cv_cli_close_app(app, &cfg, r, data, "master list");
}

/* ---- tenant ---- */

int cv_cli_tenant_rotate_key(struct cv_cli_ctx *ctx, int argc, char **argv)
{
    return cv_cli_run_on_id(ctx, argc, argv, "credvault tenant rotate-key ID",
                            "Makes a new key version for the tenant; new writes use it, older versions keep\n"
                            "decrypting. Follow with `credvault tenant rewrap ID` to move the records.",
                            cv_tenant_key_rotate, "tenant rotate-key");
}

int cv_cli_tenant_rewrap(struct cv_cli_ctx *ctx, int argc, char **argv)
{
    const char *no_wait = NULL;
    struct cv_cli_option opts[] = {{"--no-wait", 0, "start the rewrap and return (serve runs it)", &no_wait}};
    const char *pos[1];
    size_t npos;
    int rc = cv_cli_parse(argc, argv, "credvault tenant rewrap ID [--no-wait]",
                          "Re-encrypts the tenant's records under its newest key version, in batches of\n"
                          "CREDVAULT_REWRAP_BATCH_SIZE. Joins a rewrap already running (here or in serve);\n"
                          "after an interruption, run it again to resume.",
                          opts, 1, pos, 1, 1, &npos);
    if (rc) return rc < 0 ? CV_EXIT_OK : rc;
    struct cv_config cfg;
    struct cv_app *app;
    if ((rc = cv_cli_open_app(ctx, &cfg, &app)) != 0) return rc;
    struct cv_principal p;
    cv_principal_cli(&p);
    struct cv_key_job_row job;
    cv_result r = cv_tenant_rewrap_start(app, &p, pos[0], NULL, &job);
    char what[CV_TENANT_ID_MAX_BYTES + 16];
    snprintf(what, sizeof(what), "rewrap of %s", pos[0]);
    if (cv_ok(r) && !no_wait) rc = drive(app, &job, what);
    else if (cv_ok(r)) printf("rewrap job %lld of %s running\n", (long long)job.id, pos[0]);
    if (rc != CV_EXIT_OK) r = CV_OK;
    int out = cv_cli_close_app(app, &cfg, r, NULL, "tenant rewrap");
    return rc != CV_EXIT_OK ? rc : out;
}

int cv_cli_tenant_retire_keys(struct cv_cli_ctx *ctx, int argc, char **argv)
{
    const char *below = NULL;
    struct cv_cli_option opts[] = {{"--below", 1, "the new minimum decryption version (required)", &below}};
    const char *pos[1];
    size_t npos;
    int rc = cv_cli_parse(argc, argv, "credvault tenant retire-keys ID --below VERSION",
                          "Raises the tenant's minimum decryption version: every older key version stops\n"
                          "decrypting. Refused while a record still uses one (rewrap first).",
                          opts, 1, pos, 1, 1, &npos);
    if (rc) return rc < 0 ? CV_EXIT_OK : rc;
    uint32_t v;
    if (!below || cv_failed(cv_lifecycle_parse_version(below, "--below", &v))) {
        fprintf(stderr, "credvault: tenant retire-keys needs --below VERSION (1 or more)\n");
        return CV_EXIT_USAGE;
    }
    struct cv_config cfg;
    struct cv_app *app;
    if ((rc = cv_cli_open_app(ctx, &cfg, &app)) != 0) return rc;
    struct cv_principal p;
    cv_principal_cli(&p);
    json_t *body = json_pack("{s:I}", "version", (json_int_t)v), *data = NULL;
    cv_result r = cv_tenant_min_decrypt_set(app, &p, pos[0], body, &data);
    json_decref(body);
    return cv_cli_close_app(app, &cfg, r, data, "tenant retire-keys");
}

int cv_cli_tenant_destroy_keys(struct cv_cli_ctx *ctx, int argc, char **argv)
{
    return cv_cli_run_on_id(ctx, argc, argv, "credvault tenant destroy-keys ID",
                            "Destroys the tenant's retired key versions (those below its minimum decryption\n"
                            "version): their wrapped bytes are erased, for good.",
                            cv_tenant_keys_destroy_retired, "tenant destroy-keys");
}

int cv_cli_tenant_delete(struct cv_cli_ctx *ctx, int argc, char **argv)
{
    const char *confirm = NULL;
    struct cv_cli_option opts[] = {{"--confirm", 1, "the tenant id again (required)", &confirm}};
    const char *pos[1];
    size_t npos;
    int rc = cv_cli_parse(argc, argv, "credvault tenant delete ID --confirm ID",
                          "Crypto-shreds a tenant: destroys its wrapped keys, credentials and tokens. The\n"
                          "audit trail stays. See docs/operations.md for what backups still hold.",
                          opts, 1, pos, 1, 1, &npos);
    if (rc) return rc < 0 ? CV_EXIT_OK : rc;
    if (!confirm) {
        fprintf(stderr, "credvault: tenant delete needs --confirm %s\n", pos[0]);
        return CV_EXIT_USAGE;
    }
    struct cv_config cfg;
    struct cv_app *app;
    if ((rc = cv_cli_open_app(ctx, &cfg, &app)) != 0) return rc;
    struct cv_principal p;
    cv_principal_cli(&p);
    json_t *data = NULL;
    cv_result r = cv_tenant_shred(app, &p, pos[0], confirm, &data);
    return cv_cli_close_app(app, &cfg, r, data, "tenant delete");
}
