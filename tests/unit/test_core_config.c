/* Configuration text, settings and secret files (src/core/config.c): refusals first. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

#include "credvault/buf.h"
#include "credvault/config.h"

static cv_err parse(struct cv_config *cfg, const char *text)
{
    return cv_config_parse_text(cfg, text, strlen(text)).err;
}

static cv_err parse_fresh(const char *text)
{
    struct cv_config cfg;
    cv_config_defaults(&cfg);
    cv_err e = parse(&cfg, text);
    cv_config_free(&cfg);
    return e;
}

/* A temporary file with `content`; the caller unlinks it. */
static void temp_file(char path[64], const void *content, size_t n)
{
    strcpy(path, "/tmp/cv-test-config-XXXXXX");
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, content, n), (ssize_t)n);
    ck_assert_int_eq(close(fd), 0);
}

START_TEST(unknown_setting_refused)
{
    ck_assert_int_eq(parse_fresh("CREDVAULT_NOPE=1\n"), CV_ERR_INPUT);
    ck_assert_int_eq(parse_fresh("CREDVAULT_LISTENX=1\n"), CV_ERR_INPUT);
    ck_assert_int_eq(parse_fresh("CREDVAULT_LISTE=1\n"), CV_ERR_INPUT);
    ck_assert_int_eq(parse_fresh("credvault_listen=1\n"), CV_ERR_INPUT);
    struct cv_config cfg;
    cv_config_defaults(&cfg);
    ck_assert_int_eq(cv_config_set(&cfg, "CREDVAULT_NOPE", "1").err, CV_ERR_INPUT);
    ck_assert_int_eq(cv_config_set(&cfg, "", "1").err, CV_ERR_INPUT);
    cv_config_free(&cfg);
}
END_TEST

START_TEST(malformed_line_refused)
{
    static const char *const bad[] = {"CREDVAULT_LISTEN\n", "CREDVAULT_LISTEN 1.2.3.4:1\n", "CREDVAULT_LISTEN =x\n",
                                      "=x\n", "export CREDVAULT_LISTEN=x\n", "CREDVAULT_LISTEN:x\n", "x\n"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(parse_fresh(bad[i]) == CV_ERR_INPUT, "accepted: %s", bad[i]);
}
END_TEST

START_TEST(number_out_of_range_refused)
{
    static const char *const bad[] = {"CREDVAULT_HSM_SESSIONS=0", "CREDVAULT_HSM_SESSIONS=1025", "CREDVAULT_THREADS=257",
                                      "CREDVAULT_HSM_RETRIES=21", "CREDVAULT_MAX_BODY_BYTES=255",
                                      "CREDVAULT_MAX_BODY_BYTES=16777217", "CREDVAULT_KEY_MAX_ENCRYPTIONS=0",
                                      "CREDVAULT_KEY_MAX_ENCRYPTIONS=4294967297",
                                      /* beyond 64 bits, and beyond 32 bits for an unsigned field */
                                      "CREDVAULT_THREADS=18446744073709551617", "CREDVAULT_THREADS=4294967298"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(parse_fresh(bad[i]) == CV_ERR_INPUT, "accepted: %s", bad[i]);
}
END_TEST

START_TEST(non_number_refused)
{
    static const char *const bad[] = {"abc", "-1", "+1", " 1", "1x", "0x10", "", "1.5", "1e3", "1 2", "\"\"", "'4 '"};
    char line[64];
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(line, sizeof(line), "CREDVAULT_THREADS=%s\n", bad[i]);
        ck_assert_msg(parse_fresh(line) == CV_ERR_INPUT, "accepted: %s", line);
    }
    ck_assert_int_eq(parse_fresh("CREDVAULT_TLS=yes"), CV_ERR_INPUT);
    ck_assert_int_eq(parse_fresh("CREDVAULT_TLS="), CV_ERR_INPUT);
}
END_TEST

START_TEST(line_too_long_refused)
{
    const char *prefix = "CREDVAULT_DATABASE_URL=";
    size_t plen = strlen(prefix);
    char *text = malloc(CV_CONFIG_LINE_MAX_BYTES + 3);
    ck_assert_ptr_nonnull(text);
    /* one byte over */
    memcpy(text, prefix, plen);
    memset(text + plen, 'x', CV_CONFIG_LINE_MAX_BYTES + 1 - plen);
    text[CV_CONFIG_LINE_MAX_BYTES + 1] = '\n';
    text[CV_CONFIG_LINE_MAX_BYTES + 2] = '\0';
    ck_assert_int_eq(parse_fresh(text), CV_ERR_INPUT);
    /* exactly at the limit */
    text[CV_CONFIG_LINE_MAX_BYTES] = '\n';
    text[CV_CONFIG_LINE_MAX_BYTES + 1] = '\0';
    struct cv_config cfg;
    cv_config_defaults(&cfg);
    ck_assert_int_eq(parse(&cfg, text), CV_ERR_NONE);
    ck_assert_uint_eq(strlen(cfg.database_url), CV_CONFIG_LINE_MAX_BYTES - plen);
    cv_config_free(&cfg);
    /* a long comment is still a long line */
    memset(text, '#', CV_CONFIG_LINE_MAX_BYTES + 1);
    text[CV_CONFIG_LINE_MAX_BYTES + 1] = '\0';
    ck_assert_int_eq(parse_fresh(text), CV_ERR_INPUT);
    free(text);
}
END_TEST

START_TEST(oversize_text_refused)
{
    size_t n = CV_CONFIG_FILE_MAX_BYTES + 1;
    char *text = malloc(n);
    ck_assert_ptr_nonnull(text);
    memset(text, '\n', n);
    struct cv_config cfg;
    cv_config_defaults(&cfg);
    ck_assert_int_eq(cv_config_parse_text(&cfg, text, n).err, CV_ERR_TOO_LARGE);
    ck_assert_int_eq(cv_config_parse_text(&cfg, text, n - 1).err, CV_ERR_NONE);
    cv_config_free(&cfg);
    free(text);
}
END_TEST

START_TEST(nul_byte_refused)
{
    const char text[] = "CREDVAULT_LISTEN=127.0.0.1:1\0:2\n";
    struct cv_config cfg;
    cv_config_defaults(&cfg);
    ck_assert_int_eq(cv_config_parse_text(&cfg, text, sizeof(text) - 1).err, CV_ERR_INPUT);
    cv_config_free(&cfg);
}
END_TEST

START_TEST(refusal_does_not_echo_value)
{
    ck_assert_int_eq(parse_fresh("CREDVAULT_THREADS=hunter2-secret\n"), CV_ERR_INPUT);
    ck_assert_ptr_null(strstr(cv_error_message(), "hunter2"));
    ck_assert_int_eq(parse_fresh("\n\nCREDVAULT_NOPE=hunter2-secret\n"), CV_ERR_INPUT);
    ck_assert_ptr_null(strstr(cv_error_message(), "hunter2"));
    ck_assert_ptr_nonnull(strstr(cv_error_message(), "line 3"));
}
END_TEST

START_TEST(secret_file_refusals)
{
    struct cv_config cfg;
    char path[64];
    cv_config_defaults(&cfg);
    ck_assert_int_eq(cv_config_set(&cfg, "CREDVAULT_HSM_PIN_FILE", "/nonexistent/cv-pin").err, CV_ERR_INPUT);
    temp_file(path, "", 0);
    ck_assert_int_eq(cv_config_set(&cfg, "CREDVAULT_HSM_PIN_FILE", path).err, CV_ERR_INPUT);
    unlink(path);
    temp_file(path, "\n", 1);
    ck_assert_int_eq(cv_config_set(&cfg, "CREDVAULT_HSM_PIN_FILE", path).err, CV_ERR_INPUT);
    unlink(path);
    temp_file(path, "12\0" "34\n", 6);
    ck_assert_int_eq(cv_config_set(&cfg, "CREDVAULT_HSM_PIN_FILE", path).err, CV_ERR_INPUT);
    unlink(path);
    char *big = malloc(CV_SECRET_FILE_MAX_BYTES + 1);
    ck_assert_ptr_nonnull(big);
    memset(big, '7', CV_SECRET_FILE_MAX_BYTES + 1);
    temp_file(path, big, CV_SECRET_FILE_MAX_BYTES + 1);
    ck_assert_int_eq(cv_config_set(&cfg, "CREDVAULT_HSM_PIN_FILE", path).err, CV_ERR_INPUT);
    unlink(path);
    temp_file(path, big, CV_SECRET_FILE_MAX_BYTES); /* exactly the limit */
    ck_assert_int_eq(cv_config_set(&cfg, "CREDVAULT_HSM_PIN_FILE", path).err, CV_ERR_NONE);
    ck_assert_uint_eq(strlen(cfg.hsm_pin), CV_SECRET_FILE_MAX_BYTES);
    unlink(path);
    free(big);
    ck_assert_int_eq(cv_config_set(&cfg, "CREDVAULT_HSM_PIN", "").err, CV_ERR_INPUT);
    cv_config_free(&cfg);
}
END_TEST

START_TEST(defaults_applied)
{
    struct cv_config cfg;
    cv_config_defaults(&cfg);
    ck_assert_str_eq(cfg.pkcs11_module, "/usr/lib/softhsm/libsofthsm2.so");
    ck_assert_ptr_null(cfg.pkcs11_token);
    ck_assert_ptr_null(cfg.hsm_pin);
    ck_assert_uint_eq(cfg.hsm_sessions, 4);
    ck_assert_uint_eq(cfg.hsm_retries, 4);
    ck_assert_uint_eq(cfg.hsm_backoff_ms, 50);
    ck_assert_uint_eq(cfg.key_cache_size, 1024);
    ck_assert_ptr_null(cfg.database_url);
    ck_assert_ptr_null(cfg.database_password);
    ck_assert_str_eq(cfg.listen, "127.0.0.1:8443");
    ck_assert_int_eq(cfg.tls, 1);
    ck_assert_ptr_null(cfg.tls_cert);
    ck_assert_ptr_null(cfg.tls_key);
    ck_assert_uint_eq(cfg.threads, 2);
    ck_assert_uint_eq(cfg.max_body_bytes, 65536);
    ck_assert_uint_eq(cfg.max_connections, 512);
    ck_assert_uint_eq(cfg.max_connections_per_ip, 64);
    ck_assert_uint_eq(cfg.connection_timeout_s, 30);
    ck_assert_uint_eq(cfg.max_env_keys, 64);
    ck_assert_uint_eq(cfg.max_env_name_bytes, 128);
    ck_assert_uint_eq(cfg.max_env_value_bytes, 8192);
    ck_assert_ptr_null(cfg.templates_file);
    ck_assert_str_eq(cfg.key_residency, "hsm");
    ck_assert_uint_eq(cfg.key_max_encryptions, 1000000000u);
    ck_assert_str_eq(cfg.log_level, "info");
    cv_config_free(&cfg);
}
END_TEST

START_TEST(key_residency_is_hsm_or_memory)
{
    struct cv_config cfg;
    cv_config_defaults(&cfg);
    /* a misspelt or differently cased value never falls back to the other mode */
    ck_assert_int_eq(cv_config_set(&cfg, "CREDVAULT_KEY_RESIDENCY", "memroy").err, CV_ERR_INPUT);
    ck_assert_int_eq(cv_config_set(&cfg, "CREDVAULT_KEY_RESIDENCY", "Memory").err, CV_ERR_INPUT);
    ck_assert_int_eq(cv_config_set(&cfg, "CREDVAULT_KEY_RESIDENCY", "").err, CV_ERR_INPUT);
    ck_assert_str_eq(cfg.key_residency, "hsm");
    ck_assert(cv_ok(cv_config_set(&cfg, "CREDVAULT_KEY_RESIDENCY", "memory")));
    ck_assert_str_eq(cfg.key_residency, "memory");
    ck_assert(cv_ok(cv_config_set(&cfg, "CREDVAULT_KEY_RESIDENCY", "hsm")));
    ck_assert_str_eq(cfg.key_residency, "hsm");
    cv_config_free(&cfg);
}
END_TEST

START_TEST(every_documented_default_is_valid)
{
    struct cv_config cfg;
    cv_config_defaults(&cfg);
    size_t n = cv_config_settings_count();
    ck_assert_uint_gt(n, 0);
    ck_assert_ptr_null(cv_config_setting_at(n));
    for (size_t i = 0; i < n; i++) {
        const struct cv_config_setting *st = cv_config_setting_at(i);
        ck_assert_ptr_nonnull(st);
        ck_assert(strncmp(st->name, "CREDVAULT_", 10) == 0);
        ck_assert_ptr_nonnull(st->help);
        if (st->default_value) ck_assert_msg(cv_ok(cv_config_set(&cfg, st->name, st->default_value)), "%s", st->name);
    }
    cv_config_free(&cfg);
}
END_TEST

START_TEST(name_value_comments_blank_lines)
{
    struct cv_config cfg;
    cv_config_defaults(&cfg);
    ck_assert_int_eq(parse(&cfg, "# credvault\n"
                                 "\n"
                                 "   \t\n"
                                 "  # indented comment\n"
                                 "CREDVAULT_LISTEN=0.0.0.0:9443\n"
                                 "  CREDVAULT_THREADS=8  \n"
                                 "CREDVAULT_TLS=off\n"
                                 "CREDVAULT_KEY_MAX_ENCRYPTIONS=4294967296\n"
                                 "CREDVAULT_DATABASE_URL=postgresql://cv@db/cv?sslmode=verify-full&x=a=b\n"
                                 "CREDVAULT_PKCS11_TOKEN=pkcs11:token=credvault;serial=1234"),
                     CV_ERR_NONE);
    ck_assert_str_eq(cfg.listen, "0.0.0.0:9443");
    ck_assert_uint_eq(cfg.threads, 8);
    ck_assert_int_eq(cfg.tls, 0);
    ck_assert_uint_eq(cfg.key_max_encryptions, 4294967296ull);
    ck_assert_str_eq(cfg.database_url, "postgresql://cv@db/cv?sslmode=verify-full&x=a=b");
    ck_assert_str_eq(cfg.pkcs11_token, "pkcs11:token=credvault;serial=1234"); /* last line without newline */
    ck_assert_str_eq(cfg.log_level, "info");                                   /* untouched default */
    /* a later line wins */
    ck_assert_int_eq(parse(&cfg, "CREDVAULT_THREADS=3\nCREDVAULT_THREADS=4\n"), CV_ERR_NONE);
    ck_assert_uint_eq(cfg.threads, 4);
    ck_assert_int_eq(parse(&cfg, ""), CV_ERR_NONE);
    cv_config_free(&cfg);
}
END_TEST

START_TEST(quotes)
{
    struct cv_config cfg;
    cv_config_defaults(&cfg);
    ck_assert_int_eq(parse(&cfg, "CREDVAULT_TLS_CERT=\"/etc/credvault/my cert.pem\"\n"
                                 "CREDVAULT_TLS_KEY='/etc/credvault/key.pem'\n"
                                 "CREDVAULT_THREADS=\"16\"\n"
                                 "CREDVAULT_TEMPLATES_FILE=\"\"\n"
                                 "CREDVAULT_LOG_LEVEL=\"debug'\n"),
                     CV_ERR_NONE);
    ck_assert_str_eq(cfg.tls_cert, "/etc/credvault/my cert.pem");
    ck_assert_str_eq(cfg.tls_key, "/etc/credvault/key.pem");
    ck_assert_uint_eq(cfg.threads, 16);
    ck_assert_str_eq(cfg.templates_file, "");
    ck_assert_str_eq(cfg.log_level, "\"debug'"); /* unmatched quotes are kept as they are */
    cv_config_free(&cfg);
}
END_TEST

START_TEST(crlf_lines)
{
    struct cv_config cfg;
    cv_config_defaults(&cfg);
    ck_assert_int_eq(parse(&cfg, "# windows\r\n\r\nCREDVAULT_THREADS=8\r\nCREDVAULT_LOG_LEVEL=debug\r\n"
                                 "CREDVAULT_LISTEN=\"127.0.0.1:1\"\r\n"),
                     CV_ERR_NONE);
    ck_assert_uint_eq(cfg.threads, 8);
    ck_assert_str_eq(cfg.log_level, "debug");
    ck_assert_str_eq(cfg.listen, "127.0.0.1:1");
    cv_config_free(&cfg);
}
END_TEST

START_TEST(number_boundaries_accepted)
{
    struct cv_config cfg;
    cv_config_defaults(&cfg);
    ck_assert_int_eq(parse(&cfg, "CREDVAULT_HSM_SESSIONS=1\nCREDVAULT_HSM_RETRIES=0\nCREDVAULT_MAX_BODY_BYTES=16777216\n"
                                 "CREDVAULT_THREADS=256\nCREDVAULT_KEY_MAX_ENCRYPTIONS=1\n"),
                     CV_ERR_NONE);
    ck_assert_uint_eq(cfg.hsm_sessions, 1);
    ck_assert_uint_eq(cfg.hsm_retries, 0);
    ck_assert_uint_eq(cfg.max_body_bytes, 16777216);
    ck_assert_uint_eq(cfg.threads, 256);
    ck_assert_uint_eq(cfg.key_max_encryptions, 1);
    cv_config_free(&cfg);
}
END_TEST

START_TEST(pin_and_pin_file)
{
    struct cv_config cfg;
    char path[64], line[128];
    cv_config_defaults(&cfg);
    ck_assert_int_eq(parse(&cfg, "CREDVAULT_HSM_PIN=1234\n"), CV_ERR_NONE);
    ck_assert_str_eq(cfg.hsm_pin, "1234");
    /* from a file, trailing newline stripped; CloudHSM's user:password passes unchanged */
    temp_file(path, "cu-user:pass word\n", 18);
    snprintf(line, sizeof(line), "CREDVAULT_HSM_PIN_FILE=%s\n", path);
    ck_assert_int_eq(parse(&cfg, line), CV_ERR_NONE);
    ck_assert_str_eq(cfg.hsm_pin, "cu-user:pass word");
    unlink(path);
    temp_file(path, "5678\r\n", 6);
    ck_assert_int_eq(cv_config_set(&cfg, "CREDVAULT_HSM_PIN_FILE", path).err, CV_ERR_NONE);
    ck_assert_str_eq(cfg.hsm_pin, "5678");
    unlink(path);
    temp_file(path, "no-newline", 10);
    ck_assert_int_eq(cv_config_set(&cfg, "CREDVAULT_DATABASE_PASSWORD_FILE", path).err, CV_ERR_NONE);
    ck_assert_str_eq(cfg.database_password, "no-newline");
    unlink(path);
    cv_config_free(&cfg);
}
END_TEST

START_TEST(pin_file_wins_over_pin)
{
    struct cv_config cfg;
    char path[64], text[256];
    temp_file(path, "from-file\n", 10);
    /* the file named after the PIN */
    cv_config_defaults(&cfg);
    snprintf(text, sizeof(text), "CREDVAULT_HSM_PIN=inline\nCREDVAULT_HSM_PIN_FILE=%s\n", path);
    ck_assert_int_eq(parse(&cfg, text), CV_ERR_NONE);
    ck_assert_str_eq(cfg.hsm_pin, "from-file");
    cv_config_free(&cfg);
    /* both in the environment */
    ck_assert_int_eq(setenv("CREDVAULT_HSM_PIN", "inline", 1), 0);
    ck_assert_int_eq(setenv("CREDVAULT_HSM_PIN_FILE", path, 1), 0);
    ck_assert(cv_ok(cv_config_load(&cfg, NULL)));
    ck_assert_str_eq(cfg.hsm_pin, "from-file");
    cv_config_free(&cfg);
    unsetenv("CREDVAULT_HSM_PIN");
    unsetenv("CREDVAULT_HSM_PIN_FILE");
    unlink(path);
}
END_TEST

START_TEST(pin_file_named_first_still_wins)
{
    /* the documented precedence does not depend on line order */
    struct cv_config cfg;
    char path[64], text[256];
    temp_file(path, "from-file\n", 10);
    cv_config_defaults(&cfg);
    snprintf(text, sizeof(text), "CREDVAULT_HSM_PIN_FILE=%s\nCREDVAULT_HSM_PIN=inline\n", path);
    ck_assert_int_eq(parse(&cfg, text), CV_ERR_NONE);
    unlink(path);
    ck_assert_str_eq(cfg.hsm_pin, "from-file");
    cv_config_free(&cfg);
}
END_TEST

START_TEST(foreign_names_go_to_environment)
{
    /* a shared EnvironmentFile also carries the PKCS#11 module's settings */
    struct cv_config cfg;
    unsetenv("CV_TEST_MODULE_SETTING");
    ck_assert_int_eq(setenv("CV_TEST_ALREADY_SET", "from-env", 1), 0);
    cv_config_defaults(&cfg);
    ck_assert_int_eq(parse(&cfg, "CV_TEST_MODULE_SETTING=/x/softhsm2.conf\nCV_TEST_ALREADY_SET=from-file\n"),
                     CV_ERR_NONE);
    ck_assert_str_eq(getenv("CV_TEST_MODULE_SETTING"), "/x/softhsm2.conf");
    ck_assert_str_eq(getenv("CV_TEST_ALREADY_SET"), "from-env");
    cv_config_free(&cfg);
    unsetenv("CV_TEST_MODULE_SETTING");
    unsetenv("CV_TEST_ALREADY_SET");
}
END_TEST

/* A misspelt CREDVAULT_* in the environment is no longer silent: a warning
 * names it and the closest setting, never its value. */
START_TEST(unknown_environment_names_are_warned)
{
    ck_assert_str_eq(cv_config_closest("CREDVAULT_LISTN"), "CREDVAULT_LISTEN");
    ck_assert_str_eq(cv_config_closest("CREDVAULT_HSM_PIN_FIEL"), "CREDVAULT_HSM_PIN_FILE");
    ck_assert_ptr_null(cv_config_closest("CREDVAULT_SOMETHING_ELSE_ENTIRELY"));
    char path[64];
    temp_file(path, "", 0);
    int saved = dup(STDERR_FILENO);
    int fd = open(path, O_WRONLY | O_TRUNC);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_ge(dup2(fd, STDERR_FILENO), 0);
    ck_assert_int_eq(setenv("CREDVAULT_LISTN", "value-that-must-not-be-logged", 1), 0);
    struct cv_config cfg;
    cv_result r = cv_config_load(&cfg, NULL);
    dup2(saved, STDERR_FILENO);
    close(saved);
    close(fd);
    unsetenv("CREDVAULT_LISTN");
    ck_assert(cv_ok(r));
    ck_assert_str_eq(cfg.listen, "127.0.0.1:8443"); /* ignored, as before */
    cv_config_free(&cfg);
    char got[4096] = "";
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    size_t n = fread(got, 1, sizeof(got) - 1, f);
    got[n] = '\0';
    fclose(f);
    unlink(path);
    ck_assert_msg(strstr(got, "\"unknown_setting\"") && strstr(got, "\"CREDVAULT_LISTN\"") &&
                      strstr(got, "\"did_you_mean\":\"CREDVAULT_LISTEN\""),
                  "%s", got);
    ck_assert_ptr_null(strstr(got, "value-that-must-not-be-logged"));
}
END_TEST

START_TEST(load_file_then_environment)
{
    struct cv_config cfg;
    char path[64];
    const char *text = "CREDVAULT_THREADS=8\nCREDVAULT_LOG_LEVEL=warn\n";
    temp_file(path, text, strlen(text));
    ck_assert_int_eq(setenv("CREDVAULT_LOG_LEVEL", "debug", 1), 0);
    ck_assert(cv_ok(cv_config_load(&cfg, path)));
    ck_assert_uint_eq(cfg.threads, 8);
    ck_assert_str_eq(cfg.log_level, "debug"); /* the environment wins */
    ck_assert_str_eq(cfg.listen, "127.0.0.1:8443");
    cv_config_free(&cfg);
    unsetenv("CREDVAULT_LOG_LEVEL");
    ck_assert_int_eq(cv_config_load(&cfg, "/nonexistent/credvault.conf").err, CV_ERR_INPUT);
    cv_config_free(&cfg);
    unlink(path);
}
END_TEST

extern char **environ;

/* The PIN given inline leaves the environment once read: the variable is
 * gone and its bytes, name and value, are overwritten where they lay —
 * including a second copy, which unsetenv alone would leave behind. */
START_TEST(inline_pin_scrubbed_from_environment)
{
    static char first[] = "CREDVAULT_HSM_PIN=pin-from-env-1234";
    static char second[] = "CREDVAULT_HSM_PIN=second-copy-5678";
    static char other[] = "CREDVAULT_HSM_PINX=not-ours";
    static char keep[] = "CREDVAULT_LISTEN=127.0.0.1:9443";
    char *block[] = {first, other, keep, second, NULL};
    char **saved = environ;
    environ = block;
    struct cv_config cfg;
    ck_assert_int_eq(cv_config_load(&cfg, NULL).err, CV_ERR_NONE);
    ck_assert_str_eq(cfg.hsm_pin, "pin-from-env-1234");
    cv_config_scrub_environment();
    char **after = environ;
    environ = saved;
    for (char **e = after; *e; e++) ck_assert_msg(strncmp(*e, "CREDVAULT_HSM_PIN=", 18) != 0, "left: %s", *e);
    for (size_t i = 0; i < sizeof(first); i++) ck_assert_int_eq(first[i], 0);
    for (size_t i = 0; i < sizeof(second); i++) ck_assert_int_eq(second[i], 0);
    ck_assert_str_eq(other, "CREDVAULT_HSM_PINX=not-ours"); /* a longer name is another variable */
    ck_assert_str_eq(keep, "CREDVAULT_LISTEN=127.0.0.1:9443");
    ck_assert_str_eq(cfg.hsm_pin, "pin-from-env-1234"); /* the configuration keeps its copy */
    cv_config_free(&cfg);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("core_config");
    TCase *neg = tcase_create("refusals");
    tcase_add_test(neg, unknown_setting_refused);
    tcase_add_test(neg, key_residency_is_hsm_or_memory);
    tcase_add_test(neg, malformed_line_refused);
    tcase_add_test(neg, number_out_of_range_refused);
    tcase_add_test(neg, non_number_refused);
    tcase_add_test(neg, line_too_long_refused);
    tcase_add_test(neg, oversize_text_refused);
    tcase_add_test(neg, nul_byte_refused);
    tcase_add_test(neg, refusal_does_not_echo_value);
    tcase_add_test(neg, secret_file_refusals);
    suite_add_tcase(s, neg);
    TCase *pos = tcase_create("valid");
    tcase_add_test(pos, defaults_applied);
    tcase_add_test(pos, every_documented_default_is_valid);
    tcase_add_test(pos, name_value_comments_blank_lines);
    tcase_add_test(pos, quotes);
    tcase_add_test(pos, crlf_lines);
    tcase_add_test(pos, number_boundaries_accepted);
    tcase_add_test(pos, pin_and_pin_file);
    tcase_add_test(pos, pin_file_wins_over_pin);
    tcase_add_test(pos, pin_file_named_first_still_wins);
    tcase_add_test(pos, load_file_then_environment);
    tcase_add_test(pos, unknown_environment_names_are_warned);
    tcase_add_test(pos, foreign_names_go_to_environment);
    tcase_add_test(pos, inline_pin_scrubbed_from_environment);
    suite_add_tcase(s, pos);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
