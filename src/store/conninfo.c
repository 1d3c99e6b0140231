/* libpq connection keywords for one store. Order matters: libpq expands the
 * URL (expand_dbname) where dbname sits, so keywords before it are defaults
 * the URL may override and keywords after it always win. Never logs the URL;
 * libpq's own reasons are passed on only with the password cut out (a parse
 * message can quote the token it choked on, and that can be the password). */
#define _GNU_SOURCE /* memmem */
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

/* Replaces every occurrence of the n bytes at `secret` in `msg`. */
static void cut(char *msg, const char *secret, size_t n)
{
    static const char mask[] = "********";
    if (n == 0) return;
    char *from = msg, *hit;
    while ((hit = memmem(from, strlen(from), secret, n)) != NULL) {
        size_t rest = strlen(hit + n) + 1;
        size_t m = n < sizeof(mask) - 1 ? n : sizeof(mask) - 1; /* never longer: no overflow */
        memcpy(hit, mask, m);
        memmove(hit + m, hit + n, rest);
        from = hit + m; /* a secret of '*'s is not found again in the mask */
    }
}

/* The value of `key=` in a keyword string or a URI query, as written. */
static void cut_keyword(char *msg, const char *url, const char *key, const char *ends)
{
    size_t k = strlen(key);
    for (const char *p = strstr(url, key); p; p = strstr(p + 1, key)) {
        const char *v = p + k;
        while (*v == ' ' || *v == '\t') v++;
        if (*v != '=') continue;
        v++;
        while (*v == ' ' || *v == '\t') v++;
        if (*v == '\'') {
            const char *e = strchr(v + 1, '\'');
            cut(msg, v + 1, e ? (size_t)(e - v - 1) : strlen(v + 1));
        } else {
            cut(msg, v, strcspn(v, ends));
        }
    }
}

void cv_store_conninfo_reason(const char *url, const char *password, const char *libpq_message, char *out,
                              size_t n)
{
    if (n == 0) return;
    snprintf(out, n, "%s", libpq_message ? libpq_message : "");
    /* one line: libpq ends lines with \n and indents hints with \t */
    size_t len = 0;
    for (const char *c = out; *c; c++) {
        int space = *c == '\n' || *c == '\t' || *c == '\r' || *c == ' ';
        if (space && (len == 0 || out[len - 1] == ' ')) continue;
        out[len++] = space ? ' ' : *c;
    }
    while (len && out[len - 1] == ' ') len--;
    out[len] = '\0';
    if (password) cut(out, password, strlen(password));
    if (!url) return;
    /* URI user:password@ (libpq takes userinfo up to the first '@' before any '/') */
    const char *sep = strstr(url, "://");
    if (sep) {
        const char *auth = sep + 3;
        size_t span = strcspn(auth, "@/");
        if (auth[span] == '@') {
            const char *colon = memchr(auth, ':', span);
            if (colon) cut(out, colon + 1, span - (size_t)(colon + 1 - auth));
        }
        cut_keyword(out, url, "password", "&");
    } else {
        cut_keyword(out, url, "password", " \t\n");
    }
    /* "missing "=" after "X"": X is whatever word stood there, maybe a bare password */
    const char *m = strstr(out, "missing \"=\" after \"");
    if (m) {
        char *w = (char *)m + strlen("missing \"=\" after \"");
        char *e = strchr(w, '"');
        size_t wl = e ? (size_t)(e - w) : 0;
        int option_like = wl > 0 && wl <= 32;
        for (size_t i = 0; i < wl && option_like; i++) option_like = (w[i] >= 'a' && w[i] <= 'z') || w[i] == '_';
        if (wl && !option_like) cut(out, w, wl);
    }
}

/* The URL's own `options` (startup -c settings), or NULL. */
static cv_result url_options(const char *url, char **out)
{
    *out = NULL;
    char *err = NULL;
    PQconninfoOption *opts = PQconninfoParse(url, &err);
    if (!opts) {
        char why[256];
        cv_store_conninfo_reason(url, NULL, err ? err : "", why, sizeof(why));
        if (err) PQfreemem(err);
        CV_BAIL(CV_ERR_INPUT, "the database URL is not a valid libpq connection string or URI: %s",
                why[0] ? why : "libpq gave no reason");
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
