/* The unwrapped-key cache: hash map plus doubly linked LRU list under one
 * mutex. Never calls the token and never holds key bytes: entries carry the
 * wrapped bytes (ciphertext) and a handle. An entry evicted while pinned is
 * destroyed by its last user, so no thread ever encrypts with a dead handle. */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "cache.h"
#include "credvault/buf.h"
#include "credvault/metrics.h"

struct cv_hsm_cache_entry {
    struct cv_key_ref ref;
    unsigned long handle;
    uint64_t hash;
    unsigned refs;
    int detached; /* out of map and list; destroyed on the last unpin */
    struct cv_hsm_cache_entry *hnext;
    struct cv_hsm_cache_entry *prev, *next; /* LRU: head is most recent */
};

struct cv_hsm_cache {
    struct cv_metrics *metrics; /* the service's, or NULL */
    pthread_mutex_t mu;
    unsigned capacity, count;
    size_t nbuckets; /* power of two */
    struct cv_hsm_cache_entry **buckets;
    struct cv_hsm_cache_entry *head, *tail;
    uint64_t seed;
};

/* FNV-1a, seeded per process so bucket placement is not predictable. */
static uint64_t mix(uint64_t h, const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

static uint64_t ref_hash(const struct cv_hsm_cache *c, const struct cv_key_ref *ref)
{
    uint64_t h = 0xcbf29ce484222325ULL ^ c->seed;
    h = mix(h, ref->tenant_id, strnlen(ref->tenant_id, sizeof(ref->tenant_id)));
    h = mix(h, &ref->version, sizeof(ref->version));
    h = mix(h, &ref->master_version, sizeof(ref->master_version));
    h = mix(h, ref->wrapped, ref->wrapped_len);
    return h;
}

static int ref_equal(const struct cv_key_ref *a, const struct cv_key_ref *b)
{
    return strncmp(a->tenant_id, b->tenant_id, sizeof(a->tenant_id)) == 0 && a->version == b->version &&
           a->master_version == b->master_version && a->wrapped_len == b->wrapped_len &&
           cv_memeq(a->wrapped, b->wrapped, a->wrapped_len) &&
           cv_memeq(a->binding, b->binding, sizeof(a->binding));
}

void cv_hsm_cache_count_into(struct cv_hsm_cache *c, struct cv_metrics *reg)
{
    if (c) c->metrics = reg;
}

cv_result cv_hsm_cache_new(unsigned capacity, struct cv_hsm_cache **out)
{
    CV_ENSURE(capacity >= 1, CV_ERR_INPUT, "key cache size must be at least 1");
    struct cv_hsm_cache *c = calloc(1, sizeof(*c));
    CV_ENSURE(c != NULL, CV_ERR_MEMORY, "out of memory");
    c->capacity = capacity;
    c->nbuckets = 16;
    while (c->nbuckets < capacity && c->nbuckets < ((size_t)1 << 30)) c->nbuckets <<= 1;
    c->buckets = calloc(c->nbuckets, sizeof(*c->buckets));
    if (!c->buckets) {
        free(c);
        return cv_fail(CV_ERR_MEMORY, "out of memory");
    }
    if (getrandom(&c->seed, sizeof(c->seed), GRND_NONBLOCK) != (ssize_t)sizeof(c->seed))
        c->seed = (uint64_t)time(NULL) ^ (uint64_t)(uintptr_t)c;
    pthread_mutex_init(&c->mu, NULL);
    *out = c;
    return CV_OK;
}

static void list_unlink(struct cv_hsm_cache *c, struct cv_hsm_cache_entry *e)
{
    if (e->prev) e->prev->next = e->next;
    else c->head = e->next;
    if (e->next) e->next->prev = e->prev;
    else c->tail = e->prev;
    e->prev = e->next = NULL;
}

static void list_push_front(struct cv_hsm_cache *c, struct cv_hsm_cache_entry *e)
{
    e->prev = NULL;
    e->next = c->head;
    if (c->head) c->head->prev = e;
    c->head = e;
    if (!c->tail) c->tail = e;
}

static void map_unlink(struct cv_hsm_cache *c, struct cv_hsm_cache_entry *e)
{
    struct cv_hsm_cache_entry **p = &c->buckets[e->hash & (c->nbuckets - 1)];
    while (*p && *p != e) p = &(*p)->hnext;
    if (*p) *p = e->hnext;
    e->hnext = NULL;
}

/* Takes e out of map and list. Returns the handle to destroy now, or 0 when
 * a pin holds it (the last unpin frees it). */
static unsigned long detach(struct cv_hsm_cache *c, struct cv_hsm_cache_entry *e)
{
    map_unlink(c, e);
    list_unlink(c, e);
    c->count--;
    if (e->refs > 0) {
        e->detached = 1;
        return 0;
    }
    unsigned long h = e->handle;
    free(e);
    return h;
}

static struct cv_hsm_cache_entry *lookup(struct cv_hsm_cache *c, const struct cv_key_ref *ref, uint64_t hash)
{
    for (struct cv_hsm_cache_entry *e = c->buckets[hash & (c->nbuckets - 1)]; e; e = e->hnext)
        if (e->hash == hash && ref_equal(&e->ref, ref)) return e;
    return NULL;
}

struct cv_hsm_cache_entry *cv_hsm_cache_get(struct cv_hsm_cache *c, const struct cv_key_ref *ref)
{
    uint64_t hash = ref_hash(c, ref);
    pthread_mutex_lock(&c->mu);
    struct cv_hsm_cache_entry *e = lookup(c, ref, hash);
    if (e) {
        e->refs++;
        list_unlink(c, e);
        list_push_front(c, e);
    }
    pthread_mutex_unlock(&c->mu);
    cv_metric_inc(c->metrics, e ? CV_M_KEY_CACHE_HITS : CV_M_KEY_CACHE_MISSES);
    return e;
}

unsigned long cv_hsm_cache_handle(const struct cv_hsm_cache_entry *e) { return e->handle; }

cv_result cv_hsm_cache_put(struct cv_hsm_cache *c, const struct cv_key_ref *ref, unsigned long handle,
                           struct cv_hsm_cache_entry **pinned, struct cv_hsm_cache_doomed *doomed)
{
    memset(doomed, 0, sizeof(*doomed));
    *pinned = NULL;
    uint64_t hash = ref_hash(c, ref);
    struct cv_hsm_cache_entry *fresh = calloc(1, sizeof(*fresh));
    CV_ENSURE(fresh != NULL, CV_ERR_MEMORY, "out of memory");
    fresh->ref = *ref;
    fresh->handle = handle;
    fresh->hash = hash;
    fresh->refs = 1;

    pthread_mutex_lock(&c->mu);
    struct cv_hsm_cache_entry *e = lookup(c, ref, hash);
    if (e) {
        /* Another thread unwrapped the same ref first: use its copy. */
        e->refs++;
        list_unlink(c, e);
        list_push_front(c, e);
        doomed->handle[0] = handle;
        free(fresh);
        *pinned = e;
    } else {
        size_t b = hash & (c->nbuckets - 1);
        fresh->hnext = c->buckets[b];
        c->buckets[b] = fresh;
        list_push_front(c, fresh);
        c->count++;
        *pinned = fresh;
        if (c->count > c->capacity) {
            doomed->handle[0] = detach(c, c->tail);
            cv_metric_inc(c->metrics, CV_M_KEY_CACHE_EVICTIONS);
        }
    }
    pthread_mutex_unlock(&c->mu);
    return CV_OK;
}

unsigned long cv_hsm_cache_unpin(struct cv_hsm_cache *c, struct cv_hsm_cache_entry *e)
{
    unsigned long h = 0;
    pthread_mutex_lock(&c->mu);
    if (--e->refs == 0 && e->detached) {
        h = e->handle;
        free(e);
    }
    pthread_mutex_unlock(&c->mu);
    return h;
}

int cv_hsm_cache_detach_next(struct cv_hsm_cache *c, const char *tenant_id, unsigned long *handle)
{
    int found = 0;
    *handle = 0;
    pthread_mutex_lock(&c->mu);
    for (struct cv_hsm_cache_entry *e = c->tail; e; e = e->prev) {
        if (tenant_id && strncmp(e->ref.tenant_id, tenant_id, sizeof(e->ref.tenant_id)) != 0) continue;
        *handle = detach(c, e);
        found = 1;
        break;
    }
    pthread_mutex_unlock(&c->mu);
    return found;
}

void cv_hsm_cache_forget(struct cv_hsm_cache *c)
{
    pthread_mutex_lock(&c->mu);
    struct cv_hsm_cache_entry *e = c->head;
    while (e) {
        struct cv_hsm_cache_entry *next = e->next;
        if (e->refs > 0) {
            /* Only reachable if a pin outlived its attempt; the handle is dead
             * either way, so the last unpin must not destroy it. */
            e->detached = 1;
            e->handle = 0;
            e->prev = e->next = e->hnext = NULL;
        } else {
            free(e);
        }
        e = next;
    }
    memset(c->buckets, 0, c->nbuckets * sizeof(*c->buckets));
    c->head = c->tail = NULL;
    c->count = 0;
    pthread_mutex_unlock(&c->mu);
}

unsigned cv_hsm_cache_count(struct cv_hsm_cache *c)
{
    pthread_mutex_lock(&c->mu);
    unsigned n = c->count;
    pthread_mutex_unlock(&c->mu);
    return n;
}

void cv_hsm_cache_free(struct cv_hsm_cache *c)
{
    if (!c) return;
    cv_hsm_cache_forget(c);
    free(c->buckets);
    pthread_mutex_destroy(&c->mu);
    free(c);
}
