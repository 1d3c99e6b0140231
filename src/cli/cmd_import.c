/* `credvault import-legacy`: GigaChad GRC's mcp_credentials into a tenant.
 * The only reader of the legacy key (--key-file, MCP_ENCRYPTION_KEY, else
 * ENCRYPTION_KEY), which it moves into secret memory and scrubs from its own
 * environment at once. Prints one line per row (never a value), a progress
 * bar when stderr is a terminal, and a summary. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "credvault/buf.h"
#include "credvault/secret_file.h"
#include "domain/domain.h"
#include "domain/legacy.h"

#define IMPORT_EXIT_ROWS_FAILED 3 /* finished; the rows listed as failed were skipped */
#define PROGRESS_WIDTH 30

static const char *const key_vars[] = {"MCP_ENCRYPTION_KEY", "ENCRYPTION_KEY"};

struct key {
    uint8_t *bytes; /* secret memory */
    size_t len;
    const char *from;
};

/* --key-file, else the first non-empty of MCP_ENCRYPTION_KEY and
 * ENCRYPTION_KEY, the order GigaChad read them in. Both variables are wiped
 * and removed from this process either way. */
static int read_key(const char *file, struct key *k)
{
    memset(k, 0, sizeof(*k));
    k->bytes = cv_secret_alloc(CV_LEGACY_PASSPHRASE_MAX_BYTES + 1);
    if (!k->bytes) {
        fprintf(stderr, "credvault: import-legacy: out of memory\n");
        return CV_EXIT_FAIL;
    }
    int rc = 0;
    if (file) {
        k->from = "--key-file";
        char *text = NULL;
        size_t n = 0;
        if (cv_failed(cv_secret_file_read("--key-file", file, CV_LEGACY_PASSPHRASE_MAX_BYTES, &text, &n))) {
            fprintf(stderr, "credvault: import-legacy: %s\n", cv_error_message());
            rc = CV_EXIT_USAGE;
        } else {
            memcpy(k->bytes, text, n);
            k->len = n;
            cv_secret_free(text);
        }
    } else {
        for (size_t i = 0; i < sizeof(key_vars) / sizeof(key_vars[0]) && !k->from; i++) {
            const char *v = getenv(key_vars[i]);
            if (!v || !*v) continue; /* GigaChad skipped an empty one too */
            size_t n = strlen(v);
            if (n > CV_LEGACY_PASSPHRASE_MAX_BYTES) {
                fprintf(stderr, "credvault: import-legacy: %s is longer than %d bytes\n", key_vars[i],
                        CV_LEGACY_PASSPHRASE_MAX_BYTES);
                rc = CV_EXIT_USAGE;
                break;
            }
            memcpy(k->bytes, v, n);
            k->len = n;
            k->from = key_vars[i];
        }
    }
    for (size_t i = 0; i < sizeof(key_vars) / sizeof(key_vars[0]); i++) {
        char *v = getenv(key_vars[i]);
        if (v) cv_wipe(v, strlen(v));
        unsetenv(key_vars[i]);
    }
    if (rc == 0 && (!k->from || k->len == 0)) {
        fprintf(stderr, "credvault: import-legacy: no legacy key: set MCP_ENCRYPTION_KEY (or ENCRYPTION_KEY), or give "
                        "--key-file\n");
        rc = CV_EXIT_USAGE;
    }
    if (rc != 0) {
        cv_secret_free(k->bytes);
        k->bytes = NULL;
    }
    return rc;
}

struct output {
    int bar;          /* stderr is a terminal */
    int bar_shown;
    const char *unit; /* "line" for a file, "row" for the database */
    int dry_run;
};

static void clear_bar(struct output *o)
{
    if (!o->bar_shown) return;
    fputs("\r\033[K", stderr);
    fflush(stderr);
    o->bar_shown = 0;
}

static void report(void *arg, const struct cv_legacy_result *r)
{
    struct output *o = arg;
    static const char *const labels[] = {"imported", "would-import", "present", "failed"};
    clear_bar(o);
    printf("%-12s %s [legacy id %s, %s %llu]%s%s\n", labels[r->outcome], r->server_id[0] ? r->server_id : "-",
           r->legacy_id[0] ? r->legacy_id : "-", o->unit, (unsigned long long)r->ordinal, r->reason ? ": " : "",
           r->reason ? r->reason : "");
    fflush(stdout);
}

static void progress(void *arg, uint64_t done, uint64_t total, const struct cv_legacy_summary *s)
{
    struct output *o = arg;
    if (!o->bar || total == 0) return;
    int fill = (int)(done * PROGRESS_WIDTH / total);
    char bar[PROGRESS_WIDTH + 1];
    for (int i = 0; i < PROGRESS_WIDTH; i++) bar[i] = i < fill ? '#' : '.';
    bar[PROGRESS_WIDTH] = '\0';
    fprintf(stderr, "\r[%s] %llu/%llu  %s %llu, present %llu, failed %llu", bar, (unsigned long long)done,
            (unsigned long long)total, o->dry_run ? "would import" : "imported", (unsigned long long)s->imported,
            (unsigned long long)s->present, (unsigned long long)s->failed);
    fflush(stderr);
    o->bar_shown = 1;
}

int cv_cli_import_legacy(struct cv_cli_ctx *ctx, int argc, char **argv)
{
    const char *tenant = NULL, *from = NULL, *from_file = NULL, *key_file = NULL, *dry = NULL;
    struct cv_cli_option opts[] = {
        {"--tenant", 1, "the credvault tenant that receives the records (required)", &tenant},
        {"--from", 1, "libpq URL of the GigaChad GRC database (its mcp_credentials table; read only)", &from},
        {"--from-file", 1, "the table exported as JSON lines instead (see docs/migration-from-gigachad.md)",
         &from_file},
        {"--key-file", 1, "file holding the legacy key (default: MCP_ENCRYPTION_KEY, else ENCRYPTION_KEY)",
         &key_file},
        {"--dry-run", 0, "check and decrypt every row, report, write nothing", &dry},
    };
    const char *pos[1];
    size_t npos;
    int rc = cv_cli_parse(argc, argv,
                          "credvault import-legacy --tenant ID (--from URL | --from-file FILE) [--key-file FILE] "
                          "[--dry-run]",
                          "Imports GigaChad GRC's mcp_credentials: each record is decrypted with the legacy key\n"
                          "(scrypt + AES-256-GCM, in software), sealed under the tenant's HSM-held key and stored\n"
                          "with its server id, name, creator and dates. Rows that fail are listed with their\n"
                          "reason and skipped; server ids the tenant already has are left alone, so running it\n"
                          "again imports nothing twice. A key that opens none of the first records stops the\n"
                          "import before anything is written.\n\n"
                          "exit status: 0 every row imported or already present, 1 failure (nothing more was\n"
                          "written), 2 usage, 3 finished but some rows failed",
                          opts, sizeof(opts) / sizeof(opts[0]), pos, 0, 0, &npos);
    if (rc) return rc < 0 ? CV_EXIT_OK : rc;
    if (!tenant || (!from == !from_file)) {
        fprintf(stderr, "credvault: import-legacy needs --tenant and exactly one of --from and --from-file\n");
        return CV_EXIT_USAGE;
    }
    struct key key;
    if ((rc = read_key(key_file, &key)) != 0) return rc;

    struct cv_config cfg;
    struct cv_app *app = NULL;
    struct cv_legacy_source src = {0};
    struct cv_legacy_summary sum = {0};
    rc = CV_EXIT_FAIL;
    if (cv_cli_config(ctx, &cfg) != 0) {
        cv_secret_free(key.bytes);
        return CV_EXIT_FAIL;
    }
    if (cv_failed(cv_app_open(&cfg, CV_APP_ALL, &app))) {
        cv_cli_report("start");
        goto out;
    }
    if (cv_failed(cv_keys_check_database(app))) {
        cv_cli_report("key check");
        goto out;
    }
    cv_result r = from ? cv_legacy_source_db(from, &src) : cv_legacy_source_file(from_file, &src);
    if (cv_failed(r)) {
        cv_cli_report("import-legacy");
        goto out;
    }
    struct output o = {.bar = isatty(STDERR_FILENO), .unit = from ? "row" : "line", .dry_run = dry != NULL};
    struct cv_principal p;
    cv_principal_cli(&p);
    const struct cv_legacy_import_options io = {.tenant_id = tenant,
                                                .key = key.bytes,
                                                .key_len = key.len,
                                                .dry_run = dry != NULL,
                                                .report = report,
                                                .progress = progress,
                                                .arg = &o};
    r = cv_legacy_import(app, &p, &src, &io, &sum);
    clear_bar(&o);
    if (sum.total > 0 || cv_ok(r))
        printf("%s %llu, already present %llu, failed %llu (of %llu rows)%s\n",
               dry ? "would import" : "imported", (unsigned long long)sum.imported, (unsigned long long)sum.present,
               (unsigned long long)sum.failed, (unsigned long long)sum.total,
               dry ? "; nothing was written (--dry-run)" : "");
    if (cv_failed(r)) {
        fflush(stdout);
        if (r.err == CV_ERR_AUTH)
            fprintf(stderr, "credvault: import-legacy: %s (key from %s)\n", cv_error_message(), key.from);
        else
            cv_cli_report("import-legacy");
        goto out;
    }
    rc = sum.failed ? IMPORT_EXIT_ROWS_FAILED : CV_EXIT_OK;
out:
    cv_legacy_source_close(&src);
    cv_app_close(app);
    cv_config_free(&cfg);
    cv_secret_free(key.bytes);
    return rc;
}
