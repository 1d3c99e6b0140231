/* The test hooks declared in hsm_testing.h. They run through the same
 * leases and recovery as the public calls; none of them is reachable from
 * include/credvault/hsm.h. */
#include <string.h>

#include "hsm_testing.h"
#include "internal.h"

CK_FUNCTION_LIST_PTR cv_hsm_testing_functions(struct cv_hsm *hsm) { return hsm->f; }
CK_SLOT_ID cv_hsm_testing_slot(struct cv_hsm *hsm) { return hsm->slot; }

uint64_t cv_hsm_testing_generation(struct cv_hsm *hsm)
{
    pthread_rwlock_rdlock(&hsm->state);
    uint64_t g = hsm->generation;
    pthread_rwlock_unlock(&hsm->state);
    return g;
}

struct import_arg {
    const uint8_t *key;
    size_t len;
    CK_OBJECT_HANDLE out;
};

static cv_result import_op(struct cv_hsm *hsm, struct cv_hsm_lease *lease, void *arg)
{
    struct import_arg *a = arg;
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_KEY_TYPE type = CKK_AES;
    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    CK_ATTRIBUTE t[] = {
        {CKA_CLASS, &cls, sizeof(cls)},         {CKA_KEY_TYPE, &type, sizeof(type)},
        {CKA_TOKEN, &no, sizeof(no)},           {CKA_SENSITIVE, &yes, sizeof(yes)},
        {CKA_EXTRACTABLE, &no, sizeof(no)},     {CKA_ENCRYPT, &yes, sizeof(yes)},
        {CKA_DECRYPT, &yes, sizeof(yes)},       {CKA_VALUE, (void *)a->key, (CK_ULONG)a->len},
    };
    pthread_mutex_lock(&hsm->owner_mu);
    CK_RV rv = hsm->f->C_CreateObject(hsm->owner, t, sizeof(t) / sizeof(t[0]), &a->out);
    pthread_mutex_unlock(&hsm->owner_mu);
    if (rv != CKR_OK) return cv_hsm_ck_fail(lease, rv, "C_CreateObject", CV_ERR_INTERNAL);
    return CV_OK;
}

cv_result cv_hsm_testing_import_aes(struct cv_hsm *hsm, const uint8_t *key, size_t len, CK_OBJECT_HANDLE *out)
{
    struct import_arg a = {key, len, CK_INVALID_HANDLE};
    CV_GUARD(cv_hsm_run(hsm, import_op, &a));
    *out = a.out;
    return CV_OK;
}

static cv_result destroy_op(struct cv_hsm *hsm, struct cv_hsm_lease *lease, void *arg)
{
    CK_OBJECT_HANDLE h = *(CK_OBJECT_HANDLE *)arg;
    CV_CK_GUARD(lease, "C_DestroyObject", hsm->f->C_DestroyObject(lease->session, h), CV_ERR_INTERNAL);
    return CV_OK;
}

cv_result cv_hsm_testing_destroy(struct cv_hsm *hsm, CK_OBJECT_HANDLE object)
{
    return cv_hsm_run(hsm, destroy_op, &object);
}

struct raw_gcm_arg {
    CK_OBJECT_HANDLE key;
    const uint8_t *iv, *aad, *in, *tag_in;
    size_t aad_len, len;
    uint8_t *out, *tag_out;
};

static cv_result raw_seal_op(struct cv_hsm *hsm, struct cv_hsm_lease *lease, void *arg)
{
    struct raw_gcm_arg *a = arg;
    uint8_t iv[CV_GCM_IV_BYTES];
    memcpy(iv, a->iv, sizeof(iv));
    return cv_hsm_gcm_seal(hsm, lease, a->key, a->aad, a->aad_len, a->in, a->len, 1, iv, a->out, a->tag_out);
}

cv_result cv_hsm_testing_gcm_encrypt(struct cv_hsm *hsm, CK_OBJECT_HANDLE key, const uint8_t iv[CV_GCM_IV_BYTES],
                                     const uint8_t *aad, size_t aad_len, const uint8_t *pt, size_t pt_len,
                                     uint8_t *ct, uint8_t tag[CV_GCM_TAG_BYTES])
{
    struct raw_gcm_arg a = {key, iv, aad, pt, NULL, aad_len, pt_len, ct, tag};
    return cv_hsm_run(hsm, raw_seal_op, &a);
}

static cv_result raw_open_op(struct cv_hsm *hsm, struct cv_hsm_lease *lease, void *arg)
{
    struct raw_gcm_arg *a = arg;
    return cv_hsm_gcm_open(hsm, lease, a->key, a->aad, a->aad_len, a->iv, a->in, a->len, a->tag_in, a->out);
}

cv_result cv_hsm_testing_gcm_decrypt(struct cv_hsm *hsm, CK_OBJECT_HANDLE key, const uint8_t iv[CV_GCM_IV_BYTES],
                                     const uint8_t *aad, size_t aad_len, const uint8_t *ct, size_t ct_len,
                                     const uint8_t tag[CV_GCM_TAG_BYTES], uint8_t *pt)
{
    struct raw_gcm_arg a = {key, iv, aad, ct, tag, aad_len, ct_len, pt, NULL};
    return cv_hsm_run(hsm, raw_open_op, &a);
}

static cv_result count_op(struct cv_hsm *hsm, struct cv_hsm_lease *lease, void *arg)
{
    unsigned long *count = arg;
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_BBOOL no = CK_FALSE;
    CK_ATTRIBUTE t[] = {{CKA_CLASS, &cls, sizeof(cls)}, {CKA_TOKEN, &no, sizeof(no)}};
    *count = 0;
    CV_CK_GUARD(lease, "C_FindObjectsInit", hsm->f->C_FindObjectsInit(lease->session, t, 2), CV_ERR_INTERNAL);
    CK_RV rv;
    for (;;) {
        CK_OBJECT_HANDLE batch[64];
        CK_ULONG got = 0;
        rv = hsm->f->C_FindObjects(lease->session, batch, 64, &got);
        if (rv != CKR_OK || got == 0) break;
        *count += got;
    }
    (void)hsm->f->C_FindObjectsFinal(lease->session);
    if (rv != CKR_OK) return cv_hsm_ck_fail(lease, rv, "C_FindObjects", CV_ERR_INTERNAL);
    return CV_OK;
}

cv_result cv_hsm_testing_count_session_keys(struct cv_hsm *hsm, unsigned long *count)
{
    return cv_hsm_run(hsm, count_op, count);
}

struct key_handle_arg {
    uint32_t version;
    CK_OBJECT_HANDLE out;
};

static cv_result key_handle_op(struct cv_hsm *hsm, struct cv_hsm_lease *lease, void *arg)
{
    struct key_handle_arg *a = arg;
    if (a->version == 0) return cv_hsm_binding_handle(hsm, &a->out);
    return cv_hsm_master_handle(hsm, lease, a->version, &a->out);
}

cv_result cv_hsm_testing_key_handle(struct cv_hsm *hsm, uint32_t version, CK_OBJECT_HANDLE *out)
{
    struct key_handle_arg a = {version, CK_INVALID_HANDLE};
    CV_GUARD(cv_hsm_run(hsm, key_handle_op, &a));
    *out = a.out;
    return CV_OK;
}

static cv_result bind_op(struct cv_hsm *hsm, struct cv_hsm_lease *lease, void *arg)
{
    struct cv_key_ref *ref = arg;
    return cv_hsm_binding_compute(hsm, lease, ref, ref->binding);
}

cv_result cv_hsm_testing_bind(struct cv_hsm *hsm, struct cv_key_ref *ref)
{
    return cv_hsm_run(hsm, bind_op, ref);
}
