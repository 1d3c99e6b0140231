/* The in-process cache of verified bearer tokens (token_cache.c). */
#ifndef CREDVAULT_DOMAIN_TOKEN_CACHE_H
#define CREDVAULT_DOMAIN_TOKEN_CACHE_H

#include "domain/domain.h"

#define CV_TOKEN_CACHE_SLOTS 4096
#define CV_TOKEN_CACHE_TTL_MS (30 * 1000)

struct cv_token_cache;

CV_RESULT cv_token_cache_new(struct cv_token_cache **out);
void cv_token_cache_free(struct cv_token_cache *c);

/* The generation to hand to put: read it before the database lookup, so that
 * an invalidation that lands meanwhile makes the put a no-op. */
uint64_t cv_token_cache_gen(struct cv_token_cache *c);
/* 1 and *out filled when `digest` (SHA-256 of the presented token) was
 * verified within the TTL, has not expired, and the cache is live. */
int cv_token_cache_get(struct cv_token_cache *c, const uint8_t digest[CV_TOKEN_HASH_BYTES], struct cv_principal *out);
/* Remembers a verified token until min(now + TTL, expires_at_ms (wall, 0 =
 * none)); nothing when the cache is not live or `gen` is stale. */
void cv_token_cache_put(struct cv_token_cache *c, uint64_t gen, const uint8_t digest[CV_TOKEN_HASH_BYTES],
                        const struct cv_principal *p, int64_t expires_at_ms);
/* Forgets every entry (a token was revoked, a tenant shredded). */
void cv_token_cache_clear(struct cv_token_cache *c);
/* The key-event listener's state: the cache serves only while the listener
 * is connected and has caught up; going down also clears it. */
void cv_token_cache_set_live(struct cv_token_cache *c, int live);
int cv_token_cache_live(struct cv_token_cache *c);

#endif
