/* Signed checkpoints of the audit chains' heads, and the sealer thread that
 * makes them while the service runs. A checkpoint lists the SHA-256 of the
 * head line of every chain that moved since it was last sealed (never a
 * chain's name), links to the previous checkpoint's payload, and is signed
 * in the HSM: the part of the trail that an attacker with write access to
 * the database cannot redo. Never signs anything a caller supplied: only
 * what it read from the heads. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "credvault/crypto.h"
#include "credvault/hsm_installation.h"
#include "credvault/hsm_signing.h"
#include "credvault/log.h"
#include "credvault/metrics.h"
#include "credvault/store_installation.h"
#include "domain/audit.h"

struct heads {
    struct cv_audit_head *items;
    size_t n, cap;
    cv_result r;
};

static int collect_head(void *arg, const struct cv_audit_head *h)
{
    struct heads *hs = arg;
    if (h->seq < 1) return 0; /* made but never used: nothing to sign */
    /* more chains moved than one checkpoint holds: the rest go in the next one */
    if (hs->n == CV_AUDIT_CHECKPOINT_MAX_HEADS) return 1;
    if (hs->n == hs->cap) {
        size_t cap = hs->cap ? hs->cap * 2 : 64;
        struct cv_audit_head *items = realloc(hs->items, cap * sizeof(*items));
        if (!items) {
            hs->r = cv_fail(CV_ERR_MEMORY, "out of memory");
            return 1;
        }
        hs->items = items;
        hs->cap = cap;
    }
    hs->items[hs->n++] = *h;
    return 0;
}

cv_result cv_audit_checkpoint(struct cv_app *app, int *made)
{
    CV_ENSURE(app && app->store && app->hsm, CV_ERR_INTERNAL, "checkpoints need the store and the HSM");
    *made = 0;
    cv_result r = CV_OK;
    struct heads hs = {NULL, 0, 0, CV_OK};
    char(*digests)[2 * CV_AUDIT_HASH_BYTES + 1] = NULL;
    struct cv_audit_checkpoint last, cp;
    memset(&last, 0, sizeof(last));
    memset(&cp, 0, sizeof(cp));
    struct cv_buf line, payload;
    cv_buf_init(&line, 1024);
    cv_buf_init(&payload, CV_AUDIT_PAYLOAD_MAX_BYTES);

    CV_GUARD_OUT(r, cv_store_audit_heads(app->store, NULL, 1, collect_head, &hs));
    CV_GUARD_OUT(r, hs.r);
    if (hs.n == 0) goto out; /* every head is sealed already */
    digests = calloc(hs.n, sizeof(*digests));
    if (!digests) {
        r = cv_fail(CV_ERR_MEMORY, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < hs.n; i++) {
        uint8_t d[CV_AUDIT_HASH_BYTES];
        cv_buf_reset(&line);
        CV_GUARD_OUT(r, cv_audit_canon_head(&hs.items[i], &line));
        cv_crypto_sha256(line.data, line.len, d);
        cv_hex_encode(d, sizeof(d), digests[i]);
    }
    int found = 0;
    CV_GUARD_OUT(r, cv_store_audit_checkpoint_last(app->store, &last, &found));
    if (found) cv_crypto_sha256(last.payload, strlen(last.payload), cp.prev);
    cp.at_ms = cv_time_now_ms();
    snprintf(cp.key_label, sizeof(cp.key_label), "%s", CV_HSM_AUDIT_KEY_LABEL);
    /* the signer named in what it signs: verify reports it and refuses a foreign one */
    char installation[CV_INSTALLATION_ID_BYTES + 1], pem[CV_HSM_PUBLIC_KEY_PEM_MAX_BYTES];
    char fp_hex[2 * CV_HSM_KEY_FINGERPRINT_BYTES + 1];
    uint8_t fp[CV_HSM_KEY_FINGERPRINT_BYTES];
    CV_GUARD_OUT(r, cv_store_installation_get(app->store, installation));
    CV_GUARD_OUT(r, cv_hsm_audit_public_key(app->hsm, pem, sizeof(pem), fp));
    cv_hex_encode(fp, sizeof(fp), fp_hex);
    CV_GUARD_OUT(r, cv_audit_canon_checkpoint(cp.at_ms, cp.key_label, installation, fp_hex, cp.prev, digests, hs.n,
                                              &payload, cp.heads_digest));
    CV_GUARD_OUT(r, cv_buf_terminate(&payload));
    CV_GUARD_OUT(r, cv_hsm_audit_sign(app->hsm, payload.data, payload.len, cp.signature, sizeof(cp.signature),
                                      &cp.signature_len));
    cp.payload = (char *)payload.data;
    cp.heads = (uint32_t)hs.n;
    r = cv_store_audit_checkpoint_insert(app->store, &cp, hs.items, hs.n);
    cp.payload = NULL; /* owned by the buffer */
    if (r.err == CV_ERR_CONFLICT) {
        /* another instance extended the checkpoints from the same one first */
        cv_log(CV_LOG_DEBUG, "audit_checkpoint_raced", NULL);
        r = CV_OK;
        goto out;
    }
    if (cv_failed(r)) goto out;
    *made = 1;
    char id[24], n[24];
    snprintf(id, sizeof(id), "%lld", (long long)cp.id);
    snprintf(n, sizeof(n), "%zu", hs.n);
    cv_log(CV_LOG_INFO, "audit_checkpoint", "id", id, "heads", n, "key", cp.key_label, NULL);
    cv_metric_set(app->metrics, CV_M_AUDIT_CHECKPOINT_TIME, cp.at_ms / 1000);
out:
    cv_metric_inc_l(app->metrics, CV_M_AUDIT_CHECKPOINTS, cv_failed(r) ? "error" : *made ? "ok" : "unchanged", NULL, NULL);
    cv_audit_checkpoint_free(&last);
    free(digests);
    free(hs.items);
    cv_buf_free(&line);
    cv_buf_free(&payload);
    return r;
}

/* ---- the sealer ---- */

/* One per service object (app->sealer), so two in one process share nothing. */
struct cv_audit_sealer {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stopping;
    pthread_t thread;
    struct cv_app *app;
    unsigned threshold, interval_s;
    _Atomic uint64_t pending; /* events written by this service since the last checkpoint */
};

void cv_audit_sealer_count(struct cv_app *app, unsigned n)
{
    struct cv_audit_sealer *s = app ? app->sealer : NULL;
    if (!s || n == 0) return;
    uint64_t before = atomic_fetch_add(&s->pending, n);
    if (before < s->threshold && before + n >= s->threshold) {
        pthread_mutex_lock(&s->mu);
        pthread_cond_signal(&s->cv);
        pthread_mutex_unlock(&s->mu);
    }
}

static void seal_once(struct cv_audit_sealer *s)
{
    atomic_store(&s->pending, 0);
    int made = 0;
    if (cv_failed(cv_audit_checkpoint(s->app, &made)))
        cv_log(CV_LOG_WARN, "audit_checkpoint_failed", "error", cv_error_message(), NULL);
}

static void *sealer_main(void *arg)
{
    struct cv_audit_sealer *s = arg;
    pthread_mutex_lock(&s->mu);
    while (!s->stopping) {
        struct timespec deadline;
        clock_gettime(CLOCK_MONOTONIC, &deadline);
        deadline.tv_sec += s->interval_s;
        while (!s->stopping && atomic_load(&s->pending) < s->threshold) {
            if (pthread_cond_timedwait(&s->cv, &s->mu, &deadline) != 0) break; /* the interval is over */
        }
        if (s->stopping) break;
        pthread_mutex_unlock(&s->mu);
        seal_once(s);
        pthread_mutex_lock(&s->mu);
    }
    pthread_mutex_unlock(&s->mu);
    /* the last events of this run get their signature too */
    seal_once(s);
    cv_store_thread_done(s->app->store);
    return NULL;
}

cv_result cv_audit_sealer_start(struct cv_app *app)
{
    CV_ENSURE(app && app->cfg && app->store && app->hsm, CV_ERR_INTERNAL, "the sealer needs the store and the HSM");
    CV_ENSURE(!app->sealer, CV_ERR_CONFLICT, "the audit sealer runs already");
    const char *mode = app->cfg->audit_durability;
    CV_ENSURE(mode && (strcmp(mode, "changes") == 0 || strcmp(mode, "all") == 0), CV_ERR_INPUT,
              "CREDVAULT_AUDIT_DURABILITY must be changes or all");
    CV_GUARD(cv_store_audit_check_ready(app->store));
    int exists = 0;
    CV_GUARD(cv_hsm_audit_key_exists(app->hsm, &exists));
    CV_ENSURE(exists, CV_ERR_CONFLICT,
              "the token has no audit signing key %s: run `credvault hsm init` (it keeps the keys it finds)",
              CV_HSM_AUDIT_KEY_LABEL);
    struct cv_audit_sealer *s = calloc(1, sizeof(*s));
    CV_ENSURE(s != NULL, CV_ERR_MEMORY, "out of memory");
    pthread_mutex_init(&s->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->cv, &ca);
    pthread_condattr_destroy(&ca);
    s->app = app;
    s->threshold = app->cfg->audit_checkpoint_events ? app->cfg->audit_checkpoint_events : 1;
    s->interval_s = app->cfg->audit_checkpoint_s ? app->cfg->audit_checkpoint_s : 60;
    /* published before the thread starts: request threads only count */
    app->sealer = s;
    if (pthread_create(&s->thread, NULL, sealer_main, s) != 0) {
        app->sealer = NULL;
        pthread_cond_destroy(&s->cv);
        pthread_mutex_destroy(&s->mu);
        free(s);
        CV_BAIL(CV_ERR_MEMORY, "cannot start the audit sealer thread");
    }
    return CV_OK;
}

void cv_audit_sealer_stop(struct cv_app *app)
{
    struct cv_audit_sealer *s = app ? app->sealer : NULL;
    if (!s) return;
    pthread_mutex_lock(&s->mu);
    s->stopping = 1;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->thread, NULL);
    app->sealer = NULL;
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    free(s);
}
