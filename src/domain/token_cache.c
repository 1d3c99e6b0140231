/* Verified bearer tokens remembered in process, so that a request with a known
 * token makes no database round trip for it. Keyed by the token's SHA-256,
 * never the token; bounded (direct-mapped slots) and short-lived. Serves only
 * while the key-event listener is connected and caught up: revocations and
 * shreds arrive as key events, and a listener that is down could miss one. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "credvault/buf.h"
#include "domain/token_cache.h"

#define STRIPES 64 /* a mutex per 64 slots: workers seldom meet on one */

struct slot {
    uint8_t digest[CV_TOKEN_HASH_BYTES];
    struct cv_principal p;
    int64_t until_mono_ms;
    int64_t expires_at_ms; /* wall clock, 0 = never */
};

struct cv_token_cache {
    _Atomic int live;
    _Atomic uint64_t gen; /* bumped by every clear */
    pthread_mutex_t mu[STRIPES];
    struct slot slot[CV_TOKEN_CACHE_SLOTS];
};

_Static_assert(CV_TOKEN_CACHE_SLOTS % STRIPES == 0, "slots split evenly across stripes");

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

cv_result cv_token_cache_new(struct cv_token_cache **out)
{
    struct cv_token_cache *c = calloc(1, sizeof(*c));
    CV_ENSURE(c != NULL, CV_ERR_MEMORY, "out of memory");
    for (int i = 0; i < STRIPES; i++) pthread_mutex_init(&c->mu[i], NULL);
    *out = c;
    return CV_OK;
}

void cv_token_cache_free(struct cv_token_cache *c)
{
    if (!c) return;
    for (int i = 0; i < STRIPES; i++) pthread_mutex_destroy(&c->mu[i]);
    cv_wipe(c->slot, sizeof(c->slot));
    free(c);
}

static size_t index_of(const uint8_t digest[CV_TOKEN_HASH_BYTES])
{
    /* the digest is uniform: its first bytes are as good an index as any */
    return ((size_t)digest[0] << 16 | (size_t)digest[1] << 8 | digest[2]) % CV_TOKEN_CACHE_SLOTS;
}

static pthread_mutex_t *stripe(struct cv_token_cache *c, size_t i) { return &c->mu[i % STRIPES]; }

uint64_t cv_token_cache_gen(struct cv_token_cache *c) { return c ? atomic_load(&c->gen) : 0; }

int cv_token_cache_live(struct cv_token_cache *c) { return c && atomic_load(&c->live); }

int cv_token_cache_get(struct cv_token_cache *c, const uint8_t digest[CV_TOKEN_HASH_BYTES], struct cv_principal *out)
{
    if (!cv_token_cache_live(c)) return 0;
    size_t i = index_of(digest);
    int64_t now = mono_ms();
    int hit = 0;
    pthread_mutex_lock(stripe(c, i));
    struct slot *s = &c->slot[i];
    if (s->until_mono_ms > now && cv_memeq(s->digest, digest, CV_TOKEN_HASH_BYTES)) {
        if (s->expires_at_ms == 0 || s->expires_at_ms > cv_time_now_ms()) {
            *out = s->p;
            hit = 1;
        } else {
            s->until_mono_ms = 0;
        }
    }
    pthread_mutex_unlock(stripe(c, i));
    /* a clear that began while we copied wins: answer from the database */
    return hit && cv_token_cache_live(c);
}

void cv_token_cache_put(struct cv_token_cache *c, uint64_t gen, const uint8_t digest[CV_TOKEN_HASH_BYTES],
                        const struct cv_principal *p, int64_t expires_at_ms)
{
    if (!cv_token_cache_live(c)) return;
    size_t i = index_of(digest);
    pthread_mutex_lock(stripe(c, i));
    /* checked under the stripe lock: clear bumps gen before it takes the
     * locks, so a put that passes here is wiped by that clear */
    if (atomic_load(&c->gen) == gen) {
        struct slot *s = &c->slot[i];
        memcpy(s->digest, digest, CV_TOKEN_HASH_BYTES);
        s->p = *p;
        s->p.request_id = NULL;
        s->expires_at_ms = expires_at_ms;
        s->until_mono_ms = mono_ms() + CV_TOKEN_CACHE_TTL_MS;
    }
    pthread_mutex_unlock(stripe(c, i));
}

void cv_token_cache_clear(struct cv_token_cache *c)
{
    if (!c) return;
    atomic_fetch_add(&c->gen, 1);
    for (int k = 0; k < STRIPES; k++) {
        pthread_mutex_lock(&c->mu[k]);
        for (size_t i = (size_t)k; i < CV_TOKEN_CACHE_SLOTS; i += STRIPES) c->slot[i].until_mono_ms = 0;
        pthread_mutex_unlock(&c->mu[k]);
    }
}

void cv_token_cache_set_live(struct cv_token_cache *c, int live)
{
    if (!c) return;
    if (!live) {
        atomic_store(&c->live, 0);
        cv_token_cache_clear(c);
        return;
    }
    atomic_store(&c->live, 1);
}
