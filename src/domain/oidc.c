/* OIDC bearer tokens of one configured issuer, beside credvault's own: the
 * signature (src/crypto/jose.c), then iss, aud, exp/nbf/iat with bounded
 * skew, the tenant claim and the role mapping. The issuer's keys are cached;
 * an unknown kid (or an old set) reloads them, at most once per
 * CREDVAULT_OIDC_JWKS_REFRESH_S, never on every request. A refusal is one
 * answer to the caller; the log says why, never with the token. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "credvault/crypto.h"
#include "credvault/jose.h"
#include "credvault/log.h"
#include "domain/domain.h"

#define ROLE_MAP_MAX 32
#define ROLE_NAME_MAX_BYTES 128
#define CLAIM_PATH_MAX_BYTES 256

struct role_map {
    char name[ROLE_NAME_MAX_BYTES + 1];
    enum cv_role role;
};

struct cv_oidc {
    char *issuer, *audience, *jwks_file, *jwks_url, *tenant_claim, *role_claim;
    struct role_map roles[ROLE_MAP_MAX];
    size_t nroles;
    int64_t leeway_ms, refresh_ms, max_age_ms;
    cv_oidc_fetch_fn fetch;
    void *fetch_arg;
    pthread_rwlock_t lock; /* keys and loaded_ms */
    struct cv_jwks *keys;
    int64_t loaded_ms;
    pthread_mutex_t reload; /* one reload at a time; last_reload_ms */
    int64_t last_reload_ms;
};

static char *dup_or_null(const char *s) { return s && *s ? strdup(s) : NULL; }

void cv_oidc_close(struct cv_oidc *o)
{
    if (!o) return;
    cv_jwks_free(o->keys);
    pthread_rwlock_destroy(&o->lock);
    pthread_mutex_destroy(&o->reload);
    free(o->issuer);
    free(o->audience);
    free(o->jwks_file);
    free(o->jwks_url);
    free(o->tenant_claim);
    free(o->role_claim);
    free(o);
}

/* "grc-admin=tenant-admin,grc-auditor=auditor": a workload role cannot come
 * from an issuer (it is bound to one server), and nothing maps by default. */
static cv_result parse_roles(struct cv_oidc *o, const char *spec)
{
    CV_ENSURE(spec && *spec, CV_ERR_INPUT, "CREDVAULT_OIDC_ROLES must map at least one role (grc-admin=tenant-admin)");
    const char *p = spec;
    while (*p) {
        size_t n = strcspn(p, ",");
        const char *eq = memchr(p, '=', n);
        CV_ENSURE(eq && eq > p && eq < p + n - 1, CV_ERR_INPUT, "CREDVAULT_OIDC_ROLES: '%.*s' is not name=role",
                  (int)(n > 64 ? 64 : n), p);
        size_t kn = (size_t)(eq - p), vn = n - kn - 1;
        CV_ENSURE(kn <= ROLE_NAME_MAX_BYTES && o->nroles < ROLE_MAP_MAX, CV_ERR_INPUT,
                  "CREDVAULT_OIDC_ROLES: at most %d names of at most %d bytes", ROLE_MAP_MAX, ROLE_NAME_MAX_BYTES);
        char role[32];
        CV_ENSURE(vn < sizeof(role), CV_ERR_INPUT, "CREDVAULT_OIDC_ROLES: unknown role '%.*s'", (int)(vn > 31 ? 31 : vn),
                  eq + 1);
        memcpy(role, eq + 1, vn);
        role[vn] = '\0';
        struct role_map *m = &o->roles[o->nroles];
        CV_ENSURE(cv_role_parse(role, &m->role) == 0 && m->role != CV_ROLE_WORKLOAD, CV_ERR_INPUT,
                  "CREDVAULT_OIDC_ROLES: '%s' is not admin, tenant-admin or auditor", role);
        memcpy(m->name, p, kn);
        m->name[kn] = '\0';
        o->nroles++;
        p += n;
        if (*p == ',') p++;
    }
    return CV_OK;
}

static cv_result read_file(const char *path, char **out, size_t *len)
{
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    CV_ENSURE(fd >= 0, CV_ERR_UNAVAILABLE, "cannot open the JWKS file %s: %s", path, strerror(errno));
    char *buf = malloc(CV_JWKS_MAX_BYTES + 1);
    size_t n = 0;
    struct stat sb;
    if (!buf || fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        free(buf);
        close(fd);
        CV_BAIL(CV_ERR_UNAVAILABLE, "the JWKS file %s is not a readable regular file", path);
    }
    for (;;) {
        ssize_t r = read(fd, buf + n, CV_JWKS_MAX_BYTES + 1 - n);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        n += (size_t)r;
        if (n > CV_JWKS_MAX_BYTES) break;
    }
    close(fd);
    if (n > CV_JWKS_MAX_BYTES) {
        free(buf);
        CV_BAIL(CV_ERR_UNAVAILABLE, "the JWKS file %s is larger than %d bytes", path, CV_JWKS_MAX_BYTES);
    }
    *out = buf;
    *len = n;
    return CV_OK;
}

/* Loads the key set from the file or the URL and swaps it in. */
static cv_result load_keys(struct cv_oidc *o)
{
    char *doc = NULL;
    size_t len = 0;
    if (o->jwks_file) CV_GUARD(read_file(o->jwks_file, &doc, &len));
    else CV_GUARD(o->fetch(o->fetch_arg, o->jwks_url, CV_JWKS_MAX_BYTES, &doc, &len));
    struct cv_jwks *keys = NULL;
    size_t skipped = 0;
    cv_result r = cv_jwks_parse(doc, len, &keys, &skipped);
    free(doc);
    CV_GUARD(r);
    pthread_rwlock_wrlock(&o->lock);
    struct cv_jwks *old = o->keys;
    o->keys = keys;
    o->loaded_ms = cv_time_now_ms();
    pthread_rwlock_unlock(&o->lock);
    cv_jwks_free(old);
    char n[24], s[24];
    snprintf(n, sizeof(n), "%zu", cv_jwks_count(keys));
    snprintf(s, sizeof(s), "%zu", skipped);
    cv_log(CV_LOG_INFO, "oidc_keys_loaded", "issuer", o->issuer, "keys", n, "skipped", s, NULL);
    return CV_OK;
}

/* Reloads unless one happened less than refresh_ms ago: an unknown kid must
 * not let every request make the service fetch. 1 if a reload happened. */
static int try_reload(struct cv_oidc *o)
{
    int64_t now = cv_time_now_ms();
    pthread_mutex_lock(&o->reload);
    int due = o->last_reload_ms == 0 || now - o->last_reload_ms >= o->refresh_ms;
    int done = 0;
    if (due) {
        o->last_reload_ms = now;
        cv_result r = load_keys(o);
        if (cv_failed(r)) {
            cv_log(CV_LOG_WARN, "oidc_keys_not_loaded", "issuer", o->issuer, "reason", cv_error_message(), NULL);
            cv_error_clear();
        } else {
            done = 1;
        }
    }
    pthread_mutex_unlock(&o->reload);
    return done;
}

cv_result cv_oidc_open(const struct cv_config *cfg, cv_oidc_fetch_fn fetch, void *arg, struct cv_oidc **out)
{
    *out = NULL;
    if (!cfg->oidc_issuer || !*cfg->oidc_issuer) {
        CV_ENSURE(!cfg->oidc_audience && !cfg->oidc_jwks_file && !cfg->oidc_jwks_url && !cfg->oidc_roles,
                  CV_ERR_INPUT, "CREDVAULT_OIDC_* settings need CREDVAULT_OIDC_ISSUER");
        return CV_OK;
    }
    CV_ENSURE(cfg->oidc_audience && *cfg->oidc_audience, CV_ERR_INPUT,
              "CREDVAULT_OIDC_ISSUER needs CREDVAULT_OIDC_AUDIENCE");
    int file = cfg->oidc_jwks_file && *cfg->oidc_jwks_file, url = cfg->oidc_jwks_url && *cfg->oidc_jwks_url;
    CV_ENSURE(file != url, CV_ERR_INPUT,
              "CREDVAULT_OIDC_ISSUER needs exactly one of CREDVAULT_OIDC_JWKS_FILE and CREDVAULT_OIDC_JWKS_URL");
    CV_ENSURE(!url || fetch, CV_ERR_INPUT, "CREDVAULT_OIDC_JWKS_URL cannot be fetched by this command");
    CV_ENSURE(cfg->oidc_tenant_claim && *cfg->oidc_tenant_claim && strlen(cfg->oidc_tenant_claim) <= CLAIM_PATH_MAX_BYTES &&
                  cfg->oidc_role_claim && *cfg->oidc_role_claim && strlen(cfg->oidc_role_claim) <= CLAIM_PATH_MAX_BYTES,
              CV_ERR_INPUT, "CREDVAULT_OIDC_TENANT_CLAIM and CREDVAULT_OIDC_ROLE_CLAIM must be 1 to %d bytes",
              CLAIM_PATH_MAX_BYTES);
    struct cv_oidc *o = calloc(1, sizeof(*o));
    CV_ENSURE(o != NULL, CV_ERR_MEMORY, "out of memory");
    pthread_rwlock_init(&o->lock, NULL);
    pthread_mutex_init(&o->reload, NULL);
    o->issuer = dup_or_null(cfg->oidc_issuer);
    o->audience = dup_or_null(cfg->oidc_audience);
    o->jwks_file = dup_or_null(cfg->oidc_jwks_file);
    o->jwks_url = dup_or_null(cfg->oidc_jwks_url);
    o->tenant_claim = dup_or_null(cfg->oidc_tenant_claim);
    o->role_claim = dup_or_null(cfg->oidc_role_claim);
    o->leeway_ms = (int64_t)cfg->oidc_leeway_s * 1000;
    o->refresh_ms = (int64_t)cfg->oidc_jwks_refresh_s * 1000;
    o->max_age_ms = (int64_t)cfg->oidc_jwks_max_age_s * 1000;
    o->fetch = fetch;
    o->fetch_arg = arg;
    cv_result r = parse_roles(o, cfg->oidc_roles);
    if (cv_ok(r) && (!o->issuer || !o->audience || !o->tenant_claim || !o->role_claim || (file && !o->jwks_file) ||
                     (url && !o->jwks_url)))
        r = cv_fail(CV_ERR_MEMORY, "out of memory");
    if (cv_ok(r)) {
        /* a missing file is a configuration error; an issuer that is down at
         * start is not: its keys are fetched again on use */
        o->last_reload_ms = cv_time_now_ms();
        r = load_keys(o);
        if (cv_failed(r) && url) {
            cv_log(CV_LOG_WARN, "oidc_keys_not_loaded", "issuer", o->issuer, "reason", cv_error_message(), NULL);
            cv_error_clear();
            o->last_reload_ms = 0;
            r = CV_OK;
        }
    }
    if (cv_failed(r)) {
        cv_oidc_close(o);
        return r;
    }
    *out = o;
    return CV_OK;
}

/* A claim by name, or by dotted path into nested objects
 * (realm_access.roles); a name that itself holds dots is tried first. */
static json_t *claim_at(json_t *claims, const char *path)
{
    json_t *v = json_object_get(claims, path);
    if (v) return v;
    char seg[CLAIM_PATH_MAX_BYTES + 1];
    v = claims;
    for (const char *p = path; v && *p;) {
        size_t n = strcspn(p, ".");
        if (n == 0 || n > CLAIM_PATH_MAX_BYTES) return NULL;
        memcpy(seg, p, n);
        seg[n] = '\0';
        v = json_object_get(v, seg);
        p += n;
        if (*p == '.') p++;
    }
    return v;
}

static int audience_ok(json_t *aud, const char *want)
{
    if (json_is_string(aud)) return strcmp(json_string_value(aud), want) == 0;
    size_t i;
    json_t *v;
    json_array_foreach(aud, i, v) if (json_is_string(v) && strcmp(json_string_value(v), want) == 0) return 1;
    return 0;
}

/* exp is required; nbf and iat are checked when present; all with leeway. */
static cv_result check_times(const struct cv_oidc *o, json_t *claims, int64_t now_ms)
{
    json_t *exp = json_object_get(claims, "exp"), *nbf = json_object_get(claims, "nbf"),
           *iat = json_object_get(claims, "iat");
    CV_ENSURE(json_is_number(exp), CV_ERR_AUTH, "the token has no exp");
    CV_ENSURE(!nbf || json_is_number(nbf), CV_ERR_AUTH, "nbf is not a number");
    CV_ENSURE(!iat || json_is_number(iat), CV_ERR_AUTH, "iat is not a number");
    double now = (double)now_ms / 1000.0, skew = (double)o->leeway_ms / 1000.0;
    CV_ENSURE(now < json_number_value(exp) + skew, CV_ERR_AUTH, "the token has expired");
    CV_ENSURE(!nbf || now + skew >= json_number_value(nbf), CV_ERR_AUTH, "the token is not valid yet (nbf)");
    CV_ENSURE(!iat || json_number_value(iat) <= now + skew, CV_ERR_AUTH, "the token was issued in the future (iat)");
    return CV_OK;
}

/* The strongest mapped role among the claim's names; -1 when none maps. */
static int mapped_role(const struct cv_oidc *o, json_t *names)
{
    static const int rank[CV_ROLE__COUNT] = {[CV_ROLE_ADMIN] = 3, [CV_ROLE_TENANT_ADMIN] = 2, [CV_ROLE_AUDITOR] = 1};
    int best = -1;
    json_t *one = json_is_string(names) ? names : NULL;
    size_t i, n = one ? 1 : json_array_size(names);
    for (i = 0; i < n; i++) {
        json_t *v = one ? one : json_array_get(names, i);
        if (!json_is_string(v)) continue;
        for (size_t m = 0; m < o->nroles; m++) {
            if (strcmp(o->roles[m].name, json_string_value(v)) != 0) continue;
            if (best < 0 || rank[o->roles[m].role] > rank[best]) best = (int)o->roles[m].role;
        }
    }
    return best;
}

static int tenant_id_shape(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > CV_TENANT_ID_MAX_BYTES) return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || (c == '-' && i > 0))) return 0;
    }
    return 1;
}

static cv_result principal_from(const struct cv_oidc *o, json_t *claims, struct cv_principal *out)
{
    const char *iss = json_string_value(json_object_get(claims, "iss"));
    CV_ENSURE(iss && strcmp(iss, o->issuer) == 0, CV_ERR_AUTH, "the token's issuer is not the configured one");
    CV_ENSURE(audience_ok(json_object_get(claims, "aud"), o->audience), CV_ERR_AUTH,
              "the token is not meant for this audience");
    CV_GUARD(check_times(o, claims, cv_time_now_ms()));
    const char *sub = json_string_value(json_object_get(claims, "sub"));
    CV_ENSURE(sub && *sub, CV_ERR_AUTH, "the token has no sub");
    int role = mapped_role(o, claim_at(claims, o->role_claim));
    CV_ENSURE(role >= 0, CV_ERR_AUTH, "no role of the token is mapped by CREDVAULT_OIDC_ROLES");
    memset(out, 0, sizeof(*out));
    out->role = (enum cv_role)role;
    if (out->role != CV_ROLE_ADMIN) {
        const char *tenant = json_string_value(claim_at(claims, o->tenant_claim));
        CV_ENSURE(tenant && tenant_id_shape(tenant), CV_ERR_AUTH, "the token's tenant claim is missing or malformed");
        snprintf(out->tenant_id, sizeof(out->tenant_id), "%s", tenant);
    }
    /* "alice (https://sso.example.com/realms/grc)": the issuer keeps an OIDC
     * user apart from a credvault token of the same name */
    const char *who = json_string_value(json_object_get(claims, "preferred_username"));
    if (!who || !*who) who = sub;
    int n = snprintf(out->name, sizeof(out->name), "%s (%s)", who, iss);
    CV_ENSURE(n > 0 && (size_t)n < sizeof(out->name) && !strpbrk(out->name, "\r\n"), CV_ERR_AUTH,
              "the token's user name and issuer are longer than %d bytes", CV_STORE_PRINCIPAL_MAX_BYTES);
    /* a stable id per subject, for per-caller rate limits */
    uint8_t h[CV_SHA256_BYTES];
    size_t il = strlen(iss), sl = strlen(sub);
    char *both = malloc(il + 1 + sl);
    CV_ENSURE(both != NULL, CV_ERR_MEMORY, "out of memory");
    memcpy(both, iss, il);
    both[il] = '\0';
    memcpy(both + il + 1, sub, sl);
    cv_crypto_sha256(both, il + 1 + sl, h);
    free(both);
    int k = snprintf(out->token_id, sizeof(out->token_id), "oidc-");
    for (size_t i = 0; k + 2 < (int)sizeof(out->token_id); i++) k += snprintf(out->token_id + k, 3, "%02x", h[i]);
    return CV_OK;
}

static cv_result verify(struct cv_oidc *o, const char *jwt, size_t n, char **payload, size_t *len)
{
    pthread_rwlock_rdlock(&o->lock);
    int stale = o->keys == NULL || cv_time_now_ms() - o->loaded_ms > o->max_age_ms;
    cv_result r = stale ? cv_fail(CV_ERR_NOT_FOUND, "the issuer's keys are old") : cv_jwt_verify(o->keys, jwt, n, payload, len);
    pthread_rwlock_unlock(&o->lock);
    if (r.err != CV_ERR_NOT_FOUND) return r;
    /* an unknown kid: the issuer may have rotated its keys */
    cv_error_clear();
    try_reload(o);
    pthread_rwlock_rdlock(&o->lock);
    r = cv_jwt_verify(o->keys, jwt, n, payload, len);
    pthread_rwlock_unlock(&o->lock);
    if (r.err == CV_ERR_NOT_FOUND || r.err == CV_ERR_UNAVAILABLE)
        r = cv_fail(CV_ERR_AUTH, "no key of the issuer has the token's kid");
    return r;
}

cv_result cv_oidc_authenticate(struct cv_oidc *o, const char *jwt, struct cv_principal *out)
{
    char *payload = NULL;
    size_t len = 0;
    cv_result r = verify(o, jwt, strlen(jwt), &payload, &len);
    json_t *claims = NULL;
    if (cv_ok(r)) {
        json_error_t jerr;
        claims = json_loadb(payload, len, JSON_REJECT_DUPLICATES, &jerr);
        r = json_is_object(claims) ? principal_from(o, claims, out)
                                   : cv_fail(CV_ERR_AUTH, "the token's claims are not a JSON object");
    }
    if (cv_failed(r))
        cv_log(CV_LOG_INFO, "oidc_token_refused", "issuer", o->issuer, "reason", cv_error_message(), NULL);
    json_decref(claims);
    free(payload);
    return r;
}
