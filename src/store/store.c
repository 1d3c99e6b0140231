/* The store object: options checked once, connection keywords built once,
 * a pthread key for the per-thread connections. Holds the database password
 * only in secret memory. cv_store_close must run after every worker thread
 * stopped using the store. */
#include <stdlib.h>
#include <string.h>

#include "credvault/buf.h"
#include "store/pq.h"

static void thread_exit(void *p)
{
    /* runs at worker thread exit when cv_store_thread_done was not called */
    cv_conn_release(p);
}

static void store_free(struct cv_store *st)
{
    cv_store_conninfo_free(&st->ci);
    if (st->url) {
        cv_wipe(st->url, strlen(st->url));
        free(st->url);
    }
    cv_secret_free(st->password);
    free(st);
}

cv_result cv_store_open(const struct cv_store_options *opt, struct cv_store **out)
{
    CV_ENSURE_REF(opt);
    CV_ENSURE_REF(out);
    *out = NULL;
    CV_ENSURE(opt->url && *opt->url, CV_ERR_INPUT, "no database URL is configured (CREDVAULT_DATABASE_URL)");
    struct cv_store *st = calloc(1, sizeof(*st));
    CV_ENSURE(st != NULL, CV_ERR_MEMORY, "out of memory");
    cv_result r;
    st->url = strdup(opt->url);
    st->metrics = opt->metrics;
    if (opt->password) st->password = cv_secret_strdup(opt->password);
    if (!st->url || (opt->password && !st->password)) {
        r = cv_fail(CV_ERR_MEMORY, "out of memory");
        goto out;
    }
    st->params = (struct cv_store_params){
        .url = st->url,
        .password = st->password,
        .connect_timeout_s = opt->connect_timeout_s,
        .statement_timeout_ms = opt->statement_timeout_ms ? opt->statement_timeout_ms : CV_STORE_STATEMENT_TIMEOUT_MS,
        .lock_timeout_ms = 0,
        .application_name = "credvault",
    };
    st->deadline_ms = st->params.statement_timeout_ms + CV_STORE_DEADLINE_GRACE_MS;
    CV_GUARD_OUT(r, cv_store_conninfo_init(&st->ci, &st->params));
    if (pthread_key_create(&st->key, thread_exit) != 0) {
        r = cv_fail(CV_ERR_MEMORY, "out of thread-local keys");
        goto out;
    }
    pthread_mutex_init(&st->lock, NULL);
    *out = st;
    st = NULL;
out:
    if (st) store_free(st);
    return r;
}

void cv_store_thread_done(struct cv_store *st)
{
    if (!st) return;
    struct cv_conn *c = pthread_getspecific(st->key);
    if (!c) return;
    pthread_setspecific(st->key, NULL);
    cv_conn_release(c);
}

void cv_store_close(struct cv_store *st)
{
    if (!st) return;
    cv_audit_batcher_stop(st);
    cv_store_thread_done(st);
    /* no destructor runs for this key after it is deleted */
    pthread_key_delete(st->key);
    while (st->conns) cv_conn_release(st->conns);
    pthread_mutex_destroy(&st->lock);
    store_free(st);
}
