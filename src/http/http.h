/* The HTTP framework that routes are written against: requests, responses,
 * the JSON envelope of DESIGN.md §6, and the server's life. Nothing here names
 * a libmicrohttpd type; <microhttpd.h> stays inside the files of src/http.
 * Every response carries Content-Type, X-Request-Id, Cache-Control: no-store
 * and X-Content-Type-Options: nosniff; error statuses come from one table. */
#ifndef CREDVAULT_HTTP_H
#define CREDVAULT_HTTP_H

#include <jansson.h>
#include <stddef.h>

#include "credvault/buf.h"
#include "credvault/config.h"
#include "credvault/result.h"

/* Fixed framework limits (the configurable ones are in struct cv_http_server_options). */
#define CV_HTTP_PATH_MAX_BYTES 1024         /* longer: 414 uri_too_long */
#define CV_HTTP_SEGMENT_MAX_BYTES 256       /* one decoded path segment; longer: 414 */
#define CV_HTTP_MAX_SEGMENTS 16             /* more: 400 */
#define CV_HTTP_MAX_PARAMS 8                /* ":name" segments in one pattern */
#define CV_HTTP_MAX_QUERY_PARAMS 32         /* more: 400 */
#define CV_HTTP_RETRY_AFTER_S "1"            /* Retry-After of a 503 that names none */
#define CV_HTTP_MAX_RESPONSE_HEADERS 16     /* cv_http_header_add beyond this: 500 */
#define CV_HTTP_CONNECTION_MEMORY_BYTES (32 * 1024) /* per connection: request line + headers */
#define CV_HTTP_DISCARD_MAX_BYTES (1024 * 1024) /* read past the body limit before dropping */
#define CV_HTTP_DRAIN_TIMEOUT_MS 10000      /* cv_http_server_stop waits this long for requests */
#define CV_HTTP_REQUEST_ID_BYTES 16         /* random; 32 hex characters */

/* ---- requests (valid only while the handler runs) ---- */

struct cv_http_request;

const char *cv_http_method(const struct cv_http_request *req);
/* The path as sent (still percent-encoded, without the query string). */
const char *cv_http_path(const struct cv_http_request *req);
/* The matched route's pattern, e.g. "/api/mcp/servers/:serverId/credentials". */
const char *cv_http_route_pattern(const struct cv_http_request *req);
/* A request header by case-insensitive name; NULL if absent. */
const char *cv_http_header(const struct cv_http_request *req, const char *name);
/* A query parameter, percent-decoded; NULL if absent. The first wins if repeated. */
const char *cv_http_query(const struct cv_http_request *req, const char *name);
/* A path parameter, percent-decoded: "serverId" (or ":serverId") of the pattern. */
const char *cv_http_param(const struct cv_http_request *req, const char *name);
/* The peer's address as text ("127.0.0.1", "::1"). */
const char *cv_http_client_addr(const struct cv_http_request *req);
/* Random per request; also sent as the X-Request-Id response header. */
const char *cv_http_request_id(const struct cv_http_request *req);
/* Names the tenant in the request's access log line (once the token says
 * which); at most CV_HTTP_LOG_TENANT_MAX_BYTES, longer is cut. */
#define CV_HTTP_LOG_TENANT_MAX_BYTES 64
void cv_http_log_tenant(struct cv_http_request *req, const char *tenant);
/* The raw body, at most max_body_bytes; in secret memory, wiped when the request ends. */
const struct cv_buf *cv_http_body(const struct cv_http_request *req);
/* Parses the body as one JSON object. CV_ERR_MEDIA ("unsupported_media_type") unless
 * Content-Type is application/json; CV_ERR_INPUT with code "invalid_json" when it is
 * empty, malformed, has a duplicate key, trailing data or is not an object. The
 * messages never quote the body. The caller owns *out (json_decref). */
CV_RESULT cv_http_json_body(struct cv_http_request *req, json_t **out);

/* ---- responses ---- */

struct cv_http_response;

/* 200-style success: {"success":true,"data":data}. `data` is stolen; NULL sends null. */
void cv_http_reply(struct cv_http_response *res, unsigned status, json_t *data);
/* A list: {"success":true,"data":[…],"meta":{…}}, so a client reads `data` as the
 * array itself and paging beside it. Both are stolen. */
void cv_http_reply_list(struct cv_http_response *res, unsigned status, json_t *items, json_t *meta);
/* Failure: {"success":false,"error":{"code":…,"message":…}}, status from the one table
 * (cv_http_status_for). Code and message are the thread's last error (cv_fail); for
 * INTERNAL, MEMORY and CRYPTO the client gets a fixed message and the detail is logged. */
void cv_http_reply_error(struct cv_http_response *res, cv_result r);
/* A non-JSON body (e.g. "text/plain; version=0.0.4" for /metrics). Copied. */
void cv_http_reply_text(struct cv_http_response *res, unsigned status, const char *content_type,
                        const char *text, size_t len);
/* An extra response header. Names the framework sets (Content-Type, Content-Length,
 * Connection, Transfer-Encoding, X-Request-Id) and values with CR or LF are refused:
 * the response becomes a 500, as when more than CV_HTTP_MAX_RESPONSE_HEADERS are added. */
void cv_http_header_add(struct cv_http_response *res, const char *name, const char *value);

/* The one table: error category -> HTTP status. CV_ERR_NONE (a bug) is 500. */
unsigned cv_http_status_for(cv_err err);

/* ---- routes and the server ---- */

/* Runs on a libmicrohttpd worker thread once the whole body has arrived. It must
 * call one of the reply functions; a handler that does not gets a 500. */
typedef void (*cv_http_handler)(void *app, struct cv_http_request *req, struct cv_http_response *res);

/* `pattern` is a path whose segments are literals or ":name" (a path parameter).
 * The first route in table order whose method and pattern match wins; HEAD also
 * matches GET routes. A path some route matches with another method gets 405. */
struct cv_http_route {
    const char *method;
    const char *pattern;
    cv_http_handler handler;
};

struct cv_http_server_options {
    const char *listen;              /* "127.0.0.1:8443", "[::1]:8443"; port 0 picks a free one */
    int tls;                         /* 0 = plain HTTP, allowed on loopback addresses only */
    const char *tls_cert_file;       /* PEM chain */
    const char *tls_key_file;        /* PEM private key, unencrypted */
    unsigned threads;                /* worker threads (libmicrohttpd thread pool) */
    size_t max_body_bytes;
    unsigned max_connections;
    unsigned max_connections_per_ip;
    unsigned connection_timeout_s;   /* idle keep-alive and slow clients */
    unsigned request_deadline_ms;    /* a whole request, however steadily it trickles; 0 = 10000 */
    const char *trusted_proxies;     /* addresses believed about X-Forwarded-For, or NULL */
    struct cv_metrics *metrics;      /* where requests are counted, or NULL */
    int shared_listen;               /* 1: serve on listen_fd (cv_http_listen_shared), bind nothing */
    int listen_fd;
    const struct cv_buf *tls_cert_pem; /* read already (cv_http_tls_read): used instead of the files */
    const struct cv_buf *tls_key_pem;
};

/* The rate-limit buckets of CREDVAULT_RATE_* in an anonymous MAP_SHARED
 * mapping, made by the supervisor before it forks (src/http/ratelimit.c);
 * free drops only the calling process's view. */
struct cv_ratelimit;
CV_RESULT cv_http_limits_new_shared(const struct cv_config *cfg, struct cv_ratelimit **out);
void cv_http_limits_free(struct cv_ratelimit *rl);

/* Reads the certificate chain and key files into memory (the key into
 * secret memory), so a supervisor that gave up root can still start a worker
 * whose key file only root may read. */
CV_RESULT cv_http_tls_read(const char *cert_file, const char *key_file, struct cv_buf *cert, struct cv_buf *key);

/* Worker processes (CREDVAULT_WORKERS > 1) serve one port, each on its own
 * SO_REUSEPORT socket. The probe binds `listen` once without SO_REUSEPORT,
 * so an address another process holds fails here with the usual diagnosis
 * (who holds it) instead of silently joining its group, and resolves port
 * 0 to the port every worker then binds. cv_http_listen_shared makes one
 * listening SO_REUSEPORT socket on that port (close-on-exec). */
CV_RESULT cv_http_listen_probe(const char *listen, unsigned *port);
CV_RESULT cv_http_listen_shared(const char *listen, unsigned port, int *fd);
/* A worker starts listening on its slot's socket; when it dies the
 * supervisor stops that socket listening (connections queued on it are
 * reset, new ones go to the other workers) and keeps it bound for the
 * replacement, so no privilege is needed to bind again. */
CV_RESULT cv_http_listen_resume(int fd);
void cv_http_listen_pause(int fd);

/* Copies the CREDVAULT_LISTEN, _TLS*, _THREADS, _MAX_* and _CONNECTION_TIMEOUT_S
 * settings; the strings stay owned by `cfg`. */
void cv_http_server_options_from_config(const struct cv_config *cfg, struct cv_http_server_options *out);

struct cv_http_server;

/* Binds and starts serving. `routes` and `app` must outlive the server.
 * Refuses plain HTTP on a non-loopback address, a missing or unreadable certificate
 * or key, and a route table with a malformed pattern. Requires core's JSON
 * allocator (cv_json_alloc_install, credvault/json_alloc.h) to be installed. */
CV_RESULT cv_http_server_start(const struct cv_http_server_options *opts, const struct cv_http_route *routes,
                               size_t nroutes, void *app, struct cv_http_server **out);
/* The bound port (useful with port 0). */
unsigned cv_http_server_port(const struct cv_http_server *srv);
/* Stops accepting, lets in-flight requests finish (at most CV_HTTP_DRAIN_TIMEOUT_MS),
 * closes every connection and frees the server. NULL is a no-op. */
void cv_http_server_stop(struct cv_http_server *srv);

/* The run-time versions of libmicrohttpd and of the GnuTLS it serves TLS
 * with, for `credvault version` and the build-info metric. */
const char *cv_http_mhd_version(void);
const char *cv_http_gnutls_version(void);

#endif
