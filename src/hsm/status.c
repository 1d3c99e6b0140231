/* What the token is and whether it answers: the status report, the
 * readiness probe and random bytes. Reports names, versions and counts;
 * never key material, never the PIN. */
#include <stdio.h>
#include <string.h>

#include "internal.h"

#define RANDOM_MAX_BYTES (1024 * 1024)

static void copy_text(char *dst, size_t n, const char *src)
{
    snprintf(dst, n, "%s", src ? src : "");
}

/* What a missing mechanism disables, for `hsm status`. */
static const char *gap_effect(CK_MECHANISM_TYPE m, const struct cv_hsm_profile *p)
{
    if (m == CKM_AES_KEY_GEN) return "no master or tenant key can be made";
    if (m == CKM_AES_GCM) return "no credential can be sealed or opened: every deploy, update and read fails";
    if (m == p->wrap_mechanism) return "no tenant key can be made, unwrapped or rewrapped: nothing is served";
    if (m == CKM_GENERIC_SECRET_KEY_GEN) return "the binding key cannot be made (hsm init)";
    if (m == CKM_SHA256_HMAC)
        return "wrapped tenant keys cannot be bound or checked, nor the token's identity: nothing is served";
    if (m == CKM_EC_KEY_PAIR_GEN) return "the audit signing key cannot be made (hsm init)";
    if (m == CKM_ECDSA) return "audit checkpoints cannot be signed";
    return "";
}

static cv_result status_op(struct cv_hsm *hsm, struct cv_hsm_lease *lease, void *arg)
{
    struct cv_hsm_status *st = arg;
    CK_SESSION_INFO si;
    CV_CK_GUARD(lease, "C_GetSessionInfo", hsm->f->C_GetSessionInfo(lease->session, &si), CV_ERR_UNAVAILABLE);
    st->logged_in = si.state == CKS_RW_USER_FUNCTIONS;
    /* Fresh from the token: `hsm status` is where an operator checks keys. */
    CK_RV rv = CKR_OK;
    cv_result r = cv_hsm_keys_scan(hsm, lease->session, &rv);
    if (cv_failed(r) && rv != CKR_OK) return cv_hsm_ck_fail(lease, rv, "C_FindObjects", CV_ERR_UNAVAILABLE);
    CV_GUARD(r); /* a key under our label that could leave the token */

    copy_text(st->module_path, sizeof(st->module_path), hsm->module_path);
    cv_hsm_field_trim(hsm->info.libraryDescription, sizeof(hsm->info.libraryDescription), st->library_description,
                      sizeof(st->library_description));
    cv_hsm_field_trim(hsm->token.label, sizeof(hsm->token.label), st->token_label, sizeof(st->token_label));
    cv_hsm_field_trim(hsm->token.serialNumber, sizeof(hsm->token.serialNumber), st->token_serial,
                      sizeof(st->token_serial));
    cv_hsm_field_trim(hsm->token.model, sizeof(hsm->token.model), st->token_model, sizeof(st->token_model));
    cv_hsm_field_trim(hsm->token.manufacturerID, sizeof(hsm->token.manufacturerID), st->manufacturer,
                      sizeof(st->manufacturer));
    copy_text(st->profile, sizeof(st->profile), hsm->profile.name);
    copy_text(st->wrap_mechanism, sizeof(st->wrap_mechanism), cv_hsm_mechanism_name(hsm->profile.wrap_mechanism));
    copy_text(st->gcm_iv_source, sizeof(st->gcm_iv_source), cv_hsm_iv_source_name(hsm->profile.iv_source));

    pthread_mutex_lock(&hsm->keys_mu);
    st->binding_key_present = hsm->binding != CK_INVALID_HANDLE && !hsm->binding_duplicate;
    st->master_versions_count = 0;
    for (size_t i = 0; i < hsm->master_count && i < CV_HSM_MASTER_VERSIONS_MAX; i++)
        st->master_versions[st->master_versions_count++] = hsm->masters[i].version;
    pthread_mutex_unlock(&hsm->keys_mu);

    size_t cap = sizeof(st->mechanisms) / sizeof(st->mechanisms[0]);
    st->mechanisms_count = 0;
    for (size_t i = 0; i < hsm->mechanism_count && i < cap; i++) {
        copy_text(st->mechanisms[i].name, sizeof(st->mechanisms[i].name),
                  cv_hsm_mechanism_name(hsm->mechanisms[i].mechanism));
        st->mechanisms[i].present = hsm->mechanisms[i].present;
        st->mechanisms[i].needed = hsm->mechanisms[i].needed;
        if (hsm->mechanisms[i].needed && !hsm->mechanisms[i].present) {
            copy_text(st->mechanisms[i].disables, sizeof(st->mechanisms[i].disables),
                      gap_effect(hsm->mechanisms[i].mechanism, &hsm->profile));
            st->gaps++;
        }
        st->mechanisms_count++;
    }
    st->cached_keys = cv_hsm_cache_count(hsm->cache);
    st->memory_keys = cv_hsm_memkeys_count(hsm->memkeys);
    /* a master key made before the mark existed carries an empty template */
    CV_GUARD(cv_hsm_master_marked_before(hsm, lease, 0, &st->residency_hsm_only));
    return CV_OK;
}

cv_result cv_hsm_status_get(struct cv_hsm *hsm, struct cv_hsm_status *st)
{
    CV_ENSURE_REF(hsm);
    CV_ENSURE_REF(st);
    memset(st, 0, sizeof(*st));
    return cv_hsm_run(hsm, status_op, st);
}

static cv_result ping_op(struct cv_hsm *hsm, struct cv_hsm_lease *lease, void *arg)
{
    (void)arg;
    CK_SESSION_INFO si;
    CV_CK_GUARD(lease, "C_GetSessionInfo", hsm->f->C_GetSessionInfo(lease->session, &si), CV_ERR_UNAVAILABLE);
    /* Login ends when the last session of the application closes; a session
     * that is not in the user state means someone closed ours. */
    if (si.state != CKS_RW_USER_FUNCTIONS)
        return cv_hsm_ck_fail(lease, CKR_USER_NOT_LOGGED_IN, "C_GetSessionInfo", CV_ERR_UNAVAILABLE);
    /* Session information may be answered by the client library alone; a
     * random byte has to come from the device. */
    CK_BYTE b;
    CV_CK_GUARD(lease, "C_GenerateRandom", hsm->f->C_GenerateRandom(lease->session, &b, 1), CV_ERR_UNAVAILABLE);
    return CV_OK;
}

cv_result cv_hsm_ping(struct cv_hsm *hsm)
{
    CV_ENSURE_REF(hsm);
    return cv_hsm_run(hsm, ping_op, NULL);
}

struct random_arg {
    uint8_t *out;
    size_t n;
};

static cv_result random_op(struct cv_hsm *hsm, struct cv_hsm_lease *lease, void *arg)
{
    struct random_arg *a = arg;
    CV_CK_GUARD(lease, "C_GenerateRandom", hsm->f->C_GenerateRandom(lease->session, a->out, (CK_ULONG)a->n),
                CV_ERR_UNAVAILABLE);
    return CV_OK;
}

cv_result cv_hsm_random(struct cv_hsm *hsm, uint8_t *out, size_t n)
{
    CV_ENSURE_REF(hsm);
    if (n == 0) return CV_OK;
    CV_ENSURE_REF(out);
    CV_ENSURE(n <= RANDOM_MAX_BYTES, CV_ERR_TOO_LARGE, "random request over %d bytes", RANDOM_MAX_BYTES);
    struct random_arg a = {out, n};
    return cv_hsm_run(hsm, random_op, &a);
}
