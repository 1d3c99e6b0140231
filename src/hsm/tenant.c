/* Tenant keys: generated in the token and handed out only wrapped under a
 * master key; unwrapped into the token for use after the binding check. The
 * plaintext key never exists outside the token, and an unwrapped copy that
 * we keep is never extractable. */
#include <string.h>

#include "credvault/buf.h"
#include "internal.h"

/* Only the length: the binding covers whatever name it is given, and the
 * start-up canary is deliberately named outside tenant-id syntax (so that no
 * tenant can ever collide with it); the layers above check the syntax. */
static int owner_ok(const struct cv_key_ref *ref)
{
    size_t n = strnlen(ref->tenant_id, sizeof(ref->tenant_id));
    return n >= 1 && n <= CV_TENANT_ID_MAX_BYTES;
}

cv_result cv_hsm_ref_check(const struct cv_key_ref *ref)
{
    CV_ENSURE_REF(ref);
    CV_ENSURE(owner_ok(ref), CV_ERR_INPUT, "key reference has no valid tenant id");
    /* RFC 5649 output is whole 64-bit blocks, at least two. */
    CV_ENSURE(ref->wrapped_len >= 16 && ref->wrapped_len <= CV_WRAPPED_KEY_MAX_BYTES && ref->wrapped_len % 8 == 0,
              CV_ERR_INPUT, "key reference has a wrapped key of invalid length");
    return CV_OK;
}

/* Unwraps ref's bytes under its master into `session`, as a session key.
 * Extractable only for the moment a rewrap needs; never kept that way. */
static cv_result unwrap(struct cv_hsm *hsm, struct cv_hsm_lease *lease, CK_SESSION_HANDLE session,
                        const struct cv_key_ref *ref, int extractable, CK_OBJECT_HANDLE *out)
{
    CK_OBJECT_HANDLE master;
    CV_GUARD(cv_hsm_master_handle(hsm, lease, ref->master_version, &master));
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_KEY_TYPE type = CKK_AES;
    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    CK_BBOOL use = extractable ? CK_FALSE : CK_TRUE;
    CK_BBOOL ext = extractable ? CK_TRUE : CK_FALSE;
    /* No CKA_VALUE_LEN: SoftHSM refuses it in an unwrap template (it comes
     * from the unwrapped bytes, which the binding already vouches for). */
    CK_ATTRIBUTE t[] = {
        {CKA_CLASS, &cls, sizeof(cls)},
        {CKA_KEY_TYPE, &type, sizeof(type)},
        {CKA_TOKEN, &no, sizeof(no)},
        {CKA_PRIVATE, &yes, sizeof(yes)},
        {CKA_SENSITIVE, &yes, sizeof(yes)},
        {CKA_EXTRACTABLE, &ext, sizeof(ext)},
        {CKA_ENCRYPT, &use, sizeof(use)},
        {CKA_DECRYPT, &use, sizeof(use)},
        {CKA_WRAP, &no, sizeof(no)},
        {CKA_UNWRAP, &no, sizeof(no)},
        {CKA_SIGN, &no, sizeof(no)},
        {CKA_VERIFY, &no, sizeof(no)},
        {CKA_DERIVE, &no, sizeof(no)},
    };
    CK_MECHANISM mech = {hsm->profile.wrap_mechanism, NULL, 0};
    CK_RV rv = hsm->f->C_UnwrapKey(session, &mech, master, (CK_BYTE_PTR)ref->wrapped, (CK_ULONG)ref->wrapped_len, t,
                                   sizeof(t) / sizeof(t[0]), out);
    if (rv != CKR_OK) {
        *out = CK_INVALID_HANDLE;
        /* A probe for "is the device fine" must use the session that failed. */
        CK_SESSION_HANDLE leased = lease->session;
        lease->session = session;
        cv_result r = cv_hsm_data_fail(hsm, lease, rv, "C_UnwrapKey");
        lease->session = leased;
        return r;
    }
    return CV_OK;
}

static cv_result wrap(struct cv_hsm *hsm, struct cv_hsm_lease *lease, uint32_t master_version, CK_OBJECT_HANDLE key,
                      struct cv_key_ref *ref)
{
    CK_OBJECT_HANDLE master;
    CV_GUARD(cv_hsm_master_handle(hsm, lease, master_version, &master));
    CK_MECHANISM mech = {hsm->profile.wrap_mechanism, NULL, 0};
    CK_ULONG len = sizeof(ref->wrapped);
    CV_CK_GUARD(lease, "C_WrapKey", hsm->f->C_WrapKey(lease->session, &mech, master, key, ref->wrapped, &len),
                CV_ERR_INTERNAL);
    ref->wrapped_len = len;
    ref->master_version = master_version;
    return cv_hsm_ref_check(ref);
}

cv_result cv_hsm_key_pin(struct cv_hsm *hsm, struct cv_hsm_lease *lease, const struct cv_key_ref *ref,
                         struct cv_hsm_cache_entry **out)
{
    *out = cv_hsm_cache_get(hsm->cache, ref);
    if (*out) return CV_OK;

    /* Miss: the cache lock is not held while the token works. */
    CV_GUARD(cv_hsm_binding_check(hsm, lease, ref));
    CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;
    pthread_mutex_lock(&hsm->owner_mu);
    cv_result r = unwrap(hsm, lease, hsm->owner, ref, 0, &h);
    pthread_mutex_unlock(&hsm->owner_mu);
    CV_GUARD(r);

    struct cv_hsm_cache_doomed doomed;
    r = cv_hsm_cache_put(hsm->cache, ref, h, out, &doomed);
    if (cv_failed(r)) {
        cv_hsm_destroy_quietly(hsm, lease->session, h);
        return r;
    }
    /* Session objects of the owner are visible to, and destroyable from,
     * every session of the application: no need to take the owner lock. */
    for (size_t i = 0; i < sizeof(doomed.handle) / sizeof(doomed.handle[0]); i++)
        cv_hsm_destroy_quietly(hsm, lease->session, doomed.handle[i]);
    return CV_OK;
}

void cv_hsm_key_unpin(struct cv_hsm *hsm, struct cv_hsm_lease *lease, struct cv_hsm_cache_entry *e)
{
    if (!e) return;
    cv_hsm_destroy_quietly(hsm, lease->session, cv_hsm_cache_unpin(hsm->cache, e));
}

/* ---- generate ---- */

static cv_result generate_op(struct cv_hsm *hsm, struct cv_hsm_lease *lease, void *arg)
{
    struct cv_key_ref *ref = arg;
    cv_result res = CV_OK;
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_KEY_TYPE type = CKK_AES;
    CK_ULONG len = CV_AES256_KEY_BYTES;
    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    /* A session key that exists only to be wrapped: extractable (wrapping
     * needs it), sensitive (its value is never readable), usable for nothing. */
    CK_ATTRIBUTE t[] = {
        {CKA_CLASS, &cls, sizeof(cls)},
        {CKA_KEY_TYPE, &type, sizeof(type)},
        {CKA_VALUE_LEN, &len, sizeof(len)},
        {CKA_TOKEN, &no, sizeof(no)},
        {CKA_PRIVATE, &yes, sizeof(yes)},
        {CKA_SENSITIVE, &yes, sizeof(yes)},
        {CKA_EXTRACTABLE, &yes, sizeof(yes)},
        {CKA_ENCRYPT, &no, sizeof(no)},
        {CKA_DECRYPT, &no, sizeof(no)},
        {CKA_WRAP, &no, sizeof(no)},
        {CKA_UNWRAP, &no, sizeof(no)},
        {CKA_SIGN, &no, sizeof(no)},
        {CKA_VERIFY, &no, sizeof(no)},
        {CKA_DERIVE, &no, sizeof(no)},
    };
    CK_MECHANISM mech = {CKM_AES_KEY_GEN, NULL, 0};
    CK_OBJECT_HANDLE key = CK_INVALID_HANDLE;
    CV_CK_GUARD(lease, "C_GenerateKey",
                hsm->f->C_GenerateKey(lease->session, &mech, t, sizeof(t) / sizeof(t[0]), &key), CV_ERR_INTERNAL);
    struct cv_key_ref made = *ref;
    CV_GUARD_OUT(res, wrap(hsm, lease, ref->master_version, key, &made));
    CV_GUARD_OUT(res, cv_hsm_binding_compute(hsm, lease, &made, made.binding));
    *ref = made;
out:
    cv_hsm_destroy_quietly(hsm, lease->session, key);
    cv_wipe(&made, sizeof(made));
    return res;
}

cv_result cv_hsm_tenant_key_generate(struct cv_hsm *hsm, struct cv_key_ref *ref)
{
    CV_ENSURE_REF(hsm);
    CV_ENSURE_REF(ref);
    CV_ENSURE(owner_ok(ref), CV_ERR_INPUT, "key reference has no valid tenant id");
    return cv_hsm_run(hsm, generate_op, ref);
}

/* ---- rewrap ---- */

struct rewrap_arg {
    const struct cv_key_ref *in;
    uint32_t new_master;
    struct cv_key_ref out;
};

static cv_result rewrap_op(struct cv_hsm *hsm, struct cv_hsm_lease *lease, void *arg)
{
    struct rewrap_arg *a = arg;
    cv_result res = CV_OK;
    CK_OBJECT_HANDLE temp = CK_INVALID_HANDLE;
    CV_GUARD(cv_hsm_binding_check(hsm, lease, a->in));
    /* In the leased session: if the attempt dies, the temporary dies with
     * the session at recovery at the latest. */
    CV_GUARD(unwrap(hsm, lease, lease->session, a->in, 1, &temp));
    a->out = *a->in;
    CV_GUARD_OUT(res, wrap(hsm, lease, a->new_master, temp, &a->out));
    CV_GUARD_OUT(res, cv_hsm_binding_compute(hsm, lease, &a->out, a->out.binding));
out:
    cv_hsm_destroy_quietly(hsm, lease->session, temp);
    return res;
}

cv_result cv_hsm_tenant_key_rewrap(struct cv_hsm *hsm, const struct cv_key_ref *in, uint32_t new_master_version,
                                   struct cv_key_ref *out)
{
    CV_ENSURE_REF(hsm);
    CV_ENSURE_REF(out);
    CV_GUARD(cv_hsm_ref_check(in));
    struct rewrap_arg a = {in, new_master_version, {{0}, 0, 0, {0}, 0, {0}}};
    cv_result r = cv_hsm_run(hsm, rewrap_op, &a);
    if (cv_ok(r)) *out = a.out; /* out may be in */
    cv_wipe(&a.out, sizeof(a.out));
    return r;
}

/* ---- verify ---- */

static cv_result verify_op(struct cv_hsm *hsm, struct cv_hsm_lease *lease, void *arg)
{
    const struct cv_key_ref *ref = arg;
    CV_GUARD(cv_hsm_binding_check(hsm, lease, ref));
    CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;
    CV_GUARD(unwrap(hsm, lease, lease->session, ref, 0, &h));
    cv_hsm_destroy_quietly(hsm, lease->session, h);
    return CV_OK;
}

cv_result cv_hsm_tenant_key_verify(struct cv_hsm *hsm, const struct cv_key_ref *ref)
{
    CV_ENSURE_REF(hsm);
    CV_GUARD(cv_hsm_ref_check(ref));
    return cv_hsm_run(hsm, verify_op, (void *)ref);
}

/* ---- cache drops ---- */

static void drop(struct cv_hsm *hsm, const char *tenant_id)
{
    cv_hsm_memkeys_drop(hsm->memkeys, tenant_id);
    pthread_rwlock_rdlock(&hsm->state);
    unsigned long h;
    pthread_mutex_lock(&hsm->owner_mu);
    while (cv_hsm_cache_detach_next(hsm->cache, tenant_id, &h))
        if (atomic_load(&hsm->healthy)) cv_hsm_destroy_quietly(hsm, hsm->owner, h);
    pthread_mutex_unlock(&hsm->owner_mu);
    pthread_rwlock_unlock(&hsm->state);
}

void cv_hsm_cache_drop_tenant(struct cv_hsm *hsm, const char *tenant_id)
{
    if (!hsm || !tenant_id) return;
    drop(hsm, tenant_id);
}

void cv_hsm_cache_drop_all(struct cv_hsm *hsm)
{
    if (!hsm) return;
    drop(hsm, NULL);
}
