/* Token-bucket rate limits, and the small glue that cv_routes_authenticate
 * calls before and after it checks a bearer token: the address's bucket
 * and the authentication-failure penalty of (address, token prefix) first
 * (so a bad token tried again costs no database lookup and no audit write
 * past the penalty, while a good token from the same address — behind the
 * same proxy — is not held back), then the token's bucket. Keys are token
 * ids, client addresses and token prefixes, never a whole token. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <errno.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <time.h>

#include "credvault/log.h"
#include "credvault/metrics.h"
#include "domain/audit.h"
#include "http/ratelimit.h"

struct bucket {
    uint64_t hash; /* 0: empty */
    char key[CV_RATE_KEY_MAX_BYTES];
    double tokens;
    int64_t last_ms;
};

struct shard {
    pthread_mutex_t mu;
    struct bucket slots[CV_RATE_SLOTS_PER_SHARD];
};

struct cv_ratelimit {
    struct cv_rate_limits limits;
    uint64_t seed;
    int shared; /* an anonymous MAP_SHARED mapping: every worker's buckets */
    struct shard shards[CV_RATE_SHARDS];
};

static const char class_letter[CV_RATE__COUNT] = {'r', 'w', 'a'};
static const char *const class_names[CV_RATE__COUNT] = {"read", "write", "admin"};

const char *cv_rate_class_name(enum cv_rate_class c)
{
    return (unsigned)c < CV_RATE__COUNT ? class_names[c] : "admin";
}

cv_result cv_ratelimit_new(const struct cv_rate_limits *limits, struct cv_ratelimit **out)
{
    CV_ENSURE_REF(limits);
    for (int c = 0; c < CV_RATE__COUNT; c++)
        CV_ENSURE(limits->token[c].per_s >= 0 && limits->address[c].per_s >= 0 && limits->token[c].burst >= 1 &&
                      limits->address[c].burst >= 1,
                  CV_ERR_INPUT, "rate limits need a rate of 0 or more and a burst of at least 1");
    CV_ENSURE(limits->auth_failures == 0 || limits->auth_failure_s > 0, CV_ERR_INPUT,
              "the authentication failure window must be positive");
    struct cv_ratelimit *rl = calloc(1, sizeof(*rl));
    CV_ENSURE(rl != NULL, CV_ERR_MEMORY, "out of memory");
    rl->limits = *limits;
    if (getrandom(&rl->seed, sizeof(rl->seed), GRND_NONBLOCK) != (ssize_t)sizeof(rl->seed))
        rl->seed = (uint64_t)time(NULL) ^ (uint64_t)(uintptr_t)rl;
    for (int s = 0; s < CV_RATE_SHARDS; s++)
        pthread_mutex_init(&rl->shards[s].mu, NULL);
    *out = rl;
    return CV_OK;
}

/* Several worker processes serve one port: their buckets must be one set,
 * or N workers would grant N times the limit. Made before fork; a worker
 * killed while holding a shard's lock leaves it to the next taker (robust). */
cv_result cv_ratelimit_new_shared(const struct cv_rate_limits *limits, struct cv_ratelimit **out)
{
    struct cv_ratelimit *tmp;
    CV_GUARD(cv_ratelimit_new(limits, &tmp)); /* checks the limits, draws the seed */
    void *p = mmap(NULL, sizeof(*tmp), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        cv_ratelimit_free(tmp);
        CV_BAIL(CV_ERR_MEMORY, "cannot map shared rate-limit buckets: %s", strerror(errno));
    }
    struct cv_ratelimit *rl = p;
    rl->limits = tmp->limits;
    rl->seed = tmp->seed;
    rl->shared = 1;
    cv_ratelimit_free(tmp);
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
    for (int s = 0; s < CV_RATE_SHARDS; s++)
        pthread_mutex_init(&rl->shards[s].mu, &a);
    pthread_mutexattr_destroy(&a);
    *out = rl;
    return CV_OK;
}

cv_result cv_http_limits_new_shared(const struct cv_config *cfg, struct cv_ratelimit **out)
{
    struct cv_rate_limits l;
    cv_rate_limits_from_config(cfg, &l);
    return cv_ratelimit_new_shared(&l, out);
}

void cv_http_limits_free(struct cv_ratelimit *rl) { cv_ratelimit_free(rl); }

static void shard_lock(struct shard *sh)
{
    /* the dead holder's bucket may be half-updated: a token count off by one request, no more */
    if (pthread_mutex_lock(&sh->mu) == EOWNERDEAD) pthread_mutex_consistent(&sh->mu);
}

void cv_ratelimit_free(struct cv_ratelimit *rl)
{
    if (!rl) return;
    if (rl->shared) {
        munmap(rl, sizeof(*rl)); /* this process's view only; the others keep theirs */
        return;
    }
    for (int s = 0; s < CV_RATE_SHARDS; s++)
        pthread_mutex_destroy(&rl->shards[s].mu);
    free(rl);
}

void cv_rate_limits_from_config(const struct cv_config *cfg, struct cv_rate_limits *out)
{
    memset(out, 0, sizeof(*out));
    const unsigned rate[CV_RATE__COUNT] = {cfg->rate_read_per_s, cfg->rate_write_per_s, cfg->rate_admin_per_s};
    const unsigned burst[CV_RATE__COUNT] = {cfg->rate_read_burst, cfg->rate_write_burst, cfg->rate_admin_burst};
    for (int c = 0; c < CV_RATE__COUNT; c++) {
        out->token[c].per_s = rate[c];
        out->token[c].burst = burst[c] ? burst[c] : 1;
        /* an address (a NAT, a proxy) speaks for several tokens; factor 0 turns its limit off */
        out->address[c].per_s = cfg->rate_address_factor ? (double)rate[c] * cfg->rate_address_factor : 0;
        out->address[c].burst = cfg->rate_address_factor ? out->token[c].burst * cfg->rate_address_factor : 1;
    }
    out->auth_failures = cfg->rate_auth_failures;
    out->auth_failure_s = cfg->rate_auth_failure_s ? cfg->rate_auth_failure_s : 1;
}

static uint64_t key_hash(const struct cv_ratelimit *rl, const char *key)
{
    uint64_t h = 0xcbf29ce484222325ULL ^ rl->seed;
    for (const char *p = key; *p; p++) {
        h ^= (unsigned char)*p;
        h *= 0x100000001b3ULL;
    }
    return h ? h : 1;
}

/* The bucket for `key`, under its shard's lock (held on return). With
 * create, an absent key takes an empty slot of its probe window, or the
 * least recently used one there, starting full. */
static struct bucket *find(struct cv_ratelimit *rl, const char *key, double full, int64_t now, int create,
                           struct shard **locked)
{
    uint64_t h = key_hash(rl, key);
    struct shard *sh = &rl->shards[h % CV_RATE_SHARDS];
    shard_lock(sh);
    *locked = sh;
    size_t start = (size_t)(h / CV_RATE_SHARDS) % CV_RATE_SLOTS_PER_SHARD;
    struct bucket *empty = NULL, *oldest = NULL;
    for (size_t i = 0; i < CV_RATE_PROBE; i++) {
        struct bucket *b = &sh->slots[(start + i) % CV_RATE_SLOTS_PER_SHARD];
        if (b->hash == h && strcmp(b->key, key) == 0) return b;
        if (b->hash == 0) {
            if (!empty) empty = b;
        } else if (!oldest || b->last_ms < oldest->last_ms) {
            oldest = b;
        }
    }
    if (!create) return NULL;
    struct bucket *b = empty ? empty : oldest;
    b->hash = h;
    snprintf(b->key, sizeof(b->key), "%s", key);
    b->tokens = full;
    b->last_ms = now;
    return b;
}

static void refill(struct bucket *b, double per_s, double cap, int64_t now)
{
    if (now > b->last_ms) {
        b->tokens += (double)(now - b->last_ms) * per_s / 1000.0;
        if (b->tokens > cap) b->tokens = cap;
        b->last_ms = now;
    }
}

static unsigned seconds_until(double missing, double per_s)
{
    double s = missing / per_s;
    if (!(s >= 1)) return 1;
    if (s >= CV_RATE_PENALTY_MAX_S) return CV_RATE_PENALTY_MAX_S;
    unsigned whole = (unsigned)s;
    return (double)whole < s ? whole + 1 : whole; /* round up: never invite a retry that fails */
}

unsigned cv_ratelimit_take(struct cv_ratelimit *rl, enum cv_rate_class c, enum cv_rate_scope s, const char *key,
                           int64_t now_ms)
{
    if (!rl || !key || (unsigned)c >= CV_RATE__COUNT) return 0;
    const struct cv_rate_rule *rule = s == CV_RATE_TOKEN ? &rl->limits.token[c] : &rl->limits.address[c];
    if (rule->per_s <= 0) return 0;
    char k[CV_RATE_KEY_MAX_BYTES];
    snprintf(k, sizeof(k), "%c:%c:%s", class_letter[c], s == CV_RATE_TOKEN ? 't' : 'a', key);
    struct shard *sh;
    struct bucket *b = find(rl, k, rule->burst, now_ms, 1, &sh);
    refill(b, rule->per_s, rule->burst, now_ms);
    unsigned wait = 0;
    if (b->tokens >= 1)
        b->tokens -= 1;
    else
        wait = seconds_until(1 - b->tokens, rule->per_s);
    pthread_mutex_unlock(&sh->mu);
    return wait;
}

static double failure_rate(const struct cv_ratelimit *rl)
{
    return 1.0 / rl->limits.auth_failure_s;
}

/* "f:<address>|<token prefix>": the failures of one presented token (as far
 * as its prefix tells) from one address. */
static void failure_key(char *k, size_t n, const char *address, const char *prefix)
{
    snprintf(k, n, "f:%s|%.*s", address, CV_RATE_TOKEN_PREFIX_BYTES, prefix ? prefix : "");
}

void cv_rate_token_prefix(const char *authorization, char out[CV_RATE_TOKEN_PREFIX_BYTES + 1])
{
    snprintf(out, CV_RATE_TOKEN_PREFIX_BYTES + 1, "-");
    if (!authorization || strncasecmp(authorization, "Bearer ", 7) != 0) return;
    const char *t = authorization + 7;
    while (*t == ' ') t++;
    size_t n = strcspn(t, " \t\r\n");
    if (n == 0) return;
    /* a credvault token: the characters after its fixed "cvt_"; anything else
     * (a JWT, whose head is the same for every token of an issuer): its tail */
    size_t fixed = strlen(CV_TOKEN_PREFIX), off;
    if (n > fixed && strncmp(t, CV_TOKEN_PREFIX, fixed) == 0) off = fixed;
    else off = n > CV_RATE_TOKEN_PREFIX_BYTES ? n - CV_RATE_TOKEN_PREFIX_BYTES : 0;
    size_t i = 0;
    for (; i < CV_RATE_TOKEN_PREFIX_BYTES && off + i < n; i++) {
        char c = t[off + i];
        int plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
                    c == '_' || c == '.';
        out[i] = plain ? c : '?'; /* a key, never printed; kept to one alphabet */
    }
    out[i] = '\0';
}

unsigned cv_ratelimit_penalty(struct cv_ratelimit *rl, const char *address, const char *token_prefix,
                              int64_t now_ms)
{
    if (!rl || !address || rl->limits.auth_failures == 0) return 0;
    char k[CV_RATE_KEY_MAX_BYTES];
    failure_key(k, sizeof(k), address, token_prefix);
    struct shard *sh;
    struct bucket *b = find(rl, k, 0, now_ms, 0, &sh);
    unsigned wait = 0;
    if (b) {
        refill(b, failure_rate(rl), rl->limits.auth_failures, now_ms);
        if (b->tokens < 1) wait = seconds_until(1 - b->tokens, failure_rate(rl));
    }
    pthread_mutex_unlock(&sh->mu);
    return wait;
}

void cv_ratelimit_auth_failed(struct cv_ratelimit *rl, const char *address, const char *token_prefix,
                              int64_t now_ms)
{
    if (!rl || !address || rl->limits.auth_failures == 0) return;
    char k[CV_RATE_KEY_MAX_BYTES];
    failure_key(k, sizeof(k), address, token_prefix);
    struct shard *sh;
    struct bucket *b = find(rl, k, rl->limits.auth_failures, now_ms, 1, &sh);
    refill(b, failure_rate(rl), rl->limits.auth_failures, now_ms);
    int was_free = b->tokens >= 1;
    b->tokens -= 1;
    /* each failure past the allowance pushes the next attempt further out, up to a bound */
    double floor = 1 - (double)CV_RATE_PENALTY_MAX_S * failure_rate(rl);
    if (b->tokens < floor) b->tokens = floor;
    int held = b->tokens < 1;
    pthread_mutex_unlock(&sh->mu);
    if (was_free && held) cv_log(CV_LOG_WARN, "auth_failures_slowed", "client", address, NULL);
}

enum cv_rate_class cv_rate_class_of(const char *method, const char *route_pattern)
{
    if (!route_pattern || strncmp(route_pattern, "/api/mcp/", 9) != 0) return CV_RATE_ADMIN;
    size_t n = strlen(route_pattern);
    if ((method && (strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0)) ||
        (n >= 9 && strcmp(route_pattern + n - 9, "/validate") == 0))
        return CV_RATE_READ;
    return CV_RATE_WRITE;
}

/* ---- the glue for cv_routes_authenticate ---- */

/* The service's limiter (app->limiter), made before the server starts; NULL
 * means no limits (a command-line front end, or limits all off). */
static struct cv_ratelimit *limiter(const struct cv_app *app)
{
    return app ? app->limiter : NULL;
}

cv_result cv_routes_limits_open(struct cv_app *app)
{
    CV_ENSURE(app && app->cfg && !app->limiter, CV_ERR_INTERNAL, "rate limits need a service without limits yet");
    struct cv_rate_limits l;
    cv_rate_limits_from_config(app->cfg, &l);
    return cv_ratelimit_new(&l, &app->limiter);
}

void cv_routes_limits_close(struct cv_app *app)
{
    if (!app || !app->limiter) return;
    cv_ratelimit_free(app->limiter);
    app->limiter = NULL;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void reply_limited(const struct cv_app *app, struct cv_http_response *res, enum cv_rate_class c, const char *scope, unsigned wait)
{
    cv_metric_inc_l(app->metrics, CV_M_RATE_LIMITED, cv_rate_class_name(c), scope, NULL);
    char v[16];
    snprintf(v, sizeof(v), "%u", wait);
    cv_http_reply_error(res, cv_fail_code(CV_ERR_RATE_LIMITED, "rate_limited",
                                          "too many requests; retry after %u second%s", wait, wait == 1 ? "" : "s"));
    cv_http_header_add(res, "Retry-After", v); /* RFC 9110 §10.2.3 */
}

int cv_routes_admit_address(struct cv_app *app, struct cv_http_request *req, struct cv_http_response *res)
{
    struct cv_ratelimit *rl = limiter(app);
    const char *addr = cv_http_client_addr(req);
    enum cv_rate_class c = cv_rate_class_of(cv_http_method(req), cv_http_route_pattern(req));
    int64_t now = now_ms();
    char prefix[CV_RATE_TOKEN_PREFIX_BYTES + 1];
    cv_rate_token_prefix(cv_http_header(req, "Authorization"), prefix);
    unsigned wait = cv_ratelimit_penalty(rl, addr, prefix, now);
    if (wait) {
        reply_limited(app, res, c, "auth_failures", wait);
        return 0;
    }
    wait = cv_ratelimit_take(rl, c, CV_RATE_ADDRESS, addr, now);
    if (wait) {
        reply_limited(app, res, c, "address", wait);
        return 0;
    }
    return 1;
}

cv_result cv_routes_auth_failed(struct cv_app *app, struct cv_http_request *req, cv_result failure)
{
    /* an outage is not a failed authentication */
    if (failure.err != CV_ERR_AUTH) return failure;
    const char *addr = cv_http_client_addr(req);
    cv_metric_inc(app->metrics, CV_M_AUTH_FAILURES);
    char prefix[CV_RATE_TOKEN_PREFIX_BYTES + 1];
    cv_rate_token_prefix(cv_http_header(req, "Authorization"), prefix);
    cv_ratelimit_auth_failed(limiter(app), addr, prefix, now_ms());
    /* a request that presents no credential tried none: answered and counted,
     * not audited (probes and scanners would fill the trail, and a 401
     * without a token stays free of the database) */
    const char *authz = cv_http_header(req, "Authorization");
    if (authz && *authz)
        CV_GUARD(cv_audit_auth_failed(app, addr, cv_http_request_id(req), cv_http_route_pattern(req)));
    return cv_fail(CV_ERR_AUTH, "missing or invalid bearer token");
}

int cv_routes_admit_token(struct cv_app *app, struct cv_http_request *req, struct cv_http_response *res,
                          const struct cv_principal *p)
{
    cv_http_log_tenant(req, p->tenant_id);
    enum cv_rate_class c = cv_rate_class_of(cv_http_method(req), cv_http_route_pattern(req));
    unsigned wait = cv_ratelimit_take(limiter(app), c, CV_RATE_TOKEN, p->token_id, now_ms());
    if (!wait) return 1;
    reply_limited(app, res, c, "token", wait);
    return 0;
}
