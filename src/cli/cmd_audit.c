/* `credvault audit verify | export | checkpoint`: check the hash chains and
 * checkpoint signatures (naming the first broken link), write a tenant's
 * chain for offline verification with openssl, or seal the heads now. They
 * act as the platform admin "cli"; the export holds events, signatures and
 * the public key only, never a secret. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "cli/cli.h"
#include "domain/audit.h"
#include "domain/domain.h"

#define EXPORT_PATH_MAX_BYTES 4096

static int open_app(struct cv_cli_ctx *ctx, struct cv_config *cfg, struct cv_app **app)
{
    if (cv_cli_config(ctx, cfg) != 0) return CV_EXIT_FAIL;
    if (cv_failed(cv_app_open(cfg, CV_APP_HSM | CV_APP_STORE, app))) {
        cv_cli_report("start");
        cv_config_free(cfg);
        return CV_EXIT_FAIL;
    }
    return 0;
}

static void close_app(struct cv_app *app, struct cv_config *cfg)
{
    cv_app_close(app);
    cv_config_free(cfg);
}

int cv_cli_audit_verify(struct cv_cli_ctx *ctx, int argc, char **argv)
{
    const char *tenant = NULL, *json_flag = NULL;
    struct cv_cli_option opts[] = {
        {"--tenant", 1, "check one tenant's chain (and every checkpoint) only", &tenant},
        {"--json", 0, "print one JSON object for machines", &json_flag},
    };
    const char *pos[1];
    size_t npos;
    int rc = cv_cli_parse(argc, argv, "credvault audit verify [--tenant T] [--json]",
                          "Recomputes every audit event's hash from its fields and follows each chain\n"
                          "link by link, compares each chain's end with its head and with what the\n"
                          "signed checkpoints recorded, and checks every checkpoint's signature with the\n"
                          "HSM's audit key and its link to the checkpoint before. Names the first broken\n"
                          "link of each chain. Exit status 0 when everything holds, 1 otherwise.",
                          opts, 2, pos, 0, 0, &npos);
    if (rc) return rc < 0 ? CV_EXIT_OK : rc;
    struct cv_config cfg;
    struct cv_app *app;
    if ((rc = open_app(ctx, &cfg, &app)) != 0) return rc;
    struct cv_audit_report *rep = calloc(1, sizeof(*rep));
    if (!rep || cv_failed(cv_audit_verify(app, tenant, rep))) {
        if (rep)
            cv_cli_report("audit verify");
        else
            fprintf(stderr, "credvault: out of memory\n");
        free(rep);
        close_app(app, &cfg);
        return CV_EXIT_FAIL;
    }
    int ok = rep->nproblems == 0 && rep->problems_dropped == 0;
    if (json_flag) {
        json_t *j = cv_audit_report_json(rep);
        char *s = j ? json_dumps(j, JSON_INDENT(2)) : NULL;
        printf("%s\n", s ? s : "{}");
        cv_json_free(s);
        json_decref(j);
    } else {
        printf("audit verify: %llu chain%s, %llu events, %llu checkpoints; signing key sha256:%s, installation %s\n",
               (unsigned long long)rep->chains, rep->chains == 1 ? "" : "s", (unsigned long long)rep->events,
               (unsigned long long)rep->checkpoints, rep->key_fingerprint, rep->installation);
        for (size_t i = 0; i < rep->nsigners; i++)
            printf("checkpoints %lld-%lld (%llu): signed by %s key sha256:%s, installation %s\n",
                   (long long)rep->signers[i].first_id, (long long)rep->signers[i].last_id,
                   (unsigned long long)rep->signers[i].checkpoints, rep->signers[i].foreign ? "FOREIGN" : "this installation's",
                   rep->signers[i].key_fingerprint[0] ? rep->signers[i].key_fingerprint : "(not named)",
                   rep->signers[i].installation[0] ? rep->signers[i].installation : "(not named: v1 checkpoint)");
        if (rep->signers_dropped) printf("(%zu more checkpoints' signers not shown)\n", rep->signers_dropped);
        for (size_t i = 0; i < rep->nproblems; i++) {
            if (rep->problems[i].chain[0])
                printf("BROKEN chain %s: first broken link at event %lld%s: %s\n", rep->problems[i].chain,
                       (long long)rep->problems[i].seq, rep->problems[i].event_id ? "" : " (no such row)",
                       rep->problems[i].reason);
            else
                printf("BROKEN checkpoints: %s\n", rep->problems[i].reason);
        }
        if (rep->problems_dropped) printf("(%zu more problems not shown)\n", rep->problems_dropped);
        printf("%s\n", ok ? "OK: every chain is intact and every checkpoint verifies" : "FAILED");
    }
    free(rep);
    close_app(app, &cfg);
    return ok ? CV_EXIT_OK : CV_EXIT_FAIL;
}

/* ---- export ---- */

struct dir_sink {
    char root[EXPORT_PATH_MAX_BYTES];
};

static int path_ok(const char *p)
{
    if (!*p || *p == '/' || strstr(p, "..")) return 0;
    for (const char *c = p; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') || *c == '.' ||
              *c == '_' || *c == '-' || *c == '/'))
            return 0;
    return 1;
}

static cv_result write_file(void *arg, const char *path, const void *data, size_t len)
{
    struct dir_sink *d = arg;
    CV_ENSURE(path_ok(path), CV_ERR_INTERNAL, "refusing to write export path '%.64s'", path);
    char full[EXPORT_PATH_MAX_BYTES];
    int n = snprintf(full, sizeof(full), "%s/%s", d->root, path);
    CV_ENSURE(n > 0 && (size_t)n < sizeof(full), CV_ERR_INPUT, "export path too long");
    /* the sink's folders: events/ and checkpoints/ */
    char *slash = strrchr(full, '/');
    if (slash && slash > full + strlen(d->root)) {
        *slash = '\0';
        if (mkdir(full, 0700) != 0 && errno != EEXIST)
            CV_BAIL(CV_ERR_INPUT, "cannot create %s: %s", full, strerror(errno));
        *slash = '/';
    }
    int fd = open(full, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    CV_ENSURE(fd >= 0, CV_ERR_INPUT, "cannot create %s: %s", full, strerror(errno));
    const char *p = data;
    size_t left = len;
    while (left) {
        ssize_t w = write(fd, p, left);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            close(fd);
            CV_BAIL(CV_ERR_INPUT, "cannot write %s: %s", full, strerror(errno));
        }
        p += w;
        left -= (size_t)w;
    }
    CV_ENSURE(close(fd) == 0, CV_ERR_INPUT, "cannot write %s: %s", full, strerror(errno));
    return CV_OK;
}

int cv_cli_audit_export(struct cv_cli_ctx *ctx, int argc, char **argv)
{
    const char *tenant = NULL, *out = NULL;
    struct cv_cli_option opts[] = {
        {"--tenant", 1, "the tenant whose chain to export (" CV_AUDIT_PLATFORM_CHAIN " for the platform's)", &tenant},
        {"--out", 1, "a folder to create (it must not exist)", &out},
    };
    const char *pos[1];
    size_t npos;
    int rc = cv_cli_parse(argc, argv, "credvault audit export --tenant T --out DIR",
                          "Seals the newest events with a signed checkpoint, then writes into DIR the\n"
                          "tenant's events (the exact bytes that were hashed, one file each), every\n"
                          "checkpoint that signed the chain (payload, signature and the chain's head\n"
                          "line), the audit public key (PEM) and verify.sh, the openssl commands that\n"
                          "check it all offline (docs/operations.md). Nothing of other tenants.",
                          opts, 2, pos, 0, 0, &npos);
    if (rc) return rc < 0 ? CV_EXIT_OK : rc;
    if (!tenant || !out) {
        fprintf(stderr, "credvault: audit export needs --tenant and --out\n");
        return CV_EXIT_USAGE;
    }
    struct dir_sink d;
    if (snprintf(d.root, sizeof(d.root), "%s", out) >= (int)sizeof(d.root) - 64) {
        fprintf(stderr, "credvault: audit export: --out is too long\n");
        return CV_EXIT_USAGE;
    }
    struct cv_config cfg;
    struct cv_app *app;
    if ((rc = open_app(ctx, &cfg, &app)) != 0) return rc;
    if (mkdir(d.root, 0700) != 0) {
        fprintf(stderr, "credvault: audit export: cannot create %s: %s\n", d.root, strerror(errno));
        close_app(app, &cfg);
        return CV_EXIT_FAIL;
    }
    struct cv_principal cli;
    cv_principal_cli(&cli);
    const struct cv_audit_sink sink = {&d, write_file};
    uint64_t events = 0, checkpoints = 0;
    cv_result r = cv_audit(app, &cli, NULL, "audit.export", tenant, "success");
    if (cv_ok(r)) r = cv_audit_export(app, tenant, &sink, &events, &checkpoints);
    if (cv_failed(r)) {
        cv_cli_report("audit export");
        rc = CV_EXIT_FAIL;
    } else {
        printf("exported %llu events and %llu checkpoints of %s to %s; check them with: sh %s/verify.sh\n",
               (unsigned long long)events, (unsigned long long)checkpoints, tenant, d.root, d.root);
    }
    close_app(app, &cfg);
    return rc;
}

int cv_cli_audit_checkpoint(struct cv_cli_ctx *ctx, int argc, char **argv)
{
    const char *pos[1];
    size_t npos;
    int rc = cv_cli_parse(argc, argv, "credvault audit checkpoint",
                          "Signs the heads of the audit chains that moved since they were last sealed,\n"
                          "now (`serve` does it every CREDVAULT_AUDIT_CHECKPOINT_S seconds).",
                          NULL, 0, pos, 0, 0, &npos);
    if (rc) return rc < 0 ? CV_EXIT_OK : rc;
    struct cv_config cfg;
    struct cv_app *app;
    if ((rc = open_app(ctx, &cfg, &app)) != 0) return rc;
    int made = 0;
    if (cv_failed(cv_audit_checkpoint(app, &made))) {
        cv_cli_report("audit checkpoint");
        rc = CV_EXIT_FAIL;
    } else {
        printf("%s\n", made ? "signed a checkpoint" : "nothing to sign: every chain's head is sealed");
    }
    close_app(app, &cfg);
    return rc;
}
