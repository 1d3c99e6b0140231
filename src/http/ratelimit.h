/* Rate limits around the route handlers: token buckets per API token and
 * per client address, separately for credential reads, credential writes
 * and admin calls, and a bucket of authentication failures per address and
 * token prefix that slows that token down once it has failed too often. Over a limit is 429
 * with Retry-After, counted in credvault_rate_limited_total. The table of
 * buckets is bounded; the least recently used bucket makes room. */
#ifndef CREDVAULT_HTTP_RATELIMIT_H
#define CREDVAULT_HTTP_RATELIMIT_H

#include <stddef.h>
#include <stdint.h>

#include "credvault/config.h"
#include "credvault/result.h"
#include "domain/domain.h"
#include "http/http.h"

#define CV_RATE_KEY_MAX_BYTES 80 /* "r:t:<uuid>", "w:a:<address>", "f:<address>|<token prefix>" */
#define CV_RATE_TOKEN_PREFIX_BYTES 12 /* 48 bits of a credvault token's randomness */
#define CV_RATE_SHARDS 16
#define CV_RATE_SLOTS_PER_SHARD 1024 /* 16,384 buckets in all */
#define CV_RATE_PROBE 8              /* slots looked at before the oldest is replaced */
#define CV_RATE_PENALTY_MAX_S 900    /* the longest an address is held back */

enum cv_rate_class { CV_RATE_READ = 0, CV_RATE_WRITE, CV_RATE_ADMIN, CV_RATE__COUNT };
enum cv_rate_scope { CV_RATE_TOKEN = 0, CV_RATE_ADDRESS };

struct cv_rate_rule {
    double per_s; /* refill; 0 = no limit */
    double burst; /* capacity */
};

struct cv_rate_limits {
    struct cv_rate_rule token[CV_RATE__COUNT];
    struct cv_rate_rule address[CV_RATE__COUNT];
    unsigned auth_failures; /* failures an address may make at once; 0 = never slowed down */
    double auth_failure_s;  /* seconds that forgive one failure */
};

struct cv_ratelimit;

CV_RESULT cv_ratelimit_new(const struct cv_rate_limits *limits, struct cv_ratelimit **out);
/* The same, in an anonymous MAP_SHARED mapping for worker processes (made
 * before fork); free then drops only the calling process's view. */
CV_RESULT cv_ratelimit_new_shared(const struct cv_rate_limits *limits, struct cv_ratelimit **out);
void cv_ratelimit_free(struct cv_ratelimit *rl);
void cv_rate_limits_from_config(const struct cv_config *cfg, struct cv_rate_limits *out);

/* Takes one request from the bucket of (class, scope, key) at time now_ms
 * (monotonic). 0: allowed; otherwise the whole seconds until one is free. */
unsigned cv_ratelimit_take(struct cv_ratelimit *rl, enum cv_rate_class c, enum cv_rate_scope s, const char *key,
                           int64_t now_ms);
/* The part of an Authorization header that keys authentication failures:
 * for a credvault token the first CV_RATE_TOKEN_PREFIX_BYTES characters
 * after "cvt_", for anything else (a JWT) its last ones; "-" when there is
 * no bearer token. Never the whole token. */
void cv_rate_token_prefix(const char *authorization, char out[CV_RATE_TOKEN_PREFIX_BYTES + 1]);
/* A token prefix that failed authentication too often from `address`:
 * seconds it must wait (0: none). Another token from the same address is
 * not held back. */
unsigned cv_ratelimit_penalty(struct cv_ratelimit *rl, const char *address, const char *token_prefix,
                              int64_t now_ms);
/* Counts one failed authentication of `token_prefix` from `address`. */
void cv_ratelimit_auth_failed(struct cv_ratelimit *rl, const char *address, const char *token_prefix,
                              int64_t now_ms);

/* Which limit a route falls under: reads and validation of /api/mcp are
 * reads, the rest of /api/mcp writes, everything else (tenants, tokens,
 * keys, audit, metrics) admin. */
enum cv_rate_class cv_rate_class_of(const char *method, const char *route_pattern);
const char *cv_rate_class_name(enum cv_rate_class c);

/* ---- used by cv_routes_authenticate (src/http/routes.c) ---- */

/* Before the token is looked up: the address's bucket and its penalty.
 * Replies 429 (Retry-After) and returns 0 when over. */
int cv_routes_admit_address(struct cv_app *app, struct cv_http_request *req, struct cv_http_response *res);
/* After a failed authentication: counts it against the address, writes the
 * audit event and the metric; returns the result to reply with (503 when
 * the event could not be written). */
CV_RESULT cv_routes_auth_failed(struct cv_app *app, struct cv_http_request *req, cv_result failure);
/* After a successful one: the token's bucket (replies 429, returns 0 when
 * over); names the tenant in the access log and the request for audit events. */
int cv_routes_admit_token(struct cv_app *app, struct cv_http_request *req, struct cv_http_response *res,
                          const struct cv_principal *p);

#endif
