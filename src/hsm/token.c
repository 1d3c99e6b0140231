/* Finding the configured token among the module's slots and checking what it
 * can do. Reads only public token information; never logs in. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define SLOTS_MAX 256
#define MECHANISMS_MAX 1024

/* Mechanisms reported by `credvault hsm status`: what the profile needs,
 * then the rest of the wrap family and the audit key's (later) ones. */
static const CK_MECHANISM_TYPE status_mechanisms[] = {
    CKM_AES_KEY_GEN,
    CKM_AES_GCM,
    CV_CKM_AES_KEY_WRAP_PAD,
    CV_CKM_AES_KEY_WRAP_KWP,
    CV_CKM_CLOUDHSM_AES_KEY_WRAP_ZERO_PAD,
    CKM_GENERIC_SECRET_KEY_GEN,
    CKM_SHA256_HMAC,
    CKM_EC_KEY_PAIR_GEN,
    CKM_ECDSA,
};

static void slot_fields(struct cv_hsm *hsm, CK_SLOT_ID id, const CK_SLOT_INFO *si, const CK_TOKEN_INFO *ti,
                        struct cv_hsm_slot_fields *out)
{
    out->slot_id = id;
    memcpy(out->library_manufacturer, hsm->info.manufacturerID, sizeof(out->library_manufacturer));
    memcpy(out->library_description, hsm->info.libraryDescription, sizeof(out->library_description));
    memcpy(out->slot_description, si->slotDescription, sizeof(out->slot_description));
    memcpy(out->slot_manufacturer, si->manufacturerID, sizeof(out->slot_manufacturer));
    memcpy(out->token_label, ti->label, sizeof(out->token_label));
    memcpy(out->token_manufacturer, ti->manufacturerID, sizeof(out->token_manufacturer));
    memcpy(out->token_model, ti->model, sizeof(out->token_model));
    memcpy(out->token_serial, ti->serialNumber, sizeof(out->token_serial));
}

/* "'a', 'b'" — labels of the tokens present, for an error that helps. */
static void labels_list(const CK_TOKEN_INFO *tokens, CK_ULONG n, char *out, size_t out_len)
{
    size_t used = 0;
    out[0] = '\0';
    for (CK_ULONG i = 0; i < n && used + 4 < out_len; i++) {
        char label[33];
        cv_hsm_field_trim(tokens[i].label, sizeof(tokens[i].label), label, sizeof(label));
        int w = snprintf(out + used, out_len - used, "%s'%s'", i ? ", " : "", label);
        if (w < 0) break;
        used += (size_t)w;
    }
    if (n == 0) snprintf(out, out_len, "none");
}

cv_result cv_hsm_token_select(struct cv_hsm *hsm, CK_RV *rv)
{
    cv_result res = CV_OK;
    CK_SLOT_ID *slots = NULL;
    CK_TOKEN_INFO *tokens = NULL;

    *rv = hsm->f->C_GetInfo(&hsm->info);
    if (*rv != CKR_OK) return cv_fail(CV_ERR_UNAVAILABLE, "HSM C_GetInfo failed (%s)", cv_hsm_rv_text(*rv).s);

    CK_ULONG n = 0;
    *rv = hsm->f->C_GetSlotList(CK_TRUE, NULL, &n);
    if (*rv != CKR_OK) return cv_fail(CV_ERR_UNAVAILABLE, "HSM C_GetSlotList failed (%s)", cv_hsm_rv_text(*rv).s);
    if (n > SLOTS_MAX) n = SLOTS_MAX;
    slots = calloc(n ? n : 1, sizeof(*slots));
    tokens = calloc(n ? n : 1, sizeof(*tokens));
    if (!slots || !tokens) {
        res = cv_fail(CV_ERR_MEMORY, "out of memory");
        goto out;
    }
    *rv = hsm->f->C_GetSlotList(CK_TRUE, slots, &n);
    if (*rv != CKR_OK) {
        res = cv_fail(CV_ERR_UNAVAILABLE, "HSM C_GetSlotList failed (%s)", cv_hsm_rv_text(*rv).s);
        goto out;
    }

    CK_ULONG matches = 0, present = 0, chosen = 0;
    for (CK_ULONG i = 0; i < n; i++) {
        CK_SLOT_INFO si;
        if (hsm->f->C_GetSlotInfo(slots[i], &si) != CKR_OK) continue;
        if (hsm->f->C_GetTokenInfo(slots[i], &tokens[present]) != CKR_OK) continue;
        struct cv_hsm_slot_fields fields;
        slot_fields(hsm, slots[i], &si, &tokens[present], &fields);
        if (cv_hsm_selector_matches(hsm->selector, &fields)) {
            if (matches++ == 0) {
                chosen = present;
                hsm->slot = slots[i];
            }
        }
        present++;
    }
    if (matches == 0) {
        char labels[256];
        labels_list(tokens, present, labels, sizeof(labels));
        *rv = CKR_TOKEN_NOT_PRESENT;
        res = cv_fail(CV_ERR_NOT_FOUND, "HSM token not found (CKR_TOKEN_NOT_PRESENT); tokens present: %s", labels);
        goto out;
    }
    if (matches > 1) {
        *rv = CKR_TOKEN_NOT_RECOGNIZED;
        res = cv_fail(CV_ERR_INPUT, "HSM token setting matches %lu tokens; name one by serial= in the pkcs11: URI",
                      (unsigned long)matches);
        goto out;
    }
    hsm->token = tokens[chosen];
    *rv = CKR_OK;
out:
    free(slots);
    free(tokens);
    return res;
}

cv_result cv_hsm_token_capabilities(struct cv_hsm *hsm, CK_RV *rv)
{
    cv_result res = CV_OK;
    CK_MECHANISM_TYPE *mechs = NULL;
    CK_ULONG n = 0;
    *rv = hsm->f->C_GetMechanismList(hsm->slot, NULL, &n);
    if (*rv != CKR_OK)
        return cv_fail(CV_ERR_UNAVAILABLE, "HSM C_GetMechanismList failed (%s)", cv_hsm_rv_text(*rv).s);
    if (n > MECHANISMS_MAX) n = MECHANISMS_MAX;
    mechs = calloc(n ? n : 1, sizeof(*mechs));
    CV_ENSURE(mechs != NULL, CV_ERR_MEMORY, "out of memory");
    *rv = hsm->f->C_GetMechanismList(hsm->slot, mechs, &n);
    if (*rv != CKR_OK) {
        res = cv_fail(CV_ERR_UNAVAILABLE, "HSM C_GetMechanismList failed (%s)", cv_hsm_rv_text(*rv).s);
        goto out;
    }

    char lib_manuf[33], lib_desc[33], tok_manuf[33], tok_model[17];
    cv_hsm_field_trim(hsm->info.manufacturerID, 32, lib_manuf, sizeof(lib_manuf));
    cv_hsm_field_trim(hsm->info.libraryDescription, 32, lib_desc, sizeof(lib_desc));
    cv_hsm_field_trim(hsm->token.manufacturerID, 32, tok_manuf, sizeof(tok_manuf));
    cv_hsm_field_trim(hsm->token.model, 16, tok_model, sizeof(tok_model));
    struct cv_hsm_identity id = {lib_manuf, lib_desc, tok_manuf, tok_model};
    res = cv_hsm_profile_pick(&id, mechs, n, &hsm->profile);
    /* inspecting: the profile is named before the check that failed; the gap is reported below */
    if (cv_failed(res) && !hsm->inspect) goto out;
    res = CV_OK;

    /* A listed mechanism must also allow what we use it for. */
    CK_MECHANISM_TYPE need[CV_HSM_REQUIRED_MECHANISMS_MAX];
    size_t need_n = cv_hsm_profile_required(&hsm->profile, need, CV_HSM_REQUIRED_MECHANISMS_MAX);
    for (size_t i = 0; i < need_n; i++) {
        CK_MECHANISM_INFO mi;
        *rv = hsm->f->C_GetMechanismInfo(hsm->slot, need[i], &mi);
        const char *name = cv_hsm_mechanism_name(need[i]);
        if (*rv == CKR_MECHANISM_INVALID && hsm->inspect) continue;
        if (*rv != CKR_OK) {
            res = cv_fail(CV_ERR_UNAVAILABLE, "HSM C_GetMechanismInfo(%s) failed (%s)", name ? name : "?",
                          cv_hsm_rv_text(*rv).s);
            goto out;
        }
        CK_FLAGS want = 0;
        if (need[i] == CKM_AES_GCM) want = CKF_ENCRYPT | CKF_DECRYPT;
        else if (need[i] == hsm->profile.wrap_mechanism) want = CKF_WRAP | CKF_UNWRAP;
        else if (need[i] == CKM_SHA256_HMAC) want = CKF_SIGN;
        else want = CKF_GENERATE;
        if ((mi.flags & want) != want && hsm->inspect) continue;
        if ((mi.flags & want) != want) {
            *rv = CKR_MECHANISM_INVALID;
            res = cv_fail(CV_ERR_UNAVAILABLE, "HSM token cannot use %s as needed (CKR_MECHANISM_INVALID)",
                          name ? name : "a required mechanism");
            goto out;
        }
        /* AES-256 keys: sizes are bytes for AES, though some tokens say bits. */
        if ((need[i] == CKM_AES_KEY_GEN || need[i] == CKM_AES_GCM) && mi.ulMaxKeySize < CV_AES256_KEY_BYTES &&
            !hsm->inspect) {
            *rv = CKR_KEY_SIZE_RANGE;
            res = cv_fail(CV_ERR_UNAVAILABLE, "HSM token has no AES-256 for %s (CKR_KEY_SIZE_RANGE)",
                          name ? name : "AES");
            goto out;
        }
    }

    hsm->mechanism_count = 0;
    for (size_t i = 0; i < sizeof(status_mechanisms) / sizeof(status_mechanisms[0]); i++) {
        int present = 0;
        for (CK_ULONG j = 0; j < n; j++)
            if (mechs[j] == status_mechanisms[i]) present = 1;
        /* the profile's needs, and the audit key's (EC P-256) */
        int needed = status_mechanisms[i] == CKM_EC_KEY_PAIR_GEN || status_mechanisms[i] == CKM_ECDSA;
        for (size_t j = 0; j < need_n; j++)
            if (need[j] == status_mechanisms[i]) needed = 1;
        hsm->mechanisms[hsm->mechanism_count].mechanism = status_mechanisms[i];
        hsm->mechanisms[hsm->mechanism_count].present = present;
        hsm->mechanisms[hsm->mechanism_count].needed = needed;
        hsm->mechanism_count++;
    }
    *rv = CKR_OK;
out:
    free(mechs);
    return res;
}
