/* Configuration: CREDVAULT_* environment variables, optionally preceded by a
 * --config file of NAME=value lines (systemd EnvironmentFile form); the
 * environment wins. Secrets come from *_FILE variables where one is named. */
#ifndef CREDVAULT_CONFIG_H
#define CREDVAULT_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "credvault/result.h"
#include "credvault/secret_file.h"

#define CV_CONFIG_LINE_MAX_BYTES 4096
#define CV_CONFIG_FILE_MAX_BYTES (256 * 1024)

struct cv_config {
    /* HSM */
    char *pkcs11_module;   /* CREDVAULT_PKCS11_MODULE */
    char *pkcs11_token;    /* CREDVAULT_PKCS11_TOKEN: pkcs11: URI or bare label */
    char *hsm_pin;         /* CREDVAULT_HSM_PIN_FILE or CREDVAULT_HSM_PIN; secret memory */
    unsigned hsm_sessions; /* CREDVAULT_HSM_SESSIONS */
    unsigned hsm_retries;  /* CREDVAULT_HSM_RETRIES */
    unsigned hsm_backoff_ms;     /* CREDVAULT_HSM_BACKOFF_MS: first backoff, doubles */
    unsigned key_cache_size;     /* CREDVAULT_KEY_CACHE_SIZE */
    /* database */
    char *database_url;    /* CREDVAULT_DATABASE_URL (password may come from CREDVAULT_DATABASE_PASSWORD_FILE) */
    char *database_password; /* secret memory, or NULL */
    char *database_owner_url; /* CREDVAULT_DATABASE_OWNER_URL: the role that owns the schema (migrate only) */
    unsigned database_timeout_ms; /* CREDVAULT_DATABASE_TIMEOUT_MS: statement timeout */
    /* HTTP */
    char *listen;          /* CREDVAULT_LISTEN host:port */
    int tls;               /* CREDVAULT_TLS on|off */
    char *tls_cert;        /* CREDVAULT_TLS_CERT */
    char *tls_key;         /* CREDVAULT_TLS_KEY */
    unsigned threads;      /* CREDVAULT_THREADS */
    unsigned workers;      /* CREDVAULT_WORKERS; 0: one per online CPU */
    size_t max_body_bytes; /* CREDVAULT_MAX_BODY_BYTES */
    unsigned max_connections;          /* CREDVAULT_MAX_CONNECTIONS */
    unsigned max_connections_per_ip;   /* CREDVAULT_MAX_CONNECTIONS_PER_IP */
    unsigned connection_timeout_s;     /* CREDVAULT_CONNECTION_TIMEOUT_S */
    unsigned request_deadline_ms;      /* CREDVAULT_REQUEST_DEADLINE_MS */
    char *trusted_proxies;             /* CREDVAULT_TRUSTED_PROXIES */
    /* credentials */
    unsigned max_env_keys;        /* CREDVAULT_MAX_ENV_KEYS */
    size_t max_env_name_bytes;    /* CREDVAULT_MAX_ENV_NAME_BYTES */
    size_t max_env_value_bytes;   /* CREDVAULT_MAX_ENV_VALUE_BYTES */
    size_t max_file_value_bytes;  /* CREDVAULT_MAX_FILE_VALUE_BYTES: content of a {"file":…} value */
    char *templates_file;         /* CREDVAULT_TEMPLATES_FILE */
    /* keys */
    char *key_residency;   /* CREDVAULT_KEY_RESIDENCY hsm|memory */
    uint64_t key_max_encryptions; /* CREDVAULT_KEY_MAX_ENCRYPTIONS */
    /* key lifecycle (issue 4) */
    unsigned key_max_age_days;    /* CREDVAULT_KEY_MAX_AGE_DAYS: 0 = no age limit */
    unsigned rewrap_batch_size;   /* CREDVAULT_REWRAP_BATCH_SIZE */
    unsigned rewrap_pause_ms;     /* CREDVAULT_REWRAP_PAUSE_MS: between batches */
    unsigned key_recheck_s;       /* CREDVAULT_KEY_RECHECK_S: key-state re-check without a notification */
    /* operations (issue 5): audit, metrics, rate limits, expiry */
    unsigned audit_checkpoint_events; /* CREDVAULT_AUDIT_CHECKPOINT_EVENTS */
    unsigned audit_checkpoint_s;      /* CREDVAULT_AUDIT_CHECKPOINT_S */
    char *audit_durability;           /* CREDVAULT_AUDIT_DURABILITY changes|all */
    char *metrics_token;              /* CREDVAULT_METRICS_TOKEN_FILE; secret memory, or NULL */
    unsigned rate_read_per_s, rate_read_burst;   /* CREDVAULT_RATE_READ_PER_S, _BURST (per token; 0 = off) */
    unsigned rate_write_per_s, rate_write_burst; /* CREDVAULT_RATE_WRITE_PER_S, _BURST */
    unsigned rate_admin_per_s, rate_admin_burst; /* CREDVAULT_RATE_ADMIN_PER_S, _BURST */
    unsigned rate_address_factor;     /* CREDVAULT_RATE_ADDRESS_FACTOR: an address gets this many tokens' worth */
    unsigned rate_auth_failures;      /* CREDVAULT_RATE_AUTH_FAILURES: failures an address may make in a burst */
    unsigned rate_auth_failure_s;     /* CREDVAULT_RATE_AUTH_FAILURE_S: seconds that forgive one failure */
    unsigned credential_max_age_days; /* CREDVAULT_CREDENTIAL_MAX_AGE_DAYS: for the over-age gauge */
    /* OIDC: JWTs of one issuer beside credvault's own tokens (issue 12) */
    char *oidc_issuer;            /* CREDVAULT_OIDC_ISSUER; NULL: JWTs are refused */
    char *oidc_audience;          /* CREDVAULT_OIDC_AUDIENCE */
    char *oidc_jwks_file;         /* CREDVAULT_OIDC_JWKS_FILE */
    char *oidc_jwks_url;          /* CREDVAULT_OIDC_JWKS_URL */
    char *oidc_tenant_claim;      /* CREDVAULT_OIDC_TENANT_CLAIM: dotted path */
    char *oidc_role_claim;        /* CREDVAULT_OIDC_ROLE_CLAIM: dotted path */
    char *oidc_roles;             /* CREDVAULT_OIDC_ROLES: name=role,… */
    unsigned oidc_leeway_s;       /* CREDVAULT_OIDC_LEEWAY_S */
    unsigned oidc_jwks_refresh_s; /* CREDVAULT_OIDC_JWKS_REFRESH_S: least time between unknown-kid reloads */
    unsigned oidc_jwks_max_age_s; /* CREDVAULT_OIDC_JWKS_MAX_AGE_S */
    /* logging */
    char *log_level;       /* CREDVAULT_LOG_LEVEL */
    /* privileges of serve started as root */
    char *user;            /* CREDVAULT_USER: the user to become */
    int allow_root;        /* CREDVAULT_ALLOW_ROOT on|off */
    /* bookkeeping: secrets that came from a *_FILE setting, which wins over
     * the inline form whatever the order (bit per secret field) */
    unsigned secret_from_file;
};

/* One documented setting, for --help and for validation. */
struct cv_config_setting {
    const char *name;
    const char *default_value; /* NULL when none */
    const char *help;
};
size_t cv_config_settings_count(void);
const struct cv_config_setting *cv_config_setting_at(size_t i);

/* Loads defaults, then `file` (may be NULL), then the environment. */
CV_RESULT cv_config_load(struct cv_config *cfg, const char *file);
/* The known setting closest to `name` (a few edits at most), or NULL; a
 * CREDVAULT_* variable of the environment that is no setting is logged with
 * it by cv_config_load. */
const char *cv_config_closest(const char *name);
/* Parses one NAME=value text (a file's contents); exposed for tests and fuzzing.
 * Unknown CREDVAULT_* names are refused; other names (SOFTHSM2_CONF, a vendor
 * module's settings) are put into the process environment unless already set,
 * so one EnvironmentFile serves the PKCS#11 module too. Blank lines and #
 * comments are skipped; a value may be wrapped in matching single or double quotes. */
CV_RESULT cv_config_parse_text(struct cv_config *cfg, const char *text, size_t len);
/* Sets one named value (as from the environment). */
CV_RESULT cv_config_set(struct cv_config *cfg, const char *name, const char *value);
void cv_config_defaults(struct cv_config *cfg);
/* Once the configuration is loaded: removes the secrets given inline
 * (CREDVAULT_HSM_PIN) from this process's environment and overwrites them,
 * name and value, where /proc/<pid>/environ would show them. Call before any
 * thread starts (the environment is not thread-safe). */
void cv_config_scrub_environment(void);
void cv_config_free(struct cv_config *cfg);

#endif
