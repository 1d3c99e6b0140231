/* The installation id kept in the token (hsm_installation.h): one private
 * data object, not modifiable, found by label. Holds no secret; it only
 * says which database the token belongs to. */
#include <string.h>

#include "credvault/hsm_installation.h"
#include "internal.h"

struct get_arg {
    char *id;
    int found;
};

static cv_result get_op(struct cv_hsm *hsm, struct cv_hsm_lease *lease, void *arg)
{
    struct get_arg *a = arg;
    CK_OBJECT_CLASS cls = CKO_DATA;
    CK_BBOOL yes = CK_TRUE;
    const char *label = CV_HSM_INSTALLATION_LABEL;
    CK_ATTRIBUTE t[] = {
        {CKA_CLASS, &cls, sizeof(cls)},
        {CKA_TOKEN, &yes, sizeof(yes)},
        {CKA_LABEL, (void *)label, strlen(label)},
    };
    CK_OBJECT_HANDLE h[4];
    CK_ULONG n = 0;
    CK_RV rv = CKR_OK;
    cv_result r = cv_hsm_find(hsm, lease->session, t, 3, h, 4, &n, &rv);
    if (cv_failed(r)) return cv_hsm_ck_fail(lease, rv, "C_FindObjects", CV_ERR_UNAVAILABLE);
    a->found = 0;
    for (CK_ULONG i = 0; i < n; i++) {
        char v[CV_INSTALLATION_ID_BYTES + 1];
        CK_ATTRIBUTE va = {CKA_VALUE, v, CV_INSTALLATION_ID_BYTES};
        CV_CK_GUARD(lease, "C_GetAttributeValue", hsm->f->C_GetAttributeValue(lease->session, h[i], &va, 1),
                    CV_ERR_INTERNAL);
        CV_ENSURE(va.ulValueLen == CV_INSTALLATION_ID_BYTES, CV_ERR_INTERNAL,
                  "the token's %s object does not hold an installation id", label);
        v[CV_INSTALLATION_ID_BYTES] = '\0';
        /* two processes may have written the same id at once: harmless */
        CV_ENSURE(!a->found || strcmp(a->id, v) == 0, CV_ERR_CONFLICT,
                  "the token holds two installation ids (%s and %s)", a->id, v);
        memcpy(a->id, v, sizeof(v));
        a->found = 1;
    }
    return CV_OK;
}

cv_result cv_hsm_installation_get(struct cv_hsm *hsm, char id[CV_INSTALLATION_ID_BYTES + 1], int *found)
{
    CV_ENSURE_REF(hsm);
    struct get_arg a = {.id = id, .found = 0};
    id[0] = '\0';
    CV_GUARD(cv_hsm_run(hsm, get_op, &a));
    *found = a.found;
    return CV_OK;
}

static cv_result set_op(struct cv_hsm *hsm, struct cv_hsm_lease *lease, void *arg)
{
    const char *id = arg;
    CK_OBJECT_CLASS cls = CKO_DATA;
    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    const char *label = CV_HSM_INSTALLATION_LABEL, *app = "credvault";
    CK_ATTRIBUTE t[] = {
        {CKA_CLASS, &cls, sizeof(cls)},
        {CKA_TOKEN, &yes, sizeof(yes)},
        {CKA_PRIVATE, &yes, sizeof(yes)},
        {CKA_MODIFIABLE, &no, sizeof(no)},
        {CKA_LABEL, (void *)label, strlen(label)},
        {CKA_APPLICATION, (void *)app, strlen(app)},
        {CKA_VALUE, (void *)id, CV_INSTALLATION_ID_BYTES},
    };
    CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;
    CV_CK_GUARD(lease, "C_CreateObject",
                hsm->f->C_CreateObject(lease->session, t, sizeof(t) / sizeof(t[0]), &h), CV_ERR_INTERNAL);
    return CV_OK;
}

cv_result cv_hsm_installation_set(struct cv_hsm *hsm, const char *id)
{
    CV_ENSURE_REF(hsm);
    CV_ENSURE(id && strlen(id) == CV_INSTALLATION_ID_BYTES, CV_ERR_INTERNAL, "an installation id is a UUID");
    return cv_hsm_run(hsm, set_op, (void *)id);
}
