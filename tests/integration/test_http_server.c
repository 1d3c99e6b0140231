/* The HTTP framework (src/http) in-process against a demo route table, driven
 * by libcurl over plain HTTP on loopback and over HTTPS with a throwaway CA.
 * Hostile and refused requests first; then keep-alive, envelopes, TLS, stop.
 * Needs no token and no database. */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "cv_test_http.h"
#include "cv_test_service.h"
#include "cv_test_api.h"
#include "cv_test_suite.h"
#include "http/http.h"
#include "credvault/json_alloc.h"

#define BODY_LIMIT 1024

static char cert_dir[512];
static pthread_t main_thread;

/* ---- demo routes ---- */

static void h_ping(void *app, struct cv_http_request *req, struct cv_http_response *res)
{
    (void)app;
    (void)req;
    cv_http_reply(res, 200, json_pack("{s:b}", "pong", 1));
}

static void h_echo(void *app, struct cv_http_request *req, struct cv_http_response *res)
{
    (void)app;
    json_t *body;
    cv_result r = cv_http_json_body(req, &body);
    if (cv_failed(r)) {
        cv_http_reply_error(res, r);
        return;
    }
    cv_http_reply(res, 201, body);
}

static void h_credentials(void *app, struct cv_http_request *req, struct cv_http_response *res)
{
    (void)app;
    const char *q = cv_http_query(req, "q");
    cv_http_reply(res, 200,
                  json_pack("{s:s,s:s?,s:s,s:s,s:s?}", "serverId", cv_http_param(req, "serverId"), "q", q, "route",
                            cv_http_route_pattern(req), "path", cv_http_path(req), "colon",
                            cv_http_param(req, ":serverId")));
}

static void h_fail(void *app, struct cv_http_request *req, struct cv_http_response *res)
{
    (void)app;
    int n = atoi(cv_http_param(req, "n"));
    cv_http_reply_error(res, cv_fail((cv_err)n, "demo failure %d with secret-detail", n));
}

static void h_no_reply(void *app, struct cv_http_request *req, struct cv_http_response *res)
{
    (void)app;
    (void)req;
    (void)res;
}

static void h_bad_header(void *app, struct cv_http_request *req, struct cv_http_response *res)
{
    (void)app;
    (void)req;
    cv_http_reply(res, 200, NULL);
    cv_http_header_add(res, "X-Evil", "a\r\nSet-Cookie: x=1");
}

static void h_metrics(void *app, struct cv_http_request *req, struct cv_http_response *res)
{
    (void)app;
    (void)req;
    static const char text[] = "# TYPE demo counter\ndemo_total 1\n";
    cv_http_header_add(res, "X-Demo", "yes");
    cv_http_reply_text(res, 200, "text/plain; version=0.0.4", text, sizeof(text) - 1);
}

static void h_slow(void *app, struct cv_http_request *req, struct cv_http_response *res)
{
    (void)app;
    (void)req;
    struct timespec t = {0, 400 * 1000 * 1000};
    nanosleep(&t, NULL);
    cv_http_reply(res, 200, json_string("done"));
}

static void h_thread(void *app, struct cv_http_request *req, struct cv_http_response *res)
{
    (void)req;
    int *calls = app;
    (*calls)++;
    cv_http_reply(res, 200, json_pack("{s:b}", "worker", !pthread_equal(pthread_self(), main_thread)));
}

static void h_client(void *app, struct cv_http_request *req, struct cv_http_response *res)
{
    (void)app;
    cv_http_reply(res, 200,
                  json_pack("{s:s,s:s,s:s?,s:s}", "client", cv_http_client_addr(req), "id", cv_http_request_id(req),
                            "ua", cv_http_header(req, "x-demo-header"), "method", cv_http_method(req)));
}

static const struct cv_http_route routes[] = {
    {"GET", "/api/ping", h_ping},
    {"POST", "/api/echo", h_echo},
    {"GET", "/api/mcp/servers/:serverId/credentials", h_credentials},
    {"POST", "/api/mcp/servers/:serverId/credentials/validate", h_echo},
    {"GET", "/api/fail/:n", h_fail},
    {"GET", "/api/null", NULL},
    {"GET", "/api/no-reply", h_no_reply},
    {"GET", "/api/bad-header", h_bad_header},
    {"GET", "/metrics", h_metrics},
    {"GET", "/api/slow", h_slow},
    {"GET", "/api/thread", h_thread},
    {"GET", "/api/client", h_client},
    {"DELETE", "/api/client", h_client},
};
#define NROUTES (sizeof(routes) / sizeof(routes[0]))

/* ---- fixture ---- */

static int thread_calls;

static void options(struct cv_http_server_options *o, const char *listen, int tls)
{
    memset(o, 0, sizeof(*o));
    static char cert[600], key[600];
    snprintf(cert, sizeof(cert), "%s/server.crt", cert_dir);
    snprintf(key, sizeof(key), "%s/server.key", cert_dir);
    o->listen = listen;
    o->tls = tls;
    o->tls_cert_file = cert;
    o->tls_key_file = key;
    o->threads = 2;
    o->max_body_bytes = BODY_LIMIT;
    o->max_connections = 64;
    o->max_connections_per_ip = 32;
    o->connection_timeout_s = 10;
}

struct fixture {
    struct cv_http_server *srv;
    struct cv_test_client *client;
};

static void start(struct fixture *f, const char *listen, int tls)
{
    struct cv_http_server_options o;
    options(&o, listen, tls);
    cv_result r = cv_http_server_start(&o, routes, NROUTES, &thread_calls, &f->srv);
    ck_assert_msg(cv_ok(r), "start failed: %s", cv_error_message());
    char url[128];
    const char *host = listen[0] == '[' ? "[::1]" : "127.0.0.1";
    snprintf(url, sizeof(url), "%s://%s:%u", tls ? "https" : "http", host, cv_http_server_port(f->srv));
    char ca[600];
    snprintf(ca, sizeof(ca), "%s/ca.crt", cert_dir);
    f->client = cv_test_client_new(url, tls ? ca : NULL);
    ck_assert_ptr_nonnull(f->client);
}

static void stop(struct fixture *f)
{
    cv_test_client_free(f->client);
    cv_http_server_stop(f->srv);
}

/* An error answer of the framework: the envelope, its code, and the headers every answer carries. */
static void expect_error(struct fixture *f, const char *method, const char *path, const char *body,
                         const char *const *headers, long status, const char *code)
{
    struct cv_test_response r = cv_t_request_h(f->client, method, path, NULL, body, headers);
    cv_t_expect_status(&r, status, code);
    ck_assert_str_eq(cv_test_response_header(&r, "Content-Type"), "application/json");
    ck_assert_ptr_nonnull(cv_test_response_header(&r, "X-Request-Id"));
    cv_test_response_free(&r);
}

/* ---- refusals ---- */

START_TEST(plain_http_refused_off_loopback)
{
    static const char *const public_addrs[] = {"0.0.0.0:0", "192.0.2.10:0", "[::]:0", "[2001:db8::1]:0",
                                               "128.0.0.1:0"};
    for (size_t i = 0; i < sizeof(public_addrs) / sizeof(public_addrs[0]); i++) {
        struct cv_http_server_options o;
        options(&o, public_addrs[i], 0);
        struct cv_http_server *srv = (void *)1;
        cv_result r = cv_http_server_start(&o, routes, NROUTES, NULL, &srv);
        ck_assert_msg(r.err == CV_ERR_INPUT, "plain HTTP started on %s", public_addrs[i]);
        ck_assert_ptr_null(srv);
        ck_assert_msg(strstr(cv_error_message(), "loopback") != NULL, "unclear message: %s", cv_error_message());
    }
}
END_TEST

START_TEST(bad_start_refused)
{
    struct cv_http_server_options o;
    struct cv_http_server *srv = NULL;
    options(&o, "127.0.0.1:0", 1);
    o.tls_key_file = "/nonexistent/server.key";
    ck_assert_int_eq(cv_http_server_start(&o, routes, NROUTES, NULL, &srv).err, CV_ERR_INPUT);
    options(&o, "127.0.0.1:0", 1);
    o.tls_cert_file = NULL;
    ck_assert_int_eq(cv_http_server_start(&o, routes, NROUTES, NULL, &srv).err, CV_ERR_INPUT);
    options(&o, "localhost:0", 0);
    ck_assert_int_eq(cv_http_server_start(&o, routes, NROUTES, NULL, &srv).err, CV_ERR_INPUT);
    options(&o, "127.0.0.1", 0);
    ck_assert_int_eq(cv_http_server_start(&o, routes, NROUTES, NULL, &srv).err, CV_ERR_INPUT);
    /* the key file given as the certificate: GnuTLS refuses */
    options(&o, "127.0.0.1:0", 1);
    o.tls_cert_file = o.tls_key_file;
    ck_assert(cv_failed(cv_http_server_start(&o, routes, NROUTES, NULL, &srv)));
    /* the key is a secret file: one that group or others may read is refused */
    char loose[700], cmd[2200];
    snprintf(loose, sizeof(loose), "%s/loose.key", cert_dir);
    snprintf(cmd, sizeof(cmd), "cp '%s/server.key' '%s' && chmod 0640 '%s'", cert_dir, loose, loose);
    ck_assert_int_eq(cv_test_sh(cmd), 0);
    options(&o, "127.0.0.1:0", 1);
    o.tls_key_file = loose;
    ck_assert_int_eq(cv_http_server_start(&o, routes, NROUTES, NULL, &srv).err, CV_ERR_INPUT);
    ck_assert_ptr_nonnull(strstr(cv_error_message(), "0600"));
    ck_assert_int_eq(chmod(loose, 0600), 0); /* the same file, closed to others, is accepted */
    ck_assert_int_eq(cv_http_server_start(&o, routes, NROUTES, NULL, &srv).err, CV_ERR_NONE);
    cv_http_server_stop(srv);
    srv = NULL;
    static const struct cv_http_route bad[] = {{"GET", "api/no-slash", h_ping}};
    options(&o, "127.0.0.1:0", 0);
    ck_assert_int_eq(cv_http_server_start(&o, bad, 1, NULL, &srv).err, CV_ERR_INTERNAL);
    ck_assert_ptr_null(srv);
}
END_TEST

/* Start-up failures name what to fix: a key that is not the certificate's, a
 * certificate outside its validity period, an address another process holds. */
START_TEST(start_errors_say_what_to_fix)
{
    struct cv_http_server_options o;
    struct cv_http_server *srv = NULL;
    char other[700], cmd[3000], cert[800], key[800];
    snprintf(other, sizeof(other), "%s/other", cert_dir);
    ck_assert_int_eq(cv_test_make_cert(other), 0);
    options(&o, "127.0.0.1:0", 1);
    snprintf(key, sizeof(key), "%s/server.key", other);
    o.tls_key_file = key; /* another certificate's key */
    ck_assert_int_eq(cv_http_server_start(&o, routes, NROUTES, NULL, &srv).err, CV_ERR_INPUT);
    ck_assert_msg(strstr(cv_error_message(), "is not the key of the certificate"), "%s", cv_error_message());
    ck_assert_ptr_null(srv);

    /* expired, and not yet valid: made with Python's cryptography, not with our code */
    const char *when[][2] = {{"-400", "-1"}, {"30", "400"}};
    const char *says[] = {"expired on", "is not valid before"};
    for (int i = 0; i < 2; i++) {
        snprintf(cmd, sizeof(cmd),
                 "cd '%s' && /usr/bin/python3 - <<'PY'\n"
                 "import datetime\n"
                 "from cryptography import x509\n"
                 "from cryptography.x509.oid import NameOID\n"
                 "from cryptography.hazmat.primitives import hashes, serialization\n"
                 "from cryptography.hazmat.primitives.asymmetric import ec\n"
                 "k = ec.generate_private_key(ec.SECP256R1())\n"
                 "n = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, 'localhost')])\n"
                 "now = datetime.datetime.now(datetime.timezone.utc)\n"
                 "c = (x509.CertificateBuilder().subject_name(n).issuer_name(n).public_key(k.public_key())\n"
                 "     .serial_number(x509.random_serial_number())\n"
                 "     .not_valid_before(now + datetime.timedelta(days=%s))\n"
                 "     .not_valid_after(now + datetime.timedelta(days=%s)).sign(k, hashes.SHA256()))\n"
                 "open('dated%d.crt', 'wb').write(c.public_bytes(serialization.Encoding.PEM))\n"
                 "open('dated%d.key', 'wb').write(k.private_bytes(serialization.Encoding.PEM,\n"
                 "    serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))\n"
                 "PY\n"
                 "chmod 0600 dated%d.key",
                 cert_dir, when[i][0], when[i][1], i, i, i);
        ck_assert_int_eq(cv_test_sh(cmd), 0);
        options(&o, "127.0.0.1:0", 1);
        snprintf(cert, sizeof(cert), "%s/dated%d.crt", cert_dir, i);
        snprintf(key, sizeof(key), "%s/dated%d.key", cert_dir, i);
        o.tls_cert_file = cert;
        o.tls_key_file = key;
        ck_assert_int_eq(cv_http_server_start(&o, routes, NROUTES, NULL, &srv).err, CV_ERR_INPUT);
        ck_assert_msg(strstr(cv_error_message(), says[i]), "%s", cv_error_message());
    }

    /* the port of a server this process runs: named, with this process as its holder */
    struct fixture f;
    start(&f, "127.0.0.1:0", 0);
    char listen[64], pid[32];
    snprintf(listen, sizeof(listen), "127.0.0.1:%u", cv_http_server_port(f.srv));
    snprintf(pid, sizeof(pid), "pid %d ", (int)getpid());
    options(&o, listen, 0);
    ck_assert_int_eq(cv_http_server_start(&o, routes, NROUTES, NULL, &srv).err, CV_ERR_UNAVAILABLE);
    ck_assert_msg(strstr(cv_error_message(), "in use by") && strstr(cv_error_message(), pid) &&
                      strstr(cv_error_message(), listen),
                  "%s", cv_error_message());
    /* an address that is not this machine's */
    options(&o, "192.0.2.1:0", 1);
    ck_assert_int_eq(cv_http_server_start(&o, routes, NROUTES, NULL, &srv).err, CV_ERR_UNAVAILABLE);
    ck_assert_msg(strstr(cv_error_message(), "not an address of this machine"), "%s", cv_error_message());
    stop(&f);
}
END_TEST

START_TEST(oversize_body_content_length)
{
    struct fixture f;
    start(&f, "127.0.0.1:0", 0);
    char big[BODY_LIMIT + 200];
    memset(big, ' ', sizeof(big) - 1);
    big[0] = '{';
    big[sizeof(big) - 2] = '}';
    big[sizeof(big) - 1] = '\0';
    /* with Expect the body is never sent; without it, it is refused unread */
    static const char *const expect[] = {"Expect: 100-continue", NULL};
    expect_error(&f, "POST", "/api/echo", big, expect, 413, "payload_too_large");
    expect_error(&f, "POST", "/api/echo", big, NULL, 413, "payload_too_large");
    /* exactly at the limit is fine */
    big[BODY_LIMIT - 1] = '}';
    big[BODY_LIMIT] = '\0';
    struct cv_test_response r;
    ck_assert_int_eq(cv_test_request(f.client, "POST", "/api/echo", NULL, big, NULL, &r), 0);
    ck_assert_int_eq(r.status, 201);
    cv_test_response_free(&r);
    stop(&f);
}
END_TEST

START_TEST(oversize_body_chunked)
{
    struct fixture f;
    start(&f, "127.0.0.1:0", 0);
    static const char *const chunked[] = {"Transfer-Encoding: chunked", NULL};
    char big[4 * BODY_LIMIT];
    memset(big, ' ', sizeof(big) - 1);
    big[0] = '{';
    big[sizeof(big) - 2] = '}';
    big[sizeof(big) - 1] = '\0';
    expect_error(&f, "POST", "/api/echo", big, chunked, 413, "payload_too_large");
    /* the connection is still good for the next request */
    struct cv_test_response r;
    ck_assert_int_eq(cv_test_request(f.client, "POST", "/api/echo", NULL, "{\"a\":\"b\"}", chunked, &r), 0);
    ck_assert_int_eq(r.status, 201);
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(r.json, "data"), "a")), "b");
    cv_test_response_free(&r);
    stop(&f);
}
END_TEST

START_TEST(endless_chunked_body_is_cut_off)
{
    struct fixture f;
    start(&f, "127.0.0.1:0", 0);
    static const char *const chunked[] = {"Transfer-Encoding: chunked", "Content-Type: application/json", NULL};
    size_t n = CV_HTTP_DISCARD_MAX_BYTES + 4 * BODY_LIMIT;
    char *huge = malloc(n);
    ck_assert_ptr_nonnull(huge);
    memset(huge, ' ', n);
    struct cv_test_response r;
    int rc = cv_test_request_raw(f.client, "POST", "/api/echo", chunked, huge, n, &r);
    /* either the connection was dropped or a 413 got out first; never a 2xx */
    ck_assert(rc != 0 || r.status == 413);
    cv_test_response_free(&r);
    free(huge);
    stop(&f);
}
END_TEST

START_TEST(wrong_media_type)
{
    struct fixture f;
    start(&f, "127.0.0.1:0", 0);
    static const char *const text[] = {"Content-Type: text/plain", NULL};
    static const char *const form[] = {"Content-Type: application/x-www-form-urlencoded", NULL};
    static const char *const latin1[] = {"Content-Type: application/json; charset=iso-8859-1", NULL};
    static const char *const jsonish[] = {"Content-Type: application/jsonx", NULL};
    expect_error(&f, "POST", "/api/echo", "{}", text, 415, "unsupported_media_type");
    expect_error(&f, "POST", "/api/echo", "{}", form, 415, "unsupported_media_type");
    expect_error(&f, "POST", "/api/echo", "{}", latin1, 415, "unsupported_media_type");
    expect_error(&f, "POST", "/api/echo", "{}", jsonish, 415, "unsupported_media_type");
    struct cv_test_response r;
    ck_assert_int_eq(cv_test_request_raw(f.client, "POST", "/api/echo", NULL, "{}", 2, &r), 0);
    ck_assert_int_eq(r.status, 415); /* curl's default form type */
    cv_test_response_free(&r);
    static const char *const utf8[] = {"Content-Type: Application/JSON; charset=\"UTF-8\"", NULL};
    ck_assert_int_eq(cv_test_request(f.client, "POST", "/api/echo", NULL, "{}", utf8, &r), 0);
    ck_assert_int_eq(r.status, 201);
    cv_test_response_free(&r);
    stop(&f);
}
END_TEST

START_TEST(invalid_json_refused)
{
    struct fixture f;
    start(&f, "127.0.0.1:0", 0);
    static const char *const bad[] = {"",
                                      "{",
                                      "{\"a\":1,\"a\":2}",
                                      "{\"a\":{\"b\":1,\"b\":1}}",
                                      "[1,2]",
                                      "\"just a string\"",
                                      "42",
                                      "null",
                                      "{} {}",
                                      "{}x",
                                      "{\"a\":\"\\u0000\"}",
                                      "{'a':1}",
                                      "{\"a\":1,}",
                                      "{\"AWS_SECRET_ACCESS_KEY\": wJalrXUtnFEMI}"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct cv_test_response r = cv_t_request(f.client, "POST", "/api/echo", NULL, bad[i]);
        cv_t_expect_status(&r, 400, "invalid_json");
        /* the message never quotes the body */
        ck_assert_msg(strstr(r.body, "wJalr") == NULL, "echoed: %s", r.body);
        cv_test_response_free(&r);
    }
    stop(&f);
}
END_TEST

START_TEST(not_found_and_method_not_allowed)
{
    struct fixture f;
    start(&f, "127.0.0.1:0", 0);
    expect_error(&f, "GET", "/api/nothing", NULL, NULL, 404, "not_found");
    expect_error(&f, "GET", "/", NULL, NULL, 404, "not_found");
    expect_error(&f, "GET", "/api/ping/", NULL, NULL, 404, "not_found");
    expect_error(&f, "GET", "/api//ping", NULL, NULL, 404, "not_found");
    expect_error(&f, "GET", "/api/mcp/servers//credentials", NULL, NULL, 404, "not_found");
    expect_error(&f, "POST", "/api/nothing", "{}", NULL, 404, "not_found");
    struct cv_test_response r = cv_t_request(f.client, "POST", "/api/ping", NULL, "{}");
    cv_t_expect_status(&r, 405, "method_not_allowed");
    ck_assert_str_eq(cv_test_response_header(&r, "Allow"), "GET, HEAD");
    cv_test_response_free(&r);
    ck_assert_int_eq(cv_test_request(f.client, "PUT", "/api/client", NULL, NULL, NULL, &r), 0);
    ck_assert_int_eq(r.status, 405);
    ck_assert_str_eq(cv_test_response_header(&r, "Allow"), "GET, HEAD, DELETE");
    cv_test_response_free(&r);
    stop(&f);
}
END_TEST

START_TEST(bad_paths_refused)
{
    struct fixture f;
    start(&f, "127.0.0.1:0", 0);
    expect_error(&f, "GET", "/api/mcp/servers/a%zz/credentials", NULL, NULL, 400, "invalid_request");
    expect_error(&f, "GET", "/api/mcp/servers/a%0Ab/credentials", NULL, NULL, 400, "invalid_request");
    expect_error(&f, "GET", "/api/mcp/servers/a%00b/credentials", NULL, NULL, 400, "invalid_request");
    expect_error(&f, "GET", "/api/mcp/servers/a%2/credentials", NULL, NULL, 400, "invalid_request");
    expect_error(&f, "GET", "/api/mcp/servers/x/credentials?q=%zz", NULL, NULL, 400, "invalid_request");
    char path[CV_HTTP_PATH_MAX_BYTES + 64];
    snprintf(path, sizeof(path), "/api/mcp/servers/");
    size_t n = strlen(path);
    memset(path + n, 'a', CV_HTTP_SEGMENT_MAX_BYTES + 1);
    snprintf(path + n + CV_HTTP_SEGMENT_MAX_BYTES + 1, sizeof(path) - n - CV_HTTP_SEGMENT_MAX_BYTES - 1,
             "/credentials");
    expect_error(&f, "GET", path, NULL, NULL, 414, "uri_too_long");
    memset(path + 1, 'a', sizeof(path) - 2);
    path[sizeof(path) - 1] = '\0';
    expect_error(&f, "GET", path, NULL, NULL, 414, "uri_too_long");
    stop(&f);
}
END_TEST

/* ---- what handlers see and send ---- */

START_TEST(path_params_and_query_decoded)
{
    struct fixture f;
    start(&f, "127.0.0.1:0", 0);
    struct cv_test_response r;
    ck_assert_int_eq(
        cv_test_request(f.client, "GET", "/api/mcp/servers/a%20b%2Fc%C3%A9/credentials?q=1%262%3D3&z", NULL, NULL,
                        NULL, &r),
        0);
    ck_assert_int_eq(r.status, 200);
    json_t *d = json_object_get(r.json, "data");
    ck_assert_str_eq(json_string_value(json_object_get(d, "serverId")), "a b/c\xc3\xa9");
    ck_assert_str_eq(json_string_value(json_object_get(d, "colon")), "a b/c\xc3\xa9");
    ck_assert_str_eq(json_string_value(json_object_get(d, "q")), "1&2=3");
    ck_assert_str_eq(json_string_value(json_object_get(d, "route")), "/api/mcp/servers/:serverId/credentials");
    ck_assert_str_eq(json_string_value(json_object_get(d, "path")), "/api/mcp/servers/a%20b%2Fc%C3%A9/credentials");
    cv_test_response_free(&r);
    /* a literal route segment must match exactly: an encoded slash does not split */
    expect_error(&f, "GET", "/api/mcp/servers/x%2Fcredentials", NULL, NULL, 404, "not_found");
    stop(&f);
}
END_TEST

START_TEST(common_headers_and_request_ids)
{
    struct fixture f;
    start(&f, "127.0.0.1:0", 0);
    char first[64] = "";
    for (int i = 0; i < 2; i++) {
        struct cv_test_response r;
        static const char *const hdr[] = {"X-Demo-Header: hello", NULL};
        ck_assert_int_eq(cv_test_request(f.client, "GET", "/api/client", NULL, NULL, hdr, &r), 0);
        ck_assert_int_eq(r.status, 200);
        ck_assert_str_eq(cv_test_response_header(&r, "Content-Type"), "application/json");
        ck_assert_str_eq(cv_test_response_header(&r, "Cache-Control"), "no-store");
        ck_assert_str_eq(cv_test_response_header(&r, "X-Content-Type-Options"), "nosniff");
        const char *id = cv_test_response_header(&r, "X-Request-Id");
        ck_assert_ptr_nonnull(id);
        ck_assert_uint_eq(strlen(id), 2 * CV_HTTP_REQUEST_ID_BYTES);
        ck_assert_uint_eq(strspn(id, "0123456789abcdef"), 2 * CV_HTTP_REQUEST_ID_BYTES);
        json_t *d = json_object_get(r.json, "data");
        ck_assert(json_is_true(json_object_get(r.json, "success")));
        ck_assert_str_eq(json_string_value(json_object_get(d, "id")), id);
        ck_assert_str_eq(json_string_value(json_object_get(d, "client")), "127.0.0.1");
        ck_assert_str_eq(json_string_value(json_object_get(d, "ua")), "hello");
        ck_assert_str_eq(json_string_value(json_object_get(d, "method")), "GET");
        if (i == 0) snprintf(first, sizeof(first), "%s", id);
        else ck_assert_str_ne(first, id);
        cv_test_response_free(&r);
    }
    stop(&f);
}
END_TEST

START_TEST(text_replies_and_head)
{
    struct fixture f;
    start(&f, "127.0.0.1:0", 0);
    struct cv_test_response r;
    ck_assert_int_eq(cv_test_request(f.client, "GET", "/metrics", NULL, NULL, NULL, &r), 0);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(cv_test_response_header(&r, "Content-Type"), "text/plain; version=0.0.4");
    ck_assert_str_eq(cv_test_response_header(&r, "X-Demo"), "yes");
    ck_assert_str_eq(cv_test_response_header(&r, "Cache-Control"), "no-store");
    ck_assert_str_eq(r.body, "# TYPE demo counter\ndemo_total 1\n");
    ck_assert_ptr_null(r.json);
    cv_test_response_free(&r);
    ck_assert_int_eq(cv_test_request(f.client, "HEAD", "/api/ping", NULL, NULL, NULL, &r), 0);
    ck_assert_int_eq(r.status, 200);
    ck_assert_uint_eq(r.body_len, 0);
    cv_test_response_free(&r);
    stop(&f);
}
END_TEST

/* Every category through a real handler: status from the one table, the code and
 * message of the failure, except where the detail must stay in the log. */
START_TEST(error_categories_map_to_statuses)
{
    static const struct {
        cv_err err;
        long status;
        const char *code;
        int detail_shown;
    } want[] = {
        {CV_ERR_INPUT, 400, "invalid_request", 1},
        {CV_ERR_TOO_LARGE, 413, "payload_too_large", 1},
        {CV_ERR_MEDIA, 415, "unsupported_media_type", 1},
        {CV_ERR_AUTH, 401, "unauthorized", 1},
        {CV_ERR_FORBIDDEN, 403, "forbidden", 1},
        {CV_ERR_NOT_FOUND, 404, "not_found", 1},
        {CV_ERR_CONFLICT, 409, "conflict", 1},
        {CV_ERR_PRECONDITION, 412, "precondition_failed", 1},
        {CV_ERR_RATE_LIMITED, 429, "rate_limited", 1},
        {CV_ERR_UNAVAILABLE, 503, "unavailable", 1},
        {CV_ERR_CRYPTO, 500, "decrypt_failed", 0},
        {CV_ERR_INTERNAL, 500, "internal_error", 0},
        {CV_ERR_MEMORY, 500, "internal_error", 0},
    };
    ck_assert_uint_eq(sizeof(want) / sizeof(want[0]), CV_ERR__COUNT - 1);
    struct fixture f;
    start(&f, "127.0.0.1:0", 0);
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        char path[64];
        snprintf(path, sizeof(path), "/api/fail/%d", (int)want[i].err);
        struct cv_test_response r = cv_t_request(f.client, "GET", path, NULL, NULL);
        cv_t_expect_status(&r, want[i].status, want[i].code);
        ck_assert_uint_eq((unsigned)r.status, cv_http_status_for(want[i].err));
        const char *msg = json_string_value(json_object_get(json_object_get(r.json, "error"), "message"));
        ck_assert_int_eq(strstr(msg, "secret-detail") != NULL, want[i].detail_shown);
        const char *www = cv_test_response_header(&r, "WWW-Authenticate");
        if (want[i].status == 401) ck_assert_msg(www && strncmp(www, "Bearer", 6) == 0, "no Bearer challenge");
        else ck_assert_ptr_null(www);
        ck_assert_str_eq(cv_test_response_header(&r, "Cache-Control"), "no-store");
        cv_test_response_free(&r);
    }
    stop(&f);
}
END_TEST

START_TEST(broken_handlers_get_500)
{
    struct fixture f;
    start(&f, "127.0.0.1:0", 0);
    expect_error(&f, "GET", "/api/null", NULL, NULL, 500, "internal_error");
    expect_error(&f, "GET", "/api/no-reply", NULL, NULL, 500, "internal_error");
    struct cv_test_response r = cv_t_request(f.client, "GET", "/api/bad-header", NULL, NULL);
    cv_t_expect_status(&r, 500, "internal_error");
    ck_assert_ptr_null(cv_test_response_header(&r, "Set-Cookie"));
    ck_assert_ptr_null(cv_test_response_header(&r, "X-Evil"));
    cv_test_response_free(&r);
    /* and the server is fine afterwards, on the same connection */
    ck_assert_int_eq(cv_test_request(f.client, "GET", "/api/ping", NULL, NULL, NULL, &r), 0);
    ck_assert_int_eq(r.status, 200);
    ck_assert_int_eq(r.reused, 1);
    cv_test_response_free(&r);
    stop(&f);
}
END_TEST

/* ---- connections ---- */

static void keep_alive_check(const char *listen, int tls)
{
    struct fixture f;
    start(&f, listen, tls);
    const char *const methods[] = {"GET", "POST", "GET", "DELETE"};
    const char *const paths[] = {"/api/ping", "/api/echo", "/api/mcp/servers/s1/credentials", "/api/client"};
    for (int i = 0; i < 4; i++) {
        struct cv_test_response r;
        int rc = cv_test_request(f.client, methods[i], paths[i], NULL, i == 1 ? "{\"k\":\"v\"}" : NULL, NULL, &r);
        ck_assert_msg(rc == 0, "%s %s: %s", methods[i], paths[i], r.error);
        ck_assert_msg(r.status == 200 || r.status == 201, "%s: %ld", paths[i], r.status);
        ck_assert_int_eq(r.reused, i > 0);
        const char *conn = cv_test_response_header(&r, "Connection");
        ck_assert_msg(conn == NULL || strcasecmp(conn, "close") != 0, "Connection: close on %s", paths[i]);
        cv_test_response_free(&r);
    }
    stop(&f);
}

START_TEST(keep_alive_plain) { keep_alive_check("127.0.0.1:0", 0); }
END_TEST

START_TEST(keep_alive_tls) { keep_alive_check("127.0.0.1:0", 1); }
END_TEST

START_TEST(ipv6_loopback)
{
    /* skip quietly where the kernel has no IPv6 */
    int probe = socket(AF_INET6, SOCK_STREAM, 0);
    if (probe < 0) return;
    close(probe);
    struct cv_http_server_options o;
    options(&o, "[::1]:0", 0);
    struct cv_http_server *srv;
    if (cv_failed(cv_http_server_start(&o, routes, NROUTES, NULL, &srv))) return;
    cv_http_server_stop(srv);
    keep_alive_check("[::1]:0", 1);
}
END_TEST

struct tls_case {
    long min, max;
    const char *ciphers; /* TLS 1.2 cipher list offered, or NULL for all */
    int ok;
};

static void tls_setup(CURL *h, void *arg)
{
    const struct tls_case *t = arg;
    curl_easy_setopt(h, CURLOPT_SSLVERSION, t->min | t->max);
    /* the client offers old versions and weak suites, so only the server can refuse them */
    curl_easy_setopt(h, CURLOPT_SSL_CIPHER_LIST, t->ciphers ? t->ciphers : "ALL:@SECLEVEL=0");
}

START_TEST(tls_versions)
{
    struct fixture f;
    start(&f, "127.0.0.1:0", 1);
    static const struct tls_case cases[] = {
        {CURL_SSLVERSION_TLSv1_0, CURL_SSLVERSION_MAX_TLSv1_0, NULL, 0},
        {CURL_SSLVERSION_TLSv1_1, CURL_SSLVERSION_MAX_TLSv1_1, NULL, 0},
        {CURL_SSLVERSION_TLSv1_2, CURL_SSLVERSION_MAX_TLSv1_2, NULL, 1},
        {CURL_SSLVERSION_TLSv1_3, CURL_SSLVERSION_MAX_TLSv1_3, NULL, 1},
        /* TLS 1.2 without forward secrecy or with CBC and SHA-1 is refused */
        {CURL_SSLVERSION_TLSv1_2, CURL_SSLVERSION_MAX_TLSv1_2, "ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA", 0},
        {CURL_SSLVERSION_TLSv1_2, CURL_SSLVERSION_MAX_TLSv1_2, "ECDHE-ECDSA-AES128-SHA256:ECDHE-ECDSA-AES256-SHA384", 0},
        {CURL_SSLVERSION_TLSv1_2, CURL_SSLVERSION_MAX_TLSv1_2, "ECDHE-ECDSA-AES128-GCM-SHA256", 1},
        {CURL_SSLVERSION_TLSv1_2, CURL_SSLVERSION_MAX_TLSv1_2, "ECDHE-ECDSA-CHACHA20-POLY1305", 1},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct cv_test_client *c;
        char url[64], ca[600];
        snprintf(url, sizeof(url), "https://localhost:%u", cv_http_server_port(f.srv));
        snprintf(ca, sizeof(ca), "%s/ca.crt", cert_dir);
        c = cv_test_client_new(url, ca);
        cv_test_client_on_setup(c, tls_setup, (void *)&cases[i]);
        struct cv_test_response r;
        int rc = cv_test_request(c, "GET", "/api/ping", NULL, NULL, NULL, &r);
        ck_assert_msg((rc == 0 && r.status == 200) == cases[i].ok, "case %zu: rc %d status %ld %s", i, rc, r.status,
                      r.error);
        cv_test_response_free(&r);
        cv_test_client_free(c);
    }
    /* an untrusted server certificate is refused by the client: the CA is really used */
    char url[64];
    snprintf(url, sizeof(url), "https://127.0.0.1:%u", cv_http_server_port(f.srv));
    struct cv_test_client *c = cv_test_client_new(url, "/etc/ssl/certs/ca-certificates.crt");
    struct cv_test_response r;
    ck_assert_int_ne(cv_test_request(c, "GET", "/api/ping", NULL, NULL, NULL, &r), 0);
    cv_test_response_free(&r);
    cv_test_client_free(c);
    stop(&f);
}
END_TEST

START_TEST(handlers_run_on_worker_threads)
{
    struct fixture f;
    start(&f, "127.0.0.1:0", 0);
    struct cv_test_response r;
    ck_assert_int_eq(cv_test_request(f.client, "GET", "/api/thread", NULL, NULL, NULL, &r), 0);
    ck_assert(json_is_true(json_object_get(json_object_get(r.json, "data"), "worker")));
    cv_test_response_free(&r);
    stop(&f);
}
END_TEST

struct slow_call {
    unsigned port;
    long status;
};

static void *slow_request(void *arg)
{
    struct slow_call *s = arg;
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%u", s->port);
    struct cv_test_client *c = cv_test_client_new(url, NULL);
    struct cv_test_response r;
    if (cv_test_request(c, "GET", "/api/slow", NULL, NULL, NULL, &r) == 0) s->status = r.status;
    cv_test_response_free(&r);
    cv_test_client_free(c);
    return NULL;
}

/* As many slow requests as workers, so each is inside its handler when the stop
 * begins (one more would wait unaccepted in the listen backlog, and a listener
 * that closes refuses those, as any server's does). */
START_TEST(stop_drains_in_flight_requests)
{
    struct fixture f;
    start(&f, "127.0.0.1:0", 0);
    enum { SLOW = 2 };
    struct slow_call calls[SLOW];
    pthread_t t[SLOW];
    for (int i = 0; i < SLOW; i++) {
        calls[i] = (struct slow_call){cv_http_server_port(f.srv), 0};
        ck_assert_int_eq(pthread_create(&t[i], NULL, slow_request, &calls[i]), 0);
    }
    struct timespec wait = {0, 150 * 1000 * 1000};
    nanosleep(&wait, NULL); /* the requests are inside their handlers now */
    unsigned port = cv_http_server_port(f.srv);
    stop(&f);
    for (int i = 0; i < SLOW; i++) {
        pthread_join(t[i], NULL);
        ck_assert_int_eq(calls[i].status, 200);
    }
    /* and nothing listens any more */
    struct slow_call late = {port, 0};
    slow_request(&late);
    ck_assert_int_eq(late.status, 0);
}
END_TEST

struct hammer {
    unsigned port;
    int ok;
};

static void *hammer_run(void *arg)
{
    struct hammer *h = arg;
    char url[64], ca[600];
    snprintf(url, sizeof(url), "https://127.0.0.1:%u", h->port);
    snprintf(ca, sizeof(ca), "%s/ca.crt", cert_dir);
    struct cv_test_client *c = cv_test_client_new(url, ca);
    for (int i = 0; c && i < 25; i++) {
        struct cv_test_response r;
        if (cv_test_request(c, "POST", "/api/echo", NULL, "{\"n\":1}", NULL, &r) == 0 && r.status == 201) h->ok++;
        cv_test_response_free(&r);
    }
    cv_test_client_free(c);
    return NULL;
}

START_TEST(concurrent_clients)
{
    struct fixture f;
    start(&f, "127.0.0.1:0", 1);
    enum { CLIENTS = 4 };
    pthread_t t[CLIENTS];
    struct hammer h[CLIENTS];
    for (int i = 0; i < CLIENTS; i++) {
        h[i] = (struct hammer){cv_http_server_port(f.srv), 0};
        ck_assert_int_eq(pthread_create(&t[i], NULL, hammer_run, &h[i]), 0);
    }
    for (int i = 0; i < CLIENTS; i++) {
        pthread_join(t[i], NULL);
        ck_assert_int_eq(h[i].ok, 25);
    }
    stop(&f);
}
END_TEST

/* ---- limits, seen from raw sockets ---- */

static int raw_connect(unsigned port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(fd, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    return fd;
}

/* Reads until the server closes (or 5 s pass); returns the bytes read, -1 on timeout. */
static ssize_t raw_read_all(int fd, char *buf, size_t n)
{
    size_t got = 0;
    for (;;) {
        ssize_t r = recv(fd, buf + got, n - 1 - got, 0);
        if (r == 0 || (r < 0 && errno == ECONNRESET)) break;
        if (r < 0) return -1;
        got += (size_t)r;
        if (got == n - 1) break;
    }
    buf[got] = '\0';
    return (ssize_t)got;
}

static void start_with(struct fixture *f, unsigned per_ip, unsigned timeout_s)
{
    struct cv_http_server_options o;
    options(&o, "127.0.0.1:0", 0);
    o.max_connections_per_ip = per_ip;
    o.connection_timeout_s = timeout_s;
    ck_assert(cv_ok(cv_http_server_start(&o, routes, NROUTES, &thread_calls, &f->srv)));
    f->client = NULL;
}

START_TEST(per_ip_connection_limit)
{
    struct fixture f;
    start_with(&f, 2, 10);
    unsigned port = cv_http_server_port(f.srv);
    int a = raw_connect(port), b = raw_connect(port);
    struct timespec t = {0, 100 * 1000 * 1000};
    nanosleep(&t, NULL);
    int c = raw_connect(port); /* the kernel accepts it; the server closes it at once */
    char buf[256];
    ck_assert_int_eq(raw_read_all(c, buf, sizeof(buf)), 0);
    static const char req[] = "GET /api/ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    ck_assert_int_eq(send(a, req, sizeof(req) - 1, 0), (ssize_t)sizeof(req) - 1);
    char resp[2048];
    ck_assert_int_gt(raw_read_all(a, resp, sizeof(resp)), 0);
    ck_assert_msg(strncmp(resp, "HTTP/1.1 200", 12) == 0, "%s", resp);
    close(a);
    close(b);
    close(c);
    cv_http_server_stop(f.srv);
}
END_TEST

START_TEST(idle_connections_time_out)
{
    struct fixture f;
    start_with(&f, 8, 1);
    int fd = raw_connect(cv_http_server_port(f.srv));
    static const char partial[] = "GET /api/ping HTTP/1.1\r\nHost: x\r\n"; /* and never the blank line */
    ck_assert_int_eq(send(fd, partial, sizeof(partial) - 1, 0), (ssize_t)sizeof(partial) - 1);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    char buf[256];
    ck_assert_int_eq(raw_read_all(fd, buf, sizeof(buf)), 0); /* closed, not answered */
    clock_gettime(CLOCK_MONOTONIC, &t1);
    ck_assert_int_le(t1.tv_sec - t0.tv_sec, 4);
    close(fd);
    cv_http_server_stop(f.srv);
}
END_TEST

START_TEST(oversize_headers_refused)
{
    struct fixture f;
    start_with(&f, 8, 10);
    int fd = raw_connect(cv_http_server_port(f.srv));
    size_t n = CV_HTTP_CONNECTION_MEMORY_BYTES + 4096;
    char *req = malloc(n + 128);
    ck_assert_ptr_nonnull(req);
    int k = snprintf(req, n + 128, "GET /api/ping HTTP/1.1\r\nHost: x\r\nX-Big: ");
    memset(req + k, 'a', n);
    memcpy(req + k + n, "\r\n\r\n", 5);
    (void)send(fd, req, (size_t)k + n + 4, MSG_NOSIGNAL);
    char buf[2048];
    ssize_t got = raw_read_all(fd, buf, sizeof(buf));
    /* answered with a 4xx by the protocol layer, or simply closed: never served */
    ck_assert(got >= 0);
    if (got > 0) ck_assert_msg(strncmp(buf, "HTTP/1.1 4", 10) == 0, "%.40s", buf);
    free(req);
    close(fd);
    /* many small headers within the limit are fine */
    struct cv_test_client *c;
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%u", cv_http_server_port(f.srv));
    c = cv_test_client_new(url, NULL);
    const char *many[41];
    char lines[40][32];
    for (int i = 0; i < 40; i++) {
        snprintf(lines[i], sizeof(lines[i]), "X-H%d: v%d", i, i);
        many[i] = lines[i];
    }
    many[40] = NULL;
    struct cv_test_response r;
    ck_assert_int_eq(cv_test_request(c, "GET", "/api/ping", NULL, NULL, many, &r), 0);
    ck_assert_int_eq(r.status, 200);
    cv_test_response_free(&r);
    cv_test_client_free(c);
    cv_http_server_stop(f.srv);
}
END_TEST

static Suite *suite(void)
{
    static const struct cv_t_suite_spec spec = {.name = "http_server", .timeout_s = 120};
    return cv_t_suite_new(&spec,
                          CV_T_TESTS(plain_http_refused_off_loopback, bad_start_refused, start_errors_say_what_to_fix, oversize_body_content_length,
                                     oversize_body_chunked, endless_chunked_body_is_cut_off, wrong_media_type,
                                     invalid_json_refused, not_found_and_method_not_allowed, bad_paths_refused,
                                     path_params_and_query_decoded, common_headers_and_request_ids,
                                     text_replies_and_head, error_categories_map_to_statuses, broken_handlers_get_500,
                                     handlers_run_on_worker_threads, keep_alive_plain, keep_alive_tls, ipv6_loopback,
                                     tls_versions, stop_drains_in_flight_requests, concurrent_clients,
                                     per_ip_connection_limit, idle_connections_time_out, oversize_headers_refused));
}

int main(void)
{
    Suite *s = suite();
    main_thread = pthread_self();
    cv_json_alloc_install(); /* before any other jansson call */
    const char *tmp = getenv("CV_TEST_TMP");
    if (tmp && *tmp) {
        snprintf(cert_dir, sizeof(cert_dir), "%s/http-tls", tmp);
    } else {
        snprintf(cert_dir, sizeof(cert_dir), "/tmp/cv-http-test.XXXXXX");
        if (!mkdtemp(cert_dir)) return EXIT_FAILURE;
    }
    if (cv_test_make_cert(cert_dir) != 0) {
        fprintf(stderr, "test_http_server: scripts/make-cert failed (is CV_SOURCE_DIR set?)\n");
        return EXIT_FAILURE;
    }
    return cv_t_suite_run(s, CK_FORK) == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
