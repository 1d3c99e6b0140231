/* The hsm-only mark: a master key whose CKA_UNWRAP_TEMPLATE demands
 * CKA_SENSITIVE true, so the token itself refuses to unwrap a readable copy
 * of any tenant key it wraps (memory residency). Read here; set only when a
 * master key is made (admin.c), since master keys are not modifiable. */
#include <string.h>

#include "internal.h"

cv_result cv_hsm_master_marked(struct cv_hsm *hsm, struct cv_hsm_lease *lease, CK_OBJECT_HANDLE master, int *marked)
{
    *marked = 0;
    CK_ATTRIBUTE a = {CKA_UNWRAP_TEMPLATE, NULL, 0};
    CV_CK_GUARD(lease, "C_GetAttributeValue", hsm->f->C_GetAttributeValue(lease->session, master, &a, 1),
                CV_ERR_INTERNAL);
    if (a.ulValueLen == CK_UNAVAILABLE_INFORMATION || a.ulValueLen == 0) return CV_OK;
    CK_ULONG n = a.ulValueLen / sizeof(CK_ATTRIBUTE);
    CK_ATTRIBUTE t[16];
    CV_ENSURE(n <= sizeof(t) / sizeof(t[0]), CV_ERR_INTERNAL, "master key unwrap template has %lu attributes",
              (unsigned long)n);
    memset(t, 0, sizeof(t));
    a.pValue = t;
    CV_CK_GUARD(lease, "C_GetAttributeValue", hsm->f->C_GetAttributeValue(lease->session, master, &a, 1),
                CV_ERR_INTERNAL);
    /* the token fills every entry in one go, so each gets room */
    uint8_t vals[16][64];
    for (CK_ULONG i = 0; i < n; i++) {
        CV_ENSURE(t[i].ulValueLen <= sizeof(vals[i]), CV_ERR_INTERNAL, "master key unwrap template value too long");
        t[i].pValue = vals[i];
    }
    CV_CK_GUARD(lease, "C_GetAttributeValue", hsm->f->C_GetAttributeValue(lease->session, master, &a, 1),
                CV_ERR_INTERNAL);
    for (CK_ULONG i = 0; i < n; i++) {
        if (t[i].ulValueLen != sizeof(CK_BBOOL)) continue;
        CK_BBOOL v = *(CK_BBOOL *)t[i].pValue;
        if ((t[i].type == CKA_SENSITIVE && v) || (t[i].type == CKA_EXTRACTABLE && !v)) *marked = 1;
    }
    return CV_OK;
}

/* The newest master below `below` (0: any), or CK_INVALID_HANDLE. */
static CK_OBJECT_HANDLE newest_master(struct cv_hsm *hsm, uint32_t below, uint32_t *version)
{
    CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;
    pthread_mutex_lock(&hsm->keys_mu);
    for (size_t i = 0; i < hsm->master_count; i++) {
        if (below && hsm->masters[i].version >= below) continue;
        if (hsm->masters[i].duplicate) continue;
        h = hsm->masters[i].handle; /* sorted by version */
        *version = hsm->masters[i].version;
    }
    pthread_mutex_unlock(&hsm->keys_mu);
    return h;
}

cv_result cv_hsm_master_marked_before(struct cv_hsm *hsm, struct cv_hsm_lease *lease, uint32_t below, int *marked)
{
    *marked = 0;
    uint32_t v = 0;
    CK_OBJECT_HANDLE h = newest_master(hsm, below, &v);
    if (h == CK_INVALID_HANDLE) return CV_OK;
    return cv_hsm_master_marked(hsm, lease, h, marked);
}

struct mark_arg {
    int marked;
};

static cv_result mark_op(struct cv_hsm *hsm, struct cv_hsm_lease *lease, void *arg)
{
    struct mark_arg *a = arg;
    return cv_hsm_master_marked_before(hsm, lease, 0, &a->marked);
}

cv_result cv_hsm_residency_hsm_only(struct cv_hsm *hsm, int *marked)
{
    CV_ENSURE_REF(hsm);
    CV_ENSURE_REF(marked);
    struct mark_arg a = {0};
    CV_GUARD(cv_hsm_run(hsm, mark_op, &a));
    *marked = a.marked;
    return CV_OK;
}
