/* `credvault version` and `credvault --version`: the release, the commit and
 * build type fixed when the build was configured, and, with --json, the
 * versions of the libraries as this process loaded them (a distribution's
 * security update changes those without a rebuild). */
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "cli/cli.h"
#include "credvault/metrics.h"
#include "domain/ops.h"
#include "http/http.h"

#ifndef CV_GIT_COMMIT
#define CV_GIT_COMMIT "unknown"
#endif
#ifndef CV_BUILD_TYPE
#define CV_BUILD_TYPE "unknown"
#endif

const char *cv_cli_build_version(void) { return CV_VERSION; }
const char *cv_cli_build_commit(void) { return CV_GIT_COMMIT; }
const char *cv_cli_build_type(void) { return CV_BUILD_TYPE; }

void cv_cli_print_version(FILE *f)
{
    fprintf(f, "credvault %s (commit %s, %s)\n", CV_VERSION, CV_GIT_COMMIT, CV_BUILD_TYPE);
}

json_t *cv_cli_library_versions(void)
{
    json_t *libs = cv_app_library_versions();
    if (!libs) return NULL;
    if (json_object_set_new(libs, "libmicrohttpd", json_string(cv_http_mhd_version())) != 0 ||
        json_object_set_new(libs, "gnutls", json_string(cv_http_gnutls_version())) != 0 ||
        json_object_set_new(libs, "jansson", json_string(jansson_version_str())) != 0) {
        json_decref(libs);
        return NULL;
    }
    return libs;
}

int cv_cli_version(struct cv_cli_ctx *ctx, int argc, char **argv)
{
    (void)ctx;
    const char *as_json = NULL;
    struct cv_cli_option opts[] = {{"--json", 0, "one JSON object, with the libraries' run-time versions", &as_json}};
    const char *pos[1];
    size_t npos;
    int rc = cv_cli_parse(argc, argv, "credvault version [--json]",
                          "Prints the version, the commit it was built from and the build type.\n"
                          "With --json also the versions of OpenSSL, libpq, libmicrohttpd, GnuTLS,\n"
                          "jansson and cjose that this process loaded.",
                          opts, 1, pos, 0, 0, &npos);
    if (rc) return rc < 0 ? CV_EXIT_OK : rc;
    if (!as_json) {
        cv_cli_print_version(stdout);
        return CV_EXIT_OK;
    }
    json_t *libs = cv_cli_library_versions();
    json_t *doc = libs ? json_pack("{s:s, s:s, s:s, s:o}", "version", CV_VERSION, "commit", CV_GIT_COMMIT,
                                   "build_type", CV_BUILD_TYPE, "libraries", libs)
                       : NULL;
    if (!doc) {
        fprintf(stderr, "credvault: out of memory\n");
        return CV_EXIT_FAIL;
    }
    rc = cv_cli_print_json(doc);
    json_decref(doc);
    return rc;
}

cv_result cv_cli_set_build_info(struct cv_metrics *reg)
{
    const char *names[CV_METRICS_INFO_MAX] = {"version", "commit", "build_type"};
    const char *values[CV_METRICS_INFO_MAX] = {CV_VERSION, CV_GIT_COMMIT, CV_BUILD_TYPE};
    size_t n = 3;
    json_t *libs = cv_cli_library_versions();
    CV_ENSURE(libs != NULL, CV_ERR_MEMORY, "out of memory");
    const char *k;
    json_t *v;
    json_object_foreach(libs, k, v) {
        if (n == CV_METRICS_INFO_MAX) break;
        names[n] = k;
        values[n++] = json_string_value(v);
    }
    cv_result r = cv_metrics_set_build_info(reg, names, values, n);
    json_decref(libs);
    return r;
}
