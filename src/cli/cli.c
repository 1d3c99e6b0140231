/* Command dispatch for the one binary: global options, the command table and
 * --help. Each command lives in its own file; none prints a secret except
 * `token create`, which shows a new token exactly once. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "credvault/buf.h"
#include "credvault/log.h"

static const struct cv_cli_command commands[] = {
    {"serve", NULL, cv_cli_serve, "run the HTTPS API service"},
    {"migrate", NULL, cv_cli_migrate, "apply database migrations (as the owning role)"},
    {"hsm", "init", cv_cli_hsm_init, "create the master, binding and audit signing keys in the token"},
    {"hsm", "status", cv_cli_hsm_status, "show module, token, mechanisms, quirk profile and keys"},
    {"tenant", "create", cv_cli_tenant_create, "create a tenant and its first key"},
    {"tenant", "list", cv_cli_tenant_list, "list tenants and their key versions"},
    {"tenant", "rotate-key", cv_cli_tenant_rotate_key, "start a new key version for a tenant's new writes"},
    {"tenant", "rewrap", cv_cli_tenant_rewrap, "re-encrypt a tenant's records under its newest key version"},
    {"tenant", "retire-keys", cv_cli_tenant_retire_keys, "raise a tenant's minimum decryption version"},
    {"tenant", "destroy-keys", cv_cli_tenant_destroy_keys, "destroy a tenant's retired key versions"},
    {"tenant", "delete", cv_cli_tenant_delete, "crypto-shred a tenant: keys, credentials, tokens"},
    {"master", "rotate", cv_cli_master_rotate, "create the next master key and rewrap every tenant key under it"},
    {"master", "rewrap", cv_cli_master_rewrap, "resume or repeat the rewrap of tenant keys under the newest master"},
    {"master", "retire", cv_cli_master_retire, "destroy an old master key once no tenant key needs it"},
    {"master", "list", cv_cli_master_list, "list master key versions and what they wrap"},
    {"token", "create", cv_cli_token_create, "mint an API token (shown once)"},
    {"token", "revoke", cv_cli_token_revoke, "revoke an API token by id"},
    {"audit", "verify", cv_cli_audit_verify, "check the audit hash chains and checkpoint signatures"},
    {"audit", "export", cv_cli_audit_export, "write a tenant's audit chain for offline checks with openssl"},
    {"audit", "checkpoint", cv_cli_audit_checkpoint, "sign the audit chains' new heads now"},
    {"run", NULL, cv_cli_run, "fetch a server's credentials with a workload token and exec a command"},
    {"import-legacy", NULL, cv_cli_import_legacy, "import GigaChad GRC's mcp_credentials records"},
    {"version", NULL, cv_cli_version, "print the version (--json: with commit, build type and library versions)"},
};
#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static void usage(FILE *f)
{
    fprintf(f, "usage: credvault [--config FILE] <command> [options]\n");
}

static void help(void)
{
    usage(stdout);
    printf("\ncredvault keeps integration credentials encrypted under per-tenant keys\n"
           "wrapped by a master key that never leaves a PKCS#11 token.\n\ncommands:\n");
    for (size_t i = 0; i < NCOMMANDS; i++) {
        char name[64];
        snprintf(name, sizeof(name), "%s%s%s", commands[i].name, commands[i].sub ? " " : "",
                 commands[i].sub ? commands[i].sub : "");
        printf("  %-22s %s\n", name, commands[i].summary);
    }
    printf("\nglobal options:\n"
           "  --config FILE    read NAME=value settings (environment variables win)\n"
           "  --help           this text; `credvault <command> --help` explains a command\n"
           "  --version        the version, commit and build type (`credvault version --json` for more)\n"
           "\nexit status: 0 success, 1 failure, 2 usage error (run and import-legacy add their own: see their --help)\n");
}

int cv_cli_main(int argc, char **argv)
{
    struct cv_cli_ctx ctx = {.config_file = NULL};
    /* every command may hold a PIN, a token or plaintext: no core dumps, no
     * ptrace by other users (RLIMIT_CORE 0 is inherited by what `run` execs,
     * which holds the credentials too) */
    cv_process_harden();
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            help();
            return CV_EXIT_OK;
        }
        if (strcmp(argv[i], "--version") == 0) {
            cv_cli_print_version(stdout);
            return CV_EXIT_OK;
        }
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
            ctx.config_file = argv[++i];
            continue;
        }
        if (strncmp(argv[i], "--config=", 9) == 0) {
            ctx.config_file = argv[i] + 9;
            continue;
        }
        fprintf(stderr, "credvault: unknown option %s\n", argv[i]);
        usage(stderr);
        return CV_EXIT_USAGE;
    }
    if (i >= argc) {
        usage(stderr);
        return CV_EXIT_USAGE;
    }
    const char *name = argv[i];
    const char *sub = i + 1 < argc ? argv[i + 1] : NULL;
    int known_name = 0;
    for (size_t c = 0; c < NCOMMANDS; c++) {
        if (strcmp(commands[c].name, name) != 0) continue;
        known_name = 1;
        if (!commands[c].sub) return commands[c].run(&ctx, argc - i, argv + i);
        if (sub && strcmp(commands[c].sub, sub) == 0) return commands[c].run(&ctx, argc - i - 1, argv + i + 1);
    }
    if (known_name) {
        int want_help = sub && (strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0);
        FILE *f = want_help ? stdout : stderr;
        if (!want_help) fprintf(f, "credvault: %s needs a subcommand\n", name);
        fprintf(f, "usage: credvault [--config FILE] %s <subcommand> [options]\n\nsubcommands:\n", name);
        for (size_t c = 0; c < NCOMMANDS; c++)
            if (strcmp(commands[c].name, name) == 0) fprintf(f, "  %-10s %s\n", commands[c].sub, commands[c].summary);
        return want_help ? CV_EXIT_OK : CV_EXIT_USAGE;
    }
    fprintf(stderr, "credvault: unknown command '%s'\n", name);
    usage(stderr);
    return CV_EXIT_USAGE;
}
