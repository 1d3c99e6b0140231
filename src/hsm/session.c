/* Sessions: the owner session, the login, the pool leased one attempt at a
 * time, and the CK_RV adapter. Never logs or copies the PIN (it is read from
 * the handle's secret copy only to pass to C_Login). */
#include <stdatomic.h>
#include <string.h>

#include "credvault/log.h"
#include "internal.h"

#define SESSION_FLAGS (CKF_SERIAL_SESSION | CKF_RW_SESSION) /* CloudHSM has no read-only sessions */

cv_result cv_hsm_ck_fail(struct cv_hsm_lease *lease, CK_RV rv, const char *call, cv_err err)
{
    lease->rv = rv;
    if (cv_hsm_rv_recoverable(rv)) {
        lease->retry = 1;
        return cv_fail(CV_ERR_UNAVAILABLE, "HSM %s failed (%s)", call, cv_hsm_rv_text(rv).s);
    }
    return cv_fail(err, "HSM %s failed (%s)", call, cv_hsm_rv_text(rv).s);
}

int cv_hsm_session_alive(struct cv_hsm *hsm, CK_SESSION_HANDLE session)
{
    CK_SESSION_INFO si;
    return hsm->f->C_GetSessionInfo(session, &si) == CKR_OK && si.state == CKS_RW_USER_FUNCTIONS;
}

cv_result cv_hsm_data_fail(struct cv_hsm *hsm, struct cv_hsm_lease *lease, CK_RV rv, const char *call)
{
    if (cv_hsm_rv_bad_data(rv)) {
        lease->rv = rv;
        return cv_fail(CV_ERR_CRYPTO, CV_HSM_DECRYPT_FAILED);
    }
    /* SoftHSM reports a wrong tag or wrapped key as CKR_GENERAL_ERROR. A
     * session that still answers, logged in, says the device is fine and the
     * input was not; otherwise it is a device error and recovery takes it. */
    if (rv == CKR_GENERAL_ERROR && hsm->profile.general_error_is_bad_data &&
        cv_hsm_session_alive(hsm, lease->session)) {
        lease->rv = rv;
        return cv_fail(CV_ERR_CRYPTO, CV_HSM_DECRYPT_FAILED);
    }
    return cv_hsm_ck_fail(lease, rv, call, CV_ERR_INTERNAL);
}

void cv_hsm_destroy_quietly(struct cv_hsm *hsm, CK_SESSION_HANDLE session, CK_OBJECT_HANDLE object)
{
    if (object == CK_INVALID_HANDLE) return;
    CK_RV rv = hsm->f->C_DestroyObject(session, object);
    /* A session object we fail to destroy dies with the owner session at the
     * latest (close or recovery); worth a line, not a failure. */
    if (rv != CKR_OK) cv_log(CV_LOG_DEBUG, "hsm_destroy_failed", "rv", cv_hsm_rv_text(rv).s, (char *)NULL);
}

/* A refused PIN is CV_ERR_AUTH for `credvault` at start; once running, the
 * recovery turns it into "HSM unavailable" and logs in again only from the
 * background, with backoff, since each refusal counts toward a lockout. */
static cv_result login(struct cv_hsm *hsm, CK_RV *rv)
{
    *rv = hsm->f->C_Login(hsm->owner, CKU_USER, (CK_UTF8CHAR_PTR)hsm->pin, (CK_ULONG)hsm->pin_len);
    /* Login is per application: another session (or libp11) may have done it. */
    if (*rv == CKR_OK || *rv == CKR_USER_ALREADY_LOGGED_IN) {
        *rv = CKR_OK;
        return CV_OK;
    }
    if (*rv == CKR_PIN_INCORRECT || *rv == CKR_PIN_LOCKED || *rv == CKR_PIN_EXPIRED || *rv == CKR_PIN_INVALID ||
        *rv == CKR_PIN_LEN_RANGE) {
        return cv_fail(CV_ERR_AUTH, "HSM login failed (%s)", cv_hsm_rv_text(*rv).s);
    }
    return cv_fail(CV_ERR_UNAVAILABLE, "HSM login failed (%s)", cv_hsm_rv_text(*rv).s);
}

cv_result cv_hsm_sessions_open(struct cv_hsm *hsm, CK_RV *rv)
{
    *rv = hsm->f->C_OpenSession(hsm->slot, SESSION_FLAGS, NULL, NULL, &hsm->owner);
    if (*rv != CKR_OK) {
        hsm->owner = CK_INVALID_HANDLE;
        return cv_fail(CV_ERR_UNAVAILABLE, "HSM C_OpenSession failed (%s)", cv_hsm_rv_text(*rv).s);
    }
    CV_GUARD(login(hsm, rv));
    for (unsigned i = 0; i < hsm->session_count; i++) {
        *rv = hsm->f->C_OpenSession(hsm->slot, SESSION_FLAGS, NULL, NULL, &hsm->sessions[i]);
        if (*rv != CKR_OK) {
            hsm->sessions[i] = CK_INVALID_HANDLE;
            return cv_fail(CV_ERR_UNAVAILABLE, "HSM C_OpenSession failed (%s)", cv_hsm_rv_text(*rv).s);
        }
    }
    hsm->free_count = hsm->session_count;
    for (unsigned i = 0; i < hsm->session_count; i++) hsm->free_list[i] = i;
    *rv = CKR_OK;
    return CV_OK;
}

void cv_hsm_sessions_forget(struct cv_hsm *hsm)
{
    hsm->owner = CK_INVALID_HANDLE;
    for (unsigned i = 0; i < hsm->session_count; i++) hsm->sessions[i] = CK_INVALID_HANDLE;
}

void cv_hsm_sessions_close(struct cv_hsm *hsm)
{
    /* One by one, not C_CloseAllSessions: another user of the module in this
     * process keeps its sessions. The owner goes last: it holds the keys. */
    for (unsigned i = 0; i < hsm->session_count; i++)
        if (hsm->sessions[i] != CK_INVALID_HANDLE) (void)hsm->f->C_CloseSession(hsm->sessions[i]);
    if (hsm->owner != CK_INVALID_HANDLE) (void)hsm->f->C_CloseSession(hsm->owner);
    cv_hsm_sessions_forget(hsm);
}

cv_result cv_hsm_lease_acquire(struct cv_hsm *hsm, struct cv_hsm_lease *lease)
{
    memset(lease, 0, sizeof(*lease));
    pthread_rwlock_rdlock(&hsm->state);
    lease->generation = hsm->generation;
    if (!atomic_load(&hsm->healthy)) {
        /* the breaker opened meanwhile: the caller fails at once */
        lease->rv = atomic_load(&hsm->broken_rv);
        lease->broken = 1;
        pthread_rwlock_unlock(&hsm->state);
        return cv_fail(CV_ERR_UNAVAILABLE, "HSM unavailable (%s)", cv_hsm_rv_text(lease->rv).s);
    }
    pthread_mutex_lock(&hsm->pool_mu);
    while (hsm->free_count == 0) pthread_cond_wait(&hsm->pool_cv, &hsm->pool_mu);
    lease->index = hsm->free_list[--hsm->free_count];
    pthread_mutex_unlock(&hsm->pool_mu);
    lease->session = hsm->sessions[lease->index];
    return CV_OK;
}

void cv_hsm_lease_release(struct cv_hsm *hsm, struct cv_hsm_lease *lease)
{
    pthread_mutex_lock(&hsm->pool_mu);
    hsm->free_list[hsm->free_count++] = lease->index;
    pthread_cond_signal(&hsm->pool_cv);
    pthread_mutex_unlock(&hsm->pool_mu);
    pthread_rwlock_unlock(&hsm->state);
}
