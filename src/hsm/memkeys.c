/* Memory residency: a tenant key unwrapped once as an extractable, readable
 * session object, its bytes read straight into locked, dump-excluded memory,
 * the object destroyed before the attempt ends. Keeps those bytes in a bounded
 * cache that is wiped on eviction and on every drop the handle cache gets.
 * Never logs or returns key bytes anywhere but the caller's buffer. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "credvault/buf.h"
#include "internal.h"

struct memkey {
    struct cv_key_ref ref;
    uint8_t key[CV_AES256_KEY_BYTES];
    uint64_t used; /* LRU tick; 0: empty slot */
};

struct cv_hsm_memkeys {
    pthread_mutex_t mu;
    unsigned capacity;
    uint64_t tick;
    struct memkey *slots; /* secret memory, made on first use */
};

cv_result cv_hsm_memkeys_new(unsigned capacity, struct cv_hsm_memkeys **out)
{
    struct cv_hsm_memkeys *m = calloc(1, sizeof(*m));
    CV_ENSURE(m != NULL, CV_ERR_MEMORY, "out of memory");
    pthread_mutex_init(&m->mu, NULL);
    m->capacity = capacity;
    *out = m;
    return CV_OK;
}

void cv_hsm_memkeys_free(struct cv_hsm_memkeys *m)
{
    if (!m) return;
    if (m->slots) cv_secret_free(m->slots); /* wipes */
    pthread_mutex_destroy(&m->mu);
    free(m);
}

static int ref_equal(const struct cv_key_ref *a, const struct cv_key_ref *b)
{
    return strncmp(a->tenant_id, b->tenant_id, sizeof(a->tenant_id)) == 0 && a->version == b->version &&
           a->master_version == b->master_version && a->wrapped_len == b->wrapped_len &&
           memcmp(a->wrapped, b->wrapped, a->wrapped_len) == 0 &&
           memcmp(a->binding, b->binding, sizeof(a->binding)) == 0;
}

/* Copies the key of an entry equal to `ref` in everything (a changed ref never
 * meets stale bytes) into `key`; 0 on a miss. */
static int lookup(struct cv_hsm_memkeys *m, const struct cv_key_ref *ref, uint8_t key[CV_AES256_KEY_BYTES])
{
    int hit = 0;
    pthread_mutex_lock(&m->mu);
    for (unsigned i = 0; m->slots && i < m->capacity; i++) {
        struct memkey *e = &m->slots[i];
        if (!e->used || e->ref.version != ref->version || !ref_equal(&e->ref, ref)) continue;
        memcpy(key, e->key, CV_AES256_KEY_BYTES);
        e->used = ++m->tick;
        hit = 1;
        break;
    }
    pthread_mutex_unlock(&m->mu);
    return hit;
}

static cv_result insert(struct cv_hsm_memkeys *m, const struct cv_key_ref *ref, const uint8_t key[CV_AES256_KEY_BYTES])
{
    cv_result r = CV_OK;
    pthread_mutex_lock(&m->mu);
    if (!m->slots) m->slots = cv_secret_alloc((size_t)m->capacity * sizeof(*m->slots)); /* zeroed */
    if (!m->slots) {
        r = cv_fail(CV_ERR_MEMORY, "out of memory");
        goto out;
    }
    /* an equal entry (another thread got there first), else an empty slot,
     * else the least recently used one, wiped before reuse */
    struct memkey *victim = &m->slots[0]; /* capacity >= 1 (checked at open) */
    for (unsigned i = 0; i < m->capacity; i++) {
        struct memkey *e = &m->slots[i];
        if (e->used && ref_equal(&e->ref, ref)) {
            victim = e;
            break;
        }
        if (victim->used && e->used < victim->used) victim = e;
    }
    cv_wipe(victim, sizeof(*victim));
    victim->ref = *ref;
    memcpy(victim->key, key, CV_AES256_KEY_BYTES);
    victim->used = ++m->tick;
out:
    pthread_mutex_unlock(&m->mu);
    return r;
}

void cv_hsm_memkeys_drop(struct cv_hsm_memkeys *m, const char *tenant_id)
{
    if (!m) return;
    pthread_mutex_lock(&m->mu);
    for (unsigned i = 0; m->slots && i < m->capacity; i++) {
        struct memkey *e = &m->slots[i];
        if (e->used && (!tenant_id || strncmp(e->ref.tenant_id, tenant_id, sizeof(e->ref.tenant_id)) == 0))
            cv_wipe(e, sizeof(*e));
    }
    pthread_mutex_unlock(&m->mu);
}

unsigned cv_hsm_memkeys_count(struct cv_hsm_memkeys *m)
{
    unsigned n = 0;
    pthread_mutex_lock(&m->mu);
    for (unsigned i = 0; m->slots && i < m->capacity; i++) n += m->slots[i].used != 0;
    pthread_mutex_unlock(&m->mu);
    return n;
}

struct read_arg {
    const struct cv_key_ref *ref;
    uint8_t *key; /* secret memory */
};

/* The only unwrap that asks for a readable key. A master key marked hsm-only
 * (its CKA_UNWRAP_TEMPLATE demands CKA_SENSITIVE true) makes the token refuse
 * it with CKR_TEMPLATE_INCONSISTENT. */
static cv_result read_op(struct cv_hsm *hsm, struct cv_hsm_lease *lease, void *arg)
{
    struct read_arg *a = arg;
    CV_GUARD(cv_hsm_binding_check(hsm, lease, a->ref));
    CK_OBJECT_HANDLE master;
    CV_GUARD(cv_hsm_master_handle(hsm, lease, a->ref->master_version, &master));
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_KEY_TYPE type = CKK_AES;
    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    CK_ATTRIBUTE t[] = {
        {CKA_CLASS, &cls, sizeof(cls)},
        {CKA_KEY_TYPE, &type, sizeof(type)},
        {CKA_TOKEN, &no, sizeof(no)},
        {CKA_PRIVATE, &yes, sizeof(yes)},
        {CKA_SENSITIVE, &no, sizeof(no)},
        {CKA_EXTRACTABLE, &yes, sizeof(yes)},
        {CKA_ENCRYPT, &no, sizeof(no)},
        {CKA_DECRYPT, &no, sizeof(no)},
        {CKA_WRAP, &no, sizeof(no)},
        {CKA_UNWRAP, &no, sizeof(no)},
        {CKA_SIGN, &no, sizeof(no)},
        {CKA_VERIFY, &no, sizeof(no)},
        {CKA_DERIVE, &no, sizeof(no)},
    };
    CK_MECHANISM mech = {hsm->profile.wrap_mechanism, NULL, 0};
    CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;
    /* in the leased session: if the attempt dies half way, the object dies
     * with the session at recovery at the latest */
    CK_RV rv = hsm->f->C_UnwrapKey(lease->session, &mech, master, (CK_BYTE_PTR)a->ref->wrapped,
                                   (CK_ULONG)a->ref->wrapped_len, t, sizeof(t) / sizeof(t[0]), &h);
    if (rv == CKR_TEMPLATE_INCONSISTENT)
        return cv_fail(CV_ERR_INTERNAL, "the HSM refuses to give out tenant keys: master key %s%u is marked for hsm "
                                        "residency only (CKA_UNWRAP_TEMPLATE); set CREDVAULT_KEY_RESIDENCY=hsm",
                       CV_HSM_MASTER_LABEL_PREFIX, (unsigned)a->ref->master_version);
    if (rv != CKR_OK) return cv_hsm_data_fail(hsm, lease, rv, "C_UnwrapKey");
    CK_ATTRIBUTE v = {CKA_VALUE, a->key, CV_AES256_KEY_BYTES};
    rv = hsm->f->C_GetAttributeValue(lease->session, h, &v, 1);
    cv_hsm_destroy_quietly(hsm, lease->session, h);
    if (rv != CKR_OK) {
        cv_wipe(a->key, CV_AES256_KEY_BYTES);
        return cv_hsm_ck_fail(lease, rv, "C_GetAttributeValue", CV_ERR_INTERNAL);
    }
    if (v.ulValueLen != CV_AES256_KEY_BYTES) {
        cv_wipe(a->key, CV_AES256_KEY_BYTES);
        CV_BAIL(CV_ERR_CRYPTO, CV_HSM_DECRYPT_FAILED);
    }
    return CV_OK;
}

cv_result cv_hsm_tenant_key_read(struct cv_hsm *hsm, const struct cv_key_ref *ref, uint8_t key[CV_AES256_KEY_BYTES])
{
    CV_ENSURE_REF(hsm);
    CV_ENSURE_REF(key);
    CV_GUARD(cv_hsm_ref_check(ref));
    if (lookup(hsm->memkeys, ref, key)) {
        cv_metric_inc(hsm->metrics, CV_M_KEY_CACHE_HITS);
        return CV_OK;
    }
    cv_metric_inc(hsm->metrics, CV_M_KEY_CACHE_MISSES);
    uint8_t *fresh = cv_secret_alloc(CV_AES256_KEY_BYTES);
    CV_ENSURE(fresh != NULL, CV_ERR_MEMORY, "out of memory");
    struct read_arg a = {ref, fresh};
    cv_result r = cv_hsm_run(hsm, read_op, &a);
    if (cv_ok(r)) r = insert(hsm->memkeys, ref, fresh);
    if (cv_ok(r)) memcpy(key, fresh, CV_AES256_KEY_BYTES);
    cv_secret_free(fresh); /* wipes */
    return r;
}
