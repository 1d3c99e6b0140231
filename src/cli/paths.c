/* Where the binary finds the files it ships with: the migrations sit at a
 * fixed place relative to an installed binary (bin/ -> share/credvault/),
 * so a package or `cmake --install` to any prefix works without settings,
 * and the binary in the build folder uses the source tree's. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"

#ifndef CV_MIGRATIONS_RELATIVE
#define CV_MIGRATIONS_RELATIVE "../share/credvault/migrations"
#endif
#ifndef CV_MIGRATIONS_SOURCE
#define CV_MIGRATIONS_SOURCE "migrations"
#endif

static int is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

const char *cv_cli_migrations_dir(const char *option, char *buf, size_t size)
{
    if (option && *option) return option;
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n > 0) {
        exe[n] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash) {
            *slash = '\0';
            char rel[PATH_MAX];
            int w = snprintf(rel, sizeof(rel), "%s/%s", exe, CV_MIGRATIONS_RELATIVE);
            /* realpath: messages and --help name the folder without "bin/.." */
            if (w > 0 && (size_t)w < sizeof(rel) && is_dir(rel) && size >= PATH_MAX && realpath(rel, buf)) return buf;
        }
    }
    return CV_MIGRATIONS_SOURCE;
}

void cv_cli_migrations_help(char *buf, size_t size)
{
    char dir[PATH_MAX];
    snprintf(buf, size, "folder of the NNNN_*.sql migrations (default: %s)",
             cv_cli_migrations_dir(NULL, dir, sizeof(dir)));
}
