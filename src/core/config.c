/* Configuration from defaults, an EnvironmentFile-style file and the
 * environment, in that order. Every limit is a named setting here, so
 * `credvault serve --help` lists them all. PIN and database password are kept
 * in secret memory and may only come from files or the environment. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "credvault/buf.h"
#include "credvault/config.h"
#include "credvault/log.h"
#include "credvault/secret_file.h"

extern char **environ;

enum kind { K_STR, K_SECRET, K_SECRET_FILE, K_UINT, K_SIZE, K_U64, K_BOOL };

struct setting {
    struct cv_config_setting doc;
    enum kind kind;
    size_t off;
    uint64_t min, max; /* numbers only */
};

#define F(field) offsetof(struct cv_config, field)

static const struct setting table[] = {
    {{"CREDVAULT_PKCS11_MODULE", "/usr/lib/softhsm/libsofthsm2.so", "path of the PKCS#11 module"}, K_STR, F(pkcs11_module), 0, 0},
    {{"CREDVAULT_PKCS11_TOKEN", NULL, "the token: a pkcs11: URI (RFC 7512) or a bare token label"}, K_STR, F(pkcs11_token), 0, 0},
    {{"CREDVAULT_HSM_PIN", NULL, "the user PIN itself (prefer CREDVAULT_HSM_PIN_FILE)"}, K_SECRET, F(hsm_pin), 0, 0},
    {{"CREDVAULT_HSM_PIN_FILE", NULL, "file holding the user PIN (CloudHSM: user:password); preferred; wins over CREDVAULT_HSM_PIN"}, K_SECRET_FILE, F(hsm_pin), 0, 0},
    {{"CREDVAULT_HSM_SESSIONS", "4", "PKCS#11 sessions in the pool"}, K_UINT, F(hsm_sessions), 1, 1024},
    {{"CREDVAULT_HSM_RETRIES", "4", "attempts after an HSM session or device error before 'HSM unavailable'"}, K_UINT, F(hsm_retries), 0, 20},
    {{"CREDVAULT_HSM_BACKOFF_MS", "50", "first retry delay in ms; doubles each attempt"}, K_UINT, F(hsm_backoff_ms), 0, 10000},
    {{"CREDVAULT_KEY_CACHE_SIZE", "1024", "unwrapped tenant keys kept in the token (LRU)"}, K_UINT, F(key_cache_size), 1, 1000000},
    {{"CREDVAULT_DATABASE_URL", NULL, "libpq connection string or URI"}, K_STR, F(database_url), 0, 0},
    {{"CREDVAULT_DATABASE_OWNER_URL", NULL, "connection of the role that owns the schema; used by migrate only (default: CREDVAULT_DATABASE_URL)"}, K_STR, F(database_owner_url), 0, 0},
    {{"CREDVAULT_DATABASE_PASSWORD_FILE", NULL, "file holding the database password"}, K_SECRET_FILE, F(database_password), 0, 0},
    {{"CREDVAULT_DATABASE_TIMEOUT_MS", "5000", "statement timeout; the client gives up 1 s later (a frozen database answers nothing)"}, K_UINT, F(database_timeout_ms), 100, 600000},
    {{"CREDVAULT_LISTEN", "127.0.0.1:8443", "host:port to listen on"}, K_STR, F(listen), 0, 0},
    {{"CREDVAULT_TLS", "on", "on, or off (plain HTTP, loopback addresses only)"}, K_BOOL, F(tls), 0, 1},
    {{"CREDVAULT_TLS_CERT", NULL, "PEM certificate chain file"}, K_STR, F(tls_cert), 0, 0},
    {{"CREDVAULT_TLS_KEY", NULL, "PEM private key file"}, K_STR, F(tls_key), 0, 0},
    {{"CREDVAULT_THREADS", "2", "HTTP worker threads"}, K_UINT, F(threads), 1, 256},
    {{"CREDVAULT_WORKERS", "0", "worker processes serving the one port (SO_REUSEPORT) under a supervisor; 0 = one per online CPU; 1 = a single process, no supervisor"}, K_UINT, F(workers), 0, 64},
    {{"CREDVAULT_MAX_BODY_BYTES", "65536", "largest request body; larger gets 413"}, K_SIZE, F(max_body_bytes), 256, 16777216},
    {{"CREDVAULT_MAX_CONNECTIONS", "512", "concurrent connections"}, K_UINT, F(max_connections), 1, 100000},
    {{"CREDVAULT_MAX_CONNECTIONS_PER_IP", "64", "concurrent connections from one address"}, K_UINT, F(max_connections_per_ip), 1, 100000},
    {{"CREDVAULT_CONNECTION_TIMEOUT_S", "30", "idle connection timeout in seconds"}, K_UINT, F(connection_timeout_s), 1, 3600},
    {{"CREDVAULT_TRUSTED_PROXIES", NULL, "IP addresses of reverse proxies whose X-Forwarded-For names the client (comma-separated; exact addresses)"}, K_STR, F(trusted_proxies), 0, 0},
    {{"CREDVAULT_REQUEST_DEADLINE_MS", "10000", "a request (line, headers and body) must arrive whole within this time of the connection opening or of the previous response, however steadily it trickles"}, K_UINT, F(request_deadline_ms), 100, 3600000},
    {{"CREDVAULT_MAX_ENV_KEYS", "64", "credentials per server"}, K_UINT, F(max_env_keys), 1, 1024},
    {{"CREDVAULT_MAX_ENV_NAME_BYTES", "128", "length of a credential name"}, K_SIZE, F(max_env_name_bytes), 1, 1024},
    {{"CREDVAULT_MAX_ENV_VALUE_BYTES", "8192", "length of a credential value"}, K_SIZE, F(max_env_value_bytes), 1, 65536},
    {{"CREDVAULT_MAX_FILE_VALUE_BYTES", "8192", "length of a file-shaped credential's content ({\"file\":…}); the whole map must still fit one record"}, K_SIZE, F(max_file_value_bytes), 1, 15360},
    {{"CREDVAULT_TEMPLATES_FILE", NULL, "template catalog (JSON); default: the one built in"}, K_STR, F(templates_file), 0, 0},
    {{"CREDVAULT_KEY_RESIDENCY", "hsm", "hsm (tenant keys in plaintext only inside the token) or memory (each tenant key read once into locked process memory; records encrypted with OpenSSL)"}, K_STR, F(key_residency), 0, 0},
    {{"CREDVAULT_KEY_MAX_ENCRYPTIONS", "1000000000", "encryptions per tenant key version before rotation (GCM random IV limit is 2^32)"}, K_U64, F(key_max_encryptions), 1, 4294967296ULL},
    {{"CREDVAULT_KEY_MAX_AGE_DAYS", "365", "age in days of a tenant key version before the next write rotates it; 0 = no age limit"}, K_UINT, F(key_max_age_days), 0, 36500},
    {{"CREDVAULT_REWRAP_BATCH_SIZE", "100", "rows per rewrap batch (one transaction each)"}, K_UINT, F(rewrap_batch_size), 1, 10000},
    {{"CREDVAULT_REWRAP_PAUSE_MS", "0", "pause between rewrap batches, to spare the HSM and the database"}, K_UINT, F(rewrap_pause_ms), 0, 60000},
    {{"CREDVAULT_KEY_RECHECK_S", "30", "seconds between key-state re-checks when no notification arrives"}, K_UINT, F(key_recheck_s), 1, 3600},
    {{"CREDVAULT_AUDIT_CHECKPOINT_EVENTS", "1000", "audit events after which a signed checkpoint is made"}, K_UINT, F(audit_checkpoint_events), 1, 10000000},
    {{"CREDVAULT_AUDIT_CHECKPOINT_S", "60", "seconds between signed audit checkpoints (when events were written)"}, K_UINT, F(audit_checkpoint_s), 1, 86400},
    {{"CREDVAULT_AUDIT_DURABILITY", "changes", "changes: events of reads commit without waiting for the disk; all: every event waits"}, K_STR, F(audit_durability), 0, 0},
    {{"CREDVAULT_METRICS_TOKEN_FILE", NULL, "file holding the bearer token that may read /metrics (admin tokens may too)"}, K_SECRET_FILE, F(metrics_token), 0, 0},
    {{"CREDVAULT_RATE_READ_PER_S", "1000", "credential reads per second per token; 0 = no limit"}, K_UINT, F(rate_read_per_s), 0, 1000000},
    {{"CREDVAULT_RATE_READ_BURST", "2000", "credential reads a token may make at once"}, K_UINT, F(rate_read_burst), 1, 10000000},
    {{"CREDVAULT_RATE_WRITE_PER_S", "100", "credential writes per second per token; 0 = no limit"}, K_UINT, F(rate_write_per_s), 0, 1000000},
    {{"CREDVAULT_RATE_WRITE_BURST", "200", "credential writes a token may make at once"}, K_UINT, F(rate_write_burst), 1, 10000000},
    {{"CREDVAULT_RATE_ADMIN_PER_S", "20", "admin calls (tenants, tokens, keys, audit, metrics) per second per token; 0 = no limit"}, K_UINT, F(rate_admin_per_s), 0, 1000000},
    {{"CREDVAULT_RATE_ADMIN_BURST", "50", "admin calls a token may make at once"}, K_UINT, F(rate_admin_burst), 1, 10000000},
    {{"CREDVAULT_RATE_ADDRESS_FACTOR", "4", "a client address gets this many tokens' rate and burst per class; 0 = no per-address limit"}, K_UINT, F(rate_address_factor), 0, 1000},
    {{"CREDVAULT_RATE_AUTH_FAILURES", "10", "failed authentications one token prefix may make from one address before it is slowed down; 0 = never"}, K_UINT, F(rate_auth_failures), 0, 100000},
    {{"CREDVAULT_RATE_AUTH_FAILURE_S", "6", "seconds after which one failed authentication of an address is forgiven"}, K_UINT, F(rate_auth_failure_s), 1, 86400},
    {{"CREDVAULT_CREDENTIAL_MAX_AGE_DAYS", "90", "age after which stored credentials count as over age in /metrics; 0 = no limit"}, K_UINT, F(credential_max_age_days), 0, 36500},
    {{"CREDVAULT_OIDC_ISSUER", NULL, "issuer (iss) whose JWTs are accepted beside credvault's tokens; unset: none are"}, K_STR, F(oidc_issuer), 0, 0},
    {{"CREDVAULT_OIDC_AUDIENCE", NULL, "audience (aud) a JWT must name; required with CREDVAULT_OIDC_ISSUER"}, K_STR, F(oidc_audience), 0, 0},
    {{"CREDVAULT_OIDC_JWKS_FILE", NULL, "file holding the issuer's JWKS (re-read on an unknown kid)"}, K_STR, F(oidc_jwks_file), 0, 0},
    {{"CREDVAULT_OIDC_JWKS_URL", NULL, "the issuer's JWKS URL (https, or http to a loopback address); fetched at start and on an unknown kid"}, K_STR, F(oidc_jwks_url), 0, 0},
    {{"CREDVAULT_OIDC_TENANT_CLAIM", "tenant", "claim holding the tenant id (a dotted path reaches into objects)"}, K_STR, F(oidc_tenant_claim), 0, 0},
    {{"CREDVAULT_OIDC_ROLE_CLAIM", "roles", "claim holding role names, a string or an array (dotted path, e.g. realm_access.roles)"}, K_STR, F(oidc_role_claim), 0, 0},
    {{"CREDVAULT_OIDC_ROLES", NULL, "issuer role=credvault role pairs, comma separated (grc-admin=tenant-admin,grc-auditor=auditor); admin only when named"}, K_STR, F(oidc_roles), 0, 0},
    {{"CREDVAULT_OIDC_LEEWAY_S", "60", "clock skew allowed on exp, nbf and iat, in seconds"}, K_UINT, F(oidc_leeway_s), 0, 300},
    {{"CREDVAULT_OIDC_JWKS_REFRESH_S", "60", "least seconds between two JWKS reloads caused by unknown kids"}, K_UINT, F(oidc_jwks_refresh_s), 0, 86400},
    {{"CREDVAULT_OIDC_JWKS_MAX_AGE_S", "3600", "seconds after which a fetched JWKS is fetched again on use"}, K_UINT, F(oidc_jwks_max_age_s), 60, 604800},
    {{"CREDVAULT_LOG_LEVEL", "info", "error, warn, info or debug"}, K_STR, F(log_level), 0, 0},
    {{"CREDVAULT_USER", NULL, "serve started as root becomes this user once it listens and has read its key files"}, K_STR, F(user), 0, 0},
    {{"CREDVAULT_ALLOW_ROOT", "off", "on: serve may keep running as root (without CREDVAULT_USER it refuses to)"}, K_BOOL, F(allow_root), 0, 1},
};

#define TABLE_LEN (sizeof(table) / sizeof(table[0]))

size_t cv_config_settings_count(void) { return TABLE_LEN; }

const struct cv_config_setting *cv_config_setting_at(size_t i) { return i < TABLE_LEN ? &table[i].doc : NULL; }

static const struct setting *find(const char *name, size_t len)
{
    for (size_t i = 0; i < TABLE_LEN; i++)
        if (strlen(table[i].doc.name) == len && memcmp(table[i].doc.name, name, len) == 0)
            return &table[i];
    return NULL;
}

static unsigned secret_bit(const struct setting *st)
{
    return st->off == F(hsm_pin) ? 1u : st->off == F(metrics_token) ? 4u : 2u;
}

static cv_result parse_number(const struct setting *st, const char *v, uint64_t *out)
{
    CV_ENSURE(*v && isdigit((unsigned char)*v), CV_ERR_INPUT, "%s must be a whole number", st->doc.name);
    errno = 0;
    char *end;
    unsigned long long x = strtoull(v, &end, 10);
    CV_ENSURE(errno == 0 && *end == '\0', CV_ERR_INPUT, "%s must be a whole number", st->doc.name);
    CV_ENSURE(x >= st->min && x <= st->max, CV_ERR_INPUT, "%s must be between %llu and %llu",
              st->doc.name, (unsigned long long)st->min, (unsigned long long)st->max);
    *out = x;
    return CV_OK;
}

static void free_field(const struct setting *st, struct cv_config *cfg)
{
    char **slot = (char **)((char *)cfg + st->off);
    if (st->kind == K_SECRET || st->kind == K_SECRET_FILE) cv_secret_free(*slot);
    else free(*slot);
    *slot = NULL;
}

static cv_result set_setting(struct cv_config *cfg, const struct setting *st, const char *value)
{
    char *base = (char *)cfg + st->off;
    uint64_t x = 0;
    switch (st->kind) {
    case K_STR: {
        /* a misspelt residency must not fall back to the other one */
        CV_ENSURE(st->off != F(key_residency) || strcmp(value, "hsm") == 0 || strcmp(value, "memory") == 0,
                  CV_ERR_INPUT, "%s must be hsm or memory", st->doc.name);
        char *d = strdup(value);
        CV_ENSURE(d != NULL, CV_ERR_MEMORY, "out of memory");
        free_field(st, cfg);
        *(char **)base = d;
        return CV_OK;
    }
    case K_SECRET: {
        CV_ENSURE(*value, CV_ERR_INPUT, "%s is empty", st->doc.name);
        if (cfg->secret_from_file & secret_bit(st)) return CV_OK; /* the *_FILE form wins */
        char *d = cv_secret_strdup(value);
        CV_ENSURE(d != NULL, CV_ERR_MEMORY, "out of memory");
        free_field(st, cfg);
        *(char **)base = d;
        return CV_OK;
    }
    case K_SECRET_FILE: {
        char *d = NULL;
        CV_GUARD(cv_secret_file_read(st->doc.name, value, CV_SECRET_FILE_MAX_BYTES, &d, NULL));
        free_field(st, cfg);
        *(char **)base = d;
        cfg->secret_from_file |= secret_bit(st);
        return CV_OK;
    }
    case K_BOOL:
        if (strcmp(value, "on") == 0 || strcmp(value, "true") == 0 || strcmp(value, "1") == 0) *(int *)base = 1;
        else if (strcmp(value, "off") == 0 || strcmp(value, "false") == 0 || strcmp(value, "0") == 0) *(int *)base = 0;
        else CV_BAIL(CV_ERR_INPUT, "%s must be on or off", st->doc.name);
        return CV_OK;
    case K_UINT:
        CV_GUARD(parse_number(st, value, &x));
        *(unsigned *)base = (unsigned)x;
        return CV_OK;
    case K_SIZE:
        CV_GUARD(parse_number(st, value, &x));
        *(size_t *)base = (size_t)x;
        return CV_OK;
    case K_U64:
        CV_GUARD(parse_number(st, value, &x));
        *(uint64_t *)base = x;
        return CV_OK;
    }
    CV_BAIL(CV_ERR_INTERNAL, "unknown setting kind");
}

cv_result cv_config_set(struct cv_config *cfg, const char *name, const char *value)
{
    const struct setting *st = find(name, strlen(name));
    CV_ENSURE(st != NULL, CV_ERR_INPUT, "unknown setting %.64s", name);
    return set_setting(cfg, st, value);
}

void cv_config_defaults(struct cv_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    for (size_t i = 0; i < TABLE_LEN; i++) {
        if (!table[i].doc.default_value) continue;
        cv_result r = set_setting(cfg, &table[i], table[i].doc.default_value);
        (void)r; /* defaults are constants checked by the unit tests */
    }
}

void cv_config_free(struct cv_config *cfg)
{
    for (size_t i = 0; i < TABLE_LEN; i++) {
        enum kind k = table[i].kind;
        if (k == K_STR || k == K_SECRET || k == K_SECRET_FILE) free_field(&table[i], cfg);
    }
}

static int is_name_char(char c) { return isupper((unsigned char)c) || isdigit((unsigned char)c) || c == '_'; }

cv_result cv_config_parse_text(struct cv_config *cfg, const char *text, size_t len)
{
    CV_ENSURE(len <= CV_CONFIG_FILE_MAX_BYTES, CV_ERR_TOO_LARGE, "configuration is larger than %d bytes",
              CV_CONFIG_FILE_MAX_BYTES);
    size_t lineno = 0, i = 0;
    char value[CV_CONFIG_LINE_MAX_BYTES + 1];
    while (i < len) {
        lineno++;
        const char *line = text + i;
        const char *nl = memchr(line, '\n', len - i);
        size_t n = nl ? (size_t)(nl - line) : len - i;
        i += n + (nl ? 1 : 0);
        CV_ENSURE(n <= CV_CONFIG_LINE_MAX_BYTES, CV_ERR_INPUT, "configuration line %zu is too long", lineno);
        CV_ENSURE(!memchr(line, '\0', n), CV_ERR_INPUT, "configuration line %zu holds a NUL byte", lineno);
        while (n && (line[n - 1] == '\r' || line[n - 1] == ' ' || line[n - 1] == '\t')) n--;
        size_t s = 0;
        while (s < n && (line[s] == ' ' || line[s] == '\t')) s++;
        if (s == n || line[s] == '#') continue;
        size_t k = s;
        while (k < n && is_name_char(line[k])) k++;
        CV_ENSURE(k > s && k < n && line[k] == '=', CV_ERR_INPUT,
                  "configuration line %zu is not NAME=value", lineno);
        const struct setting *st = find(line + s, k - s);
        int ours = k - s >= 10 && memcmp(line + s, "CREDVAULT_", 10) == 0;
        CV_ENSURE(st != NULL || !ours, CV_ERR_INPUT, "configuration line %zu: unknown setting %.*s", lineno,
                  (int)(k - s > 64 ? 64 : k - s), line + s);
        const char *v = line + k + 1;
        size_t vn = n - k - 1;
        if (vn >= 2 && (v[0] == '"' || v[0] == '\'') && v[vn - 1] == v[0]) {
            v++;
            vn -= 2;
        }
        memcpy(value, v, vn);
        value[vn] = '\0';
        if (!st) {
            /* the PKCS#11 module's own settings (SOFTHSM2_CONF, …); the environment wins */
            char name[CV_CONFIG_LINE_MAX_BYTES + 1];
            memcpy(name, line + s, k - s);
            name[k - s] = '\0';
            int rc = setenv(name, value, 0);
            cv_wipe(value, sizeof(value));
            CV_ENSURE(rc == 0, CV_ERR_INPUT, "configuration line %zu: cannot set %.64s", lineno, name);
            continue;
        }
        cv_result r = set_setting(cfg, st, value);
        cv_wipe(value, sizeof(value));
        CV_GUARD(r);
    }
    return CV_OK;
}

static cv_result read_file(const char *path, struct cv_buf *out)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    CV_ENSURE(fd >= 0, CV_ERR_INPUT, "cannot open configuration %s: %s", path, strerror(errno));
    cv_result r = CV_OK;
    char chunk[4096];
    for (;;) {
        ssize_t n = read(fd, chunk, sizeof(chunk));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            r = cv_fail(CV_ERR_INPUT, "cannot read configuration %s: %s", path, strerror(errno));
            break;
        }
        if (n == 0) break;
        r = cv_buf_append(out, chunk, (size_t)n);
        if (cv_failed(r)) break;
    }
    cv_wipe(chunk, sizeof(chunk));
    close(fd);
    return r;
}

/* Takes every entry NAME=… out of environ, then overwrites the bytes where
 * they lie: unsetenv alone only drops the pointer, and /proc/<pid>/environ
 * shows the process's original environment block, not environ. */
static void scrub_variable(const char *name)
{
    size_t nlen = strlen(name);
    for (;;) {
        char *found[8];
        size_t n = 0;
        for (char **e = environ; e && *e && n < 8; e++)
            if (strncmp(*e, name, nlen) == 0 && (*e)[nlen] == '=') found[n++] = *e;
        if (n == 0) return;
        (void)unsetenv(name);
        for (size_t i = 0; i < n; i++) cv_wipe(found[i], strlen(found[i]));
    }
}

void cv_config_scrub_environment(void)
{
    for (size_t i = 0; i < TABLE_LEN; i++)
        if (table[i].kind == K_SECRET) scrub_variable(table[i].doc.name);
}

/* Levenshtein distance of two setting names (both short: the table's
 * longest is under 64 bytes; longer names are cut, they are typos anyway). */
static size_t distance(const char *a, const char *b)
{
    enum { N = 64 };
    size_t la = strnlen(a, N), lb = strnlen(b, N);
    size_t prev[N + 1], cur[N + 1];
    for (size_t j = 0; j <= lb; j++) prev[j] = j;
    for (size_t i = 1; i <= la; i++) {
        cur[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t sub = prev[j - 1] + (a[i - 1] != b[j - 1]);
            size_t del = prev[j] + 1, ins = cur[j - 1] + 1;
            cur[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
        }
        memcpy(prev, cur, (lb + 1) * sizeof(size_t));
    }
    return prev[lb];
}

const char *cv_config_closest(const char *name)
{
    const char *best = NULL;
    size_t best_d = SIZE_MAX;
    for (size_t i = 0; i < TABLE_LEN; i++) {
        size_t d = distance(name, table[i].doc.name);
        if (d < best_d) {
            best_d = d;
            best = table[i].doc.name;
        }
    }
    /* a guess further than a few edits away would mislead more than help */
    return best_d <= 4 ? best : NULL;
}

/* A misspelt setting in the environment is ignored by getenv: say so, naming
 * the closest known one (the same typo in a file is refused outright). Only
 * names are logged, never values. */
static void warn_unknown_environment(void)
{
    for (char **e = environ; e && *e; e++) {
        if (strncmp(*e, "CREDVAULT_", 10) != 0) continue;
        size_t len = strcspn(*e, "=");
        if (find(*e, len)) continue;
        char name[96];
        snprintf(name, sizeof(name), "%.*s", (int)(len < 95 ? len : 95), *e);
        const char *near = cv_config_closest(name);
        cv_log(CV_LOG_WARN, "unknown_setting", "name", name, "did_you_mean", near ? near : "-", "source",
               "environment", NULL);
    }
}

cv_result cv_config_load(struct cv_config *cfg, const char *file)
{
    warn_unknown_environment();
    cv_config_defaults(cfg);
    if (file) {
        struct cv_buf b;
        cv_buf_init_secret(&b, CV_CONFIG_FILE_MAX_BYTES);
        cv_result r = read_file(file, &b);
        if (cv_ok(r)) r = cv_config_parse_text(cfg, (const char *)b.data, b.len);
        cv_buf_free(&b);
        CV_GUARD(r);
    }
    for (size_t i = 0; i < TABLE_LEN; i++) {
        const char *v = getenv(table[i].doc.name);
        if (v) CV_GUARD(set_setting(cfg, &table[i], v));
    }
    return CV_OK;
}
