/* Shared inside src/http only: the request, response and exchange structures,
 * and the pure helpers (status table, path decoding, route matching, listen
 * address parsing) that the unit tests exercise without a socket. Names no
 * libmicrohttpd type except as an opaque pointer. */
#ifndef CREDVAULT_HTTP_INTERNAL_H
#define CREDVAULT_HTTP_INTERNAL_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>

#include "http.h"

struct MHD_Connection;

/* ---- status table (status.c) ---- */

/* Default client message for a category, used when the failure left none. */
const char *cv_http_status_default_message(cv_err err);
/* Categories whose detail is logged and replaced by the default message. */
bool cv_http_status_hides_detail(cv_err err);

/* ---- paths (path.c) ---- */

/* A request path split at '/' and percent-decoded segment by segment, so an
 * encoded "%2F" stays inside its segment. */
struct cv_http_path {
    size_t n;
    const char *seg[CV_HTTP_MAX_SEGMENTS];
    char storage[CV_HTTP_PATH_MAX_BYTES + CV_HTTP_MAX_SEGMENTS + 1];
};

/* Decodes %HH escapes of in[0..n) into out (room for n + 1), NUL-terminated.
 * Refuses a malformed escape, a decoded NUL and control characters. */
CV_RESULT cv_http_percent_decode(const char *in, size_t n, char *out, size_t *out_len);
/* "/a/b%20c" -> {"a", "b c"}. CV_ERR_INPUT for a path not starting with '/',
 * bad escapes, more than CV_HTTP_MAX_SEGMENTS segments; CV_ERR_TOO_LARGE for a
 * path over CV_HTTP_PATH_MAX_BYTES or a segment over CV_HTTP_SEGMENT_MAX_BYTES. */
CV_RESULT cv_http_path_parse(const char *raw, struct cv_http_path *out);

/* ---- routes (route.c) ---- */

struct cv_http_params {
    size_t n;
    const char *name[CV_HTTP_MAX_PARAMS]; /* into the pattern, after ':' */
    size_t name_len[CV_HTTP_MAX_PARAMS];
    const char *value[CV_HTTP_MAX_PARAMS]; /* into the cv_http_path */
};

/* Checks a route table once, at start: methods are tokens, patterns start with
 * '/', have no empty segment, at most CV_HTTP_MAX_SEGMENTS segments and
 * CV_HTTP_MAX_PARAMS named ones. */
CV_RESULT cv_http_routes_check(const struct cv_http_route *routes, size_t n);
/* True when the pattern matches the path; fills params. */
bool cv_http_pattern_match(const char *pattern, const struct cv_http_path *path, struct cv_http_params *params);

enum cv_http_lookup { CV_HTTP_ROUTE_FOUND, CV_HTTP_ROUTE_NO_PATH, CV_HTTP_ROUTE_NO_METHOD };
/* Finds the route for method and path. On NO_METHOD, `allow` (if not NULL) gets
 * the comma-separated methods that path accepts. */
enum cv_http_lookup cv_http_route_find(const struct cv_http_route *routes, size_t n, const char *method,
                                       const struct cv_http_path *path, const struct cv_http_route **route,
                                       struct cv_http_params *params, char *allow, size_t allow_len);

/* ---- listen address (listen.c) ---- */

struct cv_http_listen_addr {
    struct sockaddr_storage ss;
    socklen_t len;
    int family; /* AF_INET or AF_INET6 */
    uint16_t port;
};

/* "127.0.0.1:8443", "0.0.0.0:443", "[::1]:8443", "[::]:443". Literal addresses only. */
CV_RESULT cv_http_listen_parse(const char *text, struct cv_http_listen_addr *out);
/* 127.0.0.0/8, ::1, and ::ffff:127.0.0.0/104. */
bool cv_http_listen_is_loopback(const struct cv_http_listen_addr *addr);
/* After the daemon failed to start on `la`: what to fix, into out. */
void cv_http_listen_why(const struct cv_http_listen_addr *la, const char *listen, char *out, size_t n);

/* ---- the request and response behind the opaque types ---- */

struct cv_http_query_param {
    char *name;
    char *value;
};

struct cv_http_request {
    struct MHD_Connection *conn;  /* valid while the exchange is alive */
    char method[16];
    char raw_path[CV_HTTP_PATH_MAX_BYTES + 1];
    bool path_too_long;
    struct cv_http_path path;
    const struct cv_http_route *route;
    struct cv_http_params params;
    size_t nquery;
    struct cv_http_query_param query[CV_HTTP_MAX_QUERY_PARAMS];
    struct cv_buf body;           /* secret: may hold plaintext credentials */
    char request_id[2 * CV_HTTP_REQUEST_ID_BYTES + 1];
    char client_addr[64];
    char log_tenant[CV_HTTP_LOG_TENANT_MAX_BYTES + 1]; /* "" until a route names it */
};

struct cv_http_header_pair {
    char *name;
    char *value;
};

/* Response bodies are handed to libmicrohttpd, which frees them through
 * cv_http_payload_free: wiped, since the workload fetch sends plaintext. */
struct cv_http_payload {
    size_t len;
    char data[];
};
struct cv_http_payload *cv_http_payload_new(size_t len);
void cv_http_payload_free(void *body);

struct cv_http_response {
    unsigned status;              /* 0 until a reply function ran */
    const char *content_type;     /* static string, or `content_type_owned` */
    char *content_type_owned;
    struct cv_http_payload *body;
    size_t nheaders;
    struct cv_http_header_pair headers[CV_HTTP_MAX_RESPONSE_HEADERS];
    bool broken;                  /* a misuse of the response API: send a 500 */
    const char *request_id;       /* for the log line of a hidden failure */
};

/* Frees everything a response holds (its body unless handed over). */
void cv_http_response_clear(struct cv_http_response *res);
/* A framework answer with no category of its own (405, 414). */
void cv_http_reply_status_error(struct cv_http_response *res, unsigned status, const char *code,
                                const char *message);

/* Query parameters: decoded copies, freed by cv_http_request_clear. */
CV_RESULT cv_http_request_load_query(struct cv_http_request *req);
void cv_http_request_clear(struct cv_http_request *req);

#endif
