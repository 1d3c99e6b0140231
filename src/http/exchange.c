/* One request's life on a libmicrohttpd worker thread: context on the first
 * callback, the body gathered into secret memory under max_body_bytes, routing
 * and the handler once the body is complete, the response with the common
 * headers, then the access log line and a wiping free. Never logs a query
 * value, a header value or a body byte. */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

#include "credvault/log.h"
#include "credvault/metrics.h"
#include "exchange.h"

/* Sent when the response the handler built cannot be: a 500 that allocates nothing. */
static const char fallback_body[] =
    "{\"success\":false,\"error\":{\"code\":\"internal_error\",\"message\":\"internal error\"}}";

struct exchange {
    struct cv_http_server *srv;
    struct cv_http_request req;
    struct cv_http_response res;
    struct timespec started;
    uint64_t received;       /* body bytes seen, kept or not */
    bool too_large;          /* over max_body_bytes: the rest is read and dropped */
    bool method_too_long;
    bool queued;
    unsigned status_sent;
};

static void request_id_new(char *out)
{
    uint8_t r[CV_HTTP_REQUEST_ID_BYTES];
    size_t got = 0;
    while (got < sizeof(r)) {
        ssize_t n = getrandom(r + got, sizeof(r) - got, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        got += (size_t)n;
    }
    if (got < sizeof(r)) {
        /* an id only correlates log lines: unique is enough when the kernel refuses */
        static _Atomic uint64_t counter;
        uint64_t v[2] = {atomic_fetch_add(&counter, 1), (uint64_t)time(NULL)};
        _Static_assert(sizeof(v) == sizeof(r), "the fallback fills the id exactly");
        memcpy(r, v, sizeof(r));
    }
    cv_hex_encode(r, sizeof(r), out);
}

static struct exchange *exchange_new(struct cv_http_server *srv, struct MHD_Connection *conn, const char *url,
                                     const char *method)
{
    struct exchange *ex = calloc(1, sizeof(*ex));
    if (!ex) return NULL;
    ex->srv = srv;
    clock_gettime(CLOCK_MONOTONIC, &ex->started);
    struct cv_http_request *req = &ex->req;
    req->conn = conn;
    size_t m = strlen(method);
    ex->method_too_long = m >= sizeof(req->method);
    snprintf(req->method, sizeof(req->method), "%s", method);
    size_t u = strlen(url);
    req->path_too_long = u >= sizeof(req->raw_path);
    memcpy(req->raw_path, url, req->path_too_long ? sizeof(req->raw_path) - 1 : u);
    request_id_new(req->request_id);
    cv_http_client_address(&srv->proxies, conn, req->client_addr, sizeof(req->client_addr));
    cv_buf_init_secret(&req->body, srv->max_body_bytes);
    ex->res.request_id = req->request_id;
    atomic_fetch_add(&srv->in_flight, 1);
    return ex;
}

/* Content-Length is already checked for syntax by libmicrohttpd. Returns how
 * far the declared length is over the limit (0: within it, or undeclared). */
static uintmax_t declared_excess(struct exchange *ex)
{
    const char *cl = MHD_lookup_connection_value(ex->req.conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (!cl) return 0;
    errno = 0;
    char *end;
    uintmax_t v = strtoumax(cl, &end, 10);
    if (errno == ERANGE) return UINTMAX_MAX;
    return v > ex->srv->max_body_bytes ? v - ex->srv->max_body_bytes : 0;
}

struct framing {
    unsigned content_length, transfer_encoding;
};

static enum MHD_Result count_framing(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    (void)kind;
    (void)value;
    struct framing *f = cls;
    if (strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH) == 0) f->content_length++;
    if (strcasecmp(key, MHD_HTTP_HEADER_TRANSFER_ENCODING) == 0) f->transfer_encoding++;
    return MHD_YES;
}

/* RFC 9112 §6.3: two Content-Length headers, or one beside Transfer-Encoding,
 * leave the body's end to interpretation — the request-smuggling shape, where
 * a proxy in front reads one request and this server another. libmicrohttpd
 * 0.9.75 takes one of them; this server takes neither. */
static bool framing_ambiguous(struct MHD_Connection *conn)
{
    struct framing f = {0, 0};
    MHD_get_connection_values(conn, MHD_HEADER_KIND, count_framing, &f);
    return f.content_length > 1 || f.transfer_encoding > 1 || (f.content_length && f.transfer_encoding);
}

static void reply_too_large(struct exchange *ex)
{
    cv_result r = cv_fail_code(CV_ERR_TOO_LARGE, "payload_too_large", "the request body is larger than %zu bytes",
                               ex->srv->max_body_bytes);
    cv_http_reply_error(&ex->res, r);
}

/* Decides the response for a complete request: framework refusals first, then
 * the route's handler. */
static void route_and_handle(struct exchange *ex)
{
    struct cv_http_request *req = &ex->req;
    struct cv_http_response *res = &ex->res;
    struct cv_http_server *srv = ex->srv;
    cv_error_clear();
    if (ex->too_large) {
        reply_too_large(ex);
        return;
    }
    if (req->path_too_long) {
        cv_http_reply_status_error(res, 414, "uri_too_long", "the request URI is too long");
        return;
    }
    if (ex->method_too_long) {
        cv_http_reply_status_error(res, 501, "not_implemented", "unknown method");
        return;
    }
    cv_result r = cv_http_path_parse(req->raw_path, &req->path);
    if (r.err == CV_ERR_TOO_LARGE) {
        cv_http_reply_status_error(res, 414, "uri_too_long", cv_error_message());
        return;
    }
    if (cv_failed(r)) {
        cv_http_reply_error(res, r);
        return;
    }
    char allow[128];
    enum cv_http_lookup found = cv_http_route_find(srv->routes, srv->nroutes, req->method, &req->path, &req->route,
                                                   &req->params, allow, sizeof(allow));
    if (found == CV_HTTP_ROUTE_NO_PATH) {
        cv_http_reply_error(res, cv_fail_code(CV_ERR_NOT_FOUND, "not_found", "no such resource"));
        return;
    }
    if (found == CV_HTTP_ROUTE_NO_METHOD) {
        cv_http_reply_status_error(res, 405, "method_not_allowed", "the resource does not accept this method");
        cv_http_header_add(res, "Allow", allow);
        return;
    }
    r = cv_http_request_load_query(req);
    if (cv_failed(r)) {
        cv_http_reply_error(res, r);
        return;
    }
    if (!req->route->handler) {
        cv_http_reply_error(res, cv_fail(CV_ERR_INTERNAL, "route %s %s has no handler", req->route->method,
                                         req->route->pattern));
        return;
    }
    req->route->handler(srv->app, req, res);
    if (res->status == 0 && !res->broken)
        cv_http_reply_error(res, cv_fail(CV_ERR_INTERNAL, "handler for %s %s sent no reply", req->route->method,
                                         req->route->pattern));
}

static bool has_header(const struct cv_http_response *res, const char *name)
{
    for (size_t i = 0; i < res->nheaders; i++)
        if (strcasecmp(res->headers[i].name, name) == 0) return true;
    return false;
}

static enum MHD_Result queue_response(struct exchange *ex)
{
    struct cv_http_response *res = &ex->res;
    bool fallback = res->broken || res->status == 0 || !res->body;
    unsigned status = fallback ? 500 : res->status;
    struct MHD_Response *r;
    if (fallback) {
        r = MHD_create_response_from_buffer(sizeof(fallback_body) - 1, (void *)fallback_body,
                                            MHD_RESPMEM_PERSISTENT);
    } else {
        r = MHD_create_response_from_buffer_with_free_callback_cls(res->body->len, res->body->data,
                                                                    cv_http_payload_free, res->body);
        if (r) res->body = NULL; /* libmicrohttpd frees (and wipes) it now */
    }
    if (!r) return MHD_NO;
    bool ok = MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
                                      fallback ? "application/json" : res->content_type) == MHD_YES;
    ok = ok && MHD_add_response_header(r, "X-Request-Id", ex->req.request_id) == MHD_YES;
    ok = ok && MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store") == MHD_YES;
    ok = ok && MHD_add_response_header(r, "X-Content-Type-Options", "nosniff") == MHD_YES;
    for (size_t i = 0; ok && !fallback && i < res->nheaders; i++)
        ok = MHD_add_response_header(r, res->headers[i].name, res->headers[i].value) == MHD_YES;
    /* RFC 6750 §3: a 401 names the scheme it wants */
    if (ok && status == 401 && (fallback || !has_header(res, "WWW-Authenticate")))
        ok = MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer realm=\"credvault\"") == MHD_YES;
    /* every 503 says when to come back: the breakers probe once a second */
    if (ok && status == 503 && (fallback || !has_header(res, "Retry-After")))
        ok = MHD_add_response_header(r, MHD_HTTP_HEADER_RETRY_AFTER, CV_HTTP_RETRY_AFTER_S) == MHD_YES;
    if (ok && atomic_load(&ex->srv->stopping))
        ok = MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close") == MHD_YES;
    enum MHD_Result q = ok ? MHD_queue_response(ex->req.conn, status, r) : MHD_NO;
    MHD_destroy_response(r);
    ex->queued = true;
    ex->status_sent = status;
    return q;
}

/* libmicrohttpd 0.9.75 answers "Connection: close" to a response queued on the
 * first call for a request, so the first call only sets up the context and the
 * response is queued on a later one. The exception is a Content-Length more
 * than CV_HTTP_DISCARD_MAX_BYTES over the limit: refused before the body is
 * read, and that connection closes anyway. */
enum MHD_Result cv_http_on_access(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    (void)version;
    struct cv_http_server *srv = cls;
    struct exchange *ex = *con_cls;
    if (!ex) {
        ex = exchange_new(srv, conn, url, method);
        if (!ex) return MHD_NO;
        *con_cls = ex;
        if (framing_ambiguous(conn)) {
            /* answered before any body byte is read; the connection closes,
             * since where this request ends is exactly what is unclear */
            cv_http_deadline_request_whole(conn);
            ex->too_large = true; /* the body is never kept */
            cv_buf_free(&ex->req.body);
            cv_http_reply_status_error(&ex->res, 400, "ambiguous_framing",
                                       "the request has two Content-Length headers, or Content-Length together "
                                       "with Transfer-Encoding; send exactly one");
            return queue_response(ex);
        }
        uintmax_t excess = declared_excess(ex);
        if (excess == 0) return MHD_YES;
        ex->too_large = true;
        cv_buf_free(&ex->req.body);
        /* A modest excess is read and dropped, so a client still sending gets
         * the 413 instead of a reset; a large one is refused at once. */
        if (excess <= CV_HTTP_DISCARD_MAX_BYTES) return MHD_YES;
        cv_error_clear();
        cv_http_deadline_request_whole(conn); /* answered now: no longer timed */
        reply_too_large(ex);
        return queue_response(ex);
    }
    if (ex->queued) {
        *upload_data_size = 0;
        return MHD_YES;
    }
    size_t n = *upload_data_size;
    if (n) {
        *upload_data_size = 0;
        ex->received += n;
        if (!ex->too_large && ex->received > srv->max_body_bytes) {
            ex->too_large = true;
            cv_buf_free(&ex->req.body); /* wipes what was gathered */
        }
        if (!ex->too_large && cv_failed(cv_buf_append(&ex->req.body, upload_data, n))) return MHD_NO;
        /* a client streaming far past the limit is cut off rather than read forever */
        if (ex->too_large && ex->received > srv->max_body_bytes &&
            ex->received - srv->max_body_bytes > CV_HTTP_DISCARD_MAX_BYTES) {
            cv_log(CV_LOG_WARN, "http_body_dropped", "request_id", ex->req.request_id, "client",
                   ex->req.client_addr, NULL);
            return MHD_NO;
        }
        return MHD_YES;
    }
    cv_http_deadline_request_whole(conn); /* the handler's time is not the client's */
    route_and_handle(ex);
    return queue_response(ex);
}

static const char *method_label(const char *m)
{
    static const char *const known[] = {"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"};
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
        if (strcmp(m, known[i]) == 0) return known[i];
    return "other"; /* a client picks the method: never a label of its choosing */
}

static const char *termination_name(enum MHD_RequestTerminationCode toe)
{
    switch (toe) {
    case MHD_REQUEST_TERMINATED_COMPLETED_OK: return "ok";
    case MHD_REQUEST_TERMINATED_WITH_ERROR: return "error";
    case MHD_REQUEST_TERMINATED_TIMEOUT_REACHED: return "timeout";
    case MHD_REQUEST_TERMINATED_DAEMON_SHUTDOWN: return "shutdown";
    case MHD_REQUEST_TERMINATED_READ_ERROR: return "read_error";
    case MHD_REQUEST_TERMINATED_CLIENT_ABORT: return "client_abort";
    }
    return "unknown";
}

void cv_http_on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                          enum MHD_RequestTerminationCode toe)
{
    struct cv_http_server *srv = cls;
    cv_http_deadline_request_done(conn);
    struct exchange *ex = *con_cls;
    if (!ex) return;
    *con_cls = NULL;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    double ms = (double)(now.tv_sec - ex->started.tv_sec) * 1e3 + (double)(now.tv_nsec - ex->started.tv_nsec) / 1e6;
    char duration[32], status[8], path[160];
    snprintf(duration, sizeof(duration), "%.3f", ms);
    snprintf(status, sizeof(status), "%u", ex->status_sent);
    snprintf(path, sizeof(path), "%.150s", ex->req.raw_path);
    const char *pattern = ex->req.route ? ex->req.route->pattern : "-";
    cv_log(toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? CV_LOG_INFO : CV_LOG_WARN, "http_request", "method",
           ex->req.method, "path", path, "route", pattern, "tenant", ex->req.log_tenant[0] ? ex->req.log_tenant : "-",
           "status", status, "duration_ms", duration, "request_id", ex->req.request_id, "client", ex->req.client_addr,
           "outcome", termination_name(toe), NULL);
    /* labels are bounded: route patterns, a known method or "other", status codes */
    cv_metric_inc_l(ex->srv->metrics, CV_M_HTTP_REQUESTS, method_label(ex->req.method), pattern, status);
    cv_metrics_worker_request(ex->srv->metrics);
    cv_metric_observe(ex->srv->metrics, CV_M_HTTP_DURATION, pattern, ms / 1e3);
    cv_http_request_clear(&ex->req);
    cv_http_response_clear(&ex->res);
    cv_wipe(ex, sizeof(*ex));
    free(ex);
    atomic_fetch_sub(&srv->in_flight, 1);
}
