/* Finding credvault's token keys (credvault-master-<version> and the binding
 * key) by label, once, and keeping their handles. Creates nothing, and
 * refuses a key found under one of our labels that could leave the token
 * (extractable or not sensitive). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define FIND_BATCH 64

cv_result cv_hsm_find(struct cv_hsm *hsm, CK_SESSION_HANDLE session, CK_ATTRIBUTE *tmpl, CK_ULONG n,
                      CK_OBJECT_HANDLE *found, CK_ULONG max, CK_ULONG *count, CK_RV *rv)
{
    *count = 0;
    *rv = hsm->f->C_FindObjectsInit(session, tmpl, n);
    if (*rv != CKR_OK) return cv_fail(CV_ERR_UNAVAILABLE, "HSM C_FindObjectsInit failed (%s)", cv_hsm_rv_text(*rv).s);
    CK_ULONG got = 0;
    *rv = hsm->f->C_FindObjects(session, found, max, &got);
    /* Always end the search: a session left searching refuses the next one. */
    CK_RV fin = hsm->f->C_FindObjectsFinal(session);
    if (*rv == CKR_OK) *rv = fin;
    if (*rv != CKR_OK) return cv_fail(CV_ERR_UNAVAILABLE, "HSM C_FindObjects failed (%s)", cv_hsm_rv_text(*rv).s);
    *count = got;
    return CV_OK;
}

void cv_hsm_master_label(uint32_t version, char out[CV_HSM_LABEL_MAX_BYTES])
{
    snprintf(out, CV_HSM_LABEL_MAX_BYTES, "%s%u", CV_HSM_MASTER_LABEL_PREFIX, (unsigned)version);
}

/* "credvault-master-<decimal>" with no sign, no leading zero, >= 1. */
static int parse_master_label(const char *label, size_t len, uint32_t *version)
{
    size_t plen = strlen(CV_HSM_MASTER_LABEL_PREFIX);
    if (len <= plen || len > plen + 10 || memcmp(label, CV_HSM_MASTER_LABEL_PREFIX, plen) != 0) return 0;
    uint64_t v = 0;
    for (size_t i = plen; i < len; i++) {
        if (label[i] < '0' || label[i] > '9') return 0;
        if (i == plen && label[i] == '0') return 0;
        v = v * 10 + (uint64_t)(label[i] - '0');
    }
    if (v == 0 || v > UINT32_MAX) return 0;
    *version = (uint32_t)v;
    return 1;
}

/* A key found under one of our labels must be one we would have made. */
static cv_result check_kept_in_token(struct cv_hsm *hsm, CK_SESSION_HANDLE session, CK_OBJECT_HANDLE h,
                                     const char *label, CK_RV *rv)
{
    CK_BBOOL sensitive = CK_FALSE, extractable = CK_TRUE;
    CK_ATTRIBUTE a[] = {
        {CKA_SENSITIVE, &sensitive, sizeof(sensitive)},
        {CKA_EXTRACTABLE, &extractable, sizeof(extractable)},
    };
    *rv = hsm->f->C_GetAttributeValue(session, h, a, 2);
    if (*rv != CKR_OK)
        return cv_fail(CV_ERR_UNAVAILABLE, "HSM C_GetAttributeValue(%s) failed (%s)", label, cv_hsm_rv_text(*rv).s);
    CV_ENSURE(sensitive == CK_TRUE && extractable == CK_FALSE, CV_ERR_INTERNAL,
              "HSM key %s can leave the token (sensitive=%d, extractable=%d); refusing to use it", label,
              sensitive == CK_TRUE, extractable == CK_TRUE);
    return CV_OK;
}

cv_result cv_hsm_find_label(struct cv_hsm *hsm, CK_SESSION_HANDLE session, const char *label, CK_KEY_TYPE type,
                            CK_OBJECT_HANDLE found[2], CK_ULONG *count, CK_RV *rv)
{
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_BBOOL yes = CK_TRUE;
    CK_ATTRIBUTE t[] = {
        {CKA_CLASS, &cls, sizeof(cls)},
        {CKA_KEY_TYPE, &type, sizeof(type)},
        {CKA_TOKEN, &yes, sizeof(yes)},
        {CKA_LABEL, (void *)label, strlen(label)},
    };
    return cv_hsm_find(hsm, session, t, 4, found, 2, count, rv);
}

static int master_cmp(const void *a, const void *b)
{
    const struct cv_hsm_master *x = a, *y = b;
    return x->version < y->version ? -1 : x->version > y->version;
}

/* Reads every AES token key's label; keeps ours. At open and after recovery
 * only: the token holds a handful of keys, never tenant keys. */
static cv_result scan_masters(struct cv_hsm *hsm, CK_SESSION_HANDLE session, struct cv_hsm_master *out,
                              size_t *count, CK_RV *rv)
{
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_KEY_TYPE type = CKK_AES;
    CK_BBOOL yes = CK_TRUE;
    CK_ATTRIBUTE t[] = {
        {CKA_CLASS, &cls, sizeof(cls)},
        {CKA_KEY_TYPE, &type, sizeof(type)},
        {CKA_TOKEN, &yes, sizeof(yes)},
    };
    *count = 0;
    *rv = hsm->f->C_FindObjectsInit(session, t, 3);
    if (*rv != CKR_OK) return cv_fail(CV_ERR_UNAVAILABLE, "HSM C_FindObjectsInit failed (%s)", cv_hsm_rv_text(*rv).s);
    cv_result res = CV_OK;
    for (;;) {
        CK_OBJECT_HANDLE batch[FIND_BATCH];
        CK_ULONG got = 0;
        *rv = hsm->f->C_FindObjects(session, batch, FIND_BATCH, &got);
        if (*rv != CKR_OK) {
            res = cv_fail(CV_ERR_UNAVAILABLE, "HSM C_FindObjects failed (%s)", cv_hsm_rv_text(*rv).s);
            break;
        }
        if (got == 0) break;
        for (CK_ULONG i = 0; i < got; i++) {
            char label[CV_HSM_LABEL_MAX_BYTES + 1];
            CK_ATTRIBUTE a = {CKA_LABEL, label, CV_HSM_LABEL_MAX_BYTES};
            if (hsm->f->C_GetAttributeValue(session, batch[i], &a, 1) != CKR_OK) continue; /* not ours: too long */
            uint32_t version;
            if (!parse_master_label(label, a.ulValueLen, &version)) continue;
            size_t j = 0;
            while (j < *count && out[j].version != version) j++;
            if (j < *count) {
                out[j].duplicate = 1;
                continue;
            }
            if (*count == CV_HSM_MASTER_VERSIONS_MAX) continue; /* found later by label if used */
            out[*count].version = version;
            out[*count].handle = batch[i];
            out[*count].duplicate = 0;
            (*count)++;
        }
    }
    CK_RV fin = hsm->f->C_FindObjectsFinal(session);
    if (cv_failed(res)) return res;
    if (fin != CKR_OK) {
        *rv = fin;
        return cv_fail(CV_ERR_UNAVAILABLE, "HSM C_FindObjectsFinal failed (%s)", cv_hsm_rv_text(fin).s);
    }
    for (size_t i = 0; i < *count; i++) {
        if (out[i].duplicate) continue;
        char name[CV_HSM_LABEL_MAX_BYTES];
        cv_hsm_master_label(out[i].version, name);
        CV_GUARD(check_kept_in_token(hsm, session, out[i].handle, name, rv));
    }
    qsort(out, *count, sizeof(*out), master_cmp);
    return CV_OK;
}

cv_result cv_hsm_keys_scan(struct cv_hsm *hsm, CK_SESSION_HANDLE session, CK_RV *rv)
{
    struct cv_hsm_master masters[CV_HSM_MASTER_VERSIONS_MAX];
    size_t count = 0;
    CV_GUARD(scan_masters(hsm, session, masters, &count, rv));

    CK_OBJECT_HANDLE found[2];
    CK_ULONG n = 0;
    CV_GUARD(cv_hsm_find_label(hsm, session, CV_HSM_BINDING_LABEL, CKK_GENERIC_SECRET, found, &n, rv));
    if (n == 1) CV_GUARD(check_kept_in_token(hsm, session, found[0], CV_HSM_BINDING_LABEL, rv));

    pthread_mutex_lock(&hsm->keys_mu);
    memcpy(hsm->masters, masters, count * sizeof(masters[0]));
    hsm->master_count = count;
    hsm->binding = n == 1 ? found[0] : CK_INVALID_HANDLE;
    hsm->binding_duplicate = n > 1;
    pthread_mutex_unlock(&hsm->keys_mu);
    *rv = CKR_OK;
    return CV_OK;
}

cv_result cv_hsm_binding_handle(struct cv_hsm *hsm, CK_OBJECT_HANDLE *out)
{
    pthread_mutex_lock(&hsm->keys_mu);
    *out = hsm->binding;
    int dup = hsm->binding_duplicate;
    pthread_mutex_unlock(&hsm->keys_mu);
    CV_ENSURE(!dup, CV_ERR_INTERNAL, "two HSM keys are labelled %s; remove the one credvault did not make",
              CV_HSM_BINDING_LABEL);
    CV_ENSURE(*out != CK_INVALID_HANDLE, CV_ERR_UNAVAILABLE,
              "HSM binding key %s not found; run credvault hsm init", CV_HSM_BINDING_LABEL);
    return CV_OK;
}

void cv_hsm_master_remember(struct cv_hsm *hsm, uint32_t version, CK_OBJECT_HANDLE h)
{
    pthread_mutex_lock(&hsm->keys_mu);
    size_t i = 0;
    while (i < hsm->master_count && hsm->masters[i].version != version) i++;
    if (i < hsm->master_count) {
        hsm->masters[i].handle = h;
        hsm->masters[i].duplicate = 0;
    } else if (hsm->master_count < CV_HSM_MASTER_VERSIONS_MAX) {
        hsm->masters[hsm->master_count++] = (struct cv_hsm_master){version, h, 0};
        qsort(hsm->masters, hsm->master_count, sizeof(hsm->masters[0]), master_cmp);
    }
    pthread_mutex_unlock(&hsm->keys_mu);
}

void cv_hsm_master_forget(struct cv_hsm *hsm, uint32_t version)
{
    pthread_mutex_lock(&hsm->keys_mu);
    for (size_t i = 0; i < hsm->master_count; i++) {
        if (hsm->masters[i].version != version) continue;
        memmove(&hsm->masters[i], &hsm->masters[i + 1], (hsm->master_count - i - 1) * sizeof(hsm->masters[0]));
        hsm->master_count--;
        break;
    }
    pthread_mutex_unlock(&hsm->keys_mu);
}

/* Asks the token for the label (another process may have made it since we
 * scanned); found = 0 when absent. */
cv_result cv_hsm_master_lookup(struct cv_hsm *hsm, struct cv_hsm_lease *lease, uint32_t version,
                               CK_OBJECT_HANDLE *out, int *found)
{
    char label[CV_HSM_LABEL_MAX_BYTES];
    cv_hsm_master_label(version, label);
    CK_OBJECT_HANDLE h[2];
    CK_ULONG n = 0;
    CK_RV rv = CKR_OK;
    cv_result r = cv_hsm_find_label(hsm, lease->session, label, CKK_AES, h, &n, &rv);
    if (cv_failed(r)) return cv_hsm_ck_fail(lease, rv, "C_FindObjects", CV_ERR_UNAVAILABLE);
    *found = n > 0;
    CV_ENSURE(n <= 1, CV_ERR_INTERNAL, "two HSM keys are labelled %s; remove the one credvault did not make", label);
    if (n == 0) return CV_OK;
    r = check_kept_in_token(hsm, lease->session, h[0], label, &rv);
    if (cv_failed(r) && rv != CKR_OK) return cv_hsm_ck_fail(lease, rv, "C_GetAttributeValue", CV_ERR_UNAVAILABLE);
    CV_GUARD(r);
    *out = h[0];
    cv_hsm_master_remember(hsm, version, h[0]);
    return CV_OK;
}

cv_result cv_hsm_master_handle(struct cv_hsm *hsm, struct cv_hsm_lease *lease, uint32_t version,
                               CK_OBJECT_HANDLE *out)
{
    *out = CK_INVALID_HANDLE;
    int known = 0, dup = 0;
    pthread_mutex_lock(&hsm->keys_mu);
    for (size_t i = 0; i < hsm->master_count; i++) {
        if (hsm->masters[i].version != version) continue;
        known = 1;
        dup = hsm->masters[i].duplicate;
        *out = hsm->masters[i].handle;
    }
    pthread_mutex_unlock(&hsm->keys_mu);
    CV_ENSURE(!dup, CV_ERR_INTERNAL, "two HSM keys are labelled %s%u; remove the one credvault did not make",
              CV_HSM_MASTER_LABEL_PREFIX, (unsigned)version);
    if (known) return CV_OK;
    int found = 0;
    CV_GUARD(cv_hsm_master_lookup(hsm, lease, version, out, &found));
    CV_ENSURE(found, CV_ERR_NOT_FOUND, "HSM master key %s%u not found", CV_HSM_MASTER_LABEL_PREFIX,
              (unsigned)version);
    return CV_OK;
}
