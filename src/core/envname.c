/* Credential names: the syntax of an environment variable name and the
 * family of names that take over the program they reach. A value under such
 * a name runs code of the value's choosing in the workload (LD_PRELOAD, a
 * SHELLOPTS=xtrace with a PS4 command substitution, NODE_OPTIONS=--require),
 * so no template and no caller can allow one. */
#include <string.h>

#include "credvault/envname.h"

static int alpha(char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_'; }

int cv_env_name_valid(const char *s)
{
    if (!s || !alpha(*s)) return 0;
    for (; *s; s++)
        if (!alpha(*s) && !(*s >= '0' && *s <= '9')) return 0;
    return 1;
}

struct family {
    const char *what;
    const char *const *prefixes; /* NULL-terminated; a name starting with one */
    const char *const *names;    /* NULL-terminated; exact names */
};

/* glibc's loader and the names it drops for set-uid programs
 * (UNSECURE_ENVVARS), Darwin's dyld */
static const char *const loader_prefixes[] = {"LD_", "DYLD_", "MALLOC_", NULL};
static const char *const loader_names[] = {"GLIBC_TUNABLES", "GCONV_PATH", "GETCONF_DIR", "HOSTALIASES", "LOCALDOMAIN",
                                           "LOCPATH", "NIS_PATH", "NLSPATH", "RESOLV_HOST_CONF", "RES_OPTIONS",
                                           "TMPDIR", "TZDIR", NULL};
/* shells: startup files, traced commands, prompts that expand, word splitting,
 * exported functions, the command search path */
static const char *const shell_prefixes[] = {"BASH_", NULL};
static const char *const shell_names[] = {"SHELLOPTS", "BASHOPTS", "PS1", "PS2", "PS3", "PS4", "PROMPT_COMMAND",
                                          "ENV", "IFS", "CDPATH", "GLOBIGNORE", "ZDOTDIR", "PATH", "HOME", "SHELL",
                                          "FPATH", NULL};
/* interpreters and runtimes an MCP server is written in: options, module
 * paths and start-up hooks */
static const char *const runtime_prefixes[] = {"PYTHON", "NODE_", "RUBY", "PERL", "JDK_JAVA_", "_JAVA_", "LUA_",
                                               "DOTNET_", "CORECLR_", "COR_", "ELECTRON_", "GEM_", "BUNDLE_", NULL};
static const char *const runtime_names[] = {"JAVA_TOOL_OPTIONS", "JAVA_OPTS", "CLASSPATH", "PHPRC", "PHP_INI_SCAN_DIR",
                                            "TCLLIBPATH", "RUBYOPT", "NPM_CONFIG_PREFIX", "OPENSSL_CONF",
                                            "OPENSSL_ENGINES", "OPENSSL_MODULES", "SSLKEYLOGFILE", NULL};
/* programs other programs start on their behalf: git's helpers and hooks,
 * password prompts, editors, pagers and browsers */
static const char *const helper_prefixes[] = {"GIT_", NULL};
static const char *const helper_names[] = {"SSH_ASKPASS", "SUDO_ASKPASS", "BROWSER", "EDITOR", "VISUAL", "PAGER",
                                           "MANPAGER", "LESSOPEN", "LESSCLOSE", NULL};

static const struct family families[] = {
    {"changes how programs are loaded (dynamic loader, allocator, libc)", loader_prefixes, loader_names},
    {"changes what a shell runs (start-up files, tracing, prompts, search path)", shell_prefixes, shell_names},
    {"makes an interpreter or runtime load code (options, module paths, hooks)", runtime_prefixes, runtime_names},
    {"names a program that other programs run (git helpers, askpass, editor, pager, browser)", helper_prefixes,
     helper_names},
};

const char *cv_env_name_forbidden(const char *name)
{
    if (!name) return NULL;
    for (size_t f = 0; f < sizeof(families) / sizeof(families[0]); f++) {
        for (const char *const *p = families[f].prefixes; *p; p++)
            if (strncmp(name, *p, strlen(*p)) == 0) return families[f].what;
        for (const char *const *n = families[f].names; *n; n++)
            if (strcmp(name, *n) == 0) return families[f].what;
    }
    return NULL;
}
