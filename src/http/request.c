/* What a handler may read from its request: method, path, headers, decoded
 * query and path parameters, client address, request id and body. Query
 * values are decoded here because the server hands libmicrohttpd an identity
 * unescaper (see server.c); they are copied, bounded, and freed at the end. */
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

const char *cv_http_method(const struct cv_http_request *req) { return req->method; }
const char *cv_http_path(const struct cv_http_request *req) { return req->raw_path; }
const char *cv_http_route_pattern(const struct cv_http_request *req) { return req->route ? req->route->pattern : NULL; }
const char *cv_http_client_addr(const struct cv_http_request *req) { return req->client_addr; }
const char *cv_http_request_id(const struct cv_http_request *req) { return req->request_id; }
const struct cv_buf *cv_http_body(const struct cv_http_request *req) { return &req->body; }

void cv_http_log_tenant(struct cv_http_request *req, const char *tenant)
{
    snprintf(req->log_tenant, sizeof(req->log_tenant), "%s", tenant ? tenant : "");
}

const char *cv_http_header(const struct cv_http_request *req, const char *name)
{
    if (!req->conn || !name) return NULL;
    return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

const char *cv_http_param(const struct cv_http_request *req, const char *name)
{
    if (!name) return NULL;
    if (name[0] == ':') name++;
    size_t n = strlen(name);
    for (size_t i = 0; i < req->params.n; i++)
        if (req->params.name_len[i] == n && memcmp(req->params.name[i], name, n) == 0) return req->params.value[i];
    return NULL;
}

const char *cv_http_query(const struct cv_http_request *req, const char *name)
{
    if (!name) return NULL;
    for (size_t i = 0; i < req->nquery; i++)
        if (strcmp(req->query[i].name, name) == 0) return req->query[i].value;
    return NULL;
}

static char *decode_dup(const char *s, cv_result *r)
{
    size_t n = strlen(s), out_n;
    char *d = malloc(n + 1);
    if (!d) {
        *r = cv_fail(CV_ERR_MEMORY, "out of memory");
        return NULL;
    }
    *r = cv_http_percent_decode(s, n, d, &out_n);
    if (cv_failed(*r)) {
        free(d);
        return NULL;
    }
    return d;
}

struct query_walk {
    struct cv_http_request *req;
    cv_result r;
};

static enum MHD_Result collect_query(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    (void)kind;
    struct query_walk *w = cls;
    struct cv_http_request *req = w->req;
    if (req->nquery >= CV_HTTP_MAX_QUERY_PARAMS) {
        w->r = cv_fail(CV_ERR_INPUT, "more than %d query parameters", CV_HTTP_MAX_QUERY_PARAMS);
        return MHD_NO;
    }
    char *k = decode_dup(key ? key : "", &w->r);
    if (!k) return MHD_NO;
    char *v = decode_dup(value ? value : "", &w->r);
    if (!v) {
        free(k);
        return MHD_NO;
    }
    req->query[req->nquery].name = k;
    req->query[req->nquery].value = v;
    req->nquery++;
    return MHD_YES;
}

cv_result cv_http_request_load_query(struct cv_http_request *req)
{
    struct query_walk w = {req, CV_OK};
    MHD_get_connection_values(req->conn, MHD_GET_ARGUMENT_KIND, collect_query, &w);
    return w.r;
}

void cv_http_request_clear(struct cv_http_request *req)
{
    for (size_t i = 0; i < req->nquery; i++) {
        free(req->query[i].name);
        free(req->query[i].value);
    }
    req->nquery = 0;
    cv_buf_free(&req->body);
}
