/* Creating and destroying the token keys credvault owns: the master keys
 * and the binding key. The only place that makes token objects, and only on
 * an operator's command, never on a request path. Every key it makes is
 * sensitive, never extractable and not modifiable. */
#include <string.h>

#include "internal.h"

struct master_create_arg {
    uint32_t version;
    int hsm_only; /* 1: mark; 0: carry the mark of the newest older master */
};

static cv_result master_create_op(struct cv_hsm *hsm, struct cv_hsm_lease *lease, void *arg)
{
    const struct master_create_arg *a = arg;
    uint32_t version = a->version;
    char label[CV_HSM_LABEL_MAX_BYTES];
    cv_hsm_master_label(version, label);
    CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;
    int found = 0;
    CV_GUARD(cv_hsm_master_lookup(hsm, lease, version, &h, &found));
    CV_ENSURE(!found, CV_ERR_CONFLICT, "HSM master key %s exists already", label);

    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    CK_ULONG len = CV_AES256_KEY_BYTES;
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_KEY_TYPE type = CKK_AES;
    /* A rotation keeps the hsm-only mark: the new master unwraps every tenant key. */
    int mark = a->hsm_only;
    if (!mark) CV_GUARD(cv_hsm_master_marked_before(hsm, lease, version, &mark));
    /* Every unwrap under a marked master must ask for a sensitive key, so the
     * token never makes a readable copy (memory residency). Not
     * CKA_EXTRACTABLE false: a master rotation's rewrap needs an extractable,
     * sensitive temporary under the old master. */
    CK_ATTRIBUTE unwrap_template[] = {{CKA_SENSITIVE, &yes, sizeof(yes)}};
    /* Wrap and unwrap only: with encrypt/decrypt it could open a wrapped key
     * block by block; not modifiable, so no one can grant that later. */
    CK_ATTRIBUTE t[] = {
        {CKA_CLASS, &cls, sizeof(cls)},
        {CKA_KEY_TYPE, &type, sizeof(type)},
        {CKA_VALUE_LEN, &len, sizeof(len)},
        {CKA_TOKEN, &yes, sizeof(yes)},
        {CKA_PRIVATE, &yes, sizeof(yes)},
        {CKA_SENSITIVE, &yes, sizeof(yes)},
        {CKA_EXTRACTABLE, &no, sizeof(no)},
        {CKA_MODIFIABLE, &no, sizeof(no)},
        {CKA_WRAP, &yes, sizeof(yes)},
        {CKA_UNWRAP, &yes, sizeof(yes)},
        {CKA_ENCRYPT, &no, sizeof(no)},
        {CKA_DECRYPT, &no, sizeof(no)},
        {CKA_SIGN, &no, sizeof(no)},
        {CKA_VERIFY, &no, sizeof(no)},
        {CKA_DERIVE, &no, sizeof(no)},
        {CKA_LABEL, label, strlen(label)},
        {CKA_ID, label, strlen(label)},
        {CKA_UNWRAP_TEMPLATE, unwrap_template, sizeof(unwrap_template)},
    };
    CK_ULONG count = sizeof(t) / sizeof(t[0]) - (mark ? 0 : 1);
    CK_MECHANISM mech = {CKM_AES_KEY_GEN, NULL, 0};
    CV_CK_GUARD(lease, "C_GenerateKey", hsm->f->C_GenerateKey(lease->session, &mech, t, count, &h), CV_ERR_INTERNAL);
    cv_hsm_master_remember(hsm, version, h);
    return CV_OK;
}

cv_result cv_hsm_master_create(struct cv_hsm *hsm, uint32_t version)
{
    CV_ENSURE_REF(hsm);
    CV_ENSURE(version >= 1, CV_ERR_INPUT, "master key versions start at 1");
    struct master_create_arg a = {version, 0};
    return cv_hsm_run(hsm, master_create_op, &a);
}

cv_result cv_hsm_master_create_hsm_only(struct cv_hsm *hsm, uint32_t version)
{
    CV_ENSURE_REF(hsm);
    CV_ENSURE(version >= 1, CV_ERR_INPUT, "master key versions start at 1");
    struct master_create_arg a = {version, 1};
    return cv_hsm_run(hsm, master_create_op, &a);
}

struct master_exists_arg {
    uint32_t version;
    int exists;
};

static cv_result master_exists_op(struct cv_hsm *hsm, struct cv_hsm_lease *lease, void *arg)
{
    struct master_exists_arg *a = arg;
    CK_OBJECT_HANDLE h;
    /* Asks the token, not the table: another instance may have made or
     * destroyed it. */
    return cv_hsm_master_lookup(hsm, lease, a->version, &h, &a->exists);
}

cv_result cv_hsm_master_exists(struct cv_hsm *hsm, uint32_t version, int *exists)
{
    CV_ENSURE_REF(hsm);
    CV_ENSURE_REF(exists);
    struct master_exists_arg a = {version, 0};
    CV_GUARD(cv_hsm_run(hsm, master_exists_op, &a));
    if (!a.exists) cv_hsm_master_forget(hsm, version);
    *exists = a.exists;
    return CV_OK;
}

static cv_result master_destroy_op(struct cv_hsm *hsm, struct cv_hsm_lease *lease, void *arg)
{
    uint32_t version = *(const uint32_t *)arg;
    CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;
    int found = 0;
    CV_GUARD(cv_hsm_master_lookup(hsm, lease, version, &h, &found));
    CV_ENSURE(found, CV_ERR_NOT_FOUND, "HSM master key %s%u not found", CV_HSM_MASTER_LABEL_PREFIX, (unsigned)version);
    CV_CK_GUARD(lease, "C_DestroyObject", hsm->f->C_DestroyObject(lease->session, h), CV_ERR_INTERNAL);
    cv_hsm_master_forget(hsm, version);
    return CV_OK;
}

cv_result cv_hsm_master_destroy(struct cv_hsm *hsm, uint32_t version)
{
    CV_ENSURE_REF(hsm);
    return cv_hsm_run(hsm, master_destroy_op, &version);
}

/* ---- the binding key ---- */

static cv_result binding_create_op(struct cv_hsm *hsm, struct cv_hsm_lease *lease, void *arg)
{
    (void)arg;
    CK_OBJECT_HANDLE found[2];
    CK_ULONG n = 0;
    CK_RV rv = CKR_OK;
    if (cv_failed(cv_hsm_find_label(hsm, lease->session, CV_HSM_BINDING_LABEL, CKK_GENERIC_SECRET, found, &n, &rv)))
        return cv_hsm_ck_fail(lease, rv, "C_FindObjects", CV_ERR_UNAVAILABLE);
    CV_ENSURE(n == 0, CV_ERR_CONFLICT, "HSM binding key %s exists already", CV_HSM_BINDING_LABEL);

    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    CK_ULONG len = CV_AES256_KEY_BYTES;
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_KEY_TYPE type = CKK_GENERIC_SECRET;
    const char *label = CV_HSM_BINDING_LABEL;
    CK_ATTRIBUTE t[] = {
        {CKA_CLASS, &cls, sizeof(cls)},
        {CKA_KEY_TYPE, &type, sizeof(type)},
        {CKA_VALUE_LEN, &len, sizeof(len)},
        {CKA_TOKEN, &yes, sizeof(yes)},
        {CKA_PRIVATE, &yes, sizeof(yes)},
        {CKA_SENSITIVE, &yes, sizeof(yes)},
        {CKA_EXTRACTABLE, &no, sizeof(no)},
        {CKA_MODIFIABLE, &no, sizeof(no)},
        {CKA_SIGN, &yes, sizeof(yes)},
        {CKA_VERIFY, &yes, sizeof(yes)},
        {CKA_ENCRYPT, &no, sizeof(no)},
        {CKA_DECRYPT, &no, sizeof(no)},
        {CKA_WRAP, &no, sizeof(no)},
        {CKA_UNWRAP, &no, sizeof(no)},
        {CKA_DERIVE, &no, sizeof(no)},
        {CKA_LABEL, (void *)label, strlen(label)},
        {CKA_ID, (void *)label, strlen(label)},
    };
    CK_MECHANISM mech = {CKM_GENERIC_SECRET_KEY_GEN, NULL, 0};
    CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;
    CV_CK_GUARD(lease, "C_GenerateKey", hsm->f->C_GenerateKey(lease->session, &mech, t, sizeof(t) / sizeof(t[0]), &h),
                CV_ERR_INTERNAL);
    pthread_mutex_lock(&hsm->keys_mu);
    hsm->binding = h;
    hsm->binding_duplicate = 0;
    pthread_mutex_unlock(&hsm->keys_mu);
    return CV_OK;
}

cv_result cv_hsm_binding_key_create(struct cv_hsm *hsm)
{
    CV_ENSURE_REF(hsm);
    return cv_hsm_run(hsm, binding_create_op, NULL);
}
