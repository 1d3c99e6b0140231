/* Group commit of lone audit events (reads, refusals, failed logins). The
 * caller that finds no batch being written becomes the writer: it takes
 * what is queued, oldest first (at most CV_AUDIT_BATCH_MAX; its own event
 * may wait for a later batch, which it may write too) and appends it in one transaction on its own
 * connection and writer slot; the others wait, and when the batch is
 * written one of those still waiting writes the next. No thread of its own
 * and no timer: a lone event is written by its own request with no hand-over,
 * and a busy service batches what queued while the previous batch was
 * written. Every caller gets its batch's outcome, so a failed batch fails
 * every request in it. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "credvault/log.h"
#include "credvault/metrics.h"
#include "store/pq.h"

struct waiter {
    struct cv_sealed_event *se;
    int durable;
    int done;
    cv_err err;
    char message[128];
    struct waiter *next;
};

struct cv_audit_batcher {
    struct cv_store *st;
    pthread_mutex_t lock;
    pthread_cond_t done; /* waiters wait for their batch, or their turn to write */
    struct waiter *head, *tail;
    size_t queued;
    int writing; /* a caller is writing a batch */
};

static pthread_mutex_t make_lock = PTHREAD_MUTEX_INITIALIZER;

static void write_batch(struct cv_audit_batcher *b, struct waiter **w, size_t n)
{
    struct cv_sealed_event se[CV_AUDIT_BATCH_MAX];
    int durable = 0;
    for (size_t i = 0; i < n; i++) {
        se[i] = *w[i]->se;
        durable |= w[i]->durable;
    }
    /* platform scope: the batch holds several tenants' events, each filed
     * in its own tenant's chain */
    const struct cv_tx tx = {.scope = CV_SCOPE_PLATFORM, .flags = durable ? 0 : CV_TX_EVENTS_ASYNC};
    cv_result r = cv_store_tx_sealed(b->st, &tx, NULL, 0, se, n);
    cv_metric_inc(b->st->metrics, CV_M_AUDIT_BATCHES);
    cv_metric_add(b->st->metrics, CV_M_AUDIT_BATCHED_EVENTS, n);
    if ((int64_t)n > (int64_t)cv_metric_value(b->st->metrics, CV_M_AUDIT_BATCH_LARGEST, NULL, NULL, NULL))
        cv_metric_set(b->st->metrics, CV_M_AUDIT_BATCH_LARGEST, (int64_t)n);
    if (cv_failed(r)) {
        char count[16];
        snprintf(count, sizeof(count), "%zu", n);
        cv_log(CV_LOG_ERROR, "audit_batch_failed", "events", count, "error", cv_error_message(), NULL);
    }
    pthread_mutex_lock(&b->lock);
    for (size_t i = 0; i < n; i++) {
        w[i]->err = r.err;
        if (cv_failed(r)) snprintf(w[i]->message, sizeof(w[i]->message), "%s", cv_error_message());
        w[i]->done = 1;
    }
    b->writing = 0;
    pthread_cond_broadcast(&b->done);
    pthread_mutex_unlock(&b->lock);
}

static cv_result batcher_get(struct cv_store *st, struct cv_audit_batcher **out)
{
    pthread_mutex_lock(&make_lock);
    cv_result r = CV_OK;
    if (!st->batcher) {
        struct cv_audit_batcher *b = calloc(1, sizeof(*b));
        if (!b) {
            r = cv_fail(CV_ERR_MEMORY, "out of memory");
        } else {
            b->st = st;
            pthread_mutex_init(&b->lock, NULL);
            pthread_cond_init(&b->done, NULL);
            st->batcher = b;
        }
    }
    *out = st->batcher;
    pthread_mutex_unlock(&make_lock);
    return r;
}

/* After every caller has returned (the store closes). */
void cv_audit_batcher_stop(struct cv_store *st)
{
    pthread_mutex_lock(&make_lock);
    struct cv_audit_batcher *b = st->batcher;
    st->batcher = NULL;
    pthread_mutex_unlock(&make_lock);
    if (!b) return;
    pthread_cond_destroy(&b->done);
    pthread_mutex_destroy(&b->lock);
    free(b);
}

cv_result cv_store_audit_append(struct cv_store *st, const struct cv_audit_event *ev, int durable)
{
    CV_ENSURE_REF(st);
    CV_GUARD(cv_store_check_event(ev));
    /* the batch may be written on this thread's connection: never inside a
     * transaction it holds open (the events would share its fate) */
    struct cv_conn *own = pthread_getspecific(st->key);
    CV_ENSURE(!own || !own->pg || PQtransactionStatus(own->pg) == PQTRANS_IDLE, CV_ERR_INTERNAL,
              "a lone audit event inside an open transaction");
    struct cv_audit_batcher *b;
    CV_GUARD(batcher_get(st, &b));
    /* sealed here, so that the anchors of concurrent callers are made in
     * their own threads */
    struct cv_sealed_event se;
    cv_result r = cv_store_seal_event(st, ev, ev->target, &se);
    if (cv_failed(r)) {
        cv_store_sealed_free(&se, 1);
        return r;
    }
    struct waiter w;
    memset(&w, 0, sizeof(w));
    w.se = &se;
    w.durable = durable;
    pthread_mutex_lock(&b->lock);
    if (b->tail) b->tail->next = &w;
    else b->head = &w;
    b->tail = &w;
    b->queued++;
    cv_metric_set(st->metrics, CV_M_AUDIT_BATCH_QUEUED, (int64_t)b->queued);
    while (!w.done) {
        if (b->writing) {
            pthread_cond_wait(&b->done, &b->lock);
            continue;
        }
        /* no batch in flight: this caller writes the queue's head, its own
         * event among it (a waiter that is not done is still queued) */
        struct waiter *batch[CV_AUDIT_BATCH_MAX];
        size_t n = 0;
        while (b->head && n < CV_AUDIT_BATCH_MAX) {
            batch[n++] = b->head;
            b->head = b->head->next;
            b->queued--;
        }
        if (!b->head) b->tail = NULL;
        b->writing = 1;
        cv_metric_set(st->metrics, CV_M_AUDIT_BATCH_QUEUED, (int64_t)b->queued);
        pthread_mutex_unlock(&b->lock);
        write_batch(b, batch, n);
        pthread_mutex_lock(&b->lock);
    }
    pthread_mutex_unlock(&b->lock);
    cv_store_sealed_free(&se, 1);
    if (w.err == CV_ERR_NONE) return CV_OK;
    return cv_fail(w.err, "%s", w.message[0] ? w.message : "the audit batch failed");
}

cv_result cv_store_audit_insert(struct cv_store *st, const struct cv_audit_event *ev)
{
    return cv_store_audit_append(st, ev, 1);
}
