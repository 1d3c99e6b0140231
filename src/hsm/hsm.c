/* Opening and closing the handle: settings, locks, the first connect, and
 * the orderly end (destroy every unwrapped key, close sessions, finalize).
 * Wipes its copy of the PIN on every exit. */
#define _GNU_SOURCE /* PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "credvault/buf.h"
#include "credvault/log.h"
#include "credvault/metrics.h"
#include "internal.h"

_Static_assert(CV_HSM_STATUS_MECHANISMS <= sizeof(((struct cv_hsm_status *)0)->mechanisms) /
                                               sizeof(((struct cv_hsm_status *)0)->mechanisms[0]),
               "status has room for every reported mechanism");

#define RETRIES_MAX 10
#define BACKOFF_MAX_MS 60000

static cv_result check_options(const struct cv_hsm_options *opt)
{
    CV_ENSURE_REF(opt);
    CV_ENSURE(opt->module_path && opt->module_path[0], CV_ERR_INPUT, "no PKCS#11 module path (CREDVAULT_PKCS11_MODULE)");
    CV_ENSURE(opt->token && opt->token[0], CV_ERR_INPUT, "no HSM token (CREDVAULT_PKCS11_TOKEN)");
    CV_ENSURE(opt->pin != NULL, CV_ERR_INPUT, "no HSM PIN (CREDVAULT_HSM_PIN_FILE)");
    CV_ENSURE(opt->sessions >= 1 && opt->sessions <= CV_HSM_SESSIONS_MAX, CV_ERR_INPUT,
              "HSM sessions must be 1 to %d", CV_HSM_SESSIONS_MAX);
    CV_ENSURE(opt->retries <= RETRIES_MAX, CV_ERR_INPUT, "HSM retries must be at most %d", RETRIES_MAX);
    CV_ENSURE(opt->backoff_ms <= BACKOFF_MAX_MS, CV_ERR_INPUT, "HSM backoff must be at most %d ms", BACKOFF_MAX_MS);
    CV_ENSURE(opt->key_cache_size >= 1, CV_ERR_INPUT, "HSM key cache size must be at least 1");
    return CV_OK;
}

static void wipe_pin(struct cv_hsm *hsm)
{
    if (hsm->pin) cv_secret_free(hsm->pin); /* wipes */
    hsm->pin = NULL;
    hsm->pin_len = 0;
}

/* Frees what `alloc` made; the module is already finalized and unloaded. */
static void release(struct cv_hsm *hsm)
{
    wipe_pin(hsm);
    cv_hsm_cache_free(hsm->cache);
    cv_hsm_memkeys_free(hsm->memkeys); /* wipes */
    cv_hsm_selector_free(hsm->selector);
    free(hsm->module_path);
    free(hsm->sessions);
    free(hsm->free_list);
    pthread_rwlock_destroy(&hsm->state);
    pthread_mutex_destroy(&hsm->pool_mu);
    pthread_cond_destroy(&hsm->pool_cv);
    pthread_mutex_destroy(&hsm->owner_mu);
    pthread_mutex_destroy(&hsm->keys_mu);
    pthread_mutex_destroy(&hsm->recheck_mu);
    pthread_cond_destroy(&hsm->recheck_cv);
    free(hsm);
}

static cv_result alloc(const struct cv_hsm_options *opt, struct cv_hsm **out)
{
    struct cv_hsm *hsm = calloc(1, sizeof(*hsm));
    CV_ENSURE(hsm != NULL, CV_ERR_MEMORY, "out of memory");
    pthread_rwlockattr_t ra;
    pthread_rwlockattr_init(&ra);
    /* Recovery must not starve behind a steady stream of operations. */
    pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&hsm->state, &ra);
    pthread_rwlockattr_destroy(&ra);
    pthread_mutex_init(&hsm->pool_mu, NULL);
    pthread_cond_init(&hsm->pool_cv, NULL);
    pthread_mutex_init(&hsm->owner_mu, NULL);
    pthread_mutex_init(&hsm->keys_mu, NULL);
    pthread_mutex_init(&hsm->recheck_mu, NULL);
    pthread_cond_init(&hsm->recheck_cv, NULL);
    hsm->owner = CK_INVALID_HANDLE;
    hsm->binding = CK_INVALID_HANDLE;
    hsm->session_count = opt->sessions;
    hsm->retries = opt->retries;
    hsm->backoff_ms = opt->backoff_ms;
    hsm->key_cache_size = opt->key_cache_size;
    hsm->inspect = opt->inspect;

    cv_result res = CV_OK;
    hsm->module_path = strdup(opt->module_path);
    hsm->pin = cv_secret_strdup(opt->pin);
    hsm->sessions = calloc(opt->sessions, sizeof(*hsm->sessions));
    hsm->free_list = calloc(opt->sessions, sizeof(*hsm->free_list));
    if (!hsm->module_path || !hsm->pin || !hsm->sessions || !hsm->free_list) {
        res = cv_fail(CV_ERR_MEMORY, "out of memory");
        goto out;
    }
    hsm->pin_len = strlen(hsm->pin);
    cv_hsm_sessions_forget(hsm);
    CV_GUARD_OUT(res, cv_hsm_selector_parse(opt->token, &hsm->selector));
    hsm->metrics = opt->metrics;
    CV_GUARD_OUT(res, cv_hsm_cache_new(opt->key_cache_size, &hsm->cache));
    cv_hsm_cache_count_into(hsm->cache, opt->metrics);
    CV_GUARD_OUT(res, cv_hsm_memkeys_new(opt->key_cache_size, &hsm->memkeys));
    *out = hsm;
    hsm = NULL;
out:
    if (hsm) release(hsm);
    return res;
}

cv_result cv_hsm_open(const struct cv_hsm_options *opt, struct cv_hsm **out)
{
    CV_ENSURE_REF(out);
    *out = NULL;
    CV_GUARD(check_options(opt));
    struct cv_hsm *hsm = NULL;
    CV_GUARD(alloc(opt, &hsm));
    CV_ENSURE(hsm != NULL, CV_ERR_INTERNAL, "HSM handle allocation returned nothing");

    cv_result res = CV_OK;
    CK_RV rv = CKR_OK;
    CV_GUARD_OUT(res, cv_hsm_module_load(hsm));
    CV_GUARD_OUT(res, cv_hsm_connect_retrying(hsm, &rv));
    atomic_store(&hsm->healthy, 1);
    cv_metric_set(hsm->metrics, CV_M_HSM_UP, 1);
    cv_log(CV_LOG_INFO, "hsm_open", "profile", hsm->profile.name, "wrap",
           cv_hsm_mechanism_name(hsm->profile.wrap_mechanism), "gcm_iv",
           cv_hsm_iv_source_name(hsm->profile.iv_source), (char *)NULL);
    *out = hsm;
    hsm = NULL;
out:
    if (hsm) {
        if (hsm->f) {
            cv_hsm_sessions_close(hsm);
            if (hsm->initialized) cv_hsm_module_finalize(hsm);
        }
        cv_hsm_module_unload(hsm);
        release(hsm);
    }
    return res;
}

void cv_hsm_close(struct cv_hsm *hsm)
{
    if (!hsm) return;
    cv_hsm_recheck_stop(hsm);
    pthread_rwlock_wrlock(&hsm->state);
    if (atomic_load(&hsm->healthy)) {
        unsigned long h;
        while (cv_hsm_cache_detach_next(hsm->cache, NULL, &h)) cv_hsm_destroy_quietly(hsm, hsm->owner, h);
    }
    cv_hsm_cache_forget(hsm->cache);
    cv_hsm_sessions_close(hsm);
    cv_hsm_signer_free(hsm); /* after our sessions: releasing libp11's slots closes all sessions */
    if (hsm->initialized) cv_hsm_module_finalize(hsm);
    cv_hsm_module_unload(hsm);
    pthread_rwlock_unlock(&hsm->state);
    release(hsm);
}
