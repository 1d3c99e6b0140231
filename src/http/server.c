/* The libmicrohttpd daemon: a thread pool over epoll, every limit set
 * explicitly, TLS 1.2+ through GnuTLS, plain HTTP only on loopback, and a stop
 * that drains in-flight requests. Never keeps the TLS key after start and never
 * serves plain HTTP to a non-loopback address. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "credvault/json_alloc.h"
#include "credvault/log.h"
#include "exchange.h"
#include "tls.h"

#define MHD_LOG_LINE_MAX_BYTES 512
#define CV_HTTP_DRAIN_QUIET_MS 100 /* no request in flight for this long: drained */

__attribute__((format(printf, 2, 0))) static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char line[MHD_LOG_LINE_MAX_BYTES];
    int n = vsnprintf(line, sizeof(line), fmt, ap);
    if (n < 0) return;
    size_t len = strlen(line);
    while (len && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = '\0';
    cv_log(CV_LOG_WARN, "http_server", "message", line, NULL);
}

/* The path reaches the access handler still percent-encoded, so that path.c can
 * split before decoding; query values are decoded by request.c. */
static size_t keep_escaped(void *cls, struct MHD_Connection *conn, char *s)
{
    (void)cls;
    (void)conn;
    return strlen(s);
}

void cv_http_server_options_from_config(const struct cv_config *cfg, struct cv_http_server_options *out)
{
    memset(out, 0, sizeof(*out));
    out->listen = cfg->listen;
    out->tls = cfg->tls;
    out->tls_cert_file = cfg->tls_cert;
    out->tls_key_file = cfg->tls_key;
    out->threads = cfg->threads;
    out->max_body_bytes = cfg->max_body_bytes;
    out->max_connections = cfg->max_connections;
    out->max_connections_per_ip = cfg->max_connections_per_ip;
    out->connection_timeout_s = cfg->connection_timeout_s;
    out->request_deadline_ms = cfg->request_deadline_ms;
    out->trusted_proxies = cfg->trusted_proxies;
}

static cv_result check_options(const struct cv_http_server_options *o, const struct cv_http_listen_addr *la)
{
    /* Credentials and bearer tokens cross this socket: cleartext only where no
     * other host can be on the path. */
    CV_ENSURE(o->tls || cv_http_listen_is_loopback(la), CV_ERR_INPUT,
              "refusing plain HTTP on %.80s: CREDVAULT_TLS=off is allowed only on a loopback address "
              "(127.0.0.0/8 or [::1]); set CREDVAULT_TLS_CERT and CREDVAULT_TLS_KEY instead",
              o->listen);
    CV_ENSURE(o->threads >= 1 && o->threads <= 1024, CV_ERR_INPUT, "CREDVAULT_THREADS must be 1 to 1024");
    CV_ENSURE(o->max_body_bytes >= 1, CV_ERR_INPUT, "CREDVAULT_MAX_BODY_BYTES must be at least 1");
    CV_ENSURE(o->max_connections >= 1, CV_ERR_INPUT, "CREDVAULT_MAX_CONNECTIONS must be at least 1");
    CV_ENSURE(o->max_connections_per_ip >= 1, CV_ERR_INPUT, "CREDVAULT_MAX_CONNECTIONS_PER_IP must be at least 1");
    CV_ENSURE(o->connection_timeout_s >= 1, CV_ERR_INPUT, "CREDVAULT_CONNECTION_TIMEOUT_S must be at least 1");
    return CV_OK;
}

#define OPT(o, v, p) ((struct MHD_OptionItem){(o), (intptr_t)(v), (void *)(p)})

cv_result cv_http_server_start(const struct cv_http_server_options *opts, const struct cv_http_route *routes,
                               size_t nroutes, void *app, struct cv_http_server **out)
{
    CV_ENSURE_REF(opts);
    CV_ENSURE_REF(out);
    *out = NULL;
    CV_ENSURE(cv_json_alloc_installed(), CV_ERR_INTERNAL,
              "cv_json_alloc_install() must run before the server starts");
    CV_GUARD(cv_http_routes_check(routes, nroutes));
    struct cv_http_listen_addr la;
    CV_GUARD(cv_http_listen_parse(opts->listen, &la));
    CV_GUARD(check_options(opts, &la));

    cv_result r = CV_OK;
    struct cv_buf cert = CV_BUF_EMPTY, key = CV_BUF_EMPTY;
    struct cv_http_server *srv = NULL;
    if (opts->tls && opts->tls_cert_pem && opts->tls_key_pem) {
        /* copies that end in a NUL, as libmicrohttpd takes C strings */
        cv_buf_init(&cert, opts->tls_cert_pem->len + 1);
        cv_buf_init_secret(&key, opts->tls_key_pem->len + 1);
        CV_GUARD_OUT(r, cv_buf_append(&cert, opts->tls_cert_pem->data, opts->tls_cert_pem->len));
        CV_GUARD_OUT(r, cv_buf_append_u8(&cert, 0));
        CV_GUARD_OUT(r, cv_buf_append(&key, opts->tls_key_pem->data, opts->tls_key_pem->len));
        CV_GUARD_OUT(r, cv_buf_append_u8(&key, 0));
    } else if (opts->tls) {
        CV_GUARD_OUT(r, cv_http_tls_load(opts->tls_cert_file, opts->tls_key_file, &cert, &key));
    }
    srv = calloc(1, sizeof(*srv));
    if (!srv) {
        r = cv_fail(CV_ERR_MEMORY, "out of memory");
        goto out;
    }
    srv->routes = routes;
    srv->nroutes = nroutes;
    srv->app = app;
    srv->max_body_bytes = opts->max_body_bytes;
    srv->metrics = opts->metrics;
    srv->shared_listen = opts->shared_listen;
    atomic_init(&srv->in_flight, 0);
    atomic_init(&srv->stopping, false);
    CV_GUARD_OUT(r, cv_http_proxies_parse(opts->trusted_proxies, &srv->proxies));
    CV_GUARD_OUT(r, cv_http_deadline_start(opts->request_deadline_ms ? opts->request_deadline_ms : 10000,
                                           &srv->deadline));

    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG | MHD_USE_ITC;
    if (opts->tls) flags |= MHD_USE_TLS;
    if (la.family == AF_INET6) flags |= MHD_USE_IPv6;
    struct MHD_OptionItem items[20];
    size_t n = 0;
    items[n++] = OPT(MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL); /* first, so start-up errors use it */
    if (opts->threads > 1) items[n++] = OPT(MHD_OPTION_THREAD_POOL_SIZE, opts->threads, NULL);
    if (opts->shared_listen) items[n++] = OPT(MHD_OPTION_LISTEN_SOCKET, opts->listen_fd, NULL);
    else items[n++] = OPT(MHD_OPTION_SOCK_ADDR, 0, &la.ss);
    items[n++] = OPT(MHD_OPTION_CONNECTION_LIMIT, opts->max_connections, NULL);
    items[n++] = OPT(MHD_OPTION_PER_IP_CONNECTION_LIMIT, opts->max_connections_per_ip, NULL);
    items[n++] = OPT(MHD_OPTION_CONNECTION_TIMEOUT, opts->connection_timeout_s, NULL);
    items[n++] = OPT(MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)CV_HTTP_CONNECTION_MEMORY_BYTES, NULL);
    items[n++] = OPT(MHD_OPTION_NOTIFY_COMPLETED, cv_http_on_completed, srv);
    items[n++] = OPT(MHD_OPTION_NOTIFY_CONNECTION, cv_http_deadline_on_connection, srv->deadline);
    items[n++] = OPT(MHD_OPTION_UNESCAPE_CALLBACK, keep_escaped, NULL);
    items[n++] = OPT(MHD_OPTION_STRICT_FOR_CLIENT, 1, NULL);
    if (opts->tls) {
        items[n++] = OPT(MHD_OPTION_HTTPS_MEM_CERT, 0, cert.data);
        items[n++] = OPT(MHD_OPTION_HTTPS_MEM_KEY, 0, key.data);
        items[n++] = OPT(MHD_OPTION_HTTPS_PRIORITIES, 0, CV_HTTP_TLS_PRIORITIES);
    }
    items[n++] = OPT(MHD_OPTION_END, 0, NULL);

    srv->daemon = MHD_start_daemon(flags, la.port, NULL, NULL, cv_http_on_access, srv, MHD_OPTION_ARRAY, items,
                                   MHD_OPTION_END);
    if (!srv->daemon) {
        char why[256];
        if (opts->shared_listen) /* bound already: only TLS is left to refuse */
            snprintf(why, sizeof(why), "cannot serve on %.80s: GnuTLS refused the certificate or key (the log line "
                                       "before this one says why)", opts->listen);
        else
            cv_http_listen_why(&la, opts->listen, why, sizeof(why));
        r = cv_fail(CV_ERR_UNAVAILABLE, "%s", why);
        goto out;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(srv->daemon, MHD_DAEMON_INFO_BIND_PORT);
    srv->port = info ? info->port : la.port;
    char port[8], threads[8];
    snprintf(port, sizeof(port), "%u", srv->port);
    snprintf(threads, sizeof(threads), "%u", opts->threads);
    cv_log(CV_LOG_INFO, "http_listening", "listen", opts->listen, "port", port, "tls", opts->tls ? "on" : "off",
           "threads", threads, NULL);
    *out = srv;
    srv = NULL;
out:
    cv_buf_free(&key); /* GnuTLS holds its own copy now */
    cv_buf_free(&cert);
    if (srv) cv_http_deadline_stop(srv->deadline);
    free(srv);
    return r;
}

cv_result cv_http_tls_read(const char *cert_file, const char *key_file, struct cv_buf *cert, struct cv_buf *key)
{
    return cv_http_tls_load(cert_file, key_file, cert, key);
}

unsigned cv_http_server_port(const struct cv_http_server *srv) { return srv ? srv->port : 0; }

static long elapsed_ms(const struct timespec *since)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (long)(now.tv_sec - since->tv_sec) * 1000 + (now.tv_nsec - since->tv_nsec) / 1000000;
}

void cv_http_server_stop(struct cv_http_server *srv)
{
    if (!srv) return;
    atomic_store(&srv->stopping, true);
    MHD_socket listen_fd = MHD_quiesce_daemon(srv->daemon);
    /* a worker's socket leaves the port's group now: what is queued on it is
     * reset rather than left waiting for an accept that will not come, new
     * connections go to the other workers, and the port is free for a new
     * instance while this one drains */
    if (srv->shared_listen && listen_fd != MHD_INVALID_SOCKET) cv_http_listen_pause(listen_fd);
    /* A request whose bytes wait behind a busy worker is not counted yet, so the
     * count must stay at zero for a quiet period before the drain is over. */
    struct timespec start, quiet_since;
    clock_gettime(CLOCK_MONOTONIC, &start);
    quiet_since = start;
    while (elapsed_ms(&start) < CV_HTTP_DRAIN_TIMEOUT_MS) {
        if (atomic_load(&srv->in_flight) > 0) clock_gettime(CLOCK_MONOTONIC, &quiet_since);
        else if (elapsed_ms(&quiet_since) >= CV_HTTP_DRAIN_QUIET_MS) break;
        struct timespec tick = {0, 10 * 1000 * 1000};
        nanosleep(&tick, NULL);
    }
    size_t left = atomic_load(&srv->in_flight);
    if (left > 0) {
        char n[24];
        snprintf(n, sizeof(n), "%zu", left);
        cv_log(CV_LOG_WARN, "http_drain_timeout", "requests", n, NULL);
    }
    MHD_stop_daemon(srv->daemon); /* joins the workers; completes what is left */
    if (listen_fd != MHD_INVALID_SOCKET) close(listen_fd);
    cv_http_deadline_stop(srv->deadline);
    cv_log(CV_LOG_INFO, "http_stopped", NULL);
    free(srv);
}
