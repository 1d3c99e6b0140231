/* Runs the real `credvault serve` binary for integration tests, against the
 * SoftHSM2 token and PostgreSQL cluster that run-integration made: migrate,
 * hsm init, an admin token, a TLS certificate, then serve on a free port. */
#ifndef CV_TEST_SERVICE_H
#define CV_TEST_SERVICE_H

#include <sys/types.h>

struct cv_test_service {
    pid_t pid;
    unsigned port;
    char base_url[64];
    char ca_file[512];
    char admin_token[160];
    char log_file[512];
    char dir[256];
};

/* Runs `credvault <args>` with the test's environment; returns the exit status
 * and, when out is given, its stdout (trailing newline removed). */
int cv_test_cli(const char *args, char *out, size_t out_len);
/* Prepares the instance (first call only: migrate, hsm init, admin token,
 * certificate) and starts the server; waits until /healthz answers. Extra
 * settings as "NAME=value" strings, NULL-terminated (may be NULL). */
int cv_test_service_start(struct cv_test_service *s, const char *const *extra_env);
/* SIGTERM, then waits; returns the exit status (or -1). */
int cv_test_service_stop(struct cv_test_service *s);
/* Whether `needle` appears in the service's log file. */
int cv_test_service_log_contains(const struct cv_test_service *s, const char *needle);
/* Runs a shell command with the test environment; returns its exit status. */
int cv_test_sh(const char *cmd);
/* Runs a shell command and captures its stdout into a malloc'ed string. */
char *cv_test_sh_output(const char *cmd);

#endif
