/* libpq connection keywords for one store. Order matters: libpq expands the
 * URL (expand_dbname) where dbname sits, so keywords before it are defaults
 * the URL may override and keywords after it always win. Never logs the URL
 * or libpq's parse message: either can quote a password. */
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/internal.h"

static void put(struct cv_conninfo *ci, const char *k, const char *v)
{
    ci->keys[ci->n] = k;
    ci->vals[ci->n] = v;
    ci->n++;
    ci->keys[ci->n] = NULL;
    ci->vals[ci->n] = NULL;
}

/* The URL's own `options` (startup -c settings), or NULL. */
static cv_result url_options(const char *url, char **out)
{
    *out = NULL;
    char *err = NULL;
    PQconninfoOption *opts = PQconninfoParse(url, &err);
    if (!opts) {
        if (err) PQfreemem(err);
        CV_BAIL(CV_ERR_INPUT, "the database URL is not a valid libpq connection string or URI");
    }
    cv_result r = CV_OK;
    for (PQconninfoOption *o = opts; o->keyword; o++) {
        if (strcmp(o->keyword, "options") == 0 && o->val && *o->val) {
            *out = strdup(o->val);
            if (!*out) r = cv_fail(CV_ERR_MEMORY, "out of memory");
            break;
        }
    }
    PQconninfoFree(opts);
    return r;
}

static cv_result build_options(struct cv_conninfo *ci, const struct cv_store_params *p)
{
    char *base = NULL;
    CV_GUARD(url_options(p->url, &base));
    char ours[96] = "";
    size_t used = 0;
    if (p->statement_timeout_ms)
        used += (size_t)snprintf(ours + used, sizeof(ours) - used, "-c statement_timeout=%u", p->statement_timeout_ms);
    if (p->lock_timeout_ms)
        snprintf(ours + used, sizeof(ours) - used, "%s-c lock_timeout=%u", used ? " " : "", p->lock_timeout_ms);
    if (!base && ours[0] == '\0') return CV_OK;
    size_t n = (base ? strlen(base) : 0) + strlen(ours) + 2;
    ci->options = malloc(n);
    if (!ci->options) {
        free(base);
        CV_BAIL(CV_ERR_MEMORY, "out of memory");
    }
    /* later -c settings win, so ours come after the URL's */
    snprintf(ci->options, n, "%s%s%s", base ? base : "", base && ours[0] ? " " : "", ours);
    free(base);
    put(ci, "options", ci->options);
    return CV_OK;
}

cv_result cv_store_conninfo_init(struct cv_conninfo *ci, const struct cv_store_params *p)
{
    memset(ci, 0, sizeof(*ci));
    CV_ENSURE(p->url && *p->url, CV_ERR_INPUT, "no database URL is configured (CREDVAULT_DATABASE_URL)");
    CV_ENSURE(strlen(p->url) <= CV_STORE_URL_MAX_BYTES, CV_ERR_INPUT, "the database URL is longer than %d bytes",
              CV_STORE_URL_MAX_BYTES);

    /* defaults: the URL may override any of them */
    put(ci, "application_name", p->application_name ? p->application_name : "credvault");
    put(ci, "client_encoding", "UTF8");
    /* a dead peer must not hang a worker: TCP keepalives and a send timeout
     * (Unix sockets ignore these) */
    put(ci, "keepalives", "1");
    put(ci, "keepalives_idle", "30");
    put(ci, "keepalives_interval", "10");
    put(ci, "keepalives_count", "3");
    put(ci, "tcp_user_timeout", "10000");
    unsigned ct = p->connect_timeout_s ? p->connect_timeout_s : CV_STORE_CONNECT_TIMEOUT_S;
    snprintf(ci->connect_timeout, sizeof(ci->connect_timeout), "%u", ct);
    if (!p->connect_timeout_s) put(ci, "connect_timeout", ci->connect_timeout);

    put(ci, "dbname", p->url);

    /* these win over the URL */
    cv_result r = build_options(ci, p);
    if (cv_failed(r)) {
        cv_store_conninfo_free(ci);
        return r;
    }
    if (p->connect_timeout_s) put(ci, "connect_timeout", ci->connect_timeout);
    if (p->password) put(ci, "password", p->password);
    return CV_OK;
}

void cv_store_conninfo_free(struct cv_conninfo *ci)
{
    free(ci->options);
    memset(ci, 0, sizeof(*ci));
}

const char *cv_store_conninfo_get(const struct cv_conninfo *ci, const char *key)
{
    const char *v = NULL;
    for (size_t i = 0; i < ci->n; i++)
        if (strcmp(ci->keys[i], key) == 0) v = ci->vals[i];
    return v;
}
